/* mask_paste.c - a detection's M x M mask probabilities pasted into the
 * image as mmdet's _do_paste_mask does on the CPU (F.grid_sample, bilinear,
 * zero padding, align_corners=False), then thresholded. */
#include "det_post.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Normalised grid coordinate of pixel centre p in [lo, hi], as torch
 * computes it in float32: ((p + 0.5) - lo) / (hi - lo) * 2 - 1, inf -> 0. */
static float grid_coord(int p, float lo, float hi) {
    float g = ((float)p + 0.5f - lo) / (hi - lo) * 2.0f - 1.0f;
    return isinf(g) ? 0.0f : g;
}

/* Source coordinate of grid value g for an input of size M (torch's
 * vectorised CPU kernel: (g + 1) * (M / 2) - 0.5). */
static float unnorm(float g, int M) { return (g + 1.0f) * ((float)M / 2.0f) - 0.5f; }

static void window(const float box[4], int img_h, int img_w, int *x0, int *y0, int *x1, int *y1) {
    float fx0 = fmaxf(floorf(box[0]) - 1.0f, 0.0f), fy0 = fmaxf(floorf(box[1]) - 1.0f, 0.0f);
    float fx1 = fminf(ceilf(box[2]) + 1.0f, (float)img_w), fy1 = fminf(ceilf(box[3]) + 1.0f, (float)img_h);
    /* NaN boxes paste nothing */
    *x0 = fx0 >= 0.0f && fx0 <= (float)img_w ? (int)fx0 : img_w;
    *y0 = fy0 >= 0.0f && fy0 <= (float)img_h ? (int)fy0 : img_h;
    *x1 = fx1 >= 0.0f && fx1 <= (float)img_w ? (int)fx1 : 0;
    *y1 = fy1 >= 0.0f && fy1 <= (float)img_h ? (int)fy1 : 0;
}

/* Bilinear tap of one axis: lower index and weight of the upper one. */
typedef struct {
    int i0;
    float f;
} tap;

static tap tap_at(float u) {
    float fl = floorf(u);
    tap t = {isnan(u) ? -100 : fl < -2.0f ? -2 : fl > 1e6f ? 1000000 : (int)fl, u - fl};
    return t;
}

static float at(const float *prob, int M, int y, int x) {
    return (x >= 0 && x < M && y >= 0 && y < M) ? prob[y * M + x] : 0.0f;
}

static float sample(const float *prob, int M, tap ty, tap tx) {
    float nw = (1.0f - ty.f) * (1.0f - tx.f), ne = (1.0f - ty.f) * tx.f;
    float sw = ty.f * (1.0f - tx.f), se = ty.f * tx.f;
    return at(prob, M, ty.i0, tx.i0) * nw + at(prob, M, ty.i0, tx.i0 + 1) * ne + at(prob, M, ty.i0 + 1, tx.i0) * sw +
           at(prob, M, ty.i0 + 1, tx.i0 + 1) * se;
}

void vm_paste_mask_ref(const float *prob, int M, const float box[4], int img_h, int img_w, float thr, uint8_t *full) {
    int x0, y0, x1, y1;
    window(box, img_h, img_w, &x0, &y0, &x1, &y1);
    memset(full, 0, (size_t)img_h * img_w);
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            float gx = grid_coord(x, box[0], box[2]), gy = grid_coord(y, box[1], box[3]);
            float v = sample(prob, M, tap_at(unnorm(gy, M)), tap_at(unnorm(gx, M)));
            full[(size_t)y * img_w + x] = v >= thr;
        }
}

/* The same samples with the per-column and per-row taps computed once
 * (the grid is separable), rows in parallel for large windows. */
int vm_paste_mask(const float *prob, int M, const float box[4], int img_h, int img_w, float thr, vm_det_mask *out) {
    int x0, y0, x1, y1;
    window(box, img_h, img_w, &x0, &y0, &x1, &y1);
    memset(out, 0, sizeof *out);
    if (x1 <= x0 || y1 <= y0) return 0;
    int w = x1 - x0, h = y1 - y0;
    tap *tx = malloc((size_t)w * sizeof *tx);
    uint8_t *bits = malloc((size_t)w * h);
    if (!tx || !bits) { free(tx); free(bits); return -1; }
    for (int x = 0; x < w; x++) tx[x] = tap_at(unnorm(grid_coord(x0 + x, box[0], box[2]), M));
#pragma omp parallel for schedule(static) if ((size_t)w * h > 65536)
    for (int y = 0; y < h; y++) {
        tap ty = tap_at(unnorm(grid_coord(y0 + y, box[1], box[3]), M));
        uint8_t *row = bits + (size_t)y * w;
        for (int x = 0; x < w; x++) row[x] = sample(prob, M, ty, tx[x]) >= thr;
    }
    free(tx);
    out->x = x0; out->y = y0; out->w = w; out->h = h; out->bits = bits;
    return 0;
}
