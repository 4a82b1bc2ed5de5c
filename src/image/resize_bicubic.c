/* resize_bicubic.c - Pillow's bicubic resampling, reproduced to the bit
 * so preprocessing matches the official (PIL-based) evaluation.
 *
 * For each output pixel: centre = (x + 0.5) * scale in input coordinates,
 * support = 2 * max(scale, 1), taps in [centre - support + 0.5,
 * centre + support + 0.5) clipped to the image, weights
 * bicubic((tap - centre + 0.5) / max(scale, 1)) normalised to sum 1, then
 * rounded to 22-bit fixed point. Each pass accumulates in 32-bit integers
 * from a 0.5 rounding bias and clips to uint8. The horizontal pass runs
 * first, over only the rows the vertical pass will read. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "../core/util.h"

#define PRECISION_BITS (32 - 8 - 2)

static double bicubic(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

typedef struct {
    int ksize;
    int *bounds;  /* [out][2]: first tap, tap count */
    int32_t *k;   /* [out][ksize] fixed-point weights */
} coeffs;

static void precompute(coeffs *c, int in_size, int out_size) {
    double scale = (double)in_size / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    double *kk = vm_xmalloc((size_t)out_size * ksize * sizeof *kk);
    c->ksize = ksize;
    c->bounds = vm_xmalloc((size_t)out_size * 2 * sizeof *c->bounds);
    c->k = vm_xmalloc((size_t)out_size * ksize * sizeof *c->k);
    for (int xx = 0; xx < out_size; xx++) {
        double center = (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
        if (xmin < 0) xmin = 0;
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        double *k = kk + (size_t)xx * ksize;
        for (int x = 0; x < xmax; x++) {
            double w = bicubic((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for (int x = 0; x < xmax; x++)
            if (ww != 0.0) k[x] /= ww;
        for (int x = xmax; x < ksize; x++) k[x] = 0;
        c->bounds[xx * 2] = xmin;
        c->bounds[xx * 2 + 1] = xmax;
    }
    for (size_t i = 0; i < (size_t)out_size * ksize; i++)
        c->k[i] = kk[i] < 0 ? (int32_t)(-0.5 + kk[i] * (1 << PRECISION_BITS)) : (int32_t)(0.5 + kk[i] * (1 << PRECISION_BITS));
    free(kk);
}

static void coeffs_free(coeffs *c) {
    free(c->bounds);
    free(c->k);
}

static inline uint8_t clip8(int32_t v) {
    v >>= PRECISION_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

void vm_resize_bicubic(const vm_image *in, vm_image *out, int out_w, int out_h) {
    out->w = out_w;
    out->h = out_h;
    out->rgb = vm_xmalloc((size_t)out_w * out_h * 3);
    if (out_w == in->w && out_h == in->h) { /* Pillow returns a copy */
        memcpy(out->rgb, in->rgb, (size_t)out_w * out_h * 3);
        return;
    }
    coeffs ch, cv;
    precompute(&ch, in->w, out_w);
    precompute(&cv, in->h, out_h);
    const int need_h = out_w != in->w, need_v = out_h != in->h;
    /* Rows of the source the vertical pass reads. */
    int y_first = 0, y_last = in->h;
    if (need_v) {
        y_first = cv.bounds[0];
        y_last = cv.bounds[out_h * 2 - 2] + cv.bounds[out_h * 2 - 1];
    }
    const uint8_t *src = in->rgb;
    int src_w = in->w, src_rows = in->h, row0 = 0;
    uint8_t *tmp = NULL;
    if (need_h) {
        int rows = y_last - y_first;
        tmp = vm_xmalloc((size_t)out_w * rows * 3);
        for (int y = 0; y < rows; y++) {
            const uint8_t *r = in->rgb + (size_t)(y + y_first) * in->w * 3;
            uint8_t *o = tmp + (size_t)y * out_w * 3;
            for (int x = 0; x < out_w; x++) {
                const int xmin = ch.bounds[x * 2], xn = ch.bounds[x * 2 + 1];
                const int32_t *k = ch.k + (size_t)x * ch.ksize;
                int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
                for (int i = 0; i < xn; i++) {
                    const uint8_t *p = r + (size_t)(xmin + i) * 3;
                    s0 += p[0] * k[i];
                    s1 += p[1] * k[i];
                    s2 += p[2] * k[i];
                }
                o[x * 3] = clip8(s0);
                o[x * 3 + 1] = clip8(s1);
                o[x * 3 + 2] = clip8(s2);
            }
        }
        src = tmp;
        src_w = out_w;
        src_rows = rows;
        row0 = y_first; /* vertical bounds are relative to y_first now */
    }
    if (need_v) {
        for (int y = 0; y < out_h; y++) {
            const int ymin = cv.bounds[y * 2] - row0, yn = cv.bounds[y * 2 + 1];
            const int32_t *k = cv.k + (size_t)y * cv.ksize;
            uint8_t *o = out->rgb + (size_t)y * out_w * 3;
            for (int x = 0; x < out_w * 3; x++) {
                int32_t s = 1 << (PRECISION_BITS - 1);
                for (int i = 0; i < yn; i++) s += src[(size_t)(ymin + i) * src_w * 3 + x] * k[i];
                o[x] = clip8(s);
            }
        }
    } else {
        memcpy(out->rgb, src, (size_t)out_w * out_h * 3);
    }
    (void)src_rows;
    free(tmp);
    coeffs_free(&ch);
    coeffs_free(&cv);
}
