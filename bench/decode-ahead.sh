#!/bin/sh
# decode-ahead.sh - what decoding the next image on the batch helper thread
# saves in `vmamba segment` / `vmamba detect` over a list of photos: the
# same job with and without decode-ahead, rounds interleaved, medians of
# the wall time. "Without" is the same binary with pthread_create failing
# for the CLI's own threads (tests/shim's LD_PRELOAD shim), so batch.c falls
# back to decoding in the main thread (its tested fallback path).
#   sh bench/decode-ahead.sh [ROUNDS] -- vmamba ARGS...     (run from the build dir)
# e.g. sh bench/decode-ahead.sh 5 -- segment -m tests/data/seg_upernet/model.pth --scale 512,512 --json --threads 2 photos/*.jpg
set -eu
rounds=${1:-5}; shift
[ "${1:-}" = "--" ] && shift
BIN=${VMAMBA_BIN:-./vmamba}
SHIM=${VMAMBA_SHIM:-tests/shim/.libs/libfailshim.so}
[ -e "$SHIM" ] || { echo "decode-ahead: no $SHIM (make check builds it)" >&2; exit 1; }
t() { s=$(date +%s.%N); "$@" > /dev/null 2>&1 || true; e=$(date +%s.%N); echo "$s $e" | awk '{printf "%.3f\n", $2 - $1}'; }
on="" off=""
for r in $(seq "$rounds"); do
    on="$on $(t "$BIN" "$@")"
    off="$off $(t env LD_PRELOAD="$SHIM" VMAMBA_SHIM_PTHREAD_FAIL=1 "$BIN" "$@")"
done
med() { printf '%s\n' $1 | sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
echo "decode-ahead on : $on  median $(med "$on") s"
echo "decode-ahead off:$off  median $(med "$off") s"
awk -v a="$(med "$on")" -v b="$(med "$off")" 'BEGIN {printf "ratio on/off: %.3f\n", a / b}'
