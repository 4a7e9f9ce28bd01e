# `make serve` installs into .venv and starts the gateway; `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CLAUDE := tests/e2e/node_modules/.bin/claude

.PHONY: install serve test lint bench

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,dev]'
	touch $@

$(CLAUDE): tests/e2e/package.json tests/e2e/package-lock.json
	npm ci --prefix tests/e2e --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed

serve: install
	$(VENV)/bin/lynkr serve

# PostgreSQL and Redis for their tests: started on 127.0.0.1 (needs root on Debian), unless
# LYNKR_TEST_DATABASE_URL and LYNKR_TEST_REDIS_URL already point at servers of your own.
test: install $(CLAUDE)
	eval "$$(bash scripts/start-services.sh)" && $(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .

bench: install
	bash bench/run.sh
