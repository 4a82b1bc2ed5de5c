/* test_backend_ops.c - every op of src/ops/backend.h on one backend against
 * the plain scalar references, on random shapes including odd and
 * degenerate sizes (in the spirit of ggml's test-backend-ops).
 *
 *   tests/test_backend_ops cpu|cuda [cases-per-op]
 *
 * Then the backbone ops (net/backbone.h) of the same backend, cpu or cuda,
 * while the backbone runs on random preset models (test_backbone_ops.c).
 *
 * Exit 0: all passed; 1: a mismatch (printed); 77 (automake's SKIP): the
 * backend is not available here (a build without --with-cuda, or no GPU).
 * VMAMBA_TEST_SEED=N changes the random shapes and data (default 1).
 *
 * Tolerances:
 *  - conv2d and linear are dot products of length K (k*k*Cin, or K) that a
 *    backend may sum in any order (oneDNN's blocked kernels, cuBLAS's
 *    split-K...). For recursive summation in float32 the forward error of
 *    each result is at most gamma_K * sum|a_i*w_i| with gamma_K ~ K*u,
 *    u = 2^-24 (Higham, Accuracy and Stability of Numerical Algorithms,
 *    3.1); any other order has the same or a smaller bound, so the backend
 *    and the reference differ by at most 2*gamma_(K+1) * sum|a_i*w_i| + |b|
 *    terms. The test computes that magnitude exactly for every element
 *    (the reference run on |x|, |w|, |b|) and allows 2*(K+2)*u times it.
 *    ReLU is 1-Lipschitz, so the bound holds after it too.
 *  - the INT8 convolution (qconv_make, CPU backends; the others must not
 *    offer it) sums integers exactly: the inputs are drawn on the
 *    quantisation lattice (x = (q - zp) * a_scale with a_scale a power of
 *    two, plus values far outside [0, 255] to test the clamp), so the u8
 *    input is the same whatever the quantiser's float order (FMA or not),
 *    and only the f32 output scaling rounds: acc -> f32, bias / scale,
 *    + and * (oneDNN 2.x: dst = scale * (acc + bias / scale)) and the
 *    scale's own product, each within u = 2^-24 of its result, all bounded
 *    by m = |acc| * scale + |bias|: allowed 8u * m per element. Weights
 *    stay within +-63: without VNNI oneDNN sums u8 x s8 pairs in 16 bits
 *    with saturation (255 * 63 * 2 < 2^15).
 *  - bilinear, adaptive average pooling, nearest upsample-add and the
 *    stride-2 subsample must be bit-identical: every backend does the
 *    reference's float operations in the reference's order with
 *    round-to-nearest and no FMA contraction (dense.c, ops.cu). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/backend.h"
#include "ops/wcache.h"
#include "ops/dense.h"
#include "post/det_post.h"

static uint64_t rng = 1;
static uint32_t next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}
static int irand(int lo, int hi) { return lo + (int)(next() % (uint32_t)(hi - lo + 1)); } /* [lo, hi] */
static float frand(void) { return (float)(next() % 2000001) / 1000000.0f - 1.0f; }        /* [-1, 1] */
static float *rnd(size_t n) {
    float *p = malloc(sizeof(float) * (n ? n : 1));
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(99);
    }
    for (size_t i = 0; i < n; i++) p[i] = frand();
    return p;
}
static float *absv(const float *x, size_t n) {
    float *p = rnd(n);
    for (size_t i = 0; i < n; i++) p[i] = fabsf(x[i]);
    return p;
}

static vm_be *be;
static int failures;

/* Backend buffer holding host data (or uninitialised when h is NULL). */
static float *dev(const float *h, size_t n) {
    float *d = be->alloc(be, n);
    if (!d || (h && be->upload(be, d, h, n))) {
        fprintf(stderr, "%s: %s\n", be->name, be->err);
        exit(99);
    }
    return d;
}
static void get(float *h, const float *d, size_t n) {
    if (be->download(be, h, d, n)) {
        fprintf(stderr, "%s: %s\n", be->name, be->err);
        exit(99);
    }
}

typedef struct {
    const char *op;
    int cases, bad;
    double worst; /* max |err| / tol (approx ops), or max |err| (exact ops) */
} tally;

