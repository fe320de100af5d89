#!/usr/bin/env bash
# speadcast quick start (Debian 12, as root):
#   ./quickstart.sh demo   install what is missing, build, run the demo stream end to end
#   ./quickstart.sh test   install what is missing, build, run every test suite:
#                          -Werror build + ctest, Debian packages built and inspected,
#                          ASan/UBSan build + ctest,
#                          ThreadSanitizer build of the stream stress tests, a short fuzz run
#                          of each libFuzzer target (decoder, config); as root the network
#                          namespace tests (ctest label netns) run in the normal build
set -euo pipefail
cd "$(dirname "$0")"
mode=${1:-}
case "$mode" in
  demo|test) ;;
  *) echo "usage: $0 demo|test" >&2; exit 2 ;;
esac

jobs=$(nproc 2>/dev/null || echo 2)
# What the demo needs: a compiler, CMake, the library's dependencies and the RDMA headers
# the ibverbs plugin builds against.
packages=(build-essential cmake pkg-config libjansson-dev libltdl-dev libibverbs-dev)
# What only the test suites need (each added by the stage that uses it).
test_packages=(libcriterion-dev clang libclang-rt-14-dev llvm-14 python3 python3-jsonschema
               tshark iproute2)
# Python package: Debian's build and test tools (no Python package index is used).
test_packages+=(python3-dev python3-setuptools python3-numpy python3-pytest python3-pytest-asyncio
                python3-pip python3-venv)
# AF_XDP plugin.
test_packages+=(libxdp-dev libbpf-dev)
# Debian packages built and inspected by the packaging test; man-db opens the installed
# man pages in the install tests.
test_packages+=(dpkg-dev file man-db)
if [ "$mode" = test ]; then
  packages+=("${test_packages[@]}")
fi

install_missing() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
}

build() { # build DIR [cmake args...]
  local dir=$1; shift
  cmake -S . -B "$dir" -DSPC_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j"$jobs"
}

install_missing

if [ "$mode" = demo ]; then
  build build -DSPC_BUILD_TESTS=OFF
  echo "== demo: speadcast-send --verify into speadcast-recv over loopback UDP"
  exec bash tools/demo.sh build
fi

echo "== normal build (-Wall -Wextra -Werror)"
build build -DSPC_BUILD_TESTS=ON
(cd build && ctest --output-on-failure -j"$jobs")

# The Debian packages, built in a throwaway directory and inspected (README "Debian
# packages"); the checkout's build directories are not touched.
echo "== Debian packages (cpack -G DEB in a throwaway directory, inspected with dpkg-deb)"
bash tests/packaging/deb.sh . "$jobs"

echo "== AddressSanitizer + UndefinedBehaviorSanitizer build"
build build-asan -DSPC_SANITIZE=address,undefined -DSPC_BUILD_BENCH=OFF
# Every ctest test of the normal build runs here too. Criterion runs each test in a child
# whose leak report does not change the verdict, so the log is also searched for any
# sanitizer report.
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  LSAN_OPTIONS=suppressions="$PWD/../tests/lsan.supp" \
  ctest --output-on-failure -j"$jobs")
if grep -nE "ERROR: (Address|Leak)Sanitizer|runtime error:" build-asan/Testing/Temporary/LastTest.log; then
  echo "sanitizer reports found (above)" >&2
  exit 1
fi

if [ -f tests/CMakeLists.txt ] && grep -q SPC_TSAN_TESTS tests/CMakeLists.txt; then
  echo "== ThreadSanitizer build (stream stress program and epoll example)"
  build build-tsan -DSPC_SANITIZE=thread -DSPC_BUILD_BENCH=OFF
  (cd build-tsan && TSAN_OPTIONS=halt_on_error=1 ctest --output-on-failure -L tsan)
  if grep -n "WARNING: ThreadSanitizer" build-tsan/Testing/Temporary/LastTest.log; then
    echo "ThreadSanitizer reports found (above)" >&2
    exit 1
  fi
fi

if [ -f tests/fuzz/run.sh ]; then
  echo "== fuzzing the decoder and the JSON config (${SPC_FUZZ_SECONDS:-60} s each)"
  CC=clang build build-fuzz -DSPC_BUILD_FUZZ=ON -DSPC_BUILD_TESTS=ON -DSPC_BUILD_BENCH=OFF
  bash tests/fuzz/run.sh build-fuzz "${SPC_FUZZ_SECONDS:-60}"
fi
echo "== all test stages passed"
