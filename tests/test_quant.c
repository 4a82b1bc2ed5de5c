/* test_quant.c - INT8: the calibration workflow end to end, in-process.
 *
 * Thresholds are the issue's: on the real digits model, calibrated on its
 * 100 calib/ images, the test set keeps top-1 equal to FP32 and every
 * argmax, with mean logit cosine >= 0.9999 against the FP32 reference (a
 * fake-quant reference reaches 0.99998); the random-weight golden models,
 * calibrated on their own inputs, keep mean logit cosine >= 0.99. */
#define _GNU_SOURCE /* memmem */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "model/model.h"
#include "quant.h"
#include "loaders/checkpoint.h"
#include "simd/kernels.h"

static const char *out_path(void) {
    static char p[64];
    snprintf(p, sizeof p, "/tmp/vmtest_q_%d.safetensors", (int)getpid());
    return p;
}

START_TEST(digits_int8) {
    vm_model *m = tload_model(tdata("digits/model.pth"));
    const size_t per = 3 * 32 * 32;
    float *calib, *test;
    tdigits_images(&calib, &test);
    char err[512];
    vm_calib_opts co = {VM_CALIB_MINMAX, 99.99, NULL, 0, 0, 0};
    vm_calib *c = vm_calib_begin(m, &co);
    float *logits = malloc(200 * 10 * sizeof(float));
    for (int b = 0; b < 100; b += 8)
        ck_assert(vm_forward(m, calib + (size_t)b * per, b + 8 <= 100 ? 8 : 100 - b, 32, 32, logits) == 0);
    ck_assert_int_ge(vm_calib_layers(c), 20);
    ck_assert_msg(vm_calib_write(c, out_path(), NULL, err, sizeof err) == 0, "%s", err);
    vm_calib_free(c);
    vm_model_free(m);

    /* x_proj and dt_proj are stored as s8 rows with a scale per row (a
     * quarter of their FP32 bytes) and dequantised at load */
    vm_checkpoint ck;
    ck_assert_msg(vm_checkpoint_open(&ck, out_path(), NULL, err, sizeof err) == 0, "%s", err);
    const vm_ckpt_tensor *xp = vm_checkpoint_find(&ck, "layers.0.blocks.0.op.x_proj_weight");
    const vm_ckpt_tensor *xs = vm_checkpoint_find(&ck, "layers.0.blocks.0.op.x_proj_weight_scale");
    const vm_ckpt_tensor *dp = vm_checkpoint_find(&ck, "layers.0.blocks.0.op.dt_projs_weight");
    ck_assert(xp && xs && dp && vm_checkpoint_find(&ck, "layers.0.blocks.0.op.dt_projs_weight_scale"));
    ck_assert_int_eq(xp->dtype, PK_DT_I8);
    ck_assert_int_eq(dp->dtype, PK_DT_I8);
    ck_assert_int_eq(xs->ndim, 1);
    ck_assert_int_eq(xs->shape[0], xp->shape[0] * xp->shape[1]);
    vm_checkpoint_close(&ck);
    vm_model *q = tload_model(out_path());
    ck_assert(q->quantized);
    ck_assert(vm_forward(q, test, 200, 32, 32, logits) == 0);
    vm_npy ref;
    tload(&ref, tdata("digits/ref_logits.npy"));
    int agree;
    double cosv = tmean_cosine(logits, ref.data, 200, 10, &agree);
    fprintf(stderr, "  digits INT8: mean logit cosine %.6f, argmax agreement %d/200\n", cosv, agree);
    ck_assert_int_eq(agree, 200);
    ck_assert_msg(cosv >= 0.9999, "mean cosine %.6f", cosv);
    /* a second load of the same file gives the same logits, bit for bit */
    vm_model *q2 = tload_model(out_path());
    float *l2 = malloc(200 * 10 * sizeof(float));
    ck_assert(vm_forward(q2, test, 200, 32, 32, l2) == 0);
    ck_assert(memcmp(logits, l2, 200 * 10 * sizeof(float)) == 0);
    ck_assert_int_ne(vm_model_save(q2, out_path(), "f32", NULL), 0); /* INT8 models are not re-saved */
    vm_model_free(q2);
    vm_model_free(q);
    vm_npy_free(&ref);
    free(calib); free(test); free(logits); free(l2);
    unlink(out_path());
}
END_TEST

static const char *goldens[] = {"v0_ds16", "v2_s2", "v2_s1"};

START_TEST(golden_int8) {
    const char *cfg = goldens[_i];
    vm_model *m = tload_model(tdata("%s/model.pth", cfg));
    vm_npy in, ref;
    tload(&in, tdata("%s/input.npy", cfg));
    tload(&ref, tdata("%s/logits.npy", cfg));
    int B = (int)in.shape[0], H = (int)in.shape[2], W = (int)in.shape[3], C = (int)ref.shape[1];
    float *logits = malloc((size_t)B * C * sizeof(float));
    vm_calib_opts co = {VM_CALIB_MINMAX, 99.99, NULL, 0, 0, 0};
    vm_calib *c = vm_calib_begin(m, &co);
    ck_assert(vm_forward(m, in.data, B, H, W, logits) == 0);
    char err[512];
    ck_assert_msg(vm_calib_write(c, out_path(), NULL, err, sizeof err) == 0, "%s", err);
    vm_calib_free(c);
    vm_model_free(m);
    vm_model *q = tload_model(out_path());
    ck_assert(vm_forward(q, in.data, B, H, W, logits) == 0);
    int agree;
    double cosv = tmean_cosine(logits, ref.data, B, C, &agree);
    fprintf(stderr, "  %s INT8: mean logit cosine %.5f\n", cfg, cosv);
    ck_assert_msg(cosv >= 0.99, "%s: mean cosine %.5f", cfg, cosv);
    vm_model_free(q);
    vm_npy_free(&in);
    vm_npy_free(&ref);
    free(logits);
    unlink(out_path());
}
END_TEST

