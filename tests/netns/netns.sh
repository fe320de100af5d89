#!/usr/bin/env bash
# speadcast-send and speadcast-recv between network namespaces joined by veth pairs that
# this script creates and removes (issue 12). Addresses are only ever inside those
# namespaces (10.77.0.0/16, group 239.77.0.1).
#
#   tests/netns/netns.sh BUILD_DIR multicast|mtu|peer-gone
#
# multicast  two receivers behind a bridge both verify the stream; the sender's
#            --bind interface is honoured over the multicast route (which points at
#            another interface), and --ttl is the TTL the receivers see.
# mtu        a link MTU below the packet size: the datagrams arrive (fragmented), the
#            stream verifies, and a refused GSO message falls back to plain sends.
# peer-gone  the receiver's namespace is deleted mid-stream: UDP and TCP (send_timeout
#            from --config) senders end with a clear error in bounded time, no hang.
#
# Exit 77 (ctest: skipped) when not root or `ip netns` cannot be used. Every namespace
# has a per-run unique name and is deleted on exit, also after a failure or signal.
set -u
build=${1:?usage: netns.sh BUILD_DIR SCENARIO}
scenario=${2:?usage: netns.sh BUILD_DIR SCENARIO}
T="$build/tools"
PY=/usr/bin/python3

if [ "$(id -u)" != 0 ]; then
  echo "SKIP: network namespace tests need root (running as uid $(id -u))"
  exit 77
fi
if ! command -v ip >/dev/null 2>&1; then
  echo "SKIP: ip (iproute2) is not installed"
  exit 77
fi
id="spc$$$RANDOM"
probe="${id}p"
if ! ip netns add "$probe" 2>/dev/null; then
  echo "SKIP: ip netns add failed (no CAP_SYS_ADMIN or no network namespace support)"
  exit 77
fi
ip netns del "$probe"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/speadcast-netns.XXXXXX") || exit 1
namespaces=()
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  for n in "${namespaces[@]}"; do ip netns del "$n" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

ns_add() { # ns_add NAME: creates namespace ${id}NAME with lo up
  local n="${id}$1"
  ip netns add "$n" || { echo "cannot create namespace $n" >&2; exit 1; }
  namespaces+=("$n")
  ip -n "$n" link set lo up
}
# link A IFA ADDR_A B IFB [ADDR_B]: a veth pair between namespaces ${id}A and ${id}B.
link() {
  local a="${id}$1" ia=$2 aa=$3 b="${id}$4" ib=$5 ab=${6:-}
  ip link add "$ia" netns "$a" type veth peer name "$ib" netns "$b" || exit 1
  [ -n "$aa" ] && ip -n "$a" addr add "$aa" dev "$ia"
  [ -n "$ab" ] && ip -n "$b" addr add "$ab" dev "$ib"
  ip -n "$a" link set "$ia" up
  ip -n "$b" link set "$ib" up
}
# ns_kill NAME: deletes namespace ${id}NAME and ends the processes in it, so the
# namespace (and its end of every veth pair) is really gone at once, mid-stream.
ns_kill() {
  local n="${id}$1" inside
  inside=$(ip netns pids "$n" 2>/dev/null)
  # Links first, so nothing (no FIN from the dying receiver) gets out any more.
  for l in $(ip -n "$n" -o link show | awk -F': ' '{print $2}' | cut -d@ -f1); do
    [ "$l" != lo ] && ip -n "$n" link del "$l" 2>/dev/null
  done
  ip netns del "$n"
  [ -n "$inside" ] && kill -9 $inside 2>/dev/null
  return 0
}
in_ns() { local n="${id}$1"; shift; ip netns exec "$n" "$@"; }
tx_packets() { in_ns "$1" cat "/sys/class/net/$2/statistics/tx_packets"; }

# recv_bg NS NAME ARGS...: speadcast-recv in namespace NS, waits until it listens.
recv_bg() {
  local ns=$1 name=$2; shift 2
  rm -f "$tmp/$name.ready"
  in_ns "$ns" timeout 60 "$T/speadcast-recv" --ready-file "$tmp/$name.ready" "$@" \
    >"$tmp/$name.out" 2>"$tmp/$name.err" &
  pids+=($!)
  eval "pid_$name=$!"
  for _ in $(seq 100); do
    [ -s "$tmp/$name.ready" ] && return 0
    sleep 0.05
  done
  fail "$name: receiver did not start"; cat "$tmp/$name.err" >&2
}
# finish NAME WANT_EXIT WHAT: waits for a background receiver and checks its exit.
finish() {
  local name=$1 want=$2 what=$3 pid
  eval "pid=\$pid_$name"
  wait "$pid"
  local rc=$?
  if [ "$rc" -eq "$want" ]; then pass "$what (exit $rc)"; else
    fail "$what: exit $rc, expected $want"; cat "$tmp/$name.out" "$tmp/$name.err" >&2; fi
}

