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

/* Calibrates m (then freed) with co on n inputs of h x w, in forwards of at
 * most bs (logits: room for bs rows), and writes the INT8 file to
 * out_path(). Returns how many layers the calibration saw. */
static int calibrate_to_file(vm_model *m, const vm_calib_opts *co, const float *x, int n, int bs, int h, int w, float *logits) {
    const size_t per = (size_t)3 * h * w;
    vm_calib *c = vm_calib_begin(m, co);
    for (int b = 0; b < n; b += bs)
        ck_assert(vm_forward(m, x + (size_t)b * per, b + bs <= n ? bs : n - b, h, w, logits) == 0);
    const int layers = vm_calib_layers(c);
    char err[512];
    ck_assert_msg(vm_calib_write(c, out_path(), NULL, err, sizeof err) == 0, "%s", err);
    vm_calib_free(c);
    vm_model_free(m);
    return layers;
}

/* INT8 logits (B x C) against the FP32 reference, with the bounds:
 * where exact (digits) every argmax kept and mean cosine >= 0.9999, else
 * (random-weight goldens) mean cosine >= 0.99. */
static void check_int8_logits(const char *what, const float *logits, const vm_npy *ref, int B, int C, int exact) {
    int agree;
    double cosv = tmean_cosine(logits, ref->data, B, C, &agree);
    fprintf(stderr, "  %s: mean logit cosine %.6f, argmax agreement %d/%d\n", what, cosv, agree, B);
    if (exact) {
        ck_assert_int_eq(agree, B);
        ck_assert_msg(cosv >= 0.9999, "%s: mean cosine %.6f", what, cosv);
    } else {
        ck_assert_msg(cosv >= 0.99, "%s: mean cosine %.5f", what, cosv);
    }
}

