# Two commands do all set-up on a fresh machine:
#   make book   build the website into _build/html
#   make test   run the test suite
# Both create the virtual environment .venv and install the pinned requirements first;
# `make test` also installs, with apt, the Debian packages the tests use: chromium (browser
# tests), bubblewrap (the grading sandbox) and postgresql (a gradebook on a PostgreSQL server).

PYTHON ?= python3

# The corpora the book and the tests read (Penn Treebank, tiny-shakespeare) come from a local
# mirror when one sits beside the repository, as on the course's CI machines; otherwise they
# are downloaded once into the cache (see README.md, "Data").
MIRROR_DIR := $(abspath ../shared/data)
ifeq ($(origin COURSE_LIB_MIRROR),undefined)
ifneq ($(wildcard $(MIRROR_DIR)),)
export COURSE_LIB_MIRROR := $(MIRROR_DIR)
endif
endif
VENV := .venv
BIN := $(VENV)/bin

.PHONY: book test lint exercises clean system-packages grade benchmarks

# Debian packages for the tests: the browser tests (tests/test_browser.py) drive chromium
# through Playwright (not Playwright's own browser download); the grader runs each student's
# kernel in bubblewrap (course_lib/grading/sandbox.py); a gradebook test runs a PostgreSQL
# server. Only the missing ones are installed; apt needs root: sudo is used when not root.
SYSTEM_PACKAGES := chromium bubblewrap postgresql
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

system-packages:
	@missing=$$(for package in $(SYSTEM_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$package 2>/dev/null | grep -q "install ok installed" || echo $$package; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:" $$missing; \
		$(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	fi

test: $(VENV)/.test-installed system-packages
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
