# Two commands do all set-up on a fresh machine:
#   make book   build the website into _build/html
#   make test   run the test suite
# Both create the virtual environment .venv and install the pinned requirements first.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: book test lint exercises clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.book-installed: requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

$(VENV)/.test-installed: requirements-test.txt $(VENV)/.book-installed
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-test.txt
	touch $@

book: $(VENV)/.book-installed
	$(BIN)/jupyter-book build . --warningiserror --keep-going

test: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

exercises: $(VENV)/.book-installed
	cd solutions && for dir in */; do \
		(cd .. && PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/nbgrader generate_assignment "$${dir%/}" --force) || exit 1; \
	done

clean:
	rm -rf _build
