/* bicubic_window.h - the start that the fast window resize
 * (resize_bicubic.c) and its plain reference (resize_bicubic_ref.c) share,
 * so both refuse the same windows and return the same plain copy. */
#ifndef VM_BICUBIC_WINDOW_H
#define VM_BICUBIC_WINDOW_H

#include "bicubic_coeffs.h"
#include "image.h"

typedef struct {
    int need_h, need_v;   /* a pass is needed: that side changes size      */
    vm_bicubic_coeffs h, v; /* its coefficients for the window (zeroed if not) */
} vm_bicubic_window;

/* Checks the window [x0, x0 + cw) x [y0, y0 + ch) of an out_w x out_h
 * resize of in and allocates out (cw x ch). When neither side changes size
 * Pillow returns a copy: out holds the window, and 1. Otherwise 0, with the
 * coefficients of the passes needed in win (vm_bicubic_window_free). -1 on a
 * bad window or out of memory, nothing left allocated. */
int vm_bicubic_window_begin(const vm_image *in, int out_w, int out_h, int x0, int y0, int cw, int ch, vm_image *out,
                            vm_bicubic_window *win);
void vm_bicubic_window_free(vm_bicubic_window *win);

#endif
