/* test_kernels.c - every kernel table this CPU runs (scalar, avx2,
 * avx512, neon) against the scalar reference and plain formulas.
 *
 * The fused cross-scan is checked against the composition the official
 * code runs: cross-scan into 4 sequences, the single-direction reference
 * scan on each, then cross-merge. Tolerance 1e-5 of max(1, |ref|), set
 * by measurement, not derived: the vector scan computes softplus as
 * log2(1 + 2^w) and its decays as 2^x (simd/generic/vec-math.h), the
 * reference with log1pf(expf) and expf, and the merge order differs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "simd/kernels.h"

static uint64_t rng = 42;
static float frand(void) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}
static float *rvec(size_t n, float scale) {
    float *p = malloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = frand() * scale;
    return p;
}

/* Shapes: odd L, D not a multiple of 16 (or of any vector width), N 1 and 16. */
static const int shapes[][5] = {/* B, H, W, D, N */
    {1, 6, 8, 64, 4}, {2, 5, 7, 19, 1}, {1, 9, 11, 33, 16}, {3, 1, 1, 5, 1}, {1, 3, 13, 48, 16}, {2, 4, 4, 17, 2}};

static int n_tables(void) {
    int n = 0;
    while (vm_kernels_available()[n]) n++;
    return n;
}
#define NSHAPES ((int)(sizeof shapes / sizeof *shapes))

/* _i: table, shape, then dt's spread: +-1.5 (trained models' range), or
 * +-30, where the softplus runs through both of its tails (e^dt below
 * float's epsilon of 1, and the dt > 20 threshold). */
START_TEST(scan_cross_matches_composition) {
    const vm_kernel_table *K = vm_kernels_available()[_i / NSHAPES / 2];
    const int *s = shapes[_i / 2 % NSHAPES];
    const int B = s[0], H = s[1], W = s[2], D = s[3], N = s[4], R = 3, L = H * W, P = R + 2 * N;
    float *u = rvec((size_t)B * L * D, 1.0f), *dts = rvec((size_t)4 * B * L * D, _i % 2 ? 30.0f : 1.5f);
    float *dbl = rvec((size_t)B * L * 4 * P, 1.0f), *A = malloc(sizeof(float) * 4 * D * N);
    for (int i = 0; i < 4 * D * N; i++) A[i] = -expf(logf((float)(i % N + 1)) + 0.1f * frand());
    float *Ds = rvec((size_t)4 * D, 1.0f), *bias = rvec((size_t)4 * D, 2.0f);
    /* one large dt to exercise the softplus threshold */
    dts[0] = 25.0f;
    float *y = malloc(sizeof(float) * B * L * D), *want = calloc((size_t)B * L * D, sizeof(float));
    vm_scan_dims dims = {B, H, W, D, N, R};
    K->scan_cross(y, u, dts, NULL, dbl, A, Ds, bias, &dims);
    float *su = malloc(sizeof(float) * D * L), *sd = malloc(sizeof(float) * D * L);
    float *sB = malloc(sizeof(float) * N * L), *sC = malloc(sizeof(float) * N * L), *sy = malloc(sizeof(float) * D * L);
    for (int b = 0; b < B; b++)
        for (int k = 0; k < 4; k++) {
            for (int l = 0; l < L; l++) {
                size_t tok = (size_t)b * L + vm_scan_token(k, l, H, W);
                for (int d = 0; d < D; d++) {
                    su[(size_t)d * L + l] = u[tok * D + d];
                    sd[(size_t)d * L + l] = dts[((size_t)k * B * L + tok) * D + d];
                }
                for (int n = 0; n < N; n++) {
                    sB[(size_t)n * L + l] = dbl[tok * 4 * P + k * P + R + n];
                    sC[(size_t)n * L + l] = dbl[tok * 4 * P + k * P + R + N + n];
                }
            }
            vm_selective_scan_ref(sy, su, sd, A + (size_t)k * D * N, sB, sC, Ds + (size_t)k * D, bias + (size_t)k * D, D, L, N);
            for (int l = 0; l < L; l++) {
                size_t tok = (size_t)b * L + vm_scan_token(k, l, H, W);
                for (int d = 0; d < D; d++) want[tok * D + d] += sy[(size_t)d * L + l];
            }
        }
    char what[64];
    snprintf(what, sizeof what, "scan_cross[%s] dt +-%g", K->name, _i % 2 ? 30.0 : 1.5);
    tclose(what, y, want, (size_t)B * L * D, 1e-5);
    free(u); free(dts); free(dbl); free(A); free(Ds); free(bias); free(y); free(want);
    free(su); free(sd); free(sB); free(sC); free(sy);
}
END_TEST

