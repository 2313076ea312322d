# Two commands do all set-up on a fresh machine:
#   make book   build the website into _build/html
#   make test   run the test suite
# Both create the virtual environment .venv and install the pinned requirements first;
# `make test` also installs Debian's chromium (with apt) for the browser tests.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: book test lint exercises clean chromium grade benchmarks

# The browser tests (tests/test_browser.py) drive Debian's chromium through Playwright; they
# do not use Playwright's own browser download. apt needs root: sudo is used when not root.
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

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

$(CHROMIUM):
	$(SUDO) apt-get update
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium

chromium: $(CHROMIUM)

test: $(VENV)/.test-installed chromium
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

exercises: $(VENV)/.book-installed
	cd solutions && for dir in */; do \
		(cd .. && PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/nbgrader generate_assignment "$${dir%/}" --force) || exit 1; \
	done

# Grade a class from an LMS download (a zip file or a folder of notebooks):
#   make grade ASSIGNMENT=a1_ngrams DOWNLOAD=~/Downloads/a1_ngrams.zip
# collects the notebooks, autogrades them in parallel and writes feedback and reports/.
grade: $(VENV)/.book-installed
	@test -n "$(ASSIGNMENT)" -a -n "$(DOWNLOAD)" || { echo "usage: make grade ASSIGNMENT=a1_ngrams DOWNLOAD=file.zip"; exit 2; }
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m course_lib.grading collect "$(DOWNLOAD)" --assignment "$(ASSIGNMENT)"
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m course_lib.grading autograde "$(ASSIGNMENT)"
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m course_lib.grading report "$(ASSIGNMENT)"

# The benchmark suite, quick CPU profile (PROFILE=full on a GPU); results in benchmarks/results/.
PROFILE ?= quick
benchmarks: $(VENV)/.test-installed
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m benchmarks --profile $(PROFILE)

clean:
	rm -rf _build
