#!/bin/bash
# cuda-device-suites.sh - on a GPU machine with the CUDA toolkit but not Debian's libraries: build
# --with-cuda from .devbundle.txz (scripts/make-devbundle.sh) and the autoreconf output carried beside the tree, then
# run the GPU suites one by one under time limits (the whole `make check`, scripts/cuda-device-check.sh, does not
# fit one 10-minute device call): per-op CUDA test (fast and reference kernels), test_ctx_device, the golden, det,
# seg and threads suites (their CUDA cases). A second call on the same warm machine skips the build.
# usage: [STEPS="ops ctx golden det seg opsref threads"] [BUDGET=seconds] OUT=dir bash scripts/cuda-device-suites.sh
# Logs: one per step in $OUT. Each step is cut at its limit and at BUDGET seconds from the start.
# Device call: carry configure, Makefile.in, aclocal.m4, config.h.in, build-aux and m4 (the autoreconf output).
set -u
OUT=${OUT:-$PWD/out}; mkdir -p "$OUT"
T0=$(date +%s)
{ nvidia-smi; /usr/local/cuda/bin/nvcc --version; nproc; } > "$OUT/env.txt" 2>&1
if [ ! -x ./vmamba ] || [ ! -f .built ]; then
  tar xJf .devbundle.txz
  touch aclocal.m4; sleep 1; touch configure config.h.in Makefile.in
fi
. "$(dirname "$0")/devbundle-env.sh"
if [ ! -f .built ]; then
  ./configure --with-cuda=/usr/local/cuda NVCCFLAGS=-arch=sm_90 > "$OUT/configure.log" 2>&1 || { cp config.log "$OUT/"; tail -30 "$OUT/configure.log"; exit 1; }
  make -j16 vmamba > "$OUT/make.log" 2>&1 && make -j16 tests/check_vmamba tests/test_backend_ops tests/test_ctx_device >> "$OUT/make.log" 2>&1 || { tail -60 "$OUT/make.log"; exit 1; }
  touch .built
fi
echo "build done at +$(( $(date +%s) - T0 )) s"
./vmamba info 2>&1 | head -20
export OMP_NUM_THREADS=8 CK_VERBOSITY=normal
run() { name=$1; lim=$2; shift 2; s=$(date +%s); left=$(( ${BUDGET:-570} - (s - T0) )); [ $left -gt 20 ] || { echo "== $name not run (time)"; return; }; [ $lim -lt $left ] || lim=$left; timeout $lim "$@" > "$OUT/$name.log" 2>&1; rc=$?; echo "== $name rc=$rc $(( $(date +%s) - s )) s"; tail -4 "$OUT/$name.log"; grep -E ":(F|E):" "$OUT/$name.log" | head -10; }
for step in ${STEPS:-ops ctx golden det seg opsref threads}; do case $step in
  ops) run backend_ops_cuda 150 ./tests/test_backend_ops cuda 30 ;;
  opsref) VMAMBA_CUDA_REFERENCE_KERNELS=1 run backend_ops_cuda_ref 100 ./tests/test_backend_ops cuda 10 ;;
  ctx) run ctx_device 120 ./tests/test_ctx_device ;;
  golden) CK_RUN_SUITE=golden run golden 200 ./tests/check_vmamba ;;
  seg) CK_RUN_SUITE=seg CK_RUN_CASE=golden_upernet run seg 300 ./tests/check_vmamba ;;
  det) CK_RUN_SUITE=det CK_RUN_CASE=golden run det 300 ./tests/check_vmamba ;;
  threads) CK_RUN_SUITE=threads run threads 200 ./tests/check_vmamba ;;
esac; done
echo "total +$(( $(date +%s) - T0 )) s"
