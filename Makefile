# Quick start: `make run` (install, validate and build the sample agent) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
NPM_DIR := tests/js
SAM_VENV := $(VENV)/sam-cli
SAM_CLI := aws-sam-cli>=1.130,<2

# Beyond Python, `make test` needs Node.js 20+ and npm (the JavaScript runtimes and tools under test),
# the compilers AWS's Node.js runtime interface client builds its native part with, once, into the
# cache, redis-server (behind the Upstash REST front the Vercel session store is tested on) and jq
# (the init-ci workflow's plan-comment filter, run by its tests) and openssl (the self-signed certificate
# of the Azurite blob service Azure's stored packages are tested on):
# command:Debian-package pairs. Missing ones are installed as root with apt-get, else named.
TEST_TOOLS := node:nodejs npm:npm make:make cmake:cmake g++:g++ redis-server:redis-server jq:jq openssl:openssl \
	chromium:chromium chromedriver:chromium-driver

.PHONY: run test install install-test prerequisites bench clean

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[local]'
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed setup.cfg
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

# aws-sam-cli pins boto3, click and others exactly: its own venv keeps the project's versions.
$(SAM_VENV)/.installed: | $(VENV)/.installed
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet '$(SAM_CLI)'
	touch $@

$(NPM_DIR)/node_modules/.installed: $(NPM_DIR)/package.json $(NPM_DIR)/package-lock.json
	cd $(NPM_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed

install-test: prerequisites $(VENV)/.installed-test $(SAM_VENV)/.installed $(NPM_DIR)/node_modules/.installed

prerequisites:
	@missing=""; for pair in $(TEST_TOOLS); do command -v "$${pair%%:*}" >/dev/null || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "make test: installing the missing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	elif [ -n "$$missing" ]; then \
	  echo "make test needs:$$missing (Debian/Ubuntu: sudo apt-get install$$missing)" >&2; exit 1; \
	fi; \
	node -e 'process.exit(Number(process.versions.node.split(".")[0]) < 20 ? 1 : 0)' || \
	  { echo "make test needs Node.js 20 or newer; this is $$(node --version)" >&2; exit 1; }

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