/* The scan's softplus alone, against double-precision libm, for d_state 1
 * and 4 (their softplus phases differ): one token, u = B = C = 1, D = 0,
 * zero state, the same dt in all four directions, so each output is
 * 4 N softplus(v) (4 directions, N states) with v = dt + bias over
 * [-100, 40]. Bound, relative to the
 * value: the fit's 4.8e-8 (< 1 ulp), 2 ulp of 2^x, |v| 2^-24 from rounding
 * w = v log2 e (simd/generic/vec-math.h), and the few roundings of
 * delta = ln 2 * s2, h, y and the 4 N-term sum: (|v| + 16) 2^-23 in all.
 * Below v = -87 the true value is under FLT_MIN: each of the 4 N terms is
 * flushed at 2^-126, so 4 N 2^-125 absolute is allowed on top (nothing near
 * a normal value). A NaN dt must give NaN
 * (x86's max/min drop a NaN unless the constant comes first). */
START_TEST(scan_softplus_vs_libm) {
    const vm_kernel_table *K = vm_kernels_available()[_i / 2];
    const int N = _i % 2 ? 4 : 1, D = 1401, R = 3, P = R + 2 * N;
    float *u = malloc(sizeof(float) * D), *dts = malloc(sizeof(float) * 4 * D), *dbl = malloc(sizeof(float) * 4 * P);
    float *A = malloc(sizeof(float) * 4 * D * N), *Ds = calloc(4 * (size_t)D, sizeof(float));
    float *bias = calloc(4 * (size_t)D, sizeof(float)), *y = malloc(sizeof(float) * D);
    for (int d = 0; d < D; d++) u[d] = 1.0f;
    for (int k = 0; k < 4; k++)
        for (int d = 0; d < D; d++) dts[k * D + d] = -100.0f + 140.0f * (float)d / (float)(D - 1);
    for (int i = 0; i < 4 * P; i++) dbl[i] = 1.0f;
    for (int i = 0; i < 4 * D * N; i++) A[i] = -1.0f;
    vm_scan_dims dims = {1, 1, 1, D, N, R};
    K->scan_cross(y, u, dts, NULL, dbl, A, Ds, bias, &dims);
    double worst = 0;
    for (int d = 0; d < D; d++) {
        const double v = dts[d], ref = 4.0 * N * (v > 0 ? v + log1p(exp(-v)) : log1p(exp(v)));
        const double err = fabs(y[d] - ref), bound = (fabs(v) + 16.0) * ldexp(1.0, -23) * ref + 4.0 * N * ldexp(1.0, -125);
        if (err / bound > worst) worst = err / bound;
        ck_assert_msg(err <= bound, "%s N=%d: softplus(%g) * 4N = %.9g, libm %.9g (bound %.3g)", K->name, N, v, y[d], ref, bound);
    }
    fprintf(stderr, "  [%s] scan softplus N=%d: worst error / bound %.3f\n", K->name, N, worst);
    dts[7] = NAN; /* direction 0 only */
    K->scan_cross(y, u, dts, NULL, dbl, A, Ds, bias, &dims);
    ck_assert_msg(isnan(y[7]), "%s N=%d: NaN dt gave %g", K->name, N, y[7]);
    ck_assert_msg(!isnan(y[8]), "%s N=%d: NaN spread to another channel", K->name, N);
    free(u); free(dts); free(dbl); free(A); free(Ds); free(bias); free(y);
}
END_TEST

