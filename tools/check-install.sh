#!/usr/bin/env bash
# Builds the sdist and, from it, the wheel of this checkout, then installs them as a user would:
# into fresh virtual environments outside the checkout, with pip's cache off (so that pip picks
# what a new machine would get).
#
#   (a) the plain wheel, every dependency as a binary wheel (--only-binary :all:): nothing is
#       compiled, so neither SuiteSparse nor a compiler is needed. It imports, backend_info() says
#       "scipy", and a small solve and log-determinant agree with NumPy.
#   (b) the wheel with the extra [cholmod], under tools/sksparse-constraint.sh's constraint:
#       scikit-sparse is built from source against the system's SuiteSparse; the backend is
#       "cholmod", the same checks pass.
#   (c) the sdist with no working C compiler (CC=false): the optional C kernel is skipped and the
#       package installs and runs on its NumPy kernel.
# It also prints the wheel's metadata and checks its contents (licence file, py.typed, no C
# source, no scikit-sparse among the unconditional requirements).
#
# usage: tools/check-install.sh [WORKDIR]   (default: a new temporary directory, removed after)
# environment: PYTHON        interpreter of the new environments (default python3)
#              BUILD_PYTHON  an interpreter with `build` (default .venv/bin/python of the checkout)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
BUILD_PYTHON=${BUILD_PYTHON:-$root/.venv/bin/python}
# Relative to the caller's directory; absolute before this script changes directory. (Not
# `realpath`: a venv's python must keep its own path.)
[[ $BUILD_PYTHON == /* ]] || BUILD_PYTHON=$PWD/$BUILD_PYTHON
if [ $# -ge 1 ]; then
  mkdir -p "$1"
  work=$(cd "$1" && pwd)
else
  work=$(mktemp -d "${TMPDIR:-/tmp}/woodbury_sparse-check-install.XXXXXX")
  trap 'rm -rf "$work"' EXIT
fi
case $work/ in "$root"/*) echo "tools/check-install.sh: WORKDIR must be outside $root" >&2; exit 2 ;; esac

log() { printf '\n==> [%ss] %s\n' "$SECONDS" "$*"; }
export PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

log "building the sdist, then the wheel from the sdist ($("$BUILD_PYTHON" -m build --version))"
rm -rf "$work/dist"
"$BUILD_PYTHON" -m build --outdir "$work/dist" "$root" >"$work/build.log" 2>&1 \
  || { cat "$work/build.log"; echo "tools/check-install.sh: build failed" >&2; exit 1; }
sdist=$(ls "$work"/dist/woodbury_sparse-*.tar.gz)
wheel=$(ls "$work"/dist/woodbury_sparse-*.whl)
ls -l "$work/dist" | sed 1d

log "the wheel's metadata and contents"
"$PYTHON" - "$wheel" <<'EOF'
import sys
import zipfile
from email.parser import Parser

with zipfile.ZipFile(sys.argv[1]) as whl:
    names = whl.namelist()
    meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
    meta = Parser().parsestr(whl.read(meta_name).decode())
for field in ("Name", "Version", "Requires-Python", "License-Expression", "License-File",
              "Author"):
    for value in meta.get_all(field) or ["(missing)"]:
        print(f"    {field}: {value}")
requires = meta.get_all("Requires-Dist") or []
for value in requires:
    print(f"    Requires-Dist: {value}")
problems = []
if meta.get("License-Expression") != "BSD-3-Clause":
    problems.append("License-Expression is not BSD-3-Clause")
if not any(n.endswith(".dist-info/licenses/LICENSE") for n in names):
    problems.append("no LICENSE under .dist-info/licenses/")
if "woodbury_sparse/py.typed" not in names:
    problems.append("no woodbury_sparse/py.typed")
if any(n.endswith(".c") for n in names):
    problems.append("C source in the wheel")
if not any(n.startswith("woodbury_sparse/_factor/_takahashi.") and n.endswith(".so") for n in names):
    problems.append("the wheel has no compiled C kernel")
unconditional = [r for r in requires if "extra ==" not in r]
if any(r.lower().startswith("scikit-sparse") for r in unconditional):
    problems.append("scikit-sparse is a hard requirement")
print(f"    {len(names)} files; every check of the contents passed" if not problems else "")
sys.exit("; ".join(problems) or None)
EOF

# Runs from a directory outside the checkout, so that the installed package is imported.
check_py=$work/check_installed.py
cat >"$check_py" <<'EOF'
"""Import the installed package and check its backend, kernel and a small solve."""

import sys

import numpy as np
from scipy import sparse

import woodbury_sparse as ws
from woodbury_sparse._factor import _selinv

backend, kernel = sys.argv[1], sys.argv[2]
info = ws.backend_info()
print(f"    woodbury_sparse {ws.__version__} from {ws.__file__}")
print(f"    backend_info() = {info}; selected-inverse kernel: {_selinv.KERNEL}")
assert "site-packages" in ws.__file__, "not the installed copy"
assert info["backend"] == backend, f"expected the {backend} backend"
assert _selinv.KERNEL == kernel, f"expected the {kernel} kernel"

# W = Q⁻¹ + X Xᵀ with Q a sparse AR(1)-like tridiagonal precision; log|W| factorises Q (CHOLMOD
# where it is the backend).
n, p = 300, 4
rng = np.random.default_rng(0)
Q = sparse.diags_array([-0.9 * np.ones(n - 1), 2.0 * np.ones(n), -0.9 * np.ones(n - 1)],
                       offsets=[-1, 0, 1], format="csc")
X = rng.standard_normal((n, p))
W = ws.WoodburyMatrix(Q, np.eye(p), X=X)
dense = np.linalg.inv(Q.toarray()) + X @ X.T
b = rng.standard_normal(n)
reference = np.linalg.solve(dense, b)
# Forward error of a backward-stable solve: a small multiple of n·eps·κ(W).
bound = 10 * n * np.finfo(float).eps * np.linalg.cond(dense)
error = np.linalg.norm(W.solve(b) - reference) / np.linalg.norm(reference)
sign, logdet = W.slogdet()
ref_sign, ref_logdet = np.linalg.slogdet(dense)
print(f"    solve: relative error {error:.1e} (bound {bound:.1e}); "
      f"log|W| = {logdet:.10f} (NumPy {ref_logdet:.10f})")
assert error <= bound
assert sign == ref_sign == 1.0
assert abs(logdet - ref_logdet) <= bound * abs(ref_logdet)
print("    ok")
EOF

new_venv() {  # $1 = directory
  rm -rf "$1"
  "$PYTHON" -m venv "$1"
  "$1/bin/python" -m pip install -q --upgrade pip
}
run_check() {  # $1 = venv, $2 = backend, $3 = kernel
  (cd "$work" && "$1/bin/python" -I "$check_py" "$2" "$3")
}

log "(a) pip install $(basename "$wheel")  [fresh venv, binary wheels only: no SuiteSparse, no compiler]"
new_venv "$work/venv-plain"
"$work/venv-plain/bin/python" -m pip install -q --only-binary :all: "$wheel"
"$work/venv-plain/bin/python" -m pip list 2>/dev/null | grep -iE '^(numpy|scipy|scikit-sparse|woodbury-sparse) ' \
  | sed 's/^/    /'
if "$work/venv-plain/bin/python" -c 'import sksparse' 2>/dev/null; then
  echo "tools/check-install.sh: the plain install brought scikit-sparse" >&2
  exit 1
fi
run_check "$work/venv-plain" scipy c

log "(b) pip install '$(basename "$wheel")[cholmod]' with tools/sksparse-constraint.sh's constraint"
"$root/tools/sksparse-constraint.sh" >"$work/sksparse-constraint.txt"
sed 's/^/    /' "$work/sksparse-constraint.txt"
new_venv "$work/venv-cholmod"
"$work/venv-cholmod/bin/python" -m pip install -q -c "$work/sksparse-constraint.txt" \
  "$wheel[cholmod]"
"$work/venv-cholmod/bin/python" -m pip list 2>/dev/null \
  | grep -iE '^(numpy|scipy|scikit-sparse|woodbury-sparse) ' | sed 's/^/    /'
run_check "$work/venv-cholmod" cholmod c

log "(c) pip install $(basename "$sdist") with no C compiler (CC=false): NumPy kernel"
CC=false "$work/venv-plain/bin/python" -m pip install -q --force-reinstall --no-deps "$sdist" \
  >"$work/sdist-install.log" 2>&1 || { cat "$work/sdist-install.log"; exit 1; }
run_check "$work/venv-plain" scipy numpy

log "check-install: all three installations work"
