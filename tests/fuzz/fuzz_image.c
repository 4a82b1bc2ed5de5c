/* fuzz_image.c - libFuzzer harness for the image decoders (JPEG via
 * TurboJPEG, PNG via libpng) and the preprocessing of what they return at
 * fuzzer-chosen sizes and crops. Input: 4 bytes of options, then the file
 * (the format and each stage: fuzz_image_path.h, which bench/image_path.c
 * times stage by stage).
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

#include "fuzz_image_path.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 4) return 0;
    vm_preprocess_opts o;
    fuzz_image_opts(data, &o);
    vm_image im;
    char err[512];
    if (vm_image_decode(data + 4, size - 4, "fuzz", &im, err, sizeof err) == 0) {
        fuzz_image_preprocess(&im, &o);
        vm_image_free(&im);
    }
    /* The OpenCV-exact decoder (EXIF parsing, CMYK) and keep-ratio resize,
     * on the same file (it was given the option bytes too, so no seed
     * reached it). */
    if (vm_cv_decode(data + 4, size - 4, "fuzz", &im, err, sizeof err) == 0) {
        fuzz_image_cv_resize(&im);
        vm_image_free(&im);
    }
    return 0;
}
