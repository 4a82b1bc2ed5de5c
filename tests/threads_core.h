/* threads_core.h - the shared-model concurrency check, used by the Check
 * suite (test_threads.c) and by the ThreadSanitizer run (tsan_main.c,
 * scripts/tsan.sh), which has no Check. */
#ifndef VM_THREADS_CORE_H
#define VM_THREADS_CORE_H

#include <stddef.h>

/* Load the model at path once; compute the reference output of each of
 * 2 * nthreads input shapes on one context; then nthreads threads, each
 * with its own context on the same model and omp_threads OpenMP threads,
 * run iters forwards alternating between two shapes of their own, and
 * compare every output bit for bit with the reference. features = 1 runs
 * vm_ctx_forward_features (a backbone) instead of the classifier. device:
 * NULL or "cpu", or "cuda" (the model is moved there first).
 * Returns 0, or -1 with a message in msg. */
int vm_threads_check(const char *path, const char *device, int features, int nthreads, int iters, int omp_threads, char *msg,
                     size_t len);

#endif
