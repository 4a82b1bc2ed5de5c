/* test_backbone_ops.c - the backbone ops (src/net/backbone.h) of the CPU
 * backend against plain scalar references, op by op, while the one
 * backbone description (net/backbone.c) and the classifier run on random
 * preset models of both families at random input sizes: every op call is
 * checked on the very inputs the backend got, then the run continues on
 * the backend's output. Part of tests/test_backend_ops (the "cpu" run).
 *
 * References: the scalar kernel table (simd/scalar, vm_kernels_scalar())
 * for LayerNorm, GELU, depthwise conv + SiLU, the cross scan and the gate;
 * plain loops for GEMMs (on the unpacked weights), the NCHW->NHWC pass,
 * the patch-merge gather and the pool; vm_conv2d_ref for convolutions.
 *
 * Tolerances (u = 2^-24):
 *  - linear: 2*(K+3)*u*m per element, m = sum|a*w| + |bias| + |C before|
 *    (recursive summation in any order, Higham 3.1, plus the residual's
 *    add), times 1.13 after GELU (its largest slope), + 1e-6*|ref| (the
 *    vector erf).
 *  - LayerNorm, depthwise conv + SiLU: 1e-5 * max(1, |ref|), the SIMD
 *    kernels' tolerance against the scalar ones in tests/test_kernels.c.
 *  - conv + LayerNorm (stem, v2 patch embed conv 2, v3 downsample): the
 *    convolution's bound e_t (as linear, K = k*k*Cin, max over the token's
 *    channels) goes through the norm as 3*|w_c|*e_t/sigma_t (mean and
 *    value both move by <= e_t), + 1e-5 * max(1, |ref|) for the norm.
 *  - ssm (dt_proj, scan, merge, out_norm, gate): the scan's 1e-5 relative
 *    tolerance (test_kernels) on each of the 4 merged directions, through
 *    the norm as above (4e-5 * rowmax|y| / sigma * |w_c|), times |SiLU(z)|
 *    after the gate, + 1e-5 * max(1, |ref|).
 *  - the gather, the pool and the layout pass are copies / the same loop:
 *    bit-identical. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "net/backbone.h"
#include "../simd/kernels.h"

#define NKIND 10
static const char *const kname[NKIND] = {"stem", "conv_ln", "layernorm", "linear", "dwconv_silu",
                                          "ssm", "merge_gather", "mean_tokens", "(layout)", "classifier"};
static double worst[NKIND];
static int calls[NKIND], bad;
static const double U = 5.9604644775390625e-08; /* 2^-24 */

