#!/usr/bin/env bash
# Builds the Debian packages in a throwaway directory (a packaging build: prefix /usr, no
# RUNPATH, no tests), then inspects them with dpkg-deb and checks:
#   - the package set: libspeadcast<soversion> (named after the library's SONAME),
#     libspeadcast-dev, speadcast-tools, speadcast-plugins, and one
#     speadcast-plugin-<name> for each plugin that links a system library of its own;
#   - file lists: together the packages hold exactly what `cmake --install` installs,
#     each file once; the library, headers, .pc, CMake package, tools and man pages in
#     the package they belong to; no RUNPATH in any binary;
#   - Depends: from the binaries (libjansson4, libltdl7, libc6, and for a plugin the
#     package owning each library it links), the packages among themselves at this
#     exact version, speadcast-plugins needing only libc; the library's shlibs file;
#   - `apt-get install -s` (simulated) of all of them accepts and installs each;
#   - unpacked into a throwaway root (dpkg-deb -x): the tools run from there and find
#     every plugin beside the library (tests/install/check-installed.sh), and the
#     third-party example plugin builds against the -dev package with find_package.
#
#   tests/packaging/deb.sh SOURCE_DIR [JOBS]
set -u
src=$(realpath "$1") jobs=${2:-2}
for tool in dpkg-deb dpkg-shlibdeps file readelf; do
  command -v "$tool" >/dev/null || { echo "deb.sh: $tool not found (dpkg-dev, file, binutils)" >&2; exit 1; }
done
w=$(mktemp -d "${TMPDIR:-/tmp}/speadcast-deb.XXXXXX") || exit 1
trap 'rm -rf "$w"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }
b=$w/build

echo "== packaging build in a throwaway directory"
if ! { cmake -S "$src" -B "$b" -DCMAKE_INSTALL_PREFIX=/usr -DSPC_INSTALL_RPATH=OFF \
         -DSPC_BUILD_TESTS=OFF -DSPC_BUILD_BENCH=OFF -DSPC_WERROR=ON &&
       cmake --build "$b" -j"$jobs" &&
       (cd "$b" && cpack -G DEB); } >"$w/build.log" 2>&1; then
  tail -n 40 "$w/build.log" >&2
  exit 1
fi
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:[A-Z]*=//p' "$b/CMakeCache.txt")
libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:[A-Z]*=//p' "$b/CMakeCache.txt")
soname=$(readelf -d "$b"/core/libspeadcast.so | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
lib=$(echo "$soname" | sed 's/\.so\.\([0-9]*\)$/\1/')   # libspeadcast.so.0 -> libspeadcast0
echo "version $version, $soname, libdir /usr/$libdir"
declare -A deb
for f in "$b"/*.deb; do deb[$(dpkg-deb -f "$f" Package)]=$f; done
echo "packages: ${!deb[*]}"

# contents PKG: the files and links of a package, one path a line, without the leading .
contents() { dpkg-deb -c "${deb[$1]}" | awk '$1 !~ /^d/ {print substr($6, 2)}' | sort; }
depends() { dpkg-deb -f "${deb[$1]}" Depends; }
# has_dep PKG DEP: DEP (a name, or "name (op version)") is in PKG's Depends.
has_dep() { depends "$1" | tr ',' '\n' | sed 's/^ *//; s/ *$//' |
            awk -v d="$2" '$0 == d || index($0, d " (") == 1 {f = 1} END {exit !f}'; }
expect_dep() { if has_dep "$1" "$2"; then pass "$1 depends on $2"; else fail "$1: Depends lacks '$2': $(depends "$1")"; fi; }

