/* dt-proj-scalar.c - reference dt_proj of the four scan directions
 * (kernels.h dt_proj): per element fmaf over r from 0. */
#include <math.h>

#include "../kernels.h"
#include "scalar.h"

void vm_dt_proj_scalar(float *dts, const float *dbl, const float *wt, size_t T, int D, int R, int P) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int k = 0; k < 4; k++)
        for (size_t t = 0; t < T; t++) {
            const float *a = dbl + t * 4 * (size_t)P + (size_t)k * P;
            const float *w = wt + (size_t)k * R * D;
            float *o = dts + ((size_t)k * T + t) * D;
            for (int d = 0; d < D; d++) {
                float acc = 0.0f;
                for (int r = 0; r < R; r++) acc = fmaf(a[r], w[(size_t)r * D + d], acc);
                o[d] = acc;
            }
        }
}
