#!/usr/bin/env bash
# Checks the source distribution:
#   1. check-sdist: the sdist holds exactly the files of the repository (git ls-files) except those
#      [tool.check-sdist] git-only in pyproject.toml leaves out (CI, development tools,
#      benchmarks), and no junk (caches, compiled files) even when such junk lies in the tree;
#   2. its test suite can run: unpacked in a directory of its own, every test module and doctest
#      is collected (conftest.py, tests/, examples/ are there) and the package imported is the
#      unpacked one;
#   3. the version written in CITATION.cff is woodbury_sparse.__version__ (the one the build uses).
#
# usage: tools/check-sdist.sh
# environment: BUILD_PYTHON  an interpreter with check-sdist and build (default .venv/bin/python of
#                            the checkout, which has the extra dev)
#              TEST_PYTHON   one with the package's dependencies and the test tools (default
#                            BUILD_PYTHON)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_PYTHON=${BUILD_PYTHON:-$root/.venv/bin/python}
TEST_PYTHON=${TEST_PYTHON:-$BUILD_PYTHON}
# Relative to the caller's directory; absolute before this script changes directory. (Not
# `realpath`: a venv's python must keep its own path.)
[[ $BUILD_PYTHON == /* ]] || BUILD_PYTHON=$PWD/$BUILD_PYTHON
[[ $TEST_PYTHON == /* ]] || TEST_PYTHON=$PWD/$TEST_PYTHON
bindir=$(dirname "$BUILD_PYTHON")
cd "$root"

version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' woodbury_sparse/__init__.py)
cff_version=$(sed -n 's/^version: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' CITATION.cff)
if [ -z "$version" ] || [ "$version" != "$cff_version" ]; then
  echo "tools/check-sdist.sh: woodbury_sparse.__version__ is '$version' but CITATION.cff says" \
    "'$cff_version'" >&2
  exit 1
fi
echo "==> version $version (woodbury_sparse/__init__.py, CITATION.cff)"

echo "==> check-sdist $("$bindir/check-sdist" --version 2>/dev/null || true) --inject-junk"
"$bindir/check-sdist" --inject-junk --installer pip 2>&1 \
  | grep -vE '^(copying|adding|creating|running|writing|reading|Writing|Creating|removing) '

work=$(mktemp -d "${TMPDIR:-/tmp}/woodbury_sparse-check-sdist.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$BUILD_PYTHON" -m build --sdist --outdir "$work" . >"$work/build.log" 2>&1 \
  || { cat "$work/build.log"; exit 1; }
tar -xzf "$work"/woodbury_sparse-*.tar.gz -C "$work"
src=$(ls -d "$work"/woodbury_sparse-*/)
echo "==> unpacked $(basename "$src"): $(find "$src" -type f | wc -l) files;" \
  "$(ls "$src"tests/test_*.py | wc -l) test modules, $(ls "$src"examples/*.py | wc -l) example scripts"
cd "$src"
"$TEST_PYTHON" -c 'import os, woodbury_sparse as ws
assert ws.__file__.startswith(os.getcwd()), ws.__file__
print("==> the tests import", ws.__file__)'
MPLBACKEND=Agg "$TEST_PYTHON" -m pytest --collect-only -q -p no:cacheprovider >"$work/collect.log" 2>&1 \
  || { cat "$work/collect.log"; echo "tools/check-sdist.sh: collection failed in the sdist" >&2; exit 1; }
tail -n 1 "$work/collect.log"
echo "==> check-sdist: the sdist matches the repository, its tests collect, the versions agree"
