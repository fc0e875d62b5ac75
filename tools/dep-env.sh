#!/usr/bin/env bash
# Gets the oldest- or the newest-dependency test environment ready and prints its python on
# stdout (last line).
#
# usage: tools/dep-env.sh oldest|newest DIR
#   oldest  the Python of requires-python's floor (3.10) with every floor of pyproject.toml pinned
#           (numpy, scipy and the cholmod extra's scikit-sparse; tools/requirements.py --floors)
#   newest  Python $NEWEST_PYTHON_VERSION (default 3.13) with the newest NumPy, SciPy and Dask the
#           registry serves for it; rebuilt when older than NEWEST_MAX_AGE_DAYS (default 7) days,
#           so that it follows new releases
#   Both get the test tools (dependency group `test`) at whatever version fits, scikit-sparse built from
#   source against the system's SuiteSparse (tools/sksparse-constraint.sh: 0.4.x below
#   SuiteSparse 7.4), and this checkout installed editable (--no-deps; its C kernel compiled).
#   In `newest` scikit-sparse is optional: when it does not build the environment keeps the
#   SciPy backend alone (said loudly). In `oldest` it must build.
#   DIR/venv is rebuilt only when the requirements these take from pyproject.toml, this script,
#   the interpreter or the system's SuiteSparse change; a second call installs nothing (but
#   reinstalls the checkout, in seconds, when pyproject.toml is newer than that installation).
# exit status: 0 ready; 3 no interpreter of the wanted version on this machine; other: failure.
# environment: OLDEST_PYTHON, NEWEST_PYTHON  interpreter to use (default: python3.X on PATH, then
#   $PYENV_ROOT or ~/.pyenv /versions/3.X.*, then /usr/bin, /usr/local/bin)
#   NEWEST_PYTHON_VERSION, NEWEST_MAX_AGE_DAYS (above)
set -euo pipefail

