#!/usr/bin/env bash
# Runs an installed speadcast from PREFIX in a clean environment (PATH=PREFIX/bin and the
# system's, no SPEADCAST_PLUGIN_PATH; LD_LIBRARY_PATH only if SPC_LIBRARY_PATH is set,
# as a Debian root unpacked with dpkg-deb -x needs) and checks: speadcast-info finds
# every named plugin, loaded from PREFIX/LIBDIR/speadcast/plugins, and mentions nothing
# under AVOID; a verified stream (speadcast-send --config pcap, speadcast-recv --verify
# reading the capture); `man speadcast-<tool>` finds PREFIX's pages.
#
#   tests/install/check-installed.sh PREFIX LIBDIR AVOID PLUGIN...
# (used by install-tools.sh and tests/packaging/deb.sh)
set -u
prefix=$1 libdir=$2 avoid=$3
shift 3
plugins=("$@")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/speadcast-check.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }
show() { echo "${1//$prefix/<prefix>}"; }

# run TOOL ARGS...: an installed tool in a clean environment (sanitizer options kept).
run() {
  local tool=$1; shift
  env -i PATH="$prefix/bin:/usr/bin:/bin" HOME="$tmp" \
    ${SPC_LIBRARY_PATH+LD_LIBRARY_PATH="$SPC_LIBRARY_PATH"} \
    ${ASAN_OPTIONS+ASAN_OPTIONS="$ASAN_OPTIONS"} ${UBSAN_OPTIONS+UBSAN_OPTIONS="$UBSAN_OPTIONS"} \
    ${LSAN_OPTIONS+LSAN_OPTIONS="$LSAN_OPTIONS"} \
    timeout 60 "$prefix/bin/$tool" "$@"
}

# --- speadcast-info: every plugin, loaded from the prefix
plugindir=$prefix/$libdir/speadcast/plugins
if run speadcast-info >"$tmp/info" 2>&1; then
  grep -q "$avoid" "$tmp/info" && fail "speadcast-info mentions $avoid: $(grep "$avoid" "$tmp/info")"
  # The directory beside the library, as the dynamic loader names it ($ORIGIN/../lib).
  sed -n '/^search path:/,/^transports:/s/^  //p' "$tmp/info" | xargs -r realpath -m >"$tmp/dirs"
  grep -qx "$plugindir" "$tmp/dirs" ||
    fail "search path lacks $plugindir: $(cat "$tmp/dirs")"
  ok=1
  for p in "${plugins[@]}"; do
    if ! grep -A3 "^  ${p#speadcast-}  *ok " "$tmp/info" | grep -qx " *$plugindir/$p.so"; then
      fail "speadcast-info: $p not loaded from $plugindir"; ok=0
    fi
  done
  [ ${#plugins[@]} -gt 0 ] || fail "no plugin named to check"
  [ $ok -eq 1 ] && pass "speadcast-info: ${#plugins[@]} plugins ok from $(show "$plugindir")"
else
  fail "speadcast-info failed:"; cat "$tmp/info" >&2
fi

# --- a stream through an installed plugin, verified by the installed receiver
printf '{"transport": "pcap", "stream": {"max_packet_size": 1472},\n "options": {"path": "%s", "endpoints": ["127.0.0.1:7148"]}}\n' \
  "$tmp/out.pcap" >"$tmp/pcap.json"
if run speadcast-send --verify --heaps 20 --heap-size 65536 --quiet --config "$tmp/pcap.json" \
     >"$tmp/send.out" 2>&1 &&
   run speadcast-recv --verify --quiet "$tmp/out.pcap" >"$tmp/recv.out" 2>&1; then
  pass "send --config pcap -> recv --verify: $(head -n 1 "$tmp/recv.out")"
else
  fail "stream through the installed pcap plugin:"; cat "$tmp/send.out" "$tmp/recv.out" >&2
fi

# --- man pages: `man speadcast-send` finds the installed page
if command -v man >/dev/null; then
  for t in send recv bench info demo; do
    page=$(MANPATH="$prefix/share/man" man -w "speadcast-$t" 2>&1)
    if [ "$page" = "$prefix/share/man/man1/speadcast-$t.1.gz" ] &&
       MANPATH="$prefix/share/man" MANPAGER=cat MANWIDTH=80 man "speadcast-$t" 2>&1 |
         grep -q "^NAME"; then
      pass "man speadcast-$t"
    else
      fail "man speadcast-$t: $(show "$page")"
    fi
  done
else
  echo "note: man (man-db) not installed: pages not opened"
fi
exit $((failures > 0))
