#!/bin/sh
# bench/bf16-ab.sh - vmamba-tiny-s1l8 FP32 vs BF16 vs INT8, interleaved (one JSON line per run), then the
# CPU time of one forward at 1 thread (user+sys of 22 forwards minus that of 3, over 19: insensitive to other load),
# then the --profile breakdown of each at 2 threads.
# usage: sh bench/bf16-ab.sh [VMAMBA_BIN] [ROUNDS] [OUTPREFIX]
# The INT8 file is the preset converted and calibrated on the 8 bundled digit images (as in RESULTS.md).
set -e
BIN=${1:-./vmamba}; ROUNDS=${2:-5}; OUT=${3:-bf16-ab}
T=${TMPDIR:-/tmp}/vm-bf16-ab.$$; mkdir -p "$T"
$BIN convert vmamba-tiny-s1l8 -o "$T/s1l8.safetensors" >/dev/null
$BIN calibrate -m "$T/s1l8.safetensors" --images samples/digits --samples 8 -o "$T/s1l8_int8.safetensors" --threads 2 >/dev/null 2>&1
run() { # label, threads, iters, bench args...
  l=$1; th=$2; it=$3; shift 3
  /usr/bin/time -f "%U %S" -o "$T/t" $BIN bench --threads $th --iters $it --warmup 2 --json "$@" > "$T/j"
  printf '{"label": "%s", "cpu_s": %s, "bench": %s}\n' "$l" "$(awk '{print $1 + $2}' "$T/t")" "$(cat "$T/j")"
}
: > "$OUT.jsonl"
for r in $(seq "$ROUNDS"); do for th in 2 1; do
  run fp32 $th 20 --arch vmamba-tiny-s1l8 >> "$OUT.jsonl"
  run bf16 $th 20 --arch vmamba-tiny-s1l8 --precision bf16 >> "$OUT.jsonl"
  run int8 $th 20 -m "$T/s1l8_int8.safetensors" >> "$OUT.jsonl"
  if [ $th = 1 ]; then # the same with 1 timed forward: the difference is 19 forwards' CPU time
    run fp32-setup 1 1 --arch vmamba-tiny-s1l8 >> "$OUT.jsonl"
    run bf16-setup 1 1 --arch vmamba-tiny-s1l8 --precision bf16 >> "$OUT.jsonl"
    run int8-setup 1 1 -m "$T/s1l8_int8.safetensors" >> "$OUT.jsonl"
  fi
done; done
: > "$OUT-profile.txt"
for p in fp32 bf16; do $BIN bench --arch vmamba-tiny-s1l8 --threads 2 --iters 30 --profile --precision $p >> "$OUT-profile.txt"; done
$BIN bench -m "$T/s1l8_int8.safetensors" --threads 2 --iters 30 --profile >> "$OUT-profile.txt"
rm -rf "$T"