[ $# -eq 2 ] && { [ "$1" = oldest ] || [ "$1" = newest ]; } \
  || { echo "usage: $0 oldest|newest DIR" >&2; exit 2; }
kind=$1
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$2"
dir=$(cd "$2" && pwd)
venv=$dir/venv
vpy=$venv/bin/python
key_file=$venv/.woodbury_sparse-key
checkout_stamp=$venv/.woodbury_sparse-installed

log() { echo "==> [$kind] $*" >&2; }
die() { echo "tools/dep-env.sh: [$kind] error: $*" >&2; exit "${2:-1}"; }

# -- the interpreter ------------------------------------------------------------------------------
runs_version() {  # $1 = interpreter, $2 = X.Y: true when it runs and is Python X.Y
  "$1" -c "import sys; sys.exit('%d.%d' % sys.version_info[:2] != '$2')" >/dev/null 2>&1
}
find_python() {  # $1 = X.Y
  local candidate
  for candidate in "$(command -v "python$1" || true)" \
    $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}/versions/$1".*/bin/"python$1" 2>/dev/null | sort -V -r) \
    "/usr/bin/python$1" "/usr/local/bin/python$1"; do
    if [ -n "$candidate" ] && runs_version "$candidate" "$1"; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

# The base python for tools/requirements.py (needs tomllib or pip's vendored tomli).
host_py=${PYTHON:-python3}
if [ "$kind" = oldest ]; then
  want=$("$host_py" "$root/tools/requirements.py" --python-floor)
  py=${OLDEST_PYTHON:-}
else
  want=${NEWEST_PYTHON_VERSION:-3.13}
  py=${NEWEST_PYTHON:-}
fi
if [ -z "$py" ]; then
  py=$(find_python "$want") || die "no Python $want found (python$want on PATH, pyenv's" \
    "versions, /usr/bin, /usr/local/bin); set ${kind^^}_PYTHON=/path/to/python$want" 3
fi
runs_version "$py" "$want" || die "$py is not Python $want"
log "Python $want: $py"

# Several checkouts or CI jobs may share DIR: one builder/installer at a time.
exec 9>"$dir/.lock"
if ! flock -n 9; then
  log "waiting for another process using $dir ..."
  flock 9
fi

# -- what the environment must hold ---------------------------------------------------------------
# SuiteSparse headers, a C compiler and Python.h (scikit-sparse and the C kernel build from source).
PYTHON=$py "$root/tools/sysdeps.sh" --venv --build >&2
sksparse_constraint=$("$root/tools/sksparse-constraint.sh" 2>/dev/null)
constraints=()
if [ "$kind" = oldest ]; then
  mapfile -t constraints < <("$host_py" "$root/tools/requirements.py" --floors --extra cholmod)
  if ! grep -qx 'scikit-sparse<0.5' <<<"$sksparse_constraint"; then
    # SuiteSparse >= 7.4: the 0.4 floor cannot build; the oldest release that can is 0.5.0, and it
    # asks for numpy > 2.0, so NumPy's floor moves to the next release, 2.0.1.
    constraints=("${constraints[@]/#scikit-sparse==*/scikit-sparse==0.5.0}")
    constraints=("${constraints[@]/#numpy==2.0/numpy==2.0.1}")
  fi
fi
selection=(--group test)
[ "$kind" = newest ] && selection+=(--extra dask)
mapfile -t reqs < <("$host_py" "$root/tools/requirements.py" "${selection[@]}" \
  --exclude scikit-sparse)
mapfile -t cholmod < <("$host_py" "$root/tools/requirements.py" --no-base --extra cholmod)
# What decides the environment's contents (not the rest of pyproject.toml, so that a change of,
# say, the ruff settings rebuilds nothing).
key=$(
  {
    echo "$kind $want $("$py" -c 'import sys; print(sys.version)') $py"
    printf '%s\n' "${constraints[@]}" "${reqs[@]}" "${cholmod[@]}" "$sksparse_constraint"
    cat "$root/tools/dep-env.sh"
  } | sha256sum | cut -c1-16
)

fresh=1
if [ -x "$vpy" ] && [ -f "$key_file" ] && [ "$(cat "$key_file")" = "$key" ]; then
  fresh=0
  if [ "$kind" = newest ] \
    && [ -n "$(find "$key_file" -mtime "+${NEWEST_MAX_AGE_DAYS:-7}" 2>/dev/null)" ]; then
    log "older than ${NEWEST_MAX_AGE_DAYS:-7} days: rebuilding to follow new releases"
    fresh=1
  fi
fi

if ((fresh)); then
  log "building $venv"
  rm -rf "$venv"
  "$py" -m venv "$venv"
  "$vpy" -m pip install -q --upgrade pip >&2
  cfile=$venv/woodbury_sparse-constraints.txt
  {
    echo "# tools/dep-env.sh $kind"
    printf '%s\n' "${constraints[@]}"
    echo "$sksparse_constraint"
  } >"$cfile"
  sed -n 's/^\([^#].*\)/    constraint: \1/p' "$cfile" >&2
  log "installing ${reqs[*]}"
  "$vpy" -m pip install -q -c "$cfile" "${reqs[@]}" >&2
  log "building ${cholmod[*]} from source against the system's SuiteSparse"
  if ! "$vpy" -m pip install -q -c "$cfile" "${cholmod[@]}" >&2; then
    if [ "$kind" = oldest ]; then
      die "scikit-sparse at its floor did not build"
    fi
    printf '\n%s\n%s\n%s\n\n' \
      '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!' \
      "!!  scikit-sparse did not build for Python $want: this environment has the SciPy backend only" \
      '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!' >&2
  fi
  rm -f "$checkout_stamp"
  echo "$key" >"$key_file"
else
  log "reusing $venv"
fi

# -- this checkout ----------------------------------------------------------------------------------
# The stamp records which checkout is installed (DIR is shared between checkouts) and must be newer
# than pyproject.toml.
if [ -f "$checkout_stamp" ] && [ "$(cat "$checkout_stamp")" = "$root" ] \
  && [ "$checkout_stamp" -nt "$root/pyproject.toml" ]; then
  log "this checkout is already installed there"
else
  log "installing this checkout (editable, --no-deps) into $venv"
  # setuptools' warnings about the editable mode say nothing here: shown only on failure.
  if ! "$vpy" -m pip install -q --no-deps -e "$root" >"$venv/editable-install.log" 2>&1; then
    cat "$venv/editable-install.log" >&2
    die "installing $root failed"
  fi
  echo "$root" >"$checkout_stamp"
fi
"$vpy" - >&2 <<'EOF'
import importlib.metadata as md
import platform

def version(name):
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return "-"

print("==> Python", platform.python_version(), "|", ", ".join(
    f"{name} {version(name)}" for name in ("numpy", "scipy", "scikit-sparse", "dask")))
EOF
echo "$vpy"
