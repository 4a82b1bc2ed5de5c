/* fuzz_image.c - libFuzzer harness for the image decoders (JPEG via
 * TurboJPEG, PNG via libpng) and the preprocessing of what they return at
 * fuzzer-chosen sizes and crops. Input: 4 bytes of options, then the file:
 *   bytes 0-1  size = 1 + (little-endian value % 64), or % 512 when byte 3
 *              bit 2 is set
 *   byte 2     crop_pct = (value + 1) / 256, or 1e-6 when byte 3 bit 1 is set
 *   byte 3     bit 0: no_crop
 * Memory must follow the output whatever the image's shape (a 65500x1 PNG
 * is a seed). Sizes over 64 only with bit 2: the resize and normalisation
 * loops cost size^2 and took 70% of the time at sizes up to 512, while
 * every branch of preprocess.c / resize_bicubic.c depends on how the
 * image, the resized image and the crop compare, which sizes up to 64
 * reach with the seeds' images (1x1 to 65500 pixels a side).
 *
 * Worst case (why scripts/fuzz.sh gives this harness -timeout=120, not 10):
 * deflate expands up to ~1032:1, so a 64 KiB input can hold a 1-bit PNG of
 * Pillow's limit, VM_IMAGE_MAX_PIXELS = 179 M pixels (JPEG needs bits per
 * 8x8 block: ~16 M at most). That image is decoded twice (537 MB of RGB
 * each time) and resized with ~4 multiply-adds per source pixel and channel
 * (resize_bicubic.c gives the bound). A 13377x13377 1-bit palette PNG,
 * interlaced, no crop, size 512 (21 875 bytes): 13.5-18.4 s of CPU in this
 * build (ASan+UBSan, 1.2 GB RSS), 8.5 s release; all of it bounded by the
 * pixel count, none of it a hang (bench/RESULTS.md "Image fuzz harness: worst
 * cases"). Build and run: scripts/fuzz.sh [seconds] image (needs clang). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "image/decode_cv.h"
#include "image/image.h"
#include "image/resize_cv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 4) return 0;
    vm_preprocess_opts o;
    vm_preprocess_defaults(&o);
    o.size = 1 + (int)(((unsigned)data[0] | ((unsigned)data[1] << 8)) % ((data[3] & 4) ? 512 : 64));
    o.crop_pct = (data[3] & 2) ? 1e-6 : (data[2] + 1) / 256.0;
    o.no_crop = data[3] & 1;
    vm_image im;
    char err[512];
    if (vm_image_decode(data + 4, size - 4, "fuzz", &im, err, sizeof err) == 0) {
        float *t = malloc((size_t)3 * o.size * o.size * sizeof *t);
        vm_preprocess_image_err(&im, &o, t, "fuzz", err, sizeof err);
        free(t);
        vm_image_free(&im);
    }
    /* The OpenCV-exact decoder (EXIF parsing, CMYK) and keep-ratio resize,
     * on the same file (it was given the option bytes too, so no seed
     * reached it). */
    if (vm_cv_decode(data + 4, size - 4, "fuzz", &im, err, sizeof err) == 0) {
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
