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
if [ "$src" -eq 0 ] && [ "$rrc" -eq 0 ] && grep -q "^Sent " "$tmp/sigint.send" &&
   grep -q "Verify: OK" "$tmp/sigint.out"; then
  pass "SIGINT: $(head -n 1 "$tmp/sigint.out")"
else
  fail "SIGINT: send exit $src, recv exit $rrc"; cat "$tmp/sigint.send" "$tmp/sigint.send.err" "$tmp/sigint.out" >&2
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
