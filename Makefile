# The two set-up commands of the README, and what they need.
#   make demo   installs llmlab into .venv and runs the offline demo
#   make test   installs llmlab with its test tools into .venv and runs every test
# Both install the exact versions of constraints.txt (`make constraints` refreshes it).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=
# What `install` passes pip: the tested versions; test-latest swaps in the newest releases.
PIP_PINS ?= -c constraints.txt
TEST_DB := LLMLAB_TEST_POSTGRES_URL=$${LLMLAB_TEST_POSTGRES_URL:-postgresql+psycopg2://postgres@127.0.0.1:5432/test}

.PHONY: demo test test-latest test-lowest test-provider-ranges check-dist ci constraints install lint \
	typecheck catalogue clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet $(PIP_PINS) -e '.[all,dev]'

demo: install
	$(BIN)/llmlab demo --exit

test: install
	bash scripts/test_prerequisites.sh
	$(TEST_DB) $(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

# The suite against the newest releases pyproject.toml allows: upstream drift shows up here,
# as a separate signal, before it reaches constraints.txt.
test-latest:
	$(MAKE) test VENV=.venv-latest PIP_PINS="--upgrade --upgrade-strategy eager"

# The provider integrations on the oldest release of each supported range (CI), or both ends.
test-lowest: install
	$(BIN)/python scripts/provider_versions.py --bound lowest

test-provider-ranges: install
	$(BIN)/python scripts/provider_versions.py --bound both

# The built sdist and wheel, installed in clean environments per extra.
check-dist: install
	$(BIN)/python scripts/check_dist.py

# What .ci/run runs: the README's test command, then the install and version-range checks.
ci: test test-lowest check-dist

# Re-resolve every dependency to the newest allowed release, then prove it with the suite.
constraints:
	rm -rf .venv-lock
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet --upgrade pip
	.venv-lock/bin/python -m pip install --quiet -e '.[all,dev]'
	{ sed -n '1,2p' constraints.txt; .venv-lock/bin/python -m pip freeze --exclude-editable \
		| grep -v '^llmlab'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	rm -rf .venv-lock
	$(MAKE) test

lint: install
	$(BIN)/ruff check sdk server tests benchmarks examples scripts

typecheck: install
	$(BIN)/mypy

catalogue: install
	$(BIN)/python scripts/build_catalogue.py

clean:
	rm -rf $(VENV) .venv-latest .venv-providers build dist *.egg-info .pytest_cache .mypy_cache \
		.ruff_cache
