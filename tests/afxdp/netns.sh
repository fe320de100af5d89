#!/usr/bin/env bash
# The afxdp transport over a veth pair between two network namespaces that this script
# creates and removes (tests/afxdp/netns-lib.sh): speadcast-send with the afxdp config
# in one namespace, speadcast-recv --verify (kernel UDP) in the other.
#
#   tests/afxdp/netns.sh BUILD_DIR
#
# Exit 0 all passed, 1 a failure, 77 skipped (not root, no namespaces, no plugin, no
# AF_XDP in the kernel). Every process runs under timeout(1) or its own --timeout.
set -u
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
. "$here/netns-lib.sh"
T="$build/tools"
PY=/usr/bin/python3
afx_require "$build"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/speadcast-afxdp.XXXXXX") || exit 1
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null; kill "$p" 2>/dev/null; done
  afx_cleanup
  [ -n "${AFX_KEEP_TMP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }
inA() { ip netns exec "$AFX_A" "$@"; }
inB() { ip netns exec "$AFX_B" "$@"; }

afx_make_pair 9000 || { echo "cannot create the veth pair" >&2; exit 1; }

# start_recv NAME ARGS...: speadcast-recv --verify on AFX_IP_B:8888 in B; $rpid is the
# receiver itself (ip execs it; its own --timeout bounds it), so signals reach it.
start_recv() {
  local name=$1; shift
  rm -f "$tmp/$name.ready"
  ip netns exec "$AFX_B" "$T/speadcast-recv" --verify --quiet --timeout 30 --ready-file "$tmp/$name.ready" \
    "$@" "$AFX_IP_B:8888" >"$tmp/$name.recv" 2>&1 &
  rpid=$!
  pids+=("$rpid")
  for _ in $(seq 100); do [ -s "$tmp/$name.ready" ] && break; sleep 0.1; done
}

# send_verified NAME PACKET HEAPS EXTRA_OPTIONS: one verified transfer through afxdp.
send_verified() {
  local name=$1 packet=$2 heaps=$3 extra=$4
  afx_config "$tmp/$name.json" "$packet" "$extra"
  start_recv "$name"
  SPEADCAST_LOG_LEVEL=info inA timeout 60 "$T/speadcast-send" --config "$tmp/$name.json" --verify \
    --heaps "$heaps" --heap-size 262144 --packet "$packet" --rate 0.5 >"$tmp/$name.send" 2>&1
  local src=$?
  wait "$rpid"
  local rrc=$?
  if [ "$src" -eq 0 ] && [ "$rrc" -eq 0 ] && grep -q "Verify: OK ($heaps heaps" "$tmp/$name.recv"; then
    pass "$name: $heaps heaps verified ($(grep -o 'AF_XDP [a-z-]* mode[^"]*' "$tmp/$name.send" | head -1))"
  else
    fail "$name: sender exit $src, receiver exit $rrc"; cat "$tmp/$name.send" "$tmp/$name.recv" >&2
  fi
}

# A kernel without AF_XDP skips the whole script rather than failing every case.
afx_probe_xdp "$build"

# ---------------------------------------------------------------- delivery
send_verified copy_1472 1472 100 ', "mode": "copy"'
send_verified copy_8972_multibuffer 8972 100 ', "mode": "copy", "frame_size": 4096'
send_verified copy_no_need_wakeup 1472 50 ', "mode": "copy", "need_wakeup": false, "frame_count": 64'
send_verified auto_1472 1472 50 ''
grep -q "AF_XDP copy mode" "$tmp/auto_1472.send" && echo "note: veth offers no zero-copy AF_XDP: auto used copy mode"

# zero-copy: veth has no zero-copy AF_XDP; then open must refuse it cleanly.
afx_config "$tmp/zc.json" 1472 ', "mode": "zerocopy"'
start_recv zc
inA timeout 30 "$T/speadcast-send" --config "$tmp/zc.json" --verify --heaps 20 --heap-size 65536 >"$tmp/zc.send" 2>&1
zrc=$?
if [ "$zrc" -eq 0 ]; then
  wait "$rpid" && pass "zerocopy: delivered in zero-copy mode" || fail "zerocopy: sent but not verified"
else
  kill "$rpid" 2>/dev/null; wait "$rpid" 2>/dev/null
  grep -q "zero-copy mode not supported by the driver" "$tmp/zc.send" &&
    pass "zerocopy: refused cleanly (veth has no zero-copy AF_XDP)" ||
    { fail "zerocopy: unexpected failure"; cat "$tmp/zc.send" >&2; }
fi

