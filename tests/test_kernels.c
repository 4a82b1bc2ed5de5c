/* test_kernels.c - kernels of the active table (VMAMBA_ISA) against the
 * scalar reference and against plain formulas.
 *
 * The fused cross-scan is checked against the composition the official
 * code runs: cross-scan into 4 sequences, the single-direction reference
 * scan on each, then cross-merge. Tolerance 1e-5 relative: both sides do
 * the same FP32 operations per element; only the merge order differs. */
#include <math.h>
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

START_TEST(scan_cross_matches_composition) {
    const int *s = shapes[_i];
    const int B = s[0], H = s[1], W = s[2], D = s[3], N = s[4], R = 3, L = H * W, P = R + 2 * N;
    float *u = rvec((size_t)B * L * D, 1.0f), *dts = rvec((size_t)4 * B * L * D, 1.5f);
    float *dbl = rvec((size_t)B * L * 4 * P, 1.0f), *A = malloc(sizeof(float) * 4 * D * N);
    for (int i = 0; i < 4 * D * N; i++) A[i] = -expf(logf((float)(i % N + 1)) + 0.1f * frand());
    float *Ds = rvec((size_t)4 * D, 1.0f), *bias = rvec((size_t)4 * D, 2.0f);
    /* one large dt to exercise the softplus threshold */
    dts[0] = 25.0f;
    float *y = malloc(sizeof(float) * B * L * D), *want = calloc((size_t)B * L * D, sizeof(float));
    vm_scan_dims dims = {B, H, W, D, N, R};
    vm_kernels()->scan_cross(y, u, dts, dbl, A, Ds, bias, &dims);
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
    tclose("scan_cross", y, want, (size_t)B * L * D, 1e-5);
    free(u); free(dts); free(dbl); free(A); free(Ds); free(bias); free(y); free(want);
    free(su); free(sd); free(sB); free(sC); free(sy);
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
    vm_kernels()->layernorm(y, x, w, b, T, C, 1e-5f);
    tclose("layernorm", y, want, (size_t)T * C, 1e-5);
    vm_kernels()->layernorm(x, x, w, b, T, C, 1e-5f); /* in place */
    tclose("layernorm in place", x, want, (size_t)T * C, 1e-5);
    free(x); free(w); free(b); free(y); free(want);
}
END_TEST

/* Activations against double-precision libm over a wide range: 1e-6
 * relative is a few float ulps. */
START_TEST(activations_vs_libm) {
    const size_t n = 20001;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y), *want = malloc(n * sizeof *want);
    for (size_t i = 0; i < n; i++) x[i] = -20.0f + 40.0f * (float)i / (float)(n - 1);
    vm_kernels()->gelu(y, x, n);
    for (size_t i = 0; i < n; i++) want[i] = (float)(0.5 * x[i] * (1.0 + erf(x[i] / sqrt(2.0))));
    tclose("gelu", y, want, n, 1e-6);
    vm_kernels()->silu(y, x, n);
    for (size_t i = 0; i < n; i++) want[i] = (float)(x[i] / (1.0 + exp(-(double)x[i])));
    tclose("silu", y, want, n, 1e-6);
    ck_assert_float_eq(vm_softplus_ref(30.0f), 30.0f);
    ck_assert(fabsf(vm_softplus_ref(0.0f) - logf(2.0f)) < 1e-7f);
    free(x); free(y); free(want);
}
END_TEST

START_TEST(dwconv_matches_naive) {
    const int B = 2, H = 5, W = 7, C = 19, ld = 2 * C; /* strided input like the z-gated in_proj */
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
    vm_kernels()->dwconv3x3_silu(y, in, ld, w, bias, B, H, W, C);
    tclose("dwconv3x3_silu", y, want, (size_t)B * H * W * C, 1e-5);
    free(in); free(w); free(bias); free(y); free(want);
}
END_TEST

Suite *suite_kernels(void) {
    Suite *s = suite_create("kernels");
    TCase *tc = tcase_create("kernels");
    tcase_add_loop_test(tc, scan_cross_matches_composition, 0, (int)(sizeof shapes / sizeof *shapes));
    tcase_add_test(tc, scan_token_order);
    tcase_add_test(tc, layernorm_formula);
    tcase_add_test(tc, activations_vs_libm);
    tcase_add_test(tc, dwconv_matches_naive);
    suite_add_tcase(s, tc);
    return s;
}
