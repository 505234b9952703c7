#!/bin/sh
# runtime-packages.sh BINARY...: prints, one a line, the Debian/Ubuntu
# packages that hold the shared libraries the binaries load (from ldd and
# dpkg -S). The images' build stage runs it so that the runtime stage installs
# exactly those packages, whatever the base distribution calls them; the
# manifest consistency test runs it on the local build.
set -eu
[ $# -ge 1 ] || { echo "usage: runtime-packages.sh BINARY..." >&2; exit 64; }
libs=$(for b in "$@"; do
  ldd "$b" | awk '/=> \// { print $3 } /^\t\/[^ ]+ \(/ { print $1 }'
done | sort -u)
for lib in $libs; do
  # usrmerge: the library may be registered under /lib or /usr/lib.
  real=$(readlink -f "$lib")
  pkg=""
  for p in "$lib" "$real" "/usr$lib" "/usr$real" "${lib#/usr}" "${real#/usr}"; do
    pkg=$(dpkg -S "$p" 2>/dev/null | head -n1 | cut -d: -f1) && [ -n "$pkg" ] && break
  done
  [ -n "$pkg" ] || { echo "runtime-packages.sh: no package holds $lib" >&2; exit 1; }
  echo "$pkg"
done | sort -u
