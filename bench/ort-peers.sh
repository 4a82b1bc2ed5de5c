#!/bin/sh
# bench/ort-peers.sh - vmamba.c side by side with ConvNeXt-T, Swin-T and ResNet-50 on ONNX Runtime (CPU EP),
# 224x224, batch 1, interleaved rounds, medians of the per-round medians (issue #14's table).
#  - onnxruntime-node comes from the npm registry with `npm install --ignore-scripts` into bench/.ort (its CPU
#    binaries, bin/napi-v3/linux/x64/libonnxruntime.so.1, ship inside the package; the skipped install script
#    only fetches optional CUDA libraries);
#  - the peers are exported by Debian's PyTorch (python3-torch, python3-torchvision; random weights: timing only);
#  - vmamba.c: s1l8 FP32 / BF16 / INT8 (the preset calibrated on the 8 bundled digit images) and vanilla-tiny FP32.
# On a loaded machine run it with OMP_WAIT_POLICY=passive (vmamba.c and ORT then both sleep instead of spinning).
# usage: sh bench/ort-peers.sh [VMAMBA_BIN] [THREADS] [ROUNDS] [OUT.jsonl]
set -e
BIN=${1:-./vmamba}; TH=${2:-2}; ROUNDS=${3:-5}; OUT=${4:-ort-peers.jsonl}
D=$(cd "$(dirname "$0")" && pwd); ORT=$D/.ort
ORT_VERSION=${ORT_VERSION:-1.30.0}
if [ ! -f "$ORT/node_modules/onnxruntime-node/package.json" ]; then
  mkdir -p "$ORT"
  npm install --ignore-scripts --no-audit --no-fund --prefix "$ORT" "onnxruntime-node@$ORT_VERSION" >&2
fi
/usr/bin/python3 "$D/ort_export.py" "$ORT/models"
T=${TMPDIR:-/tmp}/vm-ort-peers.$$; mkdir -p "$T"
$BIN convert vmamba-tiny-s1l8 -o "$T/s1l8.safetensors" >/dev/null
$BIN calibrate -m "$T/s1l8.safetensors" --images samples/digits --samples 8 -o "$T/s1l8_int8.safetensors" --threads "$TH" >/dev/null 2>&1
tag() { sed "s/^{/{\"label\": \"$1\", /"; }
: > "$OUT"
for r in $(seq "$ROUNDS"); do
  $BIN bench --arch vmamba-tiny-s1l8 --threads "$TH" --iters 20 --json | tag "vmamba.c s1l8 FP32" >> "$OUT"
  $BIN bench --arch vmamba-tiny-s1l8 --threads "$TH" --iters 20 --json --precision bf16 | tag "vmamba.c s1l8 BF16" >> "$OUT"
  $BIN bench -m "$T/s1l8_int8.safetensors" --threads "$TH" --iters 20 --json | tag "vmamba.c s1l8 INT8" >> "$OUT"
  $BIN bench --arch vanilla-vmamba-tiny --threads "$TH" --iters 10 --json | tag "vmamba.c vanilla-vmamba-tiny FP32" >> "$OUT"
  for m in convnext_tiny swin_t resnet50; do
    NODE_PATH="$ORT/node_modules" node "$D/ort_time.js" "$TH" 20 5 "$ORT/models/$m.onnx" | tag "$m ORT" >> "$OUT"
  done
done
rm -rf "$T"
/usr/bin/python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
by = {}
for r in rows: by.setdefault(r["label"], []).append(r)
cn = statistics.median(r["latency_ms_median"] for r in by["convnext_tiny ORT"])
print(f"| model / runtime ({rows[0]['threads']} threads, 224, batch 1) | median ms | min ms | vs ConvNeXt-T/ORT |")
print("|---|---|---|---|")
for k, v in by.items():
    med = statistics.median(r["latency_ms_median"] for r in v)
    print(f"| {k} | {med:.1f} | {min(r['latency_ms_min'] for r in v):.1f} | {med / cn:.2f}x |")
PY
