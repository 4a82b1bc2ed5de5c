/* kernels.h - the element-wise / scan kernels of the forward pass.
 *
 * Every kernel has a plain scalar reference in simd/scalar/; ISA variants
 * (later: avx512/, avx2/, neon/) implement the same signatures and are
 * picked once at run time by vm_kernels() in simd/dispatch.c.
 * Layout convention: activations are token-major ("NHWC"): T tokens of C
 * contiguous channels. Threading: kernels split their outermost
 * independent loop with OpenMP; callers never split. */
#ifndef VM_KERNELS_H
#define VM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Largest d_state the kernels accept (released models use 1 and 16);
 * the loader rejects larger ones. Bounds per-thread scan state on the stack. */
#define VM_MAX_D_STATE 256

/* Largest dt_rank scan_cross computes dt_proj for (its weights sit on the
 * stack, per channel block). */
#define VM_SCAN_MAX_R 128

/* Largest C layernorm_u8 takes (its row lives on the stack). */
#define VM_LN_U8_MAX_C 4096

/* Geometry of one selective-scan call (one SS2D layer, whole batch). */
typedef struct {
    int B, H, W;      /* batch and map size; L = H*W                       */
    int D;            /* d_inner (channels)                                 */
    int N;            /* d_state                                            */
    int R;            /* dt_rank                                            */
} vm_scan_dims;

typedef struct {
    const char *name;
    /* out[t][c] = LN(in[t][:])[c] * w[c] + b[c]; out may alias in. */
    void (*layernorm)(float *out, const float *in, const float *w, const float *b, size_t T, int C, float eps);
    void (*gelu)(float *out, const float *in, size_t n);   /* exact erf form */
    void (*silu)(float *out, const float *in, size_t n);
    /* out = in * silu(z), elementwise over T rows; in/z have row strides. */
    void (*mul_silu)(float *out, const float *in, const float *z, size_t T, int C, int ldz);
    /* Depthwise 3x3, pad 1, stride 1, then SiLU. in: (B,H,W) tokens with
     * row stride ld_in; w: [C][9]; bias may be NULL; out: [B*H*W][C]. */
    void (*dwconv3x3_silu)(float *out, const float *in, int ld_in, const float *w, const float *bias,
                           int B, int H, int W, int C);
    /* The 4-direction selective scan with cross-scan and cross-merge fused:
     *  u    [B*L][D]            SiLU(conv) output, row-major tokens
     *  dts  [4][B*L][D]         dt before bias, in row-major token order
     *  dt_w [4][D][R]           or NULL; when given, dts is not read and dt
     *                           is dt_proj computed in the kernel: per lane
     *                           fmaf over r = 0..R-1 from 0 (oneDNN's order
     *                           for these K), then + dt_bias; R <= VM_SCAN_MAX_R
     *  dbl  [B*L][4][R+2N]      x_proj output per direction (dt_low, B, C)
     *  A    [4*D][N]            = -exp(A_logs);  Ds, dt_bias [4*D]
     *  y    [B*L][D]            merged output (overwritten)             */
    void (*scan_cross)(float *y, const float *u, const float *dts, const float *dt_w, const float *dbl, const float *A,
                       const float *Ds, const float *dt_bias, const vm_scan_dims *dims);
    /* out = LN(in) * w + b, then * silu(z) (z row stride ldz): the SS2D
     * out_norm and its gate in one pass, bit-identical to layernorm then
     * mul_silu of the same table (one pass over y and one parallel
     * region fewer per gated block). out may alias in. */
    void (*layernorm_mul_silu)(float *out, const float *in, const float *w, const float *b, const float *z, int ldz,
                               size_t T, int C, float eps);
    /* dt_proj of the four scan directions in one call:
     *  dts[k][t][d] = sum over r = 0..R-1 of dbl[t][k][r] * wt[k][r][d],
     * per element fmaf over r from 0 (oneDNN's order for these K: the
     * d_state-1 models' bits do not move, bench/RESULTS.md). dbl
     * [T][4][P] (x_proj's output, its first R of each P), wt [4][R][D]
     * (dt_proj's weights r-major, laid out by the plan), dts [4][T][D].
     * One parallel region for the four products (they were four oneDNN
     * calls of 1.8 M MACs each, mostly overhead at 2 threads). */
    void (*dt_proj)(float *dts, const float *dbl, const float *wt, size_t T, int D, int R, int P);
    /* INT8 inputs: q[r][k] = (u8) clamp(x[r*ld + k] * inv + zp + 0.5, 0,
     * 255.49) truncated, i.e. round(x / scale) + zp, saturated. */
    void (*quantize_u8)(uint8_t *q, const float *x, size_t M, int K, int ld, float inv, float zp);
    /* quantize_u8(layernorm(in)) in one pass, bit-identical to the two
     * kernels of the same table: q [T][C], C <= VM_LN_U8_MAX_C. The INT8
     * layers after a LayerNorm quantize straight from it: the float rows
     * never leave L1, and one parallel pass instead of two. */
    void (*layernorm_u8)(uint8_t *q, const float *in, const float *w, const float *b, size_t T, int C, float eps, float inv,
                         float zp);
    /* Dynamic INT8 (one scale and zero point per row, asymmetric): per row
     * r, lo = min(0, min x), hi = max(0, max x), scale = (hi - lo) / 255
     * (1 when hi == lo), zp = (int)(-lo / scale + 0.5) in [0, 255], and
     * q[r][k] = (u8)(int)clamp(fma(x, 1 / scale, zp + 0.5), 0, 255.49).
     * Every variant gives the same bits (min/max are exact, one fma). */
    void (*quantize_rows_u8)(uint8_t *q, float *scale, int32_t *zp, const float *x, size_t M, int K, int ld);
    /* ... and back: v = fma((float)(acc[r][n] - zp[r] wsum[n]), scale[r] *
     * w_scale[n], bias ? bias[n] : 0); C[r][n] = accumulate ? C[r][n] + v : v.
     * acc is [M][N] (the s32 product of q and W), wsum[n] = sum_k W[n][k].
     * Bit-identical in every variant. */
    void (*dequant_rows)(float *C, int ldc, const int32_t *acc, size_t M, int N, const float *scale, const int32_t *zp,
                         const float *w_scale, const int32_t *wsum, const float *bias, int accumulate);
} vm_kernel_table;

