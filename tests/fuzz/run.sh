#!/bin/sh
# Runs the decoder fuzzer for SECONDS over a scratch copy of the seed corpus.
# Usage: tests/fuzz/run.sh BUILD_DIR SECONDS
# BUILD_DIR must be configured with CC=clang -DSPC_BUILD_FUZZ=ON (and built). Exits
# non-zero if the fuzzer finds a crash, leak or timeout; the reproducer is kept in
# BUILD_DIR/fuzz-artifacts/ (add it to corpus/decoder/ once fixed).
set -u
if [ $# -ne 2 ]; then
    echo "usage: $0 BUILD_DIR SECONDS" >&2
    exit 2
fi
build=$1
secs=$2
fuzzer=$build/tests/fuzz/fuzz_decoder
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -x "$fuzzer" ]; then
    echo "$0: $fuzzer not found: configure with CC=clang cmake -DSPC_BUILD_FUZZ=ON and build" >&2
    exit 2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
cp -R "$here/corpus/decoder" "$work/corpus"
artifacts=$(cd "$build" && pwd)/fuzz-artifacts
mkdir -p "$artifacts"
"$fuzzer" -max_len=9000 -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$work/corpus"
rc=$?
if [ $rc -ne 0 ]; then
    echo "$0: fuzz_decoder failed (exit $rc); reproducers in $artifacts/" >&2
    exit 1
fi
echo "$0: no crash in $secs s"
