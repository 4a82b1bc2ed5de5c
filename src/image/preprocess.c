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

int vm_preprocess_resize(const vm_image *im, const vm_preprocess_opts *o, vm_image *out) {
    if (o->no_crop) {
        vm_resize_bicubic(im, out, o->size, o->size);
        return 0;
    }
    int R = (int)(o->size / o->crop_pct);
    if (R < 1) R = 1;
    int w = im->w, h = im->h, nw, nh;
    if ((w <= h && w == R) || (h <= w && h == R)) { nw = w; nh = h; }
    else if (w <= h) { nw = R; nh = (int)((double)R * h / w); }
    else { nh = R; nw = (int)((double)R * w / h); }
    if (nw < 1) nw = 1;
    if (nh < 1) nh = 1;
    vm_resize_bicubic(im, out, nw, nh);
    return 0;
}

void vm_preprocess_crop_normalize(const vm_image *im, const vm_preprocess_opts *o, float *out) {
    const int S = o->size;
    /* torchvision pads a too-small image with zeros, centred, then crops */
    int top = round_half_even((im->h - S) / 2.0), left = round_half_even((im->w - S) / 2.0);
    if (im->h < S) top = -((S - im->h) / 2);
    if (im->w < S) left = -((S - im->w) / 2);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                int sy = y + top, sx = x + left;
                float v = 0.0f;
                if (sy >= 0 && sy < im->h && sx >= 0 && sx < im->w) v = (float)im->rgb[((size_t)sy * im->w + sx) * 3 + c];
                out[((size_t)c * S + y) * S + x] = (v / 255.0f - o->mean[c]) / o->std[c];
            }
}

int vm_preprocess_image(const vm_image *im, const vm_preprocess_opts *o, float *out) {
    vm_image r;
    vm_preprocess_resize(im, o, &r);
    vm_preprocess_crop_normalize(&r, o, out);
    vm_image_free(&r);
    return 0;
}

int vm_preprocess_file(const char *path, const vm_preprocess_opts *o, float *out, char *err, size_t errlen) {
    if (o->size < 1 || o->size > 16384) return vm_errf(err, errlen, "preprocess size %d out of range", o->size);
    if (!(o->crop_pct > 0.0 && o->crop_pct <= 1.0)) return vm_errf(err, errlen, "crop_pct %g must be in (0, 1]", o->crop_pct);
    vm_image im;
    if (vm_image_load(path, &im, err, errlen)) return -1;
    vm_preprocess_image(&im, o, out);
    vm_image_free(&im);
    return 0;
}
