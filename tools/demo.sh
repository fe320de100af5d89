#!/usr/bin/env bash
# The README's main job: a real SPEAD stream over loopback UDP.
#
#   tools/demo.sh [BUILD_DIR]        (default: build)
#
# Starts speadcast-recv on a free loopback UDP port, sends it a few hundred heaps with
# speadcast-send --verify through the udp transport plugin, prints both summaries, and
# exits non-zero if any heap was lost or corrupt (or anything failed). Every step is
# bounded in time. SPEADCAST_DEMO_HEAPS, _HEAP_SIZE and _RATE (Gb/s) change the stream.
set -u

build=${1:-build}
recv="$build/tools/speadcast-recv"
send="$build/tools/speadcast-send"
heaps=${SPEADCAST_DEMO_HEAPS:-300}
heap_size=${SPEADCAST_DEMO_HEAP_SIZE:-65536}
rate=${SPEADCAST_DEMO_RATE:-0.5}

for tool in "$recv" "$send"; do
  if [ ! -x "$tool" ]; then
    echo "demo: $tool not found: build first (cmake -S . -B $build && cmake --build $build)" >&2
    exit 2
  fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/speadcast-demo.XXXXXX") || exit 1
rpid=
cleanup() {
  if [ -n "$rpid" ] && kill -0 "$rpid" 2>/dev/null; then
    kill "$rpid" 2>/dev/null
    wait "$rpid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
show() { local tool=${1##*/}; shift; echo "== $tool $*"; }

# The receiver picks a free port (0) and writes the address it bound to the ready file.
# --timeout and --idle-timeout bound it even if the sender never comes or loses the
# stop heap.
recv_cmd=("$recv" --verify --quiet --timeout 120 --idle-timeout 5 --ready-file "$tmp/ready"
          127.0.0.1:0)
show "${recv_cmd[@]}"
"${recv_cmd[@]}" >"$tmp/recv.out" 2>"$tmp/recv.err" &
rpid=$!
for _ in $(seq 100); do
  [ -s "$tmp/ready" ] && break
  kill -0 "$rpid" 2>/dev/null || break
  sleep 0.1
done
if [ ! -s "$tmp/ready" ]; then
  echo "demo: speadcast-recv did not start:" >&2
  cat "$tmp/recv.err" >&2
  exit 1
fi
addr=$(head -n 1 "$tmp/ready")

send_cmd=("$send" --verify --heaps "$heaps" --heap-size "$heap_size" --rate "$rate" "$addr")
show "${send_cmd[@]}"
timeout 120 "${send_cmd[@]}"
send_rc=$?

wait "$rpid"
recv_rc=$?
rpid=
echo "== speadcast-recv summary"
cat "$tmp/recv.out"
[ -s "$tmp/recv.err" ] && cat "$tmp/recv.err" >&2

if [ "$send_rc" -eq 0 ] && [ "$recv_rc" -eq 0 ]; then
  echo "demo: OK: $heaps heaps of $heap_size bytes sent over UDP to $addr, all received and verified"
  exit 0
fi
echo "demo: FAILED (speadcast-send exit $send_rc, speadcast-recv exit $recv_rc)" >&2
exit 1
