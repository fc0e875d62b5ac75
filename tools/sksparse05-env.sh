#!/usr/bin/env bash
# Gets the scikit-sparse 0.5 test environment ready and prints its python on stdout (last line).
#
# usage: tools/sksparse05-env.sh DIR
#   DIR/venv is built by ../shared/tools/sksparse05-venv.sh (slow, ~5 min) unless it already
#   imports sksparse.cholmod with cho_factor; then this checkout is installed into it (editable,
#   --no-deps) together with the test tools, remembered by a stamp file so that a second call
#   installs nothing.
# exit status: 0 ready; 3 scikit-sparse 0.5 cannot be had here (shared script missing or it exited
#   3); anything else is a real failure.
# environment: PYTHON (base interpreter handed to the shared script, default python3),
#   SKSPARSE05_SCRIPT (default ../shared/tools/sksparse05-venv.sh from the repo root)
set -euo pipefail

[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$1"
dir=$(cd "$1" && pwd)
script=${SKSPARSE05_SCRIPT:-$root/../shared/tools/sksparse05-venv.sh}
py=$dir/venv/bin/python
stamp=$dir/venv/.woodbury_sparse-installed

log() { echo "==> $*" >&2; }
venv_ok() {
  [ -x "$py" ] && "$py" -c 'import sksparse.cholmod as c; assert hasattr(c, "cho_factor")' \
    >/dev/null 2>&1
}

# Several checkouts or CI jobs may share DIR: one builder/installer at a time.
exec 9>"$dir/.lock"
if ! flock -n 9; then
  log "waiting for another process using $dir ..."
  flock 9
fi

if venv_ok; then
  log "reusing the scikit-sparse 0.5 environment in $dir/venv"
else
  if [ ! -f "$script" ]; then
    echo "tools/sksparse05-env.sh: $script not found" >&2
    exit 3
  fi
  # C and C++ compilers and Python.h for building scikit-sparse 0.5 (SuiteSparse 7 itself is
  # fetched by the script into DIR).
  PYTHON=${PYTHON:-python3} "$root/tools/sysdeps.sh" --venv --cxx >&2
  log "building the scikit-sparse 0.5 environment with $script (takes ~5 minutes)"
  rm -f "$stamp"
  rc=0
  # The shared script prints apt/pip chatter on stdout too: keep our stdout for the result.
  bash "$script" "$dir" "${PYTHON:-python3}" >&2 || rc=$?
  if [ "$rc" -eq 3 ]; then
    echo "tools/sksparse05-env.sh: $script exited 3 (packages could not be obtained)" >&2
    exit 3
  elif [ "$rc" -ne 0 ]; then
    echo "tools/sksparse05-env.sh: $script failed with exit status $rc" >&2
    exit "$rc"
  fi
  venv_ok || { echo "tools/sksparse05-env.sh: $py still cannot import sksparse.cholmod" \
    "with cho_factor" >&2; exit 1; }
fi

# The stamp records which checkout is installed (DIR is shared between checkouts) and must be
# newer than pyproject.toml.
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$root" ] && [ "$stamp" -nt "$root/pyproject.toml" ]
then
  log "woodbury-sparse and the test tools are already installed there"
else
  log "installing woodbury-sparse (editable, --no-deps) and the test tools into $dir/venv"
  # Keep the carefully built numpy/scipy/scikit-sparse exactly as they are.
  constraints=$dir/venv/woodbury_sparse-constraints.txt
  "$py" -m pip freeze | grep -iE '^(numpy|scipy|scikit[-_.]sparse)==' >"$constraints"
  sed 's/^/    keeping /' "$constraints" >&2
  # The package goes in with --no-deps; its run-time dependencies come from this list (the
  # base ones, numpy and scipy held by the constraints) with the test tools.
  mapfile -t test_reqs < <("$py" "$root/tools/requirements.py" --group test --exclude ruff)
  "$py" -m pip install -c "$constraints" --no-deps -e "$root" >&2
  "$py" -m pip install -c "$constraints" "${test_reqs[@]}" >&2
  echo "$root" >"$stamp"
fi
echo "$py"