static void report(const tally *t, int exact) {
    if (exact)
        printf("  %-14s %-5s %3d cases  %s  (bit-identical required; max |diff| %.3g)\n", t->op, be->name, t->cases,
               t->bad ? "FAIL" : "ok  ", t->worst);
    else
        printf("  %-14s %-5s %3d cases  %s  (max |diff| / bound %.3g)\n", t->op, be->name, t->cases,
               t->bad ? "FAIL" : "ok  ", t->worst);
    failures += t->bad;
}

/* Compare an approximate op's output with the reference, bound per
 * element 2*(K+2)*u*mag. */
static int cmp_approx(tally *t, const char *what, const float *got, const float *ref, const float *mag, size_t n, int K) {
    const double u = ldexp(1.0, -24);
    for (size_t i = 0; i < n; i++) {
        double tol = 2.0 * (K + 2) * u * mag[i] + 1e-30;
        double d = fabs((double)got[i] - ref[i]);
        if (d / tol > t->worst) t->worst = d / tol;
        if (!(d <= tol)) {
            printf("    FAIL %s %s: element %zu: %.9g vs reference %.9g (bound %.3g)\n", t->op, what, i, got[i], ref[i], tol);
            return 1;
        }
    }
    return 0;
}

static int cmp_exact(tally *t, const char *what, const float *got, const float *ref, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        if (d > t->worst) t->worst = d;
        if (memcmp(&got[i], &ref[i], sizeof(float))) {
            printf("    FAIL %s %s: element %zu: %.9g vs reference %.9g\n", t->op, what, i, got[i], ref[i]);
            return 1;
        }
    }
    return 0;
}

static void one_conv(tally *t, int B, int Cin, int H, int W, int Cout, int k, int st, int pad, int bias, int relu) {
    char what[128];
    snprintf(what, sizeof what, "B%d C%d %dx%d -> C%d k%d s%d p%d%s%s", B, Cin, H, W, Cout, k, st, pad,
             bias ? " bias" : "", relu ? " relu" : "");
    int OH = (H + 2 * pad - k) / st + 1, OW = (W + 2 * pad - k) / st + 1;
    size_t ni = (size_t)B * H * W * Cin, nw = (size_t)Cout * Cin * k * k, no = (size_t)B * OH * OW * Cout;
    float *x = rnd(ni), *w = rnd(nw), *b = bias ? rnd(Cout) : NULL, *ref = rnd(no), *mag = rnd(no), *got = rnd(no);
    float *ax = absv(x, ni), *aw = absv(w, nw), *ab = bias ? absv(b, Cout) : NULL;
    vm_conv2d_ref(x, B, Cin, H, W, Cout, k, st, pad, w, b, relu, ref);
    vm_conv2d_ref(ax, B, Cin, H, W, Cout, k, st, pad, aw, ab, 0, mag);
    t->cases++;
    vm_be_conv *c = be->conv_make(be, B, Cin, H, W, Cout, k, st, pad, w, b, relu);
    if (!c) {
        printf("    FAIL conv2d %s: %s\n", what, be->err);
        t->bad++;
    } else {
        float *dx = dev(x, ni), *dy = dev(NULL, no);
        /* twice: a planned op runs any number of times */
        if (be->conv_run(be, c, dx, dy) || be->conv_run(be, c, dx, dy)) {
            printf("    FAIL conv2d %s: %s\n", what, be->err);
            t->bad++;
        } else {
            get(got, dy, no);
            t->bad += cmp_approx(t, what, got, ref, mag, no, k * k * Cin);
        }
        be->free(be, dx);
        be->free(be, dy);
        be->conv_free(be, c);
    }
    free(x), free(w), free(b), free(ref), free(mag), free(got), free(ax), free(aw), free(ab);
}

static void test_conv(int n) {
    tally t = {"conv2d", 0, 0, 0};
    /* the heads' shapes, small: UPerNet 1x1/3x3 ConvModules, the FPN, the
     * RPN, the mask head's batch of RoIs */
    one_conv(&t, 1, 24, 9, 13, 16, 1, 1, 0, 1, 1);
    one_conv(&t, 1, 64, 11, 7, 32, 3, 1, 1, 1, 1);
    one_conv(&t, 1, 256, 12, 10, 64, 3, 1, 1, 1, 0); /* K = 2304 */
    one_conv(&t, 5, 32, 14, 14, 32, 3, 1, 1, 1, 1);
    one_conv(&t, 1, 16, 1, 1, 150, 1, 1, 0, 1, 0);   /* a 1x1 map */
    one_conv(&t, 1, 17, 6, 6, 15, 1, 1, 0, 1, 0);
    for (int i = 0; i < n; i++) {
        int k = irand(1, 3), st = irand(1, 2), pad = irand(0, k / 2 + (k == 2)), H = irand(k, 23), W = irand(k, 23);
        one_conv(&t, irand(1, 3), irand(1, 37), H, W, irand(1, 41), k, st, pad, irand(0, 1), irand(0, 1));
    }
    report(&t, 0);
}

