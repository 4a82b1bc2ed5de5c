#!/bin/sh
# fuzz.sh [SECONDS] - build the libFuzzer harness for the checkpoint parser
# with clang (ASan + UBSan) and run it for a bounded time over the seed
# corpus (the small golden checkpoints and loader fixtures). Exits non-zero
# on any crash, leak or sanitizer report. Prints the execution count.
set -eu
secs=${1:-60}
top=$(cd "$(dirname "$0")/.." && pwd)
out=${FUZZ_OUT:-$top/fuzz-out}
command -v clang >/dev/null || { echo "fuzz.sh: clang not found (Debian package 'clang')" >&2; exit 1; }
mkdir -p "$out/corpus"
src="$top/src"
clang -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    -I"$top/src" -I"$top/include" \
    "$top/tests/fuzz/fuzz_checkpoint.c" "$src/loaders/checkpoint.c" "$src/loaders/pickle.c" \
    "$src/loaders/zipread.c" "$src/core/util.c" -o "$out/fuzz_checkpoint"
# Seeds: small real checkpoints (the fuzzer mutates from valid structure).
for f in "$top"/tests/fuzz/corpus/*; do
    [ -f "$f" ] && cp "$f" "$out/corpus/" || true
done
cd "$out"
./fuzz_checkpoint -max_total_time="$secs" -max_len=8192 -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 corpus 2>&1 | tee fuzz.log | grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|==[0-9]+==ERROR|SUMMARY)" || true
grep -q "stat::number_of_executed_units" fuzz.log || { echo "fuzz.sh: fuzzer did not finish cleanly" >&2; tail -30 fuzz.log >&2; exit 1; }
