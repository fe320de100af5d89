#!/bin/sh
# ibverbs loopback check, for a machine with an RDMA NIC (ConnectX-class, RoCE/Ethernet
# port) that rdma-core's `ibv_devices` lists. Sends a --verify stream with
# `speadcast-send --ibv` from the interface holding ADDRESS to an IPv4 multicast group,
# receives it with `speadcast-recv --verify` on the same host, and reports the send rate
# and whether every heap arrived intact.
#
#   tests/hw/ibverbs-loopback.sh [options] ADDRESS
#     -b DIR     build directory holding tools/speadcast-send and tools/speadcast-recv
#                (default: build)
#     -r ADDR    receive on the interface holding ADDR (default: ADDRESS). A ConnectX
#                loops multicast from a raw queue pair back to its own port's kernel stack
#                by default, through a slower path (the receiver may then drop packets at
#                high rates); with /sys/class/net/IF/settings/force_local_lb_disable on,
#                it does not, and a second port cabled back to the first must receive.
#     -g GROUP   multicast group (default 239.102.0.1)
#     -p PORT    UDP port (default 8888)
#     -n HEAPS   data heaps (default 2000)
#     -s BYTES   heap size (default 1048576)
#     -k BYTES   packet size (default 1472). Checked first: packet + 28 (IPv4 and UDP
#                headers) must fit the MTU of both interfaces. A NIC silently drops a
#                raw frame longer than its port MTU while reporting the send a success,
#                and the ibverbs transport refuses to open for such a packet size.
#     -R GBPS    send rate (default 0 = as fast as possible; use e.g. 5 if the receiver
#                drops packets, which --verify reports as lost heaps)
#     -m METHOD  rate method sw, hw or auto (default sw)
#
# Exit status: 0 all heaps verified; 1 lost or corrupt heaps, or a tool failed;
# 77 no RDMA device here (nothing was checked); 2 usage error, or the packet size
# does not fit an interface's MTU.
# Raw packet queue pairs need CAP_NET_RAW: run as root or give the binary the capability.
set -u

build=build
raddr=
group=239.102.0.1
port=8888
heaps=2000
heap_size=1048576
packet=1472
rate=0
method=sw

usage() {
    sed -n '8,30p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

while getopts b:r:g:p:n:s:k:R:m:h opt; do
    case $opt in
    b) build=$OPTARG ;;
    r) raddr=$OPTARG ;;
    g) group=$OPTARG ;;
    p) port=$OPTARG ;;
    n) heaps=$OPTARG ;;
    s) heap_size=$OPTARG ;;
    k) packet=$OPTARG ;;
    R) rate=$OPTARG ;;
    m) method=$OPTARG ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || usage
addr=$1
[ -n "$raddr" ] || raddr=$addr

# The MTU first: a frame over it is dropped by the NIC although its send completes.
for a in "$addr" "$raddr"; do
    ifname=$(ip -o -4 addr show 2>/dev/null | awk -v a="$a" '{ split($4, p, "/"); if (p[1] == a) { print $2; exit } }')
    if [ -z "$ifname" ]; then
        echo "ibverbs-loopback: $a is not an IPv4 address of any interface here" >&2
        exit 1
    fi
    mtu=$(cat "/sys/class/net/${ifname%%:*}/mtu" 2>/dev/null)
    if [ -z "$mtu" ]; then
        echo "ibverbs-loopback: cannot read the MTU of $ifname" >&2
        exit 1
    fi
    if [ $((packet + 28)) -gt "$mtu" ]; then
        echo "ibverbs-loopback: packet size $packet + 28 exceeds the MTU $mtu of $ifname ($a): use -k $((mtu - 28)) or raise the MTU" >&2
        exit 2
    fi
    echo "MTU of $ifname ($a): $mtu"
done

send=$build/tools/speadcast-send
recv=$build/tools/speadcast-recv
for tool in "$send" "$recv"; do
    if [ ! -x "$tool" ]; then
        echo "ibverbs-loopback: $tool not found (build first, or pass -b DIR)" >&2
        exit 1
    fi
done

if command -v ibv_devices >/dev/null 2>&1; then
    devices=$(ibv_devices 2>/dev/null | awk 'NR > 2 && NF >= 1 { printf "%s ", $1 }')
else
    devices=
    for d in /sys/class/infiniband/*; do
        [ -e "$d" ] && devices="$devices${d##*/} "
    done
fi
if [ -z "$devices" ]; then
    echo "ibverbs-loopback: no RDMA device on this machine; not run" >&2
    exit 77
fi
echo "RDMA devices: $devices"

work=$(mktemp -d "${TMPDIR:-/tmp}/ibv-loopback.XXXXXX") || exit 1
recv_pid=
# shellcheck disable=SC2317 # run by the trap
cleanup() {
    [ -n "$recv_pid" ] && kill "$recv_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

# The receiver ends at the stop heap; the timeouts keep a lost stop heap from hanging it.
"$recv" --verify --quiet --bind "$raddr" --packet $((packet + 64)) --buffer 67108864 \
    --timeout 600 --idle-timeout 10 --ready-file "$work/ready" "$group:$port" \
    >"$work/recv.out" 2>"$work/recv.err" &
recv_pid=$!
i=0
while [ ! -s "$work/ready" ]; do
    if ! kill -0 "$recv_pid" 2>/dev/null || [ $i -ge 100 ]; then
        echo "ibverbs-loopback: speadcast-recv did not start:" >&2
        cat "$work/recv.err" >&2
        exit 1
    fi
    sleep 0.1
    i=$((i + 1))
done

echo "sending $heaps heaps of $heap_size bytes from $addr to $group:$port (packet $packet, rate ${rate} Gb/s, $method)"
"$send" --ibv --bind "$addr" --verify --heaps "$heaps" --heap-size "$heap_size" \
    --packet "$packet" --rate "$rate" --rate-method "$method" "$group:$port" \
    >"$work/send.out" 2>"$work/send.err"
send_rc=$?
wait "$recv_pid"
recv_rc=$?
recv_pid=

echo "--- speadcast-send (exit $send_rc)"
cat "$work/send.out" "$work/send.err"
echo "--- speadcast-recv (exit $recv_rc)"
cat "$work/recv.out" "$work/recv.err"

if [ $send_rc -ne 0 ] || [ $recv_rc -ne 0 ]; then
    echo "ibverbs-loopback: FAILED" >&2
    exit 1
fi
echo "ibverbs-loopback: all heaps verified"
exit 0