/* dt_proj inside the scan (dt_w given) against the same table fed dts from
 * the documented order (fmaf over r from 0): the same bits, every shape,
 * d_state 1 and 16 included. */
START_TEST(scan_cross_dt_proj_in_kernel) {
    const vm_kernel_table *K = vm_kernels_available()[_i / NSHAPES];
    const int *s = shapes[_i % NSHAPES];
    const int B = s[0], H = s[1], W = s[2], D = s[3], N = s[4], R = 5, L = H * W, P = R + 2 * N;
    float *u = rvec((size_t)B * L * D, 1.0f), *dbl = rvec((size_t)B * L * 4 * P, 1.0f), *dtw = rvec((size_t)4 * D * R, 0.7f);
    float *A = malloc(sizeof(float) * 4 * D * N), *dts = malloc(sizeof(float) * 4 * B * L * D);
    for (int i = 0; i < 4 * D * N; i++) A[i] = -expf(logf((float)(i % N + 1)) + 0.1f * frand());
    float *Ds = rvec((size_t)4 * D, 1.0f), *bias = rvec((size_t)4 * D, 2.0f);
    for (int k = 0; k < 4; k++)
        for (size_t t = 0; t < (size_t)B * L; t++)
            for (int d = 0; d < D; d++) {
                float a = 0.0f;
                for (int r = 0; r < R; r++) a = fmaf(dbl[t * 4 * P + (size_t)k * P + r], dtw[((size_t)k * D + d) * R + r], a);
                dts[((size_t)k * B * L + t) * D + d] = a;
            }
    float *want = malloc(sizeof(float) * B * L * D), *got = malloc(sizeof(float) * B * L * D);
    vm_scan_dims dims = {B, H, W, D, N, R};
    K->scan_cross(want, u, dts, NULL, dbl, A, Ds, bias, &dims);
    K->scan_cross(got, u, NULL, dtw, dbl, A, Ds, bias, &dims);
    for (size_t i = 0; i < (size_t)B * L * D; i++)
        ck_assert_msg(memcmp(&got[i], &want[i], sizeof(float)) == 0, "scan_cross[%s] with dt_w, shape %d: element %zu: %.9g vs %.9g",
                      K->name, _i % NSHAPES, i, got[i], want[i]);
    free(u); free(dbl); free(dtw); free(A); free(dts); free(Ds); free(bias); free(want); free(got);
}
END_TEST

START_TEST(scan_token_order) {
    /* H=2, W=3: k1 visits columns: tokens 0,3,1,4,2,5. */
    static const int k1[6] = {0, 3, 1, 4, 2, 5};
    for (int l = 0; l < 6; l++) {
        ck_assert_int_eq(vm_scan_token(0, l, 2, 3), l);
        ck_assert_int_eq(vm_scan_token(1, l, 2, 3), k1[l]);
        ck_assert_int_eq(vm_scan_token(2, l, 2, 3), 5 - l);
        ck_assert_int_eq(vm_scan_token(3, l, 2, 3), k1[5 - l]);
    }
}
END_TEST

START_TEST(layernorm_formula) {
    const vm_kernel_table *K = vm_kernels_available()[_i];
    const int T = 7, C = 37;
    float *x = rvec((size_t)T * C, 3.0f), *w = rvec(C, 1.0f), *b = rvec(C, 1.0f), *y = malloc(sizeof(float) * T * C);
    float *want = malloc(sizeof(float) * T * C);
    for (int t = 0; t < T; t++) {
        double m = 0, v = 0;
        for (int c = 0; c < C; c++) m += x[t * C + c];
        m /= C;
        for (int c = 0; c < C; c++) v += (x[t * C + c] - m) * (x[t * C + c] - m);
        v /= C;
        for (int c = 0; c < C; c++) want[t * C + c] = (float)((x[t * C + c] - m) / sqrt(v + 1e-5) * w[c] + b[c]);
    }
    K->layernorm(y, x, w, b, T, C, 1e-5f);
    tclose("layernorm", y, want, (size_t)T * C, 1e-5);
    K->layernorm(x, x, w, b, T, C, 1e-5f); /* in place */
    tclose("layernorm in place", x, want, (size_t)T * C, 1e-5);
    free(x); free(w); free(b); free(y); free(want);
}
END_TEST

