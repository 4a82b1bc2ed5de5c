/* test_xnnpack.c - the XNNPACK GEMM path (src/ops/gemm_xnnpack.c, issue
 * #15) against plain scalar references, and a whole model on it against
 * the same model on oneDNN. The golden suite runs on either path through
 * VMAMBA_GEMM=dnnl|xnnpack (CI runs both under qemu-aarch64). A build
 * without XNNPACK says "not run". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "config.h"
#include "model/model.h"
#include "ops/gemm_xnnpack.h"

static int have_xnn(const char *what) {
#ifdef VM_HAVE_XNNPACK
    char e[256];
    vm_xop *x = vm_xop_fc(1, 1, 1, 1, (const float[]){1.0f}, NULL, e, sizeof e);
    if (x) {
        vm_xop_free(x);
        return 1;
    }
    printf("  %s: %s: not run\n", what, e);
#else
    printf("  %s: this build has no XNNPACK: not run\n", what);
#endif
    return 0;
}

static void fill(float *x, size_t n, unsigned s) {
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)((s >> 9) & 0xffff) / 32768.0f - 1.0f;
    }
}

/* FP32 sums of K products of terms in [-1, 1] (|sum| <= K) differ from the
 * double reference by at most ~K * 2^-24 * K in the worst case; blocked
 * summation does far better. 1e-5 * K bounds K <= 700 with margin, and a
 * wrong index or stride is off by O(1). */
START_TEST(fc_matches_reference) {
    if (!have_xnn("fc_matches_reference")) return;
    static const int shapes[][3] = {{37, 70, 45}, {1, 768, 1000}, {200, 6, 96}, {33, 384, 104}};
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        const int M = shapes[t][0], K = shapes[t][1], N = shapes[t][2];
        const int lda = K + (t & 1 ? 0 : 5), ldc = N + (t & 1 ? 0 : 3); /* strides as dt_proj's input */
        /* + 16 bytes: XNNPACK reads up to 16 bytes past its input */
        float *A = malloc((size_t)M * lda * 4 + 16), *W = malloc((size_t)N * K * 4), *b = malloc((size_t)N * 4);
        float *C = malloc((size_t)M * ldc * 4);
        ck_assert(A && W && b && C);
        fill(A, (size_t)M * lda, 1 + t), fill(W, (size_t)N * K, 7 + t), fill(b, N, 11 + t);
        for (size_t i = 0; i < (size_t)M * ldc; i++) C[i] = 12345.0f; /* the row gaps must stay */
        char e[256];
        vm_xop *x = vm_xop_fc(N, K, lda, ldc, W, t & 2 ? NULL : b, e, sizeof e);
        ck_assert_msg(x, "%s", e);
        ck_assert_int_eq(vm_xop_fc_run(x, M, A, C, NULL), 0);
        double worst = 0;
        for (int i = 0; i < M; i++) {
            for (int n = 0; n < N; n++) {
                double r = t & 2 ? 0 : b[n];
                for (int k = 0; k < K; k++) r += (double)A[(size_t)i * lda + k] * W[(size_t)n * K + k];
                worst = fmax(worst, fabs(r - C[(size_t)i * ldc + n]));
            }
            for (int n = N; n < ldc; n++) ck_assert(C[(size_t)i * ldc + n] == 12345.0f);
        }
        ck_assert_msg(worst <= 1e-5 * K, "%dx%dx%d: max |error| %g", M, K, N, worst);
        vm_xop_free(x);
        free(A), free(W), free(b), free(C);
    }
}
END_TEST

/* NHWC convolution on OIHW weights: the patch-embed (k 4 stride 4, and
 * k 3 stride 2 pad 1) and downsample shapes, odd sizes. Same bound, K =
 * cin * k * k. */
