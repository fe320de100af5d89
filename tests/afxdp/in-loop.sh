#!/usr/bin/env bash
# Runs a Criterion suite that sends through afxdp inside a network namespace made here,
# with both ends of a veth pair in it (tests/afxdp/netns-lib.sh afx_make_loop): the
# suite sends on vxa and receives on vxb's address, named with vxb's MAC in
# SPC_TEST_AFXDP="vxa 10.213.0.2 MAC". Passes only if at least one test ran and none
# failed (a suite whose tests all skipped fails here).
#
#   tests/afxdp/in-loop.sh BUILD_DIR [VAR=VALUE...] SUITE [ARGS...]
#
# Exit 77 (skipped) when not root, without namespaces, the plugin or AF_XDP.
set -u
build=$(cd "$1" && pwd)
shift
here=$(cd "$(dirname "$0")" && pwd)
. "$here/netns-lib.sh"
afx_require "$build"
trap afx_cleanup EXIT
afx_make_loop || { echo "cannot create the veth pair" >&2; exit 1; }
afx_probe_xdp "$build"
mac=$(ip -n "$AFX_A" -o link show vxb | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
# --jobs 1: each test binds vxa's only queue; two at once would find it busy.
ip netns exec "$AFX_A" env SPC_TEST_AFXDP="vxa $AFX_IP_B $mac" timeout 500 env "$@" \
  --jobs 1 --timeout 120 --verbose 2>&1 |
  tee /dev/stderr | grep -q 'Synthesis: Tested: \([1-9][0-9]*\) | Passing: \1 | Failing: 0 | Crashing: 0'
