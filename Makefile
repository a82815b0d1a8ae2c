# Quick start: `make run` (install, validate and build the sample agent) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
NPM_DIR := tests/js

.PHONY: run test install install-test lint check bench clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[local]'
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed setup.cfg
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

$(NPM_DIR)/node_modules/.installed: $(NPM_DIR)/package.json $(NPM_DIR)/package-lock.json
	cd $(NPM_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test $(NPM_DIR)/node_modules/.installed

run: install
	$(PY) -m framework validate
	$(PY) -m framework build

test: install-test
	$(PY) -m ruff check framework tests bench
	$(PY) -m framework validate
	$(PY) -m framework build --check
	$(PY) -m pytest -n 2

bench: install-test
	$(PY) bench/build.py
	$(PY) bench/coldstart.py
	$(PY) bench/deploy.py
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(PY) bench/serve.py

clean:
	rm -rf $(VENV) $(NPM_DIR)/node_modules .pytest_cache