# --- which plugin goes where: own package when it links a library beyond libc/libm
plugin_pkg=()
declare -A expected=([$lib]=1 [libspeadcast-dev]=1 [speadcast-tools]=1)
for so in "$b"/core/speadcast/plugins/speadcast-*.so; do
  [ -e "$so" ] || continue
  name=$(basename "$so" .so); name=${name#speadcast-}
  own=$(readelf -d "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' |
        grep -vE '^(libc|libm|libpthread|libdl|librt)\.so\.|^ld-linux' || true)
  if [ -n "$own" ]; then pkg=speadcast-plugin-$name; else pkg=speadcast-plugins; fi
  expected[$pkg]=1
  plugin_pkg+=("$name:$pkg:$(echo $own)")
done
for p in "${!expected[@]}"; do [ -n "${deb[$p]:-}" ] || fail "package $p not built"; done
for p in "${!deb[@]}"; do [ -n "${expected[$p]:-}" ] || fail "unexpected package $p"; done

# --- file lists
DESTDIR=$w/stage cmake --install "$b" >/dev/null
(cd "$w/stage" && find . ! -type d | sed 's/^\.//' | sort) >"$w/installed"
for p in "${!deb[@]}"; do contents "$p"; done | sort >"$w/packaged"
if diff -u "$w/installed" "$w/packaged" >"$w/diff"; then
  pass "the packages hold exactly what cmake --install installs ($(wc -l <"$w/installed") files, none twice)"
else
  fail "packages differ from cmake --install (- installed only, + packaged only or twice):"; cat "$w/diff" >&2
fi
L=/usr/$libdir
# holds PKG PATH...: each PATH is in PKG.
holds() {
  local p=$1 f; shift
  for f in "$@"; do contents "$p" | grep -qxF "$f" || fail "$p lacks $f"; done
}
holds "$lib" "$L/$soname"
contents "$lib" | grep -vE "^$L/libspeadcast\.so\.[0-9.]+\$" >"$w/extra" && fail "$lib holds more than the library: $(cat "$w/extra")"
holds libspeadcast-dev "$L/libspeadcast.so" "$L/pkgconfig/speadcast.pc" "$L/cmake/speadcast/speadcastConfig.cmake" \
  "$L/cmake/speadcast/speadcastConfigVersion.cmake" "$L/cmake/speadcast/speadcast_add_plugin.cmake"
for h in "$src"/core/include/speadcast/*.h; do holds libspeadcast-dev "/usr/include/speadcast/${h##*/}"; done
for t in send recv bench info demo; do
  holds speadcast-tools "/usr/bin/speadcast-$t" "/usr/share/man/man1/speadcast-$t.1.gz"
done
for e in "${plugin_pkg[@]}"; do
  IFS=: read -r name pkg own <<<"$e"
  holds "$pkg" "$L/speadcast/plugins/speadcast-$name.so"
done
[ "$failures" -eq 0 ] && pass "file lists: library in $lib, development files in libspeadcast-dev, tools and man pages in speadcast-tools; $(for e in "${plugin_pkg[@]}"; do IFS=: read -r name pkg own <<<"$e"; printf '%s in %s, ' "$name" "$pkg"; done | sed 's/, $//')"

# --- Depends
rm -rf "$w/root" && mkdir "$w/root"
for p in "${!deb[@]}"; do dpkg-deb -x "${deb[$p]}" "$w/root"; done
find "$w/root" -type f | while read -r f; do
  file -b "$f" | grep -q '^ELF' || continue
  readelf -d "$f" | grep -qE '\((RUNPATH|RPATH)\)' && echo "${f#$w/root}"
