#!/bin/sh
# xnn-gemm.sh - the vmamba-tiny-s1l8 linear layers (224, batch 1) through
# oneDNN and through XNNPACK on aarch64, instructions per call and per FLOP
# counted under qemu-aarch64 (bench/xnn_gemm.c + the icount plugin).
# Prototype for the XNNPACK path of issue #15; Debian 12, as root (fetches
# the arm64 XNNPACK packages into a private sysroot, as cross-aarch64.sh
# does for oneDNN).
# Usage: sh bench/xnn-gemm.sh [--cpu cortex-a76] [--build DIR] [--json] [--top CALL]
#   --build DIR   a scripts/cross-aarch64.sh build folder (its oneDNN sysroot is
#                 reused; default /tmp/vmamba-aarch64)
#   --top CALL    also list the hottest functions of call number CALL
#   --keep DIR    keep the raw counts (icount.tsv, calls.txt) there
# VMAMBA_GEMM=dnnl|xnnpack and VMAMBA_GEMM_INT8=0|1 restrict what runs;
# VMAMBA_GEMM_FP16=1 adds XNNPACK FP16 (cores with FP16 arithmetic).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=${VMAMBA_AARCH64_BUILD:-/tmp/vmamba-aarch64}
cpu=cortex-a76 json="" top="" keep=""
while [ $# -gt 0 ]; do
    case "$1" in
    --cpu) cpu=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --json) json=--json; shift ;;
    --top) top=$2; shift 2 ;;
    --keep) keep=$2; shift 2 ;;
    *) sed -n '8,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    esac
done
sysroot=$build/sysroot
xsys=$build/xnnpack-sysroot
[ -e "$sysroot/usr/include/dnnl.h" ] || { echo "xnn-gemm: no oneDNN sysroot in $build (run scripts/cross-aarch64.sh $build)" >&2; exit 1; }
if [ ! -e "$xsys/usr/include/xnnpack.h" ]; then
    mkdir -p "$build/xnnpack-debs" "$xsys"
    (cd "$build/xnnpack-debs" && apt-get download libxnnpack0:arm64 libxnnpack-dev:arm64 libcpuinfo0:arm64 \
        libpthreadpool0:arm64 libpthreadpool-dev:arm64)
    for d in "$build"/xnnpack-debs/*.deb; do dpkg -x "$d" "$xsys"; done
fi
lib=/usr/lib/aarch64-linux-gnu
bin=$build/xnn_gemm
if [ ! -x "$bin" ] || [ "$here/xnn_gemm.c" -nt "$bin" ]; then
    aarch64-linux-gnu-gcc -std=gnu11 -g -O2 -Wall -Wextra -Wno-missing-field-initializers -I"$sysroot/usr/include" -I"$xsys/usr/include" \
        -o "$bin" "$here/xnn_gemm.c" -L"$sysroot$lib" -L"$xsys$lib" \
        -Wl,--disable-new-dtags,-rpath,"$sysroot$lib:$xsys$lib" -Wl,-rpath-link,"$xsys$lib" -lXNNPACK -ldnnl -lm
fi
plugin=$build/icount-plugin.so
if [ ! -e "$plugin" ] || [ "$here/icount/icount.c" -nt "$plugin" ]; then
    ${HOSTCC:-cc} -O2 -shared -fPIC -o "$plugin" "$here/icount/icount.c"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
python3 "$here/icount/icount.py" regions "$bin" - --entry run_one -o "$work/regions.txt" 2>/dev/null
dotprod=""
case "$cpu" in cortex-a5[5-9]|cortex-a7[6-9]|cortex-x*|neoverse*|a64fx) dotprod=--dotprod ;; esac
OMP_NUM_THREADS=1 qemu-aarch64 -cpu "$cpu" -L "${QEMU_LD_PREFIX:-/}" \
    -plugin "$plugin,regions=$work/regions.txt,out=$work/icount.tsv,measure=${top:-1}" "$bin" > "$work/calls.txt"
[ -z "$keep" ] || { mkdir -p "$keep"; cp "$work/icount.tsv" "$work/calls.txt" "$work/regions.txt" "$work/regions.txt.json" "$keep/"; }
python3 "$here/icount/icount.py" calls "$work/icount.tsv" "$work/calls.txt" --cpu "$cpu" $dotprod $json
if [ -n "$top" ]; then
    echo "call $top: $(grep "^call $top " "$work/calls.txt")"
    python3 "$here/icount/icount.py" report "$work/icount.tsv" --regions "$work/regions.txt" --top 8 | sed -n '/^(glue):/,$p'
fi