# ---------------------------------------------------------------- the same bytes as pcap
# Same heaps, same addresses: the pcap plugin's file and the frames captured on vxb
# must be identical (IPv4 ids count from 0 in both).
macA=$(inA ip -o link show vxa | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
macB=$(inB ip -o link show vxb | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
common="\"endpoints\": [\"$AFX_IP_B:8888\"], \"source_address\": \"$AFX_IP_A\", \"source_port\": 40000,
  \"source_mac\": \"$macA\", \"destination_mac\": \"$macB\", \"ttl\": 17"
for size in 1472 8972; do
  cat >"$tmp/pcap$size.json" <<JSON
{"transport": "pcap", "stream": {"max_packet_size": $size},
 "options": {"path": "$tmp/ref$size.pcap", $common}}
JSON
  cat >"$tmp/afx$size.json" <<JSON
{"transport": "afxdp", "stream": {"max_packet_size": $size},
 "options": {"interface": "vxa", "mode": "copy", $common}}
JSON
  args=(--verify --heaps 20 --heap-size 100000 --packet "$size")
  timeout 30 "$T/speadcast-send" --config "$tmp/pcap$size.json" "${args[@]}" >/dev/null 2>&1 ||
    fail "pcap reference $size: speadcast-send failed"
  n=$($PY -c "import sys; sys.path.insert(0, '$here'); import frames; print(len(frames.read_pcap('$tmp/ref$size.pcap')))")
  rm -f "$tmp/cap.ready"
  inB timeout 60 $PY "$here/frames.py" capture vxb 8888 "$n" 20 "$tmp/cap$size.pcap" "$tmp/cap.ready" \
    >"$tmp/cap$size.out" 2>&1 &
  cpid=$!
  pids+=("$cpid")
  for _ in $(seq 100); do [ -e "$tmp/cap.ready" ] && break; sleep 0.1; done
  inA timeout 30 "$T/speadcast-send" --config "$tmp/afx$size.json" "${args[@]}" --rate 0.5 >"$tmp/afx$size.send" 2>&1 ||
    fail "afxdp $size: speadcast-send failed: $(cat "$tmp/afx$size.send")"
  if wait "$cpid" && $PY "$here/frames.py" compare "$tmp/ref$size.pcap" "$tmp/cap$size.pcap" >"$tmp/cmp" 2>&1; then
    pass "frames_equal_pcap_$size: $(cat "$tmp/cmp")"
  else
    fail "frames_equal_pcap_$size: $(cat "$tmp/cap$size.out" "$tmp/cmp")"
  fi
done

# ---------------------------------------------------------------- the stack undisturbed
# While an afxdp socket sends on vxa, no XDP program is attached to vxa and kernel UDP
# from B to A is received in A. The afxdp stream is endless until SIGINT ends it.
afx_config "$tmp/long.json" 1472 ', "mode": "copy"'
# (Not through inA: $! must be the process that gets the SIGINT, not a subshell.)
ip netns exec "$AFX_A" timeout 60 "$T/speadcast-send" --config "$tmp/long.json" --heaps -1 --heap-size 65536 --rate 0.1 \
  >"$tmp/long.send" 2>&1 &
lpid=$!
pids+=("$lpid")
sleep 0.5
if inA ip -d link show vxa | grep -q "prog/xdp\|xdpgeneric\|xdpdrv\| xdp "; then
  fail "stack_undisturbed: an XDP program is attached to vxa: $(inA ip -d link show vxa)"
else
  rm -f "$tmp/back.ready"
  inA timeout 60 "$T/speadcast-recv" --verify --quiet --timeout 30 --ready-file "$tmp/back.ready" \
    "$AFX_IP_A:9999" >"$tmp/back.recv" 2>&1 &
  bpid=$!
  pids+=("$bpid")
  for _ in $(seq 100); do [ -s "$tmp/back.ready" ] && break; sleep 0.1; done
  inB timeout 30 "$T/speadcast-send" --verify --heaps 50 --heap-size 65536 --rate 1 "$AFX_IP_A:9999" \
    >"$tmp/back.send" 2>&1
  if wait "$bpid" && kill -0 "$lpid" 2>/dev/null; then
    pass "stack_undisturbed: no XDP program on vxa; kernel UDP B->A verified while afxdp sent"
  else
    fail "stack_undisturbed: $(cat "$tmp/back.recv" "$tmp/back.send")"
  fi
fi
# SIGINT ends a sender cleanly with exit 130 (128 + SIGINT) and a summary of what was sent.
kill -INT "$lpid"
wait "$lpid"
lrc=$?
if [ "$lrc" -ne 130 ] || ! grep -q "^Interrupted: .* 0 failed, 0 aborted" "$tmp/long.send"; then
  fail "stack_undisturbed: the afxdp sender failed (exit $lrc): $(cat "$tmp/long.send")"
fi

# ---------------------------------------------------------------- failures
# expect_open_error NAME TEXT PACKET EXTRA [IFACE]: open fails, naming the problem.
expect_open_error() {
  local name=$1 text=$2 packet=$3 extra=$4 ifn=${5:-vxa}
  cat >"$tmp/$name.json" <<JSON
{"transport": "afxdp", "stream": {"max_packet_size": $packet},
 "options": {"interface": "$ifn", "endpoints": ["$AFX_IP_B:8888"]$extra}}
JSON
  inA timeout 30 "$T/speadcast-send" --config "$tmp/$name.json" --heaps 1 --heap-size 64 >"$tmp/$name.out" 2>&1
  local rc=$?
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -q "$text" "$tmp/$name.out"; then
    pass "$name: $(grep -o "open failed.*" "$tmp/$name.out" | head -1)"
  else
    fail "$name: exit $rc, wanted an error containing \"$text\""; cat "$tmp/$name.out" >&2
  fi
}
expect_open_error missing_interface 'no such interface "nosuch0"' 1472 '' nosuch0
expect_open_error bad_queue 'queue_id 7 out of range: vxa has 1 queues' 1472 ', "queue_id": 7'
expect_open_error frame_too_small 'frame_size 2048 is too small for max_packet_size 60000' 60000 \
  ', "frame_size": 2048'
inA ip link add vxa1500 type veth peer name vxa1500p && inA ip link set vxa1500 up
expect_open_error mtu_too_small 'needs an IPv4 MTU of 9028, but vxa1500 has MTU 1500' 9000 \
  ', "source_address": "$AFX_IP_A", "destination_mac": "02:00:00:00:00:02"' vxa1500
expect_open_error not_power_of_two 'must be powers of two' 1472 ', "frame_count": 1000'
if command -v setpriv >/dev/null; then
  afx_config "$tmp/noperm.json" 1472 ''
  chmod 755 "$tmp" && chmod 644 "$tmp/noperm.json"
  inA timeout 30 setpriv --reuid 65534 --regid 65534 --clear-groups --inh-caps=-all \
    "$T/speadcast-send" --config "$tmp/noperm.json" --heaps 1 --heap-size 64 >"$tmp/noperm.out" 2>&1
  [ $? -ne 0 ] && grep -q "no permission to open an AF_XDP socket" "$tmp/noperm.out" &&
    pass "no_permission: $(grep -o 'no permission[^(]*' "$tmp/noperm.out" | head -1)" ||
    { fail "no_permission"; cat "$tmp/noperm.out" >&2; }
fi

# Unprivileged but with CAP_NET_RAW: a UMEM within RLIMIT_MEMLOCK opens and sends; one
# beyond it is refused naming the limit.
if command -v setpriv >/dev/null && command -v prlimit >/dev/null; then
  for fc in 64 2048; do
    afx_config "$tmp/caps$fc.json" 1472 ", \"mode\": \"copy\", \"frame_count\": $fc"
    chmod 644 "$tmp/caps$fc.json"
    inA prlimit --memlock=1048576:1048576 setpriv --reuid 65534 --regid 65534 --clear-groups \
      --inh-caps=-all,+net_raw --ambient-caps=+net_raw \
      timeout 30 "$T/speadcast-send" --config "$tmp/caps$fc.json" --heaps 2 --heap-size 65536 \
      >"$tmp/caps$fc.out" 2>&1
    echo "exit $?" >>"$tmp/caps$fc.out"
  done
  grep -q "^exit 0" "$tmp/caps64.out" &&
    pass "net_raw_only: 64 slots (256 KiB) sent with CAP_NET_RAW alone" ||
    { fail "net_raw_only"; cat "$tmp/caps64.out" >&2; }
  grep -q "exceeds the locked-memory limit" "$tmp/caps2048.out" && ! grep -q "^exit 0" "$tmp/caps2048.out" &&
    pass "memlock_limit: $(grep -o 'the UMEM of [0-9]* bytes exceeds[^(]*' "$tmp/caps2048.out")" ||
    { fail "memlock_limit"; cat "$tmp/caps2048.out" >&2; }
fi

# A receiver that is stopped (SIGSTOP) does not hold the sender up: UDP has no back
# pressure, so every heap is handed to the wire and the sender ends on its own.
start_recv stopped_recv
kill -STOP "$rpid"
afx_config "$tmp/sr.json" 1472 ', "mode": "copy"'
inA timeout 30 "$T/speadcast-send" --config "$tmp/sr.json" --heaps 200 --heap-size 65536 >"$tmp/sr.send" 2>&1
src=$?
kill -CONT "$rpid"; kill "$rpid" 2>/dev/null; wait "$rpid" 2>/dev/null
[ "$src" -eq 0 ] && pass "stopped_receiver: the sender finished (exit 0)" ||
  { fail "stopped_receiver: exit $src"; cat "$tmp/sr.send" >&2; }

# The peer's end of the pair goes down while a stream sends: vxa loses its carrier; the
# heaps from then on fail with a clear error, within the time bound, and the sender
# says so.
afx_config "$tmp/down.json" 1472 ', "mode": "copy"'
inA timeout 30 "$T/speadcast-send" --config "$tmp/down.json" --heaps 400 --heap-size 65536 --rate 0.1 \
  >"$tmp/down.out" 2>&1 &
dpid=$!
pids+=("$dpid")
sleep 0.5
inB ip link set vxb down
wait "$dpid"
drc=$?
if [ "$drc" -ne 0 ] && [ "$drc" -ne 124 ] && grep -q "no carrier" "$tmp/down.out"; then
  pass "stopped_peer: exit $drc: $(grep -m1 -o "failed: .*" "$tmp/down.out")"
else
  fail "stopped_peer: exit $drc"; cat "$tmp/down.out" >&2
fi
inB ip link set vxb up

echo "afxdp netns: $failures failure(s)"
[ "$failures" -eq 0 ]
