# Development tasks for woodbury-sparse.  `make help` lists them.
#
# Every target sets up what it needs on first use (on Debian/Ubuntu even the system packages,
# through apt-get) and reuses it afterwards: environments are only (re)installed when
# pyproject.toml is newer than their stamp file.
#
# Variables (make VAR=value or environment):
#   PYTHON               base interpreter for the environments (default python3, needs >= 3.10)
#   PYTEST_ARGS          extra arguments for pytest, e.g. PYTEST_ARGS='-k woodbury -x'
#   HYPOTHESIS_PROFILE   the test targets' hypothesis profile: ci (the default, derandomised: the
#                        same examples every run), explore or thorough (fresh random examples)
#   SKSPARSE05_DIR       where the scikit-sparse 0.5 environment lives
#                        (default $XDG_CACHE_HOME or ~/.cache, + /woodbury_sparse/sksparse05)
#   OLDEST_DIR, NEWEST_DIR  where the oldest- and newest-dependency environments live (default
#                        the same cache, + /woodbury_sparse/oldest and /newest)
#   OLDEST_PYTHON, NEWEST_PYTHON  their interpreters (default: found by tools/dep-env.sh, e.g.
#                        under pyenv)
#   ALLOW_NO_SKSPARSE05  set to 1 to let test-sksparse05 pass (loudly) when scikit-sparse 0.5
#                        cannot be had on this machine

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3
PYTEST_ARGS ?=
BENCH_ARGS ?=
SUITESPARSE_INCLUDE ?= /usr/include/suitesparse
export PYTHON SUITESPARSE_INCLUDE

VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.woodbury_sparse-installed
FALLBACK_VENV := .venv-fallback
# The compiled Takahashi kernel: an edit to it reinstalls (rebuilds) the editable package.
KERNEL := woodbury_sparse/_factor/_takahashi.c
FALLBACK_PY := $(FALLBACK_VENV)/bin/python
FALLBACK_STAMP := $(FALLBACK_VENV)/.woodbury_sparse-installed
CACHE_ROOT := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/woodbury_sparse
SKSPARSE05_DIR ?= $(CACHE_ROOT)/sksparse05
export SKSPARSE05_DIR  # tests/test_stats_protocol.py finds the 0.5 environment by it
OLDEST_DIR ?= $(CACHE_ROOT)/oldest
NEWEST_DIR ?= $(CACHE_ROOT)/newest

# Only passed on when set; tests/conftest.py defaults to the derandomised ci profile.
TEST_ENV := $(if $(HYPOTHESIS_PROFILE),HYPOTHESIS_PROFILE=$(HYPOTHESIS_PROFILE))
# No display needed for the figures of the tests and examples.
TEST_ENV += MPLBACKEND=Agg

.PHONY: help install test test-fallback test-sksparse05 test-oldest test-newest test-explore demo \
  docs lint typecheck check-install check-sdist bench-quick bench bench-all clean

help:
	@echo "make test             run the test suite (CHOLMOD backend, environment .venv)"
	@echo "make test-fallback    run it without scikit-sparse (SciPy backend, .venv-fallback)"
	@echo "make test-sksparse05  run it against scikit-sparse 0.5 (SuiteSparse 7, cached env)"
	@echo "make test-oldest      run it on the oldest supported Python, NumPy, SciPy and"
	@echo "                      scikit-sparse: the floors of pyproject.toml (cached env)"
	@echo "make test-newest      run it on Python 3.13 with the newest NumPy, SciPy and Dask,"
	@echo "                      SciPy backend, then CHOLMOD when scikit-sparse builds (cached env)"
	@echo "                      (all of them draw the same hypothesis examples every run)"
	@echo "make test-explore     hypothesis tests only, fresh random examples (300 per test;"
	@echo "                      HYPOTHESIS_PROFILE=thorough for 1500), to hunt for bugs"
	@echo "make demo             run the examples (examples/run_all.py -> examples/output/)"
	@echo "make docs             build the documentation site into docs/_build/html (offline,"
	@echo "                      warnings as errors; runs the examples in quick mode for the gallery)"
	@echo "make lint             ruff check + ruff format --check + codespell"
	@echo "make typecheck        mypy on the package ([tool.mypy] in pyproject.toml)"
	@echo "make check-install    build the sdist and wheel; install them into fresh venvs as a"
	@echo "                      user would: plain (SciPy backend), [cholmod], sdist without a compiler"
	@echo "make check-sdist      the sdist holds exactly the repository's files it should, and its"
	@echo "                      tests import from the unpacked sdist"
	@echo "make bench-quick      quick benchmarks (CI): smallest sizes, one-thread and busy regimes"
	@echo "make bench            the targets' cases and sizes in three regimes -> benchmarks/results/,"
	@echo "                      then README.md's block from it;  make bench-all  every case and size"
	@echo "make install          only set up .venv"
	@echo "make clean            remove the environments and caches"
	@echo "PYTEST_ARGS='...' is passed to pytest."

