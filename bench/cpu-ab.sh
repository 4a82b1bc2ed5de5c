#!/bin/sh
# bench/cpu-ab.sh - two vmamba builds side by side at 1 thread, by CPU time (VMAMBA_PROFILE_CLOCK=cpu): the per-op
# profile of s1l8 FP32 / BF16 / INT8 and vanilla-tiny FP32, ROUNDS interleaved rounds, one JSON line per run. What
# A/B comparisons can use while other processes load the machine (wall-clock 2-thread runs cannot).
# usage: sh bench/cpu-ab.sh OLD_BIN NEW_BIN INT8.safetensors [ROUNDS] [OUT.jsonl]
#   (INT8.safetensors: e.g. `vmamba convert vmamba-tiny-s1l8 -o s1l8.safetensors` then
#    `vmamba calibrate -m s1l8.safetensors --images samples/digits --samples 8 -o INT8.safetensors`)
set -e
OLD=$1; NEW=$2; INT8=$3; ROUNDS=${4:-3}; OUT=${5:-cpu-ab.jsonl}
. "$(cd "$(dirname "$0")" && pwd)/ab-common.sh"
: > "$OUT"
# run BIN ARGS ITERS: one profiled run, always 10 iterations (ITERS is ab-threads.sh's).
run() { VMAMBA_PROFILE_CLOCK=cpu $1 bench $2 --threads 1 --iters 10 --warmup 2 --profile --json; }
for r in $(seq "$ROUNDS"); do
  ab_interleave "$OLD" "$NEW" "$INT8" "$OUT" "" run
done
/usr/bin/python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
by = {}
for r in rows: by.setdefault((r["label"], r["build"]), []).append(r["profile_ms"])
for l in dict.fromkeys(r["label"] for r in rows):
    o, n = by[(l, "old")], by[(l, "new")]
    so, sn = (statistics.median(sum(p.values()) for p in x) for x in (o, n))
    ops = "; ".join(f"{k} {statistics.median(p[k] for p in o):.2f} -> {statistics.median(p[k] for p in n):.2f}"
                    for k in o[0] if max(statistics.median(p[k] for p in o), statistics.median(p[k] for p in n)) > 0.05)
    print(f"{l}: sum of ops {so:.1f} -> {sn:.1f} ms ({sn / so:.3f}); {ops}")
PY
