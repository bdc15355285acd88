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

# ruff (lint and format), mypy (core, the window, the command line), import-linter contracts (pyproject.toml)
lint: $(STAMP)
	$(BIN)/ruff check desktop tests $(wildcard tools)
	$(BIN)/ruff format --check desktop tests $(wildcard tools)
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

bench: $(STAMP)
	$(BIN)/lookalike bench

# Packaging (packaging/README.md): the one-folder bundle in dist/lookalike, its test,
# the lock it is built from, and the application menu entry for this user.
.PHONY: package package-test lock install-desktop uninstall-desktop
package:
	$(PYTHON) packaging/build.py

package-test: $(STAMP)
	LOOKALIKE_BUNDLE=$(CURDIR)/dist/lookalike $(BIN)/python -m pytest -q tests/integration/test_packaging_bundle.py

lock:
	$(PYTHON) packaging/lock.py

install-desktop:
	$(PYTHON) packaging/desktop_integration.py install

uninstall-desktop:
	$(PYTHON) packaging/desktop_integration.py uninstall

clean:
	rm -rf $(VENV) build dist *.egg-info desktop/*.egg-info
