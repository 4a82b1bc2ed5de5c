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

/* Images larger than this many pixels are refused before any allocation:
 * Pillow's own decompression-bomb limit (2 x Image.MAX_IMAGE_PIXELS), so
 * anything the official pipeline opens is opened here, and a small hostile
 * file cannot ask for more than ~1 GB of pixels. */
#define VM_IMAGE_MAX_PIXELS 178956970u
#define VM_IMAGE_MAX_SIDE 65500

int vm_image_decode(const uint8_t *buf, size_t len, const char *what, vm_image *out, char *err, size_t errlen);
int vm_image_load(const char *path, vm_image *out, char *err, size_t errlen);
void vm_image_free(vm_image *im);

int vm_decode_jpeg(const uint8_t *buf, size_t len, const char *what, vm_image *out, char *err, size_t errlen);
int vm_decode_png(const uint8_t *buf, size_t len, const char *what, vm_image *out, char *err, size_t errlen);

/* Pillow's Image.resize(..., BICUBIC) for an RGB image (a = -0.5, support
 * scaled when downsampling, 22-bit fixed-point coefficients, horizontal
 * pass first, uint8 rounding and clipping after each pass). */
int vm_resize_bicubic(const vm_image *in, vm_image *out, int out_w, int out_h);
/* Only the window [x0, x0 + cw) x [y0, y0 + ch) of that out_w x out_h
 * resize, bit for bit as the whole would have it: memory and time follow
 * the window. -1 on a bad window or out of memory. */
int vm_resize_bicubic_window(const vm_image *in, int out_w, int out_h, int x0, int y0, int cw, int ch, vm_image *out);
/* The same, as plain scalar code in Pillow's order (the reference the
 * fast version is tested equal to). */
int vm_resize_bicubic_window_ref(const vm_image *in, int out_w, int out_h, int x0, int y0, int cw, int ch, vm_image *out);

/* The steps of vm_preprocess_file, for tests and batch decoding. */
#include "vmamba.h"
int vm_preprocess_resize(const vm_image *im, const vm_preprocess_opts *o, vm_image *out);
void vm_preprocess_crop_normalize(const vm_image *im, const vm_preprocess_opts *o, float *out);
int vm_preprocess_image(const vm_image *im, const vm_preprocess_opts *o, float *out);
/* The same, with an error message naming `what`. Memory follows the
 * output (only the cropped window is resized), whatever the input's shape. */
int vm_preprocess_image_err(const vm_image *im, const vm_preprocess_opts *o, float *out, const char *what, char *err,
                            size_t errlen);
/* Resized sides past this are refused (an absurd crop_pct or aspect). */
#define VM_PREPROCESS_MAX_RESIZE (1 << 30)

#endif
