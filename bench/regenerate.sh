#!/bin/sh
# Regenerate the figures and charts of docs/benchmarks.md in docs/bench/:
# build ntender and the test guests, make a runc bundle whose program is a
# static hello, then run ntender bench and ntender measure.
#
# Usage, as root, from anywhere in the checkout:
#
#   SOLO5_HVT=/path/to/solo5-hvt SOLO5_SPT=/path/to/solo5-spt bench/regenerate.sh
#
# SOLO5_HVT and SOLO5_SPT name the upstream tenders to compare with. When
# they are unset, ntender looks for solo5-hvt and solo5-spt on PATH, and
# reports them as unavailable if they are missing. runc and a C compiler
# with a static libc are needed for the runc figures; without them runc is
# reported as unavailable. Extra arguments go to ntender bench and win
# over the script's, such as --runs=20.
set -eu

cd "$(dirname "$0")/.."
out=docs/bench
mkdir -p "$out"
make

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A runc bundle whose program is a static C hello.
bundle="$work/bundle"
runc_flag=
if command -v runc >/dev/null && command -v cc >/dev/null; then
	mkdir -p "$bundle/rootfs"
	printf '#include <unistd.h>\nint main(void) { write(1, "Hello\\n", 6); return 0; }\n' >"$work/hello.c"
	if cc -static -O2 -o "$bundle/rootfs/hello" "$work/hello.c"; then
		runc spec --bundle "$bundle"
		# runc spec writes an interactive "sh"; run hello without a
		# terminal instead.
		sed -i -e 's/"terminal": true/"terminal": false/' -e 's|"sh"|"/hello"|' "$bundle/config.json"
		runc_flag="--runc=$bundle"
	fi
fi

# Ten runs, twice the default, for firmer medians on the published page.
bin/ntender bench --runs=10 ${SOLO5_HVT:+--solo5-hvt="$SOLO5_HVT"} \
	${SOLO5_SPT:+--solo5-spt="$SOLO5_SPT"} ${runc_flag:+"$runc_flag"} "$@" \
	--json-file="$out/bench.json" --plot="$out/bench.png" >"$out/bench.txt"

# Twenty sampled runs per mode, four times the default: the kernel
# function counts are unions of samples, and with five runs the after-filter
# counts of spt and solo5-spt changed order between invocations.
measure() {
	bin/ntender measure --perf-runs=20 ${SOLO5_HVT:+--solo5-hvt="$SOLO5_HVT"} \
		${SOLO5_SPT:+--solo5-spt="$SOLO5_SPT"} "$@"
}

# hello in every mode, and runc running its static hello.
measure ${runc_flag:+"$runc_flag"} \
	--json-file="$out/measure.json" --plot="$out/measure.png" \
	--mem=4 tests/guests/build/hello.hvt Hello_Solo5 >"$out/measure.txt"

# The block path: 100 reads of 4 KiB from a 1 MiB file.
truncate -s 1M "$work/storage.img"
measure --json-file="$out/measure-blk.json" --plot="$out/measure-blk.png" \
	--mem=4 --block:storage="$work/storage.img" \
	tests/guests/build/bench_blk.hvt blkread 4096 100 >"$out/measure-blk.txt"

cat "$out/bench.txt" "$out/measure.txt" "$out/measure-blk.txt"
