# The commands a developer runs are the commands CI runs (.ci/run calls `make test`).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
# Stamps: reinstall only when the project's metadata changes.
STAMP     := $(VENV)/.installed
STAMP_DEV := $(VENV)/.installed-dev
PACKAGES  := wire testbed security_module mother_unit remote_sensor remote_storage remote_processing simulations remote_portal

.PHONY: demo test check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(STAMP_DEV): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP) $@

demo: $(STAMP)
	$(BIN)/testbed demo

test: $(STAMP_DEV)
	$(BIN)/pytest

check: $(STAMP_DEV)
	$(BIN)/ruff check .
	$(BIN)/mypy --strict $(PACKAGES) tests

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis run
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
