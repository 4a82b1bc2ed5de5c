#!/bin/sh
# run-matrix.sh - the preset matrix (v0 / v2 / v2v x tiny / small / base,
# batch 1 and 16, 1 / 2 / all threads) and the peers at equal threads,
# one JSON object per line on stdout (save it, then bench/summarize.py).
# Usage: bench/run-matrix.sh [ITERS] > results.jsonl
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
iters=${1:-5}
all=$(nproc)
threads="1 2"
[ "$all" -gt 2 ] && threads="$threads $all"
for p in $("$top/vmamba" info --list-presets); do
    for b in 1 16; do
        for t in $threads; do
            it=$iters; [ "$b" -eq 16 ] && it=3
            "$top/vmamba" bench --arch "$p" --batch "$b" --threads "$t" --iters "$it" --warmup 1 --json
        done
    done
done
if "${PYTHON:-python3}" -c "import torch, torchvision" 2>/dev/null; then
    for b in 1 16; do
        for t in $threads; do
            it=$iters; [ "$b" -eq 16 ] && it=3
            "${PYTHON:-python3}" "$top/bench/peers.py" --threads "$t" --batch "$b" --iters "$it" --warmup 1
        done
    done
else
    echo "run-matrix.sh: python3-torchvision not installed; peers skipped" >&2
fi