/* The table in use: chosen by CPU features, or forced by VMAMBA_ISA. */
const vm_kernel_table *vm_kernels(void);
/* The scalar reference table (tests compare every variant with it). */
const vm_kernel_table *vm_kernels_scalar(void);
/* Every table this build has and this CPU runs, best first, NULL-ended. */
const vm_kernel_table *const *vm_kernels_available(void);
/* Use table t from now on (tests run the goldens once per table). */
void vm_kernels_set(const vm_kernel_table *t);

/* Token index of position l of scan direction k (0 row-major, 1 column-
 * major, 2 and 3 their reverses) on an H x W map. */
static inline int vm_scan_token(int k, int l, int H, int W) {
    int L = H * W;
    if (k >= 2) l = L - 1 - l;
    if (k & 1) return (l % H) * W + l / H;
    return l;
}

/* One row's scale and zero point from its range (quantize_rows_u8; shared by every variant). */
static inline void vm_row_qparams(float lo, float hi, float *scale, int32_t *zp) {
    float s = (hi - lo) / 255.0f;
    if (!(s > 0.0f)) s = 1.0f;
    float z = -lo / s + 0.5f;
    *scale = s;
    *zp = z <= 0.0f ? 0 : z >= 255.0f ? 255 : (int32_t)z;
}
/* torch.nn.functional.softplus with threshold 20. */
float vm_softplus_ref(float x);

/* Single-direction reference scan in the official layout, for tests:
 * u, delta [D][L]; A [D][N]; Bm, Cm [N][L]; y [D][L]. delta is before
 * bias and softplus. */
void vm_selective_scan_ref(float *y, const float *u, const float *delta, const float *A, const float *Bm,
                           const float *Cm, const float *Dv, const float *dt_bias, int D, int L, int N);

#endif