done >"$w/rpath"
if [ -s "$w/rpath" ]; then fail "RUNPATH in: $(cat "$w/rpath")"; else pass "no RUNPATH in any packaged binary"; fi
for d in libjansson4 libltdl7 libc6; do expect_dep "$lib" "$d"; done
expect_dep libspeadcast-dev "$lib (= $version-1)"
expect_dep speadcast-tools "$lib (= $version-1)"
expect_dep speadcast-tools "speadcast-plugins (= $version-1)"
declare -A seen
for e in "${plugin_pkg[@]}"; do
  IFS=: read -r name pkg own <<<"$e"
  [ -n "${seen[$pkg]:-}" ] || expect_dep "$pkg" "$lib (= $version-1)"
  seen[$pkg]=1
  for so in $own; do
    # The Debian package that provides the library this plugin links.
    owner=$(dpkg -S "*/$so" 2>/dev/null | head -n 1 | cut -d: -f1)
    if [ -n "$owner" ]; then expect_dep "$pkg" "$owner"; else fail "$pkg: no package owns $so"; fi
  done
done
extra=$(depends speadcast-plugins | tr ',' '\n' | sed 's/^ *//; s/ .*//' | grep -vxE "$lib|libc6")
if [ -z "$extra" ]; then pass "speadcast-plugins depends on $lib and libc6 only"; else
  fail "speadcast-plugins pulls in: $extra"; fi
dpkg-deb --ctrl-tarfile "${deb[$lib]}" | tar -xO ./shlibs >"$w/shlibs" 2>/dev/null
if grep -qx "${soname%%.so*} ${soname##*.so.} $lib (>= $version-1)" "$w/shlibs"; then
  pass "shlibs: $(cat "$w/shlibs")"
else
  fail "shlibs of $lib: '$(cat "$w/shlibs")'"
fi

# --- apt accepts them as the README installs them (simulated: nothing is installed here)
if command -v apt-get >/dev/null; then
  if apt-get install -s "${deb[@]}" >"$w/apt" 2>&1; then
    sed -n 's/^Inst \([^ ]*\) .*/\1/p' "$w/apt" | sort >"$w/inst"
    lacking=$(printf '%s\n' "${!deb[@]}" | sort | comm -23 - "$w/inst")
    others=$(comm -13 <(printf '%s\n' "${!deb[@]}" | sort) "$w/inst")
    if [ -z "$lacking" ]; then
      pass "apt-get install -s ./*.deb: all ${#deb[@]} packages${others:+, with $(echo $others) from the archive}"
    else
      fail "apt-get install -s leaves out: $(echo $lacking)"
    fi
  else
    fail "apt-get install -s ./*.deb:"; tail "$w/apt" >&2
  fi
fi

# --- unpacked: the tools, the plugins beside the library, the man pages
echo "== packages unpacked into a throwaway root"
SPC_LIBRARY_PATH=$w/root$L bash "$(dirname "$0")/../install/check-installed.sh" \
  "$w/root/usr" "$libdir" "$b" $(for e in "${plugin_pkg[@]}"; do echo "speadcast-${e%%:*}"; done) ||
  failures=$((failures + 1))
# The -dev package: the third-party example plugin builds with find_package(speadcast)
# and sends through its plugin.
ex=$src/examples/thirdparty-plugin
if cmake -S "$ex" -B "$w/ex" -DCMAKE_PREFIX_PATH="$w/root/usr" >"$w/ex.log" 2>&1 &&
   cmake --build "$w/ex" >>"$w/ex.log" 2>&1; then
  printf '{"transport": "examplefile", "plugin_path": ["%s"], "options": {"path": "%s"}}\n' \
    "$w/ex" "$w/ex.spead" >"$w/ex.json"
  if LD_LIBRARY_PATH=$w/root$L "$w/ex/example-send" "$w/ex.json" >>"$w/ex.log" 2>&1 &&
     LD_LIBRARY_PATH=$w/root$L "$w/ex/example-send" --verify "$w/ex.spead" >>"$w/ex.log" 2>&1; then
    pass "libspeadcast-dev: the example plugin builds with find_package and sends"
  else
    fail "example plugin against the packages:"; tail "$w/ex.log" >&2
  fi
else
  fail "example plugin does not build against libspeadcast-dev:"; tail -n 20 "$w/ex.log" >&2
fi

if [ "$failures" -gt 0 ]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "Debian packages: all checks passed"
