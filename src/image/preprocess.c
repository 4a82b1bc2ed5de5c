/* preprocess.c - the official evaluation transform:
 *   convert('RGB') -> Resize(int(size / crop_pct), BICUBIC) on the shorter
 *   side (long side int(R * long / short), unchanged if already R) ->
 *   CenterCrop(size) (offsets rounded half-to-even, zero padding if the
 *   image is smaller) -> /255 -> (x - mean) / std, float32, CHW.
 * With no_crop: Resize((size, size)) straight, as TEST.CROP=False. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vmamba.h"
#include "image.h"
#include "../core/util.h"

void vm_preprocess_defaults(vm_preprocess_opts *o) {
    o->size = 224;
    o->crop_pct = 0.875;
    o->no_crop = 0;
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    memcpy(o->mean, mean, sizeof mean);
    memcpy(o->std, std, sizeof std);
}

/* Python's round() for x.5 cases: half to even. */
static int round_half_even(double x) {
    double r = nearbyint(x); /* default rounding mode is to-nearest-even */
    return (int)r;
}

/* The size the official transform resizes to (before the centre crop).
 * -1 if it would not fit an int (an absurd crop_pct or aspect ratio). */
static int resized_size(const vm_image *im, const vm_preprocess_opts *o, int *nw, int *nh) {
    if (o->no_crop) {
        *nw = *nh = o->size;
        return 0;
    }
    double Rd = floor(o->size / o->crop_pct);
    if (!(Rd < (double)VM_PREPROCESS_MAX_RESIZE)) return -1;
    int R = Rd < 1 ? 1 : (int)Rd;
    int w = im->w, h = im->h;
    double lw, lh;
    if ((w <= h && w == R) || (h <= w && h == R)) { lw = w; lh = h; }
    else if (w <= h) { lw = R; lh = floor((double)R * h / w); }
    else { lh = R; lw = floor((double)R * w / h); }
    if (!(lw < (double)VM_PREPROCESS_MAX_RESIZE && lh < (double)VM_PREPROCESS_MAX_RESIZE)) return -1;
    *nw = lw < 1 ? 1 : (int)lw;
    *nh = lh < 1 ? 1 : (int)lh;
    return 0;
}

int vm_preprocess_resize(const vm_image *im, const vm_preprocess_opts *o, vm_image *out) {
    int nw, nh;
    memset(out, 0, sizeof *out);
    if (resized_size(im, o, &nw, &nh)) return -1;
    return vm_resize_bicubic(im, out, nw, nh);
}

/* Centre-crop offsets in an image of the given size (torchvision: rounded
 * half to even; a too-small image is padded with zeros, centred). */
static void crop_offsets(int w, int h, int S, int *left, int *top) {
    *top = round_half_even((h - S) / 2.0);
    *left = round_half_even((w - S) / 2.0);
    if (h < S) *top = -((S - h) / 2);
    if (w < S) *left = -((S - w) / 2);
}

/* Normalise window `win` (which sits at (wx, wy) inside an image whose
 * crop starts at (left, top)) into the S x S CHW tensor; zeros elsewhere.
 * Out of line: the fuzz build leaves it out of coverage feedback by name
 * (tests/fuzz/coverage-ignore.txt). */
static __attribute__((noinline)) void normalize_window(const vm_image *win, int wx, int wy, int left, int top, const vm_preprocess_opts *o, float *out) {
    const int S = o->size;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                int sy = y + top - wy, sx = x + left - wx;
                float v = 0.0f;
                if (sy >= 0 && sy < win->h && sx >= 0 && sx < win->w) v = (float)win->rgb[((size_t)sy * win->w + sx) * 3 + c];
                out[((size_t)c * S + y) * S + x] = (v / 255.0f - o->mean[c]) / o->std[c];
            }
}

void vm_preprocess_crop_normalize(const vm_image *im, const vm_preprocess_opts *o, float *out) {
    int left, top;
    crop_offsets(im->w, im->h, o->size, &left, &top);
    normalize_window(im, 0, 0, left, top, o, out);
}

static int preprocess(const vm_image *im, const vm_preprocess_opts *o, float *out, const char *what, char *err, size_t errlen) {
    int nw, nh;
    if (resized_size(im, o, &nw, &nh))
        return vm_errf(err, errlen, "%s: a %dx%d image at size %d, crop_pct %g would be resized past %d pixels a side", what,
                       im->w, im->h, o->size, o->crop_pct, VM_PREPROCESS_MAX_RESIZE);
    /* Resize only the part of the resized image the crop keeps. */
    int left, top;
    crop_offsets(nw, nh, o->size, &left, &top);
    int x0 = left < 0 ? 0 : left, y0 = top < 0 ? 0 : top;
    int x1 = left + o->size > nw ? nw : left + o->size, y1 = top + o->size > nh ? nh : top + o->size;
    vm_image win;
    if (vm_resize_bicubic_window(im, nw, nh, x0, y0, x1 - x0, y1 - y0, &win))
        return vm_errf(err, errlen, "%s: out of memory resizing a %dx%d image to %dx%d", what, im->w, im->h, nw, nh);
    normalize_window(&win, x0, y0, left, top, o, out);
    vm_image_free(&win);
    return 0;
}

int vm_preprocess_image(const vm_image *im, const vm_preprocess_opts *o, float *out) {
    return preprocess(im, o, out, "image", NULL, 0);
}

int vm_preprocess_image_err(const vm_image *im, const vm_preprocess_opts *o, float *out, const char *what, char *err,
                            size_t errlen) {
    return preprocess(im, o, out, what, err, errlen);
}

int vm_preprocess_file(const char *path, const vm_preprocess_opts *o, float *out, char *err, size_t errlen) {
    if (o->size < 1 || o->size > 16384) return vm_errf(err, errlen, "preprocess size %d out of range", o->size);
    if (!(o->crop_pct > 0.0 && o->crop_pct <= 1.0)) return vm_errf(err, errlen, "crop_pct %g must be in (0, 1]", o->crop_pct);
    vm_image im;
    if (vm_image_load(path, &im, err, errlen)) return -1;
    int rc = preprocess(&im, o, out, path, err, errlen);
    vm_image_free(&im);
    return rc;
}
