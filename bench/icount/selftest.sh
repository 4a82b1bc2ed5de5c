#!/bin/sh
# selftest.sh - check the icount plugin against a program whose instruction
# stream is known (selftest.c): exact totals per call and the classes.
# Usage: sh bench/icount/selftest.sh [WORKDIR]   (needs aarch64-linux-gnu-gcc, qemu-user, cc, python3)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=${1:-$(mktemp -d)}
mkdir -p "$work"
${HOSTCC:-cc} -O2 -shared -fPIC -o "$work/icount.so" "$here/icount.c"
aarch64-linux-gnu-gcc -O2 -g -march=armv8.2-a+dotprod -o "$work/selftest" "$here/selftest.c"
python3 "$here/icount.py" regions "$work/selftest" - --entry run_one -o "$work/regions.txt" 2>/dev/null
qemu-aarch64 -cpu cortex-a76 -L "${QEMU_LD_PREFIX:-/}" \
    -plugin "$work/icount.so,regions=$work/regions.txt,out=$work/icount.tsv,measure=2" "$work/selftest" 100000
python3 - "$work/icount.tsv" <<'PY'
import sys
seg, cls = {}, [0] * 7
for ln in open(sys.argv[1]):
    f = ln.split("\t")
    if f[0] == "seg":
        seg[int(f[1])] = int(f[2])
    elif f[0] == "tb":
        ex = sum(int(x) for x in f[11:])
        for i in range(7):
            cls[i] += int(f[4 + i]) * ex
want = {1: 11 * 100000 + 1, 2: 11 * 200000 + 1}
# per iteration: fmla 2, dot 2, imac 3, simd 1, ldst 1, branch 1, int 1; then ret
wcls = [2 * 200000, 2 * 200000, 3 * 200000, 200000, 200000, 200000 + 1, 200000]
if seg != want or cls != wcls:
    sys.exit("icount selftest FAILED: %d passes %s (want %s), classes %s (want %s)" % (
        len(seg), str(seg)[:200], want, cls, wcls))
print("icount selftest: passes %s, classes %s: exact" % (seg, cls))
PY
