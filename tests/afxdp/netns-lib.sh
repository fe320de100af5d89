# Shared by the afxdp tests and bench/bench_afxdp.sh (sourced, not run): two network
# namespaces joined by a veth pair, created here and removed by afx_cleanup (the caller
# traps it on EXIT, so a failing run removes them too). Addresses exist only inside the
# namespaces: 10.213.0.1 (vxa, in $AFX_A) and 10.213.0.2 (vxb, in $AFX_B).
#
#   afx_require BUILD_DIR   exit 77 (ctest: skipped) with the reason unless this can run
#   afx_make_pair [MTU]     create $AFX_A, $AFX_B and the pair; both ends up
#   afx_cleanup             delete the namespaces (and with them the pair)
#   afx_make_loop, afx_probe_xdp, afx_config: below
AFX_A="spcxa$$"
AFX_B="spcxb$$"
AFX_IP_A=10.213.0.1
AFX_IP_B=10.213.0.2

afx_skip() { echo "SKIP: $*"; exit 77; }

afx_require() {
  local build=$1
  [ "$(id -u)" -eq 0 ] || afx_skip "not root: creating network namespaces and AF_XDP sockets needs it"
  command -v ip >/dev/null || afx_skip "no ip(8) (iproute2)"
  [ -e "$build/core/speadcast/plugins/speadcast-afxdp.so" ] ||
    afx_skip "the afxdp plugin was not built (libxdp/libbpf not found at configure time)"
  ip netns add "${AFX_A}probe" 2>/dev/null || afx_skip "cannot create network namespaces here"
  ip netns del "${AFX_A}probe"
}

afx_make_pair() {
  local mtu=${1:-1500}
  ip netns add "$AFX_A" && ip netns add "$AFX_B" &&
    ip link add vxa netns "$AFX_A" type veth peer name vxb netns "$AFX_B" || return 1
  ip -n "$AFX_A" addr add "$AFX_IP_A/24" dev vxa && ip -n "$AFX_B" addr add "$AFX_IP_B/24" dev vxb &&
    ip -n "$AFX_A" link set vxa mtu "$mtu" up && ip -n "$AFX_B" link set vxb mtu "$mtu" up &&
    ip -n "$AFX_A" link set lo up && ip -n "$AFX_B" link set lo up
}

afx_cleanup() {
  ip netns del "$AFX_A" 2>/dev/null
  ip netns del "$AFX_B" 2>/dev/null
  return 0
}

# afx_config FILE MAX_PACKET_SIZE EXTRA_OPTIONS: a stream config sending from vxa to
# AFX_IP_B port 8888 (EXTRA_OPTIONS: more "key": value pairs, with a leading comma).
afx_config() {
  cat >"$1" <<JSON
{"transport": "afxdp", "stream": {"max_packet_size": $2},
 "options": {"interface": "vxa", "endpoints": ["$AFX_IP_B:8888"]$3}}
JSON
}

# afx_make_loop: both ends of the pair in $AFX_A (vxa 10.213.0.1, vxb 10.213.0.2), so
# one process sends on vxa and receives on vxb's address. vxb accepts frames whose
# source is an address of its own namespace (accept_local), which it would otherwise
# drop as martians.
afx_make_loop() {
  ip netns add "$AFX_A" && ip -n "$AFX_A" link add vxa type veth peer name vxb || return 1
  ip netns exec "$AFX_A" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.vxb.rp_filter=0 \
    net.ipv4.conf.vxb.accept_local=1 &&
    ip -n "$AFX_A" addr add "$AFX_IP_A/24" dev vxa && ip -n "$AFX_A" addr add "$AFX_IP_B/24" dev vxb &&
    ip -n "$AFX_A" link set vxa up && ip -n "$AFX_A" link set vxb up && ip -n "$AFX_A" link set lo up
}

# afx_probe_xdp BUILD_DIR: exit 77 when the kernel has no AF_XDP sockets (one heap sent
# from vxa in $AFX_A; any other outcome is left to the tests).
afx_probe_xdp() {
  local out
  out=$(ip netns exec "$AFX_A" timeout 30 "$1/tools/speadcast-send" --heaps 1 --heap-size 64 \
    --config /dev/stdin 2>&1 <<JSON
{"transport": "afxdp", "options": {"interface": "vxa", "endpoints": ["$AFX_IP_B:9"],
 "destination_mac": "02:00:00:00:00:02", "mode": "copy"}}
JSON
) || case $out in *"no AF_XDP sockets"*) afx_skip "this kernel has no AF_XDP sockets" ;; esac
}
