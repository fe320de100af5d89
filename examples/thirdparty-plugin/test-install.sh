#!/bin/sh
# Installs speadcast from a build tree into a temporary prefix, builds the example
# plugin against it with find_package and with pkg-config, loads it by name from JSON
# configs (installed beside the library, and from plugin_path) and checks the heaps.
# usage: test-install.sh BUILD_DIR EXAMPLE_SRC_DIR C_COMPILER [EXTRA_C_FLAGS]
set -eu
build=$1 src=$2 cc=$3 flags=${4:-}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/speadcast-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
prefix=$tmp/prefix

cmake --install "$build" --prefix "$prefix" >"$tmp/install.log"
pc=$(find "$prefix" -name speadcast.pc | head -n 1)
[ -n "$pc" ] || { echo "speadcast.pc not installed"; exit 1; }
export SPEADCAST_PLUGIN_PATH=   # only what the configs and the install provide

# 1. find_package(speadcast), plugin installed into the prefix's plugin directory.
cmake -S "$src" -B "$tmp/b1" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_C_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" -DCMAKE_MODULE_LINKER_FLAGS="$flags" \
  >"$tmp/b1.log"
cmake --build "$tmp/b1" >>"$tmp/b1.log"
cmake --install "$tmp/b1" >>"$tmp/b1.log"
test -f "$(dirname "$pc")/../speadcast/plugins/speadcast-examplefile.so" ||
  { echo "plugin not installed beside libspeadcast"; exit 1; }
nm -D --defined-only "$tmp/b1/speadcast-examplefile.so" | grep -v ' spc_transport_entry_v1$' | grep ' [TDB] ' &&
  { echo "the plugin exports more than its entry point"; exit 1; }
printf '{"transport": "examplefile", "stream": {"max_packet_size": 1500},\n "options": {"path": "%s"}}\n' \
  "$tmp/out1.spead" >"$tmp/c1.json"
"$tmp/b1/example-send" "$tmp/c1.json"
"$tmp/b1/example-send" --verify "$tmp/out1.spead"

# 2. pkg-config, plugin loaded from the config's plugin_path (relative to the config).
PKG_CONFIG_PATH=$(dirname "$pc") cmake -S "$src" -B "$tmp/b2" -DEXAMPLE_USE_PKGCONFIG=ON \
  -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" \
  -DCMAKE_MODULE_LINKER_FLAGS="$flags" >"$tmp/b2.log"
cmake --build "$tmp/b2" >>"$tmp/b2.log"
rm "$(dirname "$pc")/../speadcast/plugins/speadcast-examplefile.so"
printf '{"transport": "examplefile", "plugin_path": ["b2"], "options": {"path": "%s"}}\n' \
  "$tmp/out2.spead" >"$tmp/c2.json"
"$tmp/b2/example-send" "$tmp/c2.json"
"$tmp/b2/example-send" --verify "$tmp/out2.spead"

# 3. A bad option is reported by key, and a missing plugin by name.
printf '{"transport": "examplefile", "plugin_path": ["b2"], "options": {"pth": "x"}}\n' >"$tmp/c3.json"
if "$tmp/b2/example-send" "$tmp/c3.json" 2>"$tmp/c3.err"; then echo "bad option accepted"; exit 1; fi
grep -q 'options.pth: unknown key (did you mean "path"?)' "$tmp/c3.err" || { cat "$tmp/c3.err"; exit 1; }
printf '{"transport": "examplefile", "options": {"path": "x"}}\n' >"$tmp/c4.json"
if "$tmp/b2/example-send" "$tmp/c4.json" 2>"$tmp/c4.err"; then echo "missing plugin found"; exit 1; fi
grep -q 'transport "examplefile" not found' "$tmp/c4.err" || { cat "$tmp/c4.err"; exit 1; }
echo "install test passed"
