#!/usr/bin/env bash
# afxdp against the udp plugin (sendmmsg + GSO, and without GSO) over the same veth pair, between two
# network namespaces created here and removed on exit (tests/afxdp/netns-lib.sh).
# Prints, per transport and packet size: packets/s, Gb/s (SPEAD bytes), the sender's CPU
# seconds (user + system) per GB and packets per CPU second. Root only.
#
#   bench/bench_afxdp.sh BUILD_DIR [HEAPS] [REPEATS]
#
# HEAPS (default 150) heaps of 4 MiB per run; the best of REPEATS (default 3) runs is
# kept. The receiving port has a bound UDP socket that never reads: the receiving stack
# takes every datagram (a GSO message, too, is cut into datagrams there) up to that
# socket's full queue and drops it, so both transports pay the same per-datagram receive
# work. On veth that work runs in softirq on the sending CPU, so for both the sender's
# system time includes it. Figures are only comparable within one run.
set -u
build=$(cd "$1" && pwd)
heaps=${2:-150}
reps=${3:-3}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../tests/afxdp/netns-lib.sh"
[ "$(id -u)" -eq 0 ] || { echo "bench_afxdp: needs root (namespaces, AF_XDP)" >&2; exit 77; }
afx_require "$build"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/speadcast-bench-afxdp.XXXXXX") || exit 1
sink=""
trap '[ -n "$sink" ] && kill "$sink"; afx_cleanup; rm -rf "$tmp"' EXIT
afx_make_pair 9000 || { echo "cannot create the veth pair" >&2; exit 1; }
ip netns exec "$AFX_B" timeout 600 /usr/bin/python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 8888))
open(sys.argv[2], "w").close()
time.sleep(600)' "$AFX_IP_B" "$tmp/sink.ready" &
sink=$!
for _ in $(seq 100); do [ -e "$tmp/sink.ready" ] && break; sleep 0.1; done
macB=$(ip -n "$AFX_B" -o link show vxb | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
send="$build/tools/speadcast-send"

# run TRANSPORT PACKET: prints "pps gbps cpu_s_per_gb pkts_per_cpu_s" of the best run.
run() {
  local tr=$1 size=$2 best=""
  afx_config "$tmp/afx.json" "$size" ", \"mode\": \"copy\", \"destination_mac\": \"$macB\""
  cat >"$tmp/nogso.json" <<JSON
{"transport": "udp", "stream": {"max_packet_size": $size},
 "options": {"endpoints": ["$AFX_IP_B:8888"], "gso": false}}
JSON
  for _ in $(seq "$reps"); do
    local args=(--json --quiet --heaps "$heaps" --packet "$size")
    case $tr in
      afxdp) args+=(--config "$tmp/afx.json") ;;
      udp-nogso) args+=(--config "$tmp/nogso.json") ;;
      *) args+=("$AFX_IP_B:8888") ;;
    esac
    # The sender's CPU time: getrusage of the waited-for children (microseconds).
    local line
    line=$(/usr/bin/python3 - ip netns exec "$AFX_A" timeout 120 "$send" "${args[@]}" <<'PY'
import json, resource, subprocess, sys
r = subprocess.run(sys.argv[1:], capture_output=True, text=True)
if r.returncode != 0:
    sys.exit(r.stderr.strip() or f"exit {r.returncode}")
s = json.loads(r.stdout.strip().splitlines()[-1])
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = max(ru.ru_utime + ru.ru_stime, 1e-6)
print(f"{s['packets'] / s['seconds']:.0f} {s['gbps']:.2f} {cpu / (s['bytes'] / 1e9):.3f} "
      f"{s['packets'] / cpu:.0f}")
PY
) || { echo "bench_afxdp: $tr at $size failed (above)" >&2; return 1; }
    if [ -z "$best" ] || [ "${line%% *}" -gt "${best%% *}" ]; then best=$line; fi
  done
  echo "$best"
}

printf "%-9s %6s %12s %8s %11s %14s\n" transport packet packets/s Gb/s "CPU s/GB" "packets/CPU-s"
declare -A per_cpu
for size in 1472 8972; do
  for tr in udp udp-nogso afxdp; do
    r=$(run "$tr" "$size") || continue
    read -r pps gbps cpg ppc <<<"$r"
    per_cpu[$tr$size]=$ppc
    printf "%-9s %6s %12s %8s %11s %14s\n" "$tr" "$size" "$pps" "$gbps" "$cpg" "$ppc"
  done
done
for size in 1472 8972; do
  for tr in udp udp-nogso; do
    [ -n "${per_cpu[afxdp$size]:-}" ] && [ -n "${per_cpu[$tr$size]:-}" ] &&
      echo "packets per CPU second at $size, afxdp / $tr: $(/usr/bin/python3 -c \
        "print(f'{${per_cpu[afxdp$size]} / ${per_cpu[$tr$size]}:.2f}')")"
  done
done
echo "(veth, copy mode: the kernel copies each frame into an skb; $(nproc) CPUs, $(uname -r))"
