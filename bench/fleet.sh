#!/usr/bin/env bash
# Fleet scaling of flasherd: update 1, 4 and 16 simulated units (devsim with
# the USB full-speed link model) in one batch each and print, per fleet
# size, the wall time relative to one unit and the daemon's CPU time and
# peak RSS per unit.
#
#   bench/fleet.sh [BUILD_DIR]      (default: build)
#   SIZES="1 4 16" IMAGE_KIB=256 NO_REBOOT=0 bench/fleet.sh build-rel
set -euo pipefail
BUILD=${1:-build}
SIZES=${SIZES:-1 4 16}
IMAGE_KIB=${IMAGE_KIB:-256}
NO_REBOOT=${NO_REBOOT:-0}
FLASHERD=$BUILD/flasherd/flasherd
DEVSIM=$BUILD/firmware/port/host/flasher-devsim
FLASHER=$BUILD/cli/flasher
for p in "$FLASHERD" "$DEVSIM" "$FLASHER"; do
  [ -x "$p" ] || { echo "missing $p (build the project first)" >&2; exit 1; }
done
W=$(mktemp -d /tmp/flasher-fleet-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT

head -c $((IMAGE_KIB * 1024 / 2)) /dev/urandom >"$W/cm7.bin"
head -c $((IMAGE_KIB * 1024 / 2)) /dev/urandom >"$W/cm4.bin"
"$FLASHER" pack --product demo --version 2.0.0 --cm7 "$W/cm7.bin" --cm4 "$W/cm4.bin" -o "$W/p.flpkg" >/dev/null

ticks=$(getconf CLK_TCK)
cpu_s() { awk -v t="$ticks" '{print ($14 + $15) / t}' "/proc/$1/stat"; }
hwm_kib() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

printf '%6s %10s %10s %12s %14s %12s %14s\n' units wall_s relative daemon_cpu_s cpu_per_unit_ms rss_peak_mib rss_per_unit_kib
base=""
for n in $SIZES; do
  d="$W/n$n"; mkdir -p "$d"; ports=()
  for i in $(seq 1 "$n"); do
    "$DEVSIM" --flash "$d/u$i.flash" --product demo --link "$d/u$i.pty" --link-rate usb-fs --quiet >"$d/u$i.out" &
    PIDS+=($!); ports+=(--port "$d/u$i.pty")
  done
  for i in $(seq 1 "$n"); do for _ in $(seq 100); do [ -e "$d/u$i.pty" ] && break; sleep 0.05; done; done
  "$FLASHERD" --socket "$d/s" --history "$d/h.jsonl" --no-usb --quiet --max-jobs "$n" --rescan-ms 500 "${ports[@]}" &
  dpid=$!; PIDS+=($dpid)
  for _ in $(seq 100); do [ -S "$d/s" ] && break; sleep 0.05; done
  # wait until the daemon lists every unit
  for _ in $(seq 100); do
    c=$("$FLASHER" fleet list --json --socket "$d/s" | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
    [ "$c" -ge "$n" ] && break; sleep 0.1
  done
  cpu0=$(cpu_s "$dpid")
  t0=$(date +%s.%N)
  extra=(); [ "$NO_REBOOT" = 1 ] && extra=(--no-reboot)
  "$FLASHER" fleet update "$W/p.flpkg" --all --json --socket "$d/s" "${extra[@]}" >"$d/events.jsonl" || echo "  (some units failed at n=$n: see $d/events.jsonl)" >&2
  t1=$(date +%s.%N)
  cpu1=$(cpu_s "$dpid"); hwm=$(hwm_kib "$dpid")
  kill "$dpid"; wait "$dpid" 2>/dev/null || true
  wall=$(echo "$t1 - $t0" | bc -l)
  [ -z "$base" ] && base=$wall
  printf '%6d %10.2f %10.2f %12.3f %14.1f %12.1f %14.0f\n' "$n" "$wall" "$(echo "$wall / $base" | bc -l)" \
    "$(echo "$cpu1 - $cpu0" | bc -l)" "$(echo "($cpu1 - $cpu0) * 1000 / $n" | bc -l)" \
    "$(echo "$hwm / 1024" | bc -l)" "$(echo "$hwm / $n" | bc -l)"
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; PIDS=()
done
