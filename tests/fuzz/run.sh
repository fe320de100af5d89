#!/bin/sh
# Runs the libFuzzer targets, each for SECONDS over a scratch copy of its seed corpus:
# fuzz_decoder (packets, corpus/decoder) and fuzz_config (JSON configs, corpus/config).
# Usage: tests/fuzz/run.sh BUILD_DIR SECONDS [TARGET...]   (default: every target)
# BUILD_DIR must be configured with CC=clang -DSPC_BUILD_FUZZ=ON (and built). Exits
# non-zero if a fuzzer finds a crash, leak or timeout; the reproducer is kept in
# BUILD_DIR/fuzz-artifacts/ (add it to corpus/<name>/ once fixed). Stack traces are
# symbolized with llvm-symbolizer (llvm-14), found on PATH or in /usr/lib/llvm-14/bin.
set -u
if [ $# -lt 2 ]; then
    echo "usage: $0 BUILD_DIR SECONDS [decoder|config]..." >&2
    exit 2
fi
build=$1
secs=$2
shift 2
targets=${*:-decoder config}
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ]; then
    for s in "$(command -v llvm-symbolizer 2>/dev/null)" /usr/lib/llvm-14/bin/llvm-symbolizer \
             "$(command -v llvm-symbolizer-14 2>/dev/null)"; do
        if [ -n "$s" ] && [ -x "$s" ]; then
            ASAN_SYMBOLIZER_PATH=$s
            break
        fi
    done
fi
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ]; then
    echo "$0: llvm-symbolizer not found (install llvm-14): crash reports would show no names" >&2
    exit 2
fi
export ASAN_SYMBOLIZER_PATH
export ASAN_OPTIONS="${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}symbolize=1"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-}${UBSAN_OPTIONS:+:}symbolize=1:print_stacktrace=1"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
artifacts=$(cd "$build" && pwd)/fuzz-artifacts
mkdir -p "$artifacts"
status=0
for name in $targets; do
    fuzzer=$build/tests/fuzz/fuzz_$name
    if [ ! -x "$fuzzer" ]; then
        echo "$0: $fuzzer not found: configure with CC=clang cmake -DSPC_BUILD_FUZZ=ON and build" >&2
        exit 2
    fi
    case $name in
        decoder) max_len=9000 ;;
        *) max_len=4096 ;;
    esac
    cp -R "$here/corpus/$name" "$work/$name"
    echo "== fuzz_$name for $secs s"
    "$fuzzer" -max_len=$max_len -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$artifacts/$name-" "$work/$name"
    rc=$?
    if [ $rc -ne 0 ]; then
        echo "$0: fuzz_$name failed (exit $rc); reproducers in $artifacts/" >&2
        status=1
    else
        echo "$0: fuzz_$name: no crash in $secs s"
    fi
done
exit $status
