/* scan_ab.c - two builds of the selective-scan kernel (vm_scan_cross, avx512) side by side on one preset's layer
 * shapes, 1 thread, CPU time (CLOCK_THREAD_CPUTIME_ID: what a loaded machine leaves intact), interleaved, best of
 * REPS per layer; prints ms per layer, ns per 16-lane state step and the forward's total. Built by bench/scan-ab.sh
 * (old_scan / new_scan are the two trees' kernels renamed). Inputs are random; the new kernel is fed dt_w (dt_proj
 * in the kernel) when DT_IN_KERNEL is set and d_state > 1, as the backbone does, and dts computed in the same order.
 * usage: scan_ab REPS D_STATE SSM_RATIO_X2 (16 4 = vanilla-vmamba-tiny, 1 2 = vmamba-tiny-s1l8) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "kernels.h"

typedef void (*scan_fn)(float *, const float *, const float *, const float *, const float *, const float *,
                        const float *, const float *, const vm_scan_dims *);
void old_scan(float *, const float *, const float *, const float *, const float *, const float *, const float *,
              const vm_scan_dims *);
void new_scan(float *, const float *, const float *, const float *, const float *, const float *, const float *,
              const float *, const vm_scan_dims *);

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
static unsigned long long rs = 88172645463325252ull;
static float rnd(void) {
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (float)((rs >> 40) * (1.0 / 16777216.0));
}

int main(int argc, char **argv) {
    const int reps = argc > 1 ? atoi(argv[1]) : 5, N = argc > 2 ? atoi(argv[2]) : 16, r2 = argc > 3 ? atoi(argv[3]) : 4;
    /* 224x224, dims 96..768, depths 2 2 9 2 (vanilla) / 2 2 8 2 (s1l8), d_inner = dim * ssm_ratio, R = dim / 16 */
    const int hw[4] = {56, 28, 14, 7}, dim[4] = {96, 192, 384, 768}, depth[4] = {2, 2, N > 1 ? 9 : 8, 2};
    double tot[2] = {0, 0};
    for (int s = 0; s < 4; s++) {
        const int H = hw[s], W = hw[s], D = dim[s] * r2 / 2, R = dim[s] / 16, L = H * W, P = R + 2 * N;
        float *u = malloc(sizeof(float) * L * D), *dts = malloc(sizeof(float) * 4 * L * D);
        float *dbl = malloc(sizeof(float) * 4 * L * P), *A = malloc(sizeof(float) * 4 * D * N);
        float *Ds = malloc(sizeof(float) * 4 * D), *bias = malloc(sizeof(float) * 4 * D), *dtw = malloc(sizeof(float) * 4 * D * R);
        float *y[2] = {malloc(sizeof(float) * L * D), malloc(sizeof(float) * L * D)};
        for (long i = 0; i < (long)L * D; i++) u[i] = rnd() * 2 - 1;
        for (long i = 0; i < 4l * L * P; i++) dbl[i] = rnd() * 2 - 1;
        for (long i = 0; i < 4l * D * R; i++) dtw[i] = (rnd() * 2 - 1) * 0.3f;
        for (long i = 0; i < 4l * D; i++) {
            Ds[i] = 1;
            bias[i] = -4.6f + rnd() * 2.3f; /* softplus(bias) ~ 0.01-0.1, the official init's range */
            for (int n = 0; n < N; n++) A[i * N + n] = -(n + 1) * (0.5f + rnd());
        }
        for (int k = 0; k < 4; k++)
            for (long t = 0; t < L; t++)
                for (int d = 0; d < D; d++) {
                    float a = 0;
                    for (int r = 0; r < R; r++) a = fmaf(dbl[t * 4 * P + k * P + r], dtw[((long)k * D + d) * R + r], a);
                    dts[((long)k * L + t) * D + d] = a;
                }
        const vm_scan_dims g = {1, H, W, D, N, R};
        const float *nw = getenv("DT_IN_KERNEL") && N > 1 ? dtw : NULL;
        double best[2] = {1e9, 1e9};
        for (int r = 0; r < reps; r++) {
            double t = now();
            old_scan(y[0], u, dts, dbl, A, Ds, bias, &g);
            t = now() - t;
            if (t < best[0]) best[0] = t;
            t = now();
            new_scan(y[1], u, nw ? NULL : dts, nw, dbl, A, Ds, bias, &g);
            t = now() - t;
            if (t < best[1]) best[1] = t;
        }
        double md = 0, my = 0;
        for (long i = 0; i < (long)L * D; i++) {
            md = fmax(md, fabs(y[0][i] - y[1][i]));
            my = fmax(my, fabs(y[0][i]));
        }
        const double vs = 4.0 * L * D * N / 16; /* 16-lane state steps */
        printf("%2dx%-2d D %4d R %2d x%d: old %.3f new %.3f ms/layer (%.2f / %.2f ns per state step), max diff %.2g of max|y|\n", H, W,
               D, R, depth[s], best[0] * 1e3, best[1] * 1e3, best[0] / vs * 1e9, best[1] / vs * 1e9, md / my);
        tot[0] += best[0] * depth[s];
        tot[1] += best[1] * depth[s];
        free(u); free(dts); free(dbl); free(A); free(Ds); free(bias); free(dtw); free(y[0]); free(y[1]);
    }
    printf("per forward: old %.2f ms, new %.2f ms (%.3f)\n", tot[0] * 1e3, tot[1] * 1e3, tot[1] / tot[0]);
    return 0;
}
