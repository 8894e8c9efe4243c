#!/bin/sh
# Runs libFuzzer targets one after the other and prints what they did (make fuzz, make fuzz-smoke).
#
#   tests/fuzz/run.sh FUZZ_DIR SECONDS TARGET...
#
# Each FUZZ_DIR/TARGET runs for SECONDS on a working corpus FUZZ_DIR/corpus/TARGET/ (new inputs land
# there) plus the committed seeds tests/fuzz/corpus/TARGET/ (never written), with the dictionary
# tests/fuzz/TARGET.dict when there is one. SECONDS = 0 only replays the seeds. Findings (crash-,
# leak-, timeout-, oom- files) go to FUZZ_DIR/artifacts/TARGET/, libFuzzer's output to
# FUZZ_DIR/logs/TARGET.log. Prints a table (target, executions, crashes) and exits 1 when any
# target found something.
set -u

dir=$1
secs=$2
shift 2
src=$(cd "$(dirname "$0")" && pwd)
total_execs=0
total_crashes=0
table=""

for t in "$@"; do
	work="$dir/corpus/$t"
	art="$dir/artifacts/$t"
	log="$dir/logs/$t.log"
	seeds="$src/corpus/$t"
	mkdir -p "$work" "$art" "$dir/logs" "$seeds"
	rm -f "$art"/*
	set -- -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$art/"
	[ -f "$src/$t.dict" ] && set -- "$@" -dict="$src/$t.dict"
	if [ "$secs" -gt 0 ]; then
		set -- "$@" -max_total_time="$secs" "$work" "$seeds"
	else
		set -- "$@" -runs=0 "$seeds"
	fi
	printf '  FUZZ    %-28s %ss\n' "$t" "$secs"
	"$dir/$t" "$@" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	[ -n "$execs" ] || execs=0
	crashes=$(find "$art" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
	if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then
		crashes=1 # died without an artifact: still a finding (see the log)
	fi
	if [ "$crashes" -gt 0 ]; then
		echo "  FOUND   $t: see $log and $art/" >&2
	fi
	total_execs=$((total_execs + execs))
	total_crashes=$((total_crashes + crashes))
	table="$table$(printf '| %s | %s | %s |' "$t" "$execs" "$crashes")
"
done

echo
echo "| target | executions | crashes |"
echo "|---|---:|---:|"
printf '%s' "$table"
echo "| total | $total_execs | $total_crashes |"
[ "$total_crashes" -eq 0 ]
