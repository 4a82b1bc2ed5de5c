#!/bin/sh
# bench/scan-ab.sh - the avx512 selective scan of git revision OLD_REV against this tree's, side by side, 1 thread,
# CPU time (bench/scan_ab.c). The old tree's scan_cross has no dt_w argument (before the dt_proj fusion); this
# tree's gets dt_w for d_state > 1 (DT_IN_KERNEL=1, as the backbone calls it).
# usage: sh bench/scan-ab.sh OLD_REV [REPS]   (run from the repository root)
set -e
OLD=$1; REPS=${2:-5}
T=${TMPDIR:-/tmp}/vm-scan-ab.$$; mkdir -p "$T/old"; trap 'rm -rf "$T"' EXIT
git archive "$OLD" simd | tar -x -C "$T/old"
F="-O2 -fopenmp -mavx512f -mavx2 -mfma"
gcc $F -c -Dvm_scan_cross_avx512=old_scan "$T/old/simd/avx512/kernels-avx512.c" -o "$T/o.o"
gcc $F -c -Dvm_scan_cross_avx512=new_scan simd/avx512/kernels-avx512.c -o "$T/n.o"
objcopy --keep-global-symbol=old_scan "$T/o.o" "$T/o2.o"
objcopy --keep-global-symbol=new_scan "$T/n.o" "$T/n2.o"
gcc $F -Isimd bench/scan_ab.c "$T/o2.o" "$T/n2.o" -o "$T/scan_ab" -lm
echo "vanilla-vmamba-tiny shapes (d_state 16, ssm_ratio 2):"
OMP_NUM_THREADS=1 DT_IN_KERNEL=1 "$T/scan_ab" "$REPS" 16 4
echo "vmamba-tiny-s1l8 shapes (d_state 1, ssm_ratio 1):"
OMP_NUM_THREADS=1 "$T/scan_ab" "$REPS" 1 2