static int check(int kind, const char *what, const float *got, const float *ref, const double *tol, size_t n) {
    calls[kind]++;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]), t = tol ? tol[i] : 0.0;
        if (tol && d / (t + 1e-30) > worst[kind]) worst[kind] = d / (t + 1e-30);
        if (!tol && d > worst[kind]) worst[kind] = d;
        if (tol ? !(d <= t) : memcmp(&got[i], &ref[i], sizeof(float)) != 0) {
            printf("    FAIL backbone op %s (%s): element %zu: %.9g vs reference %.9g (bound %.3g)\n", kname[kind], what, i,
                   got[i], ref[i], t);
            bad++;
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

static double ck_now(vm_bb *bb) { return vm_bb_cpu_ops.now(bb); }

static int ck_layernorm(vm_bb *bb, vm_bb_layer l, int s, int j, const float *in, float *out, size_t T, int C) {
    float *x = dup(in, T * C), *ref = malloc(T * C * sizeof *ref);
    double *tol = malloc(T * C * sizeof *tol);
    int rc = vm_bb_cpu_ops.layernorm(bb, l, s, j, in, out, T, C);
    ref_layernorm(vm_model_ln(bb->m, l, s, j), x, ref, T, C, NULL);
    for (size_t i = 0; i < T * C; i++) tol[i] = 1e-5 * fmax(1.0, fabs(ref[i]));
    if (!rc) check(2, "layernorm", out, ref, tol, T * C);
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
    for (size_t t = 0; t < T; t++) {
        double mx = 0;
        for (int c = 0; c < cv->cout; c++) mx = fmax(mx, mag[t * cv->cout + c]);
        e[t] = 2.0 * (K + 3) * U * mx;
    }
    free(ai), free(aw), free(ab), free(mag);
}

static const vm_conv *conv_layer(const vm_model *m, vm_bb_layer l, int s) {
    return l == VM_BB_PE_CONV1 ? &m->pe_conv1 : l == VM_BB_PE_CONV2 ? &m->pe_conv2 : &m->st[s].ds_conv;
}

/* conv (in -> mid), LN (mid -> out) reference; `gelu` after. */
static void ref_conv_ln(int kind, const vm_model *m, const vm_conv *cv, const vm_ln *n, const float *in, int B, int H, int W,
                        const float *got, int gelu) {
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
    check(kind, kind ? "conv + LayerNorm" : "stem", got, ref, tol, n_out);
    (void)m;
    free(mid), free(ref), free(e), free(sigma), free(tol);
}

static int ck_stem(vm_bb *bb, const float *in, int B, int H, int W, float *out, int gelu) {
    int rc = vm_bb_cpu_ops.stem(bb, in, B, H, W, out, gelu);
    if (rc) return rc;
    /* the backend's NHWC copy of the input (t0) is a pure layout pass */
    const size_t n = (size_t)B * 3 * H * W;
    float *nhwc = malloc(n * sizeof *nhwc);
    for (int b = 0; b < B; b++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int c = 0; c < 3; c++)
                    nhwc[(((size_t)b * H + y) * W + x) * 3 + c] = in[(((size_t)b * 3 + c) * H + y) * W + x];
    check(8, "NCHW -> NHWC", bb->t0, nhwc, NULL, n);
    ref_conv_ln(0, bb->m, &bb->m->pe_conv1, &bb->m->pe_norm1, nhwc, B, H, W, out, gelu);
    free(nhwc);
    return 0;
}

static int ck_conv_ln(vm_bb *bb, vm_bb_layer conv, vm_bb_layer ln, int s, const float *in, int B, int H, int W, float *mid,
                      float *out) {
    const vm_conv *cv = conv_layer(bb->m, conv, s);
    float *x = dup(in, (size_t)B * H * W * cv->cin);
    int rc = vm_bb_cpu_ops.conv_ln(bb, conv, ln, s, in, B, H, W, mid, out);
    if (!rc) ref_conv_ln(1, bb->m, cv, vm_model_ln(bb->m, ln, s, 0), x, B, H, W, out, 0);
    free(x);
    return rc;
}

static int ck_linear(vm_bb *bb, vm_bb_layer l, int s, int j, const float *A, int lda, int M, int N, int K, float *C, int ldc,
                     int gelu, int accumulate) {
    const float *bias;
    float *w = ref_w(bb->m, l, s, j, N, K, &bias);
    float *a = malloc((size_t)M * K * sizeof *a), *c0 = malloc((size_t)M * N * sizeof *c0);
    for (int i = 0; i < M; i++) memcpy(a + (size_t)i * K, A + (size_t)i * lda, (size_t)K * sizeof *a);
    for (int i = 0; i < M; i++) memcpy(c0 + (size_t)i * N, C + (size_t)i * ldc, (size_t)N * sizeof *c0);
    int rc = vm_bb_cpu_ops.linear(bb, l, s, j, A, lda, M, N, K, C, ldc, gelu, accumulate);
    if (rc || !w) {
        free(w), free(a), free(c0);
        return rc;
    }
    float *ref = malloc((size_t)M * N * sizeof *ref), *got = malloc((size_t)M * N * sizeof *got);
    double *tol = malloc((size_t)M * N * sizeof *tol);
    for (int i = 0; i < M; i++)
        for (int n = 0; n < N; n++) {
            double acc = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                acc += (double)a[(size_t)i * K + k] * w[(size_t)n * K + k];
                mag += fabs((double)a[(size_t)i * K + k] * w[(size_t)n * K + k]);
            }
            if (bias) acc += bias[n], mag += fabs(bias[n]);
            float v = (float)acc;
            if (gelu) vm_kernels_scalar()->gelu(&v, &v, 1);
            if (accumulate) v += c0[(size_t)i * N + n], mag += fabs(c0[(size_t)i * N + n]);
            ref[(size_t)i * N + n] = v;
            tol[(size_t)i * N + n] = 2.0 * (K + 3) * U * mag * (gelu ? 1.13 : 1.0) + 1e-6 * fabs(v);
            got[(size_t)i * N + n] = C[(size_t)i * ldc + n];
        }
    check(l == VM_BB_HEAD ? 9 : 3, "linear", got, ref, tol, (size_t)M * N);
    free(w), free(a), free(c0), free(ref), free(got), free(tol);
    return 0;
}

