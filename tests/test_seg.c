/* test_seg.c - the segmentation pipeline (OpenCV-exact decode and resize,
 * bilinear / pooling kernels, UPerHead, whole pipeline) against OpenCV 4.6
 * and the official mmseg golden (tests/data/seg_upernet).
 * Tolerances: decoded and resized pixels and label maps are exact (integer
 * arithmetic reproduced); float maps within the golden's 1e-4*max(1,|ref|). */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "image/decode_cv.h"
#include "image/resize_cv.h"
#include "net/dataset_meta.h"
#include "net/segmentor.h"
#include "model/model.h"
#include "ops/dense.h"
#include "post/seg_post.h"

#include <jansson.h>

static void load_any(vm_npy *a, const char *path) {
    char err[512];
    ck_assert_msg(vm_npy_read_u8_or_f32(path, a, err, sizeof err) == 0, "%s", err);
}

static void cmp_u8(const char *what, const uint8_t *got, int w, int h, int cn, const char *ref_path) {
    vm_npy r;
    load_any(&r, ref_path);
    ck_assert_msg(r.shape[0] == h && r.shape[1] == w, "%s: %dx%d, want %lldx%lld", what, w, h, (long long)r.shape[1],
                  (long long)r.shape[0]);
    size_t n = (size_t)w * h * cn, bad = 0, first = 0;
    ck_assert_int_eq(r.numel, n);
    for (size_t i = 0; i < n; i++)
        if ((float)got[i] != r.data[i] && !bad++) first = i;
    ck_assert_msg(bad == 0, "%s: %zu of %zu values differ (first at %zu: %d vs %g)", what, bad, n, first, got[first],
                  r.data[first]);
    vm_npy_free(&r);
}