static void one_linear(tally *t, int M, int N, int K, int lda, int ldc, int bias, int relu) {
    char what[128];
    snprintf(what, sizeof what, "M%d N%d K%d lda%d ldc%d%s%s", M, N, K, lda, ldc, bias ? " bias" : "", relu ? " relu" : "");
    size_t na = (size_t)M * lda, nc = (size_t)M * ldc;
    float *A = rnd(na), *W = rnd((size_t)N * K), *b = bias ? rnd(N) : NULL, *ref = rnd(nc), *mag = rnd(nc), *got = rnd(nc);
    float *aA = absv(A, na), *aW = absv(W, (size_t)N * K), *ab = bias ? absv(b, N) : NULL;
    memcpy(got, ref, sizeof(float) * nc); /* the gaps between rows must stay */
    memcpy(mag, ref, sizeof(float) * nc);
    vm_linear_ref(M, N, K, A, lda, W, b, relu, ref, ldc);
    vm_linear_ref(M, N, K, aA, lda, aW, ab, 0, mag, ldc);
    for (size_t i = 0; i < nc; i++)
        if (i % ldc >= (size_t)N) mag[i] = 0.0f; /* untouched: exact */
    t->cases++;
    const float *dW = be->weights(be, W, (size_t)N * K), *db = bias ? be->weights(be, b, N) : NULL;
    float *dA = dev(A, na), *dC = dev(got, nc);
    if (!dW || (bias && !db) || be->linear(be, M, N, K, dA, lda, dW, db, relu, dC, ldc)) {
        printf("    FAIL linear %s: %s\n", what, be->err);
        t->bad++;
    } else {
        get(got, dC, nc);
        t->bad += cmp_approx(t, what, got, ref, mag, nc, K);
    }
    if (dW) be->free_weights(be, dW);
    if (db) be->free_weights(be, db);
    be->free(be, dA);
    be->free(be, dC);
    free(A), free(W), free(b), free(ref), free(mag), free(got), free(aA), free(aW), free(ab);
}

static void test_linear(int n) {
    tally t = {"linear", 0, 0, 0};
    one_linear(&t, 7, 33, 12544, 12544, 33, 1, 1); /* the box head's first FC: K = 7*7*256 */
    one_linear(&t, 1, 81, 1024, 1024, 81, 1, 0);
    one_linear(&t, 196, 1024, 256, 256, 1024, 0, 0); /* the mask deconvolution GEMM */
    for (int i = 0; i < n; i++) {
        int M = irand(1, 70), N = irand(1, 90), K = irand(1, 300);
        one_linear(&t, M, N, K, K + irand(0, 3), N + irand(0, 3), irand(0, 1), irand(0, 1));
    }
    report(&t, 0);
}

static void one_bilinear(tally *t, int H, int W, int C, int ldi, int OH, int OW, int ldo, int off, int acc) {
    char what[128];
    snprintf(what, sizeof what, "%dx%dx%d (ld %d) -> %dx%d (ld %d, +%d)%s", H, W, C, ldi, OH, OW, ldo, off,
             acc ? " accumulate" : "");
    size_t ni = (size_t)H * W * ldi, no = (size_t)OH * OW * ldo;
    float *x = rnd(ni), *ref = rnd(no), *got = rnd(no);
    memcpy(got, ref, sizeof(float) * no);
    t->cases++;
    if (vm_bilinear_nhwc_ref(x, H, W, C, ldi, ref + off, OH, OW, ldo, acc)) {
        printf("    out of memory in the reference\n");
        exit(99);
    }
    float *dx = dev(x, ni), *dy = dev(got, no);
    if (be->bilinear(be, dx, H, W, C, ldi, dy + off, OH, OW, ldo, acc)) {
        printf("    FAIL bilinear %s: %s\n", what, be->err);
        t->bad++;
    } else {
        get(got, dy, no);
        t->bad += cmp_exact(t, what, got, ref, no);
    }
    be->free(be, dx);
    be->free(be, dy);
    free(x), free(ref), free(got);
}

