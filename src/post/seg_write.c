/* seg_write.c - see seg_write.h. */
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seg_write.h"
#include "../core/util.h"

static void png_out(png_structp png, png_bytep p, size_t n) {
    if (vm_atomic_write(png_get_io_ptr(png), p, n)) png_error(png, "write failed");
}
static void png_flush_nop(png_structp png) { (void)png; }
static void png_err(png_structp png, png_const_charp msg) {
    (void)msg;
    png_longjmp(png, 1);
}

/* color_type PNG_COLOR_TYPE_PALETTE (1 byte/pixel) or RGB (3). */
static int write_png(const char *path, const uint8_t *px, int w, int h, int indexed, const uint8_t *pal, int npal,
                     char *err, size_t errlen) {
    vm_atomic_file *f = vm_atomic_open(path, err, errlen);
    if (!f) return -1;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, png_err, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, info ? &info : NULL);
        vm_atomic_abort(f);
        return vm_errf(err, errlen, "%s: cannot write the PNG", path);
    }
    png_set_write_fn(png, f, png_out, png_flush_nop);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, indexed ? PNG_COLOR_TYPE_PALETTE : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (indexed) {
        png_color colors[256];
        for (int i = 0; i < npal; i++) colors[i].red = pal[3 * i], colors[i].green = pal[3 * i + 1], colors[i].blue = pal[3 * i + 2];
        png_set_PLTE(png, info, colors, npal);
    }
    png_write_info(png, info);
    size_t stride = (size_t)w * (indexed ? 1 : 3);
    for (int y = 0; y < h; y++) png_write_row(png, px + (size_t)y * stride);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return vm_atomic_commit(f, err, errlen);
}

int vm_write_png_indexed(const char *path, const uint8_t *labels, int w, int h, const uint8_t *palette, int ncolors,
                         char *err, size_t errlen) {
    if (ncolors < 1 || ncolors > 256) return vm_errf(err, errlen, "%s: %d palette colours", path, ncolors);
    /* Labels beyond the palette would make an invalid PNG. */
    for (size_t i = 0; i < (size_t)w * h; i++)
        if (labels[i] >= ncolors) return vm_errf(err, errlen, "%s: label %d has no palette colour", path, labels[i]);
    return write_png(path, labels, w, h, 1, palette, ncolors, err, errlen);
}

int vm_write_png_rgb(const char *path, const uint8_t *rgb, int w, int h, char *err, size_t errlen) {
    return write_png(path, rgb, w, h, 0, NULL, 0, err, errlen);
}

int vm_write_npy_u8(const char *path, const uint8_t *data, int ndim, const int64_t *shape, char *err, size_t errlen) {
    char hdr[256], shp[160] = "";
    size_t n = 1, off = 0;
    for (int i = 0; i < ndim; i++) {
        off += (size_t)snprintf(shp + off, sizeof shp - off, "%lld%s", (long long)shape[i], ndim == 1 || i < ndim - 1 ? ", " : "");
        n *= (size_t)shape[i];
    }
    int len = snprintf(hdr + 10, sizeof hdr - 10, "{'descr': '|u1', 'fortran_order': False, 'shape': (%s), }", shp);
    int total = 10 + len + 1, pad = (64 - total % 64) % 64;
    memset(hdr + 10 + len, ' ', (size_t)pad);
    hdr[10 + len + pad] = '\n';
    int hl = len + pad + 1;
    memcpy(hdr, "\x93NUMPY\x01\x00", 8);
    hdr[8] = (char)(hl & 0xff);
    hdr[9] = (char)(hl >> 8);
    vm_atomic_file *f = vm_atomic_open(path, err, errlen);
    if (!f) return -1;
    if (vm_atomic_write(f, hdr, (size_t)(10 + hl)) || vm_atomic_write(f, data, n)) {
        vm_atomic_abort(f);
        return vm_errf(err, errlen, "%s: write failed", path);
    }
    return vm_atomic_commit(f, err, errlen);
}
