/* resize_bicubic_ref.c - the plain scalar reference of Pillow's bicubic
 * resize window (vm_resize_bicubic_window_ref in image.h): interleaved RGB
 * throughout, the horizontal pass over every row the vertical pass reads
 * into one buffer, then the vertical pass tap by tap per output value, as
 * Pillow's ImagingResampleHorizontal/Vertical_8bpc do. The fast version
 * (resize_bicubic.c) is tested equal to it. */
#include <stdlib.h>
#include <string.h>

#include "bicubic_coeffs.h"
#include "image.h"

#define PRECISION_BITS VM_BICUBIC_PRECISION_BITS

int vm_resize_bicubic_window_ref(const vm_image *in, int out_w, int out_h, int x0, int y0, int cw, int ch, vm_image *out) {
    memset(out, 0, sizeof *out);
    if (out_w < 1 || out_h < 1 || cw < 1 || ch < 1 || x0 < 0 || y0 < 0 || x0 > out_w - cw || y0 > out_h - ch) return -1;
    const int need_h = out_w != in->w, need_v = out_h != in->h;
    out->rgb = malloc((size_t)cw * ch * 3);
    if (!out->rgb) return -1;
    out->w = cw;
    out->h = ch;
    if (!need_h && !need_v) { /* Pillow returns a copy */
        for (int y = 0; y < ch; y++)
            memcpy(out->rgb + (size_t)y * cw * 3, in->rgb + ((size_t)(y + y0) * in->w + x0) * 3, (size_t)cw * 3);
        return 0;
    }
    vm_bicubic_coeffs chz = {0}, cv = {0};
    uint8_t *tmp = NULL;
    int rc = -1;
    if ((need_h && vm_bicubic_coeffs_init(&chz, in->w, out_w, x0, cw)) ||
        (need_v && vm_bicubic_coeffs_init(&cv, in->h, out_h, y0, ch)))
        goto done;
    /* Rows of the source the vertical pass reads (all of the window's
     * rows when there is no vertical pass). */
    int y_first = y0, y_last = y0 + ch;
    if (need_v) {
        y_first = cv.bounds[0];
        y_last = cv.bounds[ch * 2 - 2] + cv.bounds[ch * 2 - 1];
    }
    /* The horizontal pass (or, without one, the window's columns) over
     * those rows: src is (y_last - y_first) rows of cw pixels. */
    const int rows = y_last - y_first;
    tmp = malloc((size_t)cw * rows * 3);
    if (!tmp) goto done;
    for (int y = 0; y < rows; y++) {
        const uint8_t *r = in->rgb + (size_t)(y + y_first) * in->w * 3;
        uint8_t *o = tmp + (size_t)y * cw * 3;
        if (!need_h) {
            memcpy(o, r + (size_t)x0 * 3, (size_t)cw * 3);
            continue;
        }
        for (int x = 0; x < cw; x++) {
            const int xmin = chz.bounds[x * 2], xn = chz.bounds[x * 2 + 1];
            const int32_t *k = chz.k + (size_t)x * chz.ksize;
            int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
            for (int i = 0; i < xn; i++) {
                const uint8_t *p = r + (size_t)(xmin + i) * 3;
                s0 += p[0] * k[i];
                s1 += p[1] * k[i];
                s2 += p[2] * k[i];
            }
            o[x * 3] = vm_bicubic_clip8(s0);
            o[x * 3 + 1] = vm_bicubic_clip8(s1);
            o[x * 3 + 2] = vm_bicubic_clip8(s2);
        }
    }
    if (need_v) {
        for (int y = 0; y < ch; y++) {
            const int ymin = cv.bounds[y * 2] - y_first, yn = cv.bounds[y * 2 + 1];
            const int32_t *k = cv.k + (size_t)y * cv.ksize;
            uint8_t *o = out->rgb + (size_t)y * cw * 3;
            for (int x = 0; x < cw * 3; x++) {
                int32_t s = 1 << (PRECISION_BITS - 1);
                for (int i = 0; i < yn; i++) s += tmp[(size_t)(ymin + i) * cw * 3 + x] * k[i];
                o[x] = vm_bicubic_clip8(s);
            }
        }
    } else {
        memcpy(out->rgb, tmp, (size_t)cw * ch * 3);
    }
    rc = 0;
done:
    free(tmp);
    vm_bicubic_coeffs_free(&chz);
    vm_bicubic_coeffs_free(&cv);
    if (rc) vm_image_free(out);
    return rc;
}
