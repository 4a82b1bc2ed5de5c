#!/bin/sh
# bench/dtproj-ab.sh [REPS] - bench/dtproj_ab.c against this tree's built libvmamba_core (run `make` first): the
# d_state-1 dt_proj kernel vs the four oneDNN primitives it replaced, s1l8 shapes, at 1 and 2 threads (CPU time;
# the 1-thread figure is the one a loaded machine leaves intact), and a bit-identity check.
set -e
REPS=${1:-50}
T=${TMPDIR:-/tmp}/vm-dtproj.$$; mkdir -p "$T"
trap 'rm -rf "$T"' EXIT
gcc -O2 -fopenmp -I. bench/dtproj_ab.c .libs/libvmamba_core.a -o "$T/dtproj_ab" \
  $(sed -n 's/^\(DNNL_LIBS\|XNNPACK_LIBS\|JANSSON_LIBS\|PNG_LIBS\|TURBOJPEG_LIBS\|ZLIB_LIBS\|CUDA_LIBS\|LIBS\) = //p' Makefile) -lm
for th in 1 2; do echo "threads $th:"; OMP_NUM_THREADS=$th "$T/dtproj_ab" "$REPS"; done
