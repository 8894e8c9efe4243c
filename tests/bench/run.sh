#!/bin/sh
# make bench: runs every benchmark in tests/bench (built into $1) and writes docs/benchmarks.md with
# their figures, the machine, and how to reproduce. Benchmarks print their own figures and compare
# against baselines measured in the same run; nothing here is a pass/fail test.
set -u
BIN=$1
OUT=${BENCH_OUT:-docs/benchmarks.md}
TMP=$(mktemp)
{
	echo "# Benchmarks"
	echo
	echo "Written by \`make bench\` on $(date -u '+%Y-%m-%d %H:%M UTC') from commit $(git describe --always --dirty 2>/dev/null || echo unknown)."
	echo "Each benchmark measures its baseline in the same run (ratios, not absolute times, are the point: the"
	echo "machine is shared and noisy). Reproduce with \`make bench\` (the load test alone: \`LOAD_SECONDS=600 make bench\`)."
	echo
	echo "## Machine"
	echo
	echo '```'
	echo "cpus:   $(nproc) x $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
	echo "memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
	echo "kernel: $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME")"
	echo "load:   $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min, before the run)"
	echo '```'
} > "$TMP"
for b in "$BIN"/bench_*; do
	[ -x "$b" ] || continue
	name=$(basename "$b")
	echo "== $name" >&2
	{
		echo
		echo "## $name"
		echo
		echo '```'
		"$b" 2>&1 | grep -v '^harness:'
		echo '```'
	} >> "$TMP"
done
mv "$TMP" "$OUT"
echo "bench: wrote $OUT" >&2
