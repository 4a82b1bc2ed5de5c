/* image.h - decode JPEG/PNG to 8-bit RGB exactly as Pillow's
 * Image.open(f).convert('RGB') does, and the official eval preprocessing
 * (Pillow bicubic resize, center crop, normalise). */
#ifndef VM_IMAGE_H
#define VM_IMAGE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int w, h;
    uint8_t *rgb; /* h * w * 3, row-major */
} vm_image;

/* Images larger than this many pixels are refused before any allocation. */
#define VM_IMAGE_MAX_PIXELS (1u << 28)
#define VM_IMAGE_MAX_SIDE 65500

int vm_image_decode(const uint8_t *buf, size_t len, const char *what, vm_image *out, char *err, size_t errlen);
int vm_image_load(const char *path, vm_image *out, char *err, size_t errlen);
void vm_image_free(vm_image *im);

int vm_decode_jpeg(const uint8_t *buf, size_t len, const char *what, vm_image *out, char *err, size_t errlen);
int vm_decode_png(const uint8_t *buf, size_t len, const char *what, vm_image *out, char *err, size_t errlen);

/* Pillow's Image.resize(..., BICUBIC) for an RGB image (a = -0.5, support
 * scaled when downsampling, 22-bit fixed-point coefficients, horizontal
 * pass first, uint8 rounding and clipping after each pass). */
void vm_resize_bicubic(const vm_image *in, vm_image *out, int out_w, int out_h);

/* The steps of vm_preprocess_file, for tests and batch decoding. */
#include "vmamba.h"
int vm_preprocess_resize(const vm_image *im, const vm_preprocess_opts *o, vm_image *out);
void vm_preprocess_crop_normalize(const vm_image *im, const vm_preprocess_opts *o, float *out);
int vm_preprocess_image(const vm_image *im, const vm_preprocess_opts *o, float *out);

#endif
