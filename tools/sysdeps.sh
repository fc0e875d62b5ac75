#!/usr/bin/env bash
# Makes sure the system packages needed to set up a development environment are present,
# installing the missing ones with apt-get (through sudo when not root) on Debian/Ubuntu.
#
# usage: tools/sysdeps.sh [--venv] [--build] [--compiler] [--cxx]
#   --venv      $PYTHON can create virtual environments (ensurepip; Debian's python3.X-venv)
#   --compiler  a C compiler and Python.h for $PYTHON (to build extension modules)
#   --cxx       a C++ compiler too (scikit-sparse 0.5 has C++ extension modules)
#   --build     what building scikit-sparse 0.4.x from source needs: --compiler and the
#               SuiteSparse headers (libsuitesparse-dev, checked as $SUITESPARSE_INCLUDE/cholmod.h)
# environment: PYTHON (default python3), SUITESPARSE_INCLUDE (default /usr/include/suitesparse)
# Does nothing (and prints nothing) when everything is already there.
set -euo pipefail

PYTHON=${PYTHON:-python3}
SUITESPARSE_INCLUDE=${SUITESPARSE_INCLUDE:-/usr/include/suitesparse}
want_venv=0
want_build=0
want_compiler=0
want_cxx=0
for arg in "$@"; do
  case $arg in
    --venv) want_venv=1 ;;
    --build) want_build=1 want_compiler=1 ;;
    --compiler) want_compiler=1 ;;
    --cxx) want_compiler=1 want_cxx=1 ;;
    *) echo "usage: $0 [--venv] [--build] [--compiler] [--cxx]" >&2; exit 2 ;;
  esac
done

die() { echo "tools/sysdeps.sh: error: $*" >&2; exit 1; }

command -v "$PYTHON" >/dev/null 2>&1 || die "'$PYTHON' not found (set PYTHON=/path/to/python3.10+)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || die "woodbury-sparse needs Python >= 3.10; '$PYTHON' is $("$PYTHON" -V 2>&1)"
pyver=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
# Only a Python that Debian itself installed can be fixed with apt packages.
debian_python=0
"$PYTHON" -c 'import sys; sys.exit(sys.base_prefix != "/usr")' && debian_python=1

pkgs=()
problems=()
need_python_pkg() {  # $1 = package, $2 = what is missing
  if ((debian_python)); then pkgs+=("$1"); else problems+=("$2 for $PYTHON (not Debian's own Python)"); fi
}

if ((want_venv)) && ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  need_python_pkg "python$pyver-venv" "ensurepip/venv"
fi
if ((want_build)); then
  [ -f "$SUITESPARSE_INCLUDE/cholmod.h" ] || pkgs+=(libsuitesparse-dev)
fi
if ((want_compiler)); then
  if ! command -v cc >/dev/null 2>&1 && ! command -v gcc >/dev/null 2>&1; then
    pkgs+=(gcc libc6-dev)
  elif [ ! -f /usr/include/stdio.h ]; then
    pkgs+=(libc6-dev)
  fi
  py_include=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  [ -f "$py_include/Python.h" ] || need_python_pkg "python$pyver-dev" "Python.h"
fi
if ((want_cxx)) && ! command -v c++ >/dev/null 2>&1 && ! command -v g++ >/dev/null 2>&1; then
  pkgs+=(g++)
fi

((${#problems[@]} == 0)) || die "cannot fix automatically: ${problems[*]}"
((${#pkgs[@]} > 0)) || exit 0

echo "==> missing system packages: ${pkgs[*]}"
command -v apt-get >/dev/null 2>&1 \
  || die "no apt-get on this system; install the equivalent of: ${pkgs[*]}"
sudo=()
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || die "not root and no sudo; as root run: apt-get install ${pkgs[*]}"
  sudo=(sudo)
fi
# (sudo resets the environment: hand DEBIAN_FRONTEND over explicitly)
apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get)
echo "==> ${sudo[*]:+${sudo[*]} }apt-get update && apt-get install -y ${pkgs[*]}"
"${apt[@]}" update
"${apt[@]}" install -y "${pkgs[@]}"

if ((want_build)) && [ ! -f "$SUITESPARSE_INCLUDE/cholmod.h" ]; then
  die "$SUITESPARSE_INCLUDE/cholmod.h is still missing after installing libsuitesparse-dev"
fi
