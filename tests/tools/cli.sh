#!/usr/bin/env bash
# The tools as processes: speadcast-recv and speadcast-send over loopback UDP and TCP with
# --verify and --json (parsed back with python3), exit statuses, SIGINT ending an endless
# stream cleanly, and speadcast-bench's sweep chart (parsed as XML).
#
#   tests/tools/cli.sh BUILD_DIR
#
# Every process runs under timeout(1) or with its own --timeout; every port is 0 (free).
set -u
build=$1
T="$build/tools"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/speadcast-cli.XXXXXX") || exit 1
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

# expect_exit CODE DESCRIPTION CMD...
expect_exit() {
  local want=$1 what=$2; shift 2
  timeout 30 "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  if [ "$rc" -eq "$want" ]; then pass "$what (exit $rc)"; else
    fail "$what: exit $rc, expected $want"; cat "$tmp/err" >&2; fi
}

# start_recv NAME ARGS...: a receiver in the background; its address in $addr.
start_recv() {
  local name=$1; shift
  rm -f "$tmp/$name.ready"
  timeout 60 "$T/speadcast-recv" --timeout 30 --ready-file "$tmp/$name.ready" "$@" \
    >"$tmp/$name.out" 2>"$tmp/$name.err" &
  rpid=$!
  pids+=("$rpid")
  for _ in $(seq 100); do
    [ -s "$tmp/$name.ready" ] && break
    sleep 0.1
  done
  addr=$(head -n 1 "$tmp/$name.ready" 2>/dev/null)
  [ -n "$addr" ] || fail "$name: receiver did not start: $(cat "$tmp/$name.err")"
}

# check_json FILE PYTHON-EXPRESSION...: each expression must hold for the parsed data:
# s = the sender object (file.send), r = the receiver summary, heaps = receiver lines.
check_json() {
  python3 - "$@" <<'EOF'
import json, sys
base = sys.argv[1]
s = json.load(open(base + ".send"))
lines = [json.loads(l) for l in open(base + ".out") if l.strip()]
r = [l for l in lines if l["type"] == "summary"]
assert len(r) == 1, "one summary line"
r = r[0]
heaps = [l for l in lines if l["type"] != "summary"]
for expr in sys.argv[2:]:
    if not eval(expr):
        print("FAIL: %s\n  sender: %s\n  summary: %s" % (expr, s, r))
        sys.exit(1)
EOF
}

# --- usage errors and help
expect_exit 2 "send without destination" "$T/speadcast-send"
expect_exit 2 "send bad --packet" "$T/speadcast-send" --packet 8 127.0.0.1:1
grep -q "below the minimum 56" "$tmp/err" || fail "send --packet 8 message: $(cat "$tmp/err")"
expect_exit 2 "recv without source" "$T/speadcast-recv"
expect_exit 2 "bench bad transport" "$T/speadcast-bench" --transport x
expect_exit 0 "send --help" "$T/speadcast-send" --help
grep -q -- "--burst-rate-ratio" "$tmp/out" || fail "send --help lacks --burst-rate-ratio"
expect_exit 0 "recv --help" "$T/speadcast-recv" --help
expect_exit 0 "bench --help" "$T/speadcast-bench" --help
expect_exit 1 "send to a closed TCP port" "$T/speadcast-send" --tcp --heaps 1 127.0.0.1:1
grep -q "cannot open the tcp stream" "$tmp/err" || fail "tcp refusal message: $(cat "$tmp/err")"

# --- UDP and TCP streams with --verify and --json
for proto in udp tcp; do
  flag=(); [ "$proto" = tcp ] && flag=(--tcp)
  start_recv "$proto" "${flag[@]}" --verify --json 127.0.0.1:0
  timeout 60 "$T/speadcast-send" "${flag[@]}" --verify --json --heaps 50 --heap-size 100000 \
    --items 2 --rate 0.2 "$addr" >"$tmp/$proto.send" 2>"$tmp/$proto.send.err"
  src=$?
  wait "$rpid"; rrc=$?
  if [ "$src" -ne 0 ] || [ "$rrc" -ne 0 ]; then
    fail "$proto stream: send exit $src, recv exit $rrc"; cat "$tmp/$proto.send.err" "$tmp/$proto.err" >&2
  elif check_json "$tmp/$proto" 's["data_heaps"] == 50' 's["stop_heaps"] == 1' \
      's["errors"] == 0' "s['transport'] == '$proto'" 'r["complete"] == 50' \
      'r["verified"] == 50' 'r["missing"] == 0 and r["incomplete"] == 0 and r["corrupt"] == 0' \
      'r["stops"] == 1 and r["ok"]' 'r["packets"] == s["packets"]' \
      'heaps[0]["descriptors"][1]["name"] == "Test item 1"' 'heaps[-1]["type"] == "stop"'; then
    pass "$proto stream verified, JSON parsed back"
  else
    fail "$proto stream JSON checks"
  fi
