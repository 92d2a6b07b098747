# One entry point for people and CI: `make demo` runs foresight on the simulated cluster,
# `make test` runs every check. Both install what they need into .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck layers pytest bench system-deps clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Debian packages the integration tests start for real (Prometheus, promtool, Alertmanager, kubectl).
system-deps:
	@bash scripts/install-system-deps.sh

demo: $(STAMP)
	$(BIN)/foresight demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

layers: $(STAMP)
	$(BIN)/lint-imports

pytest: $(STAMP) system-deps
	$(BIN)/pytest

test: lint typecheck layers pytest

bench: $(STAMP)
	$(BIN)/python -m bench.store

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache
