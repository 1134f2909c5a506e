# nicspec — the two newcomer commands:
#   make book   build the Jupyter Book into _build/html (creates .venv with the book extras)
#   make test   ruff + the fast test suite (creates .venv with the test extras)
# Others: make test-book, make test-slow, make lint, make venv, make clean, make distclean, make help.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
# In CI (CI=true) pip's progress bars only clutter the log.
PIP_FLAGS ?= $(if $(CI),--progress-bar off,)
PYTEST_ARGS ?=
BOOK_FLAGS ?=
# The book a newcomer gets: the paper profile once its results bundle is committed whole
# (data/results/paper with every chapter: its manifest says "complete": true; rendered from
# it, no dataset needed), else quick. Same rule as nicspec_utils.book.default_profile.
DEFAULT_PROFILE := $(shell grep -qs '^  "complete": true,' data/results/paper/manifest.json && echo paper || echo quick)
PROFILE ?= $(DEFAULT_PROFILE)
LINT_PATHS := nicspec_utils tests book/_ext scripts

# Stamps: each records that the venv holds one set of extras for this pyproject.toml. A changed
# pyproject.toml (or a deleted venv) reinstalls; otherwise a rerun does nothing.
STAMP_TEST := $(VENV)/.nicspec-test.stamp
STAMP_BOOK := $(VENV)/.nicspec-book.stamp
STAMP_SITE := $(VENV)/.nicspec-site.stamp
# The book profile that `make site-test` builds and checks.
SITE_PROFILE ?= smoke

# The data mirror that replaces the network (see README "Data"): ../shared/data beside the
# clone, unless NICSPEC_DATA_MIRROR is already set. NO_MIRROR=1 hides it, as on a bare clone:
# the chapters then use the embedded Kodak images and say on the page what they left out.
NO_MIRROR ?=
ifeq ($(NO_MIRROR),1)
export NICSPEC_DATA_MIRROR :=
else ifeq ($(origin NICSPEC_DATA_MIRROR),undefined)
ifneq ($(wildcard ../shared/data/.),)
export NICSPEC_DATA_MIRROR := $(abspath ../shared/data)
endif
endif
# The committed results bundles (data/results/<profile>/) serve the store entries they hold;
# FRESH=1 ignores them and recomputes everything (NICSPEC_FRESH=1).
FRESH ?=
ifeq ($(FRESH),1)
export NICSPEC_FRESH := 1
endif
# site-test checks the book a newcomer gets: the mirror hidden (SITE_NO_MIRROR=0 keeps it).
SITE_NO_MIRROR ?= 1

# One BLAS/OpenMP thread unless the caller says otherwise: the machines are small and shared,
# and torch's intra-op threads thrash there (tests/conftest.py also calls torch.set_num_threads(1)).
export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1

.PHONY: help book chapters test test-book test-slow site-test lint venv venv-book clean distclean

help:
	@echo "make book       build the book into _build/html (PROFILE=smoke|paper|protocol: _build/html-PROFILE)"
	@echo "make test       ruff check + pytest, slow/network tests deselected (creates $(VENV))"
	@echo "make test-slow  only the slow tests (pytest -m slow)"
	@echo "make test-book  the tests that execute chapters (pytest -m book; the book extras)"
	@echo "make site-test  build the $(SITE_PROFILE) book without the data mirror, open every page in"
	@echo "                headless Chromium (pytest -m site)"
	@echo "make chapters   execute the chapters only (papermill), no site; PROFILE=, NO_MIRROR=1"
	@echo "                FRESH=1 (book, chapters): ignore the results bundles in data/results"
	@echo "make lint       ruff check + format --check ($(LINT_PATHS), the notebooks), mypy"
	@echo "make clean      remove _build and caches;  make distclean: also $(VENV)"
	@echo "data mirror: NICSPEC_DATA_MIRROR=$${NICSPEC_DATA_MIRROR:-<unset>}"

$(BIN)/python:
	@test -n "$(PYTHON)" || { echo "make: no python3.11 (or python3) on PATH" >&2; exit 1; }
	@echo ">> creating $(VENV) with $(PYTHON) ($$($(PYTHON) --version))"
	$(PYTHON) -m venv $(VENV)

$(STAMP_TEST): pyproject.toml | $(BIN)/python
	@echo ">> installing nicspec-utils[test] into $(VENV) (first time: a few minutes)"
	$(BIN)/python -m pip install $(PIP_FLAGS) -e '.[test]'
	@touch $@

