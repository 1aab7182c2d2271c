#!/bin/sh
# Runs every libFuzzer target of a fuzz build (preset "fuzz", `make fuzz`)
# for SECONDS each, one after the other, and prints per target the
# executions, executions per second, coverage (libFuzzer's "cov": covered
# code edges, and "ft": features) and whether it crashed
# (docs/security.md, "Fuzzing").
#   scripts/fuzz.sh BUILD_DIR SECONDS [TARGET...]
# Each target starts from its committed seeds (tests/fuzz/corpus/<target>/)
# plus what earlier runs found (BUILD_DIR/fuzz-corpus/<target>/, where new
# inputs go), with its dictionary (tests/fuzz/dict/<target>.dict) when there
# is one. A crash leaves its input in BUILD_DIR/fuzz-artifacts/ and the full
# log in BUILD_DIR/fuzz-logs/<target>.log; the script goes on with the next
# target and exits 1 at the end.
set -eu

build=${1:?usage: scripts/fuzz.sh BUILD_DIR SECONDS [TARGET...]}
seconds=${2:?usage: scripts/fuzz.sh BUILD_DIR SECONDS [TARGET...]}
shift 2
src=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -gt 0 ]; then
  targets="$*"
else
  targets=$(cat "$build/fuzz_targets.txt")
fi
mkdir -p "$build/fuzz-corpus" "$build/fuzz-artifacts" "$build/fuzz-logs"

failed=0
printf '%-15s %12s %10s %8s %8s %9s  %s\n' target executions exec/s cov ft counters result
for t in $targets; do
  exe=$(find "$build" -name "${t}_fuzz" -type f -perm -u+x | head -n 1)
  if [ -z "$exe" ]; then
    echo "fuzz.sh: no executable ${t}_fuzz under $build" >&2
    failed=1
    continue
  fi
  work="$build/fuzz-corpus/$t"
  mkdir -p "$work"
  dict=""
  [ -f "$src/tests/fuzz/dict/$t.dict" ] && dict="-dict=$src/tests/fuzz/dict/$t.dict"
  log="$build/fuzz-logs/$t.log"
  status=0
  # shellcheck disable=SC2086
  "$exe" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$build/fuzz-artifacts/$t-" $dict "$work" "$src/tests/fuzz/corpus/$t" \
    >"$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
  counters=$(sed -n 's/.*(\([0-9]*\) inline 8-bit counters).*/\1/p' "$log" | head -n 1)
  result=ok
  if [ "$status" -ne 0 ]; then
    result="CRASH (exit $status; see $log)"
    failed=1
  fi
  printf '%-15s %12s %10s %8s %8s %9s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" \
    "${ft:-?}" "${counters:-?}" "$result"
done
exit $failed