static void test_bilinear(int n) {
    tally t = {"bilinear", 0, 0, 0};
    one_bilinear(&t, 6, 6, 8, 8, 16, 22, 8 * 5, 8, 0);  /* a PPM branch into its concat slice */
    one_bilinear(&t, 4, 6, 8, 8, 8, 11, 8, 0, 1);      /* a top-down add */
    one_bilinear(&t, 1, 1, 5, 5, 9, 7, 5, 0, 0);       /* the 1x1 pool */
    one_bilinear(&t, 9, 7, 3, 3, 9, 7, 6, 3, 0);       /* same size: a slice copy */
    one_bilinear(&t, 33, 17, 4, 4, 8, 5, 4, 0, 0);     /* downscale */
    for (int i = 0; i < n; i++) {
        int C = irand(1, 19), ldi = C + irand(0, 2) * irand(0, 5), ldo = C + irand(0, 9), off = irand(0, ldo - C);
        one_bilinear(&t, irand(1, 20), irand(1, 20), C, ldi, irand(1, 31), irand(1, 31), ldo, off, irand(0, 1));
    }
    report(&t, 1);
}

static void test_avgpool(int n) {
    tally t = {"avgpool", 0, 0, 0};
    for (int i = 0; i < n + 4; i++) {
        int s = i < 4 ? (int[]){1, 2, 3, 6}[i] : irand(1, 7);
        int H = irand(s, 30), W = irand(s, 30), C = irand(1, 40);
        if (i == 0) H = 1, W = 1;
        char what[64];
        snprintf(what, sizeof what, "%dx%dx%d -> %d", H, W, C, s);
        size_t ni = (size_t)H * W * C, no = (size_t)s * s * C;
        float *x = rnd(ni), *ref = rnd(no), *got = rnd(no);
        vm_adaptive_avgpool_nhwc_ref(x, H, W, C, s, ref);
        float *dx = dev(x, ni), *dy = dev(NULL, no);
        t.cases++;
        if (be->avgpool(be, dx, H, W, C, s, dy)) {
            printf("    FAIL avgpool %s: %s\n", what, be->err);
            t.bad++;
        } else {
            get(got, dy, no);
            t.bad += cmp_exact(&t, what, got, ref, no);
        }
        be->free(be, dx);
        be->free(be, dy);
        free(x), free(ref), free(got);
    }
    report(&t, 1);
}

static void test_upsample_add(int n) {
    tally t = {"upsample_add", 0, 0, 0};
    for (int i = 0; i < n + 3; i++) {
        int Hi = irand(1, 12), Wi = irand(1, 12), C = irand(1, 21), Ho, Wo;
        if (i == 0) Ho = 2 * Hi, Wo = 2 * Wi;                     /* the FPN's exact doubling */
        else if (i == 1) Ho = 2 * Hi - 1 > 0 ? 2 * Hi - 1 : 1, Wo = 2 * Wi + 1; /* odd sizes (a /32-padded image's levels are not) */
        else if (i == 2) Ho = Hi, Wo = Wi;
        else Ho = irand(1, 30), Wo = irand(1, 30);
        char what[64];
        snprintf(what, sizeof what, "%dx%dx%d -> %dx%d", Hi, Wi, C, Ho, Wo);
        size_t ni = (size_t)Hi * Wi * C, no = (size_t)Ho * Wo * C;
        float *x = rnd(ni), *ref = rnd(no), *got = rnd(no);
        float *dx = dev(x, ni), *dy = dev(ref, no);
        vm_upsample_add_ref(ref, Ho, Wo, x, Hi, Wi, C);
        t.cases++;
        if (be->upsample_add(be, dy, Ho, Wo, dx, Hi, Wi, C)) {
            printf("    FAIL upsample_add %s: %s\n", what, be->err);
            t.bad++;
        } else {
            get(got, dy, no);
            t.bad += cmp_exact(&t, what, got, ref, no);
        }
        be->free(be, dx);
        be->free(be, dy);
        free(x), free(ref), free(got);
    }
    report(&t, 1);
}

