/* test_int8_dense.c - INT8 for the dense-prediction models (#12, #13).
 *
 * Kernels: the INT8 convolution (with and without the fused ReLU) and the
 * INT8 matmul against scalar references, bias included: oneDNN 2.x adds the
 * f32 bias before its output scales, so dnnl_compat hands it bias/scale; a
 * regression would be off by the whole bias. Tolerance 1e-4*max(1,|ref|):
 * the s32 sums are exact, only the f32 scaling rounds. Weights stay within
 * +-63: without VNNI oneDNN's u8 x s8 pair sums saturate at 16 bits with
 * full-range s8 (a limit of those CPUs, not of this code).
 *
 * Models: the golden segmentation and detection checkpoints (random
 * weights) calibrated on the golden photos through the task pipelines,
 * written, loaded back and run like `segment` / `detect`:
 * - nothing quantized (every layer skipped) gives FP32's results exactly:
 *   the INT8 file keeps the heads bit for bit;
 * - segmentation, backbone and UPerHead INT8: pixel agreement with FP32 and
 *   agreement on the pixels whose FP32 top-2 logit margin is clear (see
 *   SEG_* below for the measured values the thresholds come from);
 * - the INT8 UPerHead on the op interface: off-host test backend
 *   bit-identical to the CPU one; a backend without qconv_make (CUDA)
 *   refuses it with "INT8 heads run on the CPU only";
 * - detection, INT8 backbone + FP32 heads: detections matched to FP32 ones
 *   (same label, box IoU >= 0.9), see DET_*. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "core/dnnl_compat.h"
#include "image/decode_cv.h"
#include "model/model.h"
#include "net/dataset_meta.h"
#include "net/detector.h"
#include "net/segmentor.h"
#include "net/heads/upernet.h"
#include "ops/backend.h"
#include "quant.h"

/* Measured with minmax calibration on the four photos (bench/RESULTS.md
 * "INT8 segmentation and detection"), after the INT8 convolutions moved to
 * s32 sums with the zero point, scales and bias applied in double
 * (2026-11-30): overall pixel agreement 0.797 (china), 0.818 (flower),
 * 0.829 (china_crop), 0.909 (mini) on an AMD EPYC (oneDNN's
 * avx512_core_vnni kernels); 0.801 / 0.818 / 0.827 / 0.910 on the H200
 * host's Sapphire Rapids (AMX kernels). The random-weight head's 150 logits
 * sit close together (FP32 top-2 margin under 0.5 on 28-59 % of the
 * pixels), so the ~1 % INT8 error flips many argmaxes there. Where FP32's
 * margin is >= 1.0 the agreement is 0.993 / 0.999 / 0.998 / 0.988, and
 * 1.0000 on every photo at >= 2.0 (printed by the test). The thresholds
 * leave room for other CPUs' kernels (aarch64's reference GEMMs round
 * differently): a wrong scale, bias or layout falls far below them (before
 * the bias fix the overall agreement was 0.10). */
#define SEG_MIN_AGREE 0.75
#define SEG_MARGIN 1.0f
#define SEG_MIN_AGREE_CLEAR 0.98
/* Detection, INT8 backbone + FP32 heads, same date and calibration: 18 of
 * 23 (china) and 6 of 8 (flower_crop) FP32 detections matched. The golden
 * heads are random with scores just above the 0.05 threshold, and RPN
 * top-k, NMS and the threshold are discontinuous: percentile, entropy and
 * SmoothQuant calibration and keeping any one kind of linear layer FP32
 * all land between 15/23 and 19/23 (RESULTS.md). Asserted: at least 60 %
 * matched on each photo. After merging main (its backbone's FP32 rounding
 * changed: x_proj/dt_proj as matmul primitives, the scan's loop) the same
 * run gives 16/23 and 7/8, and segmentation 0.786 / 0.826 / 0.826 / 0.923
 * overall, >= 0.988 where the margin is >= 1 (2026-11-29). With the s32
 * INT8 convolutions (2026-11-30): 17/23 and 6/8, on both machines.
 * Session 8 (2026-12-07): calibrated on four held-out photos
 * (det_calib_photos) instead of the two golden ones it is measured on:
 * 18/23 (25 INT8 detections) and 6/8 (8), against 17/23 (23) and 6/8 (9)
 * calibrating on the goldens themselves in the same build (the held-out
 * figures equal bench/RESULTS.md's session-7 CLI run on those photos).
 * The bound is unchanged: held-out calibration costs nothing here. */
