/* dense.c - see dense.h. The variants compute every element with the same
 * float operations in the same order as the references (the rows are
 * split over threads, channels run in SIMD lanes, no FMA contraction in
 * this file's flags), so they are expected to be bit-identical. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dense.h"
#include "../core/util.h"

void vm_bilin_axis_make(vm_bilin_axis *a, int in, int out) {
    a->n = out;
    a->i0 = vm_xmalloc(sizeof(int) * (size_t)out);
    a->i1 = vm_xmalloc(sizeof(int) * (size_t)out);
    a->l0 = vm_xmalloc(sizeof(float) * (size_t)out);
    a->l1 = vm_xmalloc(sizeof(float) * (size_t)out);
    float scale = (float)in / (float)out;
    for (int d = 0; d < out; d++) {
        if (in == out) {
            a->i0[d] = a->i1[d] = d;
            a->l0[d] = 1.0f;
            a->l1[d] = 0.0f;
            continue;
        }
        double src = (double)scale * (d + 0.5) - 0.5;
        if (src < 0) src = 0;
        int i0 = (int)src;
        if (i0 > in - 1) i0 = in - 1;
        a->i0[d] = i0;
        a->i1[d] = i0 < in - 1 ? i0 + 1 : i0;
        a->l1[d] = (float)(src - i0);
        a->l0[d] = 1.0f - a->l1[d];
    }
}

void vm_bilin_axis_free(vm_bilin_axis *a) {
    free(a->i0);
    free(a->i1);
    free(a->l0);
    free(a->l1);
    memset(a, 0, sizeof *a);
}

static void copy_same(const float *in, int H, int W, int C, int ldi, float *out, int ldo, int accumulate) {
    for (size_t p = 0; p < (size_t)H * W; p++) {
        const float *s = in + p * ldi;
        float *o = out + p * ldo;
        if (accumulate)
            for (int c = 0; c < C; c++) o[c] = o[c] + s[c];
        else
            memcpy(o, s, sizeof(float) * C);
    }
}

void vm_bilinear_nhwc_ref(const float *in, int H, int W, int C, int ldi, float *out, int OH, int OW, int ldo,
                          int accumulate) {
    if (H == OH && W == OW) {
        copy_same(in, H, W, C, ldi, out, ldo, accumulate);
        return;
    }
    vm_bilin_axis ay, ax;
    vm_bilin_axis_make(&ay, H, OH);
    vm_bilin_axis_make(&ax, W, OW);
    for (int y = 0; y < OH; y++)
        for (int x = 0; x < OW; x++)
            for (int c = 0; c < C; c++) {
                const float *r0 = in + (size_t)ay.i0[y] * W * ldi, *r1 = in + (size_t)ay.i1[y] * W * ldi;
                float t0 = r0[(size_t)ax.i0[x] * ldi + c] * ax.l0[x] + r0[(size_t)ax.i1[x] * ldi + c] * ax.l1[x];
                float t1 = r1[(size_t)ax.i0[x] * ldi + c] * ax.l0[x] + r1[(size_t)ax.i1[x] * ldi + c] * ax.l1[x];
                float v = t0 * ay.l0[y] + t1 * ay.l1[y];
                float *o = out + ((size_t)y * OW + x) * ldo + c;
                *o = accumulate ? *o + v : v;
            }
    vm_bilin_axis_free(&ay);
    vm_bilin_axis_free(&ax);
}

void vm_bilin_hrow(const float *src_row, int C, int ldi, const vm_bilin_axis *x, float *hrow) {
    for (int d = 0; d < x->n; d++) {
        const float *p0 = src_row + (size_t)x->i0[d] * ldi, *p1 = src_row + (size_t)x->i1[d] * ldi;
        float l0 = x->l0[d], l1 = x->l1[d];
        float *o = hrow + (size_t)d * C;
#pragma omp simd
        for (int c = 0; c < C; c++) o[c] = p0[c] * l0 + p1[c] * l1;
    }
}

void vm_bilin_vrow(const float *h0, const float *h1, float lh0, float lh1, size_t n, float *out) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) out[i] = h0[i] * lh0 + h1[i] * lh1;
}

void vm_bilinear_nhwc(const float *in, int H, int W, int C, int ldi, float *out, int OH, int OW, int ldo,
                      int accumulate) {
    if (H == OH && W == OW) {
        copy_same(in, H, W, C, ldi, out, ldo, accumulate);
        return;
    }
    vm_bilin_axis ay, ax;
    vm_bilin_axis_make(&ay, H, OH);
    vm_bilin_axis_make(&ax, W, OW);
    size_t n = (size_t)OW * C;
    /* A thread keeps the last two horizontally interpolated source rows:
     * consecutive output rows of its band mostly reuse them. */