static uint64_t fnv1a(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* ---- OpenCV decode ------------------------------------------------------ */

static const char *cv_files[] = {"exif1.jpg", "exif2.jpg", "exif3.jpg", "exif4.jpg", "exif5.jpg", "exif6.jpg",
                                 "exif7.jpg", "exif8.jpg", "exif6_be.jpg", "cmyk.jpg", "cmyk_rand.jpg", "gray.jpg",
                                 "rgb444.jpg", "rgb8.png", "rgba8.png", "gray8.png", "graya8.png", "gray16.png",
                                 "rgb16.png", "rgba16.png", "palette.png", "palette_trns.png", "gray1.png",
                                 "rgb_trns.png"};

START_TEST(cv_decode_variants) {
    vm_image im;
    char err[512];
    ck_assert_msg(vm_cv_load(tdata("cv_decode/%s", cv_files[_i]), &im, err, sizeof err) == 0, "%s", err);
    cmp_u8(cv_files[_i], im.rgb, im.w, im.h, 3, tdata("cv_decode/%s.bgr.npy", cv_files[_i]));
    vm_image_free(&im);
}
END_TEST

START_TEST(cv_decode_real_photos) {
    FILE *f = fopen(tdata("cv_decode/real_hashes.txt"), "r");
    ck_assert(f != NULL);
    char path[256];
    int w, h, n = 0;
    unsigned long long want;
    while (fscanf(f, "%255s %d %d %llx", path, &w, &h, &want) == 4) {
        vm_image im;
        char err[512];
        ck_assert_msg(vm_cv_load(tdata("%s", path), &im, err, sizeof err) == 0, "%s", err);
        ck_assert_msg(im.w == w && im.h == h, "%s: %dx%d, OpenCV gives %dx%d", path, im.w, im.h, w, h);
        ck_assert_msg(fnv1a(im.rgb, (size_t)w * h * 3) == want, "%s: pixels differ from OpenCV's", path);
        vm_image_free(&im);
        n++;
    }
    fclose(f);
    ck_assert_int_ge(n, 6);
}
END_TEST

START_TEST(cv_decode_errors) {
    vm_image im;
    char err[256];
    ck_assert_int_ne(vm_cv_decode((const uint8_t *)"GIF89a....", 10, "x.gif", &im, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(err, "unsupported"));
    const char *files[2] = {"cv_decode/china_420_exif6.jpg", "cv_decode/rgb16.png"};
    for (int k = 0; k < 2; k++) {
        size_t n;
        uint8_t *b = tslurp(tdata("%s", files[k]), &n);
        for (int i = 1; i < 16; i++) {
            int rc = vm_cv_decode(b, n * (size_t)i / 16, "trunc", &im, err, sizeof err);
            ck_assert_msg(rc != 0, "%s truncated to %d/16 decoded", files[k], i);
            ck_assert_ptr_nonnull(strstr(err, "trunc"));
        }
        /* Garbage in the EXIF / the middle: decode or error, never crash. */
        for (size_t i = 20; i < 80 && i < n; i++) b[i] ^= 0x5a;
        if (vm_cv_decode(b, n, "img", &im, err, sizeof err) == 0) vm_image_free(&im);
        free(b);
    }
}
END_TEST

/* ---- OpenCV resize ------------------------------------------------------ */

START_TEST(cv_resize_vs_opencv) {
    vm_npy s;
    load_any(&s, tdata("cv_resize/src.npy"));
    int h = (int)s.shape[0], w = (int)s.shape[1];
    uint8_t *src = malloc(s.numel);
    for (size_t i = 0; i < s.numel; i++) src[i] = (uint8_t)s.data[i];
    FILE *f = fopen(tdata("cv_resize/sizes.txt"), "r");
    ck_assert(f != NULL);
    int ow, oh, n = 0;
    while (fscanf(f, "%d %d", &ow, &oh) == 2) {
        uint8_t *a = malloc((size_t)ow * oh * 3), *b = malloc((size_t)ow * oh * 3);
        char what[64];
        snprintf(what, sizeof what, "resize %dx%d", ow, oh);
        vm_cv_resize_linear_ref(src, w, h, 3, a, ow, oh);
        cmp_u8(what, a, ow, oh, 3, tdata("cv_resize/out_%dx%d.npy", ow, oh));
        vm_cv_resize_linear(src, w, h, 3, b, ow, oh);
        ck_assert_msg(memcmp(a, b, (size_t)ow * oh * 3) == 0, "%s: threaded differs from the reference", what);
        free(a);
        free(b);
        n++;
    }
    fclose(f);
    ck_assert_int_ge(n, 10);
    free(src);
    vm_npy_free(&s);
}
END_TEST

/* The golden's resize-only checks and every case's resized image:
 * decode (OpenCV) + keep-ratio size + INTER_LINEAR, compared by hash of the
 * BGR bytes (hashes computed from the golden PNGs by tests/tools/make_seg_data.py). */
START_TEST(golden_resize) {
    FILE *f = fopen(tdata("seg_upernet/resize_hashes.txt"), "r");
    ck_assert(f != NULL);
    char img[256];
    int sw, sh, w1, h1, n = 0;
    unsigned long long want;
    while (fscanf(f, "%255s %d %d %d %d %llx", img, &sw, &sh, &w1, &h1, &want) == 6) {
        vm_image im;
        char err[512];
        ck_assert_msg(vm_cv_load(tdata("%s", img), &im, err, sizeof err) == 0, "%s", err);
        int gw, gh;
        vm_cv_rescale_size(im.w, im.h, sw, sh, &gw, &gh);
        ck_assert_msg(gw == w1 && gh == h1, "%s scale %d,%d: %dx%d, want %dx%d", img, sw, sh, gw, gh, w1, h1);
        uint8_t *o = malloc((size_t)gw * gh * 3);
        vm_cv_resize_linear(im.rgb, im.w, im.h, 3, o, gw, gh);
        ck_assert_msg(fnv1a(o, (size_t)gw * gh * 3) == want, "%s scale %d,%d: resized pixels differ", img, sw, sh);
        free(o);
        vm_image_free(&im);
        n++;
    }
    fclose(f);
    ck_assert_int_ge(n, 6);
}
END_TEST

/* ---- dense kernels: variants against the scalar references ------------- */

static void fill_rand(float *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (float)((seed >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
}

/* Same float operations in the same order: bit-identical expected. */
START_TEST(bilinear_variant_vs_ref) {
    const int shapes[][6] = {{2, 2, 9, 14, 3, 0}, {6, 6, 2, 2, 32, 1}, {9, 14, 36, 53, 16, 0}, {3, 4, 9, 14, 5, 1},
                             {128, 179, 512, 713, 2, 0}, {7, 5, 7, 5, 8, 1}, {5, 7, 3, 2, 4, 0}, {1, 1, 4, 6, 3, 0}};
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        int H = shapes[k][0], W = shapes[k][1], OH = shapes[k][2], OW = shapes[k][3], C = shapes[k][4];
        int acc = shapes[k][5], ldi = C + 1, ldo = C + 3;
        float *in = malloc(sizeof(float) * H * W * ldi), *a = malloc(sizeof(float) * OH * OW * ldo),
              *b = malloc(sizeof(float) * OH * OW * ldo);
        fill_rand(in, (size_t)H * W * ldi, (unsigned)k);
        fill_rand(a, (size_t)OH * OW * ldo, 99);
        memcpy(b, a, sizeof(float) * OH * OW * ldo);
        vm_bilinear_nhwc_ref(in, H, W, C, ldi, a, OH, OW, ldo, acc);
        vm_bilinear_nhwc(in, H, W, C, ldi, b, OH, OW, ldo, acc);
        ck_assert_msg(memcmp(a, b, sizeof(float) * OH * OW * ldo) == 0, "bilinear %dx%d->%dx%d differs", H, W, OH, OW);
        free(in), free(a), free(b);
    }
}
END_TEST

START_TEST(avgpool_variant_vs_ref) {
    const int shapes[][4] = {{2, 2, 64, 6}, {16, 24, 768, 6}, {16, 23, 7, 3}, {5, 7, 3, 2}, {16, 24, 768, 1}};
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        int H = shapes[k][0], W = shapes[k][1], C = shapes[k][2], s = shapes[k][3];
        float *in = malloc(sizeof(float) * H * W * C), *a = malloc(sizeof(float) * s * s * C),
              *b = malloc(sizeof(float) * s * s * C);
        fill_rand(in, (size_t)H * W * C, (unsigned)k + 5);
        vm_adaptive_avgpool_nhwc_ref(in, H, W, C, s, a);
        vm_adaptive_avgpool_nhwc(in, H, W, C, s, b);
        ck_assert_msg(memcmp(a, b, sizeof(float) * s * s * C) == 0, "avgpool %dx%d s=%d differs", H, W, s);
        free(in), free(a), free(b);
    }
    /* Bins overlap when s does not divide H: 5 rows, 3 bins = [0,2) [1,4) [3,5). */
    float in[5 * 5], out[3 * 3];
    for (int i = 0; i < 25; i++) in[i] = (float)(1 << (i / 5)); /* value = 2^row */
    vm_adaptive_avgpool_nhwc_ref(in, 5, 5, 1, 3, out);
    ck_assert(out[0] == 1.5f && out[3] == 14.0f / 3.0f && out[6] == 12.0f && out[8] == 12.0f);
}
END_TEST

/* The streamed two-step resize + argmax against full-map references. */
typedef struct {
    int W0, C;
    float *rows;
} rows_out;
static void put_row(void *u, int y, const float *row) {
    rows_out *r = u;
    memcpy(r->rows + (size_t)y * r->W0 * r->C, row, sizeof(float) * r->W0 * r->C);
}

START_TEST(seg_labels_vs_full_resizes) {
    const int cases[][7] = {{9, 14, 7, 36, 53, 25, 37}, {5, 4, 3, 20, 17, 20, 17}, {3, 3, 150, 11, 12, 40, 9}, {16, 24, 5, 64, 96, 61, 100}};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        int h4 = cases[k][0], w4 = cases[k][1], C = cases[k][2], H1 = cases[k][3], W1 = cases[k][4], H0 = cases[k][5],
            W0 = cases[k][6];
        float *lg = malloc(sizeof(float) * h4 * w4 * C), *mid = malloc(sizeof(float) * H1 * W1 * C),
              *fin = malloc(sizeof(float) * H0 * W0 * C);
        fill_rand(lg, (size_t)h4 * w4 * C, (unsigned)k + 17);
        vm_bilinear_nhwc_ref(lg, h4, w4, C, C, mid, H1, W1, C, 0);
        vm_bilinear_nhwc_ref(mid, H1, W1, C, C, fin, H0, W0, C, 0);
        uint8_t *lab = malloc((size_t)H0 * W0);
        rows_out ro = {W0, C, malloc(sizeof(float) * H0 * W0 * C)};
        ck_assert_int_eq(vm_seg_labels(lg, h4, w4, C, H1, W1, H0, W0, lab, put_row, &ro), 0);
        ck_assert_msg(memcmp(ro.rows, fin, sizeof(float) * H0 * W0 * C) == 0, "case %zu: streamed logits differ", k);
        for (int p = 0; p < H0 * W0; p++) {
            int best = 0;
            for (int c = 1; c < C; c++)
                if (fin[(size_t)p * C + c] > fin[(size_t)p * C + best]) best = c;
            ck_assert_int_eq(lab[p], best);
        }
        free(lg), free(mid), free(fin), free(lab), free(ro.rows);
    }
    /* Ties: the first maximum wins. */
    float t[4] = {1, 3, 3, 2};
    uint8_t l;
    vm_seg_labels(t, 1, 1, 4, 1, 1, 1, 1, &l, NULL, NULL);
    ck_assert_int_eq(l, 1);
}
END_TEST

/* ---- the golden ------------------------------------------------------------ */

#define TOL 1e-4

static vm_segmentor *g_seg;
static vm_ctx *g_ctx;
static json_t *g_manifest;

static void seg_setup(void) {
    char err[512];
    g_seg = vm_segmentor_load(tdata("seg_upernet/model.pth"), err, sizeof err);
    ck_assert_msg(g_seg != NULL, "%s", err);
    g_ctx = vm_ctx_new(vm_segmentor_model(g_seg), err, sizeof err);
    ck_assert_msg(g_ctx != NULL, "%s", err);
    json_error_t je;
    g_manifest = json_load_file(tdata("seg_upernet/manifest.json"), 0, &je);
    ck_assert_msg(g_manifest != NULL, "manifest: %s", je.text);
}

static void seg_teardown(void) {
    vm_ctx_free(g_ctx);
    vm_segmentor_free(g_seg);
    json_decref(g_manifest);
}

/* golden NCHW (1,C,H,W) or (C,H,W) -> NHWC copy */
static float *to_nhwc(const vm_npy *a, int *C, int *H, int *W) {
    int o = a->ndim == 4 ? 1 : 0;
    *C = (int)a->shape[o], *H = (int)a->shape[o + 1], *W = (int)a->shape[o + 2];
    float *r = malloc(sizeof(float) * a->numel);
    size_t hw = (size_t)*H * *W;
    for (int c = 0; c < *C; c++)
        for (size_t p = 0; p < hw; p++) r[p * *C + c] = a->data[c * hw + p];
    return r;
}

static void head_dbg(void *user, const char *name, const float *nhwc, int H, int W, int C) {
    int *seen = user;
    vm_npy r;
    tload(&r, tdata("seg_upernet/mini_head_%s.npy", name));
    int rc, rh, rw;
    float *ref = to_nhwc(&r, &rc, &rh, &rw);
    ck_assert_msg(rc == C && rh == H && rw == W, "%s: %dx%dx%d, golden %dx%dx%d", name, C, H, W, rc, rh, rw);
    char what[64];
    snprintf(what, sizeof what, "head %s", name);
    tclose(what, nhwc, ref, (size_t)C * H * W, TOL);
    free(ref);
    vm_npy_free(&r);
    (*seen)++;
}

/* The head alone on the golden mini features: every intermediate. */
START_TEST(golden_head_mini) {
    vm_npy f[4];
    float *x[4];
    int C[4], H[4], W[4];
    for (int i = 0; i < 4; i++) {
        tload(&f[i], tdata("seg_upernet/mini_feat%d.npy", i));
        x[i] = to_nhwc(&f[i], &C[i], &H[i], &W[i]);
    }
    ck_assert_int_eq(vm_segmentor_classes(g_seg), 150);
    /* Names and palette from the checkpoint's meta.dataset_meta = mmseg's ADE20K. */
    for (int i = 0; i < 150; i++) {
        ck_assert_str_eq(vm_segmentor_class_name(g_seg, i), vm_ade20k_class(i));
        ck_assert(memcmp(vm_segmentor_palette(g_seg) + 3 * i, vm_ade20k_color(i), 3) == 0);
    }
    ck_assert_str_eq(vm_segmentor_class_name(g_seg, 7), "bed ");
    float *logits = malloc(sizeof(float) * H[0] * W[0] * 150);
    int seen = 0;
    char err[512];
    ck_assert_msg(vm_segmentor_head(g_seg, (const float *const *)x, C, H, W, logits, head_dbg, &seen, err, sizeof err) == 0,
                  "%s", err);
    ck_assert_int_eq(seen, 4 + 2 + 3 + 3 + 3 + 2); /* ppm x4, bottleneck_in, psp_out, lateral, fpn_in, fpn_out, fpn_bottleneck_in, fused */
    vm_npy r;
    tload(&r, tdata("seg_upernet/mini_logits4.npy"));
    int rc, rh, rw;
    float *ref = to_nhwc(&r, &rc, &rh, &rw);
    tclose("mini logits4 (head on golden features)", logits, ref, r.numel, TOL);
    /* predict_by_feat: logits4 resized to the image size (channels 0..15). */
    vm_npy c16;
    tload(&c16, tdata("seg_upernet/mini_logits_img_c16.npy"));
    int H1 = (int)c16.shape[1], W1 = (int)c16.shape[2];
    float *img = malloc(sizeof(float) * H1 * W1 * 150);
    vm_bilinear_nhwc(ref, rh, rw, 150, 150, img, H1, W1, 150, 0);
    float *g = malloc(sizeof(float) * H1 * W1 * 16);
    for (int c = 0; c < 16; c++)
        for (int p = 0; p < H1 * W1; p++) g[c * H1 * W1 + p] = img[(size_t)p * 150 + c];
    tclose("mini logits at image size (c0..15)", g, c16.data, c16.numel, TOL);
    free(g), free(img), free(ref), free(logits);
    vm_npy_free(&c16);
    vm_npy_free(&r);
    for (int i = 0; i < 4; i++) free(x[i]), vm_npy_free(&f[i]);
}
END_TEST

static int *sample_idx(int n, int s, int *cnt) {
    int *r = malloc(sizeof(int) * (size_t)(n / s + 2));
    *cnt = 0;
    for (int i = 0; i < n; i += s) r[(*cnt)++] = i;
    if ((n - 1) % s) r[(*cnt)++] = n - 1;
    return r;
}

/* Compare an NHWC map with a golden sampled NCHW one (stride s). */
static void cmp_sampled(const char *what, const float *nhwc, int C, int H, int W, const char *golden, int s) {
    vm_npy r;
    tload(&r, golden);
    int nr, nc;
    int *rows = sample_idx(H, s, &nr), *cols = sample_idx(W, s, &nc);
    int o = r.ndim == 4 ? 1 : 0;
    ck_assert_msg(r.shape[o] == C && r.shape[o + 1] == nr && r.shape[o + 2] == nc, "%s: golden shape mismatch", what);
    float *got = malloc(sizeof(float) * r.numel);
    for (int c = 0; c < C; c++)
        for (int i = 0; i < nr; i++)
            for (int j = 0; j < nc; j++)
                got[((size_t)c * nr + i) * nc + j] = nhwc[((size_t)rows[i] * W + cols[j]) * C + c];
    tclose(what, got, r.data, r.numel, TOL);
    free(got), free(rows), free(cols);
    vm_npy_free(&r);
}

typedef struct {
    int W0, C, stride;
    float *rows; /* H0 x W0 x C of the sampled rows only (others untouched) */
    char *is_sampled;
} final_rows;

static void keep_row(void *user, int y, const float *row) {
    final_rows *f = user;
    if (f->is_sampled[y]) memcpy(f->rows + (size_t)y * f->W0 * f->C, row, sizeof(float) * f->W0 * f->C);
}

static const char *case_image(const char *file) {
    if (strcmp(file, "china.jpg") == 0 || strcmp(file, "flower.jpg") == 0) return tdata("preprocess/%s", file);
    return tdata("seg_upernet/%s", file);
}

/* Every case end to end: decode, resize, normalise, backbone, head, the two
 * resizes, argmax; overlay where the golden has one. */
/* Golden case i on segmentor seg through context ctx (CPU, or the model
 * moved to CUDA: the same goldens and tolerances). */
static void golden_case(vm_ctx *g_ctx, const vm_segmentor *g_seg, int _i) {
    json_t *cs = json_object_get(g_manifest, "cases");
    ck_assert_int_ge(json_array_size(cs), 4);
    json_t *c = json_array_get(cs, (size_t)_i);
    const char *name = json_string_value(json_object_get(c, "name"));
    const char *file = json_string_value(json_object_get(c, "image_file"));
    json_t *sc = json_object_get(c, "resize_scale");
    int sw = (int)json_integer_value(json_array_get(sc, 0)), sh = (int)json_integer_value(json_array_get(sc, 1));
    int mini = strcmp(name, "mini") == 0;
    vm_image im;
    char err[512];
    ck_assert_msg(vm_cv_load(case_image(file), &im, err, sizeof err) == 0, "%s", err);
    json_t *ori = json_object_get(c, "ori_shape_hw"), *ims = json_object_get(c, "img_shape_hw");
    ck_assert_int_eq(im.h, json_integer_value(json_array_get(ori, 0)));
    ck_assert_int_eq(im.w, json_integer_value(json_array_get(ori, 1)));
    int H0 = im.h, W0 = im.w;
    final_rows fr = {.W0 = W0, .C = 150, .stride = mini ? 1 : 32};
    fr.rows = malloc(sizeof(float) * H0 * W0 * 150);
    fr.is_sampled = calloc((size_t)H0, 1);
    int nr, nc;
    int *rows = sample_idx(H0, fr.stride, &nr), *cols = sample_idx(W0, fr.stride, &nc);
    for (int i = 0; i < nr; i++) fr.is_sampled[rows[i]] = 1;
    uint8_t *labels = malloc((size_t)H0 * W0);
    vm_seg_trace tr = {.keep = 1};
    ck_assert_msg(vm_ctx_segment_image(g_ctx, g_seg, &im, sw, sh, labels, keep_row, &fr, &tr) == 0, "%s", vm_ctx_error(g_ctx));
    ck_assert_int_eq(tr.h1, json_integer_value(json_array_get(ims, 0)));
    ck_assert_int_eq(tr.w1, json_integer_value(json_array_get(ims, 1)));
    char what[96], gold[256];
    if (mini) {
        vm_npy in;
        tload(&in, tdata("seg_upernet/mini_input.npy"));
        tclose("mini input", tr.input, in.data, in.numel, 1e-6); /* bit-exact expected; 1e-6 documents it */
        vm_npy_free(&in);
    }
    const int fs[4] = {8, 4, 2, 1};
    for (int i = 0; i < 4; i++) {
        snprintf(what, sizeof what, "%s feat%d", name, i);
        if (mini) snprintf(gold, sizeof gold, "%s", tdata("seg_upernet/mini_feat%d.npy", i));
        else snprintf(gold, sizeof gold, "%s", tdata("seg_upernet/%s_feat%d_s%d.npy", name, i, fs[i]));
        cmp_sampled(what, tr.feats[i], tr.fC[i], tr.fH[i], tr.fW[i], gold, mini ? 1 : fs[i]);
    }
    snprintf(what, sizeof what, "%s logits4", name);
    snprintf(gold, sizeof gold, "%s", mini ? tdata("seg_upernet/mini_logits4.npy") : tdata("seg_upernet/%s_logits4_s16.npy", name));
    cmp_sampled(what, tr.logits4, 150, tr.h4, tr.w4, gold, mini ? 1 : 16);
    snprintf(what, sizeof what, "%s final logits", name);
    snprintf(gold, sizeof gold, "%s", mini ? tdata("seg_upernet/mini_logits_final.npy") : tdata("seg_upernet/%s_logits_final_s32.npy", name));
    cmp_sampled(what, fr.rows, 150, H0, W0, gold, fr.stride);
    /* Labels: identical except at the listed near-tie pixels. */
    vm_npy lab;
    load_any(&lab, tdata("seg_upernet/%s_label.npy", name));
    ck_assert_int_eq(lab.numel, (size_t)H0 * W0);
    char *tie = calloc((size_t)H0 * W0, 1);
    json_t *amb = json_object_get(c, "ambiguous_pixels_yx");
    for (size_t k = 0; k < json_array_size(amb); k++) {
        json_t *yx = json_array_get(amb, k);
        tie[json_integer_value(json_array_get(yx, 0)) * W0 + json_integer_value(json_array_get(yx, 1))] = 1;
    }
    size_t bad = 0, diff_tie = 0;
    for (size_t p = 0; p < (size_t)H0 * W0; p++)
        if ((float)labels[p] != lab.data[p]) {
            if (tie[p]) diff_tie++;
            else if (!bad++) fprintf(stderr, "%s: label differs at y=%zu x=%zu: %d vs %g\n", name, p / W0, p % W0, labels[p], lab.data[p]);
        }
    ck_assert_msg(bad == 0, "%s: %zu labels differ outside the %zu near-tie pixels", name, bad, json_array_size(amb));
    /* Overlay (china_crop has the golden's). */
    if (strcmp(name, "china_crop") == 0) {
        uint8_t *ov = malloc((size_t)H0 * W0 * 3);
        vm_seg_overlay(im.rgb, labels, W0, H0, vm_segmentor_palette(g_seg), 150, ov);
        vm_image g;
        ck_assert_msg(vm_cv_load(tdata("seg_upernet/china_crop_overlay.png"), &g, err, sizeof err) == 0, "%s", err);
        ck_assert(g.w == W0 && g.h == H0);
        size_t obad = 0;
        for (size_t p = 0; p < (size_t)H0 * W0; p++)
            for (int k = 0; k < 3; k++)
                if (ov[3 * p + k] != g.rgb[3 * p + 2 - k] && !tie[p]) obad++;
        ck_assert_msg(obad == 0, "overlay: %zu values differ", obad);
        vm_image_free(&g);
        free(ov);
    }
    free(tie);
    vm_npy_free(&lab);
    vm_seg_trace_free(&tr);
    free(labels), free(rows), free(cols), free(fr.rows), free(fr.is_sampled);
    vm_image_free(&im);
}

START_TEST(golden_cases) { golden_case(g_ctx, g_seg, _i); }
END_TEST

/* The UPerHead's off-host paths (what CUDA takes: logits downloaded, debug
 * maps through host views) on a CPU backend that claims device memory:
 * logits and labels bit-identical to the plain CPU run. No GPU needed. */
START_TEST(offhost_paths_bit_identical) {
    char err[256];
    vm_be *oh = vm_be_offhost_new(err, sizeof err);
    ck_assert_msg(oh != NULL, "%s", err);
    vm_ctx *c2 = vm_ctx_new(vm_segmentor_model(g_seg), err, sizeof err);
    ck_assert_msg(c2 != NULL, "%s", err);
    c2->be_test = oh;
    vm_image im;
    ck_assert_msg(vm_cv_load(tdata("seg_upernet/china_crop.png"), &im, err, sizeof err) == 0, "%s", err);
    uint8_t *l1 = malloc((size_t)im.w * im.h), *l2 = malloc((size_t)im.w * im.h);
    vm_seg_trace t1 = {.keep = 1}, t2 = {.keep = 1};
    ck_assert_msg(vm_ctx_segment_image(g_ctx, g_seg, &im, 2048, 512, l1, NULL, NULL, &t1) == 0, "%s", vm_ctx_error(g_ctx));
    ck_assert_msg(vm_ctx_segment_image(c2, g_seg, &im, 2048, 512, l2, NULL, NULL, &t2) == 0, "%s", vm_ctx_error(c2));
    size_t n = (size_t)t1.h4 * t1.w4 * t1.classes;
    ck_assert(t2.h4 == t1.h4 && t2.w4 == t1.w4 && n > 0);
    ck_assert_msg(memcmp(t1.logits4, t2.logits4, n * sizeof(float)) == 0, "logits differ on the off-host path");
    for (int i = 0; i < 4; i++)
        ck_assert(memcmp(t1.feats[i], t2.feats[i], sizeof(float) * t1.fC[i] * t1.fH[i] * t1.fW[i]) == 0);
    ck_assert(memcmp(l1, l2, (size_t)im.w * im.h) == 0);
    vm_seg_trace_free(&t1), vm_seg_trace_free(&t2);
    free(l1), free(l2);
    vm_image_free(&im);
    vm_ctx_free(c2);
    vm_be_free(oh);
}
END_TEST

/* The same goldens with the backbone and the UPerHead on CUDA (#12): the
 * head through the CUDA op backend (src/cuda/ops.cu). Without a GPU (or
 * without a CUDA build) there is nothing to run: the test says so. */
START_TEST(golden_cases_cuda) {
    if (vm_cuda_devices() < 1) {
        if (_i == 0) fprintf(stderr, "  golden_cases_cuda: no CUDA device (or a build without --with-cuda): not run\n");
        return;
    }
    char err[512];
    vm_segmentor *s = vm_segmentor_load(tdata("seg_upernet/model.pth"), err, sizeof err);
    ck_assert_msg(s != NULL, "%s", err);
    ck_assert_msg(vm_segmentor_set_device(s, "cuda", err, sizeof err) == 0, "%s", err);
    vm_ctx *c = vm_ctx_new(vm_segmentor_model(s), err, sizeof err);
    ck_assert_msg(c != NULL, "%s", err);
    golden_case(c, s, _i);
    golden_case(c, s, _i); /* again on the same context: plans and maps reused */
    vm_ctx_free(c);
    vm_segmentor_free(s);
}
END_TEST

/* The public entry point on mini (no near-tie pixel): the golden labels. */
START_TEST(public_segment_file) {
    uint8_t *labels;
    int w, h;
    char err[512];
    ck_assert_msg(vm_ctx_segment_file(g_ctx, g_seg, tdata("seg_upernet/mini.png"), 2048, 36, &labels, &w, &h) == 0, "%s",
                  vm_ctx_error(g_ctx));
    vm_npy lab;
    load_any(&lab, tdata("seg_upernet/mini_label.npy"));
    ck_assert(w == 37 && h == 25 && lab.numel == 37 * 25);
    for (int p = 0; p < w * h; p++) ck_assert_int_eq(labels[p], (int)lab.data[p]);
    free(labels);
    vm_npy_free(&lab);
    ck_assert_int_ne(vm_ctx_segment_file(g_ctx, g_seg, tdata("seg_upernet/manifest.json"), 2048, 512, &labels, &w, &h), 0);
    ck_assert_ptr_null(labels);
    ck_assert_int_eq(vm_ctx_error_code(g_ctx), VM_ERR_IO);
    /* A context made for another model is refused. */
    vm_model *other = vm_model_from_preset("vmamba-tiny-s1l8", 10, 0, err, sizeof err);
    vm_ctx *oc = vm_ctx_new(other, err, sizeof err);
    uint8_t px[3 * 4] = {0}, lab4[4];
    ck_assert_int_ne(vm_ctx_segment(oc, g_seg, px, 2, 2, 64, 64, lab4), 0);
    ck_assert_int_eq(vm_ctx_error_code(oc), VM_ERR_INPUT);
    vm_ctx_free(oc);
    vm_model_free(other);
}
END_TEST

/* meta.dataset_meta read from the pickle (mmengine's HistoryBuffer objects
 * elsewhere in it are skipped, never executed); a file without it: empty. */
START_TEST(dataset_meta_from_checkpoint) {
    vm_dataset_meta m;
    char err[256];
    ck_assert_int_eq(vm_dataset_meta_read(tdata("seg_upernet/model.pth"), &m, err, sizeof err), 0);
    ck_assert_int_eq(m.n, 150);
    ck_assert_ptr_nonnull(m.palette);
    for (int i = 0; i < 150; i++) {
        ck_assert_str_eq(m.names[i], vm_ade20k_class(i));
        ck_assert(memcmp(m.palette + 3 * i, vm_ade20k_color(i), 3) == 0);
    }
    vm_dataset_meta_free(&m);
    ck_assert_int_eq(vm_dataset_meta_read(tdata("v2_s1/model.pth"), &m, err, sizeof err), 0);
    ck_assert_int_eq(m.n, 0);
    ck_assert_int_eq(vm_dataset_meta_read(tdata("seg_upernet/manifest.json"), &m, err, sizeof err), 0);
    ck_assert_int_eq(m.n, 0);
}
END_TEST

/* One segmentor shared by threads, a context each, two input sizes per
 * thread: every label map identical to the golden's (mini has no near-tie
 * pixel). */
typedef struct {
    const vm_segmentor *s;
    const vm_image *im;
    const uint8_t *want;
    int bad;
    char err[256];
} seg_thread;

static void *seg_worker(void *u) {
    seg_thread *t = u;
    vm_ctx *c = vm_ctx_new(vm_segmentor_model(t->s), t->err, sizeof t->err);
    if (!c) { t->bad = -1; return NULL; }
    vm_ctx_set_threads(c, 1);
    uint8_t *lab = malloc((size_t)t->im->w * t->im->h);
    for (int r = 0; r < 6 && !t->bad; r++) {
        /* odd runs at another scale (re-plans the backbone and the head) */
        if (vm_ctx_segment_image(c, t->s, t->im, 2048, r % 2 ? 48 : 36, lab, NULL, NULL, NULL)) {
            snprintf(t->err, sizeof t->err, "%s", vm_ctx_error(c));
            t->bad = -1;
        } else if (r % 2 == 0 && memcmp(lab, t->want, (size_t)t->im->w * t->im->h)) {
            t->bad = 1;
        }
    }
    free(lab);
    vm_ctx_free(c);
    return NULL;
}

START_TEST(shared_segmentor_threads) {
    vm_image im;
    char err[512];
    ck_assert_msg(vm_cv_load(tdata("seg_upernet/mini.png"), &im, err, sizeof err) == 0, "%s", err);
    vm_npy lab;
    load_any(&lab, tdata("seg_upernet/mini_label.npy"));
    uint8_t *want = malloc(lab.numel);
    for (size_t i = 0; i < lab.numel; i++) want[i] = (uint8_t)lab.data[i];
    seg_thread t[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        t[i] = (seg_thread){.s = g_seg, .im = &im, .want = want};
        ck_assert_int_eq(pthread_create(&th[i], NULL, seg_worker, &t[i]), 0);
    }
    for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 3; i++) ck_assert_msg(t[i].bad == 0, "thread %d: %s", i, t[i].bad < 0 ? t[i].err : "labels differ");
    free(want);
    vm_npy_free(&lab);
    vm_image_free(&im);
}
END_TEST

