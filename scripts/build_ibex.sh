#!/usr/bin/env bash
# Build and install dReal's fork of IBEX (libibex.so), which the `dreal` Python
# wheel needs at import time. IBEX is not on any package registry, so smtquant's
# optional dReal backend asks users to build it once with this script.
#
# Debian/Ubuntu prerequisites (as root):
#   apt-get install -y g++ git python3 pkg-config bison flex \
#                      coinor-libclp-dev libnlopt0 liblapack3 libblas3
set -euo pipefail

BRANCH="ibex-2.7.4_11"
REPO_URL="https://github.com/dreal-deps/ibex-lib"

usage() {
    cat <<EOF
usage: $(basename "$0") [--prefix DIR] [--src DIR] [--jobs N]

Build dReal's IBEX ($REPO_URL, branch $BRANCH) and install it under DIR.

  --prefix DIR   install location (default: \$HOME/.local/ibex-dreal)
  --src DIR      use an existing checkout of that branch instead of cloning one
  --jobs N       parallel build jobs (default: number of CPUs)
  -h, --help     show this help

Environment: PYTHON (default python3) runs IBEX's waf build tool.
EOF
}

die() { echo "build_ibex.sh: $*" >&2; exit 2; }

PREFIX="${HOME}/.local/ibex-dreal"
SRC=""
JOBS="$(nproc 2>/dev/null || echo 2)"
PYTHON="${PYTHON:-python3}"

while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; PREFIX="$2"; shift 2 ;;
        --prefix=*) PREFIX="${1#*=}"; shift ;;
        --src) [ $# -ge 2 ] || die "--src needs a directory"; SRC="$2"; shift 2 ;;
        --src=*) SRC="${1#*=}"; shift ;;
        --jobs|-j) [ $# -ge 2 ] || die "--jobs needs a number"; JOBS="$2"; shift 2 ;;
        --jobs=*) JOBS="${1#*=}"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

# Tools the build needs; CLP must be visible to pkg-config (coinor-libclp-dev).
for tool in "$PYTHON" pkg-config bison flex g++; do
    command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (see the prerequisites at the top of this script)"
done
pkg-config --exists clp || die "pkg-config cannot find CLP: install coinor-libclp-dev"

mkdir -p "$PREFIX"
PREFIX="$(cd "$PREFIX" && pwd)"   # waf wants an absolute prefix

if [ -z "$SRC" ]; then
    command -v git >/dev/null 2>&1 || die "'git' not found (or pass --src DIR)"
    SRC="$(mktemp -d "${TMPDIR:-/tmp}/ibex-dreal-src.XXXXXX")"
    echo ">> cloning $REPO_URL ($BRANCH) into $SRC"
    git clone --depth 1 --branch "$BRANCH" "$REPO_URL" "$SRC"
fi
[ -f "$SRC/waf" ] && [ -f "$SRC/wscript" ] || die "$SRC does not look like an IBEX checkout (no waf/wscript)"
cd "$SRC"

# waf is a self-extracting script written for Python 2.7: running it once unpacks
# its library into .waf3-*/waflib. That library opens files with mode 'rU', which
# Python 3.11 removed; 'r' behaves the same there (universal newlines by default).
"$PYTHON" ./waf --version >/dev/null
WAFLIB_DIRS=(.waf3-*/waflib)
[ -d "${WAFLIB_DIRS[0]}" ] || die "waf did not unpack its library in $SRC"
find "${WAFLIB_DIRS[@]}" -name '*.py' -exec sed -i "s/'rU'/'r'/g" {} +

# Shared library, with the optimizer plugin (the dreal wheel links against
# ibex::LoupFinderInHC4 from it), filib intervals, and the system's CLP for LPs.
echo ">> configuring (prefix $PREFIX)"
"$PYTHON" ./waf configure --enable-shared --with-optim --lp-lib=clp \
    --interval-lib=filib --prefix="$PREFIX"
echo ">> building with $JOBS jobs (several minutes)"
"$PYTHON" ./waf build -j "$JOBS"
echo ">> installing"
"$PYTHON" ./waf install

[ -e "$PREFIX/lib/libibex.so" ] || die "install finished but $PREFIX/lib/libibex.so is missing"

cat <<EOF

IBEX for dReal is installed in $PREFIX. To use smtquant's dReal backend:

  export LD_LIBRARY_PATH=$PREFIX/lib:\$LD_LIBRARY_PATH
  pip install dreal
EOF