static int ck_dwconv_silu(vm_bb *bb, int s, int j, const float *in, int ld_in, float *out, int B, int h, int w, int D) {
    const size_t T = (size_t)B * h * w;
    float *x = malloc(T * D * sizeof *x), *ref = malloc(T * D * sizeof *ref);
    double *tol = malloc(T * D * sizeof *tol);
    for (size_t t = 0; t < T; t++) memcpy(x + t * D, in + t * ld_in, (size_t)D * sizeof *x);
    int rc = vm_bb_cpu_ops.dwconv_silu(bb, s, j, in, ld_in, out, B, h, w, D);
    const vm_block *bk = &bb->m->st[s].blocks[j];
    vm_kernels_scalar()->dwconv3x3_silu(ref, x, D, bk->conv_w, bk->conv_b, B, h, w, D);
    for (size_t i = 0; i < T * D; i++) tol[i] = 1e-5 * fmax(1.0, fabs(ref[i]));
    if (!rc) check(4, "dwconv3x3 + SiLU", out, ref, tol, T * D);
    free(x), free(ref), free(tol);
    return rc;
}

static int ck_ssm(vm_bb *bb, int s, int j, const float *u, const float *xdbl, const float *z, int ldz, float *y, int B, int h,
                  int w) {
    const vm_model *m = bb->m;
    const vm_stage *st = &m->st[s];
    const vm_block *bk = &st->blocks[j];
    const int D = st->d_inner, R = st->R, N = m->info.d_state, P = R + 2 * N;
    const size_t T = (size_t)B * h * w;
    float *uu = dup(u, T * D), *xd = dup(xdbl, T * 4 * P), *zz = NULL;
    if (z) {
        zz = malloc(T * D * sizeof *zz);
        for (size_t t = 0; t < T; t++) memcpy(zz + t * D, z + t * ldz, (size_t)D * sizeof *zz);
    }
    int rc = vm_bb_cpu_ops.ssm(bb, s, j, u, xdbl, z, ldz, y, B, h, w);
    if (rc) {
        free(uu), free(xd), free(zz);
        return rc;
    }
    /* dt_proj in double, the scalar cross scan, LN, gate */
    float *dts = malloc(4 * T * D * sizeof *dts), *ym = malloc(T * D * sizeof *ym), *ref = malloc(T * D * sizeof *ref);
    double *sigma = malloc(T * sizeof *sigma), *e = malloc(T * sizeof *e), *tol = malloc(T * D * sizeof *tol);
    for (int k = 0; k < 4; k++)
        for (size_t t = 0; t < T; t++)
            for (int d = 0; d < D; d++) {
                double acc = 0;
                for (int r = 0; r < R; r++) acc += (double)xd[t * 4 * P + (size_t)k * P + r] * bk->dt_w[((size_t)k * D + d) * R + r];
                dts[((size_t)k * T + t) * D + d] = (float)acc;
            }
    vm_scan_dims dims = {B, h, w, D, N, R};
    vm_kernels_scalar()->scan_cross(ym, uu, dts, NULL, xd, bk->A, bk->Ds, bk->dt_b, &dims);
    ref_layernorm(&bk->out_norm, ym, ref, T, D, sigma);
    for (size_t t = 0; t < T; t++) {
        double mx = 0;
        for (int d = 0; d < D; d++) mx = fmax(mx, fabs(ym[t * D + d]));
        e[t] = 4e-5 * fmax(1.0, mx) / 3.0; /* ln_tol multiplies by 3 */
    }
    ln_tol(&bk->out_norm, ref, e, sigma, T, D, tol);
    if (zz) {
        vm_kernels_scalar()->mul_silu(ref, ref, zz, T, D, D);
        for (size_t i = 0; i < T * D; i++) {
            double sz = fabs(zz[i] / (1.0 + exp(-(double)zz[i])));
            tol[i] = tol[i] * sz + 1e-5 * fmax(1.0, fabs(ref[i]));
        }
    }
    check(5, "ssm", y, ref, tol, T * D);
    free(uu), free(xd), free(zz), free(dts), free(ym), free(ref), free(sigma), free(e), free(tol);
    return 0;
}

