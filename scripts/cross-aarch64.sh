#!/bin/sh
# cross-aarch64.sh - cross-build vmamba.c for aarch64 (NEON kernels) and run
# the whole test suite under qemu-aarch64. Debian 12, as root.
#   arm64 libraries come from Debian multiarch (dpkg --add-architecture);
#   oneDNN's arm64 -dev package is not co-installable with the amd64 one,
#   so it is downloaded and unpacked into a private sysroot.
# Usage: sh scripts/cross-aarch64.sh [BUILD_DIR]   (the source tree must be
# unconfigured: run 'make distclean' first if it was built in place)
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-/tmp/vmamba-aarch64}
sysroot=$build/sysroot
export DEBIAN_FRONTEND=noninteractive
if ! dpkg --print-foreign-architectures | grep -qx arm64; then dpkg --add-architecture arm64; fi
need=""
for p in gcc-aarch64-linux-gnu qemu-user libc6:arm64 libgomp1:arm64 libstdc++6:arm64 libturbojpeg0-dev:arm64 \
         libpng-dev:arm64 libjansson-dev:arm64 zlib1g-dev:arm64 check:arm64; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need="$need $p"
done
if [ -n "$need" ]; then
    apt-get update -q
    apt-get install -y -q --no-install-recommends $need
fi
mkdir -p "$build/debs" "$sysroot"
# XNNPACK (the GEMM path of NEON-only cores, src/ops/gemm_xnnpack.c) and
# what it links, the same way.
if [ ! -e "$sysroot/usr/lib/aarch64-linux-gnu/libdnnl.so" ] || [ ! -e "$sysroot/usr/include/xnnpack.h" ]; then
    (cd "$build/debs" && apt-get download libdnnl-dev:arm64 libdnnl2:arm64 libxnnpack0:arm64 libxnnpack-dev:arm64 \
        libcpuinfo0:arm64 libpthreadpool0:arm64 libpthreadpool-dev:arm64)
    for d in "$build"/debs/*.deb; do dpkg -x "$d" "$sysroot"; done
fi
cd "$build"
# A fresh configure each time: a build folder left by another source tree
# would point make at that tree. The downloaded sysroot is kept.
find "$build" -mindepth 1 -maxdepth 1 ! -name sysroot ! -name debs -exec rm -rf {} +
export PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig
# --disable-shared: vmamba links libvmamba statically, so ./vmamba is the
# aarch64 ELF itself (not libtool's wrapper script), which qemu runs and
# whose DWARF bench/arm-icount.sh reads; the shared library and its exports
# are tested by the native build.
"$src/configure" --host=aarch64-linux-gnu --disable-shared \
    CPPFLAGS="-I$sysroot/usr/include" \
    LDFLAGS="-L$sysroot/usr/lib/aarch64-linux-gnu -Wl,--disable-new-dtags,-rpath,$sysroot/usr/lib/aarch64-linux-gnu"
# (DT_RPATH, not RUNPATH: it also finds XNNPACK's own libcpuinfo under qemu)
grep -q '^#define VM_HAVE_XNNPACK 1' config.h || { echo "cross-aarch64: XNNPACK not found in $sysroot" >&2; exit 1; }
make -j"$(nproc)"
file vmamba | grep -q "ARM aarch64"
make check VMAMBA_RUNNER="qemu-aarch64 -L /" || { cat tests/*.log; exit 1; }
# That ran on qemu's default CPU ('max': SVE-512), on XNNPACK, the GEMM
# path of every aarch64 core (src/ops/gemm_xnnpack.c). Raspberry Pi and
# RK3588 cores have no SVE: the kernel and golden suites again on such a
# core (~2 min). The golden suite also runs forced onto oneDNN there
# (its reference GEMMs) and on 'max' (where oneDNN JITs SVE kernels), and
# the quant suite on oneDNN's INT8 on 'max', so both GEMM paths meet
# the goldens on both CPUs (quant: the INT8 models on XNNPACK's qc8); the
# xnnpack suite checks its operators against
# scalar references and a whole model against oneDNN. det: the Mask R-CNN
# goldens on the XNNPACK path (its proposal order check allows the golden
# file's score ties to come in either order, tests/test_det.c; ~5 min).
for run in "kernels " "golden " "golden dnnl" "quant " "xnnpack " "det "; do
    suite=${run% *} gemm=${run#* }
    VMAMBA_GEMM=$gemm CK_DEFAULT_TIMEOUT=1800 CK_RUN_SUITE=$suite QEMU_CPU=cortex-a72 VMAMBA_TEST_DATA="$src/tests/data" \
        qemu-aarch64 -L / tests/check_vmamba
done
for suite in golden quant; do
    VMAMBA_GEMM=dnnl CK_DEFAULT_TIMEOUT=1800 CK_RUN_SUITE=$suite VMAMBA_TEST_DATA="$src/tests/data" qemu-aarch64 -L / tests/check_vmamba
done
# The instruction counter (bench/arm-icount.sh, a qemu TCG plugin) counts a
# known instruction stream exactly and still maps every op: a few seconds.
if command -v python3 >/dev/null && command -v cc >/dev/null; then
    sh "$src/bench/icount/selftest.sh" "$build/icount-selftest"
    sh "$src/bench/arm-icount.sh" vmamba-tiny-s1l8 --size 32 --cpu cortex-a72 --build "$build" --json > icount.json
    python3 -c 'import json, sys; d = json.load(open("icount.json")); ops = {r["op"] for r in d["ops"]}
sys.exit(0 if d["instructions_per_forward"] > 0 and {"in_proj", "mlp_gemm", "selective_scan"} <= ops else "icount: ops missing")'
fi
echo "aarch64: build and test suite passed under qemu (kernels: $(qemu-aarch64 -L / ./vmamba bench --arch vmamba-tiny-s1l8 --size 64 --iters 1 --warmup 0 --json | sed 's/.*"isa": "\([a-z0-9]*\)".*/\1/'))"
