# The two commands in the README: `make run` and `make test`.
# Each one does all the set-up it needs on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,bench,lint]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/lookalike

test: $(STAMP)
	$(BIN)/python -m pytest -q

# ruff (lint and format), mypy on core/, import-linter contracts (pyproject.toml)
lint: $(STAMP)
	$(BIN)/ruff check desktop tests $(wildcard tools)
	$(BIN)/ruff format --check desktop tests $(wildcard tools)
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

bench: $(STAMP)
	$(BIN)/lookalike bench

clean:
	rm -rf $(VENV) build *.egg-info desktop/*.egg-info