# ---------------------------------------------------------------- main environment (.venv)

$(VPY):
	tools/sysdeps.sh --venv --build
	$(PYTHON) -m venv $(VENV)

# CHOLMOD comes with the extra [cholmod]. pip would take scikit-sparse 0.5.x, which cannot build
# against SuiteSparse < 7.4 (Debian 12 has 5.12): tools/sksparse-constraint.sh reads the headers'
# version and writes the needed constraint.
$(STAMP): pyproject.toml $(KERNEL) | $(VPY)
	tools/sysdeps.sh --build
	tools/sksparse-constraint.sh > $(VENV)/pip-constraints.txt
	reqs=$$($(VPY) tools/requirements.py --no-base --group dev); mapfile -t dev <<< "$$reqs"; \
	$(VPY) -m pip install -c $(VENV)/pip-constraints.txt -e '.[cholmod,examples,dask,bench]' \
	  "$${dev[@]}"
	$(VPY) -c 'import woodbury_sparse as ws; b = ws.backend_info(); print("==> backend:", b); \
	  assert b["backend"] == "cholmod", "scikit-sparse did not install"'
	touch $@

install: $(STAMP)

test: $(STAMP)
	WOODBURY_SPARSE_EXPECT_BACKEND=cholmod $(TEST_ENV) $(VPY) -m pytest $(PYTEST_ARGS)

test-explore: $(STAMP)
	WOODBURY_SPARSE_EXPECT_BACKEND=cholmod MPLBACKEND=Agg \
	  HYPOTHESIS_PROFILE=$(or $(HYPOTHESIS_PROFILE),explore) \
	  $(VPY) -m pytest -m hypothesis $(PYTEST_ARGS)

demo: $(STAMP)
	MPLBACKEND=Agg $(VPY) examples/run_all.py

# The Sphinx tools of the group docs go into .venv, which has the extras the gallery's examples
# need (examples, dask) and CHOLMOD. Built from scratch every time (-E: every page re-read, so no
# warning hides in an unchanged page); nothing is fetched (no intersphinx).
DOCS_STAMP := $(VENV)/.woodbury_sparse-docs-installed
$(DOCS_STAMP): pyproject.toml $(STAMP)
	reqs=$$($(VPY) tools/requirements.py --no-base --group docs); mapfile -t docs <<< "$$reqs"; \
	$(VPY) -m pip install -c $(VENV)/pip-constraints.txt "$${docs[@]}"
	touch $@

docs: $(DOCS_STAMP)
	rm -rf docs/_build/html docs/api/generated
	MPLBACKEND=Agg $(VPY) -m sphinx -W --keep-going -E -b html docs docs/_build/html
	@echo "==> the site: docs/_build/html/index.html"

# pre-commit runs the same ruff and codespell (pinned in the group dev) as this.
lint: $(STAMP)
	rc=0; \
	$(VENV)/bin/ruff check . || rc=1; \
	$(VENV)/bin/ruff format --check . || rc=1; \
	$(VENV)/bin/codespell || rc=1; \
	$(VPY) tools/requirements.py --check-pre-commit || rc=1; \
	exit $$rc

# Every module under woodbury_sparse/ ([tool.mypy] files), against the environment's NumPy and Dask.
typecheck: $(STAMP)
	$(VPY) -m mypy

# bench: the cases and sizes the targets (benchmarks/targets.py) read, in the three regimes, into
# benchmarks/results/, then the README's block from it; bench-all: every case at every size.
bench-quick: $(STAMP)
	$(VPY) -m benchmarks.run --quick --regime one-thread busy $(BENCH_ARGS)

bench: $(STAMP)
	$(VPY) -m benchmarks.run --targets $(BENCH_ARGS)
	$(VPY) -m benchmarks.run --sync-readme

bench-all: $(STAMP)
	$(VPY) -m benchmarks.run $(BENCH_ARGS)
	$(VPY) -m benchmarks.run --sync-readme

# ------------------------------------------------ fallback environment: no scikit-sparse at all

$(FALLBACK_PY):
	tools/sysdeps.sh --venv
	$(PYTHON) -m venv $(FALLBACK_VENV)

