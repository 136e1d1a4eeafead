#!/bin/sh
# size-report.sh ELF [FLASH_BUDGET_BYTES] - print flash and RAM use of the
# bootloader and fail when flash (text + data) exceeds the budget (default
# 64 KiB of its 128 KiB sector). Run as a post-build step and as a CTest test.
set -eu
elf=$1
budget=${2:-65536}
size_tool=${ARM_SIZE:-arm-none-eabi-size}
[ -f "$elf" ] || { echo "size-report: no such file: $elf" >&2; exit 2; }
set -- $("$size_tool" "$elf" | tail -n 1)
text=$1 data=$2 bss=$3
flash=$((text + data))
ram=$((data + bss))
pct=$((flash * 100 / budget))
echo "size-report: $(basename "$elf"): flash $flash B (text $text + data $data) of budget $budget B ($pct%), sector 131072 B; RAM $ram B (data $data + bss/stack $bss)"
if [ "$flash" -gt "$budget" ]; then
	echo "size-report: FAIL: bootloader flash $flash B exceeds the budget of $budget B" >&2
	exit 1
fi
