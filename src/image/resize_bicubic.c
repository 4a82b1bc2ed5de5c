/* resize_bicubic.c - Pillow's bicubic resampling, reproduced to the bit
 * so preprocessing matches the official (PIL-based) evaluation.
 *
 * For each output pixel: centre = (x + 0.5) * scale in input coordinates,
 * support = 2 * max(scale, 1), taps in [centre - support + 0.5,
 * centre + support + 0.5) clipped to the image, weights
 * bicubic((tap - centre + 0.5) / max(scale, 1)) normalised to sum 1, then
 * rounded to 22-bit fixed point. Each pass accumulates in 32-bit integers
 * from a 0.5 rounding bias and clips to uint8. The horizontal pass runs
 * first, over only the rows the vertical pass will read, and only for the
 * output columns asked for: a window of the resized image (the centre crop)
 * costs memory and time for the window, not for the whole resized image. */
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

/* Coefficients of output pixels [first, first + n) of a resize from
 * in_size to out_size (each depends only on its own index, so any window
 * of the output is computed exactly as the whole would be). */
static int precompute(coeffs *c, int in_size, int out_size, int first, int n) {
    double scale = (double)in_size / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    c->ksize = ksize;
    double *kk = malloc((size_t)n * ksize * sizeof *kk);
    c->bounds = malloc((size_t)n * 2 * sizeof *c->bounds);
    c->k = malloc((size_t)n * ksize * sizeof *c->k);
    if (!kk || !c->bounds || !c->k) {
        free(kk);
        free(c->bounds);
        free(c->k);
        c->bounds = NULL;
        c->k = NULL;
        return -1;
    }
    for (int i = 0; i < n; i++) {
        int xx = first + i;
        double center = (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
        if (xmin < 0) xmin = 0;
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        double *k = kk + (size_t)i * ksize;
        for (int x = 0; x < xmax; x++) {
            double w = bicubic((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for (int x = 0; x < xmax; x++)
            if (ww != 0.0) k[x] /= ww;
        for (int x = xmax; x < ksize; x++) k[x] = 0;
        c->bounds[i * 2] = xmin;
        c->bounds[i * 2 + 1] = xmax;
    }
    for (size_t i = 0; i < (size_t)n * ksize; i++)
        c->k[i] = kk[i] < 0 ? (int32_t)(-0.5 + kk[i] * (1 << PRECISION_BITS)) : (int32_t)(0.5 + kk[i] * (1 << PRECISION_BITS));
    free(kk);
    return 0;
}

static void coeffs_free(coeffs *c) {
    free(c->bounds);
    free(c->k);
}

static inline uint8_t clip8(int32_t v) {
    v >>= PRECISION_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

int vm_resize_bicubic_window(const vm_image *in, int out_w, int out_h, int x0, int y0, int cw, int ch, vm_image *out) {
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
    coeffs chz = {0}, cv = {0};
    uint8_t *tmp = NULL;
    int rc = -1;
    if ((need_h && precompute(&chz, in->w, out_w, x0, cw)) || (need_v && precompute(&cv, in->h, out_h, y0, ch))) goto done;
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
            o[x * 3] = clip8(s0);
            o[x * 3 + 1] = clip8(s1);
            o[x * 3 + 2] = clip8(s2);
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
                o[x] = clip8(s);
            }
        }
    } else {
        memcpy(out->rgb, tmp, (size_t)cw * ch * 3);
    }
    rc = 0;
done:
    free(tmp);
    coeffs_free(&chz);
    coeffs_free(&cv);
    if (rc) vm_image_free(out);
    return rc;
}

int vm_resize_bicubic(const vm_image *in, vm_image *out, int out_w, int out_h) {
    return vm_resize_bicubic_window(in, out_w, out_h, 0, 0, out_w, out_h, out);
}
