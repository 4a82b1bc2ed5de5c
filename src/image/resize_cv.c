/* resize_cv.c - OpenCV 4.6 INTER_LINEAR on uint8, bit-exact.
 * Per axis (imgproc/resize.cpp, resizeGeneric_): scale = 1/(out/in) in
 * double; f = (float)((d + 0.5) * scale - 0.5); s = floor(f); f -= s.
 * Columns clamp to the border with f = 0; rows keep f and clamp the two
 * row indices. Coefficients are rint(w * 2048) of the float weights.
 * Horizontal pass: int32 T = S[s]*a0 + S[s+1]*a1 (= 2^11 scale). Vertical
 * pass as OpenCV's VResizeLinear (SIMD and tail alike):
 * ((b0*(T0>>4))>>16) + ((b1*(T1>>4))>>16) + 2) >> 2. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "resize_cv.h"
#include "../core/util.h"

double vm_cv_rescale_size(int w, int h, int scale_w, int scale_h, int *w1, int *h1) {
    double lo = scale_w < scale_h ? scale_w : scale_h, hi = scale_w < scale_h ? scale_h : scale_w;
    double f1 = hi / (double)(w > h ? w : h), f2 = lo / (double)(w < h ? w : h);
    double f = f1 < f2 ? f1 : f2;
    *w1 = (int)((double)w * f + 0.5);
    *h1 = (int)((double)h * f + 0.5);
    return f;
}

typedef struct {
    int *ofs;       /* source index (in pixels) */
    short *a;       /* two coefficients per output position */
} axis_tab;

/* clamp_cols: the column rule (border -> f = 0); rows keep f. */
static void make_axis(int in, int out, int clamp_cols, axis_tab *t) {
    double scale = 1.0 / ((double)out / (double)in);
    t->ofs = vm_xmalloc(sizeof(int) * (size_t)out * 2);
    t->a = vm_xmalloc(sizeof(short) * (size_t)out * 2);
    for (int d = 0; d < out; d++) {
        float f = (float)((d + 0.5) * scale - 0.5);
        int s = (int)floorf(f);
        f -= (float)s;
        int s0, s1;
        if (clamp_cols) {
            if (s < 0) s = 0, f = 0;
            if (s >= in - 1) s = in - 1, f = 0;
            s0 = s;
            s1 = s + 1 < in ? s + 1 : in - 1;
        } else {
            s0 = s < 0 ? 0 : s > in - 1 ? in - 1 : s;
            s1 = s + 1 < 0 ? 0 : s + 1 > in - 1 ? in - 1 : s + 1;
        }
        t->ofs[2 * d] = s0;
        t->ofs[2 * d + 1] = s1;
        t->a[2 * d] = (short)rintf((1.0f - f) * 2048.0f);
        t->a[2 * d + 1] = (short)rintf(f * 2048.0f);
    }
}

static void free_axis(axis_tab *t) {
    free(t->ofs);
    free(t->a);
}

static void hrow(const uint8_t *S, int cn, const axis_tab *x, int ow, int *T) {
    for (int d = 0; d < ow; d++) {
        const uint8_t *p0 = S + (size_t)x->ofs[2 * d] * cn, *p1 = S + (size_t)x->ofs[2 * d + 1] * cn;
        int a0 = x->a[2 * d], a1 = x->a[2 * d + 1];
        for (int k = 0; k < cn; k++) T[d * cn + k] = p0[k] * a0 + p1[k] * a1;
    }
}

static void vrow(const int *T0, const int *T1, int b0, int b1, int n, uint8_t *D) {
    for (int i = 0; i < n; i++) {
        int v = (((b0 * (T0[i] >> 4)) >> 16) + ((b1 * (T1[i] >> 4)) >> 16) + 2) >> 2;
        D[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
}

/* Special cases shared by both variants; returns 1 when handled. */
static int special(const uint8_t *src, int w, int h, int cn, uint8_t *dst, int ow, int oh) {
    if (ow == w && oh == h) {
        memcpy(dst, src, (size_t)w * h * cn);
        return 1;
    }
    if (w == 2 * ow && h == 2 * oh) { /* INTER_AREA fast path, 2x2 means */
        for (int y = 0; y < oh; y++) {
            const uint8_t *r0 = src + (size_t)(2 * y) * w * cn, *r1 = r0 + (size_t)w * cn;
            uint8_t *D = dst + (size_t)y * ow * cn;
            for (int x = 0; x < ow; x++)
                for (int k = 0; k < cn; k++) {
                    int i = 2 * x * cn + k;
                    D[x * cn + k] = (uint8_t)((r0[i] + r0[i + cn] + r1[i] + r1[i + cn] + 2) >> 2);
                }
        }
        return 1;
    }
    return 0;
}

void vm_cv_resize_linear_ref(const uint8_t *src, int w, int h, int cn, uint8_t *dst, int ow, int oh) {
    if (special(src, w, h, cn, dst, ow, oh)) return;
    axis_tab X, Y;
    make_axis(w, ow, 1, &X);
    make_axis(h, oh, 0, &Y);
    /* Every source row's horizontal pass once, then the vertical pass. */
    size_t n = (size_t)ow * cn;
    int *T = vm_xmalloc(sizeof(int) * n * (size_t)h);
    for (int y = 0; y < h; y++) hrow(src + (size_t)y * w * cn, cn, &X, ow, T + (size_t)y * n);
    for (int y = 0; y < oh; y++)
        vrow(T + (size_t)Y.ofs[2 * y] * n, T + (size_t)Y.ofs[2 * y + 1] * n, Y.a[2 * y], Y.a[2 * y + 1], (int)n,
             dst + (size_t)y * n);
    free(T);
    free_axis(&X);
    free_axis(&Y);
}

void vm_cv_resize_linear(const uint8_t *src, int w, int h, int cn, uint8_t *dst, int ow, int oh) {
    if (special(src, w, h, cn, dst, ow, oh)) return;
    axis_tab X, Y;
    make_axis(w, ow, 1, &X);
    make_axis(h, oh, 0, &Y);
    size_t n = (size_t)ow * cn;
    /* Each thread walks a contiguous band of output rows and keeps the two
     * source rows it last converted (consecutive output rows mostly share
     * them), so the horizontal work is not repeated within a band. */
#pragma omp parallel
    {
        int *T = vm_xmalloc(sizeof(int) * n * 2);
        int have[2] = {-1, -1};
#pragma omp for schedule(static)
        for (int y = 0; y < oh; y++) {
            int r0 = Y.ofs[2 * y], r1 = Y.ofs[2 * y + 1];
            int s0 = have[0] == r0 ? 0 : have[1] == r0 ? 1 : -1;
            if (s0 < 0) { /* keep the slot that may hold r1 */
                s0 = have[0] == r1 ? 1 : 0;
                hrow(src + (size_t)r0 * w * cn, cn, &X, ow, T + (size_t)s0 * n);
                have[s0] = r0;
            }
            int s1 = have[s0] == r1 ? s0 : have[1 - s0] == r1 ? 1 - s0 : -1;
            if (s1 < 0) {
                s1 = 1 - s0;
                hrow(src + (size_t)r1 * w * cn, cn, &X, ow, T + (size_t)s1 * n);
                have[s1] = r1;
            }
            const int *row[2] = {T + (size_t)s0 * n, T + (size_t)s1 * n};
            vrow(row[0], row[1], Y.a[2 * y], Y.a[2 * y + 1], (int)n, dst + (size_t)y * n);
        }
        free(T);
    }
    free_axis(&X);
    free_axis(&Y);
}
