/* selective-scan-scalar.c - reference selective scans.
 *
 * Recurrence per (batch, direction k, channel d), state h[N] from 0:
 *   delta = softplus(dt + dt_bias)
 *   h     = exp(delta * A) * h + delta * B * u
 *   y     = <h, C> + D * u
 * With dt_w, dt is dt_proj of the direction's x_proj row, computed here.
 * The cross variant reads direction k's sequence straight from the
 * row-major tensors (vm_scan_token) and adds its output at the token it
 * came from, which is exactly cross-scan -> scan -> cross-merge. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "scalar.h"

float vm_softplus_ref(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

void vm_selective_scan_ref(float *y, const float *u, const float *delta, const float *A, const float *Bm,
                           const float *Cm, const float *Dv, const float *dt_bias, int D, int L, int N) {
    float *h = calloc((size_t)N, sizeof *h);
    for (int d = 0; d < D; d++) {
        memset(h, 0, (size_t)N * sizeof *h);
        for (int l = 0; l < L; l++) {
            float uu = u[(size_t)d * L + l];
            float dl = vm_softplus_ref(delta[(size_t)d * L + l] + dt_bias[d]);
            float acc = 0.0f;
            for (int n = 0; n < N; n++) {
                h[n] = expf(dl * A[(size_t)d * N + n]) * h[n] + dl * Bm[(size_t)n * L + l] * uu;
                acc += h[n] * Cm[(size_t)n * L + l];
            }
            y[(size_t)d * L + l] = acc + Dv[d] * uu;
        }
    }
    free(h);
}

/* Channels per work item: one cache line of u/y per token. */
#define SCAN_BLOCK 16

void vm_scan_cross_scalar(float *y, const float *u, const float *dts, const float *dt_w, const float *dbl, const float *A,
                          const float *Ds, const float *dt_bias, const vm_scan_dims *g) {
    const int B = g->B, H = g->H, W = g->W, D = g->D, N = g->N, R = g->R, L = H * W;
    const int P = R + 2 * N; /* per-direction x_proj row */
    const int nblk = (D + SCAN_BLOCK - 1) / SCAN_BLOCK;
    /* Each work item owns y[b][*][block]: the 4 directions run inside it,
     * so the merge needs no atomics. */
#pragma omp parallel
    {
        float h[SCAN_BLOCK * VM_MAX_D_STATE]; /* no allocation in the hot loop */
#pragma omp for schedule(dynamic, 1)
        for (int item = 0; item < B * nblk; item++) {
            const int b = item / nblk, d0 = (item % nblk) * SCAN_BLOCK;
            const int nd = D - d0 < SCAN_BLOCK ? D - d0 : SCAN_BLOCK;
            for (int t = 0; t < L; t++) memset(y + ((size_t)b * L + t) * D + d0, 0, (size_t)nd * sizeof *y);
            for (int k = 0; k < 4; k++) {
                memset(h, 0, (size_t)SCAN_BLOCK * N * sizeof *h);
                const float *Ak = A + (size_t)k * D * N, *Dk = Ds + (size_t)k * D, *bk = dt_bias + (size_t)k * D;
                const float *dtk = dt_w ? NULL : dts + (size_t)k * B * L * D;
                for (int l = 0; l < L; l++) {
                    const size_t tok = (size_t)b * L + (size_t)vm_scan_token(k, l, H, W);
                    const float *ut = u + tok * D, *dt = dtk ? dtk + tok * D : NULL;
                    const float *xk = dbl + tok * 4 * P + (size_t)k * P, *Bv = xk + R, *Cv = Bv + N;
                    float *yt = y + tok * D;
                    for (int j = 0; j < nd; j++) {
                        const int d = d0 + j;
                        const float uu = ut[d];
                        float dtv;
                        if (dt_w) { /* dt_proj here: fmaf from r = 0 */
                            const float *wd = dt_w + ((size_t)k * D + d) * R;
                            dtv = 0.0f;
                            for (int r = 0; r < R; r++) dtv = fmaf(xk[r], wd[r], dtv);
                        } else {
                            dtv = dt[d];
                        }
                        const float dl = vm_softplus_ref(dtv + bk[d]);
                        float acc = 0.0f;
                        for (int n = 0; n < N; n++) {
                            float *hn = &h[j * N + n];
                            *hn = expf(dl * Ak[(size_t)d * N + n]) * *hn + dl * Bv[n] * uu;
                            acc += *hn * Cv[n];
                        }
                        yt[d] += acc + Dk[d] * uu;
                    }
                }
            }
        }
    }
}