START_TEST(conv_matches_reference) {
    if (!have_xnn("conv_matches_reference")) return;
    static const int cfg[][7] = {/* B H W cin cout k stride(pad = (k==3)) */
                                 {2, 9, 11, 5, 7, 3, 2}, {1, 16, 12, 3, 8, 4, 4}, {1, 7, 7, 16, 32, 3, 2}};
    for (size_t t = 0; t < sizeof cfg / sizeof cfg[0]; t++) {
        const int B = cfg[t][0], H = cfg[t][1], Wd = cfg[t][2], ci = cfg[t][3], co = cfg[t][4], k = cfg[t][5], s = cfg[t][6];
        const int pad = k == 3, oh = vm_conv_out_size(H, k, s, pad), ow = vm_conv_out_size(Wd, k, s, pad);
        float *in = malloc((size_t)B * H * Wd * ci * 4 + 16), *w = malloc((size_t)co * ci * k * k * 4), *b = malloc((size_t)co * 4);
        float *out = malloc((size_t)B * oh * ow * co * 4);
        ck_assert(in && w && b && out);
        fill(in, (size_t)B * H * Wd * ci, 3 + t), fill(w, (size_t)co * ci * k * k, 5 + t), fill(b, co, 9 + t);
        char e[256];
        vm_xop *x = vm_xop_conv(ci, co, k, s, pad, w, b, e, sizeof e);
        ck_assert_msg(x, "%s", e);
        ck_assert_int_eq(vm_xop_conv_run(x, B, H, Wd, in, out, NULL), 0);
        double worst = 0;
        for (int n = 0; n < B; n++)
            for (int y = 0; y < oh; y++)
                for (int xx = 0; xx < ow; xx++)
                    for (int o = 0; o < co; o++) {
                        double r = b[o];
                        for (int i = 0; i < ci; i++)
                            for (int ky = 0; ky < k; ky++)
                                for (int kx = 0; kx < k; kx++) {
                                    int iy = y * s - pad + ky, ix = xx * s - pad + kx;
                                    if (iy < 0 || iy >= H || ix < 0 || ix >= Wd) continue;
                                    r += (double)in[(((size_t)n * H + iy) * Wd + ix) * ci + i] * w[(((size_t)o * ci + i) * k + ky) * k + kx];
                                }
                        worst = fmax(worst, fabs(r - out[(((size_t)n * oh + y) * ow + xx) * co + o]));
                    }
        ck_assert_msg(worst <= 1e-5 * ci * k * k, "conv %zu: max |error| %g", t, worst);
        vm_xop_free(x);
        free(in), free(w), free(b), free(out);
    }
}
END_TEST

/* INT8 (qc8): s8 weights with per-row scales, u8-convention activations,
 * int32-rounded bias, output requantized to s8 at a given range. The
 * exact real-number result, requantized, may differ by one output step
 * (XNNPACK's fp32 requantization rounds once; the bias was rounded to the
 * accumulator's unit, <= 0.5 of a_scale * w_scale), so the bound is one
 * output step plus that bias rounding. */
START_TEST(qc8_matches_reference) {
    if (!have_xnn("qc8_matches_reference")) return;
    static const int shapes[][3] = {{37, 70, 45}, {3, 384, 1536}, {130, 96, 96}};
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        const int M = shapes[t][0], K = shapes[t][1], N = shapes[t][2];
        uint8_t *a = malloc((size_t)M * K + 16);
        int8_t *w = malloc((size_t)N * K), *o = malloc((size_t)M * N);
        float *ws = malloc((size_t)N * 4), *b = malloc((size_t)N * 4), *r = malloc((size_t)M * N * 4);
        ck_assert(a && w && o && ws && b && r);
        unsigned s = 17 + (unsigned)t;
        for (size_t i = 0; i < (size_t)M * K; i++) a[i] = (uint8_t)((s = s * 1664525u + 1013904223u) >> 24);
        for (size_t i = 0; i < (size_t)N * K; i++) w[i] = (int8_t)(((s = s * 1664525u + 1013904223u) >> 24) % 255 - 127);
        fill(ws, N, 5 + t), fill(b, N, 6 + t);
        for (int n = 0; n < N; n++) ws[n] = 0.002f + 0.001f * fabsf(ws[n]);
        const float as = 0.02f;
        const int azp = 100;
        double lo = 0, hi = 0;
        for (int i = 0; i < M; i++)
            for (int n = 0; n < N; n++) {
                double v = b[n];
                for (int k = 0; k < K; k++) v += (double)(a[(size_t)i * K + k] - azp) * as * w[(size_t)n * K + k] * ws[n];
                r[(size_t)i * N + n] = (float)v;
                lo = fmin(lo, v), hi = fmax(hi, v);
            }
        const float os = (float)((hi - lo) / 255.0);
        const int ozp = (int)nearbyint(-lo / os);
        char e[256];
        vm_xop *x = vm_xop_qc8(N, K, w, ws, b, as, azp, os, ozp, e, sizeof e);
        ck_assert_msg(x, "%s", e);
        for (size_t i = 0; i < (size_t)M * K; i++) a[i] ^= 0x80; /* s8 codes, as vm_linear passes them */
        ck_assert_int_eq(vm_xop_qc8_run(x, M, (const int8_t *)a, o, NULL), 0);
        double worst = 0, bias_step = 0;
        for (int n = 0; n < N; n++) bias_step = fmax(bias_step, 0.5 * as * ws[n]);
        for (size_t i = 0; i < (size_t)M * N; i++) worst = fmax(worst, fabs(((double)o[i] - (ozp - 128)) * os - r[i]));
        ck_assert_msg(worst <= os + bias_step, "%dx%dx%d: max |error| %g, output step %g", M, K, N, worst, (double)os);
        vm_xop_free(x);
        free(a), free(w), free(o), free(ws), free(b), free(r);
    }
}
END_TEST

