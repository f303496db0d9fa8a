# The two set-up commands of the README, and what they need.
#   make demo   installs llmlab into .venv and runs the offline demo
#   make test   installs llmlab with its test tools into .venv and runs every test
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo test install lint typecheck catalogue clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[all,dev]'

demo: install
	$(BIN)/llmlab demo --exit

test: install
	bash scripts/test_prerequisites.sh
	LLMLAB_TEST_POSTGRES_URL=$${LLMLAB_TEST_POSTGRES_URL:-postgresql+psycopg2://postgres@127.0.0.1:5432/test} \
		$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check sdk server tests benchmarks examples scripts

typecheck: install
	$(BIN)/mypy

catalogue: install
	$(BIN)/python scripts/build_catalogue.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
