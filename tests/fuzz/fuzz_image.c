/* fuzz_image.c - libFuzzer harness for the image decoders (JPEG via
 * TurboJPEG, PNG via libpng) and the preprocessing of what they return.
 * Build and run: scripts/fuzz.sh [seconds] (needs clang). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "image/decode_cv.h"
#include "image/image.h"
#include "image/resize_cv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    vm_image im;
    char err[512];
    if (vm_image_decode(data, size, "fuzz", &im, err, sizeof err) == 0) {
        /* Keep the fuzzer fast: preprocess only small images. */
        if ((size_t)im.w * im.h <= 512 * 512) {
            vm_preprocess_opts o;
            vm_preprocess_defaults(&o);
            o.size = 32;
            float *t = malloc(3 * 32 * 32 * sizeof *t);
            vm_preprocess_image(&im, &o, t);
            free(t);
        }
        vm_image_free(&im);
    }
    /* The OpenCV-exact decoder (EXIF parsing, CMYK) and keep-ratio resize. */
    if (vm_cv_decode(data, size, "fuzz", &im, err, sizeof err) == 0) {
        int w1, h1;
        vm_cv_rescale_size(im.w, im.h, 48, 32, &w1, &h1);
        if (w1 >= 1 && h1 >= 1) {
            uint8_t *r = malloc((size_t)w1 * h1 * 3);
            vm_cv_resize_linear_ref(im.rgb, im.w, im.h, 3, r, w1, h1);
            free(r);
        }
        vm_image_free(&im);
    }
    return 0;
}