static float *logits_with(const char *gemm, const char *preset, const float *img, int S, int *nc) {
    setenv("VMAMBA_GEMM", gemm, 1);
    char e[512];
    vm_model *m = vm_model_from_preset(preset, 0, 42, e, sizeof e);
    unsetenv("VMAMBA_GEMM");
    ck_assert_msg(m, "%s", e);
    ck_assert_int_eq(m->xnn, !strcmp(gemm, "xnnpack"));
    *nc = m->info.num_classes;
    float *lg = malloc((size_t)2 * *nc * 4);
    ck_assert(lg);
    ck_assert_msg(vm_forward(m, img, 2, S, S, lg) == 0, "%s", vm_model_error(m));
    vm_model_free(m);
    return lg;
}

/* A whole forward pass (patch embed, every linear, x_proj/dt_proj,
 * downsample convolutions, head; batch 2) on XNNPACK against oneDNN, same
 * random weights: only the GEMMs' summation order differs, so the logits
 * agree to FP32 rounding grown over ~15 layers (1e-4 of their spread; the
 * goldens check both paths against the official model). */
START_TEST(model_matches_dnnl) {
    if (!have_xnn("model_matches_dnnl")) return;
    static const char *presets[] = {"vmamba-tiny-s1l8", "vmamba-tiny-s2l5"};
    const int S = 64;
    float *img = malloc((size_t)2 * 3 * S * S * 4);
    ck_assert(img);
    fill(img, (size_t)2 * 3 * S * S, 99);
    for (int p = 0; p < 2; p++) {
        int nc;
        float *a = logits_with("dnnl", presets[p], img, S, &nc), *b = logits_with("xnnpack", presets[p], img, S, &nc);
        double lo = INFINITY, hi = -INFINITY, worst = 0;
        for (int i = 0; i < 2 * nc; i++) {
            lo = fmin(lo, a[i]), hi = fmax(hi, a[i]);
            worst = fmax(worst, fabs((double)a[i] - b[i]));
        }
        ck_assert_msg(worst <= 1e-4 * (hi - lo), "%s: max |dnnl - xnnpack| %g, logit spread %g", presets[p], worst, hi - lo);
        free(a), free(b);
    }
    free(img);
}
END_TEST

/* ---- FP16 (--precision fp16 on ARMv8.2 cores with FP16 arithmetic) ---- */

static double cosine(const float *a, const float *b, size_t n) {
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < n; i++) ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
    return ab / sqrt(aa * bb);
}

static int have_fp16(const char *what) {
    if (vm_xnn_fp16_supported()) return 1;
    printf("  %s: no FP16 arithmetic here (XNNPACK refuses f16 operators; needs an ARMv8.2 core such as "
           "Cortex-A55/A76): not run\n", what);
    return 0;
}