# What `pip install woodbury-sparse` gives: no scikit-sparse (the extra [cholmod] not asked for).
$(FALLBACK_STAMP): pyproject.toml $(KERNEL) | $(FALLBACK_PY)
	reqs=$$($(FALLBACK_PY) tools/requirements.py --no-base --group test); \
	mapfile -t test <<< "$$reqs"; \
	$(FALLBACK_PY) -m pip install -e . "$${test[@]}"
	if $(FALLBACK_PY) -c 'import sksparse' 2>/dev/null; then \
	  echo "error: scikit-sparse is importable in $(FALLBACK_VENV)" >&2; exit 1; \
	fi
	touch $@

test-fallback: $(FALLBACK_STAMP)
	WOODBURY_SPARSE_EXPECT_BACKEND=scipy $(TEST_ENV) $(FALLBACK_PY) -m pytest $(PYTEST_ARGS)

# ------------------------------------- scikit-sparse 0.5 against SuiteSparse 7 (shared, cached)

SKSPARSE05_BANNER := !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
SKSPARSE05_MISSING := printf '\n%s\n%s\n%s\n%s\n%s\n%s\n\n' '$(SKSPARSE05_BANNER)' \
  '!!  scikit-sparse 0.5 is NOT available: its environment could not be built here' \
  '!!  (../shared/tools/sksparse05-venv.sh is missing or could not obtain the packages).' \
  '!!  The scikit-sparse 0.5 code path has NOT been tested.' \
  '!!  Set ALLOW_NO_SKSPARSE05=1 to accept this and let the target pass.' \
  '$(SKSPARSE05_BANNER)' >&2

test-sksparse05:
	@rc=0; py=$$(tools/sksparse05-env.sh '$(SKSPARSE05_DIR)' | tail -n 1) || rc=$$?; \
	if [ "$$rc" -eq 3 ]; then \
	  $(SKSPARSE05_MISSING); \
	  if [ "$(ALLOW_NO_SKSPARSE05)" = 1 ]; then \
	    echo 'ALLOW_NO_SKSPARSE05=1: skipping test-sksparse05 (NOT a pass).' >&2; exit 0; \
	  fi; \
	  exit 1; \
	elif [ "$$rc" -ne 0 ]; then \
	  echo "error: setting up the scikit-sparse 0.5 environment failed (exit status $$rc)" >&2; \
	  exit "$$rc"; \
	fi; \
	set -x; \
	WOODBURY_SPARSE_EXPECT_BACKEND=cholmod WOODBURY_SPARSE_EXPECT_SKSPARSE=0.5 $(TEST_ENV) \
	  "$$py" -m pytest $(PYTEST_ARGS)

# ------------------------------- oldest and newest supported dependencies (shared, cached)

# Python 3.10 with numpy, scipy and scikit-sparse at the floors of pyproject.toml.
test-oldest:
	py=$$(tools/dep-env.sh oldest '$(OLDEST_DIR)' | tail -n 1); \
	set -x; \
	WOODBURY_SPARSE_EXPECT_BACKEND=cholmod $(TEST_ENV) "$$py" -m pytest $(PYTEST_ARGS)

# Python 3.13 with the newest releases: the SciPy backend (what `pip install woodbury-sparse`
# gives), then CHOLMOD where scikit-sparse built.
test-newest:
	py=$$(tools/dep-env.sh newest '$(NEWEST_DIR)' | tail -n 1); \
	(set -x; WOODBURY_SPARSE_BACKEND=scipy WOODBURY_SPARSE_EXPECT_BACKEND=scipy $(TEST_ENV) \
	  "$$py" -m pytest $(PYTEST_ARGS)); \
	if "$$py" -c 'import sksparse' 2>/dev/null; then \
	  set -x; \
	  WOODBURY_SPARSE_EXPECT_BACKEND=cholmod $(TEST_ENV) "$$py" -m pytest $(PYTEST_ARGS); \
	else \
	  echo '!! scikit-sparse did not build there: CHOLMOD NOT tested on the newest Python' >&2; \
	fi

# ------------------------------------------------------------------ distributions (sdist, wheel)

check-install: $(STAMP)
	BUILD_PYTHON=$(VPY) tools/check-install.sh

check-sdist: $(STAMP)
	BUILD_PYTHON=$(VPY) tools/check-sdist.sh

# ---------------------------------------------------------------------------------------------

clean:
	rm -rf $(VENV) $(FALLBACK_VENV) .pytest_cache .hypothesis .ruff_cache build dist *.egg-info
	rm -rf docs/_build docs/api/generated docs/api/woodbury_sparse*.md docs/examples
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