$(STAMP_BOOK): pyproject.toml | $(BIN)/python
	@echo ">> installing nicspec-utils[dev] (book + classify + test) into $(VENV) (first time: a few minutes)"
	$(BIN)/python -m pip install $(PIP_FLAGS) -e '.[dev]'
	@touch $@ $(STAMP_TEST)

$(STAMP_SITE): pyproject.toml $(STAMP_BOOK)
	@echo ">> installing nicspec-utils[site] (Playwright, driving the system's chromium) into $(VENV)"
	$(BIN)/python -m pip install $(PIP_FLAGS) -e '.[site]'
	@touch $@

venv: $(STAMP_TEST)
venv-book: $(STAMP_BOOK)

# The quality gates: ruff (lint and format) over the code and the chapters' code cells, mypy
# over the package. CI runs them through `make test`.
lint: $(STAMP_TEST)
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	scripts/lint_notebooks.sh $(BIN)
	$(BIN)/mypy nicspec_utils

# pytest exits 5 when it collected no test: that is a failure here, not a pass.
test: lint
	@echo ">> pytest (NICSPEC_DATA_MIRROR=$${NICSPEC_DATA_MIRROR:-<unset>}, OMP_NUM_THREADS=$$OMP_NUM_THREADS)"
	@rc=0; $(BIN)/python -m pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make: pytest collected no tests: failing" >&2; fi; \
	exit $$rc

# Tests that execute chapters (papermill): they need the book extras, so not in `make test`.
test-book: $(STAMP_BOOK)
	@rc=0; $(BIN)/python -m pytest -m book $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make: pytest collected no book tests: failing" >&2; fi; \
	exit $$rc

test-slow: $(STAMP_TEST)
	@rc=0; $(BIN)/python -m pytest -m slow $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make: pytest collected no slow tests: failing" >&2; fi; \
	exit $$rc

# jupytext -> papermill (the profile's parameters, book/profiles.yaml) -> jupyter-book.
# `make book PROFILE=smoke` for CI-sized runs, `PROFILE=paper` for the paper's
# protocol cut to 8 hours on 2 cores, `PROFILE=protocol` for the whole of it (a cluster or a GPU).
book: $(STAMP_BOOK)
	@echo ">> nicspec book --profile $(PROFILE)"
	$(BIN)/nicspec book --profile $(PROFILE)
	@site=_build/$(if $(filter $(DEFAULT_PROFILE),$(PROFILE)),html,html-$(PROFILE)); \
	test -f $$site/index.html || { echo "make: $$site/index.html was not written" >&2; exit 1; }; \
	echo ">> the book: $(CURDIR)/$$site/index.html"

# The chapters executed (papermill) without building the site: CI runs the smoke chapters with
# the data mirror after site-test has built them without it, so both paths stay exercised.
chapters: $(STAMP_BOOK)
	@echo ">> nicspec book --profile $(PROFILE) --no-html (NICSPEC_DATA_MIRROR=$${NICSPEC_DATA_MIRROR:-<unset>})"
	$(BIN)/nicspec book --profile $(PROFILE) --no-html

# The built site in a real browser: every page over http://127.0.0.1 in headless Chromium (no
# console errors, figures load, no tracebacks, chapter 1's widgets render offline); a screenshot
# of chapter 1 goes to _build/site-test/. Chromium: NICSPEC_CHROMIUM, else `chromium` on PATH,
# else (as root, with apt) Debian's package is installed; Playwright never downloads a browser.
site-test: $(STAMP_SITE)
	@if [ -z "$${NICSPEC_CHROMIUM:-}" ] && ! command -v chromium >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo ">> installing chromium (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "make: site-test needs chromium: apt-get install chromium, or set NICSPEC_CHROMIUM" >&2; exit 1; \
	  fi; \
	fi
	$(MAKE) --no-print-directory book PROFILE=$(SITE_PROFILE) NO_MIRROR=$(SITE_NO_MIRROR)
	@echo ">> pytest -m site (the built site in headless Chromium)"
	NICSPEC_SITE_DIR=$(CURDIR)/_build/$(if $(filter $(DEFAULT_PROFILE),$(SITE_PROFILE)),html,html-$(SITE_PROFILE)) \
	  $(BIN)/python -m pytest -m site tests/test_site.py $(PYTEST_ARGS)

clean:
	rm -rf _build .pytest_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) *.egg-info