/* The f16 product against the scalar FP32 reference (double sums of the
 * FP32 inputs), strided rows as dt_proj's. XNNPACK rounds A, W and the bias
 * to half precision (unit roundoff u = 2^-11) and accumulates in half
 * precision, one rounding per multiply-add, so each output is off by at
 * most ~(K + 3) u (sum_k |a_k w_k| + |b|) (the first-order worst case of
 * K + 3 roundings: it only fails on garbage, an infinity, a lost row). A
 * wrong index or stride would pass such a loose bound, so the outputs as
 * a whole must also keep cosine >= 0.9999 with the reference: round-off
 * that behaves like a random walk leaves a relative RMS error below
 * u sqrt(K / 3) (measured under qemu cortex-a76: cosine 0.999996 at K =
 * 384 and 768, 0.99996 at K = 3072, the model's largest), while a wrong
 * index gives cosine ~0. */
START_TEST(fc16_matches_reference) {
    if (!have_xnn("fc16_matches_reference") || !have_fp16("fc16_matches_reference")) return;
    static const int shapes[][3] = {{37, 70, 45}, {1, 768, 1000}, {200, 6, 96}, {33, 384, 104}, {49, 3072, 40}};
    const double u = 1.0 / 2048;
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        const int M = shapes[t][0], K = shapes[t][1], N = shapes[t][2];
        const int lda = K + (t & 1 ? 0 : 5), ldc = N + (t & 1 ? 0 : 3);
        float *A = malloc((size_t)M * lda * 4 + 16), *W = malloc((size_t)N * K * 4), *b = malloc((size_t)N * 4);
        float *C = malloc((size_t)M * ldc * 4), *R = malloc((size_t)M * N * 4), *G = malloc((size_t)M * N * 4);
        ck_assert(A && W && b && C && R && G);
        fill(A, (size_t)M * lda, 1 + t), fill(W, (size_t)N * K, 7 + t), fill(b, N, 11 + t);
        for (size_t i = 0; i < (size_t)M * ldc; i++) C[i] = 12345.0f;
        char e[256];
        vm_xop *x = vm_xop_fc(N, K, lda, ldc, W, t & 2 ? NULL : b, e, sizeof e);
        ck_assert_msg(x, "%s", e);
        void *scratch = malloc(vm_xop_fc16_scratch(x, M));
        ck_assert(scratch);
        for (int rep = 0; rep < 2; rep++) /* the f16 operator is made at the first call, reused at the second */
            ck_assert_int_eq(vm_xop_fc_run16(x, M, A, C, scratch, NULL), 0);
        for (int i = 0; i < M; i++) {
            for (int n = 0; n < N; n++) {
                double r = t & 2 ? 0 : b[n], mag = fabs(r);
                for (int k = 0; k < K; k++) {
                    double p = (double)A[(size_t)i * lda + k] * W[(size_t)n * K + k];
                    r += p, mag += fabs(p);
                }
                double got = C[(size_t)i * ldc + n];
                ck_assert_msg(fabs(got - r) <= (K + 3) * u * mag, "%dx%dx%d: [%d][%d] %g vs %g", M, K, N, i, n, got, r);
                R[(size_t)i * N + n] = (float)r, G[(size_t)i * N + n] = (float)got;
            }
            for (int n = N; n < ldc; n++) ck_assert(C[(size_t)i * ldc + n] == 12345.0f);
        }
        double cs = cosine(G, R, (size_t)M * N);
        printf("  fc16 %dx%dx%d: cosine vs FP32 reference %.7f\n", M, K, N, cs);
        ck_assert_msg(cs >= 0.9999, "%dx%dx%d: cosine %.7f", M, K, N, cs);
        vm_xop_free(x);
        free(scratch), free(A), free(W), free(b), free(C), free(R), free(G);
    }
}
END_TEST

/* A whole model in an FP16 context against an FP32 context of the same
 * loaded model (the model is shared; precision is per context), on the
 * golden models and the trained digits model: logit cosine >= 0.9999 per
 * image and the same argmax (issue #15's bound; measured under qemu
 * cortex-a76: golden models >= 0.99996, digits >= 0.999996, 200/200).
 * Where FP16 cannot run, the context must refuse it with a message. */
