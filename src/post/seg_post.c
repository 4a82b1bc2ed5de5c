/* seg_post.c - see seg_post.h. */
#include <stdlib.h>
#include <string.h>

#include "seg_post.h"
#include "../ops/dense.h"

void vm_seg_normalize(const uint8_t *bgr, int w, int h, float *out) {
    const float mean[3] = {123.675f, 116.28f, 103.53f}, std[3] = {58.395f, 57.12f, 57.375f};
    size_t n = (size_t)w * h;
    for (int c = 0; c < 3; c++) {
        float *o = out + c * n;
        const uint8_t *s = bgr + (2 - c); /* RGB channel c is BGR 2-c */
        for (size_t i = 0; i < n; i++) o[i] = ((float)s[3 * i] - mean[c]) / std[c];
    }
}

/* A two-slot cache of rows produced by a callback, keyed by row index. */
typedef struct {
    float *slot[2];
    int have[2];
} row_cache;

typedef struct {
    const float *logits;
    int h4, w4, C, W1, W0;
    vm_bilin_axis ay1, ax1, ay2, ax2;
} seg_ctx;

/* Slot holding row r, or the slot to fill with it (never the one holding
 * `keep`, the other row the caller still needs); *fresh says which. */
static float *cache_get(row_cache *c, int r, int keep, int *fresh) {
    for (int k = 0; k < 2; k++)
        if (c->have[k] == r) { *fresh = 0; return c->slot[k]; }
    int k = c->have[0] == keep ? 1 : 0;
    c->have[k] = r;
    *fresh = 1;
    return c->slot[k];
}

/* Row r of the first resize (H1 rows of W1*C), built from logits rows. */
static const float *mid_row(const seg_ctx *s, row_cache *src, row_cache *mid, int r, int keep) {
    int fresh;
    float *m = cache_get(mid, r, keep, &fresh);
    if (!fresh) return m;
    int a = s->ay1.i0[r], b = s->ay1.i1[r];
    float *ra = cache_get(src, a, b, &fresh);
    if (fresh) vm_bilin_hrow(s->logits + (size_t)a * s->w4 * s->C, s->C, s->C, &s->ax1, ra);
    float *rb = cache_get(src, b, a, &fresh);
    if (fresh) vm_bilin_hrow(s->logits + (size_t)b * s->w4 * s->C, s->C, s->C, &s->ax1, rb);
    vm_bilin_vrow(ra, rb, s->ay1.l0[r], s->ay1.l1[r], (size_t)s->W1 * s->C, m);
    return m;
}

int vm_seg_labels(const float *logits, int h4, int w4, int C, int H1, int W1, int H0, int W0, uint8_t *labels,
                  vm_seg_row_fn row_cb, void *user) {
    seg_ctx s = {.logits = logits, .h4 = h4, .w4 = w4, .C = C, .W1 = W1, .W0 = W0};
    vm_bilin_axis_make(&s.ay1, h4, H1);
    vm_bilin_axis_make(&s.ax1, w4, W1);
    vm_bilin_axis_make(&s.ay2, H1, H0);
    vm_bilin_axis_make(&s.ax2, W1, W0);
    int oom = 0, same = H1 == H0 && W1 == W0;
#pragma omp parallel
    {
        size_t n1 = (size_t)W1 * C, n0 = (size_t)W0 * C;
        float *mem = malloc(sizeof(float) * (4 * n1 + 3 * n0));
        if (!mem) {
#pragma omp atomic write
            oom = 1;
        }
        row_cache src = {{mem, mem + n1}, {-1, -1}}, mid = {{mem + 2 * n1, mem + 3 * n1}, {-1, -1}};
        row_cache fin = {{mem + 4 * n1, mem + 4 * n1 + n0}, {-1, -1}};
        float *row = mem + 4 * n1 + 2 * n0;
#pragma omp for schedule(static)
        for (int y = 0; y < H0; y++) {
            if (!mem) continue;
            int a = s.ay2.i0[y], b = s.ay2.i1[y];
            const float *out;
            if (same) { /* no resize back (F.interpolate copies): the mid row itself */
                out = mid_row(&s, &src, &mid, y, -1);
            } else {
                /* Horizontal pass of the second resize on the two mid rows. */
                int fresh;
                float *ha = cache_get(&fin, a, b, &fresh);
                if (fresh) vm_bilin_hrow(mid_row(&s, &src, &mid, a, b), C, C, &s.ax2, ha);
                float *hb = cache_get(&fin, b, a, &fresh);
                if (fresh) vm_bilin_hrow(mid_row(&s, &src, &mid, b, a), C, C, &s.ax2, hb);
                vm_bilin_vrow(ha, hb, s.ay2.l0[y], s.ay2.l1[y], n0, row);
                out = row;
            }
            if (row_cb) row_cb(user, y, out);
            uint8_t *L = labels + (size_t)y * W0;
            for (int x = 0; x < W0; x++) {
                const float *v = out + (size_t)x * C;
                int best = 0;
                float bv = v[0];
                for (int c = 1; c < C; c++)
                    if (v[c] > bv) bv = v[c], best = c;
                L[x] = (uint8_t)best;
            }
        }
        free(mem);
    }
    vm_bilin_axis_free(&s.ay1);
    vm_bilin_axis_free(&s.ax1);
    vm_bilin_axis_free(&s.ay2);
    vm_bilin_axis_free(&s.ax2);
    return oom ? -1 : 0;
}

void vm_seg_overlay(const uint8_t *bgr, const uint8_t *labels, int w, int h, const uint8_t *palette, int ncolors,
                    uint8_t *out_rgb) {
    size_t n = (size_t)w * h;
    static const uint8_t black[3] = {0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = labels[i] < ncolors ? palette + 3 * labels[i] : black;
        for (int c = 0; c < 3; c++)
            out_rgb[3 * i + c] = (uint8_t)((double)bgr[3 * i + 2 - c] * 0.5 + (double)p[c] * 0.5);
    }
}
