#!/bin/bash
# cuda-device-check.sh - build --with-cuda and run the whole Check suite on a
# GPU machine that has the CUDA toolkit but not Debian's libraries.
# Expects, in the source tree: .devbundle.txz (scripts/make-devbundle.sh) or .devbundle.tgz holding .devprefix/usr (Debian 12's
# oneDNN, libturbojpeg, libpng, jansson, check, subunit, ocl-icd, zlib1g-dev unpacked with
# dpkg -x) and the autoreconf output (configure, Makefile.in, ...), for machines
# without autotools or pkg-config. Logs go to $OUT (default ./out).
# Usage: OUT=dir sh scripts/cuda-device-check.sh [bench]
set -u
OUT=${OUT:-$PWD/out}; mkdir -p "$OUT"
{ nvidia-smi; nvcc --version || /usr/local/cuda/bin/nvcc --version; gcc --version; nproc; cat /etc/os-release; } > "$OUT/env.txt" 2>&1
[ ! -f .devbundle.txz ] || tar xJf .devbundle.txz  # or already unpacked
[ ! -f .devbundle.tgz ] || tar xzf .devbundle.tgz
# The copied tree's mtimes may be newer than the generated files: keep make from re-running autotools.
touch aclocal.m4; sleep 1; touch configure config.h.in Makefile.in
. "$(dirname "$0")/devbundle-env.sh"
./configure --with-cuda=/usr/local/cuda NVCCFLAGS=-arch=sm_90 > "$OUT/configure.log" 2>&1 \
    || { cp config.log "$OUT/"; tail -30 "$OUT/configure.log"; exit 1; }
make -j16 V=1 > "$OUT/make.log" 2>&1 || { tail -60 "$OUT/make.log"; exit 1; }
./vmamba info > "$OUT/info.txt" 2>&1
make -j8 check > "$OUT/check.log" 2>&1; rc=$?
cp test-suite.log tests/*.log "$OUT/" 2>/dev/null
{ gcc -print-file-name=libstdc++.so; gcc -print-file-name=libsupc++.a; grep "libtool: link:.*libvmamba.so" "$OUT/make.log"; } > "$OUT/link.txt" 2>&1
tar czf "$OUT/logs.tgz" -C "$OUT" --exclude=logs.tgz . 2>/dev/null
grep -h -E "^(# |PASS|FAIL|SKIP|ERROR|XFAIL)" "$OUT/check.log" | tail -20
for f in tests/check_vmamba.log tests/check_cli.log; do grep -h -E "^[0-9]+%: Checks" "$f"; done
grep -h -E ":(F|E):" tests/*.log | head -40
[ "$rc" = 0 ] || exit "$rc"
if [ "${1:-}" = bench ]; then
    for p in fp32 tf32; do
        ./vmamba bench --arch vmamba-tiny-s1l8 --device cuda --precision $p --batch 128 --iters 10 --warmup 2 --json \
            | tee -a "$OUT/bench.jsonl"
    done
    # segmentation and detection with the heads on the GPU (op interface), beside the CPU
    ./tests/test_backend_ops cuda 200 > "$OUT/backend_ops_cuda.txt" 2>&1; tail -8 "$OUT/backend_ops_cuda.txt"
    make bench/seg_bench > /dev/null 2>&1
    for d in cuda cpu; do
        ./bench/seg_bench upernet-vmamba-tiny tests/data/preprocess/china.jpg --size 683,512 --threads 16 --runs 10 --device $d \
            | tee -a "$OUT/bench.jsonl"
        ./vmamba detect -m maskrcnn-vmamba-tiny tests/data/preprocess/china.jpg --threads 16 --repeat 5 --device $d \
            2>&1 | tee -a "$OUT/detect_bench.txt"
    done
fi
