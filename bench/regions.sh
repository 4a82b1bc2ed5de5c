#!/bin/sh
# bench/regions.sh - OpenMP parallel regions per forward pass (fork + join barrier each), two vmamba builds side by
# side: s1l8 FP32 / BF16 / INT8 and vanilla-tiny FP32 at 2 threads, batch 1. Counted by the LD_PRELOAD shim
# gomp_count.c (built here with cc; the last count printed is the program's, a libtool wrapper's shell commands print
# theirs first): (regions of a run with 11 passes - regions of a run with 1) / 10, so planning
# and loading drop out. A count, not a time: exact on a loaded machine too.
# usage: sh bench/regions.sh OLD_BIN NEW_BIN INT8.safetensors
set -e
OLD=$1; NEW=$2; INT8=$3
D=$(cd "$(dirname "$0")" && pwd)
T=${TMPDIR:-/tmp}/vm-regions.$$; mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
cc -O2 -shared -fPIC -o "$T/gomp_count.so" "$D/gomp_count.c" -ldl
. "$D/ab-common.sh"
count() { # BIN ARGS ITERS -> regions
  LD_PRELOAD="$T/gomp_count.so" $1 bench $2 --threads 2 --iters "$3" --warmup 0 2>&1 >/dev/null | sed -n 's/^gomp_count: \([0-9]*\) .*/\1/p' | tail -n 1
}
echo "| config | old regions / forward | new regions / forward |"
echo "|---|---|---|"
ab_configs "$INT8" | while IFS='|' read -r l a it; do
  r=""
  for b in "$OLD" "$NEW"; do
    n1=$(count "$b" "$a" 1); n11=$(count "$b" "$a" 11)
    r="$r | $(( (n11 - n1) / 10 ))"
  done
  echo "| $l$r |"
done
