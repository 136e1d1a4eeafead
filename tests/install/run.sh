#!/usr/bin/env bash
# Installs the build into a temporary prefix, then builds a consumer with
# find_package(flasher) (shared and flasher::flasher_static) and another
# with pkg-config, and runs them.
set -euo pipefail
src=$1 build=$2 version=$3
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
test -f "$tmp/prefix/include/flasher.h"
libdir=$(ls -d "$tmp"/prefix/lib*/ | head -n 1)
cmake -S "$src/tests/install/consumer" -B "$tmp/cmake" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/cmake" >/dev/null
LD_LIBRARY_PATH=$libdir "$tmp/cmake/consumer" "$version"
# The static consumer must not need the shared library at run time.
"$tmp/cmake/consumer_static" "$version"
if readelf -d "$tmp/cmake/consumer_static" | grep -q 'libflasher\.so'; then
  echo "consumer_static links libflasher.so, not the static library" >&2
  exit 1
fi
export PKG_CONFIG_PATH=$libdir/pkgconfig
test "$(pkg-config --modversion flasher)" = "$version"
cc -o "$tmp/pc-consumer" "$src/tests/install/consumer/main.c" $(pkg-config --cflags --libs flasher)
LD_LIBRARY_PATH=$libdir "$tmp/pc-consumer" "$version"
echo "find_package(flasher) (shared and static) and pkg-config flasher build and run against the installed library"
