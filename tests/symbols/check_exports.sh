#!/bin/sh
# Checks libspeadcast's exported symbols against core/speadcast.map and the public headers:
# every exported symbol carries a SPEADCAST_* version, every name the map lists is
# exported, and every function a public header declares (transport.h, the plugin ABI,
# aside) is exported. Usage: check_exports.sh LIB MAP INCLUDE_DIR
set -eu
lib=$1 map=$2 inc=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
objdump -T "$lib" | awk '$2 == "g" && $4 != "*UND*" && $NF != $(NF-1) {print $(NF-1), $NF}' | sort -u >"$tmp/dyn"
status=0
if awk '$1 !~ /^SPEADCAST_/' "$tmp/dyn" | grep .; then
    echo "exported without a SPEADCAST_* version: see above" >&2
    status=1
fi
awk '{print $2}' "$tmp/dyn" | sort -u >"$tmp/exported"
sed -n 's/^ *\(spc_[a-z0-9_]*\);$/\1/p' "$map" | sort -u >"$tmp/listed"
if ! cmp -s "$tmp/exported" "$tmp/listed"; then
    echo "exported (<) vs listed in $map (>):" >&2
    diff "$tmp/exported" "$tmp/listed" >&2 || true
    status=1
fi
for h in "$inc"/speadcast/*.h; do
    [ "$(basename "$h")" = transport.h ] && continue
    # Declarations: a line that names spc_xxx( at a declaration's start (after the type).
    grep -oE '^[a-z].*[ *](spc_[a-z0-9_]+)\(' "$h" | grep -oE 'spc_[a-z0-9_]+\($' | tr -d '(' || true
done | sort -u >"$tmp/declared"
missing=$(comm -23 "$tmp/declared" "$tmp/exported")
if [ -n "$missing" ]; then
    echo "declared in a public header but not exported: $missing" >&2
    status=1
fi
[ "$status" = 0 ] && echo "$(wc -l <"$tmp/exported") symbols, all versioned and listed"
exit $status
