/* check_bf16.c - `--precision bf16` on the CPU: linear layers and
 * convolutions in bf16 (8-bit mantissa, round to nearest even) with FP32
 * accumulation, everything else FP32.
 *
 * Accuracy bounds are the (#14), against this engine's own FP32
 * output on the same inputs (the FP32 path is itself checked against the
 * official code by the golden suite):
 *   - digits (a real trained model): argmax agreement 100 % on its 200 test
 *     images;
 *   - the golden classifier checkpoints: mean logit cosine >= 0.9999.
 * A bf16 input/weight has a relative rounding error <= 2^-9; summed over K
 * products with FP32 accumulation the per-output error stays ~2^-9/sqrt(K)
 * relative to the row norm, which is what keeps cosine above 0.9999.
 *
 * Its own program so a CPU without avx512_bf16 / AMX reports SKIP (exit 77)
 * after checking that asking for bf16 there is a clear error. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "model/model.h"
#include "core/dnnl_compat.h"
#include "quant.h"
#include <unistd.h>

/* FP32 and BF16 logits of one input, from two contexts on one shared model. */
static void both(vm_model *m, const float *in, int B, int H, int W, int C, float *f32, float *b16) {
    char err[512];
    vm_ctx *cf = vm_ctx_new(m, err, sizeof err), *cb = vm_ctx_new(m, err, sizeof err);
    ck_assert(cf && cb);
    ck_assert_int_eq(vm_ctx_set_precision(cb, VM_PRECISION_BF16), 0);
    ck_assert_msg(vm_ctx_forward(cb, in, B, H, W, b16) == 0, "%s", vm_ctx_error(cb));
    ck_assert_msg(vm_ctx_forward(cf, in, B, H, W, f32) == 0, "%s", vm_ctx_error(cf));
    /* the BF16 context left the shared model alone: FP32 is what vm_forward gives */
    float *again = malloc((size_t)B * C * sizeof *again);
    ck_assert(vm_forward(m, in, B, H, W, again) == 0);
    ck_assert(memcmp(again, f32, (size_t)B * C * sizeof *again) == 0);
    ck_assert(memcmp(b16, f32, (size_t)B * C * sizeof *again) != 0); /* really a different arithmetic */
    free(again);
    vm_ctx_free(cf);
    vm_ctx_free(cb);
}

START_TEST(digits_bf16) {
    vm_model *m = tload_model(tdata("digits/model.pth"));
    vm_npy in;
    tload(&in, tdata("digits/test_input.npy"));
    const int B = (int)in.shape[0];
    float *f = malloc((size_t)B * 10 * sizeof *f), *b = malloc((size_t)B * 10 * sizeof *b);
    both(m, in.data, B, 32, 32, 10, f, b);
    int agree;
    double cosv = tmean_cosine(b, f, B, 10, &agree);
    fprintf(stderr, "  digits BF16 vs FP32: mean logit cosine %.7f, argmax agreement %d/%d\n", cosv, agree, B);
    ck_assert_int_eq(agree, B);
    ck_assert_msg(cosv >= 0.9999, "mean cosine %.7f", cosv);
    free(f);
    free(b);
    vm_npy_free(&in);
    vm_model_free(m);
}
END_TEST

/* An INT8 model in a BF16 context: the INT8 matmuls as they are, the
 * layers an INT8 file leaves in FP32 (convolutions, x_proj/dt_proj) in
 * bf16. Bounds as above, against the same INT8 model in FP32 (the INT8
 * path's own accuracy is test_quant's): digits calibrated on its 100
 * calib/ images as there, 200/200 argmax agreement, cosine >= 0.9999. */
START_TEST(digits_int8_bf16) {
    vm_model *m = tload_model(tdata("digits/model.pth"));
    const size_t per = 3 * 32 * 32;
    float *calib, *test;
    tdigits_images(&calib, &test);
    char err[512], path[64];
    vm_calib_opts co = {VM_CALIB_MINMAX, 99.99, NULL, 0, 0, 0, 0};
    vm_calib *c = vm_calib_begin(m, &co);
    float *f = malloc(200 * 10 * sizeof *f), *b = malloc(200 * 10 * sizeof *b);
    for (int i = 0; i < 100; i += 8)
        ck_assert(vm_forward(m, calib + (size_t)i * per, i + 8 <= 100 ? 8 : 100 - i, 32, 32, f) == 0);
    snprintf(path, sizeof path, "/tmp/vmtest_qb_%d.safetensors", (int)getpid());
    ck_assert_msg(vm_calib_write(c, path, NULL, err, sizeof err) == 0, "%s", err);
    vm_calib_free(c);
    vm_model_free(m);
    vm_model *q = tload_model(path);
    unlink(path);
    ck_assert(q->quantized);
    both(q, test, 200, 32, 32, 10, f, b);
    int agree;
    double cosv = tmean_cosine(b, f, 200, 10, &agree);
    fprintf(stderr, "  digits INT8+BF16 vs INT8: mean logit cosine %.7f, argmax agreement %d/200\n", cosv, agree);
    ck_assert_int_eq(agree, 200);
    ck_assert_msg(cosv >= 0.9999, "mean cosine %.7f", cosv);
    /* and against the FP32 reference logits, the INT8 issue's bounds */
    vm_npy ref;
    tload(&ref, tdata("digits/ref_logits.npy"));
    cosv = tmean_cosine(b, ref.data, 200, 10, &agree);
    fprintf(stderr, "  digits INT8+BF16 vs FP32 reference: mean logit cosine %.7f, argmax agreement %d/200\n", cosv, agree);
    ck_assert_int_eq(agree, 200);
    ck_assert_msg(cosv >= 0.9999, "mean cosine %.7f", cosv);
    vm_npy_free(&ref);
    free(f); free(b); free(calib); free(test);
    vm_model_free(q);
}
END_TEST