static void test_subsample2(int n) {
    tally t = {"subsample2", 0, 0, 0};
    for (int i = 0; i < n; i++) {
        int H = irand(1, 25), W = irand(1, 25), C = irand(1, 33);
        char what[64];
        snprintf(what, sizeof what, "%dx%dx%d", H, W, C);
        size_t ni = (size_t)H * W * C, no = (size_t)((H + 1) / 2) * ((W + 1) / 2) * C;
        float *x = rnd(ni), *ref = rnd(no), *got = rnd(no);
        vm_subsample2_ref(x, H, W, C, ref);
        float *dx = dev(x, ni), *dy = dev(NULL, no);
        t.cases++;
        if (be->subsample2(be, dx, H, W, C, dy)) {
            printf("    FAIL subsample2 %s: %s\n", what, be->err);
            t.bad++;
        } else {
            get(got, dy, no);
            t.bad += cmp_exact(&t, what, got, ref, no);
        }
        be->free(be, dx);
        be->free(be, dy);
        free(x), free(ref), free(got);
    }
    report(&t, 1);
}

static void one_qconv(tally *t, int B, int Cin, int H, int W, int Cout, int k, int st, int pad, int bias, int relu) {
    char what[128];
    snprintf(what, sizeof what, "B%d C%d %dx%d -> C%d k%d s%d p%d%s%s", B, Cin, H, W, Cout, k, st, pad,
             bias ? " bias" : "", relu ? " relu" : "");
    int OH = (H + 2 * pad - k) / st + 1, OW = (W + 2 * pad - k) / st + 1;
    size_t ni = (size_t)B * H * W * Cin, nw = (size_t)Cout * Cin * k * k, no = (size_t)B * OH * OW * Cout;
    const float as = 1.0f / 64; /* a power of two: x / as lands on integers exactly */
    const int zp = irand(0, 255);
    float *x = rnd(ni), *ws = rnd(Cout), *b = bias ? rnd(Cout) : NULL, *got = rnd(no);
    int8_t *w8 = malloc(nw ? nw : 1);
    double *ref = malloc(sizeof(double) * (no ? no : 1)), *mag = malloc(sizeof(double) * (no ? no : 1));
    int8_t *aw = malloc(nw ? nw : 1);
    if (!w8 || !ref || !mag || !aw) {
        fprintf(stderr, "out of memory\n");
        exit(99);
    }
    for (size_t i = 0; i < ni; i++) x[i] = (float)(irand(-40, 295) - zp) * as; /* q outside [0, 255]: clamped */
    for (size_t i = 0; i < nw; i++) w8[i] = (int8_t)irand(-63, 63), aw[i] = (int8_t)abs(w8[i]);
    for (int o = 0; o < Cout; o++) ws[o] = 0.001f + fabsf(ws[o]) * 0.01f;
    if (b)
        for (int o = 0; o < Cout; o++) b[o] *= 4.0f;
    vm_qconv2d_ref(x, B, Cin, H, W, Cout, k, st, pad, w8, ws, as, zp, b, relu, ref);
    /* magnitude: |acc| * scale + |b| <= the same sum with |q - zp| <= 255, |w| */
    float *one = rnd(ni), *ab = b ? rnd(Cout) : NULL;
    for (size_t i = 0; i < ni; i++) one[i] = (float)(255 + zp) * as; /* q = 255 at most: |q - zp| <= 255 */
    if (ab)
        for (int o = 0; o < Cout; o++) ab[o] = fabsf(b[o]);
    vm_qconv2d_ref(one, B, Cin, H, W, Cout, k, st, pad, aw, ws, as, 0, ab, 0, mag);
    t->cases++;
    vm_be_conv *c = be->qconv_make ? be->qconv_make(be, B, Cin, H, W, Cout, k, st, pad, w8, ws, as, zp, b, relu) : NULL;
    if (!c) {
        printf("    FAIL qconv2d %s: %s\n", what, be->qconv_make ? be->err : "no qconv_make");
        t->bad++;
    } else {
        float *dx = dev(x, ni), *dy = dev(NULL, no);
        if (be->conv_run(be, c, dx, dy) || be->conv_run(be, c, dx, dy)) {
            printf("    FAIL qconv2d %s: %s\n", what, be->err);
            t->bad++;
        } else {
            get(got, dy, no);
            const double u = ldexp(1.0, -24);
            for (size_t i = 0; i < no; i++) {
                double tol = 8.0 * u * mag[i] + 1e-30, d = fabs((double)got[i] - ref[i]);
                if (d / tol > t->worst) t->worst = d / tol;
                if (!(d <= tol)) {
                    printf("    FAIL qconv2d %s: element %zu: %.9g vs reference %.9g (bound %.3g)\n", what, i, got[i],
                           ref[i], tol);
                    t->bad++;
                    break;
                }
            }
        }
        be->free(be, dx);
        be->free(be, dy);
        be->conv_free(be, c);
    }
    free(x), free(ws), free(b), free(got), free(w8), free(ref), free(mag), free(aw), free(one), free(ab);
}