/* Activations against double-precision libm over [-20, 20]: error bound
 * 1e-6 * max(1, |ref|) (a few float ulps; the vector GELU/SiLU are accurate
 * to ~1.4e-7, see simd/generic/vec-math.h and vector_math_error). */
START_TEST(activations_vs_libm) {
    const vm_kernel_table *K = vm_kernels_available()[_i];
    const size_t n = 20001;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y), *want = malloc(n * sizeof *want);
    for (size_t i = 0; i < n; i++) x[i] = -20.0f + 40.0f * (float)i / (float)(n - 1);
    K->gelu(y, x, n);
    for (size_t i = 0; i < n; i++) want[i] = (float)(0.5 * x[i] * (1.0 + erf(x[i] / sqrt(2.0))));
    tclose("gelu", y, want, n, 1e-6);
    K->silu(y, x, n);
    for (size_t i = 0; i < n; i++) want[i] = (float)(x[i] / (1.0 + exp(-(double)x[i])));
    tclose("silu", y, want, n, 1e-6);
    ck_assert_float_eq(vm_softplus_ref(30.0f), 30.0f);
    ck_assert(fabsf(vm_softplus_ref(0.0f) - logf(2.0f)) < 1e-7f);
    free(x); free(y); free(want);
}
END_TEST

START_TEST(dwconv_matches_naive) {
    /* strided input like the z-gated in_proj; C 800 crosses the kernels'
     * 768-channel weight chunk with a vector tail; 1x1 and 1-row maps; a
     * 1-column map with whole vectors (C 35 > 16 lanes), so the one-column
     * case of the register-window rows runs on x86 too */
    static const int dws[][4] = {{2, 5, 7, 19}, {1, 3, 4, 800}, {1, 1, 1, 5}, {2, 1, 6, 33}, {1, 3, 1, 35}};
    enum { NDWS = sizeof dws / sizeof dws[0] };
    const vm_kernel_table *K = vm_kernels_available()[_i / NDWS];
    const int *d = dws[_i % NDWS];
    const int B = d[0], H = d[1], W = d[2], C = d[3], ld = 2 * C;
    float *in = rvec((size_t)B * H * W * ld, 1.0f), *w = rvec((size_t)C * 9, 0.5f), *bias = rvec(C, 0.5f);
    float *y = malloc(sizeof(float) * B * H * W * C), *want = malloc(sizeof(float) * B * H * W * C);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int x = 0; x < W; x++)
                for (int c = 0; c < C; c++) {
                    double acc = bias[c];
                    for (int i = 0; i < 3; i++)
                        for (int j = 0; j < 3; j++) {
                            int yy = h + i - 1, xx = x + j - 1;
                            if (yy >= 0 && yy < H && xx >= 0 && xx < W)
                                acc += (double)w[c * 9 + i * 3 + j] * in[(((size_t)b * H + yy) * W + xx) * ld + c];
                        }
                    want[(((size_t)b * H + h) * W + x) * C + c] = (float)(acc / (1.0 + exp(-acc)));
                }
    K->dwconv3x3_silu(y, in, ld, w, bias, B, H, W, C);
    tclose("dwconv3x3_silu", y, want, (size_t)B * H * W * C, 1e-5);
    free(in); free(w); free(bias); free(y); free(want);
}
END_TEST

/* Gated SiLU with a strided gate, on lengths that leave vector tails. */
START_TEST(mul_silu_and_tails) {
    const vm_kernel_table *K = vm_kernels_available()[_i];
    for (int C = 1; C <= 37; C += 3) {
        const int T = 3, ldz = 2 * C + 1;
        float *a = rvec((size_t)T * C, 3.0f), *z = rvec((size_t)T * ldz, 6.0f), *y = malloc(sizeof(float) * T * C),
              *want = malloc(sizeof(float) * T * C);
        vm_kernels_scalar()->mul_silu(want, a, z, T, C, ldz);
        K->mul_silu(y, a, z, T, C, ldz);
        tclose("mul_silu", y, want, (size_t)T * C, 1e-6);
        free(a); free(z); free(y); free(want);
    }
}
END_TEST

