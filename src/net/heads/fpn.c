/* fpn.c - mmdet FPN (start_level 0, no extra convs, no norm/activation):
 * lateral 1x1 convs, top-down nearest-upsample adds, 3x3 output convs, and
 * P6 as max_pool2d(P5, kernel 1, stride 2), i.e. every other pixel. */
#include "maskrcnn.h"

#include <math.h>
#include <string.h>

/* dst (Ho, Wo, C) += F.interpolate(src (Hi, Wi, C), size=(Ho, Wo),
 * 'nearest'): source index floor(dst * (in / out)) in float32, clamped,
 * or dst >> 1 for an exact doubling (PyTorch's nearest_idx). */
static int nearest_idx(int o, int in, int out) {
    if (out == 2 * in) return o >> 1;
    if (out == in) return o;
    float scale = (float)in / (float)out;
    int i = (int)floorf((float)o * scale);
    return i < in - 1 ? i : in - 1;
}

static void upsample_add(float *dst, int Ho, int Wo, const float *src, int Hi, int Wi, int C) {
#pragma omp parallel for schedule(static)
    for (int y = 0; y < Ho; y++) {
        const float *srow = src + (size_t)nearest_idx(y, Hi, Ho) * Wi * C;
        float *drow = dst + (size_t)y * Wo * C;
        for (int x = 0; x < Wo; x++) {
            const float *s = srow + (size_t)nearest_idx(x, Wi, Wo) * C;
            float *d = drow + (size_t)x * C;
            for (int c = 0; c < C; c++) d[c] += s[c];
        }
    }
}

int det_fpn_forward(const det_weights *w, det_plan *p, const vm_feats *in) {
    for (int i = 0; i < 4; i++)
        if (vm_conv_run(p->lateral[i], in->data[i], p->lat[i])) return -1;
    for (int i = 3; i >= 1; i--) upsample_add(p->lat[i - 1], p->H[i - 1], p->W[i - 1], p->lat[i], p->H[i], p->W[i], w->F);
    for (int i = 0; i < 4; i++)
        if (vm_conv_run(p->fpn[i], p->lat[i], p->P[i])) return -1;
    int F = w->F;
    for (int y = 0; y < p->H[4]; y++)
        for (int x = 0; x < p->W[4]; x++)
            memcpy(p->P[4] + ((size_t)y * p->W[4] + x) * F, p->P[3] + ((size_t)(2 * y) * p->W[3] + 2 * x) * F,
                   (size_t)F * sizeof(float));
    return 0;
}
