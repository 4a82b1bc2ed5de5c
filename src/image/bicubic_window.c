/* bicubic_window.c - see bicubic_window.h. */
#include "bicubic_window.h"

#include <stdlib.h>
#include <string.h>

int vm_bicubic_window_begin(const vm_image *in, int out_w, int out_h, int x0, int y0, int cw, int ch, vm_image *out,
                            vm_bicubic_window *win) {
    memset(out, 0, sizeof *out);
    memset(win, 0, sizeof *win);
    if (out_w < 1 || out_h < 1 || cw < 1 || ch < 1 || x0 < 0 || y0 < 0 || x0 > out_w - cw || y0 > out_h - ch) return -1;
    win->need_h = out_w != in->w;
    win->need_v = out_h != in->h;
    out->rgb = malloc((size_t)cw * ch * 3);
    if (!out->rgb) return -1;
    out->w = cw;
    out->h = ch;
    if (!win->need_h && !win->need_v) { /* Pillow returns a copy */
        for (int y = 0; y < ch; y++)
            memcpy(out->rgb + (size_t)y * cw * 3, in->rgb + ((size_t)(y + y0) * in->w + x0) * 3, (size_t)cw * 3);
        return 1;
    }
    if ((win->need_h && vm_bicubic_coeffs_init(&win->h, in->w, out_w, x0, cw)) ||
        (win->need_v && vm_bicubic_coeffs_init(&win->v, in->h, out_h, y0, ch))) {
        vm_bicubic_window_free(win);
        vm_image_free(out);
        return -1;
    }
    return 0;
}

void vm_bicubic_window_free(vm_bicubic_window *win) {
    vm_bicubic_coeffs_free(&win->h);
    vm_bicubic_coeffs_free(&win->v);
}
