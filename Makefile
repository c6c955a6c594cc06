# small-yi — `make serve` runs the server, `make test` runs the whole suite (what CI runs),
# `make dist` builds the single-file executable dist/small-yi (docs/install.md).
# All need only python3 (3.11+) and make; scripts/bootstrap installs python3-venv when missing.
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= config.yaml
# the benchmark's peers (ansible-core, pyinfra, parallel-ssh, fabric) live in a venv of their own
PEERS_VENV ?= $(CURDIR)/.bench/peers
export PEERS_VENV

.PHONY: setup setup-test serve test check lint unit bench dist clean

# the server's own dependencies only (the test tools would triple the venv's size)
setup: $(VENV)/.server-deps
	@$(BIN)/python scripts/vendor_assets.py >/dev/null   # xterm.js and Swagger UI from npm, checked against the lock

$(VENV)/.server-deps: pyproject.toml
	@scripts/bootstrap $(VENV)
	$(BIN)/pip install -q -e .
	@touch $@

# the server plus pytest, Playwright, mypy, ruff, schemathesis...
setup-test: setup $(VENV)/.test-deps

$(VENV)/.test-deps: pyproject.toml $(VENV)/.server-deps
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

serve: setup
	$(BIN)/small-yi init --config $(CONFIG)
	$(BIN)/small-yi serve --config $(CONFIG)

lint: setup-test
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: setup-test
	$(BIN)/pytest -q tests/unit

test: setup-test
	scripts/test

check: test

bench: setup-test $(PEERS_VENV)/bin/ansible
	$(BIN)/python -m bench

$(PEERS_VENV)/bin/ansible:
	$(BIN)/python -m bench.setup_peers --venv $(PEERS_VENV)

# The executable is rebuilt when a source file is newer. The vendored files (xterm.js, Swagger UI) are
# written again by every `make setup`, so they count through package-lock.json, which pins them.
DIST_VENV ?= .venv-dist
DIST_SOURCES := $(shell find src -type f ! -name '*.pyc' ! -path '*/__pycache__/*' \
	! -path '*.egg-info/*' ! -path 'src/smallyi/web/static/vendor/*') \
	packaging/small-yi.spec packaging/entry.py pyproject.toml setup.py scripts/vendor_assets.py scripts/dist \
	package-lock.json

dist: dist/small-yi

dist/small-yi: $(DIST_SOURCES)
	DIST_VENV=$(DIST_VENV) scripts/dist

clean:
	rm -rf $(VENV) $(DIST_VENV) build dist .pytest_cache .mypy_cache .ruff_cache
