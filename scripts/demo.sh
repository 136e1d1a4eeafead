#!/usr/bin/env bash
# The main job, end to end on a fresh Debian 12 machine:
#  1. install the dependencies and build everything (library, CLI, daemon,
#     simulator, and the bootloader + example apps for the STM32H755);
#  2. pack the example application (the cross-built M7 and M4 ELFs) as
#     firmware 1.0.0 and 1.1.0, and inspect the package;
#  3. present a simulated unit as a USB CDC device (/dev/ttyACM0 in a
#     umockdev testbed, found by its serial number exactly as real hardware)
#     and update it twice through the CLI;
#  4. update a fleet of 4 units at once through the daemon, and print the
#     production report.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bash scripts/install-deps.sh
echo "== build"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
export PATH="$root/build/cli:$root/build/flasherd:$root/build/firmware/port/host:$root/build/tests/testbed:$PATH"

work=$(mktemp -d /tmp/flasher-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
app=build/firmware-arm/examples
if [ -f "$app/app-cm7.elf" ] && [ -f "$app/app-cm4.elf" ]; then
  # linked for slot A with --emit-relocs: pack relocates them to slot B
  images=(--cm7 "$app/app-cm7.elf" --cm4 "$app/app-cm4.elf")
else # no cross compiler: firmware-like raw images, one per slot
  python3 scripts/make-example-firmware.py "$work"
  images=(--cm7 "$work/cm7.bin" --cm7-b "$work/cm7-b.bin" --cm4 "$work/cm4.bin" --cm4-b "$work/cm4-b.bin")
fi

echo "== pack and inspect"
flasher pack --product demo --version 1.0.0 --hw A "${images[@]}" -o "$work/fw-1.0.0.pkg"
flasher pack --product demo --version 1.1.0 --hw A "${images[@]}" -o "$work/fw-1.1.0.pkg"
flasher inspect "$work/fw-1.1.0.pkg"
flasher verify "$work/fw-1.1.0.pkg"

echo "== one unit over USB CDC (umockdev testbed): list, update to 1.0.0, then to 1.1.0"
cat >"$work/one-unit.sh" <<'UNIT'
set -e
flasher list
serial=${FLASHER_TESTBED_SERIALS%% *}
flasher update "$serial" "$1/fw-1.0.0.pkg"
flasher update "$serial" "$1/fw-1.1.0.pkg"
flasher info "$serial"
UNIT
flasher-testbed --units 1 --flash-dir "$work" -- bash "$work/one-unit.sh" "$work"

echo "== a fleet of 4 units through flasherd"
cat >"$work/fleet.sh" <<'FLEET'
set -e
sock=$1/flasherd.sock
flasherd --socket "$sock" --history "$1/history.jsonl" --rescan-ms 500 --quiet &
daemon=$!
trap 'kill $daemon 2>/dev/null; wait $daemon 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
for _ in $(seq 100); do
  [ "$(flasher fleet list --socket "$sock" --json | grep -o '"uid"' | wc -l)" -ge 4 ] && break; sleep 0.2
done
flasher fleet list --socket "$sock"
flasher fleet update "$1/fw-1.1.0.pkg" --all --socket "$sock"
flasher fleet report --socket "$sock" --format csv
FLEET
mkdir -p "$work/fleet"
flasher-testbed --units 4 --flash-dir "$work/fleet" -- bash "$work/fleet.sh" "$work"
echo "== done: every unit runs 1.1.0"
