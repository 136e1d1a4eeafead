#!/usr/bin/env bash
# bench/run.sh [BUILD_DIR] - update benchmark against flasher-devsim.
#
# Builds flasher, flasher-devsim and bench_update (RelWithDebInfo, tests
# off), makes two packages of a 383 KiB CM7 + 383 KiB CM4 image each (the
# slot size minus the 1 KiB header area: DESIGN.md's 512 KiB CM4 slot became
# 384 KiB in flboot/layout.h, because both cores now have primary +
# secondary slots of three 128 KiB sectors), one of random bytes and one of
# real Cortex-M code (.text of newlib's Thumb-2 libc from arm-none-eabi, or a
# code-like generated image when the toolchain is missing), and updates a
# fresh simulated unit with each, compressed and not, over the usb-fs link
# model (900000 B/s each way) and with no rate limit. With BENCH_REAL=1 it
# also runs one update with --timing real (erase 1.1 s/sector, program
# 200 us/word) to compare with the modeled erase+program floor.
#
# Columns: wire/payload = bytes written to the link per payload byte;
# xfer s = TRANSFER..ACTIVATE (sending + on-unit verification); total s = the
# whole update incl. reboot and the app's confirm; floor s = wire bytes /
# link rate (usb-fs only) or the modeled program floor (timing real);
# cpu s = host CPU (user+sys) of the updating process; rss = peak RSS (KiB)
# of the host process and of devsim (VmHWM).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build-bench}
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFLASHER_BUILD_TESTS=OFF >"$BUILD.cfg.log" 2>&1 ||
	{ echo "configure failed: $BUILD.cfg.log"; exit 1; }
cmake --build "$BUILD" -j2 --target flasher_cli flasher_devsim bench_update >"$BUILD.build.log" 2>&1 ||
	{ echo "build failed: $BUILD.build.log"; exit 1; }
FLASHER=$BUILD/cli/flasher
DEVSIM=$BUILD/firmware/port/host/flasher-devsim
BENCH=$BUILD/bench/bench_update
W=$(mktemp -d)
DEVSIM_PID=
trap '[ -n "$DEVSIM_PID" ] && kill "$DEVSIM_PID" 2>/dev/null; rm -rf "$W"' EXIT

SIZE=$((383 * 1024))
head -c $SIZE /dev/urandom >"$W/rand7.bin"
head -c $SIZE /dev/urandom >"$W/rand4.bin"
LIBC=$(ls /usr/lib/arm-none-eabi/newlib/thumb/v7e-m+dp/hard/libc.a 2>/dev/null || true)
if [ -n "$LIBC" ] && command -v arm-none-eabi-objcopy >/dev/null; then
	mkdir "$W/o" && (cd "$W/o" && ar x "$LIBC")
	for o in "$W"/o/*.o; do arm-none-eabi-objcopy -O binary --only-section=.text "$o" "$o.bin" 2>/dev/null || true; done
	cat "$W"/o/*.o.bin >"$W/code.bin"
	CODE_KIND="newlib Thumb-2 .text"
else
	python3 - "$W/code.bin" <<'PY'
import random, sys
r = random.Random(7); words = [r.getrandbits(32).to_bytes(4, 'little') for _ in range(2048)]
open(sys.argv[1], 'wb').write(b''.join(r.choice(words) for _ in range(200000)))
PY
	CODE_KIND="generated code-like words"
fi
while [ "$(stat -c %s "$W/code.bin")" -lt $((2 * SIZE)) ]; do cat "$W/code.bin" "$W/code.bin" >"$W/c2" && mv "$W/c2" "$W/code.bin"; done
head -c $SIZE "$W/code.bin" >"$W/code7.bin"
tail -c $SIZE "$W/code.bin" >"$W/code4.bin"
"$FLASHER" pack --product demo --version 1.0.0 --no-compress --cm7 "$W/rand7.bin" --cm4 "$W/rand4.bin" -o "$W/random.pkg" >/dev/null
"$FLASHER" pack --product demo --version 1.0.0 --no-compress --cm7 "$W/code7.bin" --cm4 "$W/code4.bin" -o "$W/firmware.pkg" >/dev/null

start_devsim() { # FLASH ARGS...
	local flash=$1; shift
	rm -f "$flash"
	"$DEVSIM" --flash "$flash" --quiet "$@" >"$W/devsim.out" &
	DEVSIM_PID=$!
	for _ in $(seq 100); do
		PTY=$(sed -n 's/^pty: *//p' "$W/devsim.out")
		[ -n "$PTY" ] && return 0
		sleep 0.05
	done
	echo "devsim did not start"; exit 1
}

printf '%-7s %-8s %-4s %8s %9s %7s %7s %7s %6s %6s %9s %9s\n' link data comp payload wire/payl "xfer s" "total s" "floor s" xf/fl "cpu s" "host rss" "sim rss"
run() { # LINK DATA COMPRESS [timing]
	local link=$1 data=$2 comp=$3 timing=${4:-none}
	start_devsim "$W/unit.flash" --link-rate "$link" --timing "$timing"
	local flag=; [ "$comp" = no ] && flag=--no-compress
	local out; out=$("$BENCH" "$PTY" "$W/$data.pkg" $flag) || { echo "update failed ($link $data $comp)"; exit 1; }
	local simrss; simrss=$(awk '/VmHWM/ {print $2}' "/proc/$DEVSIM_PID/status")
	kill "$DEVSIM_PID"; wait "$DEVSIM_PID" 2>/dev/null || true; DEVSIM_PID=
	eval "$out" # transfer_s seconds payload wire sent cpu rss_kb
	local floor=- ratio=-
	if [ "$timing" = real ]; then
		# a fresh unit's staging sectors are blank, so the core skips their
		# erase: the floor is one 200 us program per 32-byte word (or the
		# link, if slower); the total also holds the boot-time swap
		floor=$(awk -v p="$payload" -v w="$wire" 'BEGIN { f = (p / 32) * 0.0002; l = w / 900000; printf "%.2f", f > l ? f : l }')
	elif [ "$link" = usb-fs ]; then
		floor=$(awk -v w="$wire" 'BEGIN { printf "%.2f", w / 900000 }')
	fi
	[ "$floor" != - ] && ratio=$(awk -v t="$transfer_s" -v f="$floor" 'BEGIN { printf "%.2f", t / f }')
	printf '%-7s %-8s %-4s %8d %9.3f %7.2f %7.2f %7s %6s %6.2f %9d %9d\n' "$link$( [ "$timing" = real ] && echo '+t')" \
		"$data" "$comp" "$payload" "$(awk -v w="$wire" -v p="$payload" 'BEGIN { print w / p }')" "$transfer_s" "$seconds" \
		"$floor" "$ratio" "$cpu" "$rss_kb" "$simrss"
}
for link in usb-fs none; do
	for data in random firmware; do
		for comp in yes no; do run $link $data $comp; done
	done
done
[ "${BENCH_REAL:-0}" = 1 ] && run usb-fs firmware yes real
echo
echo "payload = 2 x $SIZE bytes; firmware data = $CODE_KIND"
