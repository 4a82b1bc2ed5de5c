/* test_seg.c - the segmentation pipeline (OpenCV-exact decode and resize,
 * bilinear / pooling kernels, UPerHead, whole pipeline) against OpenCV 4.6
 * and the official mmseg golden (tests/data/seg_upernet).
 * Tolerances: decoded and resized pixels and label maps are exact (integer
 * arithmetic reproduced); float maps within the golden's 1e-4*max(1,|ref|). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "image/decode_cv.h"
#include "image/resize_cv.h"

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

Suite *suite_seg(void) {
    Suite *s = suite_create("seg");
    TCase *tc = tcase_create("cv_image");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, cv_decode_variants, 0, (int)(sizeof cv_files / sizeof *cv_files));
    tcase_add_test(tc, cv_decode_real_photos);
    tcase_add_test(tc, cv_decode_errors);
    tcase_add_test(tc, cv_resize_vs_opencv);
    tcase_add_test(tc, golden_resize);
    suite_add_tcase(s, tc);
    return s;
}
