# small-yi — `make serve` runs the server, `make test` runs the whole suite (what CI runs).
# Both need only python3 (3.11+) and make; scripts/bootstrap installs python3-venv when missing.
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= config.yaml

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

bench: setup-test
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
