/* quant-rows-scalar.c - the reference of dynamic INT8's per-row
 * quantization and dequantization (kernels.h: quantize_rows_u8,
 * dequant_rows). fmaf where the vector variants use one fused multiply-add,
 * so that every variant gives the same bits. */
#include <math.h>

#include "scalar.h"

void vm_quantize_rows_u8_scalar(uint8_t *q, float *scale, int32_t *zp, const float *x, size_t M, int K, int ld) {
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < M; r++) {
        const float *xr = x + r * ld;
        float lo = 0.0f, hi = 0.0f;
        for (int k = 0; k < K; k++) {
            lo = xr[k] < lo ? xr[k] : lo;
            hi = xr[k] > hi ? xr[k] : hi;
        }
        vm_row_qparams(lo, hi, &scale[r], &zp[r]);
        const float inv = 1.0f / scale[r], z = (float)zp[r] + 0.5f;
        for (int k = 0; k < K; k++) {
            float v = fmaf(xr[k], inv, z);
            v = v < 0.0f ? 0.0f : v > 255.49f ? 255.49f : v;
            q[r * K + k] = (uint8_t)(int)v;
        }
    }
}

void vm_dequant_rows_scalar(float *C, int ldc, const int32_t *acc, size_t M, int N, const float *scale, const int32_t *zp,
                            const float *w_scale, const int32_t *wsum, const float *bias, int accumulate) {
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < M; r++) {
        float *c = C + r * ldc;
        const int32_t *a = acc + r * N;
        for (int n = 0; n < N; n++) {
            float v = fmaf((float)(a[n] - zp[r] * wsum[n]), scale[r] * w_scale[n], bias ? bias[n] : 0.0f);
            c[n] = accumulate ? c[n] + v : v;
        }
    }
}