group=239.77.0.1
port=7148

scenario_multicast() {
  ns_add s; ns_add h; ns_add r1; ns_add r2
  ip -n "${id}h" link add br0 type bridge
  ip -n "${id}h" link set br0 type bridge mcast_snooping 0
  ip -n "${id}h" link set br0 up
  link s s0 10.77.0.1/24 h hs
  link r1 r0 10.77.0.2/24 h h1
  link r2 r0 10.77.0.3/24 h h2
  for p in hs h1 h2; do ip -n "${id}h" link set "$p" master br0; done
  # A second interface in s, where the multicast route points: only --bind (the udp
  # transport's interface_address, IP_MULTICAST_IF) takes the stream onto the bridge.
  link s x0 10.78.0.1/24 s x1
  ip -n "${id}s" route add 239.0.0.0/8 dev x0

  # 1. Both receivers verify the whole stream sent with --bind.
  recv_bg r1 m1 --verify --bind 10.77.0.2 --timeout 30 "$group:$port"
  recv_bg r2 m2 --verify --bind 10.77.0.3 --timeout 30 "$group:$port"
  local x0_before s0_before
  x0_before=$(tx_packets s x0)
  in_ns s timeout 30 "$T/speadcast-send" --verify --quiet --bind 10.77.0.1 --ttl 2 --heaps 20 \
    --heap-size 65536 --rate 0.2 "$group:$port" >"$tmp/send1.out" 2>&1 \
    || { fail "send with --bind"; cat "$tmp/send1.out" >&2; }
  finish m1 0 "receiver 1 verifies the multicast stream"
  finish m2 0 "receiver 2 verifies the multicast stream"
  grep -q "Verify: OK" "$tmp/m1.out" || fail "receiver 1 printed no 'Verify: OK'"
  [ "$(tx_packets s x0)" -le $((x0_before + 5)) ] || fail "--bind stream also went out x0"

  # 2. Without --bind the route decides: x0, so the receivers get nothing.
  recv_bg r1 m3 --bind 10.77.0.2 --timeout 3 "$group:$port"
  s0_before=$(tx_packets s s0)
  x0_before=$(tx_packets s x0)
  in_ns s timeout 30 "$T/speadcast-send" --verify --quiet --heaps 10 --heap-size 16384 \
    "$group:$port" >"$tmp/send2.out" 2>&1 || { fail "send without --bind"; cat "$tmp/send2.out" >&2; }
  local x0_sent=$(( $(tx_packets s x0) - x0_before ))
  [ "$x0_sent" -ge 10 ] && pass "without --bind the multicast route's interface carried it ($x0_sent packets)" \
    || fail "without --bind only $x0_sent packets went out x0"
  [ "$(tx_packets s s0)" -le $((s0_before + 5)) ] || fail "without --bind the stream went onto the bridge"
  wait "$pid_m3"
  grep -q "^Received 0 heaps" "$tmp/m3.out" && grep -q " 0 packets" "$tmp/m3.out" \
    && pass "receiver 1 got no packet without --bind" \
    || { fail "receiver 1 got packets sent to x0"; cat "$tmp/m3.out" >&2; }

  # 3. The TTL the receivers see is --ttl.
  for ttl in 1 7; do
    in_ns r1 timeout 20 "$PY" - "$group" "$port" 10.77.0.2 >"$tmp/ttl.out" 2>&1 <<'EOF' &
import socket, struct, sys
group, port, iface = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((group, port))
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
             socket.inet_aton(group) + socket.inet_aton(iface))
s.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_RECVTTL", 12), 1)
s.settimeout(10)
print("ready", flush=True)
data, anc, flags, addr = s.recvmsg(65536, socket.CMSG_SPACE(4))
for level, kind, val in anc:
    if level == socket.IPPROTO_IP and kind == socket.IP_TTL:
        print("ttl", struct.unpack("i", val[:4])[0], flush=True)
EOF
    local ppid=$!
    pids+=("$ppid")
    for _ in $(seq 100); do grep -q ready "$tmp/ttl.out" 2>/dev/null && break; sleep 0.05; done
    in_ns s timeout 30 "$T/speadcast-send" --verify --quiet --bind 10.77.0.1 --ttl "$ttl" --heaps 3 \
      --heap-size 1024 "$group:$port" >/dev/null 2>&1
    wait "$ppid"
    grep -qx "ttl $ttl" "$tmp/ttl.out" && pass "--ttl $ttl seen by the receiver" \
      || { fail "--ttl $ttl: receiver saw: $(tr '\n' ' ' <"$tmp/ttl.out")"; }
  done
}

