/* resize_bicubic_ref.c - the plain scalar reference of Pillow's bicubic
 * resize window (vm_resize_bicubic_window_ref in image.h): interleaved RGB
 * throughout, the horizontal pass over every row the vertical pass reads
 * into one buffer, then the vertical pass tap by tap per output value, as
 * Pillow's ImagingResampleHorizontal/Vertical_8bpc do. The fast version
 * (resize_bicubic.c) is tested equal to it. */
#include <stdlib.h>
#include <string.h>

#include "bicubic_window.h"

#define PRECISION_BITS VM_BICUBIC_PRECISION_BITS

int vm_resize_bicubic_window_ref(const vm_image *in, int out_w, int out_h, int x0, int y0, int cw, int ch, vm_image *out) {
    vm_bicubic_window win;
    int rc = vm_bicubic_window_begin(in, out_w, out_h, x0, y0, cw, ch, out, &win);
    if (rc) return rc < 0 ? -1 : 0; /* a bad window, or Pillow's plain copy */
    const int need_h = win.need_h, need_v = win.need_v;
    uint8_t *tmp = NULL;
    rc = -1;
    /* Rows of the source the vertical pass reads (all of the window's
     * rows when there is no vertical pass). */
    int y_first = y0, y_last = y0 + ch;
    if (need_v) {
        y_first = win.v.bounds[0];
        y_last = win.v.bounds[ch * 2 - 2] + win.v.bounds[ch * 2 - 1];
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
            const int xmin = win.h.bounds[x * 2], xn = win.h.bounds[x * 2 + 1];
            const int32_t *k = win.h.k + (size_t)x * win.h.ksize;
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
            const int ymin = win.v.bounds[y * 2] - y_first, yn = win.v.bounds[y * 2 + 1];
            const int32_t *k = win.v.k + (size_t)y * win.v.ksize;
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
    vm_bicubic_window_free(&win);
    if (rc) vm_image_free(out);
    return rc;
}