START_TEST(digits_int8) {
    vm_model *m = tload_model(tdata("digits/model.pth"));
    float *calib, *test;
    tdigits_images(&calib, &test);
    char err[512];
    vm_calib_opts co = {VM_CALIB_MINMAX, 99.99, NULL, 0, 0, 0, 0};
    float *logits = malloc(200 * 10 * sizeof(float));
    ck_assert_int_ge(calibrate_to_file(m, &co, calib, 100, 8, 32, 32, logits), 20);

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
    /* the classifier head by default: s8 storage with a scale per row, no
     * input scale, so it is dequantised at load and computed in FP32 (it
     * was written FP32 from 57dd2e3 until session 8) */
    const vm_ckpt_tensor *hw = vm_checkpoint_find(&ck, "classifier.head.weight");
    ck_assert(hw != NULL && hw->dtype == PK_DT_I8);
    ck_assert(vm_checkpoint_find(&ck, "classifier.head.weight_scale") != NULL);
    ck_assert(vm_checkpoint_find(&ck, "classifier.head.input_scale") == NULL);
    vm_checkpoint_close(&ck);
    vm_model *q = tload_model(out_path());
    ck_assert(q->quantized);
    ck_assert(q->q_head == NULL && (q->head_w || q->f_head)); /* FP32 compute (maybe packed) */
    ck_assert(vm_forward(q, test, 200, 32, 32, logits) == 0);
    vm_npy ref;
    tload(&ref, tdata("digits/ref_logits.npy"));
    check_int8_logits("digits INT8", logits, &ref, 200, 10, 1);
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
    vm_calib_opts co = {VM_CALIB_MINMAX, 99.99, NULL, 0, 0, 0, 0};
    calibrate_to_file(m, &co, in.data, B, B, H, W, logits);
    vm_model *q = tload_model(out_path());
    ck_assert(vm_forward(q, in.data, B, H, W, logits) == 0);
    char what[64];
    snprintf(what, sizeof what, "%s INT8", cfg);
    check_int8_logits(what, logits, &ref, B, C, 0);
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
    vm_calib_opts co = {VM_CALIB_MINMAX, 99.99, NULL, 0, 0, 1, 0};
    float *logits = malloc(200 * 10 * sizeof(float));
    calibrate_to_file(m, &co, in.data, 100, 100, 32, 32, logits); /* on half the test inputs */
    vm_model *q = tload_model(out_path());
    ck_assert(q->pe_conv1.w8 != NULL); /* really INT8 convolutions */
    ck_assert(vm_forward(q, in.data, 200, 32, 32, logits) == 0);
    int agree;
    double cosv = tmean_cosine(logits, ref.data, 200, 10, &agree);
    fprintf(stderr, "  digits INT8 with INT8 convolutions: mean logit cosine %.6f, argmax agreement %d/200\n", cosv, agree);
    /* measured 0.9977 / 198 until session 6, 0.999991 / 200 since #12's
     * INT8 convolution rework (exact zero-point border, s32 sums finished in
     * float; the INT8 convolutions do run: the logits differ from the
     * FP32-convolution file's); 0.999990 / 200 once the head is s8-stored
     * again (session 8). The raw-pixel conv still costs accuracy on
     * other data, which is why it is opt-in; the bound checks the path
     * works, not the default. */
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
    vm_calib_opts co = {VM_CALIB_MINMAX, 99.99, NULL, 0, 0, 0, 0};
    float logits[20];
    calibrate_to_file(m, &co, in.data, 2, 2, 64, 64, logits);
    char err[512];
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

/* Dynamic INT8 (calibrate --dynamic): the per-row quantization and the
 * dequantization in every kernel table give the scalar reference's bits
 * (the same float operations, one fused multiply-add each); the reference
 * itself against its definition in double; and oneDNN's bare s32 product
 * against integer arithmetic, exactly. */
START_TEST(dynamic_rows_match_reference) {
    const size_t M = 9;
    const int K = 37, ld = 41, N = 35, ldc = 39;
    float *x = malloc(M * ld * sizeof(float));
    for (size_t i = 0; i < M * ld; i++) x[i] = (float)((int)(i * 7919 % 1000) - 400) * 0.0137f;
    for (int k = 0; k < K; k++) {
        x[1 * ld + k] = 0.0f;                          /* all zero: scale 1, zp 0 */
        x[2 * ld + k] = 0.5f + 0.01f * k;              /* positive only: zp 0 */
        x[3 * ld + k] = -0.5f - 0.01f * k;             /* negative only: zp 255 */
    }
    x[4 * ld + 5] = 1e6f;                               /* one outlier */
    uint8_t *want = malloc(M * K), *got = malloc(M * K);
    float ws[9], gs[9];
    int32_t wz[9], gz[9];
    const vm_kernel_table *ref = vm_kernels_scalar();
    ref->quantize_rows_u8(want, ws, wz, x, M, K, ld);
    for (size_t r = 0; r < M; r++) {
        double lo = 0, hi = 0;
        for (int k = 0; k < K; k++) lo = fmin(lo, x[r * ld + k]), hi = fmax(hi, x[r * ld + k]);
        double sc = hi > lo ? (hi - lo) / 255 : 1;
        ck_assert_msg(fabs(ws[r] - sc) <= 1e-6 * sc, "row %zu scale %g, want %g", r, (double)ws[r], sc);
        ck_assert_msg(abs(wz[r] - (int)nearbyint(-lo / sc)) <= 1 && wz[r] >= 0 && wz[r] <= 255, "row %zu zp %d", r, wz[r]);
        for (int k = 0; k < K; k++) {
            double q = nearbyint(x[r * ld + k] / ws[r]) + wz[r];
            q = q < 0 ? 0 : q > 255 ? 255 : q;
            ck_assert_msg(fabs(want[r * K + k] - q) <= 1, "row %zu col %d: %d, want %g", r, k, want[r * K + k], q);
        }
    }
    ck_assert_int_eq(wz[1], 0);
    ck_assert(ws[1] == 1.0f);
    ck_assert_int_eq(wz[2], 0);
    ck_assert_int_eq(wz[3], 255);
    /* dequantization: acc from the rows above and random s8 weights */
    int8_t *w = malloc((size_t)N * K);
    int32_t *acc = malloc(M * N * sizeof(int32_t)), *wsum = malloc(N * sizeof(int32_t));
    float *wsc = malloc(N * sizeof(float)), *bias = malloc(N * sizeof(float));
    for (int n = 0; n < N; n++) {
        wsum[n] = 0;
        for (int k = 0; k < K; k++) wsum[n] += w[(size_t)n * K + k] = (int8_t)((n * 31 + k * 17) % 255 - 127);
        wsc[n] = 0.001f * (1 + n % 7);
        bias[n] = 0.1f * (n % 5) - 0.2f;
    }
    for (size_t r = 0; r < M; r++)
        for (int n = 0; n < N; n++) {
            int32_t a = 0;
            for (int k = 0; k < K; k++) a += (int32_t)want[r * K + k] * w[(size_t)n * K + k];
            acc[r * N + n] = a;
        }
    float *cw = malloc(M * ldc * sizeof(float)), *cg = malloc(M * ldc * sizeof(float));
    for (int mode = 0; mode < 4; mode++) { /* bias or not, accumulate or not */
        const float *b = mode & 1 ? bias : NULL;
        int accu = mode >> 1;
        for (size_t i = 0; i < M * ldc; i++) cw[i] = 0.25f * (float)(i % 9);
        ref->dequant_rows(cw, ldc, acc, M, N, ws, wz, wsc, wsum, b, accu);
        for (size_t r = 0; r < M; r++)
            for (int n = 0; n < N; n++) {
                double v = 0;
                for (int k = 0; k < K; k++) v += ((double)want[r * K + k] - wz[r]) * w[(size_t)n * K + k];
                v = v * ws[r] * wsc[n] + (b ? b[n] : 0) + (accu ? 0.25 * (double)((r * ldc + n) % 9) : 0);
                ck_assert_msg(fabs(cw[r * ldc + n] - v) <= 1e-5 * fmax(1, fabs(v)), "dequant %zu,%d: %g want %g", r, n,
                              (double)cw[r * ldc + n], v);
            }
        for (const vm_kernel_table *const *t = vm_kernels_available(); *t; t++) {
            (*t)->quantize_rows_u8(got, gs, gz, x, M, K, ld);
            ck_assert_msg(memcmp(want, got, M * K) == 0 && memcmp(ws, gs, sizeof ws) == 0 && memcmp(wz, gz, sizeof wz) == 0,
                          "%s: quantize_rows_u8 differs from the scalar reference", (*t)->name);
            for (size_t i = 0; i < M * ldc; i++) cg[i] = 0.25f * (float)(i % 9);
            (*t)->dequant_rows(cg, ldc, acc, M, N, ws, wz, wsc, wsum, b, accu);
            ck_assert_msg(memcmp(cw, cg, M * ldc * sizeof(float)) == 0, "%s: dequant_rows (mode %d) differs from the scalar reference",
                          (*t)->name, mode);
        }
    }
    /* oneDNN's s32 product on those rows: exact */
    char err[256];
    vm_qmatmul *qm = vm_qmatmul_create_s32_x(NULL, (int)M, N, K, K, w, err, sizeof err);
    ck_assert_msg(qm != NULL, "%s", err);
    int32_t *acc2 = malloc(M * N * sizeof(int32_t));
    ck_assert_int_eq(vm_qmatmul_run_s32(qm, want, acc2), 0);
    ck_assert_msg(memcmp(acc, acc2, M * N * sizeof(int32_t)) == 0, "oneDNN's s32 product differs from integer arithmetic");
    vm_qmatmul_free(qm);
    free(x); free(want); free(got); free(w); free(acc); free(acc2); free(wsum); free(wsc); free(bias); free(cw); free(cg);
}
END_TEST

/* calibrate --dynamic: the file marks the linear layers dynamic (no input
 * ranges), they load as dynamic INT8 layers, and the models stay as close
 * to FP32 as the static ones must be: digits keeps every argmax with mean
 * logit cosine >= 0.9999, the random goldens >= 0.99 (the bounds). */
START_TEST(int8_dynamic) {
    const char *cfg = _i == 0 ? "digits" : goldens[_i - 1];
    vm_model *m = tload_model(tdata("%s/model.pth", cfg));
    vm_npy in, ref;
    tload(&in, tdata(_i == 0 ? "%s/test_input.npy" : "%s/input.npy", cfg));
    tload(&ref, tdata(_i == 0 ? "%s/ref_logits.npy" : "%s/logits.npy", cfg));
    int B = (int)in.shape[0], H = (int)in.shape[2], W = (int)in.shape[3], C = (int)ref.shape[1];
    float *logits = malloc((size_t)B * C * sizeof(float));
    vm_calib_opts co = {VM_CALIB_MINMAX, 99.99, NULL, 0, 0, 0, 1};
    const int n = B < 100 ? B : 100;
    calibrate_to_file(m, &co, in.data, n, n, H, W, logits);
    char err[512];
    vm_checkpoint ck;
    ck_assert_msg(vm_checkpoint_open(&ck, out_path(), NULL, err, sizeof err) == 0, "%s", err);
    ck_assert(vm_checkpoint_find(&ck, "layers.0.blocks.0.op.in_proj.input_dynamic") != NULL);
    ck_assert(vm_checkpoint_find(&ck, "layers.0.blocks.0.op.in_proj.input_scale") == NULL);
    ck_assert(vm_checkpoint_find(&ck, "layers.0.blocks.0.op.in_proj.weight_scale") != NULL);
    vm_checkpoint_close(&ck);
    vm_model *q = tload_model(out_path());
    ck_assert(q->quantized && q->st[0].blocks[0].q_in && q->st[0].blocks[0].q_in->dynamic);
    ck_assert(vm_forward(q, in.data, B, H, W, logits) == 0);
    char what[64];
    snprintf(what, sizeof what, "%s dynamic INT8", cfg);
    check_int8_logits(what, logits, &ref, B, C, _i == 0);
    vm_model_free(q);
    vm_npy_free(&in);
    vm_npy_free(&ref);
    free(logits);
    unlink(out_path());
}
END_TEST

/* `calibrate --report` says what the written file does with each layer,
 * checked row by row against the file and the model loaded from it: a
 * skipped layer is FP32 in the file; "s8 storage, FP32 compute" is an s8
 * weight without input scale, dequantised at load (the loaded convolution
 * has FP32 weights and no INT8 ones); a row without a note runs in INT8
 * (an input scale). Case 0: defaults with --skip layers.0.downsample;
 * case 1: --int8-convs --int8-head. */
START_TEST(report_says_what_runs) {
    vm_model *m = tload_model(tdata("digits/model.pth"));
    float *calib, *test;
    tdigits_images(&calib, &test);
    const char *skip[] = {"layers.0.downsample"};
    vm_calib_opts co = {VM_CALIB_MINMAX, 99.99, _i ? NULL : skip, _i ? 0 : 1, _i, _i, 0};
    vm_calib *c = vm_calib_begin(m, &co);
    ck_assert(c != NULL);
    float *logits = malloc(16 * 10 * sizeof(float));
    ck_assert(vm_forward(m, calib, 16, 32, 32, logits) == 0);
    char *rep = NULL, err[512];
    size_t replen = 0;
    FILE *f = open_memstream(&rep, &replen);
    ck_assert(f != NULL);
    vm_calib_report(c, f);
    fclose(f);
    ck_assert_msg(vm_calib_write(c, out_path(), NULL, err, sizeof err) == 0, "%s", err);
    vm_calib_free(c);
    vm_model_free(m);
    vm_checkpoint ck;
    ck_assert_msg(vm_checkpoint_open(&ck, out_path(), NULL, err, sizeof err) == 0, "%s", err);
    int rows = 0, storage = 0, skipped = 0, int8 = 0, seen_pe = 0, seen_head = 0;
    for (char *line = strchr(rep, '\n'); line && line[1]; line = strchr(line + 1, '\n')) { /* after the header */
        char name[128], nm[160];
        ck_assert(sscanf(line + 1, "%127s", name) == 1);
        const char *end = strchr(line + 1, '\n'), *note = strchr(line + 1, '(');
        if (note && end && note > end) note = NULL;
        snprintf(nm, sizeof nm, "%s.weight", name);
        const vm_ckpt_tensor *w = vm_checkpoint_find(&ck, nm);
        snprintf(nm, sizeof nm, "%s.input_scale", name);
        const int has_scale = vm_checkpoint_find(&ck, nm) != NULL;
        ck_assert_msg(w != NULL, "report row '%s': no %s.weight in the file", name, name);
        rows++;
        if (note && !strncmp(note, "(skipped: FP32 weights and compute)", 35)) {
            skipped++;
            ck_assert_msg(w->dtype == PK_DT_F32 && !has_scale, "%s: reported skipped, but s8 or INT8 in the file", name);
        } else if (note && !strncmp(note, "(s8 storage, FP32 compute;", 26)) {
            storage++;
            ck_assert_msg(w->dtype == PK_DT_I8 && !has_scale, "%s: reported s8 storage / FP32 compute, file disagrees", name);
        } else {
            ck_assert_msg(!note, "%s: unknown note %.60s", name, note);
            int8++;
            ck_assert_msg(w->dtype == PK_DT_I8 && has_scale, "%s: reported INT8, but no s8 weight with an input scale", name);
        }
        if (!strcmp(name, "patch_embed.0")) {
            seen_pe = 1;
            ck_assert_msg(_i ? !note : note && strstr(note, "INT8 with --int8-convs"), "patch_embed.0 note: %.60s", note ? note : "none");
        }
        if (!strcmp(name, "classifier.head")) {
            seen_head = 1;
            ck_assert_msg(_i ? !note : note && strstr(note, "INT8 with --int8-head"), "classifier.head note: %.60s", note ? note : "none");
        }
        if (!strncmp(name, "layers.0.downsample", 19)) ck_assert_msg(_i ? !note : note && strstr(note, "skipped"), "%s", name);
    }
    vm_checkpoint_close(&ck);
    fprintf(stderr, "  report (%s): %d rows: %d INT8, %d s8 storage / FP32 compute, %d skipped\n",
            _i ? "--int8-convs --int8-head" : "defaults, --skip layers.0.downsample", rows, int8, storage, skipped);
    ck_assert(seen_pe && seen_head && int8 > 0);
    if (_i) ck_assert_int_eq(storage + skipped, 0);
    else ck_assert(storage >= 2 && skipped >= 1);
    /* and as loaded: what the note says runs */
    vm_model *q = tload_model(out_path());
    if (_i) ck_assert(q->pe_conv1.w8 != NULL && q->pe_conv1.w == NULL && q->q_head != NULL);
    else ck_assert(q->pe_conv1.w8 == NULL && (q->pe_conv1.w || q->pe_conv1.x) && q->q_head == NULL && (q->head_w || q->f_head));
    vm_model_free(q);
    free(rep), free(logits), free(calib), free(test);
    unlink(out_path());
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
    tcase_add_loop_test(tc, report_says_what_runs, 0, 2);
    tcase_add_loop_test(tc, golden_int8, 0, 3);
    tcase_add_test(tc, dynamic_rows_match_reference);
    tcase_add_loop_test(tc, int8_dynamic, 0, 4);
    suite_add_tcase(s, tc);
    return s;
}
