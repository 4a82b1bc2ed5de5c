#!/bin/sh
# run-matrix.sh - the preset matrix (v0 / v2 / v2v x tiny / small / base,
# batch 1 and 16, 1 / 2 / all threads) and the peers (torchvision
# ConvNeXt-T, ResNet-50 in Debian's PyTorch) at equal threads and batch,
# one JSON object per line on stdout; bench/summarize.py makes the tables.
# Run it on an otherwise idle machine: it measures wall time.
# Usage: bench/run-matrix.sh [ITERS] [BATCH16_PRESETS] > results.jsonl
#   BATCH16_PRESETS: "all" (default) or "tiny" to run batch 16 only on the
#   three tiny presets (the full matrix takes ~15 min on 2 cores).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
iters=${1:-5}
b16=${2:-all}
all=$(nproc)
threads="1 2"
[ "$all" -gt 2 ] && threads="$threads $all"
for p in $("$top/vmamba" info --list-presets); do
    for b in 1 16; do
        case "$b/$b16/$p" in 16/tiny/*tiny*|16/all/*|1/*) ;; *) continue ;; esac
        for t in $threads; do
            it=$iters; [ "$b" -eq 16 ] && it=3
            "$top/vmamba" bench --arch "$p" --batch "$b" --threads "$t" --iters "$it" --warmup 1 --json
        done
    done
done
py=${PYTHON:-python3}
if "$py" -c "import torch, torchvision" 2>/dev/null; then
    for b in 1 16; do
        for t in $threads; do
            it=$iters; [ "$b" -eq 16 ] && it=3
            "$py" "$top/bench/peers.py" --threads "$t" --batch "$b" --iters "$it" --warmup 1
        done
    done
else
    echo "run-matrix.sh: python3-torchvision not installed; peers skipped" >&2
fi
