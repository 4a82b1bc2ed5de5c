/* dtproj_ab.c - d_state-1 dt_proj on vmamba-tiny-s1l8's four stage shapes (224x224, batch 1): the four oneDNN matmul
 * primitives the plan made before (M = T, N = D, K = R, A read in place from x_proj's output, lda 4(R+2)) against
 * one call of the kernel table's dt_proj, interleaved, CPU time of the process (at 1 thread: the work, whatever
 * else loads the machine), best of REPS; and whether the two give the same bits. Per forward: x 2 / 2 / 8 / 2
 * blocks. Built against this tree's libvmamba_core by bench/dtproj-ab.sh.
 * usage: dtproj_ab [REPS]   (threads: OMP_NUM_THREADS) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "src/core/dnnl_compat.h"
#include "simd/kernels.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
static unsigned long long rs = 88172645463325252ull;
static float rnd(void) {
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return (float)((rs >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

int main(int argc, char **argv) {
    const int reps = argc > 1 ? atoi(argv[1]) : 50;
    const int hw[4] = {56, 28, 14, 7}, dim[4] = {96, 192, 384, 768}, depth[4] = {2, 2, 8, 2};
    char e[256];
    vm_dnnl_exec *x = vm_dnnl_exec_new(e, sizeof e);
    if (!x) return fprintf(stderr, "%s\n", e), 1;
    double tot[2] = {0, 0};
    int same = 1;
    printf("| stage | T x D x R | 4 oneDNN matmuls, us | dt_proj kernel, us | kernel / oneDNN | same bits |\n|---|---|---|---|---|---|\n");
    for (int s = 0; s < 4; s++) {
        const int T = hw[s] * hw[s], D = dim[s], R = dim[s] / 16, P = R + 2;
        float *dbl = malloc(sizeof(float) * T * 4 * P), *w = malloc(sizeof(float) * 4 * D * R), *wt = malloc(sizeof(float) * 4 * D * R);
        float *y0 = malloc(sizeof(float) * 4 * T * D), *y1 = malloc(sizeof(float) * 4 * T * D);
        for (int i = 0; i < T * 4 * P; i++) dbl[i] = rnd();
        for (int i = 0; i < 4 * D * R; i++) w[i] = 0.3f * rnd();
        for (int k = 0; k < 4; k++)
            for (int r = 0; r < R; r++)
                for (int d = 0; d < D; d++) wt[((size_t)k * R + r) * D + d] = w[((size_t)k * D + d) * R + r];
        vm_wpack *pk[4];
        vm_matmul *mm[4];
        for (int k = 0; k < 4; k++) {
            pk[k] = vm_wpack_create(D, R, w + (size_t)k * D * R, e, sizeof e);
            mm[k] = pk[k] ? vm_matmul_create_x(x, T, D, R, 4 * P, D, pk[k], NULL, 0, 0, e, sizeof e) : NULL;
            if (!mm[k]) return fprintf(stderr, "%s\n", e), 1;
        }
        double best[2] = {1e9, 1e9};
        for (int it = 0; it < reps; it++) {
            double t = now();
            for (int k = 0; k < 4; k++) vm_matmul_run(mm[k], dbl + (size_t)k * P, y0 + (size_t)k * T * D);
            double a = now() - t;
            t = now();
            vm_kernels()->dt_proj(y1, dbl, wt, T, D, R, P);
            double b = now() - t;
            if (a < best[0]) best[0] = a;
            if (b < best[1]) best[1] = b;
        }
        const int eq = memcmp(y0, y1, sizeof(float) * 4 * T * D) == 0;
        same &= eq;
        printf("| %d | %d x %d x %d | %.1f | %.1f | %.3f | %s |\n", s + 1, T, D, R, 1e6 * best[0], 1e6 * best[1], best[1] / best[0],
               eq ? "yes" : "NO");
        tot[0] += depth[s] * best[0];
        tot[1] += depth[s] * best[1];
        for (int k = 0; k < 4; k++) vm_matmul_free(mm[k]), vm_wpack_free(pk[k]);
        free(dbl), free(w), free(wt), free(y0), free(y1);
    }
    printf("per forward (%s): oneDNN %.3f ms, kernel %.3f ms (%.3f); bits %s\n", vm_kernels()->name, 1e3 * tot[0], 1e3 * tot[1],
           tot[1] / tot[0], same ? "identical" : "DIFFER");
    vm_dnnl_exec_free(x);
    return 0;
}