static void test_qconv(int n) {
    if (!be->host && strcmp(be->name, "cpu-offhost")) { /* CUDA: INT8 heads run on the CPU only */
        int bad = be->qconv_make != NULL;
        printf("  %-14s %-5s %s  (not offered: INT8 heads run on the CPU only)\n", "qconv2d", be->name, bad ? "FAIL" : "ok  ");
        failures += bad;
        return;
    }
    tally t = {"qconv2d", 0, 0, 0};
    /* UPerHead's INT8 ConvModules (1x1 and 3x3, ReLU) and conv_seg (1x1, bias, no ReLU), small */
    one_qconv(&t, 1, 24, 9, 13, 16, 1, 1, 0, 1, 1);
    one_qconv(&t, 1, 64, 11, 7, 32, 3, 1, 1, 1, 1);
    one_qconv(&t, 1, 256, 12, 10, 64, 3, 1, 1, 1, 0); /* K = 2304 */
    one_qconv(&t, 1, 16, 1, 1, 150, 1, 1, 0, 1, 0);   /* a 1x1 map */
    for (int i = 0; i < n; i++) {
        int k = irand(0, 1) ? 3 : 1, st = irand(1, 2), pad = k / 2, H = irand(1, 17), W = irand(1, 17);
        one_qconv(&t, irand(1, 2), irand(1, 37), H, W, irand(1, 41), k, st, pad, irand(0, 1), irand(0, 1));
    }
    report(&t, 0);
}

/* The weight copies (wcache.h): one per host array and backend, shared by
 * every plan, kept after the last plan frees it (the next shape's plans
 * find it), and copied afresh when the host array at that address changed.
 * A backend without a cache (the CPU) hands out the host array itself. */
static void test_weights_cache(void) {
    int bad = 0;
    const size_t n = 1000;
    float *a = rnd(n), *got = rnd(n);
    size_t c0 = be->wcache ? be->wcache->copies : 0;
#define WCHECK(cond, msg)                              \
    do {                                               \
        if (!(cond)) {                                 \
            printf("    FAIL weights cache: %s\n", msg); \
            bad++;                                     \
        }                                              \
    } while (0)
    const float *w1 = be->weights(be, a, n), *w2 = be->weights(be, a, n);
    WCHECK(w1 && w2, be->err);
    if (!be->wcache) {
        WCHECK(w1 == a && w2 == a, "the CPU backend uses the host array");
    } else if (w1 && w2) {
        WCHECK(w1 == w2, "two plans of one array share one copy");
        WCHECK(be->wcache->copies == c0 + 1, "one copy made");
        get(got, w1, n);
        WCHECK(!memcmp(got, a, n * sizeof *a), "the copy holds the array");
        be->free_weights(be, w1);
        be->free_weights(be, w2);
        const float *w3 = be->weights(be, a, n);
        WCHECK(w3 == w1 && be->wcache->copies == c0 + 1, "kept after the last plan freed it");
        be->free_weights(be, w3);
        /* a convolution's weights: the first plan copies (weights + bias), later ones of any shape do not */
        float *cw = rnd(8 * 3 * 3 * 3), *cb = rnd(8);
        vm_be_conv *k1 = be->conv_make(be, 1, 3, 9, 9, 8, 3, 1, 1, cw, cb, 0);
        size_t c1 = be->wcache->copies;
        vm_be_conv *k2 = be->conv_make(be, 1, 3, 17, 5, 8, 3, 2, 1, cw, cb, 1);
        WCHECK(k1 && k2, be->err);
        WCHECK(be->wcache->copies == c1, "a second conv plan of the same weights copies nothing");
        be->conv_free(be, k1);
        be->conv_free(be, k2);
        free(cw), free(cb);
        /* another array at the same address (the first freed, its memory reused) */
        for (size_t i = 0; i < n; i++) a[i] += 1.0f;
        const float *w4 = be->weights(be, a, n);
        WCHECK(w4 != NULL, be->err);
        WCHECK(be->wcache->copies > c1, "changed host values are copied again");
        if (w4) {
            get(got, w4, n);
            WCHECK(!memcmp(got, a, n * sizeof *a), "the new copy holds the new values");
            be->free_weights(be, w4);
        }
    }
#undef WCHECK
    if (w1 && !be->wcache) {
        be->free_weights(be, w1);
        be->free_weights(be, w2);
    }
    free(a), free(got);
    printf("  %-12s %s\n", "weights", bad ? "FAIL" : "ok");
    failures += bad;
}