#define DET_MIN_MATCHED 0.6

static const char *tmp_out(const char *tag) {
    static char p[2][96];
    static int k;
    k ^= 1;
    snprintf(p[k], sizeof p[k], "/tmp/vmtest_i8d_%s_%d.safetensors", tag, (int)getpid());
    return p[k];
}

/* ---- kernels ------------------------------------------------------------ */

/* The exact s32 sum of an INT8 convolution (stride 1, pad k/2, padding a
 * real 0) at output pixel (y, x), channel o, on u8 input src (H x W x Cin,
 * zero point zp) and OIHW s8 weights w. */
static long qconv_acc_ref(const uint8_t *src, const int8_t *w, int H, int W, int Cin, int k, int zp, int y, int x, int o) {
    long acc = 0;
    for (int c = 0; c < Cin; c++)
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++) {
                int yy = y + i - k / 2, xx = x + j - k / 2;
                if (yy < 0 || yy >= H || xx < 0 || xx >= W) continue;
                acc += (long)(src[((size_t)yy * W + xx) * Cin + c] - zp) * w[(((size_t)o * Cin + c) * k + i) * k + j];
            }
    return acc;
}

START_TEST(qconv_bias_relu_matches_reference) {
    const int Cin = 24, H = 7, W = 9, Cout = 10, k = _i == 0 ? 1 : 3, relu = 1;
    char err[256];
    uint8_t *src = malloc((size_t)Cin * H * W);
    int8_t *w = malloc((size_t)Cout * Cin * k * k);
    float ws[10], bias[10], *dst = malloc(sizeof(float) * Cout * H * W);
    uint64_t st = 12345;
    for (int i = 0; i < Cin * H * W; i++) st = st * 6364136223846793005ull + 1, src[i] = (uint8_t)(st >> 56);
    for (int i = 0; i < Cout * Cin * k * k; i++) st = st * 6364136223846793005ull + 1, w[i] = (int8_t)((int)(st >> 57) - 63);
    const float as = 0.02f;
    const int zp = 100;
    for (int o = 0; o < Cout; o++) ws[o] = 0.004f * (o + 1), bias[o] = (o - 4) * 1.5f;
    for (int r = 0; r <= relu; r++) {
        vm_conv_prim *p = vm_qconv_create_relu_x(NULL, 1, Cin, H, W, Cout, k, 1, k / 2, w, ws, as, zp, bias, r, err, sizeof err);
        ck_assert_msg(p != NULL, "%s", err);
        ck_assert(vm_conv_run(p, (const float *)src, dst) == 0);
        double worst = 0;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int o = 0; o < Cout; o++) {
                    long acc = qconv_acc_ref(src, w, H, W, Cin, k, zp, y, x, o);
                    double ref = (double)acc * as * ws[o] + bias[o];
                    if (r && ref < 0) ref = 0;
                    double e = fabs(dst[(y * W + x) * Cout + o] - ref) / fmax(1.0, fabs(ref));
                    worst = fmax(worst, e);
                }
        ck_assert_msg(worst <= 1e-4, "INT8 %dx%d conv (relu %d): relative error %g vs the scalar reference", k, k, r, worst);
        vm_conv_free(p);
    }
    free(src);
    free(w);
    free(dst);
}
END_TEST

/* An INT8 convolution writes its output and nothing after it. oneDNN 2.6's
 * AMX kernel for 1x1 convolutions with a source zero point
 * (jit_1x1:avx512_core_amx_int8) wrote whole 16-pixel tiles: 12 pixels
 * past the end of a 6x6 output, corrupting the heap ("corrupted size vs.
 * prev_size" in seg_int8_agreement on Sapphire Rapids). The shapes are the
 * PPM and head convolutions' small maps; the guard after dst must stay
 * untouched, and the values must match the reference. On CPUs without AMX
 * the old code passed too: this test fails before the fix on AMX only. */
