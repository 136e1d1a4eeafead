#!/bin/sh
# run.sh SRC_DIR BUILD_DIR - build every tests/fuzz/fuzz_*.c as a libFuzzer
# target with clang and run each for a fixed number of runs.
#
# A target names what it needs in comment lines:
#   // fuzz-sources: path/relative/to/SRC_DIR.c ...
#   // fuzz-libs: -lz -lcjson
# Seed inputs are read from tests/fuzz/corpus/<target>/ (if present); new
# inputs found go to BUILD_DIR/corpus/<target>/. Crashes are written to
# BUILD_DIR/artifacts/.
# Environment: FUZZ_RUNS (default 20000), FUZZ_SEED (default 1), FUZZ_ONLY
# (run only targets whose name contains this). Exit 77 = skipped (no clang).
set -eu

if [ $# -ne 2 ]; then
	echo "usage: $0 SRC_DIR BUILD_DIR" >&2
	exit 2
fi
SRC=$(cd "$1" && pwd)
OUT=$2
CC=${FUZZ_CC:-clang}
RUNS=${FUZZ_RUNS:-20000}
SEED=${FUZZ_SEED:-1}

if ! command -v "$CC" >/dev/null 2>&1; then
	echo "fuzz: $CC not found, skipping"
	exit 77
fi
mkdir -p "$OUT/bin" "$OUT/artifacts"
OUT=$(cd "$OUT" && pwd)

CFLAGS="-g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined,float-cast-overflow -fno-sanitize-recover=all
 -fno-omit-frame-pointer -Wall -Wextra -Werror
 -I$SRC/firmware/core/include -I$SRC/libflasher/include -I$SRC/libflasher/src"

status=0
found=0
for target_src in "$SRC"/tests/fuzz/fuzz_*.c; do
	[ -e "$target_src" ] || continue
	name=$(basename "$target_src" .c)
	if [ -n "${FUZZ_ONLY:-}" ]; then
		case "$name" in *"$FUZZ_ONLY"*) ;; *) continue ;; esac
	fi
	found=$((found + 1))
	srcs=$(sed -n 's|^// fuzz-sources:||p' "$target_src" | tr '\n' ' ')
	libs=$(sed -n 's|^// fuzz-libs:||p' "$target_src" | tr '\n' ' ')
	extra=""
	for s in $srcs; do
		extra="$extra $SRC/$s"
	done
	echo "== $name: building"
	# shellcheck disable=SC2086
	if ! "$CC" $CFLAGS "$target_src" $extra $libs -o "$OUT/bin/$name"; then
		echo "== $name: BUILD FAILED"
		status=1
		continue
	fi
	mkdir -p "$OUT/corpus/$name"
	seeds=""
	[ -d "$SRC/tests/fuzz/corpus/$name" ] && seeds="$SRC/tests/fuzz/corpus/$name"
	echo "== $name: $RUNS runs, seed $SEED"
	# shellcheck disable=SC2086
	if "$OUT/bin/$name" -runs="$RUNS" -seed="$SEED" -max_len=12000 -timeout=20 -rss_limit_mb=2048 \
		-artifact_prefix="$OUT/artifacts/$name-" -print_final_stats=1 \
		"$OUT/corpus/$name" $seeds >"$OUT/$name.log" 2>&1; then
		tail -n 12 "$OUT/$name.log" | grep -E '^(#|Done|stat::number_of_executed_units|stat::new_units_added)' || true
		echo "== $name: ok"
	else
		tail -n 40 "$OUT/$name.log"
		echo "== $name: FAILED (log: $OUT/$name.log)"
		status=1
	fi
done
if [ "$found" -eq 0 ]; then
	echo "fuzz: no targets found under $SRC/tests/fuzz"
	exit 1
fi
exit $status
