/* fuzz_image.c - libFuzzer harness for the image decoders (JPEG via
 * TurboJPEG, PNG via libpng) and the preprocessing of what they return.
 * Build and run: scripts/fuzz.sh [seconds] (needs clang). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "image/image.h"

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
    return 0;
}