scenario_mtu() {
  ns_add s; ns_add r
  link s s0 10.77.1.1/24 r r0 10.77.1.2/24
  ip -n "${id}s" link set s0 mtu 1000
  ip -n "${id}r" link set r0 mtu 1000
  for gso in gso plain; do
    local cfg="$tmp/mtu-$gso.json" use=true
    [ "$gso" = plain ] && use=false
    cat >"$cfg" <<EOF
{"transport": "udp", "stream": {"max_packet_size": 1472, "rate": 25000000},
 "options": {"endpoints": ["10.77.1.2:$port"], "gso": $use}}
EOF
    recv_bg r "mtu$gso" --verify --timeout 30 "10.77.1.2:$port"
    in_ns s timeout 30 "$T/speadcast-send" --verify --config "$cfg" --heaps 20 --heap-size 65536 \
      >"$tmp/mtu-send-$gso.out" 2>&1
    local rc=$?
    [ "$rc" -eq 0 ] && pass "1472-byte packets over MTU 1000 ($gso) sent" \
      || { fail "send over MTU 1000 ($gso): exit $rc"; cat "$tmp/mtu-send-$gso.out" >&2; }
    finish "mtu$gso" 0 "1472-byte packets over MTU 1000 ($gso) verify"
    if [ "$gso" = gso ]; then
      # The kernel refuses a GSO segment larger than the path MTU; the plugin must fall
      # back to plain sends (and say so) rather than fail the heaps.
      grep -q "GSO is off" "$tmp/mtu-send-$gso.out" && pass "GSO fell back to plain sends" \
        || { fail "no GSO fallback reported"; cat "$tmp/mtu-send-$gso.out" >&2; }
    fi
  done
}

scenario_peer_gone() {
  # UDP: the receiver's namespace goes away, and with it the link and the route.
  ns_add s; ns_add r
  link s s0 10.77.2.1/24 r r0 10.77.2.2/24
  recv_bg r gone1 --timeout 30 "10.77.2.2:$port"
  in_ns s timeout 60 "$T/speadcast-send" --verify --heap-size 65536 --rate 0.05 \
    "10.77.2.2:$port" >"$tmp/gone1.out" 2>&1 &
  local spid=$!
  pids+=("$spid")
  sleep 1
  ns_kill r
  local t0=$SECONDS
  wait "$spid"
  local rc=$? took=$((SECONDS - t0))
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$took" -le 20 ]; then
    pass "udp sender ended $took s after the receiver namespace went (exit $rc)"
  else
    fail "udp sender after the receiver namespace went: exit $rc after $took s"
  fi
  grep -qiE "unreachable|network|No such device|error" "$tmp/gone1.out" \
    && pass "udp sender names the cause: $(grep -iE 'unreachable|network|device|error' "$tmp/gone1.out" | head -1)" \
    || { fail "udp sender gave no cause"; cat "$tmp/gone1.out" >&2; }

  # TCP: no reset can come back from a deleted namespace; send_timeout ends it.
  ns_add r2
  link s s1 10.77.3.1/24 r2 r0 10.77.3.2/24
  recv_bg r2 gone2 --tcp --timeout 30 "10.77.3.2:$port"
  cat >"$tmp/tcp.json" <<EOF
{"transport": "tcp", "stream": {"rate": 5000000},
 "options": {"endpoints": ["10.77.3.2:$port"], "send_timeout": 3}}
EOF
  in_ns s timeout 60 "$T/speadcast-send" --verify --config "$tmp/tcp.json" --heap-size 65536 \
    >"$tmp/gone2.out" 2>&1 &
  spid=$!
  pids+=("$spid")
  sleep 1
  ns_kill r2
  t0=$SECONDS
  wait "$spid"
  rc=$?
  took=$((SECONDS - t0))
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$took" -le 20 ]; then
    pass "tcp sender ended $took s after the receiver namespace went (exit $rc)"
  else
    fail "tcp sender after the receiver namespace went: exit $rc after $took s"
  fi
  grep -qiE "send_timeout|timed out" "$tmp/gone2.out" \
    && pass "tcp sender names send_timeout" || { fail "tcp sender gave no cause"; cat "$tmp/gone2.out" >&2; }
}

case "$scenario" in
  multicast) scenario_multicast ;;
  mtu) scenario_mtu ;;
  peer-gone) scenario_peer_gone ;;
  *) echo "unknown scenario $scenario" >&2; exit 2 ;;
esac
if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "all $scenario checks passed"
