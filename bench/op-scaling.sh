#!/bin/sh
# bench/op-scaling.sh - per-op thread scaling of two vmamba builds side by side (wall clock: run it on a QUIET
# machine, e.g. the 16-core device host): s1l8 FP32 / BF16 / INT8 and vanilla-tiny FP32 (bench/ab-common.sh),
# batch 1, at each thread count, ROUNDS interleaved rounds (old, new per configuration), one JSON line per run; then
# per configuration and op the median ms at the lowest and highest thread count and the speed-up between them,
# old -> new. What says whether an op's work split or its barrier count is what keeps 1 -> 2 threads under 1.85x.
# usage: sh bench/op-scaling.sh OLD_BIN NEW_BIN INT8.safetensors [ROUNDS] ["THREADS"] [OUT.jsonl]
#   THREADS default "1 2"; e.g. "1 2 4 8 16" on the device host (the table uses the first and the last).
set -e
OLD=$1; NEW=$2; INT8=$3; ROUNDS=${4:-5}; THREADS=${5:-1 2}; OUT=${6:-op-scaling.jsonl}
. "$(cd "$(dirname "$0")" && pwd)/ab-common.sh"
: > "$OUT"
for r in $(seq "$ROUNDS"); do
  for TH in $THREADS; do
    run() { $1 bench $2 --threads "$TH" --iters 20 --warmup 3 --profile --json; }
    ab_interleave "$OLD" "$NEW" "$INT8" "$OUT" "\"round\": $r, " run
  done
done
/usr/bin/python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
ths = sorted({r["threads"] for r in rows}); lo, hi = ths[0], ths[-1]
by = {}
for r in rows: by.setdefault((r["label"], r["build"], r["threads"]), []).append(r)
def med(l, b, t, k=None):
    rs = by[(l, b, t)]
    return statistics.median(r["latency_ms_median"] if k is None else r["profile_ms"][k] for r in rs)
for l in dict.fromkeys(r["label"] for r in rows):
    print(f"\n{l}: forward {lo} thr / {hi} thr ms (speed-up), old -> new")
    print(f"| op | old {lo} | old {hi} | old x | new {lo} | new {hi} | new x |\n|---|---|---|---|---|---|---|")
    for k in [None] + list(by[(l, 'old', lo)][0]["profile_ms"]):
        v = [med(l, b, t, k) for b in ("old", "new") for t in (lo, hi)]
        if max(v) < 0.05: continue
        print(f"| {k or 'forward (median latency)'} | {v[0]:.2f} | {v[1]:.2f} | {v[0] / v[1]:.2f}x | {v[2]:.2f} | {v[3]:.2f} | {v[2] / v[3]:.2f}x |")
PY
