# One entry point for people and CI: `make demo` runs foresight on the simulated cluster,
# `make test` runs every check. Both install what they need into .venv on first use.
# `make image` builds the container image with podman or docker (scripts/build-image.sh says
# which variables it reads: PYTHON_IMAGE, CA_BUNDLE...); `make image-demo` tags one with the
# demo's plots and the learned forecaster as well.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

IMAGE ?= foresight:0.1.0

.PHONY: demo test lint typecheck layers pytest bench system-deps image image-demo clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Debian packages the integration tests start for real (Prometheus, promtool, Alertmanager,
# kubectl, and podman with mmdebstrap for the image).
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

image:
	@bash scripts/build-image.sh $(IMAGE)

image-demo:
	@EXTRAS='[plots,learned]' bash scripts/build-image.sh $(IMAGE)-demo

bench: $(STAMP)
	$(BIN)/python -m bench.store

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache
