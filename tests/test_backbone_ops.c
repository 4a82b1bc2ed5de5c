/* test_backbone_ops.c - the backbone ops (src/net/backbone.h) of a backend
 * (the CPU's, or CUDA's: vm_bb_cuda_ops) against plain scalar references,
 * op by op, while the one backbone description (net/backbone.c) and the
 * classifier run on random preset models of both families at random input
 * sizes (odd ones included) and batches: every op call is checked on the
 * very inputs the backend got (downloaded first on a device), then the run
 * continues on the backend's output. Part of tests/test_backend_ops (the
 * "cpu" and "cuda" runs; the latter SKIPs without a GPU).
 *
 * References: the scalar kernel table (simd/scalar, vm_kernels_scalar())
 * for LayerNorm, GELU, depthwise conv + SiLU, the cross scan and the gate;
 * plain loops for GEMMs (on the unpacked weights), the NCHW->NHWC pass,
 * the patch-merge gather and the pool; vm_conv2d_ref for convolutions;
 * for CUDA's scan a double-precision one (below) that also bounds the
 * kernel's error.
 *
 * Tolerances (u = 2^-24):
 *  - linear: 2*(K+3)*u*m per element, m = sum|a*w| + |bias| + |C before|
 *    (recursive summation in any order, Higham 3.1, plus the residual's
 *    add), times 1.13 after GELU (its largest slope), + 1e-6*|ref| (the
 *    vector erf; CUDA's erff is within 2 ulp). CUDA's tensor-core GEMMs
 *    (TF32 / FP16 / BF16: inputs rounded, or truncated, to p = 10 / 10 / 7
 *    fraction bits, products and sums in FP32): each product a'w' is
 *    within (2e + e^2)|a*w| of a*w, e = 2^-p, so + (2e + e^2)*m; FP16 also
 *    flushes |x| < 2^-14 to its subnormal grid (absolute 2^-25 more):
 *    + 2^-24 * (sum|a| + sum|w|).
 *  - LayerNorm, depthwise conv + SiLU, CPU: 1e-5 * max(1, |ref|), the SIMD
 *    kernels' tolerance against the scalar ones in tests/test_kernels.c.
 *    CUDA (nvcc without --use_fast_math: IEEE division and sqrt, no flush
 *    to zero, FMA contraction; expf and rsqrtf within 2 ulp, i.e. 4u
 *    relative) derives its bound per element, the GPU's error plus the
 *    scalar reference's own (both are float results):
 *    - LayerNorm of a row x of C (k_layernorm / k_ln_rows4): the mean is a
 *      float sum in lane-strided partial sums and a butterfly (any order:
 *      <= C u sum|x|) then one division, so it is off by
 *      dm <= (C+1) u A, A = sum|x| / C; the squared deviations sum to V
 *      (1 + (C+3) u) + C dm^2 (the dm cross term cancels), /C and + eps
 *      round twice more, rsqrtf (2 ulp) halves the relative error of its
 *      argument and adds 4u: rstd within ((C+5)/2 + 4) u; then x - mean,
 *      * rstd and the FMA * w + b round 3 times: |w| r (|x - mu| ((C+5)/2
 *      + 7) u + dm) + u |y|, r = 1 / sqrt(V/C + eps). The reference
 *      (double mean and variance, then float x - m, * rstd, * w, + b):
 *      |w| r (4 u |x - mu| + u |mu|) + u |y|. Their sum, doubled for the
 *      second-order terms (C dm^2 among them), as the scan's below.
 *    - dwconv: acc = bias + up to 9 products, in order (FMA on the GPU,
 *      separate roundings in the reference): each <= 10 u m, m = |bias| +
 *      sum|w v|; SiLU's slope is <= 1.1, so 1.1 * 20 u m through it; SiLU
 *      itself x / (1 + expf(-x)): expf (GPU 2 ulp, glibc 1 ulp), the add
 *      and the division: 6u + 4u relative: + 10 u |y|.
 *  - conv + LayerNorm (stem, v2 patch embed conv 2, v3 downsample): the
 *    convolution's bound e_t (as linear, K = k*k*Cin, max over the token's
 *    channels) goes through the norm as 3*|w_c|*e_t/sigma_t (mean and
 *    value both move by <= e_t), + 1e-5 * max(1, |ref|) for the norm.
 *  - ssm (dt_proj, scan, merge, out_norm, gate), CPU: the scan's 1e-5
 *    relative tolerance (test_kernels) on each of the 4 merged directions,
 *    through the norm as above (4e-5 * rowmax|y| / sigma * |w_c|), times
 *    |SiLU(z)| after the gate, + 1e-5 * max(1, |ref|). CUDA: its scan
 *    fuses dt_proj and runs softplus on fast __expf / __logf, so the
 *    bound is derived instead (ref_scan_dev), twice its first-order value,
 *    through the norm and the gate as on the CPU.
 *  - mean over tokens: CPU bit-identical (the same loop in double); CUDA
 *    sums L floats in order: (L+3)*u*mean|x|.
 *  - the gather and the layout passes (NCHW -> NHWC in, CUDA's NHWC ->
 *    NCHW features out) are copies: bit-identical. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include "model/model.h"
#include "net/backbone.h"
#include "../simd/kernels.h"

#define NKIND 10
static const char *const kname[NKIND] = {"stem", "conv_ln", "layernorm", "linear", "dwconv_silu",
                                          "ssm", "merge_gather", "mean_tokens", "(layout)", "classifier"};
static double worst[NKIND];
static int calls[NKIND], kbad[NKIND], bounded[NKIND], bad;
static const double U = 5.9604644775390625e-08; /* 2^-24 */

static int check(int kind, const char *what, const float *got, const float *ref, const double *tol, size_t n) {
    calls[kind]++;
    bounded[kind] |= tol != NULL;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]), t = tol ? tol[i] : 0.0;
        if (tol && d / (t + 1e-30) > worst[kind]) worst[kind] = d / (t + 1e-30);
        if (!tol && d > worst[kind]) worst[kind] = d;
        if (tol ? !(d <= t) : memcmp(&got[i], &ref[i], sizeof(float)) != 0) {
            printf("    FAIL backbone op %s (%s): element %zu: %.9g vs reference %.9g (bound %.3g)\n", kname[kind], what, i,
                   got[i], ref[i], t);
            bad++, kbad[kind]++;
            return 1;
        }
    }
    return 0;
}

static float *dup(const float *x, size_t n) {
    float *d = malloc(n * sizeof *d);
    memcpy(d, x, n * sizeof *d);
    return d;
}

/* The backend under test, and the arithmetic of its GEMMs: e = 2^-p of
 * the tensor-core input rounding (0: FP32), fp16: FP16's subnormal range. */
static const vm_bb_ops *inner = &vm_bb_cpu_ops;
static double gemm_e;
static int gemm_fp16;

/* A packed host copy of rows x cols floats (row stride ld) of one of the
 * backend's buffers, read after every op enqueued so far. */
static float *hv(vm_bb *bb, const float *p, size_t rows, size_t cols, size_t ld) {
    const size_t span = rows ? (rows - 1) * ld + cols : 0;
    float *h = malloc((span ? span : 1) * sizeof *h);
    if (!h) {
        printf("    out of memory\n");
        exit(99);
    }
    if (bb->host) memcpy(h, p, span * sizeof *h);
#ifdef VM_HAVE_CUDA
    else if (vm_cuda_bb_download(bb, h, p, span)) {
        printf("    FAIL download from the %s backend: %s\n", inner->name, vm_ctx_error(bb->c));
        exit(1);
    }
#endif
    for (size_t r = 1; r < rows && ld != cols; r++) memmove(h + r * cols, h + r * ld, cols * sizeof *h);
    return h;
}
#define HV(bb, p, n) hv(bb, p, 1, n, n)

/* The extra bound of a tensor-core GEMM result of magnitude m = sum|a*w|,
 * sa = sum|a|, sw = sum|w| (see the top). */
static double gemm_extra(double m, double sa, double sw) {
    return (2.0 * gemm_e + gemm_e * gemm_e) * m + (gemm_fp16 ? U * (sa + sw) : 0.0);
}

/* ---- references -------------------------------------------------------- */

/* A linear layer's plain weights (malloc'd copy) and bias. */
static float *ref_w(const vm_model *m, vm_bb_layer l, int s, int j, int N, int K, const float **bias) {
    const vm_stage *st = &m->st[s];
    const vm_block *bk = &st->blocks[j];
    const float *w = NULL;
    const vm_flinear *f = NULL;
    *bias = NULL;
    switch (l) {
    case VM_BB_IN_PROJ: w = bk->in_proj_w; f = bk->f_in; break;
    case VM_BB_X_PROJ: w = bk->x_proj_w; break;
    case VM_BB_OUT_PROJ: w = bk->out_proj_w; f = bk->f_out; break;
    case VM_BB_FC1: w = bk->fc1_w; f = bk->f_fc1; *bias = bk->fc1_b; break;
    case VM_BB_FC2: w = bk->fc2_w; f = bk->f_fc2; *bias = bk->fc2_b; break;
    case VM_BB_DS_REDUCTION: w = st->ds_reduction; f = st->f_ds; break;
    case VM_BB_HEAD: w = m->head_w; f = m->f_head; *bias = m->head_b; break;
    default: return NULL;
    }
    float *tmp = NULL;
    const float *v = vm_linear_values(w, f, (size_t)N * K, &tmp);
    if (!v) return NULL;
    return tmp ? tmp : dup(v, (size_t)N * K);
}

/* out = LN(in) with the scalar kernel, and each token's sigma. */
static void ref_layernorm(const vm_ln *n, const float *in, float *out, size_t T, int C, double *sigma) {
    vm_kernels_scalar()->layernorm(out, in, n->w, n->b, T, C, VM_LN_EPS);
    for (size_t t = 0; sigma && t < T; t++) {
        double mu = 0, v = 0;
        for (int c = 0; c < C; c++) mu += in[t * C + c];
        mu /= C;
        for (int c = 0; c < C; c++) v += (in[t * C + c] - mu) * (in[t * C + c] - mu);
        sigma[t] = sqrt(v / C + VM_LN_EPS);
    }
}

/* LN after an error of e[t] per element of token t's input. */
static void ln_tol(const vm_ln *n, const float *ref, const double *e, const double *sigma, size_t T, int C, double *tol) {
    for (size_t t = 0; t < T; t++)
        for (int c = 0; c < C; c++)
            tol[t * C + c] = 3.0 * fabs(n->w[c]) * e[t] / sigma[t] + 1e-5 * fmax(1.0, fabs(ref[t * C + c]));
}

/* ---- the checking ops: the CPU op, then the reference on its inputs ----- */

static double ck_now(vm_bb *bb) { return inner->now(bb); }

/* CUDA's outnorm maps as its LayerNorm left them (NHWC), for the check of
 * the features' layout pass after the run. */
static float *outnorm[4];

/* CUDA's LayerNorm against the scalar one: the bound at the top. */
static void ln_dev_tol(const vm_ln *n, const float *x, const float *ref, size_t T, int C, double *tol) {
    for (size_t t = 0; t < T; t++) {
        const float *xr = x + t * C;
        double mu = 0, A = 0, V = 0;
        for (int c = 0; c < C; c++) mu += xr[c], A += fabs(xr[c]);
        mu /= C, A /= C;
        for (int c = 0; c < C; c++) V += (xr[c] - mu) * (xr[c] - mu);
        const double r = 1.0 / sqrt(V / C + VM_LN_EPS), dm = (C + 1) * U * A;
        for (int c = 0; c < C; c++) {
            const double dev = fabs(xr[c] - mu), gpu = fabs(n->w[c]) * r * (dev * ((C + 5) / 2.0 + 7) * U + dm);
            const double cpu = fabs(n->w[c]) * r * (4 * U * dev + U * fabs(mu));
            tol[t * C + c] = 2.0 * (gpu + cpu + 2 * U * fabs(ref[t * C + c]));
        }
    }
}

static int ck_layernorm(vm_bb *bb, vm_bb_layer l, int s, int j, const float *in, float *out, size_t T, int C) {
    float *x = HV(bb, in, T * C), *ref = malloc(T * C * sizeof *ref);
    double *tol = malloc(T * C * sizeof *tol);
    int rc = inner->layernorm(bb, l, s, j, in, out, T, C);
    ref_layernorm(vm_model_ln(bb->m, l, s, j), x, ref, T, C, NULL);
    if (bb->host)
        for (size_t i = 0; i < T * C; i++) tol[i] = 1e-5 * fmax(1.0, fabs(ref[i]));
    else
        ln_dev_tol(vm_model_ln(bb->m, l, s, j), x, ref, T, C, tol);
    if (!rc) {
        float *got = HV(bb, out, T * C);
        check(2, "layernorm", got, ref, tol, T * C);
        if (l == VM_BB_OUTNORM && !bb->host) free(outnorm[s]), outnorm[s] = got;
        else free(got);
    }
    free(x), free(ref), free(tol);
    return rc;
}

/* conv reference and each output token's error bound (max over channels). */
static void ref_conv(const vm_conv *cv, const float *in, int B, int H, int W, float *out, double *e, int *OH, int *OW) {
    *OH = (H + 2 * cv->pad - cv->k) / cv->stride + 1;
    *OW = (W + 2 * cv->pad - cv->k) / cv->stride + 1;
    const size_t nin = (size_t)B * H * W * cv->cin, nw = (size_t)cv->cout * cv->cin * cv->k * cv->k, T = (size_t)B * *OH * *OW;
    vm_conv2d_ref(in, B, cv->cin, H, W, cv->cout, cv->k, cv->stride, cv->pad, cv->w, cv->b, 0, out);
    float *ai = malloc(nin * sizeof *ai), *aw = malloc(nw * sizeof *aw), *ab = NULL, *mag = malloc(T * cv->cout * sizeof *mag);
    for (size_t i = 0; i < nin; i++) ai[i] = fabsf(in[i]);
    for (size_t i = 0; i < nw; i++) aw[i] = fabsf(cv->w[i]);
    if (cv->b) {
        ab = malloc(cv->cout * sizeof *ab);
        for (int i = 0; i < cv->cout; i++) ab[i] = fabsf(cv->b[i]);
    }
    vm_conv2d_ref(ai, B, cv->cin, H, W, cv->cout, cv->k, cv->stride, cv->pad, aw, ab, 0, mag);
    const int K = cv->k * cv->k * cv->cin;
    double amax = 0, wmax = 0; /* FP16's subnormal term, bounded by K * max|a| + K * max|w| */
    for (size_t i = 0; i < nin; i++) amax = fmax(amax, ai[i]);
    for (size_t i = 0; i < nw; i++) wmax = fmax(wmax, aw[i]);
    for (size_t t = 0; t < T; t++) {
        double mx = 0;
        for (int c = 0; c < cv->cout; c++) mx = fmax(mx, mag[t * cv->cout + c]);
        e[t] = 2.0 * (K + 3) * U * mx + gemm_extra(mx, K * amax, K * wmax);
    }
    free(ai), free(aw), free(ab), free(mag);
}

static const vm_conv *conv_layer(const vm_model *m, vm_bb_layer l, int s) {
    return l == VM_BB_PE_CONV1 ? &m->pe_conv1 : l == VM_BB_PE_CONV2 ? &m->pe_conv2 : &m->st[s].ds_conv;
}

/* conv (in -> mid), LN (mid -> out) reference; `gelu` after; out is the
 * backend's result. */
static void ref_conv_ln(int kind, vm_bb *bb, const vm_conv *cv, const vm_ln *n, const float *in, int B, int H, int W,
                        const float *out, int gelu) {
    int OH, OW;
    const size_t T = (size_t)B * (size_t)((H + 2 * cv->pad - cv->k) / cv->stride + 1) *
                     (size_t)((W + 2 * cv->pad - cv->k) / cv->stride + 1);
    const size_t n_out = T * cv->cout;
    float *mid = malloc(n_out * sizeof *mid), *ref = malloc(n_out * sizeof *ref);
    double *e = malloc(T * sizeof *e), *sigma = malloc(T * sizeof *sigma), *tol = malloc(n_out * sizeof *tol);
    ref_conv(cv, in, B, H, W, mid, e, &OH, &OW);
    ref_layernorm(n, mid, ref, T, cv->cout, sigma);
    ln_tol(n, ref, e, sigma, T, cv->cout, tol);
    if (gelu) {
        vm_kernels_scalar()->gelu(ref, ref, n_out);
        for (size_t i = 0; i < n_out; i++) tol[i] = 1.13 * tol[i] + 1e-6 * fmax(1.0, fabs(ref[i]));
    }
    float *got = HV(bb, out, n_out);
    check(kind, kind ? "conv + LayerNorm" : "stem", got, ref, tol, n_out);
    free(got), free(mid), free(ref), free(e), free(sigma), free(tol);
}

static int ck_stem(vm_bb *bb, const float *in, int B, int H, int W, float *out, int gelu) {
    int rc = inner->stem(bb, in, B, H, W, out, gelu);
    if (rc) return rc;
    /* the CPU's NHWC copy of the input (t0) is a pure layout pass (CUDA's
     * direct stem reads NCHW; its im2col path is checked by the result) */
    const size_t n = (size_t)B * 3 * H * W;
    float *nhwc = malloc(n * sizeof *nhwc);
    for (int b = 0; b < B; b++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int c = 0; c < 3; c++)
                    nhwc[(((size_t)b * H + y) * W + x) * 3 + c] = in[(((size_t)b * 3 + c) * H + y) * W + x];
    if (bb->host) check(8, "NCHW -> NHWC", bb->t0, nhwc, NULL, n);
    ref_conv_ln(0, bb, &bb->m->pe_conv1, &bb->m->pe_norm1, nhwc, B, H, W, out, gelu);
    free(nhwc);
    return 0;
}

static int ck_conv_ln(vm_bb *bb, vm_bb_layer conv, vm_bb_layer ln, int s, const float *in, int B, int H, int W, float *mid,
                      float *out) {
    const vm_conv *cv = conv_layer(bb->m, conv, s);
    float *x = HV(bb, in, (size_t)B * H * W * cv->cin);
    int rc = inner->conv_ln(bb, conv, ln, s, in, B, H, W, mid, out);
    if (!rc) ref_conv_ln(1, bb, cv, vm_model_ln(bb->m, ln, s, 0), x, B, H, W, out, 0);
    free(x);
    return rc;
}

static int ck_linear(vm_bb *bb, vm_bb_layer l, int s, int j, const float *A, int lda, int M, int N, int K, float *C, int ldc,
                     int gelu, int accumulate) {
    const float *bias;
    float *w = ref_w(bb->m, l, s, j, N, K, &bias);
    float *a = hv(bb, A, M, K, lda), *c0 = hv(bb, C, M, N, ldc);
    int rc = inner->linear(bb, l, s, j, A, lda, M, N, K, C, ldc, gelu, accumulate);
    if (rc || !w) {
        free(w), free(a), free(c0);
        return rc;
    }
    float *ref = malloc((size_t)M * N * sizeof *ref), *got = hv(bb, C, M, N, ldc);
    double *tol = malloc((size_t)M * N * sizeof *tol);
    for (int i = 0; i < M; i++)
        for (int n = 0; n < N; n++) {
            double acc = 0, mag = 0, sa = 0, sw = 0;
            for (int k = 0; k < K; k++) {
                acc += (double)a[(size_t)i * K + k] * w[(size_t)n * K + k];
                mag += fabs((double)a[(size_t)i * K + k] * w[(size_t)n * K + k]);
                sa += fabs(a[(size_t)i * K + k]), sw += fabs(w[(size_t)n * K + k]);
            }
            const double ge = gemm_extra(mag, sa, sw);
            if (bias) acc += bias[n], mag += fabs(bias[n]);
            float v = (float)acc;
            if (gelu) vm_kernels_scalar()->gelu(&v, &v, 1);
            if (accumulate) v += c0[(size_t)i * N + n], mag += fabs(c0[(size_t)i * N + n]);
            ref[(size_t)i * N + n] = v;
            tol[(size_t)i * N + n] = (2.0 * (K + 3) * U * mag + ge) * (gelu ? 1.13 : 1.0) + 1e-6 * fabs(v);
        }
    check(l == VM_BB_HEAD ? 9 : 3, "linear", got, ref, tol, (size_t)M * N);
    free(w), free(a), free(c0), free(ref), free(got), free(tol);
    return 0;
}

static int ck_dwconv_silu(vm_bb *bb, int s, int j, const float *in, int ld_in, float *out, int B, int h, int w, int D) {
    const size_t T = (size_t)B * h * w;
    float *x = hv(bb, in, T, D, ld_in), *ref = malloc(T * D * sizeof *ref);
    double *tol = malloc(T * D * sizeof *tol);
    int rc = inner->dwconv_silu(bb, s, j, in, ld_in, out, B, h, w, D);
    const vm_block *bk = &bb->m->st[s].blocks[j];
    vm_kernels_scalar()->dwconv3x3_silu(ref, x, D, bk->conv_w, bk->conv_b, B, h, w, D);
    for (size_t i = 0; i < T * D; i++) tol[i] = 1e-5 * fmax(1.0, fabs(ref[i]));
    for (size_t p = 0; !bb->host && p < T; p++) { /* CUDA: the bound at the top */
        const int px = (int)(p % w), py = (int)(p / w % h);
        const size_t b0 = p / ((size_t)w * h);
        for (int d = 0; d < D; d++) {
            double m = bk->conv_b ? fabs(bk->conv_b[d]) : 0.0;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++)
                    if (py + dy >= 0 && py + dy < h && px + dx >= 0 && px + dx < w)
                        m += fabs((double)bk->conv_w[d * 9 + (dy + 1) * 3 + dx + 1] *
                                  x[((b0 * h + py + dy) * w + px + dx) * D + d]);
            tol[p * D + d] = 1.1 * 20 * U * m + 10 * U * fabs(ref[p * D + d]);
        }
    }
    if (!rc) {
        float *got = HV(bb, out, T * D);
        check(4, "dwconv3x3 + SiLU", got, ref, tol, T * D);
        free(got);
    }
    free(x), free(ref), free(tol);
    return rc;
}

/* CUDA's scan (kernels.cu: k_scan_chunk, k_scan_carry, the merge) in
 * double, with a first-order bound on the kernel's error. Per step of
 * direction k, channel d:
 *  - dt = dt_b + sum_r dt_w[r] x[r], an FMA chain: off by <= (R+2) u mdt,
 *    mdt = |dt_b| + sum|dt_w[r] x[r]|; softplus's slope is <= 1;
 *  - delta = softplus(dt) = log(1 + e^dt) on __expf (<= 2 + 1.173*20 ulp
 *    for |dt| <= 20: relative 3e-6 of e^dt, so of delta) and __logf
 *    (absolute 2^-21.41 on [0.5, 2], else 3 ulp) after 1 + e^dt rounds
 *    (absolute u in the log): dd = the dt error + 2^-21 + 2^-18 delta;
 *  - a = exp2f(delta fl(A log2 e)), exp2f within 2 ulp: relative error
 *    ea = |A| dd + 3u |delta A| + 4u; a chunk's start state is carried
 *    with expf(A sum(delta)), the float sum of <= L deltas: + L u |A| delta;
 *  - b = delta u B: off by eb = |u B| dd + 2u |b|;
 *  - h = a h + b, two roundings: err <= a err + a |h| (ea + 2u) + eb + 2u |b|,
 *    |h| <= mag = a mag + |b| (both carried along);
 *  - y = sum_n h_n C_n + Ds u: sum_n err_n |C_n| + (N+2) u (sum_n mag_n
 *    |C_n| + |Ds u|), and the fixed-order sum of the 4 directions 3u more.
 * ym: the merged y (float); e[t]: twice (second-order terms) the largest
 * bound over token t's channels, + u |y| for ym's own rounding. */
static void ref_scan_dev(const vm_model *m, int s, int j, const float *u, const float *xd, int B, int h, int w, float *ym,
                         double *e) {
    const vm_stage *st = &m->st[s];
    const vm_block *bk = &st->blocks[j];
    const int D = st->d_inner, R = st->R, N = m->info.d_state, P = R + 2 * N, L = h * w;
    const size_t T = (size_t)B * L;
    double *y = calloc(T * D, sizeof *y), *ey = calloc(T * D, sizeof *ey), *hs = malloc(3 * (size_t)N * sizeof *hs);
    double *mg = hs + N, *er = mg + N;
    for (int b = 0; b < B; b++)
        for (int k = 0; k < 4; k++)
            for (int d = 0; d < D; d++) {
                const size_t kd = (size_t)k * D + d;
                for (int n = 0; n < N; n++) hs[n] = mg[n] = er[n] = 0.0;
                for (int l = 0; l < L; l++) {
                    const size_t tok = (size_t)b * L + (size_t)vm_scan_token(k, l, h, w);
                    const float *row = xd + tok * 4 * P + (size_t)k * P;
                    double dt = bk->dt_b[kd], mdt = fabs(dt);
                    for (int r = 0; r < R; r++) {
                        const double p = (double)bk->dt_w[kd * R + r] * row[r];
                        dt += p, mdt += fabs(p);
                    }
                    const double dl = dt > 20.0 ? dt : log1p(exp(dt)), dd = (R + 2) * U * mdt + 0x1p-21 + 0x1p-18 * dl;
                    const double uu = u[tok * D + d], du = (double)bk->Ds[kd] * uu;
                    double acc = 0, eacc = 0, macc = 0;
                    for (int n = 0; n < N; n++) {
                        const double An = bk->A[kd * N + n], a = exp(dl * An), bn = dl * row[R + n] * uu, Cn = fabs(row[R + N + n]);
                        const double ea = fabs(An) * (dd + L * U * dl) + 3 * U * fabs(dl * An) + 4 * U;
                        const double eb = fabs(row[R + n] * uu) * dd + 2 * U * fabs(bn);
                        er[n] = a * er[n] + a * mg[n] * (ea + 2 * U) + eb + 2 * U * fabs(bn);
                        mg[n] = a * mg[n] + fabs(bn);
                        hs[n] = a * hs[n] + bn;
                        acc += hs[n] * row[R + N + n], eacc += er[n] * Cn, macc += mg[n] * Cn;
                    }
                    y[tok * D + d] += acc + du;
                    ey[tok * D + d] += eacc + (N + 5) * U * (macc + fabs(du));
                }
            }
    for (size_t t = 0; t < T; t++) {
        double mx = 0;
        for (int d = 0; d < D; d++) {
            ym[t * D + d] = (float)y[t * D + d];
            mx = fmax(mx, ey[t * D + d] + U * fabs(y[t * D + d]));
        }
        e[t] = 2.0 * mx;
    }
    free(y), free(ey), free(hs);
}

static int ck_ssm(vm_bb *bb, int s, int j, const float *u, const float *xdbl, const float *z, int ldz, float *y, int B, int h,
                  int w) {
    const vm_model *m = bb->m;
    const vm_stage *st = &m->st[s];
    const vm_block *bk = &st->blocks[j];
    const int D = st->d_inner, R = st->R, N = m->info.d_state, P = R + 2 * N;
    const size_t T = (size_t)B * h * w;
    float *uu = HV(bb, u, T * D), *xd = HV(bb, xdbl, T * 4 * P), *zz = z ? hv(bb, z, T, D, ldz) : NULL;
    int rc = inner->ssm(bb, s, j, u, xdbl, z, ldz, y, B, h, w);
    if (rc) {
        free(uu), free(xd), free(zz);
        return rc;
    }
    float *ym = malloc(T * D * sizeof *ym), *ref = malloc(T * D * sizeof *ref);
    double *sigma = malloc(T * sizeof *sigma), *e = malloc(T * sizeof *e), *tol = malloc(T * D * sizeof *tol);
    if (bb->host) {
        /* dt_proj in double, the scalar cross scan */
        float *dts = malloc(4 * T * D * sizeof *dts);
        for (int k = 0; k < 4; k++)
            for (size_t t = 0; t < T; t++)
                for (int d = 0; d < D; d++) {
                    double acc = 0;
                    for (int r = 0; r < R; r++) acc += (double)xd[t * 4 * P + (size_t)k * P + r] * bk->dt_w[((size_t)k * D + d) * R + r];
                    dts[((size_t)k * T + t) * D + d] = (float)acc;
                }
        vm_scan_dims dims = {B, h, w, D, N, R};
        vm_kernels_scalar()->scan_cross(ym, uu, dts, NULL, xd, bk->A, bk->Ds, bk->dt_b, &dims);
        for (size_t t = 0; t < T; t++) {
            double mx = 0;
            for (int d = 0; d < D; d++) mx = fmax(mx, fabs(ym[t * D + d]));
            e[t] = 4e-5 * fmax(1.0, mx) / 3.0; /* ln_tol multiplies by 3 */
        }
        free(dts);
    } else {
        ref_scan_dev(m, s, j, uu, xd, B, h, w, ym, e);
    }
    /* LN, gate */
    ref_layernorm(&bk->out_norm, ym, ref, T, D, sigma);
    ln_tol(&bk->out_norm, ref, e, sigma, T, D, tol);
    if (zz) {
        vm_kernels_scalar()->mul_silu(ref, ref, zz, T, D, D);
        for (size_t i = 0; i < T * D; i++) {
            double sz = fabs(zz[i] / (1.0 + exp(-(double)zz[i])));
            tol[i] = tol[i] * sz + 1e-5 * fmax(1.0, fabs(ref[i]));
        }
    }
    float *got = HV(bb, y, T * D);
    check(5, "ssm", got, ref, tol, T * D);
    free(got), free(uu), free(xd), free(zz), free(ym), free(ref), free(sigma), free(e), free(tol);
    return 0;
}

static int ck_merge_gather(vm_bb *bb, const float *in, float *out, int B, int h, int w, int C) {
    float *x = HV(bb, in, (size_t)B * h * w * C);
    int rc = inner->merge_gather(bb, in, out, B, h, w, C);
    const int h2 = (h + 1) / 2, w2 = (w + 1) / 2;
    const size_t n = (size_t)B * h2 * w2 * 4 * C;
    float *ref = malloc(n * sizeof *ref);
    for (int b = 0; b < B; b++)
        for (int y = 0; y < h2; y++)
            for (int xx = 0; xx < w2; xx++)
                for (int q = 0; q < 4; q++) /* (0,0),(1,0),(0,1),(1,1) */
                    for (int c = 0; c < C; c++) {
                        int yy = 2 * y + (q & 1), x2 = 2 * xx + (q >> 1);
                        ref[((((size_t)b * h2 + y) * w2 + xx) * 4 + q) * C + c] =
                            yy < h && x2 < w ? x[(((size_t)b * h + yy) * w + x2) * C + c] : 0.0f;
                    }
    if (!rc) {
        float *got = HV(bb, out, n);
        check(6, "patch-merge gather", got, ref, NULL, n);
        free(got);
    }
    free(x), free(ref);
    return rc;
}

/* CPU: the same loop (double), bit-identical; CUDA: float sum in token
 * order, (L-1) u sum|x| (Higham 3.1), the division and the reference's
 * own rounding: (L+3) u mean|x|. */
static int ck_mean_tokens(vm_bb *bb, const float *in, int B, int L, int C, float *out) {
    float *x = HV(bb, in, (size_t)B * L * C);
    int rc = inner->mean_tokens(bb, in, B, L, C, out);
    float *ref = malloc((size_t)B * C * sizeof *ref);
    double *tol = bb->host ? NULL : malloc((size_t)B * C * sizeof *tol);
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            double acc = 0, mag = 0;
            for (int t = 0; t < L; t++) acc += x[((size_t)b * L + t) * C + c], mag += fabs(x[((size_t)b * L + t) * C + c]);
            ref[(size_t)b * C + c] = (float)(acc / L);
            if (tol) tol[(size_t)b * C + c] = (L + 3) * U * mag / L;
        }
    if (!rc) {
        float *got = HV(bb, out, (size_t)B * C);
        check(7, "mean over tokens", got, ref, tol, (size_t)B * C);
        free(got);
    }
    free(x), free(ref), free(tol);
    return rc;
}

static const vm_bb_ops ck_ops = {"check", ck_now, ck_stem, ck_conv_ln, ck_layernorm, ck_linear, ck_dwconv_silu,
                                 ck_ssm, ck_merge_gather, ck_mean_tokens,
                                 /* norm_linear: NULL, so the description runs LayerNorm and linear apart and each
                                  * is checked here; the CPU's fused INT8 form has its own bit-identity test
                                  * (test_kernels.c layernorm_u8_matches_composition) */
                                 NULL};

static uint64_t bb_rng = 7;
static int bb_irand(int lo, int hi) {
    bb_rng = bb_rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return lo + (int)((bb_rng >> 33) % (uint64_t)(hi - lo + 1));
}

/* One model at a random input size: the description on the checking ops. */
static void one_model(vm_model *m, const char *name, int B, int H, int W) {
    char err[256];
    vm_ctx *c = vm_ctx_new(m, err, sizeof err);
    if (!c) {
        printf("    FAIL %s: %s\n", name, err);
        bad++;
        return;
    }
    const size_t n = (size_t)B * 3 * H * W;
    float *in = malloc(n * sizeof *in);
    for (size_t i = 0; i < n; i++) in[i] = (float)bb_irand(-1000, 1000) / 500.0f;
    if (vm_plan_ensure(c, B, H, W)) {
        printf("    FAIL %s: plan: %s\n", name, vm_ctx_error(c));
        bad++;
    } else {
        vm_plan *p = &c->plan;
        vm_bb bb;
        memset(&bb, 0, sizeof bb);
        bb.ops = &ck_ops;
        bb.m = m;
        bb.c = c;
        bb.host = 1;
        memcpy(bb.h, p->h, sizeof bb.h);
        memcpy(bb.w, p->w, sizeof bb.w);
        memcpy(bb.feat, p->feat, sizeof bb.feat);
        bb.pe_h1 = p->pe_h1, bb.pe_w1 = p->pe_w1;
        bb.x = p->x, bb.t0 = p->t0, bb.t1 = p->t1, bb.t2 = p->t2, bb.t3 = p->t3, bb.t5 = p->t5;
        int rc = vm_backbone_run(&bb, in, B, H, W);
        vm_classifier h;
        if (!rc && m->info.num_classes > 0 && !vm_classifier_bind(m, &h, err, sizeof err)) {
            float *logits = malloc((size_t)B * h.ncls * sizeof *logits);
            rc = vm_classifier_run(&h, &bb, p->x, B, p->h[3] * p->w[3], logits);
            free(logits);
        }
        if (rc) {
            printf("    FAIL %s: %s\n", name, vm_ctx_error(c));
            bad++;
        }
    }
    printf("    %-34s B=%d %dx%d\n", name, B, H, W);
    free(in);
    vm_ctx_free(c);
}

#ifdef VM_HAVE_CUDA
/* One model on CUDA device 0 as its default device, GEMMs in precision
 * prec: the description and the classifier (or the features) through the
 * real CUDA forward (plan, arena, streams) on the checking ops; then the
 * features' NHWC -> NCHW download against the outnorm maps, bit for bit. */
