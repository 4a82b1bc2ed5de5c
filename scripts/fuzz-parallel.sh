#!/bin/sh
# fuzz-parallel.sh BINARY SECONDS HARNESS:JOBS... - long fuzzing runs on many
# cores with the one-binary build (sh scripts/fuzz.sh multi). Each harness
# runs JOBS libFuzzer processes (-jobs=JOBS -workers=JOBS) on one shared
# corpus, seeded as scripts/fuzz.sh seeds it, for SECONDS each, all harnesses
# at once. Output under $FUZZ_OUT (default ./fuzz-par): per harness the
# corpus, the jobs' logs (fuzz-N.log) and any crash-/leak-/timeout-/oom-
# artifacts. Prints each harness's total executions (the sum of the jobs'
# stat::number_of_executed_units) and a JSON line; exits 1 on any finding
# or when a job ran no input. Timeouts per harness as scripts/fuzz.sh sets
# them (sh scripts/fuzz.sh timeout HARNESS).
#   e.g. sh scripts/fuzz-parallel.sh fuzz-out/fuzz_multi 720 safetensors:13 model:8 checkpoint:5 image:5 resume:1
#   (32 cores; bench/RESULTS.md "Fuzzing throughput" has the per-core rates)
set -eu
[ $# -ge 3 ] || { echo "usage: fuzz-parallel.sh BINARY SECONDS HARNESS:JOBS..." >&2; exit 2; }
bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
secs=$2
shift 2
top=$(cd "$(dirname "$0")/.." && pwd)
out=${FUZZ_OUT:-$PWD/fuzz-par}
mkdir -p "$out"
sh "$top/scripts/fuzz.sh" seed "$out/seeds"
for hj in "$@"; do
    h=${hj%%:*} j=${hj#*:}
    d="$out/$h"
    mkdir -p "$d/corpus"
    cp "$out/seeds/corpus_$h"/* "$d/corpus/" 2>/dev/null || true
    (cd "$d" && FUZZ_HARNESS=$h ASAN_OPTIONS=detect_leaks=1 "$bin" -jobs="$j" -workers="$j" -max_total_time="$secs" \
        -max_len=65536 -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout="$(sh "$top/scripts/fuzz.sh" timeout "$h")" \
        -print_final_stats=1 corpus \
        > driver.log 2>&1) &
done
wait
status=0
json="{\"seconds\": $secs"
for hj in "$@"; do
    h=${hj%%:*} j=${hj#*:}
    d="$out/$h"
    n=$(cat "$d"/fuzz-*.log 2>/dev/null | sed -n 's/^stat::number_of_executed_units: *//p' | awk '{s += $1} END {print s + 0}')
    ran=$(cat "$d"/fuzz-*.log 2>/dev/null | grep -c '^stat::number_of_executed_units' || true)
    found=$(ls "$d" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' | wc -l)
    errs=$(cat "$d"/fuzz-*.log 2>/dev/null | grep -c -E '==[0-9]+==ERROR|runtime error:|libFuzzer: (out-of-memory|timeout)' || true)
    echo "fuzz_$h: $n executions in $j jobs x ${secs}s ($ran jobs reported), $found artifacts, $errs error reports"
    json="$json, \"$h\": {\"jobs\": $j, \"executions\": $n, \"artifacts\": $found, \"errors\": $errs}"
    if [ "$found" -ne 0 ] || [ "$errs" -ne 0 ] || [ "$ran" -ne "$j" ]; then
        status=1
        grep -h -A30 -E '==[0-9]+==ERROR|runtime error:|libFuzzer: (out-of-memory|timeout)' "$d"/fuzz-*.log | head -60 >&2 || true
    fi
done
echo "$json}" | tee "$out/summary.json"
exit $status
