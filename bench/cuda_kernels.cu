/* cuda_kernels.cu - time each CUDA kernel of the forward pass (not the
 * cuBLAS GEMMs) at vmamba-tiny-s1l8's batch-128, 224x224 shapes, and give
 * the effective bandwidth: the bytes the kernel must read and write at
 * least, over its time. Best of 7 after a warm-up, on the default stream.
 *
 *   ./configure --with-cuda ... && make bench/cuda_kernels
 *   bench/cuda_kernels                                    # vectorised kernels
 *   VMAMBA_CUDA_REFERENCE_KERNELS=1 bench/cuda_kernels    # scalar references
 *
 * Inputs are deterministic pseudo-random values; nothing is checked here
 * (the golden tests do that). Results: bench/RESULTS.md. */
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "cuda/kernels.cuh"

__global__ void fill(float *p, size_t n, float scale) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) p[i] = scale * ((i * 2654435761u) % 1000) / 1000.0f - scale / 2;
}

static float *dbuf(size_t n, float scale = 1.0f) {
    float *p = NULL;
    if (cudaMalloc(&p, n * sizeof(float)) != cudaSuccess) {
        fprintf(stderr, "cuda_kernels: out of device memory (%zu floats)\n", n);
        exit(1);
    }
    fill<<<(unsigned)((n + 255) / 256), 256>>>(p, n, scale);
    return p;
}

template <typename F> static void timeit(const char *name, double bytes, F run) {
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    run();
    cudaDeviceSynchronize();
    float best = 1e30f;
    for (int it = 0; it < 7; it++) {
        cudaEventRecord(e0);
        run();
        cudaEventRecord(e1);
        cudaEventSynchronize(e1);
        float ms = 0;
        cudaEventElapsedTime(&ms, e0, e1);
        if (ms < best) best = ms;
    }
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) {
        fprintf(stderr, "cuda_kernels: %s: %s\n", name, cudaGetErrorString(e));
        exit(1);
    }
    printf("%-34s %8.3f ms %7.0f GB/s\n", name, best, bytes / best / 1e6);
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
}

int main(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n < 1) {
        fprintf(stderr, "cuda_kernels: no CUDA device\n");
        return 1;
    }
    const char *ref = getenv("VMAMBA_CUDA_REFERENCE_KERNELS");
    vmc_use_reference_kernels(ref && !strcmp(ref, "1"));
    const int B = 128;
    const float eps = 1e-5f;
    { /* patch embed: 3 -> 48 channels, 224 -> 112, k3 s2 p1, LN + GELU; then the second conv's im2col */
        float *in = dbuf((size_t)B * 3 * 224 * 224), *out = dbuf((size_t)B * 112 * 112 * 48);
        float *w = dbuf(48 * 27, 0.3f), *b = dbuf(48), *lw = dbuf(48), *lb = dbuf(48);
        float *col = dbuf((size_t)B * 56 * 56 * 432);
        timeit("stem conv 3->48 +LN+GELU", 4.0 * B * (3 * 224 * 224 + 112 * 112 * 48),
               [&] { vmc_stem_conv(out, in, w, b, lw, lb, 1, B, 3, 224, 224, 48, 3, 2, 1, 112, 112, eps, 0); });
        timeit("im2col 48ch 112->56 k3 s2", 4.0 * B * (112 * 112 * 48 + 56 * 56 * 432),
               [&] { vmc_im2col(col, out, B, 112, 112, 48, 3, 2, 1, 56, 56, 0); });
        cudaFree(in), cudaFree(out), cudaFree(w), cudaFree(b), cudaFree(lw), cudaFree(lb), cudaFree(col);
    }
    const int dims[4] = {96, 192, 384, 768}, hw[4] = {56, 28, 14, 7};
    for (int s = 0; s < 4; s++) {
        const int C = dims[s], D = C, Hd = 4 * C, h = hw[s], R = (C + 15) / 16, N = 1, P = R + 2 * N;
        const size_t T = (size_t)B * h * h;
        float *x = dbuf(T * C), *y = dbuf(T * C), *hid = dbuf(T * Hd), *w = dbuf(Hd), *b = dbuf(Hd), *w9 = dbuf(9 * D, 0.3f);
        float *dbl = dbuf(T * 4 * P), *dtw = dbuf(4 * D * R, 0.5f), *A = dbuf(4 * D * N), *Ds = dbuf(4 * D), *dtb = dbuf(4 * D);
        float *scr = dbuf(vmc_scan_chunked_scratch(B, h, h, D, N));
        char nm[64];
        printf("-- stage %d: %zu tokens, %d channels\n", s + 1, T, C);
        snprintf(nm, sizeof nm, "layernorm %d", C);
        timeit(nm, 8.0 * T * C, [&] { vmc_layernorm(y, x, w, b, T, C, eps, 0); });
        snprintf(nm, sizeof nm, "dwconv3x3+silu %d", D);
        timeit(nm, 8.0 * T * D, [&] { vmc_dwconv3x3_silu(y, x, D, w9, b, B, h, h, D, 0); });
        snprintf(nm, sizeof nm, "scan D%d R%d N%d (1 chunk)", D, R, N);
        timeit(nm, 4.0 * T * (4 * D + 4 * P + 4 * D),
               [&] { vmc_scan_cross_chunked(scr, x, dtw, dbl, A, Ds, dtb, B, h, h, D, N, R, 1, 0); });
        snprintf(nm, sizeof nm, "merge4+layernorm %d", D);
        timeit(nm, 4.0 * T * 5 * D, [&] { vmc_merge4_layernorm(y, scr, T, D, w, b, eps, NULL, 0, 0); });
        snprintf(nm, sizeof nm, "bias+gelu %d", Hd);
        timeit(nm, 8.0 * T * Hd, [&] { vmc_bias_gelu(hid, b, T, Hd, 0); });
        snprintf(nm, sizeof nm, "add_rows %d (fc2 bias)", C);
        timeit(nm, 8.0 * T * C, [&] { vmc_add_rows(y, b, T, C, 0); });
        float *bufs[] = {x, y, hid, w, b, w9, dbl, dtw, A, Ds, dtb, scr};
        for (float *p : bufs) cudaFree(p);
    }
    return 0;
}
