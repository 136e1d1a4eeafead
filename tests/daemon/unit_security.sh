#!/bin/sh
# unit_security.sh SRC_DIR - flasherd.service: `systemd-analyze security
# --offline=yes` must rate it at or below fwupd's exposure (6.0), and the
# directives the daemon's safety rests on must be there. Exit 77 (skip)
# without systemd-analyze.
set -eu
unit="$1/flasherd/dist/flasherd.service"
if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "systemd-analyze not found: skipped"
	exit 77
fi
status=0
for d in 'User=flasherd' 'CapabilityBoundingSet=$' 'NoNewPrivileges=yes' 'PrivateTmp=yes' \
	'RestrictAddressFamilies=AF_UNIX$' 'MemoryMax=' 'WatchdogSec=' 'Type=notify' 'ProtectSystem=strict'; do
	if ! grep -Eq "^$d" "$unit"; then
		echo "missing directive: $d"
		status=1
	fi
done
out=$(systemd-analyze security --offline=yes --no-pager "$unit" 2>&1) || true
level=$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
if [ -z "$level" ]; then
	printf '%s\n' "$out" | tail -n 20
	echo "no exposure level in the output"
	exit 1
fi
echo "flasherd.service exposure: $level (fwupd: 6.0)"
if ! awk -v l="$level" 'BEGIN { exit !(l <= 6.0) }'; then
	printf '%s\n' "$out" | grep '✗' || true
	echo "exposure $level is above 6.0"
	status=1
fi
exit $status