/* RoIAlign on a 4-level pyramid (the detection heads' op): boxes of every
 * size (so every level), partly or wholly outside the map, degenerate,
 * 7x7 and 14x14 outputs, odd channel counts; bit-identical to the host's
 * vm_roi_align on the level vm_roi_level picks. */
static void test_roi_align(int n) {
    tally t = {"roi_align", 0, 0, 0};
    for (int i = 0; i < n + 2; i++) {
        int H0 = irand(1, 40), W0 = irand(1, 40), C = irand(1, 19), S = i % 2 ? 14 : 7, nb = i == 0 ? 0 : irand(1, 40);
        int H[4], W[4];
        float *maps_h[4], *maps_d[4];
        for (int l = 0; l < 4; l++) {
            H[l] = l ? (H[l - 1] + 1) / 2 : H0;
            W[l] = l ? (W[l - 1] + 1) / 2 : W0;
            maps_h[l] = rnd((size_t)H[l] * W[l] * C);
            maps_d[l] = dev(maps_h[l], (size_t)H[l] * W[l] * C);
        }
        float *boxes = rnd((size_t)(nb ? nb : 1) * 5);
        for (int b = 0; b < nb; b++) {
            float *x = boxes + 5 * b, side = (float)(b % 4 == 0 ? 500 : b % 4 == 1 ? 150 : b % 4 == 2 ? 60 : 3);
            x[0] = (frand() * 0.75f + 0.25f) * 4 * W0 * 1.2f - 20;
            x[1] = (frand() * 0.75f + 0.25f) * 4 * H0 * 1.2f - 20;
            x[2] = x[0] + fabsf(frand()) * side + (b == 5 ? -1 : 0); /* b 5: inverted */
            x[3] = x[1] + fabsf(frand()) * side;
            if (b == 7) x[2] = x[0];                                  /* zero width */
        }
        char what[96];
        snprintf(what, sizeof what, "%dx%dx%d, %d boxes, %dx%d", H0, W0, C, nb, S, S);
        size_t no = (size_t)(nb ? nb : 1) * S * S * C;
        float *ref = rnd(no), *got = rnd(no), *dy = dev(NULL, no);
        for (int b = 0; b < nb; b++) {
            int l = vm_roi_level(boxes + 5 * b, 56.0f, 4);
            vm_roi_align(maps_h[l], H[l], W[l], C, boxes + 5 * b, 1.0f / (float)(4 << l), S, S, 0, ref + (size_t)b * S * S * C);
        }
        t.cases++;
        const float *mp[4] = {maps_d[0], maps_d[1], maps_d[2], maps_d[3]};
        if (!be->roi_align) {
            printf("    FAIL roi_align: the %s backend does not have it\n", be->name);
            t.bad++;
        } else if (be->roi_align(be, mp, H, W, 4, C, boxes, 5, nb, S, dy)) {
            printf("    FAIL roi_align %s: %s\n", what, be->err);
            t.bad++;
        } else if (nb) {
            get(got, dy, (size_t)nb * S * S * C);
            t.bad += cmp_exact(&t, what, got, ref, (size_t)nb * S * S * C);
        }
        for (int l = 0; l < 4; l++) be->free(be, maps_d[l]), free(maps_h[l]);
        be->free(be, dy);
        free(boxes), free(ref), free(got);
    }
    report(&t, 1);
}

/* The mask head's per-class logits after the deconvolution: bit-identical
 * to the plain loop (the channel sum in order, no FMA on the device). */
