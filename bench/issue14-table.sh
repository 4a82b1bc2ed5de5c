#!/bin/sh
# bench/issue14-table.sh - issue #14's whole table in one interleaved run (a few minutes on the 2-core machine):
# vmamba-tiny-s1l8 FP32 / BF16 / INT8 (+ INT8 with --precision bf16: INT8 GEMMs, the FP32 remainder's convolutions and
# x_proj/dt_proj in bf16) and vanilla-vmamba-tiny FP32, at 1 and 2 threads, batch 1 and 8; ConvNeXt-T, Swin-T,
# ResNet-50 on ONNX Runtime (batch 1, 1 and 2 threads) when bench/ort-peers.sh's onnxruntime-node install and
# exported models are there (or can be made). Medians over ROUNDS of the per-run medians; every run is one JSON line
# in OUT.jsonl.
# usage: sh bench/issue14-table.sh [VMAMBA_BIN] [ROUNDS] [OUT.jsonl]
#   ORT=0 skips the ONNX Runtime peers. Run it on a quiet machine with the default (active) OpenMP waiting; on a
#   loaded one OMP_WAIT_POLICY=passive (vmamba.c and ORT then both sleep instead of spinning).
set -e
BIN=${1:-./vmamba}; ROUNDS=${2:-5}; OUT=${3:-issue14-table.jsonl}
D=$(cd "$(dirname "$0")" && pwd); ORTD=$D/.ort
T=${TMPDIR:-/tmp}/vm-issue14.$$; mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
$BIN convert vmamba-tiny-s1l8 -o "$T/s1l8.safetensors" >/dev/null
$BIN calibrate -m "$T/s1l8.safetensors" --images "$D/../samples/digits" --samples 8 -o "$T/s1l8_int8.safetensors" --threads 2 >/dev/null 2>&1
rm -f "$T/s1l8.safetensors"
ort=${ORT:-1}
if [ "$ort" = 1 ]; then
  if [ ! -f "$ORTD/node_modules/onnxruntime-node/package.json" ]; then
    mkdir -p "$ORTD"
    npm install --ignore-scripts --no-audit --no-fund --prefix "$ORTD" "onnxruntime-node@${ORT_VERSION:-1.30.0}" >&2 || ort=0
  fi
  if [ "$ort" = 1 ] && [ ! -f "$ORTD/models/resnet50.onnx" ]; then /usr/bin/python3 "$D/ort_export.py" "$ORTD/models" || ort=0; fi
  [ "$ort" = 1 ] || echo "issue14-table: ONNX Runtime peers not available: left out" >&2
fi
tag() { sed "s/^{/{\"label\": \"$1\", /"; }
vm() { # label, threads, batch, iters, bench args...
  l=$1; th=$2; b=$3; it=$4; shift 4
  $BIN bench --threads "$th" --batch "$b" --iters "$it" --warmup 2 --json "$@" | tag "$l" >> "$OUT"
}
: > "$OUT"
for r in $(seq "$ROUNDS"); do
  for th in 2 1; do
    vm "s1l8 FP32" $th 1 20 --arch vmamba-tiny-s1l8
    vm "s1l8 BF16" $th 1 20 --arch vmamba-tiny-s1l8 --precision bf16
    vm "s1l8 INT8" $th 1 20 -m "$T/s1l8_int8.safetensors"
    vm "s1l8 INT8+BF16" $th 1 20 -m "$T/s1l8_int8.safetensors" --precision bf16
    vm "vanilla-tiny FP32" $th 1 10 --arch vanilla-vmamba-tiny
    vm "s1l8 FP32" $th 8 4 --arch vmamba-tiny-s1l8
    vm "s1l8 BF16" $th 8 4 --arch vmamba-tiny-s1l8 --precision bf16
    vm "s1l8 INT8" $th 8 4 -m "$T/s1l8_int8.safetensors"
    vm "s1l8 INT8+BF16" $th 8 4 -m "$T/s1l8_int8.safetensors" --precision bf16
    vm "vanilla-tiny FP32" $th 8 3 --arch vanilla-vmamba-tiny
    if [ "$ort" = 1 ]; then
      for m in convnext_tiny swin_t resnet50; do
        NODE_PATH="$ORTD/node_modules" node "$D/ort_time.js" "$th" 20 5 "$ORTD/models/$m.onnx" | sed 's/}$/, "batch": 1}/' | tag "$m ORT" >> "$OUT"
      done
    fi
  done
done
# where the time goes at 2 threads, batch 1 (ms per pass per op kind)
for a in "--arch vmamba-tiny-s1l8" "--arch vmamba-tiny-s1l8 --precision bf16" "-m $T/s1l8_int8.safetensors"; do
  $BIN bench $a --threads 2 --iters 30 --profile --json | tag "profile $(echo "$a" | sed 's|.*/||')" >> "$OUT"
done
/usr/bin/python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
prof = [r for r in rows if r["label"].startswith("profile")]
rows = [r for r in rows if not r["label"].startswith("profile")]
by = {}
for r in rows: by.setdefault((r["label"], r["threads"], r.get("batch", 1)), []).append(r["latency_ms_median"])
med = {k: statistics.median(v) for k, v in by.items()}
labels = list(dict.fromkeys(r["label"] for r in rows))
cn = med.get(("convnext_tiny ORT", 2, 1))
def f(x, fmt="%.1f"): return fmt % x if x is not None else "-"
print("224x224; ms = median over rounds of each run's median latency; img/s from those medians")
print("| model / runtime | 2 thr b1 ms | 1 thr b1 ms | 1->2 thr | 2 thr b8 img/s | b8/b1 img/s (2 thr) | 1 thr b8 img/s | vs ConvNeXt-T/ORT (2 thr b1) |")
print("|---|---|---|---|---|---|---|---|")
for l in labels:
    a, b = med.get((l, 2, 1)), med.get((l, 1, 1))
    b8, b81 = med.get((l, 2, 8)), med.get((l, 1, 8))
    ips8 = 8e3 / b8 if b8 else None
    print(f"| {l} | {f(a)} | {f(b)} | {f(b / a if a and b else None, '%.2fx')} | {f(ips8)} | "
          f"{f(ips8 / (1e3 / a) if ips8 and a else None, '%.2fx')} | {f(8e3 / b81 if b81 else None)} | "
          f"{f(a / cn if a and cn else None, '%.2fx')} |")
print()
print("profile, 2 threads, batch 1, ms per pass (" + "; ".join(f"{r['label'][8:]}: median {r['latency_ms_median']:.1f}" for r in prof) + ")")
ops = [k for k in prof[0]["profile_ms"] if any(r["profile_ms"][k] > 0.005 for r in prof)] if prof else []
print("| op | " + " | ".join(r["label"][8:] for r in prof) + " |")
print("|---|" + "---|" * len(prof))
for k in ops: print(f"| {k} | " + " | ".join(f"{r['profile_ms'][k]:.2f}" for r in prof) + " |")
PY
