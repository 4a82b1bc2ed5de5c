/* test_image.c - decoding and preprocessing against Pillow/torchvision.
 *
 * Decoded pixels must be identical (same libjpeg-turbo, same colour
 * conversions); resized pixels identical (Pillow's fixed-point algorithm
 * is reproduced exactly, so no pixel may differ); final tensors within
 * 1e-6 absolute, far inside the 1/255/std bound, since the same
 * float32 operations run in the same order. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "image/image.h"
#include "vmamba.h"

static void load_any(vm_npy *a, const char *path) {
    char err[512];
    ck_assert_msg(vm_npy_read_u8_or_f32(path, a, err, sizeof err) == 0, "%s", err);
}

static void cmp_pixels(const char *what, const vm_image *im, const char *ref_path, int gray_ref) {
    vm_npy r;
    load_any(&r, ref_path);
    ck_assert_int_eq(r.shape[0], im->h);
    ck_assert_int_eq(r.shape[1], im->w);
    size_t n = (size_t)im->w * im->h, bad = 0, first = 0;
    for (size_t i = 0; i < n * 3; i++) {
        float want = gray_ref ? r.data[i / 3] : r.data[i];
        if ((float)im->rgb[i] != want && !bad++) first = i;
    }
    ck_assert_msg(bad == 0, "%s: %zu of %zu values differ (first at %zu: %d vs %g)", what, bad, n * 3, first,
                  im->rgb[first], gray_ref ? r.data[first / 3] : r.data[first]);
    vm_npy_free(&r);
}

static const struct {
    const char *file, *stem;
    int has_resized, gray;
} photos[] = {
    {"china.jpg", "china", 1, 0},
    {"flower.jpg", "flower", 1, 0},
    {"china_crop.png", "china_crop", 1, 0},
    {"flower_gray.jpg", "flower_gray", 0, 1},
    {"flower_cmyk.jpg", "flower_cmyk", 0, 0},
    {"china_420.jpg", "china_420", 0, 0},
    {"china_420_progressive.jpg", "china_420", 0, 0},
};

START_TEST(photo_pipeline) {
    const char *file = photos[_i].file, *stem = photos[_i].stem;
    vm_image im;
    char err[512];
    ck_assert_msg(vm_image_load(tdata("preprocess/%s", file), &im, err, sizeof err) == 0, "%s", err);
    cmp_pixels(file, &im, tdata("preprocess/%s_decoded.npy", stem), photos[_i].gray);
    vm_preprocess_opts o;
    vm_preprocess_defaults(&o);
    if (photos[_i].has_resized) {
        vm_image r;
        vm_preprocess_resize(&im, &o, &r);
        cmp_pixels("resized", &r, tdata("preprocess/%s_resized.npy", stem), 0);
        vm_image_free(&r);
    }
    float *t = malloc(sizeof(float) * 3 * 224 * 224);
    ck_assert(vm_preprocess_file(tdata("preprocess/%s", file), &o, t, err, sizeof err) == 0);
    vm_npy ref;
    tload(&ref, tdata("preprocess/%s_tensor.npy", stem));
    ck_assert_int_eq(ref.numel, 3 * 224 * 224);
    for (size_t i = 0; i < ref.numel; i++)
        ck_assert_msg(fabsf(t[i] - ref.data[i]) <= 1e-6f, "%s tensor[%zu]: %.8g vs %.8g", file, i, t[i], ref.data[i]);
    vm_npy_free(&ref);
    free(t);
    vm_image_free(&im);
}
END_TEST

static const char *pngs[] = {"rgb8", "rgba8", "palette", "palette_trns", "gray8", "gray_alpha", "gray1", "gray2", "gray16", "rgb16"};

START_TEST(png_variants) {
    vm_image im;
    char err[512];
    ck_assert_msg(vm_image_load(tdata("png/%s.png", pngs[_i]), &im, err, sizeof err) == 0, "%s", err);
    cmp_pixels(pngs[_i], &im, tdata("png/%s_rgb.npy", pngs[_i]), 0);
    vm_image_free(&im);
}
END_TEST

/* Resizing to the same size is the identity; upsampling and odd sizes
 * keep every pixel within range (no overflow in the fixed point). */