START_TEST(qconv_writes_only_its_output) {
    static const int shp[][5] = {/* Cin, H, W, Cout, k */
                                 {64, 6, 6, 32, 1},  {64, 6, 6, 512, 1}, {64, 1, 1, 32, 1}, {64, 2, 7, 32, 1},
                                 {192, 3, 3, 32, 3}, {32, 5, 1, 150, 1}, {48, 7, 9, 19, 3}};
    const size_t guard = 1 << 16;
    char err[256];
    uint64_t st = 777;
    for (size_t t = 0; t < sizeof shp / sizeof shp[0]; t++) {
        const int Cin = shp[t][0], H = shp[t][1], W = shp[t][2], Cout = shp[t][3], k = shp[t][4], zp = 81;
        size_t nin = (size_t)Cin * H * W, nw = (size_t)Cout * Cin * k * k, nout = (size_t)Cout * H * W;
        uint8_t *src = malloc(nin);
        int8_t *w = malloc(nw);
        float *ws = malloc(sizeof(float) * Cout), *dst = malloc(sizeof(float) * nout + guard);
        ck_assert(src && w && ws && dst);
        for (size_t i = 0; i < nin; i++) st = st * 6364136223846793005ull + 1, src[i] = (uint8_t)(st >> 56);
        for (size_t i = 0; i < nw; i++) st = st * 6364136223846793005ull + 1, w[i] = (int8_t)((int)(st >> 57) - 63);
        for (int o = 0; o < Cout; o++) ws[o] = 0.001f * (1 + o % 5);
        memset((char *)(dst + nout), 0x5A, guard);
        vm_conv_prim *p = vm_qconv_create_relu_x(NULL, 1, Cin, H, W, Cout, k, 1, k / 2, w, ws, 0.02f, zp, NULL, 0, err, sizeof err);
        ck_assert_msg(p != NULL, "%s", err);
        ck_assert(vm_conv_run(p, (const float *)src, dst) == 0);
        const unsigned char *g = (const unsigned char *)(dst + nout);
        for (size_t i = 0; i < guard; i++)
            ck_assert_msg(g[i] == 0x5A, "Cin %d %dx%d Cout %d k%d: byte %zu after the output overwritten", Cin, H, W, Cout, k, i);
        double worst = 0;
        for (size_t px = 0; px < (size_t)H * W; px++)
            for (int o = 0; o < Cout; o++) {
                long acc = qconv_acc_ref(src, w, H, W, Cin, k, zp, (int)(px / W), (int)(px % W), o);
                double ref = (double)acc * 0.02f * ws[o];
                worst = fmax(worst, fabs(dst[px * Cout + o] - ref) / fmax(1.0, fabs(ref)));
            }
        /* 1e-6: the same double arithmetic as the reference, rounded to float once */
        ck_assert_msg(worst <= 1e-6, "Cin %d %dx%d Cout %d k%d: relative error %g", Cin, H, W, Cout, k, worst);
        vm_conv_free(p);
        free(src), free(w), free(ws), free(dst);
    }
}
END_TEST

START_TEST(qmatmul_bias_matches_reference) {
    const int M = 13, N = 10, K = 40;
    char err[256];
    uint8_t *A = malloc((size_t)M * K);
    int8_t *w = malloc((size_t)N * K);
    float ws[10], bias[10], *C = malloc(sizeof(float) * M * N);
    uint64_t st = 99;
    for (int i = 0; i < M * K; i++) st = st * 6364136223846793005ull + 1, A[i] = (uint8_t)(st >> 56);
    for (int i = 0; i < N * K; i++) st = st * 6364136223846793005ull + 1, w[i] = (int8_t)((int)(st >> 57) - 63);
    for (int o = 0; o < N; o++) ws[o] = 0.003f * (o + 1), bias[o] = (o - 4) * 2.5f;
    vm_qmatmul *q = vm_qmatmul_create(M, N, K, K, N, w, ws, 0.05f, 7, bias, 0, 0, err, sizeof err);
    ck_assert_msg(q != NULL, "%s", err);
    ck_assert(vm_qmatmul_run(q, A, C) == 0);
    double worst = 0;
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            long acc = 0;
            for (int k = 0; k < K; k++) acc += (long)(A[m * K + k] - 7) * w[n * K + k];
            double ref = (double)acc * 0.05f * ws[n] + bias[n];
            worst = fmax(worst, fabs(C[m * N + n] - ref) / fmax(1.0, fabs(ref)));
        }
    ck_assert_msg(worst <= 1e-4, "INT8 matmul with bias: relative error %g vs the scalar reference", worst);
    vm_qmatmul_free(q);
    free(A);
    free(w);
    free(C);
}
END_TEST

/* ---- calibration of the golden models ---------------------------------- */

static const char *seg_photos[4];
static void seg_photo_paths(void) {
    seg_photos[0] = strdup(tdata("preprocess/china.jpg"));
    seg_photos[1] = strdup(tdata("preprocess/flower.jpg"));
    seg_photos[2] = strdup(tdata("seg_upernet/china_crop.png"));
    seg_photos[3] = strdup(tdata("seg_upernet/mini.png"));
}