done

# --- SIGINT ends an endless stream cleanly: stop heap sent, everything verified
start_recv sigint --verify --quiet 127.0.0.1:0
timeout 60 "$T/speadcast-send" --verify --heap-size 65536 --rate 0.2 "$addr" \
  >"$tmp/sigint.send" 2>"$tmp/sigint.send.err" &
spid=$!
pids+=("$spid")
sleep 1
kill -INT "$spid"
wait "$spid"; src=$?
wait "$rpid"; rrc=$?
if [ "$src" -eq 130 ] && [ "$rrc" -eq 0 ] && grep -q "^Sent " "$tmp/sigint.send" &&
   grep -q "Verify: OK" "$tmp/sigint.out"; then
  pass "SIGINT: $(head -n 1 "$tmp/sigint.out")"
else
  fail "SIGINT: send exit $src, recv exit $rrc"; cat "$tmp/sigint.send" "$tmp/sigint.send.err" "$tmp/sigint.out" >&2
fi

# --- issue 12 defect 3: a TCP peer that never reads. The first SIGINT/SIGTERM ends the
# sender within its grace (2 s) with the summary and a non-zero status; a second signal
# ends it at once; --send-timeout fails the stuck heaps on its own.
python3 - "$tmp/stuck.port" <<'EOF' &
import os, socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.bind(("127.0.0.1", 0))
s.listen(8)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
conns = []
end = time.time() + 120
s.settimeout(0.5)
while time.time() < end:
    try:
        conns.append(s.accept()[0])  # accepted, never read
    except socket.timeout:
        pass
EOF
stuck_pid=$!
pids+=("$stuck_pid")
for _ in $(seq 100); do [ -s "$tmp/stuck.port" ] && break; sleep 0.1; done
stuck="127.0.0.1:$(cat "$tmp/stuck.port")"
elapsed() { python3 -c "print(round($EPOCHREALTIME - $1, 2))"; }
below() { python3 -c "import sys; sys.exit(0 if $1 < $2 else 1)"; }
# The sender runs directly (timeout(1) would forward the signal and kill it 2 s later);
# a watchdog ends it if it hangs.
start_stuck_sender() {
  "$T/speadcast-send" --tcp --heap-size 1M "$stuck" >"$tmp/stuck.out" 2>"$tmp/stuck.err" &
  spid=$!
  pids+=("$spid")
  ( sleep 20; kill -KILL "$spid" 2>/dev/null ) &
  pids+=("$!")
}
for sig in INT TERM; do
  start_stuck_sender
  sleep 1
  t0=$EPOCHREALTIME
  kill -"$sig" "$spid"
  wait "$spid"; src=$?
  took=$(elapsed "$t0")
  want=$([ "$sig" = INT ] && echo 130 || echo 143)
  if [ "$src" -eq "$want" ] && below "$took" 5 && grep -q "aborted" "$tmp/stuck.out"; then
    pass "SIG$sig with a stuck TCP peer: exit $src after ${took}s: $(head -n 1 "$tmp/stuck.out")"
  else
    fail "SIG$sig with a stuck TCP peer: exit $src after ${took}s"
    cat "$tmp/stuck.out" "$tmp/stuck.err" >&2
  fi
done
start_stuck_sender
sleep 1
t0=$EPOCHREALTIME
kill -INT "$spid"; sleep 0.5; kill -INT "$spid"
wait "$spid"; src=$?
took=$(elapsed "$t0")
if [ "$src" -eq 130 ] && below "$took" 1.8; then
  pass "a second SIGINT exits at once (${took}s)"
else
  fail "second SIGINT: exit $src after ${took}s"; cat "$tmp/stuck.err" >&2
