/* decode_png.c - PNG through libpng, converted to RGB the way Pillow's
 * convert('RGB') does: palette -> its colours, 1/2/4-bit gray scaled to
 * 0..255, 16-bit RGB(A)/LA -> the high byte (Pillow's ";16B" unpackers),
 * 16-bit gray -> clipped to 255 (Pillow opens it as mode I, and I -> L
 * clips), alpha and tRNS dropped. */
#include <stdlib.h>
#include <string.h>

#include "decode_libs.h"
#include "image.h"
#include "../core/util.h"

/* Pillow's conversions as libpng transforms; gray16 is read natively. */
static void pillow_setup(png_structp png, png_infop info, void *user) {
    int *gray16 = user;
    int depth = png_get_bit_depth(png, info), ct = png_get_color_type(png, info);
    int gray = !(ct & PNG_COLOR_MASK_COLOR) && ct != PNG_COLOR_TYPE_PALETTE;
    *gray16 = gray && depth == 16;
    if (ct == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (gray && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (depth == 16 && !*gray16) png_set_strip_16(png); /* high byte, no rounding */
    if (*gray16) png_set_swap(png);                      /* read 16-bit values natively */
}

/* libpng's rows (ch channels of 8 bits, or 16-bit gray) into RGB. Only
 * pixel arithmetic: scripts/fuzz.sh leaves it out of coverage feedback
 * (tests/fuzz/coverage-ignore.txt), out of line so that applies. */
static __attribute__((noinline)) void rgb_from_png_rows(const uint8_t *pix, size_t rowbytes, int w, int h, int ch, int gray16, uint8_t *rgb) {
    for (int y = 0; y < h; y++) {
        const uint8_t *r = pix + (size_t)y * rowbytes;
        uint8_t *o = rgb + (size_t)y * w * 3;
        if (gray16) {
            for (int x = 0; x < w; x++, o += 3) {
                unsigned v = ((const uint16_t *)r)[x * ch];
                o[0] = o[1] = o[2] = (uint8_t)(v > 255 ? 255 : v);
            }
        } else if (ch <= 2) {
            for (int x = 0; x < w; x++, o += 3) o[0] = o[1] = o[2] = r[x * ch];
        } else {
            for (int x = 0; x < w; x++, o += 3) {
                o[0] = r[x * ch];
                o[1] = r[x * ch + 1];
                o[2] = r[x * ch + 2];
            }
        }
    }
}

int vm_decode_png(const uint8_t *buf, size_t len, const char *what, vm_image *out, char *err, size_t errlen) {
    uint8_t *pix;
    size_t rowbytes;
    int w, h, ch, gray16 = 0;
    if (vm_png_read(buf, len, what, pillow_setup, &gray16, 0, &pix, &rowbytes, &w, &h, &ch, err, errlen)) {
        vm_image_free(out);
        return -1;
    }
    out->rgb = malloc((size_t)w * h * 3);
    if (!out->rgb) {
        free(pix);
        return vm_errf(err, errlen, "%s: cannot decode the PNG: out of memory for the RGB image", what);
    }
    out->w = w;
    out->h = h;
    rgb_from_png_rows(pix, rowbytes, w, h, ch, gray16, out->rgb);
    free(pix);
    return 0;
}