/* The INT8 convolution path (opt-in): digits still keeps every argmax. */
START_TEST(digits_int8_convs) {
    vm_model *m = tload_model(tdata("digits/model.pth"));
    vm_npy in, ref;
    tload(&in, tdata("digits/test_input.npy"));
    tload(&ref, tdata("digits/ref_logits.npy"));
    vm_calib_opts co = {VM_CALIB_MINMAX, 99.99, NULL, 0, 0, 1};
    vm_calib *c = vm_calib_begin(m, &co);
    float *logits = malloc(200 * 10 * sizeof(float));
    ck_assert(vm_forward(m, in.data, 100, 32, 32, logits) == 0); /* calibrate on half the test inputs */
    char err[512];
    ck_assert_msg(vm_calib_write(c, out_path(), NULL, err, sizeof err) == 0, "%s", err);
    vm_calib_free(c);
    vm_model_free(m);
    vm_model *q = tload_model(out_path());
    ck_assert(q->pe_conv1.w8 != NULL); /* really INT8 convolutions */
    ck_assert(vm_forward(q, in.data, 200, 32, 32, logits) == 0);
    int agree;
    double cosv = tmean_cosine(logits, ref.data, 200, 10, &agree);
    fprintf(stderr, "  digits INT8 with INT8 convolutions: mean logit cosine %.6f, argmax agreement %d/200\n", cosv, agree);
    /* measured 0.9977 / 198: the raw-pixel conv costs accuracy, which is
     * why it is opt-in; the bound checks the path works, not the default */
    ck_assert_int_ge(agree, 196);
    ck_assert_msg(cosv >= 0.99, "mean cosine %.6f", cosv);
    vm_model_free(q);
    vm_npy_free(&in);
    vm_npy_free(&ref);
    free(logits);
    unlink(out_path());
}
END_TEST

/* A quantized file that lost part of a layer (here: a weight scale) is
 * refused with the missing tensor named. */
START_TEST(int8_file_mismatch) {
    vm_model *m = tload_model(tdata("v2_s1/model.pth"));
    vm_npy in;
    tload(&in, tdata("v2_s1/input.npy"));
    vm_calib_opts co = {VM_CALIB_MINMAX, 99.99, NULL, 0, 0, 0};
    vm_calib *c = vm_calib_begin(m, &co);
    float logits[20];
    ck_assert(vm_forward(m, in.data, 2, 64, 64, logits) == 0);
    char err[512];
    ck_assert(vm_calib_write(c, out_path(), NULL, err, sizeof err) == 0);
    vm_calib_free(c);
    vm_model_free(m);
    vm_npy_free(&in);
    size_t n;
    uint8_t *b = tslurp(out_path(), &n);
    const char *key = "layers.1.blocks.0.mlp.fc2.weight_scale";
    char *hit = memmem(b, n, key, strlen(key));
    ck_assert(hit != NULL);
    hit[strlen(key) - 1] = 'X'; /* same length: offsets stay valid */
    FILE *f = fopen(out_path(), "wb");
    ck_assert(fwrite(b, 1, n, f) == n);
    fclose(f);
    free(b);
    ck_assert(vm_model_load(out_path(), NULL, err, sizeof err) == NULL);
    ck_assert_msg(strstr(err, "missing key 'layers.1.blocks.0.mlp.fc2.weight_scale'") != NULL, "%s", err);
    unlink(out_path());
}
END_TEST

/* Every kernel table quantizes exactly like the scalar reference. */
START_TEST(quantize_matches_reference) {
    const size_t M = 7;
    const int K = 45, ld = 50;
    float *x = malloc(M * ld * sizeof(float));
    for (size_t i = 0; i < M * ld; i++) x[i] = (float)((int)(i * 7919 % 1000) - 500) * 0.013f;
    x[3] = 1e9f;
    x[4] = -1e9f;
    uint8_t *want = malloc(M * K), *got = malloc(M * K);
    vm_kernels_scalar()->quantize_u8(want, x, M, K, ld, 1.0f / 0.05f, 117.0f);
    for (const vm_kernel_table *const *t = vm_kernels_available(); *t; t++) {
        (*t)->quantize_u8(got, x, M, K, ld, 1.0f / 0.05f, 117.0f);
        ck_assert_msg(memcmp(want, got, M * K) == 0, "%s differs from the scalar reference", (*t)->name);
    }
    ck_assert_int_eq(want[3], 255);
    ck_assert_int_eq(want[4], 0);
    free(x); free(want); free(got);
}
END_TEST

Suite *suite_quant(void) {
    Suite *s = suite_create("quant");
    TCase *tc = tcase_create("quant");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, quantize_matches_reference);
    tcase_add_test(tc, digits_int8);
    tcase_add_test(tc, digits_int8_convs);
    tcase_add_test(tc, int8_file_mismatch);
    tcase_add_loop_test(tc, golden_int8, 0, 3);
    suite_add_tcase(s, tc);
    return s;
}