/* Every golden folder with a classifier (logits.npy). */
static const char *goldens[] = {"v0_ds16", "v0_ds4", "v2_s1", "v2_s2", "v2z_ds16"};

START_TEST(golden_bf16) {
    const char *cfg = goldens[_i];
    vm_model *m = tload_model(tdata("%s/model.pth", cfg));
    vm_npy in, ref;
    tload(&in, tdata("%s/input.npy", cfg));
    tload(&ref, tdata("%s/logits.npy", cfg));
    int B = (int)in.shape[0], H = (int)in.shape[2], W = (int)in.shape[3], C = (int)ref.shape[1];
    float *f = malloc((size_t)B * C * sizeof *f), *b = malloc((size_t)B * C * sizeof *b);
    both(m, in.data, B, H, W, C, f, b);
    int agree;
    double cosv = tmean_cosine(b, f, B, C, &agree);
    fprintf(stderr, "  %s BF16 vs FP32: mean logit cosine %.7f, argmax agreement %d/%d\n", cfg, cosv, agree, B);
    ck_assert_msg(cosv >= 0.9999, "%s: mean cosine %.7f", cfg, cosv);
    free(f);
    free(b);
    vm_npy_free(&in);
    vm_npy_free(&ref);
    vm_model_free(m);
}
END_TEST

/* The avx512_bf16 input rounding equals the scalar reference bit for bit
 * (normal numbers, exact ties, zeros, infinities, NaN; denormals are the
 * one documented difference: the instruction reads them as zero). */
START_TEST(round_matches_reference) {
    enum { N = 4099 }; /* not a multiple of 16: the masked tail */
    float *x = malloc(N * sizeof *x);
    uint16_t *want = malloc(N * sizeof *want), *got = malloc(N * sizeof *got);
    uint32_t st = 12345;
    for (int i = 0; i < N; i++) {
        st = st * 1664525u + 1013904223u;
        union { uint32_t u; float f; } v = {st};
        if ((v.u & 0x7f800000u) == 0) v.u &= 0x80000000u; /* no denormals */
        x[i] = v.f;
    }
    x[0] = 1.0f + 1.0f / 256; /* a tie: rounds to even (1.0) */
    x[1] = 1.0f + 3.0f / 256; /* a tie: rounds to even (1 + 4/256) */
    x[2] = INFINITY;
    x[3] = -0.0f;
    x[4] = NAN;
    ck_assert_int_eq(vm_bf16_round(x, N, want, 0), 0);
    ck_assert_int_eq(want[0], 0x3f80);
    ck_assert_int_eq(want[1], 0x3f82);
    if (vm_bf16_round(x, N, got, 1) == 0)
        for (int i = 0; i < N; i++) ck_assert_msg(got[i] == want[i], "element %d (%a): %04x vs reference %04x", i, x[i], got[i], want[i]);
    else
        fprintf(stderr, "  no avx512_bf16 rounding kernel in this build: scalar only\n");
    free(x);
    free(want);
    free(got);
}
END_TEST

/* The CPU does fp32 or bf16; the GPU-only precisions are a clear error. */
START_TEST(cpu_precisions) {
    vm_model *m = tload_model(tdata("digits/model.pth"));
    char err[512];
    vm_ctx *c = vm_ctx_new(m, err, sizeof err);
    ck_assert_int_eq(vm_ctx_set_precision(c, VM_PRECISION_TF32), VM_ERR_UNSUPPORTED);
    ck_assert(strstr(vm_ctx_error(c), "tf32") != NULL);
    ck_assert_int_eq(vm_model_set_device(m, "cpu", VM_PRECISION_FP16), -1);
    ck_assert(strstr(vm_model_error(m), "fp16") != NULL);
    ck_assert_int_eq(vm_ctx_set_precision(c, VM_PRECISION_FP32), 0);
    vm_ctx_free(c);
    vm_model_free(m);
}
END_TEST

int main(void) {
    if (!vm_dnnl_bf16_supported()) {
        /* what a user gets there: an error that says why */
        char err[512];
        vm_model *m = vm_model_load(tdata("digits/model.pth"), NULL, err, sizeof err);
        int ok = m && vm_model_set_device(m, "cpu", VM_PRECISION_BF16) == -1 && strstr(vm_model_error(m), "avx512_bf16");
        if (m) vm_model_free(m);
        if (!ok) {
            fprintf(stderr, "FAIL: bf16 on a CPU without it was not a clear error\n");
            return EXIT_FAILURE;
        }
        fprintf(stderr, "SKIP: this CPU (as oneDNN sees it) has neither avx512_bf16 nor AMX\n");
        return 77;
    }
    Suite *s = suite_create("bf16");
    TCase *tc = tcase_create("bf16");
    tcase_set_timeout(tc, 1800);
    tcase_add_test(tc, cpu_precisions);
    tcase_add_test(tc, round_matches_reference);
    tcase_add_test(tc, digits_bf16);
    tcase_add_test(tc, digits_int8_bf16);
    tcase_add_loop_test(tc, golden_bf16, 0, (int)(sizeof goldens / sizeof *goldens));
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