static void one_model_cuda(vm_model *m, const char *name, int B, int H, int W, vm_precision prec) {
    static const int bits[4] = {0, 10, 10, 7}; /* fraction bits of FP32's (none), TF32, FP16, BF16 inputs */
    gemm_e = bits[prec] ? ldexp(1.0, -bits[prec]) : 0.0;
    gemm_fp16 = prec == VM_PRECISION_FP16;
    char err[256] = "";
    vm_ctx *c = NULL;
    if (vm_model_set_device(m, "cuda:0", prec) || !(c = vm_ctx_new(m, err, sizeof err))) {
        printf("    FAIL %s: %s\n", name, err[0] ? err : vm_model_error(m));
        bad++;
        return;
    }
    const size_t n = (size_t)B * 3 * H * W;
    float *in = malloc(n * sizeof *in), *logits = NULL, *feats[4] = {NULL, NULL, NULL, NULL};
    int fc[4], fh[4], fw[4];
    for (size_t i = 0; i < n; i++) in[i] = (float)bb_irand(-1000, 1000) / 500.0f;
    if (m->info.num_classes > 0) logits = malloc((size_t)B * m->info.num_classes * sizeof *logits);
    for (int i = 0; i < 4 && m->info.is_backbone; i++) {
        vm_feature_shape(m, H, W, i, &fc[i], &fh[i], &fw[i]);
        feats[i] = malloc((size_t)B * fc[i] * fh[i] * fw[i] * sizeof *feats[i]);
    }
    if (vm_cuda_forward_ops(m, c, 0, &ck_ops, in, B, H, W, logits, feats[0] ? feats : NULL)) {
        printf("    FAIL %s: %s\n", name, vm_ctx_error(c));
        bad++;
    } else {
        for (int i = 0; i < 4 && feats[i] && outnorm[i]; i++) {
            const size_t hw = (size_t)fh[i] * fw[i], nf = (size_t)B * fc[i] * hw;
            float *nchw = malloc(nf * sizeof *nchw);
            for (size_t b = 0; b < (size_t)B; b++)
                for (size_t t = 0; t < hw; t++)
                    for (int ch = 0; ch < fc[i]; ch++) nchw[(b * fc[i] + ch) * hw + t] = outnorm[i][(b * hw + t) * fc[i] + ch];
            check(8, "features NHWC -> NCHW", feats[i], nchw, NULL, nf);
            free(nchw);
        }
    }
    static const char *const pn[4] = {"fp32", "tf32", "fp16", "bf16"};
    printf("    %-34s B=%d %dx%d %s\n", name, B, H, W, pn[prec]);
    for (int i = 0; i < 4; i++) free(feats[i]), free(outnorm[i]), outnorm[i] = NULL;
    free(in), free(logits);
    vm_ctx_free(c);
}
#endif

/* The backbone ops of backend "cpu" or "cuda" (a CUDA build with a GPU:
 * the caller checked) on `cases` random models per family; on CUDA four
 * times as many, each GEMM precision in turn, with the kernel variants the
 * tests may choose (VMAMBA_CUDA_DIRECT_STEM=0: the im2col stem;
 * VMAMBA_CUDA_SCAN_CHUNKS=1: the one-pass scan, else the chunked one that
 * small batches get; VMAMBA_CUDA_REFERENCE_KERNELS=1: the scalar kernels)
 * in turn, so that each pair of them meets. Returns the failures. */
int test_backbone_ops(const char *backend, int cases, uint64_t seed) {
    const int cuda = !strcmp(backend, "cuda");
#ifdef VM_HAVE_CUDA
    inner = cuda ? &vm_bb_cuda_ops : &vm_bb_cpu_ops;
#else
    if (cuda) return 0; /* no such backend: test_backend_ops has skipped */
    inner = &vm_bb_cpu_ops;
#endif
    bb_rng = seed * 2654435761ULL + 7;
    printf("backbone ops (net/backbone.h) on %s against the scalar references:\n", inner->name);
    const char *presets[] = {"vmamba-tiny-s1l8", "vanilla-vmamba-tiny"};
    const int runs = cuda ? 4 * cases : cases;
    for (int i = 0; i < 2; i++) {
        char err[256];
        for (int k = 0; k < runs; k++) {
            int B = bb_irand(1, cuda ? 3 : 2);
            const int H = bb_irand(17, 70), W = bb_irand(17, 70);
            if (cuda && k % 4 == 1) B = 2; /* a batch in every family */
            vm_model *m = (k + i) % 2 ? vm_backbone_from_preset(presets[i], 11 + k, err, sizeof err)
                                : vm_model_from_preset(presets[i], bb_irand(2, 40), 11 + k, err, sizeof err);
            if (!m) {
                printf("    FAIL %s: %s\n", presets[i], err);
                bad++;
                continue;
            }
            char name[80];
            snprintf(name, sizeof name, "%s (%s)", presets[i], (k + i) % 2 ? "backbone" : "classifier");
#ifdef VM_HAVE_CUDA
            if (cuda) {
                /* read when the weights go up (vm_model_set_device) */
                const int v = k % 4;
                setenv("VMAMBA_CUDA_DIRECT_STEM", v & 1 ? "0" : "1", 1);
                setenv("VMAMBA_CUDA_SCAN_CHUNKS", v & 2 ? "1" : "0", 1);
                setenv("VMAMBA_CUDA_REFERENCE_KERNELS", (v & 1) ^ (v >> 1) ? "1" : "0", 1);
                snprintf(name + strlen(name), sizeof name - strlen(name), "%s%s%s", v & 1 ? " im2col-stem" : "",
                         v & 2 ? " one-pass" : "", (v & 1) ^ (v >> 1) ? " ref-kernels" : "");
                one_model_cuda(m, name, B, H, W, (vm_precision)(k % 4));
            } else
#endif
                one_model(m, name, B, H, W);
            vm_model_free(m);
        }
    }
#ifdef VM_HAVE_CUDA
    unsetenv("VMAMBA_CUDA_DIRECT_STEM"), unsetenv("VMAMBA_CUDA_SCAN_CHUNKS"), setenv("VMAMBA_CUDA_REFERENCE_KERNELS", "0", 1);
#endif
    for (int k = 0; k < NKIND; k++)
        printf("  %-14s %-5s %4d calls  %s  (%s %.3g)\n", kname[k], inner->name, calls[k], kbad[k] ? "FAIL" : "ok  ",
               bounded[k] || !calls[k] ? "max |diff| / bound" : "bit-identical required; max |diff|", worst[k]);
    return bad;
}