START_TEST(resize_properties) {
    vm_image in = {7, 5, malloc(7 * 5 * 3)}, out;
    for (int i = 0; i < 7 * 5 * 3; i++) in.rgb[i] = (uint8_t)(i % 2 ? 255 : 0);
    vm_resize_bicubic(&in, &out, 7, 5);
    ck_assert_mem_eq(in.rgb, out.rgb, 7 * 5 * 3);
    vm_image_free(&out);
    vm_resize_bicubic(&in, &out, 31, 2);
    ck_assert_int_eq(out.w, 31);
    ck_assert_int_eq(out.h, 2);
    vm_image_free(&out);
    vm_resize_bicubic(&in, &out, 1, 1);
    vm_image_free(&out);
    vm_image_free(&in);
}
END_TEST

/* The fast resize (planar, one channel for gray regions, row-wise vertical
 * pass, ring of rows) against the plain reference in Pillow's order: every
 * byte equal, since both sum the same integer products (the order of an
 * int32 sum that never overflows does not change it). Colour, gray, and gray
 * with one colour pixel inside or outside what the passes read (the
 * restart from one channel to three); 0/255 pixels for the most overshoot;
 * up, down, mixed and one-pass resizes of 1xN, Nx1 and odd shapes, whole and
 * in windows. */
START_TEST(resize_fast_equals_reference) {
    static const int shapes[][4] = {
        /* in w, in h, out w, out h */
        {37, 23, 80, 50}, {37, 23, 13, 9}, {37, 23, 101, 7}, {37, 23, 5, 64}, {37, 23, 37, 50}, {37, 23, 80, 23},
        {1, 400, 51, 51}, {400, 1, 51, 51}, {1, 1, 9, 7}, {2, 300, 64, 3}, {5, 900, 33, 33}, {300, 4, 1, 1},
        {64, 64, 64, 1}, {64, 64, 1, 64}, {250, 130, 17, 300},
    };
    uint32_t seed = 12345;
#define RND() (seed = seed * 1664525u + 1013904223u, seed >> 8)
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int kind = 0; kind < 5; kind++) {
            /* 0 colour, 1 gray, 2 gray + a colour pixel at the end, 3 at the
             * start, 4 gray 0/255 */
            const int W = shapes[s][0], H = shapes[s][1], OW = shapes[s][2], OH = shapes[s][3];
            vm_image in = {W, H, malloc((size_t)W * H * 3)};
            for (int i = 0; i < W * H; i++) {
                uint8_t g = kind == 4 ? (RND() & 1 ? 255 : 0) : (uint8_t)RND();
                for (int c = 0; c < 3; c++) in.rgb[i * 3 + c] = kind == 0 ? (uint8_t)RND() : g;
            }
            if (kind == 2) in.rgb[(size_t)W * H * 3 - 2] ^= 1;
            if (kind == 3) in.rgb[2] ^= 0x80;
            for (int t = 0; t < 6; t++) {
                int x0 = 0, y0 = 0, cw = OW, ch = OH;
                if (t) {
                    x0 = (int)(RND() % (unsigned)OW);
                    y0 = (int)(RND() % (unsigned)OH);
                    cw = 1 + (int)(RND() % (unsigned)(OW - x0));
                    ch = 1 + (int)(RND() % (unsigned)(OH - y0));
                }
                vm_image a, b;
                ck_assert(vm_resize_bicubic_window_ref(&in, OW, OH, x0, y0, cw, ch, &a) == 0);
                ck_assert(vm_resize_bicubic_window(&in, OW, OH, x0, y0, cw, ch, &b) == 0);
                ck_assert_int_eq(a.w, b.w);
                ck_assert_int_eq(a.h, b.h);
                for (size_t i = 0; i < (size_t)cw * ch * 3; i++)
                    ck_assert_msg(a.rgb[i] == b.rgb[i], "%dx%d -> %dx%d kind %d window (%d,%d)+%dx%d: byte %zu is %d, reference %d",
                                  W, H, OW, OH, kind, x0, y0, cw, ch, i, b.rgb[i], a.rgb[i]);
                vm_image_free(&a);
                vm_image_free(&b);
            }
            vm_image_free(&in);
        }
#undef RND
}
END_TEST

