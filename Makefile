# `make serve` installs the runtime into .venv and starts the gateway; `make test` installs every
# prerequisite (Debian packages as root, or names them) and the test tools, and runs every test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CLAUDE := tests/e2e/node_modules/.bin/claude

.PHONY: install serve test lint bench

$(PY):
	bash scripts/prerequisites.sh runtime
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# The runtime only: the gateway with its PostgreSQL and Redis clients.
$(VENV)/.runtime: setup.cfg pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[postgres,redis]'
	touch $@

$(VENV)/.installed: setup.cfg pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[postgres,redis,test,dev]'
	touch $@

$(CLAUDE): tests/e2e/package.json tests/e2e/package-lock.json
	npm ci --prefix tests/e2e --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed

serve: $(VENV)/.runtime
	$(VENV)/bin/lynkr serve

# PostgreSQL and Redis are started on 127.0.0.1 (needs root on Debian) with a database and a
# Redis database for this run only, unless LYNKR_TEST_DATABASE_URL and LYNKR_TEST_REDIS_URL
# already point at servers of your own (scripts/run-tests.sh).
test:
	bash scripts/prerequisites.sh test
	$(MAKE) --no-print-directory $(VENV)/.installed $(CLAUDE)
	bash scripts/run-tests.sh $(PY)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: install
	bash bench/run.sh
