# small-yi — `make serve` runs the server, `make test` runs the whole suite (what CI runs).
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= config.yaml
# the benchmark's peers (ansible-core, pyinfra, parallel-ssh, fabric) live in a venv of their own
PEERS_VENV ?= $(CURDIR)/.bench/peers
export PEERS_VENV

.PHONY: setup serve test check lint unit bench clean

setup: $(BIN)/small-yi
	@$(BIN)/python scripts/vendor_assets.py >/dev/null   # the console's xterm.js (npm ci when missing)

$(BIN)/small-yi: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

serve: setup
	$(BIN)/small-yi init --config $(CONFIG)
	$(BIN)/small-yi serve --config $(CONFIG)

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: setup
	$(BIN)/pytest -q tests/unit

test: setup
	scripts/test

check: test

bench: setup $(PEERS_VENV)/bin/ansible
	$(BIN)/python -m bench

$(PEERS_VENV)/bin/ansible:
	$(BIN)/python -m bench.setup_peers --venv $(PEERS_VENV)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