/* out_norm + gate in one kernel against the same table's layernorm then
 * mul_silu: the same bits (vector tails, a strided gate, in place). */
START_TEST(layernorm_mul_silu_matches_composition) {
    static const int Cs[] = {37, 96, 5, 803};
    const vm_kernel_table *K = vm_kernels_available()[_i / 4];
    const int T = 9, C = Cs[_i % 4], ldz = 2 * C + 3;
    float *x = rvec((size_t)T * C, 3.0f), *w = rvec(C, 2.0f), *b = rvec(C, 1.0f), *z = rvec((size_t)T * ldz, 6.0f);
    float *want = malloc(sizeof(float) * T * C), *got = malloc(sizeof(float) * T * C);
    K->layernorm(want, x, w, b, T, C, 1e-5f);
    K->mul_silu(want, want, z, T, C, ldz);
    memcpy(got, x, sizeof(float) * T * C);
    K->layernorm_mul_silu(got, got, w, b, z, ldz, T, C, 1e-5f);
    for (int i = 0; i < T * C; i++)
        ck_assert_msg(memcmp(&got[i], &want[i], sizeof(float)) == 0, "layernorm_mul_silu[%s] C %d: element %d: %.9g vs %.9g",
                      K->name, C, i, got[i], want[i]);
    free(x); free(w); free(b); free(z); free(want); free(got);
}
END_TEST

/* dt_proj of the four directions against the scalar reference (fmaf over
 * r from 0, the order oneDNN's products have at these K): the same bits on
 * every table; token counts with 8- and 64-token tails, D with vector tails,
 * R from 1 to the 7x7 stage's 48. */
START_TEST(dt_proj_matches_reference) {
    static const int dims[][3] = {/* T, D, R */ {99, 33, 5}, {70, 19, 6}, {3, 5, 1}, {196, 64, 24}, {49, 48, 48}, {200, 17, 12}};
    const vm_kernel_table *K = vm_kernels_available()[_i / 6];
    const int T = dims[_i % 6][0], D = dims[_i % 6][1], R = dims[_i % 6][2], P = R + 2;
    float *dbl = rvec((size_t)T * 4 * P, 1.0f), *wt = rvec((size_t)4 * R * D, 0.5f);
    float *want = malloc(sizeof(float) * 4 * T * D), *got = malloc(sizeof(float) * 4 * T * D);
    vm_kernels_scalar()->dt_proj(want, dbl, wt, T, D, R, P);
    K->dt_proj(got, dbl, wt, T, D, R, P);
    for (size_t i = 0; i < (size_t)4 * T * D; i++)
        ck_assert_msg(memcmp(&got[i], &want[i], sizeof(float)) == 0, "dt_proj[%s] T %d D %d R %d: element %zu: %.9g vs %.9g",
                      K->name, T, D, R, i, got[i], want[i]);
    /* the reference against the formula in double (a wrong index would
     * show here, not as a rounding difference) */
    for (int k = 0; k < 4; k++)
        for (int t = 0; t < T; t += 7)
            for (int d = 0; d < D; d++) {
                double acc = 0, mag = 0;
                for (int r = 0; r < R; r++) {
                    double v = (double)dbl[(size_t)t * 4 * P + k * P + r] * wt[((size_t)k * R + r) * D + d];
                    acc += v;
                    mag += fabs(v);
                }
                ck_assert(fabs(want[((size_t)k * T + t) * D + d] - acc) <= 1e-6 * (mag + 1e-30) * R);
            }
    free(dbl); free(wt); free(want); free(got);
}
END_TEST

/* Worst error of the table's GELU and SiLU against libm in double, over
 * 2M points in [-30, 30]: asserted below 4e-7 * max(1, |ref|), and
 * printed so a bug report can quote it. */