/* Calibrate model_path on photos as `vmamba calibrate` does (task pipeline;
 * with_head: the UPerHead runs and its convolutions are observed). */
static void calibrate(const char *model_path, const char *const *photos, int n, int pad32, int sw, int sh, int with_head,
                      const char *const *skip, int nskip, const char *out) {
    char err[512];
    vm_model *m = vm_model_load(model_path, NULL, err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    vm_calib_opts co = {VM_CALIB_MINMAX, 99.99, skip, nskip, 0, 0, 0};
    /* through the public API, as `vmamba calibrate` does */
    vm_calib_dense *d = vm_calib_dense_new(m, pad32 ? VM_CALIB_TASK_DETECT : VM_CALIB_TASK_SEGMENT, sw, sh, with_head, err,
                                           sizeof err);
    ck_assert_msg(d != NULL, "%s", err);
    vm_calib *c = vm_calib_begin(m, &co);
    ck_assert(c != NULL);
    for (int i = 0; i < n; i++) ck_assert_msg(vm_calib_dense_image(d, c, photos[i], err, sizeof err) == 0, "%s", err);
    /* the class names and palette go into the metadata */
    char *meta = vm_calib_dense_metadata(d, model_path, err, sizeof err);
    ck_assert_msg(meta != NULL, "%s", err);
    ck_assert_msg(vm_calib_write(c, out, meta, err, sizeof err) == 0, "%s", err);
    free(meta);
    vm_calib_dense_free(d);
    vm_calib_free(c);
    vm_model_free(m);
}

typedef struct {
    int W, C;
    float *margin; /* FP32 top-2 margin per pixel */
} margins;

static void row_margin(void *user, int y, const float *row) {
    margins *mg = user;
    for (int x = 0; x < mg->W; x++) {
        const float *l = row + (size_t)x * mg->C;
        float a = -INFINITY, b = -INFINITY;
        for (int c = 0; c < mg->C; c++)
            if (l[c] > a) b = a, a = l[c];
            else if (l[c] > b) b = l[c];
        mg->margin[(size_t)y * mg->W + x] = a - b;
    }
}

/* Label maps of every photo with the FP32 and the INT8 segmentor; returns
 * the worst overall and clear-margin agreement. */
static void seg_agreement(const char *int8_path, double *worst_all, double *worst_clear, int exact) {
    char err[512];
    vm_segmentor *f = vm_segmentor_load(tdata("seg_upernet/model.pth"), err, sizeof err);
    ck_assert_msg(f != NULL, "%s", err);
    vm_segmentor *q = vm_segmentor_load(int8_path, err, sizeof err);
    ck_assert_msg(q != NULL, "%s", err);
    vm_ctx *cf = vm_ctx_new(vm_segmentor_model(f), err, sizeof err), *cq = vm_ctx_new(vm_segmentor_model(q), err, sizeof err);
    ck_assert(cf && cq);
    /* the checkpoint's meta.dataset_meta travels in the INT8 file */
    ck_assert_int_eq(vm_segmentor_classes(f), vm_segmentor_classes(q));
    for (int i = 0; i < vm_segmentor_classes(f); i++) {
        const char *a = vm_segmentor_class_name(f, i), *b = vm_segmentor_class_name(q, i);
        ck_assert_msg(a && b && !strcmp(a, b), "class %d: '%s' vs '%s'", i, a ? a : "(null)", b ? b : "(null)");
    }
    ck_assert(memcmp(vm_segmentor_palette(f), vm_segmentor_palette(q), 3 * (size_t)vm_segmentor_classes(f)) == 0);
    *worst_all = *worst_clear = 1;
    for (int i = 0; i < 4; i++) {
        vm_image im;
        ck_assert_msg(vm_cv_load(seg_photos[i], &im, err, sizeof err) == 0, "%s", err);
        size_t np = (size_t)im.w * im.h;
        uint8_t *la = malloc(np), *lb = malloc(np);
        margins mg = {im.w, vm_segmentor_classes(f), malloc(sizeof(float) * np)};
        ck_assert(vm_ctx_segment_image(cf, f, &im, 2048, 512, la, row_margin, &mg, NULL) == 0);
        ck_assert_msg(vm_ctx_segment_image(cq, q, &im, 2048, 512, lb, NULL, NULL, NULL) == 0, "%s", vm_ctx_error(cq));
        size_t same = 0, clear = 0, clear_same = 0, cl[3] = {0}, cs[3] = {0};
        const float mth[3] = {0.5f, 1.0f, 2.0f};
        for (size_t p = 0; p < np; p++) {
            same += la[p] == lb[p];
            if (mg.margin[p] >= SEG_MARGIN) clear++, clear_same += la[p] == lb[p];
            for (int t = 0; t < 3; t++)
                if (mg.margin[p] >= mth[t]) cl[t]++, cs[t] += la[p] == lb[p];
        }
        double a = (double)same / np, ac = clear ? (double)clear_same / clear : 1;
        fprintf(stderr, "  %s: INT8 vs FP32 pixel agreement %.4f; by FP32 top-2 margin:", seg_photos[i], a);
        for (int t = 0; t < 3; t++)
            fprintf(stderr, " >= %.1f (%.1f%% of pixels) %.4f;", mth[t], 100.0 * cl[t] / np, cl[t] ? (double)cs[t] / cl[t] : 1.0);
        fprintf(stderr, "\n");
        if (exact) ck_assert_msg(same == np, "%s: %zu pixels differ with nothing quantized", seg_photos[i], np - same);
        *worst_all = fmin(*worst_all, a);
        *worst_clear = fmin(*worst_clear, ac);
        free(la);
        free(lb);
        free(mg.margin);
        vm_image_free(&im);
    }
    vm_ctx_free(cf);
    vm_ctx_free(cq);
    vm_segmentor_free(f);
    vm_segmentor_free(q);
}

/* Every layer skipped: the INT8 file is the FP32 model, heads included. */
START_TEST(seg_int8_nothing_quantized_is_fp32) {
    seg_photo_paths();
    const char *all[] = {"layers", "patch_embed", "decode_head"};
    const char *out = tmp_out("seg0");
    calibrate(tdata("seg_upernet/model.pth"), seg_photos, 4, 0, 2048, 512, 1, all, 3, out);
    double a, c;
    seg_agreement(out, &a, &c, 1);
    unlink(out);
}
END_TEST

START_TEST(seg_int8_agreement) {
    seg_photo_paths();
    const char *out = tmp_out("seg");
    calibrate(tdata("seg_upernet/model.pth"), seg_photos, 4, 0, 2048, 512, 1, NULL, 0, out);
    /* the head's convolutions are INT8 in the file */
    char err[512];
    vm_model *m = vm_model_load(out, NULL, err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    vm_weights_src src;
    vm_model_weights(m, &src);
    const int8_t *d;
    int nd;
    int64_t sh[4];
    ck_assert(src.get_i8(src.user, "decode_head.fpn_bottleneck.conv.weight", &d, &nd, sh) == 0 && nd == 4);
    ck_assert(src.get_i8(src.user, "decode_head.conv_seg.weight", &d, &nd, sh) == 0);
    /* The INT8 head through the op interface: on the off-host test backend
     * (device paths) bit-identical to the CPU backend; a backend without
     * qconv_make (CUDA) refuses it with a clear message. */
    vm_head *h = vm_upernet_ops.bind(&src, "decode_head.", err, sizeof err);
    ck_assert_msg(h != NULL, "%s", err);
    int tot, n8 = vm_upernet_int8_convs(h, &tot);
    ck_assert_msg(n8 == tot && tot > 0, "%d of %d head convolutions INT8", n8, tot);
    vm_ctx *mc = vm_model_ctx(m);
    const int H = 96, W = 128;
    float *in = malloc(sizeof(float) * 3 * H * W);
    for (int i = 0; i < 3 * H * W; i++) in[i] = (float)((i * 7919) % 255) / 64.0f - 2.0f;
    vm_feats f;
    ck_assert_msg(vm_ctx_backbone(mc, in, 1, H, W, &f) == 0, "%s", vm_ctx_error(mc));
    size_t nl = (size_t)f.H[0] * f.W[0] * vm_upernet_classes(h);
    float *l_cpu = malloc(sizeof(float) * nl), *l_oh = malloc(sizeof(float) * nl);
    vm_be *oh = vm_be_offhost_new(err, sizeof err);
    ck_assert_msg(oh != NULL, "%s", err);
    vm_be *bes[2] = {mc->be, oh};
    float *outs[2] = {l_cpu, l_oh};
    for (int k = 0; k < 2; k++) {
        vm_head_plan *p = vm_upernet_ops.plan(h, bes[k], &f, err, sizeof err);
        ck_assert_msg(p != NULL, "%s", err);
        ck_assert_msg(vm_upernet_ops.forward(h, p, &f, outs[k], err, sizeof err) == 0, "%s", err);
        vm_upernet_ops.plan_free(p);
    }
    ck_assert_msg(memcmp(l_cpu, l_oh, sizeof(float) * nl) == 0, "INT8 head: off-host backend differs from the CPU's");
    oh->qconv_make = NULL; /* as the CUDA backend */
    err[0] = 0;
    ck_assert(vm_upernet_ops.plan(h, oh, &f, err, sizeof err) == NULL);
    ck_assert_msg(strstr(err, "INT8 heads run on the CPU only") != NULL, "message: %s", err);
    vm_be_free(oh);
    free(in), free(l_cpu), free(l_oh);
    vm_upernet_ops.free(h);
    vm_model_free(m);
    double a, c;
    seg_agreement(out, &a, &c, 0);
    ck_assert_msg(a >= SEG_MIN_AGREE, "worst pixel agreement %.4f < %.2f", a, SEG_MIN_AGREE);
    ck_assert_msg(c >= SEG_MIN_AGREE_CLEAR, "worst clear-margin agreement %.4f < %.2f", c, SEG_MIN_AGREE_CLEAR);
    unlink(out);
}
END_TEST

static float box_iou(const float *a, const float *b) {
    float w = fminf(a[2], b[2]) - fmaxf(a[0], b[0]), h = fminf(a[3], b[3]) - fmaxf(a[1], b[1]);
    if (w <= 0 || h <= 0) return 0;
    float i = w * h;
    return i / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - i);
}

/* FP32 detections matched one to one by an INT8 one (same label, IoU >= 0.9). */
static int det_matched(const vm_detections *a, const vm_detections *b) {
    int m = 0;
    char *used = calloc((size_t)b->count + 1, 1);
    for (int i = 0; i < a->count; i++) {
        int best = -1;
        float bi = 0;
        for (int j = 0; j < b->count; j++)
            if (!used[j] && b->labels[j] == a->labels[i]) {
                float v = box_iou(a->boxes + 4 * i, b->boxes + 4 * j);
                if (v > bi) bi = v, best = j;
            }
        if (best >= 0 && bi >= 0.9f) used[best] = 1, m++;
    }
    free(used);
    return m;
}

/* Held-out calibration for the detection cases: four photos that are not
 * the golden ones the agreement is measured on (crops and a gray copy of
 * the same two scenes: the only real photographs in tests/data), as
 * bench/det_int8.c and bench/RESULTS.md's INT8 detection sections use. */
static const char *const det_calib_photos[] = {"seg_upernet/china_crop.png", "seg_upernet/mini.png",
                                               "preprocess/china_crop.png", "preprocess/flower_gray.jpg"};
#define DET_NCALIB 4

static void det_case(int quantize) {
    char *photos[2] = {strdup(tdata("preprocess/china.jpg")), strdup(tdata("det_maskrcnn/flower_crop.png"))};
    char *cal[DET_NCALIB];
    for (int i = 0; i < DET_NCALIB; i++) cal[i] = strdup(tdata("%s", det_calib_photos[i]));
    const char *model = tdata("det_maskrcnn/model.pth");
    char *mp = strdup(model);
    const char *out = tmp_out(quantize ? "det" : "det0");
    const char *all[] = {"layers", "patch_embed"};
    calibrate(mp, (const char *const *)cal, DET_NCALIB, 1, 1333, 800, 0, all, quantize ? 0 : 2, out);
    for (int i = 0; i < DET_NCALIB; i++) free(cal[i]);
    char err[512];
    vm_detector *f = vm_detector_load(mp, NULL, err, sizeof err);
    ck_assert_msg(f != NULL, "%s", err);
    vm_detector *q = vm_detector_load(out, NULL, err, sizeof err);
    ck_assert_msg(q != NULL, "%s", err);
    ck_assert(vm_model_is_int8(vm_detector_model(q)) == quantize);
    for (int i = 0; i < 80; i++) { /* meta.dataset_meta.classes travel in the INT8 file */
        const char *a = vm_detector_class_name(f, i), *b = vm_detector_class_name(q, i);
        ck_assert_msg(a && b && !strcmp(a, b), "class %d: '%s' vs '%s'", i, a ? a : "(null)", b ? b : "(null)");
    }
    vm_ctx *cf = vm_ctx_new(vm_detector_model(f), err, sizeof err), *cq = vm_ctx_new(vm_detector_model(q), err, sizeof err);
    ck_assert(cf && cq);
    for (int i = 0; i < 2; i++) {
        vm_detect_opts o;
        vm_detect_defaults(&o);
        if (i == 1) o.scale_w = 400, o.scale_h = 240; /* the golden's scale for the crop */
        vm_detections *a = vm_ctx_detect_file(cf, f, photos[i], &o), *b = vm_ctx_detect_file(cq, q, photos[i], &o);
        ck_assert_msg(a && b, "%s", vm_ctx_error(b ? cf : cq));
        int m = det_matched(a, b);
        fprintf(stderr, "  %s %s: FP32 %d detections, INT8 file %d, matched (same label, IoU >= 0.9) %d\n", photos[i],
                quantize ? "INT8 backbone" : "nothing quantized", a->count, b->count, m);
        if (!quantize) {
            ck_assert_int_eq(a->count, b->count);
            for (int k = 0; k < a->count; k++) {
                ck_assert_int_eq(a->labels[k], b->labels[k]);
                ck_assert(a->scores[k] == b->scores[k]);
                ck_assert(memcmp(a->boxes + 4 * k, b->boxes + 4 * k, 4 * sizeof(float)) == 0);
            }
        } else
            ck_assert_msg(m >= DET_MIN_MATCHED * a->count, "%s: %d of %d matched", photos[i], m, a->count);
        vm_detections_free(a);
        vm_detections_free(b);
    }
    vm_ctx_free(cf);
    vm_ctx_free(cq);
    vm_detector_free(f);
    vm_detector_free(q);
    free(photos[0]);
    free(photos[1]);
    free(mp);
    unlink(out);
}

START_TEST(det_int8_nothing_quantized_is_fp32) { det_case(0); }
END_TEST

START_TEST(det_int8_backbone_agreement) { det_case(1); }
END_TEST

/* Worst cosine over the four backbone maps of model file q against FP32
 * model f on photo path (the detection pipeline at scale sw x sh). */
static double worst_feature_cosine(vm_model *f, vm_model *q, const char *path, int sw, int sh) {
    char err[512];
    vm_calib_dense *d = vm_calib_dense_new(f, VM_CALIB_TASK_DETECT, sw, sh, 0, err, sizeof err);
    ck_assert_msg(d != NULL, "%s", err);
    int H, W;
    float *x = vm_calib_dense_input(d, path, &H, &W, err, sizeof err);
    ck_assert_msg(x != NULL, "%s", err);
    vm_ctx *cf = vm_ctx_new(f, err, sizeof err), *cq = vm_ctx_new(q, err, sizeof err);
    ck_assert(cf && cq);
    vm_feats a, b;
    ck_assert_msg(vm_ctx_backbone(cf, x, 1, H, W, &a) == 0, "%s", vm_ctx_error(cf));
    ck_assert_msg(vm_ctx_backbone(cq, x, 1, H, W, &b) == 0, "%s", vm_ctx_error(cq));
    double worst = 1;
    for (int l = 0; l < 4; l++) {
        double ab = 0, aa = 0, bb = 0;
        for (size_t j = 0; j < (size_t)a.H[l] * a.W[l] * a.C[l]; j++)
            ab += (double)a.data[l][j] * b.data[l][j], aa += (double)a.data[l][j] * a.data[l][j],
                bb += (double)b.data[l][j] * b.data[l][j];
        worst = fmin(worst, ab / sqrt(aa * bb));
    }
    vm_ctx_free(cf), vm_ctx_free(cq);
    free(x);
    vm_calib_dense_free(d);
    return worst;
}

/* Mixed precision (vm_calib_dense_mixed): calibrated on two photos that are
 * not the golden ones, the written file's backbone maps meet the target
 * cosine on both (what the search promises, checked on the file as
 * `detect` loads it), its FP32 layers are recorded in the metadata and are
 * FP32 in the file, and some layers stay INT8. A target the all-INT8
 * backbone meets keeps nothing FP32. */
START_TEST(det_int8_mixed_meets_target) {
    const double target = _i ? 0.9999 : 0.5;
    char *photos[2] = {strdup(tdata("seg_upernet/mini.png")), strdup(tdata("preprocess/china_crop.png"))};
    char *mp = strdup(tdata("det_maskrcnn/model.pth"));
    const char *out = tmp_out("mixed");
    char err[512], scratch[128];
    snprintf(scratch, sizeof scratch, "%s.trial", out);
    const int sw = 400, sh = 240;
    vm_model *m = vm_model_load(mp, NULL, err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    vm_calib_opts co = {VM_CALIB_MINMAX, 99.99, NULL, 0, 0, 0, 1};
    vm_calib_dense *d = vm_calib_dense_new(m, VM_CALIB_TASK_DETECT, sw, sh, 0, err, sizeof err);
    ck_assert_msg(d != NULL, "%s", err);
    vm_calib *c = vm_calib_begin(m, &co);
    ck_assert(c != NULL);
    for (int i = 0; i < 2; i++) ck_assert_msg(vm_calib_dense_image(d, c, photos[i], err, sizeof err) == 0, "%s", err);
    int kept = vm_calib_dense_mixed(d, c, (const char *const *)photos, 2, target, scratch, NULL, err, sizeof err);
    ck_assert_msg(kept >= 0, "%s", err);
    ck_assert_msg(access(scratch, F_OK) != 0, "the trial file %s was left behind", scratch);
    ck_assert_msg(vm_calib_write(c, out, NULL, err, sizeof err) == 0, "%s", err);
    vm_calib_dense_free(d);
    vm_calib_free(c);
    vm_model_free(m);
    /* the record in the file's header */
    FILE *fp = fopen(out, "rb");
    ck_assert(fp != NULL);
    uint64_t hl = 0;
    ck_assert(fread(&hl, 8, 1, fp) == 1 && hl < (1u << 24));
    char *hdr = calloc(hl + 1, 1);
    ck_assert(fread(hdr, 1, hl, fp) == hl);
    fclose(fp);
    ck_assert_msg(strstr(hdr, "mixed_precision") && strstr(hdr, "fp32_layers"), "no mixed-precision record");
    vm_model *f = vm_model_load(mp, NULL, err, sizeof err), *q = vm_model_load(out, NULL, err, sizeof err);
    ck_assert_msg(f && q, "%s", err);
    ck_assert(vm_model_is_int8(q));
    if (target < 0.9) ck_assert_int_eq(kept, 0);
    else {
        ck_assert_msg(kept > 0 && kept < 35, "%d of 35 units kept FP32", kept);
        /* the first unit recorded (the most damaging) is FP32 in the file */
        char *p = strstr(hdr, "fp32_layers\\\": [\\\""), name[128];
        ck_assert_msg(p != NULL, "%s", hdr);
        p += strlen("fp32_layers\\\": [\\\"");
        int k = 0;
        while (*p && *p != '\\' && k < 100) name[k++] = *p++;
        name[k] = 0;
        strcat(name, ".weight");
        vm_weights_src src;
        vm_model_weights(q, &src);
        const int8_t *w8;
        int nd;
        int64_t sh4[4];
        ck_assert_msg(src.get_i8(src.user, name, &w8, &nd, sh4) != 0, "%s is s8 in the file", name);
    }
    for (int i = 0; i < 2; i++) {
        double w = worst_feature_cosine(f, q, photos[i], sw, sh);
        fprintf(stderr, "  mixed precision, target %g: %d units FP32, %s worst feature cosine %.7f\n", target, kept, photos[i], w);
        ck_assert_msg(w >= target, "%s: worst feature cosine %.7f < target %g", photos[i], w, target);
    }
    vm_model_free(f), vm_model_free(q);
    free(hdr);
    free(photos[0]), free(photos[1]), free(mp);
    unlink(out);
}
END_TEST

Suite *suite_int8_dense(void) {
    Suite *s = suite_create("int8_dense");
    TCase *tc = tcase_create("int8_dense");
    tcase_set_timeout(tc, 1800); /* each model case runs ~12 forward passes: minutes under qemu-aarch64 */
    tcase_add_loop_test(tc, qconv_bias_relu_matches_reference, 0, 2);
    tcase_add_test(tc, qconv_writes_only_its_output);
    tcase_add_test(tc, qmatmul_bias_matches_reference);
    tcase_add_test(tc, seg_int8_nothing_quantized_is_fp32);
    tcase_add_test(tc, seg_int8_agreement);
    tcase_add_test(tc, det_int8_nothing_quantized_is_fp32);
    tcase_add_test(tc, det_int8_backbone_agreement);
    tcase_add_loop_test(tc, det_int8_mixed_meets_target, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}
