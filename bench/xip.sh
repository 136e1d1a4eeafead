#!/usr/bin/env bash
# bench/xip.sh [BUILD_DIR] - issue 9's table for bootloader v2 (run in place).
#
# On flasher-devsim with the product's layout (CM7 slots 384 KiB, CM4 slots
# 512 KiB) and a 380 KiB + 508 KiB package of random bytes:
#   - sector erases of a full update in steady state (the unit was updated
#     at least twice before, both slots of each core full), of a rollback
#     and of a trial that expires and reverts (from devsim --stats);
#   - the most-erased sector's lifetime in full updates, from the erase
#     counters of UPDATES_FOR_WEAR (default 64) updates in a row, at 10 000
#     erase cycles per sector (the metadata sector included: it is erased
#     when its staging log fills up);
#   - a steady-state update with datasheet flash timing (--timing real:
#     erase 1.1 s/sector, program 200 us/word, the two banks at once), the
#     median of RUNS (default 3), beside the per-bank floor and issue 9's
#     goal (1.3 x floor + 2 s for verify and reboot); also the modelled busy
#     time per bank from --stats;
#   - bench_flashsim: flashsim's wall time against its modelled time.
# Beside each figure: the landed v1 design's measured number (issue 9).
# Prints a table; asserts nothing.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build-bench}
RUNS=${RUNS:-3}
UPDATES_FOR_WEAR=${UPDATES_FOR_WEAR:-64}
if [ ! -x "$BUILD/cli/flasher" ] || [ ! -x "$BUILD/firmware/port/host/flasher-devsim" ] ||
	[ ! -x "$BUILD/bench/bench_flashsim" ]; then
	cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFLASHER_BUILD_TESTS=OFF >"$BUILD.cfg.log" 2>&1 ||
		{ echo "configure failed: $BUILD.cfg.log"; exit 1; }
	cmake --build "$BUILD" -j2 --target flasher_cli flasher_devsim bench_flashsim >"$BUILD.build.log" 2>&1 ||
		{ echo "build failed: $BUILD.build.log"; exit 1; }
fi
FLASHER=$BUILD/cli/flasher
DEVSIM=$BUILD/firmware/port/host/flasher-devsim
W=$(mktemp -d)
PID=
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$W"' EXIT

start() { # ARGS... (the unit is $W/u.flash)
	"$DEVSIM" --flash "$W/u.flash" --quiet "$@" >"$W/devsim.out" &
	PID=$!
	for _ in $(seq 100); do
		PTY=$(sed -n 's/^pty: *//p' "$W/devsim.out")
		[ -n "$PTY" ] && return 0
		sleep 0.05
	done
	echo "devsim did not start"; exit 1
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=; }
erases() { python3 -c "import json,sys; print(sum(json.load(open(sys.argv[1]))['sector_erases']))" "$1"; }

head -c $((380 * 1024)) /dev/urandom >"$W/cm7.bin"
head -c $((508 * 1024)) /dev/urandom >"$W/cm4.bin"
VER=0
pack() { # -> $W/p$VER.pkg, a new version of the same images
	VER=$((VER + 1))
	for c in cm7 cm4; do printf "v%d" "$VER" | dd of="$W/$c.bin" bs=1 seek=0 conv=notrunc status=none; done
	"$FLASHER" pack --product demo --version "7.0.$VER" --cm7 "$W/cm7.bin" --cm4 "$W/cm4.bin" \
		-o "$W/p$VER.pkg" >/dev/null
}
update() { "$FLASHER" update -q "$PTY" "$1" >"$W/update.log" 2>&1 || { echo "update failed: $(tail -n 2 "$W/update.log")"; exit 1; }; }

# steady state: first install + two updates, then the measured one
start
for _ in 1 2 3; do pack; update "$W/p$VER.pkg"; done
stop
pack
start --stats "$W/up.json"
update "$W/p$VER.pkg"
stop
E_UP=$(erases "$W/up.json")
start --stats "$W/rb.json"
"$FLASHER" rollback -q "$PTY" >/dev/null 2>&1 || { echo "rollback failed"; exit 1; }
stop
E_RB=$(erases "$W/rb.json")