static void fp16_model(const char *dir, const char *input, int *agree, int *total, double *worst) {
    setenv("VMAMBA_GEMM", "xnnpack", 1);
    char e[512];
    vm_model *m = vm_model_load(tdata("%s/model.pth", dir), NULL, e, sizeof e);
    unsetenv("VMAMBA_GEMM");
    ck_assert_msg(m, "%s", e);
    vm_npy in;
    tload(&in, tdata("%s/%s", dir, input));
    int B = (int)in.shape[0], H = (int)in.shape[2], W = (int)in.shape[3], nc = m->info.num_classes;
    vm_ctx *c32 = vm_ctx_new(m, e, sizeof e), *c16 = vm_ctx_new(m, e, sizeof e);
    ck_assert(c32 && c16);
    ck_assert_int_eq(vm_ctx_set_precision(c16, VM_PRECISION_FP16), 0);
    float *a = malloc((size_t)B * nc * 4), *b = malloc((size_t)B * nc * 4);
    ck_assert(a && b);
    ck_assert_msg(vm_ctx_forward(c32, in.data, B, H, W, a) == 0, "%s", vm_ctx_error(c32));
    ck_assert_msg(vm_ctx_forward(c16, in.data, B, H, W, b) == 0, "%s", vm_ctx_error(c16));
    for (int i = 0; i < B; i++) {
        double cs = cosine(a + (size_t)i * nc, b + (size_t)i * nc, nc);
        *worst = fmin(*worst, cs);
        ck_assert_msg(cs >= 0.9999, "%s image %d: FP16 logit cosine vs FP32 %.7f", dir, i, cs);
        int ia = 0, ib = 0;
        for (int k = 1; k < nc; k++) {
            if (a[(size_t)i * nc + k] > a[(size_t)i * nc + ia]) ia = k;
            if (b[(size_t)i * nc + k] > b[(size_t)i * nc + ib]) ib = k;
        }
        *agree += ia == ib;
        ++*total;
    }
    free(a), free(b);
    vm_npy_free(&in);
    vm_ctx_free(c16), vm_ctx_free(c32);
    vm_model_free(m);
}

START_TEST(model_fp16_matches_fp32) {
    if (!have_xnn("model_fp16_matches_fp32")) return;
    if (!vm_xnn_fp16_supported()) {
        setenv("VMAMBA_GEMM", "xnnpack", 1);
        char e[512];
        vm_model *m = vm_model_load(tdata("v2_s1/model.pth"), NULL, e, sizeof e);
        unsetenv("VMAMBA_GEMM");
        ck_assert_msg(m, "%s", e);
        vm_ctx *c = vm_ctx_new(m, e, sizeof e);
        ck_assert(c);
        ck_assert_int_eq(vm_ctx_set_precision(c, VM_PRECISION_FP16), VM_ERR_UNSUPPORTED);
        ck_assert_msg(strstr(vm_ctx_error(c), "FP16 arithmetic") != NULL, "%s", vm_ctx_error(c));
        ck_assert_int_eq(vm_model_set_device(m, "cpu", VM_PRECISION_FP16), -1);
        vm_ctx_free(c);
        vm_model_free(m);
        have_fp16("model_fp16_matches_fp32");
        return;
    }
    static const char *dirs[] = {"v2_s1", "v2_s2", "v0_ds4", "v0_ds16", "v2z_ds16"};
    int agree = 0, total = 0;
    double worst = 1;
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) fp16_model(dirs[i], "input.npy", &agree, &total, &worst);
    ck_assert_int_eq(agree, total);
    printf("  fp16 golden models: worst logit cosine vs FP32 %.7f, argmax %d/%d\n", worst, agree, total);
    agree = total = 0, worst = 1;
    fp16_model("digits", "test_input.npy", &agree, &total, &worst);
    printf("  fp16 digits: worst logit cosine vs FP32 %.7f, argmax %d/%d\n", worst, agree, total);
    ck_assert_int_eq(agree, total);
}
END_TEST

Suite *suite_xnnpack(void) {
    Suite *s = suite_create("xnnpack");
    TCase *tc = tcase_create("xnnpack");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, fc_matches_reference);
    tcase_add_test(tc, conv_matches_reference);
    tcase_add_test(tc, qc8_matches_reference);
    tcase_add_test(tc, model_matches_dnnl);
    tcase_add_test(tc, fc16_matches_reference);
    tcase_add_test(tc, model_fp16_matches_fp32);
    suite_add_tcase(s, tc);
    return s;
}
