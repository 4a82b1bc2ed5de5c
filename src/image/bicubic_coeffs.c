/* bicubic_coeffs.c - Pillow's precompute_coeffs + normalize_coeffs_8bpc.
 *
 * For each output pixel: centre = (x + 0.5) * scale in input coordinates,
 * support = 2 * max(scale, 1), taps in [centre - support + 0.5,
 * centre + support + 0.5) clipped to the image, weights
 * bicubic((tap - centre + 0.5) / max(scale, 1)) normalised to sum 1, then
 * rounded to 22-bit fixed point. */
#include "bicubic_coeffs.h"

#include <math.h>
#include <stdlib.h>

static double bicubic(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

int vm_bicubic_coeffs_init(vm_bicubic_coeffs *c, int in_size, int out_size, int first, int n) {
    double scale = (double)in_size / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    c->ksize = ksize;
    double *kk = malloc((size_t)n * ksize * sizeof *kk);
    c->bounds = malloc((size_t)n * 2 * sizeof *c->bounds);
    c->k = malloc((size_t)n * ksize * sizeof *c->k);
    if (!kk || !c->bounds || !c->k) {
        free(kk);
        vm_bicubic_coeffs_free(c);
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
        c->k[i] = kk[i] < 0 ? (int32_t)(-0.5 + kk[i] * (1 << VM_BICUBIC_PRECISION_BITS))
                            : (int32_t)(0.5 + kk[i] * (1 << VM_BICUBIC_PRECISION_BITS));
    free(kk);
    return 0;
}

void vm_bicubic_coeffs_free(vm_bicubic_coeffs *c) {
    free(c->bounds);
    free(c->k);
    c->bounds = NULL;
    c->k = NULL;
}
