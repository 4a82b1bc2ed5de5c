#!/bin/sh
# bench/thread-scaling.sh [VMAMBA_BIN] [THREADS...] - vmamba-tiny-s1l8 at 224 on the CPU: FP32, BF16 (where the CPU
# has it) and INT8 (the preset calibrated on the 8 bundled digit images, as in bf16-ab.sh), batch 1 and 8, for each
# thread count (default 1 2 4 8 16, capped at the cores), interleaved, one JSON line per run on stdout, then a table
# of medians (ms per batch, images/s, speed-up over 1 thread). Issue #14's thread-scaling table.
set -e
BIN=${1:-./vmamba}; [ $# -gt 0 ] && shift
CORES=$(nproc)
THREADS=${*:-1 2 4 8 16}
T=${TMPDIR:-/tmp}/vm-scaling.$$; mkdir -p "$T"
$BIN convert vmamba-tiny-s1l8 -o "$T/s1l8.safetensors" >/dev/null
$BIN calibrate -m "$T/s1l8.safetensors" --images samples/digits --samples 8 -o "$T/s1l8_int8.safetensors" >/dev/null 2>&1
bf16=1; $BIN bench --arch vmamba-tiny-s1l8 --precision bf16 --iters 1 --warmup 0 >/dev/null 2>&1 || bf16=0
: > "$T/all.jsonl"
for b in 1 8; do for th in $THREADS; do
  [ "$th" -le "$CORES" ] || continue
  it=$((b == 1 ? 20 : 6))
  for p in fp32 bf16 int8; do
    case $p in
    fp32) a="--arch vmamba-tiny-s1l8" ;;
    bf16) [ $bf16 = 1 ] || continue; a="--arch vmamba-tiny-s1l8 --precision bf16" ;;
    int8) a="-m $T/s1l8_int8.safetensors" ;;
    esac
    j=$($BIN bench $a --batch $b --threads $th --iters $it --warmup 2 --json)
    printf '{"precision": "%s", "batch": %s, "threads": %s, "bench": %s}\n' $p $b $th "$j" | tee -a "$T/all.jsonl"
  done
done; done
python3 - "$T/all.jsonl" <<'PY' || true
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
base = {}
print("| precision | batch | threads | ms/batch (median) | images/s | speed-up vs 1 thread |")
print("|---|---|---|---|---|---|")
for r in rows:
    ms = r["bench"]["latency_ms_median"]; k = (r["precision"], r["batch"])
    if r["threads"] == 1: base[k] = ms
    su = base[k] / ms if k in base else float("nan")
    print(f"| {r['precision']} | {r['batch']} | {r['threads']} | {ms:.2f} | {1000 * r['batch'] / ms:.1f} | {su:.2f}x |")
PY
rm -rf "$T"
