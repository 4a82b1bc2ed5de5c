/* decode_png.c - PNG through libpng, converted to RGB the way Pillow's
 * convert('RGB') does: palette -> its colours, 1/2/4-bit gray scaled to
 * 0..255, 16-bit RGB(A)/LA -> the high byte (Pillow's ";16B" unpackers),
 * 16-bit gray -> clipped to 255 (Pillow opens it as mode I, and I -> L
 * clips), alpha and tRNS dropped. */
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "../core/util.h"

typedef struct {
    const uint8_t *buf;
    size_t len, pos;
    char *err;
    size_t errlen;
    const char *what;
} png_src;

static void png_read_mem(png_structp png, png_bytep dst, size_t n) {
    png_src *s = png_get_io_ptr(png);
    if (n > s->len - s->pos) png_error(png, "truncated PNG data");
    memcpy(dst, s->buf + s->pos, n);
    s->pos += n;
}

static void png_on_error(png_structp png, png_const_charp msg) {
    png_src *s = png_get_error_ptr(png);
    if (strstr(msg, "memory")) vm_errf(s->err, s->errlen, "%s: cannot decode the PNG: %s", s->what, msg);
    else vm_errf(s->err, s->errlen, "%s: corrupt PNG: %s", s->what, msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

int vm_decode_png(const uint8_t *buf, size_t len, const char *what, vm_image *out, char *err, size_t errlen) {
    png_src src = {buf, len, 0, err, errlen, what};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_on_error, png_on_warning);
    if (!png) return vm_errf(err, errlen, "%s: cannot initialise the PNG decoder", what);
    png_infop info = png_create_info_struct(png);
    /* volatile: they change between setjmp and a longjmp back */
    uint8_t *volatile pix = NULL;
    png_bytep *volatile rows = NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        /* png_destroy_read_struct sets info to NULL: decide first whether
         * png_on_error already wrote libpng's reason into err. */
        const int no_info = !info;
        free(pix);
        free(rows);
        png_destroy_read_struct(&png, info ? &info : NULL, NULL);
        vm_image_free(out);
        if (no_info) vm_errf(err, errlen, "%s: cannot initialise the PNG decoder", what);
        return -1;
    }
    png_set_user_limits(png, VM_IMAGE_MAX_SIDE, VM_IMAGE_MAX_SIDE);
    png_set_chunk_malloc_max(png, 64u << 20);
    png_set_read_fn(png, &src, png_read_mem);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    int depth = png_get_bit_depth(png, info), ct = png_get_color_type(png, info);
    if ((uint64_t)w * h > VM_IMAGE_MAX_PIXELS) png_error(png, "image dimensions too large");
    int gray = !(ct & PNG_COLOR_MASK_COLOR) && ct != PNG_COLOR_TYPE_PALETTE;
    int gray16 = gray && depth == 16;
    if (ct == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (gray && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (depth == 16 && !gray16) png_set_strip_16(png); /* high byte, no rounding */
    if (gray16) png_set_swap(png);                      /* read 16-bit values natively */
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    int ch = png_get_channels(png, info);
    pix = malloc(rowbytes * h);
    rows = malloc(sizeof(png_bytep) * h);
    if (!pix || !rows) png_error(png, "out of memory for the decoded rows");
    for (png_uint_32 y = 0; y < h; y++) rows[y] = pix + y * rowbytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    out->rgb = malloc((size_t)w * h * 3);
    if (!out->rgb) png_error(png, "out of memory for the RGB image");
    out->w = (int)w;
    out->h = (int)h;
    for (png_uint_32 y = 0; y < h; y++) {
        const uint8_t *r = rows[y];
        uint8_t *o = out->rgb + (size_t)y * w * 3;
        for (png_uint_32 x = 0; x < w; x++, o += 3) {
            if (gray16) {
                unsigned v = ((const uint16_t *)r)[x * ch];
                o[0] = o[1] = o[2] = (uint8_t)(v > 255 ? 255 : v);
            } else if (ch <= 2) {
                o[0] = o[1] = o[2] = r[x * ch];
            } else {
                o[0] = r[x * ch];
                o[1] = r[x * ch + 1];
                o[2] = r[x * ch + 2];
            }
        }
    }
    free(pix);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    return 0;
}
