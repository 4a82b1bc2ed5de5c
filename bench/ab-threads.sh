#!/bin/sh
# bench/ab-threads.sh - two vmamba builds side by side, interleaved: s1l8 FP32 / BF16 / INT8 and vanilla-tiny FP32
# at 1 and 2 threads, batch 1, 224x224. Prints per config the median over rounds of each run's median latency for
# OLD and NEW, NEW/OLD, and each build's 1->2 thread speed-up. On a loaded machine run it with
# OMP_WAIT_POLICY=passive and many rounds: the ratios are what to read.
# usage: sh bench/ab-threads.sh OLD_BIN NEW_BIN [ROUNDS] [OUT.jsonl]
set -e
OLD=$1; NEW=$2; ROUNDS=${3:-5}; OUT=${4:-ab-threads.jsonl}
T=${TMPDIR:-/tmp}/vm-ab.$$; mkdir -p "$T"; trap 'rm -rf "$T"' EXIT
D=$(cd "$(dirname "$0")" && pwd)
. "$D/ab-common.sh"
$NEW convert vmamba-tiny-s1l8 -o "$T/s1l8.safetensors" >/dev/null
$NEW calibrate -m "$T/s1l8.safetensors" --images "$D/../samples/digits" --samples 8 -o "$T/int8.safetensors" --threads 2 >/dev/null 2>&1
: > "$OUT"
# run BIN ARGS ITERS: one latency run at $th threads.
run() { $1 bench $2 --threads $th --iters $3 --warmup 2 --json; }
for r in $(seq "$ROUNDS"); do
  for th in 2 1; do
    ab_interleave "$OLD" "$NEW" "$T/int8.safetensors" "$OUT" "\"round\": $r, " run
  done
done
/usr/bin/python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
by = {}
for r in rows: by.setdefault((r["label"], r["build"], r["threads"]), []).append(r["latency_ms_median"])
m = {k: statistics.median(v) for k, v in by.items()}
print("| config | old 2 thr | new 2 thr | new/old | old 1 thr | new 1 thr | new/old | 1->2 old | 1->2 new |")
print("|---|---|---|---|---|---|---|---|---|")
for l in dict.fromkeys(r["label"] for r in rows):
    o2, n2, o1, n1 = m[(l, "old", 2)], m[(l, "new", 2)], m[(l, "old", 1)], m[(l, "new", 1)]
    print(f"| {l} | {o2:.1f} | {n2:.1f} | {n2/o2:.3f} | {o1:.1f} | {n1:.1f} | {n1/o1:.3f} | {o1/o2:.2f}x | {n1/n2:.2f}x |")
PY
