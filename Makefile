# The two commands of the README:
#   make run    set up everything, start the local Kafka broker and the workers (Ctrl-C stops all)
#   make test   set up everything, run lint, type checks and the whole test suite (real broker)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
WORKERS ?= 1

.PHONY: setup run test lint unit integration bench clean

setup: $(VENV)/.installed

# Re-installs only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

run: setup
	$(BIN)/streamapp run --workers $(WORKERS)

lint: setup
	$(BIN)/ruff check streamapp tests bench
	$(BIN)/ruff format --check streamapp tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

unit: setup
	$(BIN)/pytest tests/unit

integration: setup
	$(BIN)/pytest tests/integration

bench: setup
	$(BIN)/python -m bench.relay
	$(BIN)/python -m bench.eventstore
	$(BIN)/python -m bench.saga
	$(BIN)/python -m bench.retry
	$(BIN)/python -m bench.state_retention
	$(BIN)/python -m bench.validators

clean:
	-$(BIN)/streamapp kafka down
	rm -rf var tables/*/ .pytest_cache .mypy_cache .ruff_cache