static void expect_image_error(const void *data, size_t n, const char *needle) {
    vm_image im;
    char err[512] = "";
    ck_assert_int_ne(vm_image_decode(data, n, "img", &im, err, sizeof err), 0);
    ck_assert_msg(strstr(err, needle) && strstr(err, "img"), "error '%s' lacks '%s'", err, needle);
    ck_assert(im.rgb == NULL);
}


START_TEST(corrupt_images) {
    expect_image_error("GIF89a....", 10, "unsupported image format");
    expect_image_error("", 0, "empty");
    const char *files[2] = {"preprocess/china_420.jpg", "preprocess/china_crop.png"};
    for (int f = 0; f < 2; f++) {
        size_t n;
        uint8_t *b = tslurp(tdata("%s", files[f]), &n);
        for (int i = 1; i < 16; i++) expect_image_error(b, n * (size_t)i / 16, f ? "PNG" : "JPEG");
        /* Flip bytes in the middle: must error or decode, never crash. */
        for (size_t i = n / 3; i < n / 3 + 64; i++) b[i] ^= 0x5a;
        vm_image im;
        char err[256];
        if (vm_image_decode(b, n, "img", &im, err, sizeof err) == 0) vm_image_free(&im);
        free(b);
    }
    /* Huge dimensions in a PNG header: refused before allocating. */
    size_t n;
    uint8_t *b = tslurp(tdata("png/gray8.png"), &n);
    b[16] = 0x7f; b[17] = 0xff; b[18] = 0xff; b[19] = 0xff; /* width */
    expect_image_error(b, n, "PNG");
    free(b);
    /* Huge dimensions in a JPEG SOF0. */
    b = tslurp(tdata("preprocess/china_420.jpg"), &n);
    for (size_t i = 2; i + 9 < n; i++)
        if (b[i] == 0xff && b[i + 1] == 0xc0) {
            b[i + 5] = 0xff; b[i + 6] = 0xf0; b[i + 7] = 0xff; b[i + 8] = 0xf0;
            break;
        }
    expect_image_error(b, n, "JPEG");
    free(b);
}
END_TEST

START_TEST(imagenet_labels) {
    ck_assert_str_eq(vm_imagenet_label(0), "tench");
    ck_assert_ptr_nonnull(vm_imagenet_label(999));
    ck_assert_ptr_null(vm_imagenet_label(1000));
    ck_assert_ptr_null(vm_imagenet_label(-1));
}
END_TEST

Suite *suite_image(void) {
    Suite *s = suite_create("image");
    TCase *tc = tcase_create("image");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, photo_pipeline, 0, (int)(sizeof photos / sizeof *photos));
    tcase_add_loop_test(tc, png_variants, 0, (int)(sizeof pngs / sizeof *pngs));
    tcase_add_test(tc, resize_properties);
    tcase_add_test(tc, resize_fast_equals_reference);
    tcase_add_test(tc, corrupt_images);
    tcase_add_test(tc, imagenet_labels);
    suite_add_tcase(s, tc);
    return s;
}

/* The whole chain on the real digits model: PNG files -> our decoding and
 * preprocessing (size 32, no crop) -> forward -> the reference logits,
 * within the golden tolerance 1e-4 * max(1, |ref|). */
START_TEST(digits_from_png) {
    char err[512];
    vm_model *m = vm_model_load(tdata("digits/model.pth"), NULL, err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    vm_preprocess_opts o;
    vm_preprocess_defaults(&o);
    o.size = 32;
    o.no_crop = 1;
    float *x = malloc(sizeof(float) * 200 * 3 * 32 * 32), *logits = malloc(sizeof(float) * 200 * 10);
    for (int i = 0; i < 200; i++)
        ck_assert_msg(vm_preprocess_file(tdata("digits/test/%03d.png", i), &o, x + (size_t)i * 3 * 32 * 32, err, sizeof err) == 0, "%s", err);
    ck_assert(vm_forward(m, x, 200, 32, 32, logits) == 0);
    vm_npy ref;
    tload(&ref, tdata("digits/ref_logits.npy"));
    tclose("digits logits from PNG", logits, ref.data, ref.numel, 1e-4);
    vm_npy_free(&ref);
    free(x);
    free(logits);
    vm_model_free(m);
}
END_TEST

Suite *suite_image_model(void) {
    Suite *s = suite_create("image+model");
    TCase *tc = tcase_create("image+model");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, digits_from_png);
    suite_add_tcase(s, tc);
    return s;
}
