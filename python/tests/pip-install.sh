#!/bin/sh
# pip install . into a fresh venv (Debian's python with --system-site-packages, offline,
# --no-build-isolation), then the pytest suite against the installed package only.
# Usage: pip-install.sh PYTHON SOURCE_DIR
set -eu
python=$1
src=$2
# Without python3-venv (ensurepip) there is nothing to test: ctest reports a skip.
"$python" -c 'import ensurepip, venv' 2>/dev/null || { echo "python3-venv is not installed"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
"$python" -m venv --system-site-packages "$tmp/venv"
"$tmp/venv/bin/pip" install --quiet --no-build-isolation --no-index --no-deps "$src"
cd "$tmp"
# The installed package must carry its library and plugins: nothing else is on the path.
"$tmp/venv/bin/python" -c 'import speadcast, sys; assert speadcast.__file__.startswith(sys.prefix), speadcast.__file__; assert all(p["result"] == "loaded" for p in speadcast.plugins()), speadcast.plugins()'
SPC_SOURCE_DIR=$src "$tmp/venv/bin/python" -m pytest -q -p no:cacheprovider "$src/python/tests"