static void test_mask_logits(int n) {
    tally t = {"mask_logits", 0, 0, 0};
    for (int i = 0; i < n; i++) {
        int nr = irand(1, 6), S = irand(1, 8), Cm = irand(1, 70), nc = irand(1, 9);
        size_t nu = (size_t)nr * S * S * 4 * Cm, no = (size_t)nr * 4 * S * S;
        float *up = rnd(nu), *ub = rnd(Cm), *lw = rnd((size_t)nc * Cm), *lb = rnd(nc), *ref = rnd(no), *got = rnd(no);
        int *lab = malloc(sizeof(int) * nr);
        for (int r = 0; r < nr; r++) lab[r] = irand(0, nc - 1);
        for (int r = 0; r < nr; r++)
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++)
                    for (int q = 0; q < 4; q++) {
                        const float *u = up + (((size_t)r * S + y) * S + x) * 4 * Cm + (size_t)q * Cm, *w = lw + (size_t)lab[r] * Cm;
                        float acc = 0.0f;
                        for (int c = 0; c < Cm; c++) {
                            float v = u[c] + ub[c];
                            acc += (v > 0.0f ? v : 0.0f) * w[c];
                        }
                        ref[((size_t)r * 2 * S + 2 * y + q / 2) * 2 * S + 2 * x + q % 2] = acc + lb[lab[r]];
                    }
        char what[64];
        snprintf(what, sizeof what, "%d RoIs %dx%d, Cm %d, %d classes", nr, S, S, Cm, nc);
        t.cases++;
        const float *wb = be->weights(be, ub, Cm), *ww = be->weights(be, lw, (size_t)nc * Cm), *wl = be->weights(be, lb, nc);
        float *du = dev(up, nu), *dy = dev(NULL, no);
        if (!be->mask_logits || !wb || !ww || !wl) {
            printf("    FAIL mask_logits %s: %s\n", what, be->mask_logits ? be->err : "no such op");
            t.bad++;
        } else if (be->mask_logits(be, du, nr, S, Cm, wb, ww, wl, lab, dy)) {
            printf("    FAIL mask_logits %s: %s\n", what, be->err);
            t.bad++;
        } else {
            get(got, dy, no);
            t.bad += cmp_exact(&t, what, got, ref, no);
        }
        if (wb) be->free_weights(be, wb);
        if (ww) be->free_weights(be, ww);
        if (wl) be->free_weights(be, wl);
        be->free(be, du);
        be->free(be, dy);
        free(up), free(ub), free(lw), free(lb), free(ref), free(got), free(lab);
    }
    report(&t, 1);
}
int test_backbone_ops(const char *backend, int cases, uint64_t seed); /* test_backbone_ops.c */

int main(int argc, char **argv) {
    const char *name = argc > 1 ? argv[1] : "cpu";
    int n = argc > 2 ? atoi(argv[2]) : 24;
    const char *seed = getenv("VMAMBA_TEST_SEED");
    rng = seed && atoll(seed) ? (uint64_t)atoll(seed) : 1;
    char err[256] = "";
    if (!strcmp(name, "cpu")) be = vm_be_cpu_new(NULL, err, sizeof err);
    else if (!strcmp(name, "offhost")) be = vm_be_offhost_new(err, sizeof err);
    else if (!strcmp(name, "cuda")) be = vm_be_cuda_new(0, err, sizeof err);
    else {
        fprintf(stderr, "usage: %s cpu|offhost|cuda [cases-per-op]\n", argv[0]);
        return 2;
    }
    if (!be) {
        printf("SKIP: backend %s not available: %s\n", name, err);
        return 77;
    }
    printf("backend ops on %s (seed %llu, %d random cases per op besides the fixed ones)\n", be->name,
           (unsigned long long)rng, n);
    test_conv(n);
    test_qconv(n);
    test_linear(n);
    test_bilinear(n);
    test_avgpool(n);
    test_upsample_add(n);
    test_subsample2(n);
    test_roi_align(n);
    test_mask_logits(n);
    test_weights_cache();
    /* the backbone's ops (net/backbone.h): the CPU's and CUDA's tables */
    if (strcmp(name, "offhost")) failures += test_backbone_ops(name, n > 24 ? 2 : 1, seed && atoll(seed) ? (uint64_t)atoll(seed) : 1);
    vm_be_free(be);
    printf("%s\n", failures ? "FAIL" : "PASS");
    return failures ? 1 : 0;
}
