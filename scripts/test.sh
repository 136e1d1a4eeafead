#!/usr/bin/env bash
# Installs the dependencies, builds flasher twice (plain, and with ASan+UBSan)
# and runs every test in both builds. Exit status is non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
jobs=$(nproc)
run_suite() { # NAME BUILD_DIR CMAKE_ARGS...
  local name=$1 dir=$2; shift 2
  echo "=== $name: configure and build ($dir)"
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j"$jobs"
  echo "=== $name: tests"
  (cd "$dir" && ctest --output-on-failure -j"$jobs" --timeout 900)
}
run_suite "plain" build
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0 \
  run_suite "asan+ubsan" build-asan -DFLASHER_SANITIZE=ON -DFLASHER_BUILD_FIRMWARE=OFF
