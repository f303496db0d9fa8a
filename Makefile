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

.PHONY: demo test test-latest test-lowest test-provider-ranges test-stacks stack-env check-dist ci \
	constraints constraints-stacks install lint typecheck catalogue clean

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

# The libraries teams build on (tests/stacks), each driven against the fake provider. Their
# openai pins conflict with the main environment's, and with each other's: .venv-stacks has
# openai 3.x (LangChain, LangGraph, OpenAI Agents SDK, Pydantic AI), .venv-stacks-openai2 the 2.x
# line LlamaIndex, Instructor and OpenLIT pin (where the openai integration's own tests run
# again). Each installs from its lock file; `make constraints-stacks` refreshes them. One after
# the other: parallel editable installs of one checkout would race on its egg-info.
STACKS_OPENAI3 := 'langchain-openai>=1.8' 'langgraph>=1.2' 'openai-agents>=0.24' 'pydantic-ai-slim[openai]>=2.78'
STACKS_OPENAI2 := 'openai>=2.54,<3' 'llama-index-core>=0.14.25' 'llama-index-llms-openai>=0.8.3' \
	'llama-index-embeddings-openai>=0.7' 'instructor>=1.17' 'openlit>=1.44'
STACKS_TOOLS := pytest
STACKS_PINS ?= -c constraints-stacks.txt
STACKS_OPENAI2_PINS ?= -c constraints-stacks-openai2.txt

test-stacks:
	bash scripts/test_prerequisites.sh
	$(MAKE) --no-print-directory stack-env STACK=.venv-stacks EXTRAS=openai,server \
		PINS="$(STACKS_PINS)" PKGS="$(STACKS_OPENAI3)"
	$(MAKE) --no-print-directory stack-env STACK=.venv-stacks-openai2 EXTRAS=server \
		PINS="$(STACKS_OPENAI2_PINS)" PKGS="$(STACKS_OPENAI2)"
	$(TEST_DB) .venv-stacks/bin/python -m pytest -p no:cacheprovider $(PYTEST_ARGS) tests/stacks/openai3
	$(TEST_DB) .venv-stacks-openai2/bin/python -m pytest -p no:cacheprovider $(PYTEST_ARGS) \
		tests/stacks/openai2 tests/sdk/integrations/test_openai.py

# One stacks environment (STACK), installed from its lock (PINS) with llmlab's EXTRAS and PKGS.
stack-env:
	test -x $(STACK)/bin/python || { $(PYTHON) -m venv $(STACK) && \
		$(STACK)/bin/python -m pip install --quiet --upgrade pip; }
	$(STACK)/bin/python -m pip install --quiet $(PINS) -e '.[$(EXTRAS)]' $(STACKS_TOOLS) $(PKGS)

# Re-resolve the stacks environments to the newest releases, then prove them with test-stacks.
constraints-stacks:
	rm -rf .venv-stacks .venv-stacks-openai2
	$(MAKE) stack-env STACK=.venv-stacks EXTRAS=openai,server PINS= PKGS="$(STACKS_OPENAI3)"
	$(MAKE) stack-env STACK=.venv-stacks-openai2 EXTRAS=server PINS= PKGS="$(STACKS_OPENAI2)"
	for env in openai3:.venv-stacks:constraints-stacks.txt \
		openai2:.venv-stacks-openai2:constraints-stacks-openai2.txt; do \
		dir=$${env%%:*}; rest=$${env#*:}; venv=$${rest%%:*}; lock=$${rest#*:}; \
		{ echo "# The exact versions tests/stacks/$$dir passed with in $$venv (make test-stacks)."; \
		  echo "# Refresh with make constraints-stacks; see the Makefile's test-stacks."; \
		  $$venv/bin/python -m pip freeze --exclude-editable | grep -v '^llmlab'; \
		} > $$lock; \
	done
	$(MAKE) test-stacks

# What .ci/run runs: the README's test command, then the install and version-range checks,
# then the libraries teams build on.
ci: test test-lowest check-dist test-stacks

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
