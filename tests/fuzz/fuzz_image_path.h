/* fuzz_image_path.h - the image fuzz harness's path, stage by stage: the
 * harness (tests/fuzz/fuzz_image.c) runs it and bench/image_path.c times
 * each stage, so the bench measures exactly what the fuzzer executes.
 * Input: 4 bytes of options, then the file:
 *   bytes 0-1  size = 1 + (little-endian value % 64), or % 512 when byte 3
 *              bit 2 is set
 *   byte 2     crop_pct = (value + 1) / 256, or 1e-6 when byte 3 bit 1 is set
 *   byte 3     bit 0: no_crop */
#ifndef VM_FUZZ_IMAGE_PATH_H
#define VM_FUZZ_IMAGE_PATH_H

#include <stdint.h>
#include <stdlib.h>

#include "image/decode_cv.h"
#include "image/image.h"
#include "image/resize_cv.h"

/* The preprocessing options from the 4 option bytes at data. */
static inline void fuzz_image_opts(const uint8_t *data, vm_preprocess_opts *o) {
    vm_preprocess_defaults(o);
    o->size = 1 + (int)(((unsigned)data[0] | ((unsigned)data[1] << 8)) % ((data[3] & 4) ? 512 : 64));
    o->crop_pct = (data[3] & 2) ? 1e-6 : (data[2] + 1) / 256.0;
    o->no_crop = data[3] & 1;
}

/* Pillow-exact preprocessing of a decoded image (bicubic window resize +
 * normalise) into a tensor of its own. */
static inline void fuzz_image_preprocess(const vm_image *im, const vm_preprocess_opts *o) {
    char err[512];
    float *t = malloc((size_t)3 * o->size * o->size * sizeof *t);
    vm_preprocess_image_err(im, o, t, "fuzz", err, sizeof err);
    free(t);
}

/* OpenCV-exact keep-ratio linear resize of an image from vm_cv_decode to
 * fit 48x32. */
static inline void fuzz_image_cv_resize(const vm_image *im) {
    int w1, h1;
    vm_cv_rescale_size(im->w, im->h, 48, 32, &w1, &h1);
    if (w1 >= 1 && h1 >= 1) {
        uint8_t *r = malloc((size_t)w1 * h1 * 3);
        vm_cv_resize_linear_ref(im->rgb, im->w, im->h, 3, r, w1, h1);
        free(r);
    }
}

#endif
