#!/usr/bin/env bash
# bench/run.sh [--runs N] [--quick] [--sections] [BUILD_DIR] - update
# benchmark against flasher-devsim.
#
# Builds flasher, flasher-devsim and bench_update (RelWithDebInfo, tests
# off) and prints one table (bench/update_table.py): first installs and
# steady-state updates (a unit updated twice before: both slots full) of a
# 383 KiB CM7 + 383 KiB CM4 package, firmware-like data compressed and
# random data raw, over devsim's default link model with --timing real.
# Each row has its floor, computed step by step from the run's own
# devsim --stats and printed under the table (link time of the bytes sent;
# erases and programs per bank, the banks in parallel; the resets'
# re-enumeration), and the seed's path for the same images (ST ROM DfuSe:
# 2 KiB blocks per ~104 ms poll plus a sector erase per touched sector,
# computed from the same flash model), with the ratio to each.
#   --runs N    repeat every row N times and print the medians
#   --quick     --timing none (the flash costs nothing: link-bound rows)
#   --sections  then run the other benchmarks (every bench/*.sh but this
#               one: crypto, daemon, fleet, and any added later), each
#               under its own heading; without it they are listed
# No timed assertions anywhere: this prints, it does not judge.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
ARGS=() SECTIONS=0 BUILD=
while [ $# -gt 0 ]; do
	case $1 in
	--runs) ARGS+=(--runs "$2"); shift 2 ;;
	--quick) ARGS+=(--quick); shift ;;
	--sections) SECTIONS=1; shift ;;
	-h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "bench/run.sh: unknown option $1" >&2; exit 2 ;;
	*) BUILD=$1; shift ;;
	esac
done
BUILD=${BUILD:-$ROOT/build-bench}
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFLASHER_BUILD_TESTS=OFF >"$BUILD.cfg.log" 2>&1 ||
	{ echo "configure failed: $BUILD.cfg.log"; exit 1; }
cmake --build "$BUILD" -j2 --target flasher_cli flasher_devsim bench_update >"$BUILD.build.log" 2>&1 ||
	{ echo "build failed: $BUILD.build.log"; exit 1; }
python3 "$ROOT/bench/update_table.py" --build "$BUILD" ${ARGS[@]+"${ARGS[@]}"}

# the other benchmarks: one section each (the hook for bench scripts added
# later, e.g. the bootloader's erase counts: drop a bench/NAME.sh here)
OTHERS=()
for s in "$ROOT"/bench/*.sh; do
	[ "$(basename "$s")" = run.sh ] || OTHERS+=("$s")
done
echo
if [ "$SECTIONS" = 1 ]; then
	for s in ${OTHERS[@]+"${OTHERS[@]}"}; do
		echo "## bench/$(basename "$s")"
		bash "$s" || echo "(bench/$(basename "$s") failed: exit $?)"
		echo
	done
else
	echo "other benchmarks (bench/run.sh --sections runs them here):$(for s in ${OTHERS[@]+"${OTHERS[@]}"}; do printf ' bench/%s' "$(basename "$s")"; done)"
fi
