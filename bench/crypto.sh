#!/usr/bin/env bash
# bench/crypto.sh [BUILD_DIR] - what signed images cost the unit.
#
# Prints one table: the instructions a Cortex-M7 spends to check a signed
# 512 KiB image (SHA-256 over the payload, which the signature binds through
# the header, plus one ed25519 verification), measured on QEMU's
# mps2-an500 with -icount shift=0 (one instruction = 1 ns of virtual time;
# the figure is an instruction count, exact and repeatable), the time that
# means at the bootloader's 400 MHz if the M7 retires one instruction per
# cycle (it can dual-issue, so this is an upper estimate), and the
# bootloader's flash use against its 64 KiB budget.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build-bench}
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFLASHER_BUILD_TESTS=OFF >"$BUILD.cfg.log" 2>&1 ||
	{ echo "configure failed: $BUILD.cfg.log"; exit 1; }
cmake --build "$BUILD" -j2 --target flasher_firmware >"$BUILD.build.log" 2>&1 ||
	{ echo "build failed: $BUILD.build.log"; exit 1; }
FW=$BUILD/firmware-arm
ELF=$FW/qemu-verify/flasher-qemu-verify.elf
BOOT=$FW/flasher-boot-stm32h755.elf
command -v qemu-system-arm >/dev/null || { echo "qemu-system-arm not installed: no figures"; exit 1; }
out=$(timeout 300 qemu-system-arm -M mps2-an500 -display none -monitor none -serial none -icount shift=0 \
	-semihosting-config enable=on,target=native -kernel "$ELF" 2>&1)
get() { printf '%s\n' "$out" | awk -v k="$1" '$1 == k { print $2 }'; }
sha=$(get sha256_512k_insns); ed=$(get ed25519_verify_insns); ok=$(get verify_ok)
[ "$ok" = 1 ] || { echo "the verifier on the M7 did not accept the RFC 8032 vector: $out"; exit 1; }
boot=$(arm-none-eabi-size -A "$BOOT" | awk '$1 == ".isr_vector" || $1 == ".text" || $1 == ".rodata" || $1 == ".data" || $1 == ".ARM.exidx" { s += $2 } END { print s }')
printf '%-44s %14s %12s\n' "unit-side cost (Cortex-M7, QEMU icount)" "instructions" "ms @400MHz"
for row in "SHA-256 of a 512 KiB payload:$sha" "ed25519 verification of the header:$ed" "one signed 512 KiB image at boot or END:$((sha + ed))" "both cores' images (384 + 512 KiB) at boot:$((sha * 896 / 512 + 2 * ed))"; do
	name=${row%%:*}; n=${row##*:}
	awk -v name="$name" -v n="$n" 'BEGIN { printf "%-44s %14d %12.1f\n", name, n, n / 400000 }'
done
awk -v b="$boot" 'BEGIN { printf "%-44s %14s %12s\n", "bootloader flash use (flash sections)", b " B", sprintf("%.1f%% of 64K", b * 100 / 65536) }'