START_TEST(vector_math_error) {
    const vm_kernel_table *K = vm_kernels_available()[_i];
    const size_t n = 2000001;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) x[i] = -30.0f + 60.0f * (float)i / (float)(n - 1);
    double worst[2] = {0, 0};
    for (int f = 0; f < 2; f++) {
        (f ? K->silu : K->gelu)(y, x, n);
        for (size_t i = 0; i < n; i++) {
            double r = f ? x[i] / (1.0 + exp(-(double)x[i])) : 0.5 * x[i] * (1.0 + erf(x[i] / sqrt(2.0)));
            double e = fabs(y[i] - r) / fmax(1.0, fabs(r));
            if (e > worst[f]) worst[f] = e;
        }
    }
    fprintf(stderr, "  [%s] max error vs libm: gelu %.2e, silu %.2e (relative to max(1,|ref|))\n", K->name, worst[0], worst[1]);
    ck_assert_msg(worst[0] <= 4e-7 && worst[1] <= 4e-7, "%s: gelu %.3g silu %.3g", K->name, worst[0], worst[1]);
    free(x);
    free(y);
}
END_TEST

/* The fused LayerNorm -> u8 against the same table's two kernels: the
 * same bits (the INT8 layers after a norm quantize from it, and their
 * outputs must not move). C with vector tails, one wide row, codes that
 * saturate at both ends. */
START_TEST(layernorm_u8_matches_composition) {
    static const int Cs[] = {37, 96, 5, 803};
    const vm_kernel_table *K = vm_kernels_available()[_i / 4];
    const int T = 9, C = Cs[_i % 4];
    float *x = rvec((size_t)T * C, 3.0f), *w = rvec(C, 2.0f), *b = rvec(C, 1.0f), *y = malloc(sizeof(float) * T * C);
    uint8_t *want = malloc((size_t)T * C), *got = malloc((size_t)T * C);
    const float inv = 1.0f / 0.013f, zp = 121.0f; /* |LN| * |w| up to ~6 / 0.013: both ends clip */
    K->layernorm(y, x, w, b, T, C, 1e-5f);
    K->quantize_u8(want, y, T, C, C, inv, zp);
    K->layernorm_u8(got, x, w, b, T, C, 1e-5f, inv, zp);
    int lo = 0, hi = 0;
    for (int i = 0; i < T * C; i++) {
        ck_assert_msg(got[i] == want[i], "layernorm_u8[%s] C %d: element %d: code %d, composition %d", K->name, C, i,
                      got[i], want[i]);
        lo += want[i] == 0;
        hi += want[i] == 255;
    }
    ck_assert(C < 37 || (lo > 0 && hi > 0));
    free(x); free(w); free(b); free(y); free(want); free(got);
}
END_TEST

Suite *suite_kernels(void) {
    Suite *s = suite_create("kernels");
    TCase *tc = tcase_create("kernels");
    tcase_add_loop_test(tc, scan_cross_matches_composition, 0, n_tables() * NSHAPES * 2);
    tcase_add_loop_test(tc, scan_cross_dt_proj_in_kernel, 0, n_tables() * NSHAPES);
    tcase_add_loop_test(tc, scan_softplus_vs_libm, 0, n_tables() * 2);
    tcase_add_test(tc, scan_token_order);
    tcase_add_loop_test(tc, layernorm_formula, 0, n_tables());
    tcase_add_loop_test(tc, activations_vs_libm, 0, n_tables());
    tcase_add_loop_test(tc, dwconv_matches_naive, 0, n_tables() * 5); /* 5: dws's shapes */
    tcase_add_loop_test(tc, mul_silu_and_tails, 0, n_tables());
    tcase_add_loop_test(tc, vector_math_error, 0, n_tables());
    tcase_add_loop_test(tc, layernorm_u8_matches_composition, 0, n_tables() * 4);
    tcase_add_loop_test(tc, layernorm_mul_silu_matches_composition, 0, n_tables() * 4);
    tcase_add_loop_test(tc, dt_proj_matches_reference, 0, n_tables() * 6);
    suite_add_tcase(s, tc);
    return s;
}
