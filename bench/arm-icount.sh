#!/bin/sh
# arm-icount.sh - guest instructions per forward pass of the aarch64 build,
# in total and per op (the `vmamba bench --profile` ops), counted under
# qemu-aarch64 by a TCG plugin (bench/icount/icount.c). A speed proxy for
# ARM boards that runs on any x86 machine; see bench/RESULTS.md.
#
# Usage: sh bench/arm-icount.sh MODEL|PRESET [--size N] [--batch B]
#            [--cpu cortex-a72|cortex-a76|...] [--json] [--top N]
#            [--build DIR] [--keep DIR] [--precision fp16] [--any-cpu]
#   MODEL|PRESET  a model file (.pth/.safetensors, INT8 files too) or a
#                 preset name (vmamba info --list-presets)
#   --cpu         qemu CPU model (default cortex-a76). Always a real core:
#                 qemu's default 'max' has SVE-512, which makes oneDNN pick
#                 kernels no Raspberry Pi or RK3588 has.
#   --build DIR   the aarch64 build (default /tmp/vmamba-aarch64, made by
#                 scripts/cross-aarch64.sh; VMAMBA_AARCH64_BUILD also works)
#   --top N       also list the N hottest functions of each op
#   --keep DIR    keep the plugin's raw per-block counts (icount.tsv) there
#   --precision P passed to vmamba bench (fp16: ARMv8.2 cores, XNNPACK path;
#                 the xideal column stays the FP32 FMLA one)
#   --any-cpu     accept --cpu max (SVE-512): to compare the GEMM paths on
#                 an SVE core, not as a board's figure
# One thread (the count is the work, not the parallel speed), one warm-up
# pass (planning and primitive creation excluded), then the measured pass.
# Needs qemu-user (with plugin support: Debian 12's has it), a host C
# compiler, python3 and aarch64 binutils (binutils-aarch64-linux-gnu).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
build=${VMAMBA_AARCH64_BUILD:-/tmp/vmamba-aarch64}
model="" size=224 batch=1 cpu=cortex-a76 json="" top=0 keep="" prec="" anycpu=""
usage() { sed -n '7,26p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
    --size) size=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --cpu) cpu=$2; shift 2 ;;
    --json) json=--json; shift ;;
    --top) top=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --keep) keep=$2; shift 2 ;;
    --precision) prec="--precision $2"; shift 2 ;;
    --any-cpu) anycpu=1; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "arm-icount: unknown option $1" >&2; usage >&2; exit 2 ;;
    *) [ -z "$model" ] || { echo "arm-icount: one model only" >&2; exit 2; }; model=$1; shift ;;
    esac
done
[ -n "$model" ] || { usage >&2; exit 2; }
[ -n "$anycpu" ] || case "$cpu" in max|any) echo "arm-icount: use a real core (-cpu $cpu has SVE-512)" >&2; exit 2 ;; esac
bin=$build/vmamba
[ -x "$bin" ] || bin=$build/.libs/vmamba
file "$bin" 2>/dev/null | grep -q "ARM aarch64" || {
    echo "arm-icount: no aarch64 vmamba in $build (run: sh scripts/cross-aarch64.sh $build)" >&2; exit 1; }
command -v qemu-aarch64 >/dev/null || { echo "arm-icount: qemu-aarch64 not found (apt-get install qemu-user)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
plugin=$build/icount-plugin.so
if [ ! -e "$plugin" ] || [ "$here/icount/icount.c" -nt "$plugin" ] || [ "$here/icount/qemu-plugin-api.h" -nt "$plugin" ]; then
    ${HOSTCC:-cc} -O2 -shared -fPIC -o "$plugin" "$here/icount/icount.c"
fi
regions=$build/icount-regions.txt
if [ ! -e "$regions" ] || [ "$bin" -nt "$regions" ] || [ "$here/icount/icount.py" -nt "$regions" ]; then
    python3 "$here/icount/icount.py" regions "$bin" "$src" -o "$regions"
fi
q="qemu-aarch64 -cpu $cpu -L ${QEMU_LD_PREFIX:-/}"
if [ -e "$model" ]; then mflag="-m $model"; else mflag="--arch $model"; fi
$q "$bin" info "$model" --json > "$work/info.json"
dotprod=""
case "$cpu" in cortex-a5[5-9]|cortex-a7[6-9]|cortex-x*|neoverse*|a64fx|max) dotprod=--dotprod ;; esac
OMP_NUM_THREADS=1 $q -plugin "$plugin,regions=$regions,out=$work/icount.tsv,measure=2" \
    "$bin" bench $mflag --size "$size" --batch "$batch" --threads 1 --warmup 1 --iters 1 $prec > "$work/bench.txt"
[ -z "$keep" ] || { mkdir -p "$keep"; cp "$work/icount.tsv" "$work/info.json" "$keep/"; }
python3 "$here/icount/icount.py" report "$work/icount.tsv" --regions "$regions" --info "$work/info.json" \
    --model "$model" --cpu "$cpu" --size "$size" --batch "$batch" --top "$top" $dotprod $json
