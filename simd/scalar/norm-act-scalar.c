/* norm-act-scalar.c - reference LayerNorm, GELU, SiLU, gated SiLU, LayerNorm + gate. */
#include <math.h>

#include "../kernels.h"
#include "scalar.h"

/* One token's LayerNorm (the reference: double accumulation). */
static void ln_row(float *y, const float *x, const float *w, const float *b, int C, float eps) {
    /* double accumulation: the reference must not be the noisy one */
    double s = 0, ss = 0;
    for (int c = 0; c < C; c++) s += x[c];
    double mean = s / C;
    for (int c = 0; c < C; c++) {
        double d = x[c] - mean;
        ss += d * d;
    }
    float rstd = (float)(1.0 / sqrt(ss / C + eps));
    float m = (float)mean;
    for (int c = 0; c < C; c++) y[c] = (x[c] - m) * rstd * w[c] + b[c];
}

void vm_layernorm_scalar(float *out, const float *in, const float *w, const float *b, size_t T, int C, float eps) {
#pragma omp parallel for schedule(static)
    for (size_t t = 0; t < T; t++) ln_row(out + t * (size_t)C, in + t * (size_t)C, w, b, C, eps);
}

void vm_gelu_scalar(float *out, const float *in, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = 0.5f * in[i] * (1.0f + erff(in[i] * 0.70710678118654752f));
}

static inline float silu1(float x) { return x / (1.0f + expf(-x)); }

void vm_silu_scalar(float *out, const float *in, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = silu1(in[i]);
}

void vm_mul_silu_scalar(float *out, const float *in, const float *z, size_t T, int C, int ldz) {
#pragma omp parallel for schedule(static)
    for (size_t t = 0; t < T; t++)
        for (int c = 0; c < C; c++) out[t * C + c] = in[t * C + c] * silu1(z[t * (size_t)ldz + c]);
}

/* out_norm then the gate: the composition's exact operations, a row at a
 * time (ln_row's output rounded to float, then * silu(z)). */
void vm_layernorm_mul_silu_scalar(float *out, const float *in, const float *w, const float *b, const float *z, int ldz,
                                  size_t T, int C, float eps) {
#pragma omp parallel for schedule(static)
    for (size_t t = 0; t < T; t++) {
        float *o = out + t * (size_t)C;
        const float *g = z + t * (size_t)ldz;
        ln_row(o, in + t * (size_t)C, w, b, C, eps);
        for (int c = 0; c < C; c++) o[c] = o[c] * silu1(g[c]);
    }
}

/* One row of K values to u8 codes (kernels.h quantize_u8). */
static void q8_row(uint8_t *q, const float *x, int K, float inv, float z) {
    for (int k = 0; k < K; k++) {
        float v = x[k] * inv + z;
        v = v < 0.0f ? 0.0f : v > 255.49f ? 255.49f : v;
        q[k] = (uint8_t)(int)v;
    }
}

void vm_quantize_u8_scalar(uint8_t *q, const float *x, size_t M, int K, int ld, float inv, float zp) {
    const float z = zp + 0.5f;
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < M; r++) q8_row(q + r * K, x + r * ld, K, inv, z);
}

/* LayerNorm then quantize_u8, a row at a time through a stack row: the
 * composition's exact operations. */
void vm_layernorm_u8_scalar(uint8_t *q, const float *in, const float *w, const float *b, size_t T, int C, float eps,
                            float inv, float zp) {
    const float z = zp + 0.5f;
#pragma omp parallel for schedule(static)
    for (size_t t = 0; t < T; t++) {
        float row[VM_LN_U8_MAX_C];
        ln_row(row, in + t * (size_t)C, w, b, C, eps);
        q8_row(q + t * (size_t)C, row, C, inv, z);
    }
}
