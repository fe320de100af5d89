#!/usr/bin/env bash
# `cmake --install` into a temporary prefix, then the installed tools run from there with
# nothing of the build tree on any path: every part where the README says it lands, the
# library found through the tools' relative RUNPATH (no LD_LIBRARY_PATH), the plugins
# beside the installed library, a verified stream and the man pages
# (check-installed.sh), again after the tree was moved elsewhere.
#
#   tests/install/install-tools.sh BUILD_DIR SOURCE_DIR
set -u
build=$(realpath "$1") src=$2
here=$(dirname "$0")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/speadcast-install-tools.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

prefix=$tmp/prefix
if ! cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1; then
  cat "$tmp/install.log" >&2
  exit 1
fi
libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:[A-Z]*=//p' "$build/CMakeCache.txt")
libdir=${libdir:-lib}

# --- where everything lands
expect=(bin/speadcast-send bin/speadcast-recv bin/speadcast-bench bin/speadcast-info
        bin/speadcast-demo "$libdir/pkgconfig/speadcast.pc"
        "$libdir/cmake/speadcast/speadcastConfig.cmake"
        "$libdir/cmake/speadcast/speadcast_add_plugin.cmake")
for t in send recv bench info demo; do expect+=("share/man/man1/speadcast-$t.1.gz"); done
for h in "$src"/core/include/speadcast/*.h; do expect+=("include/speadcast/${h##*/}"); done
soname=$(readelf -d "$prefix/$libdir/libspeadcast.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
if [ -n "$soname" ]; then expect+=("$libdir/$soname"); else fail "libspeadcast.so has no SONAME"; fi
plugins=()
for p in "$build"/core/speadcast/plugins/speadcast-*.so; do
  [ -e "$p" ] || continue
  plugins+=("$(basename "$p" .so)")
  expect+=("$libdir/speadcast/plugins/${p##*/}")
done
missing=0
for f in "${expect[@]}"; do
  [ -e "$prefix/$f" ] || { fail "not installed: <prefix>/$f"; missing=1; }
done
[ $missing -eq 0 ] && pass "${#expect[@]} files where expected (tools, headers, library, plugins, .pc, CMake package, man pages)"

# --- the tools load the installed library (RUNPATH), never the build tree's
for t in speadcast-send speadcast-info; do
  if env -i PATH=/usr/bin:/bin ldd "$prefix/bin/$t" >"$tmp/ldd" 2>&1 &&
     grep -q "libspeadcast.so.* => $prefix/" "$tmp/ldd" && ! grep -q "$build" "$tmp/ldd"; then
    pass "$t loads $(grep -o "$prefix/[^ ]*libspeadcast[^ ]*" "$tmp/ldd" | sed "s|$prefix|<prefix>|")"
  else
    fail "$t does not load libspeadcast from the prefix:"; cat "$tmp/ldd" >&2
  fi
done

bash "$here/check-installed.sh" "$prefix" "$libdir" "$build" "${plugins[@]}" || failures=$((failures + 1))

# --- the installed tree can be moved: tools, library and plugins come along
mv "$prefix" "$tmp/moved"
echo "== moved to another directory"
bash "$here/check-installed.sh" "$tmp/moved" "$libdir" "$build" "${plugins[@]}" || failures=$((failures + 1))

if [ "$failures" -gt 0 ]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "install test passed"
