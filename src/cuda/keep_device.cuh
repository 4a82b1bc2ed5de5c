/* keep_device.cuh - the calling thread's current CUDA device, put back when
 * a scope ends.
 *
 * cudaSetDevice is per host thread and every later runtime call of that
 * thread (the application's own, another library's) uses it implicitly.
 * The library selects a context's or the weights' device for its own
 * calls, so each entry point that may switch devices declares one of these
 * first: the caller's thread leaves the call on the device it came in with
 * (tests/test_ctx_device.c, device_kept_case, with two GPUs or more). */
#ifndef VMAMBA_CUDA_KEEP_DEVICE_CUH
#define VMAMBA_CUDA_KEEP_DEVICE_CUH

#include <cuda_runtime.h>

struct keep_device {
    int prev;
    keep_device() {
        if (cudaGetDevice(&prev) != cudaSuccess) {
            prev = -1;
            cudaGetLastError(); /* no device: nothing to restore, and no stale error for later checks */
        }
    }
    ~keep_device() {
        int now = -1;
        if (prev >= 0 && cudaGetDevice(&now) == cudaSuccess && now != prev) cudaSetDevice(prev);
    }
    keep_device(const keep_device &) = delete;
    keep_device &operator=(const keep_device &) = delete;
};

#endif
