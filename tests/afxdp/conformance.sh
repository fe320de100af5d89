#!/usr/bin/env bash
# The conformance suite's afxdp variant (tests/conformance): in a network namespace made
# here, with both ends of a veth pair in it, test_conformance sends through afxdp on vxa
# and receives with UDP sockets on vxb's address. Only that variant runs here (the
# others run in ctest's test_conformance, where this one is skipped).
#
#   tests/afxdp/conformance.sh BUILD_DIR
#
# Exit 77 (skipped) when not root, without namespaces or without the plugin.
set -u
build=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
. "$here/netns-lib.sh"
afx_require "$build"
trap afx_cleanup EXIT
afx_make_loop || { echo "cannot create the veth pair" >&2; exit 1; }
mac=$(ip -n "$AFX_A" -o link show vxb | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
# --jobs 1: each case binds vxa's only queue; two at once would find it busy.
ip netns exec "$AFX_A" env SPC_TEST_AFXDP="vxa $AFX_IP_B $mac" SPC_TEST_CONFORMANCE_ONLY=afxdp \
  timeout 500 "$build/tests/conformance/test_conformance" --jobs 1 --timeout 120 --verbose 2>&1 |
  tee /dev/stderr | grep -q 'Synthesis: Tested: \([1-9][0-9]*\) | Passing: \1 | Failing: 0 | Crashing: 0'