START_TEST(segment_refuses_non_seg_checkpoints) {
    char err[512];
    vm_segmentor *s = vm_segmentor_load(tdata("v2_s1/model.pth"), err, sizeof err);
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(err, "decode_head") != NULL, "message does not name what is missing: %s", err);
    ck_assert_ptr_nonnull(strstr(err, "classification"));
    s = vm_segmentor_load(tdata("backbone_v2/model.pth"), err, sizeof err);
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(err, "decode_head") != NULL, "message does not name what is missing: %s", err);
    s = vm_segmentor_load(tdata("seg_upernet/nonexistent.pth"), err, sizeof err);
    ck_assert_ptr_null(s);
}
END_TEST

Suite *suite_seg(void) {
    Suite *s = suite_create("seg");
    TCase *tc = tcase_create("cv_image");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, cv_decode_variants, 0, (int)(sizeof cv_files / sizeof *cv_files));
    tcase_add_test(tc, cv_decode_real_photos);
    tcase_add_test(tc, cv_decode_errors);
    tcase_add_test(tc, cv_resize_vs_opencv);
    tcase_add_test(tc, golden_resize);
    tcase_add_test(tc, bilinear_variant_vs_ref);
    tcase_add_test(tc, avgpool_variant_vs_ref);
    tcase_add_test(tc, seg_labels_vs_full_resizes);
    suite_add_tcase(s, tc);
    TCase *tg = tcase_create("golden_upernet");
    tcase_set_timeout(tg, 600);
    tcase_add_checked_fixture(tg, seg_setup, seg_teardown); /* in the forked child: OpenMP does not survive a fork */
    tcase_add_test(tg, golden_head_mini);
    tcase_add_loop_test(tg, golden_cases, 0, 4);
    tcase_add_loop_test(tg, golden_cases_cuda, 0, 4);
    tcase_add_test(tg, offhost_paths_bit_identical);
    tcase_add_test(tg, segment_refuses_non_seg_checkpoints);
    tcase_add_test(tg, public_segment_file);
    tcase_add_test(tg, dataset_meta_from_checkpoint);
    tcase_add_test(tg, shared_segmentor_threads);
    suite_add_tcase(s, tg);
    return s;
}
