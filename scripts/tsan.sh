#!/bin/sh
# tsan.sh [BUILD_DIR] - ThreadSanitizer run of the shared-model test: four
# threads, one model, a context each (tests/threads_core.c), built with
# clang -fsanitize=thread. Exit status: that of the test (TSan makes any
# reported race fatal: halt_on_error=1).
#
# Why no OpenMP here: libdnnl (Debian) is built with gcc and runs its
# parallel regions on libgomp, which TSan cannot see into (libgomp's
# barriers are not instrumented), so any OpenMP team gives false reports.
# The library is therefore compiled without -fopenmp (its pragmas become
# no-ops; omp_* calls still link against libgomp) and each context runs
# one OpenMP thread (OMP_NUM_THREADS=1, vm_ctx_set_threads(c, 1)), so
# oneDNN runs its primitives in the calling thread. What TSan then checks
# is exactly the new contract: the shared model is only read, and every
# context's state (plan, primitives, stream, scratchpad) is its own.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-/tmp/vmamba-tsan}
CC=${TSAN_CC:-clang}
mkdir -p "$out"
cflags="-std=gnu11 -O1 -g -fsanitize=thread -fno-omit-frame-pointer -Wno-unknown-pragmas"
# VM_NO_XNNPACK: XNNPACK stubs (config.h of an in-tree build may say it is there)
cflags="$cflags -DVM_NO_XNNPACK -I$top/include -I$top/src -I$top -I$top/quant $(pkg-config --cflags libturbojpeg libpng jansson zlib)"
libs="-ldnnl -lgomp $(pkg-config --libs libturbojpeg libpng jansson zlib) -lpthread -lm"
# The library's C files (libvmamba_core in Makefile.am: scalar kernels, the
# ISA kernels are separate libraries) and the test driver.
srcs="$(sed -n '/^libvmamba_core_la_SOURCES/,/_CFLAGS/p' "$top/Makefile.am" | tr ' \t\\' '\n\n\n' | grep '\.c$')
      tests/threads_core.c tests/tsan_main.c"
objs=""
for f in $srcs; do
    o="$out/$(echo "$f" | tr / _).o"
    $CC $cflags -c "$top/$f" -o "$o"
    objs="$objs $o"
done
$CC -fsanitize=thread -o "$out/tsan_threads" $objs $libs
OMP_NUM_THREADS=1 TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ${TSAN_OPTIONS:-}" \
    "$out/tsan_threads" "$top/tests/data" "${TSAN_ITERS:-100}"
