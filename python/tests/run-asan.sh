#!/bin/sh
# Runs the pytest suite against AddressSanitizer + UBSan builds of libspeadcast, its
# plugins and the extension module, in Debian's (uninstrumented) python by preloading the
# sanitizer runtimes. By hand only: CI's sanitizer stages leave the package out.
# Usage: run-asan.sh [BUILD_DIR]   (default /tmp/speadcast-asan-py; configured if missing)
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-/tmp/speadcast-asan-py}
python=/usr/bin/python3
cmake -S "$src" -B "$build" -DSPC_SANITIZE=address,undefined -DSPC_BUILD_TESTS=OFF \
      -DSPC_BUILD_BENCH=OFF >/dev/null
plugins=$(sed -n 's/^ *speadcast_add_plugin( *\([A-Za-z0-9_-]*\).*/\1/p' "$src"/plugins/*/CMakeLists.txt)
cmake --build "$build" -j2 --target speadcast $plugins >/dev/null
stage=$build/python-asan
rm -rf "$stage"
mkdir -p "$stage"
cp -r "$src/python/speadcast" "$stage/"
suffix=$("$python" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
gcc -shared -fPIC -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
    -Wall -Wextra -Werror -D_GNU_SOURCE $("$python"-config --includes) -I"$src/core/include" \
    "$src"/python/src/*.c -L"$build/core" -lspeadcast -Wl,-rpath,"$build/core" \
    -o "$stage/speadcast/_speadcast$suffix"
# Python itself leaks at exit by design: leak detection off, every other report fatal.
LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" \
ASAN_OPTIONS=detect_leaks=0:halt_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
PYTHONPATH=$stage SPC_SOURCE_DIR=$src "$python" -m pytest -q -p no:cacheprovider "$src/python/tests"