static int ck_merge_gather(vm_bb *bb, const float *in, float *out, int B, int h, int w, int C) {
    float *x = dup(in, (size_t)B * h * w * C);
    int rc = vm_bb_cpu_ops.merge_gather(bb, in, out, B, h, w, C);
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
    if (!rc) check(6, "patch-merge gather", out, ref, NULL, n);
    free(x), free(ref);
    return rc;
}

static int ck_mean_tokens(vm_bb *bb, const float *in, int B, int L, int C, float *out) {
    int rc = vm_bb_cpu_ops.mean_tokens(bb, in, B, L, C, out);
    float *ref = malloc((size_t)B * C * sizeof *ref);
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            double acc = 0;
            for (int t = 0; t < L; t++) acc += in[((size_t)b * L + t) * C + c];
            ref[(size_t)b * C + c] = (float)(acc / L);
        }
    if (!rc) check(7, "mean over tokens", out, ref, NULL, (size_t)B * C);
    free(ref);
    return rc;
}

static const vm_bb_ops ck_ops = {"cpu+check", ck_now, ck_stem, ck_conv_ln, ck_layernorm, ck_linear, ck_dwconv_silu,
                                 ck_ssm, ck_merge_gather, ck_mean_tokens};

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

/* Returns the number of failures. */
int test_backbone_ops(int cases, uint64_t seed) {
    bb_rng = seed * 2654435761ULL + 7;
    printf("backbone ops (net/backbone.h) on cpu against the scalar references:\n");
    const char *presets[] = {"vmamba-tiny-s1l8", "vanilla-vmamba-tiny"};
    for (int i = 0; i < 2; i++) {
        char err[256];
        for (int k = 0; k < cases; k++) {
            const int B = bb_irand(1, 2), H = bb_irand(17, 70), W = bb_irand(17, 70);
            vm_model *m = (k + i) % 2 ? vm_backbone_from_preset(presets[i], 11 + k, err, sizeof err)
                                : vm_model_from_preset(presets[i], bb_irand(2, 40), 11 + k, err, sizeof err);
            if (!m) {
                printf("    FAIL %s: %s\n", presets[i], err);
                bad++;
                continue;
            }
            char name[80];
            snprintf(name, sizeof name, "%s (%s)", presets[i], (k + i) % 2 ? "backbone" : "classifier");
            one_model(m, name, B, H, W);
            vm_model_free(m);
        }
    }
    for (int k = 0; k < NKIND; k++)
        printf("  %-14s cpu   %4d calls  %s  (%s %.3g)\n", kname[k], calls[k], bad ? "?" : "ok  ",
               k >= 6 && k <= 8 ? "bit-identical required; max |diff|" : "max |diff| / bound", worst[k]);
    return bad;
}