# a trial that never confirms: staged and activated (its erases are the
# staging's), then boots on trial until the watchdog gives it up
pack
start
"$FLASHER" update -q --no-reboot "$PTY" "$W/p$VER.pkg" >/dev/null 2>&1 || { echo "trial staging failed"; exit 1; }
stop
start --stats "$W/tr.json" --app-no-confirm --trial-watchdog-ms 300
for _ in $(seq 100); do
	"$FLASHER" info "$PTY" --json >"$W/info.json" 2>/dev/null &&
		grep -q '"state": *"rolled_back"\|"state":"rolled_back"' "$W/info.json" && break
	sleep 0.2
done
stop
grep -q 'rolled_back' "$W/info.json" || { echo "the trial did not revert: $(head -c 300 "$W/info.json")"; exit 1; }
E_TR=$(erases "$W/tr.json")

# wear: many full updates in a row on one devsim run
for i in 1 2 3; do pack; cp "$W/p$VER.pkg" "$W/w$i.pkg"; done
start --stats "$W/wear.json"
for i in $(seq "$UPDATES_FOR_WEAR"); do update "$W/w$(( (i - 1) % 3 + 1 )).pkg"; done
stop

# real timing, steady state
: >"$W/times"
for _ in $(seq "$RUNS"); do
	pack
	start --timing real --stats "$W/real.json"
	t0=$(date +%s.%N)
	update "$W/p$VER.pkg"
	t1=$(date +%s.%N)
	stop
	echo "$t0 $t1" >>"$W/times"
done
FS=$("$BUILD/bench/bench_flashsim")

python3 - "$W" "$E_UP" "$E_RB" "$E_TR" "$UPDATES_FOR_WEAR" "$RUNS" <<'PY'
import json, statistics, sys
w, e_up, e_rb, e_tr, n_wear, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
times = [float(b) - float(a) for a, b in (l.split() for l in open(w + "/times"))]
t = statistics.median(times)
real = json.load(open(w + "/real.json"))
wear = json.load(open(w + "/wear.json"))["sector_erases"]
w7, w4 = (380 * 1024) // 32, (508 * 1024) // 32
floor = max(3 * 1.1 + w7 * 200e-6, 4 * 1.1 + w4 * 200e-6)
goal = 1.3 * floor + 2
worst = max(range(16), key=lambda s: wear[s])
per_update = wear[worst] / n_wear
life = 10000 / per_update if per_update else float("inf")
rows = [
    ("sector erases, full update (steady state)", f"{e_up}", "<= 8 (7 staged + 1)", "24"),
    ("sector erases, rollback", f"{e_rb}", "0", "18 (swap back)"),
    ("sector erases, trial revert", f"{e_tr}", "0", "18 (swap back)"),
    (f"update, --timing real (median of {runs})", f"{t:.1f} s", f"<= {goal:.1f} s", "~35 s"),
    ("  per-bank floor (datasheet)", f"{floor:.1f} s", "", ""),
    ("  modelled busy bank 1 / bank 2", "%.1f / %.1f s" % tuple(real["bank_busy_s"]), "", ""),
    (f"most-erased sector over {n_wear} updates", f"s{worst}: {wear[worst]}", "", "scratch: 6 per update"),
    ("  its lifetime (10 000 cycles)", f"{life:,.0f} updates", ">= 10,000", "~1,700 updates"),
]
print(f"{'bootloader v2, 380 KiB + 508 KiB package':44} {'measured':>16} {'goal':>20} {'v1 design (landed)':>22}")
for r in rows:
    print(f"{r[0]:44} {r[1]:>16} {r[2]:>20} {r[3]:>22}")
print("real-timing runs: " + ", ".join(f"{x:.1f}" for x in times) + " s (pack excluded; devsim defaults: usb-fs link)")
print("erases per sector over the wear run: " + " ".join(str(x) for x in wear))
PY
echo
echo "$FS"
