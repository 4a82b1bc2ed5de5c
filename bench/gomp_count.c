/* gomp_count.c - an LD_PRELOAD shim that counts OpenMP parallel regions
 * (libgomp's GOMP_parallel* entry points: vmamba's kernels and, with its
 * OpenMP runtime, oneDNN's primitives) and prints the count at exit.
 * Each region is a fork and a join barrier: on few cores, and on a VM
 * whose vCPUs are not co-scheduled, what a 2-thread run pays per region
 * whatever the work. A count, unlike a time, does not move with load.
 * Build and use: bench/regions.sh. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>

static unsigned long n_regions;

#define COUNT() __atomic_add_fetch(&n_regions, 1, __ATOMIC_RELAXED)
#define REAL(name, type) static __typeof__(type) *real; if (!real) real = (__typeof__(type) *)dlsym(RTLD_NEXT, name)

typedef void (*body_fn)(void *);

void GOMP_parallel(body_fn fn, void *data, unsigned nthr, unsigned flags) {
    REAL("GOMP_parallel", void(body_fn, void *, unsigned, unsigned));
    COUNT();
    real(fn, data, nthr, flags);
}

#define LOOP(name)                                                                                                  \
    void name(body_fn fn, void *data, unsigned nthr, long start, long end, long incr, long chunk, unsigned flags) {   \
        REAL(#name, void(body_fn, void *, unsigned, long, long, long, long, unsigned));                          \
        COUNT();                                                                                                     \
        real(fn, data, nthr, start, end, incr, chunk, flags);                                                        \
    }
LOOP(GOMP_parallel_loop_static)
LOOP(GOMP_parallel_loop_dynamic)
LOOP(GOMP_parallel_loop_guided)
LOOP(GOMP_parallel_loop_nonmonotonic_dynamic)
LOOP(GOMP_parallel_loop_nonmonotonic_guided)

void GOMP_parallel_loop_runtime(body_fn fn, void *data, unsigned nthr, long start, long end, long incr, unsigned flags) {
    REAL("GOMP_parallel_loop_runtime", void(body_fn, void *, unsigned, long, long, long, unsigned));
    COUNT();
    real(fn, data, nthr, start, end, incr, flags);
}

__attribute__((destructor)) static void report(void) { fprintf(stderr, "gomp_count: %lu parallel regions\n", n_regions); }
