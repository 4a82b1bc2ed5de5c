/* seg_write.h - picture and array outputs of the dense tasks, written
 * atomically (no partial file is ever left): indexed PNG with a palette,
 * RGB PNG, uint8 .npy. */
#ifndef VM_POST_SEG_WRITE_H
#define VM_POST_SEG_WRITE_H

#include <stddef.h>
#include <stdint.h>

/* labels (h, w) as an 8-bit palette PNG; colour i = palette[3i..3i+2] for
 * i < ncolors (<= 256). */
int vm_write_png_indexed(const char *path, const uint8_t *labels, int w, int h, const uint8_t *palette, int ncolors,
                         char *err, size_t errlen);
int vm_write_png_rgb(const char *path, const uint8_t *rgb, int w, int h, char *err, size_t errlen);
/* A C-order uint8 array (NumPy '|u1'). */
int vm_write_npy_u8(const char *path, const uint8_t *data, int ndim, const int64_t *shape, char *err, size_t errlen);

#endif