fi
expect_exit 1 "--send-timeout fails heaps a stuck peer never takes" \
  "$T/speadcast-send" --tcp --send-timeout 0.5 --heaps 50 --heap-size 1M "$stuck"
grep -q "timed out" "$tmp/err" || fail "--send-timeout message: $(cat "$tmp/err")"
kill "$stuck_pid" 2>/dev/null

# --- defect 5: at EMFILE the TCP receiver says so once and backs off (no busy loop)
( ulimit -n 12
  timeout 10 "$T/speadcast-recv" --tcp --stops 0 --timeout 3 --ready-file "$tmp/emfile.ready" \
    127.0.0.1:0 >"$tmp/emfile.out" 2>"$tmp/emfile.err"
  times >"$tmp/emfile.times" ) &
epid=$!
for _ in $(seq 100); do [ -s "$tmp/emfile.ready" ] && break; sleep 0.1; done
python3 - "$(head -n 1 "$tmp/emfile.ready")" <<'EOF'
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
conns = []
for _ in range(30):
    try:
        conns.append(socket.create_connection((host, int(port)), timeout=1))
    except OSError:
        break
time.sleep(3.5)
EOF
wait "$epid"
cpu=$(tail -n 1 "$tmp/emfile.times" | python3 -c "
import re, sys
t = re.findall(r'(\d+)m([\d.]+)s', sys.stdin.read())
print(sum(int(m) * 60 + float(s) for m, s in t))")
n=$(grep -c "too many open files" "$tmp/emfile.err")
if [ "$n" -eq 1 ] && below "$cpu" 0.1; then
  pass "EMFILE reported once, ${cpu}s of CPU in 3 s"
else
  fail "EMFILE: reported $n times, ${cpu}s of CPU in 3 s"; cat "$tmp/emfile.err" >&2
fi

# --- defect 10: a pipe and a FIFO as the source
cat >"$tmp/pcap.json" <<EOF
{"transport": "pcap", "options": {"path": "$tmp/pipe.pcap", "endpoints": ["127.0.0.1:7148"]}}
EOF
timeout 30 "$T/speadcast-send" --config "$tmp/pcap.json" --verify --quiet --heaps 5 \
  --heap-size 20000 || fail "writing a pcap for the pipe test"
cat "$tmp/pipe.pcap" | timeout 20 "$T/speadcast-recv" --verify --quiet /dev/stdin \
  >"$tmp/pipe.out" 2>"$tmp/pipe.err"
prc=$?
if [ "$prc" -eq 0 ] && grep -q "Verify: OK (5 heaps checked)" "$tmp/pipe.out"; then
  pass "a capture through a pipe: $(head -n 1 "$tmp/pipe.out")"
else
  fail "a capture through a pipe: exit $prc"; cat "$tmp/pipe.out" "$tmp/pipe.err" >&2
fi
mkfifo "$tmp/nowriter.fifo"
t0=$EPOCHREALTIME
timeout -k 1 10 "$T/speadcast-recv" --quiet --timeout 0.5 "$tmp/nowriter.fifo" >"$tmp/fifo.out" 2>"$tmp/fifo.err"
frc=$?
took=$(elapsed "$t0")
if [ "$frc" -ne 124 ] && below "$took" 3; then
  pass "a FIFO with no writer honours --timeout (${took}s, exit $frc)"
else
  fail "a FIFO with no writer: exit $frc after ${took}s"
fi

# --- bench: a sweep with a chart
timeout 120 "$T/speadcast-bench" --sweep --transport udp --receiver process --packets 1472,8972 \
  --heap-sizes 65536,262144 --trial-time 0.05 --plot "$tmp/sweep.svg" >"$tmp/bench.out" 2>&1
brc=$?
if [ "$brc" -eq 0 ] && python3 - "$tmp/sweep.svg" <<'EOF'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
ns = "{http://www.w3.org/2000/svg}"
assert root.tag == ns + "svg"
assert len(root.findall(ns + "polyline")) == 2, "one line per heap size"
assert len(root.findall(ns + "circle")) == 4, "one point per measurement"
EOF
then
  pass "bench sweep table and SVG chart"
  cat "$tmp/bench.out"
else
  fail "bench sweep (exit $brc)"; cat "$tmp/bench.out" >&2
fi

[ "$failures" -eq 0 ] || { echo "$failures failure(s)" >&2; exit 1; }
echo "all tool CLI checks passed"
