# The two commands of the README:
#   make run    set up everything, start the local Kafka broker and the workers (Ctrl-C stops all)
#   make test   set up everything, run lint, type checks and the whole test suite (real broker)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
WORKERS ?= 1

.PHONY: setup system-deps run test lint unit integration bench bench-quick clean

#: Debian packages the tests drive as real outside clients: promtool and a Prometheus
#: server (package prometheus), headless Chromium (package chromium).
DEBIAN_PACKAGES := prometheus chromium

setup: $(VENV)/.installed

# Installs the missing Debian packages (as root, e.g. in CI); never skips silently.
system-deps:
	@missing=""; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then \
			echo "missing Debian packages:$$missing (run: sudo apt-get install -y$$missing)"; \
			exit 1; \
		fi; \
		echo "installing Debian packages:$$missing"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing >/dev/null \
		|| { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing >/dev/null; }; \
	fi

# Re-installs only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

run: setup
	$(BIN)/streamapp run --workers "$(WORKERS)"

lint: setup
	$(BIN)/ruff check streamapp tests bench
	$(BIN)/ruff format --check streamapp tests bench
	$(BIN)/mypy

test: system-deps lint
	$(BIN)/pytest

unit: setup
	$(BIN)/pytest tests/unit

integration: setup system-deps
	$(BIN)/pytest tests/integration

test-scale: setup system-deps
	$(BIN)/pytest -m scale tests/integration

bench-quick: setup
	$(BIN)/python -m bench.quick

bench: setup
	mkdir -p bench/out && touch bench/out/.make-bench-started
	$(BIN)/python -m bench.relay
	$(BIN)/python -m bench.eventstore
	$(BIN)/python -m bench.saga
	$(BIN)/python -m bench.retry
	$(BIN)/python -m bench.restore
	$(BIN)/python -m bench.state_retention
	$(BIN)/python -m bench.validators
	$(BIN)/python -m bench.compression
	$(BIN)/python -m bench.failover
	$(BIN)/python -m bench.collect bench/out/.make-bench-started

clean:
	-$(BIN)/streamapp kafka down
	rm -rf var tables/*/ .pytest_cache .mypy_cache .ruff_cache