#pragma omp parallel if ((size_t)OH * n > 16384)
    {
        float *T = vm_xmalloc(sizeof(float) * n * 3), *row = T + 2 * n;
        int have[2] = {-1, -1};
#pragma omp for schedule(static)
        for (int y = 0; y < OH; y++) {
            int r0 = ay.i0[y], r1 = ay.i1[y];
            int s0 = have[0] == r0 ? 0 : have[1] == r0 ? 1 : -1;
            if (s0 < 0) {
                s0 = have[0] == r1 ? 1 : 0;
                vm_bilin_hrow(in + (size_t)r0 * W * ldi, C, ldi, &ax, T + (size_t)s0 * n);
                have[s0] = r0;
            }
            int s1 = have[s0] == r1 ? s0 : have[1 - s0] == r1 ? 1 - s0 : -1;
            if (s1 < 0) {
                s1 = 1 - s0;
                vm_bilin_hrow(in + (size_t)r1 * W * ldi, C, ldi, &ax, T + (size_t)s1 * n);
                have[s1] = r1;
            }
            vm_bilin_vrow(T + (size_t)s0 * n, T + (size_t)s1 * n, ay.l0[y], ay.l1[y], n, row);
            for (int x = 0; x < OW; x++) {
                float *o = out + ((size_t)y * OW + x) * ldo;
                const float *v = row + (size_t)x * C;
                if (accumulate) {
#pragma omp simd
                    for (int c = 0; c < C; c++) o[c] = o[c] + v[c];
                } else {
                    memcpy(o, v, sizeof(float) * C);
                }
            }
        }
        free(T);
    }
    vm_bilin_axis_free(&ay);
    vm_bilin_axis_free(&ax);
}

static void pool_bin(const float *in, int W, int C, int h0, int h1, int w0, int w1, float *o) {
    for (int c = 0; c < C; c++) o[c] = 0.0f;
    for (int y = h0; y < h1; y++)
        for (int x = w0; x < w1; x++) {
            const float *p = in + ((size_t)y * W + x) * C;
#pragma omp simd
            for (int c = 0; c < C; c++) o[c] += p[c];
        }
    float kh = (float)(h1 - h0), kw = (float)(w1 - w0);
    for (int c = 0; c < C; c++) o[c] = o[c] / kh / kw;
}

/* PyTorch's start_index / end_index, in integers: floor(i*n/s), ceil((i+1)*n/s). */
static int bin_start(int i, int n, int s) { return (int)((int64_t)i * n / s); }
static int bin_end(int i, int n, int s) { return (int)(((int64_t)(i + 1) * n + s - 1) / s); }

void vm_adaptive_avgpool_nhwc_ref(const float *in, int H, int W, int C, int s, float *out) {
    for (int i = 0; i < s; i++)
        for (int j = 0; j < s; j++) {
            int h0 = bin_start(i, H, s), h1 = bin_end(i, H, s), w0 = bin_start(j, W, s), w1 = bin_end(j, W, s);
            float *o = out + ((size_t)i * s + j) * C;
            for (int c = 0; c < C; c++) {
                float sum = 0.0f;
                for (int y = h0; y < h1; y++)
                    for (int x = w0; x < w1; x++) sum += in[((size_t)y * W + x) * C + c];
                o[c] = sum / (float)(h1 - h0) / (float)(w1 - w0);
            }
        }
}

void vm_adaptive_avgpool_nhwc(const float *in, int H, int W, int C, int s, float *out) {
#pragma omp parallel for schedule(static) if (s * s > 1 && (size_t)H * W * C > 65536)
    for (int b = 0; b < s * s; b++) {
        int i = b / s, j = b % s;
        pool_bin(in, W, C, bin_start(i, H, s), bin_end(i, H, s), bin_start(j, W, s), bin_end(j, W, s),
                 out + (size_t)b * C);
    }
}
