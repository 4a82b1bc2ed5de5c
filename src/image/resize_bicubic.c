/* resize_bicubic.c - Pillow's bicubic resampling, reproduced to the bit
 * so preprocessing matches the official (PIL-based) evaluation: the
 * horizontal pass first, over only the rows the vertical pass will read and
 * only for the output columns asked for, uint8 rounding and clipping after
 * each pass (coefficients: bicubic_coeffs.c). A window of the resized image
 * (the centre crop) costs time for the window, not the whole resized image.
 *
 * Same result as the plain reference (resize_bicubic_ref.c, tested equal),
 * computed in another order, which integer sums allow (bicubic_coeffs.h):
 *   - planar: each source row's columns the pass reads are split into
 *     channels first, so every tap sum runs over contiguous bytes (SIMD);
 *   - gray regions (R = G = B everywhere the passes read: gray, 1-bit and
 *     gray-palette images after convert('RGB')) are resized as one channel
 *     and replicated, since each channel is resized on its own with the same
 *     weights; a colour pixel met on the way restarts with three channels;
 *   - the vertical pass accumulates whole rows (row += weight * source row)
 *     instead of one column of taps per value, so it reads memory in order;
 *   - the horizontal rows live in a ring of as many rows as the vertical
 *     filter has taps, computed once each as the output rows move down:
 *     memory is (taps x window width), not (source height x window width).
 * Cost, in multiply-adds per channel (1 for gray regions, else 3):
 * (rows read) x (window width) x (horizontal taps) + (window) x (vertical
 * taps), a side's taps being at most min(source side, 4 * max(1, scale) + 1)
 * (4 when upsampling). So about 4 per source pixel read when downsampling,
 * 8 per output pixel when upsampling, and (source rows) x (window width) x 4
 * when the height shrinks and the width grows: a 1x65500 image to 512x512
 * no-crop costs 65500 x 512 x 1 (one tap), however small its file. */
#include <stdlib.h>
#include <string.h>

#include "bicubic_window.h"

#define BIAS (1 << (VM_BICUBIC_PRECISION_BITS - 1))
/* The per-row pixel loops stay out of line: the fuzz build leaves them out
 * of coverage feedback by name (tests/fuzz/coverage-ignore.txt), which an
 * inlined copy would not be. A call per row costs nothing measurable. */
#define PIXEL_LOOP static __attribute__((noinline))

/* One pass over the window: which source columns and rows it reads, and the
 * buffers of one attempt at a channel count. */
typedef struct {
    const vm_image *in;
    const vm_bicubic_coeffs *h, *v; /* NULL: no such pass */
    int x0, cw, y0, ch;             /* the window */
    int xr0, nr;                    /* source columns read: [xr0, xr0 + nr) */
    int C;                          /* channels worked on: 1 (gray) or 3 */
    uint8_t *line;                  /* one source row, C planes of nr + PAD */
    int up4;                        /* h has at most 4 taps a pixel (upsampling) */
} pass;

/* Zero bytes after each plane of a source row: the upsampling sum reads 4
 * taps from a pixel's first even where it has fewer. */
#define PAD 4

/* Source row y's columns [xr0, xr0 + nr) into C planes; -1 if C is 1 and
 * the row is not gray there. */
PIXEL_LOOP int planes_of_row(const pass *p, int y, uint8_t *dst, size_t stride) {
    const uint8_t *s = p->in->rgb + ((size_t)y * p->in->w + p->xr0) * 3;
    const int n = p->nr;
    if (p->C == 1) {
        unsigned diff = 0;
#pragma omp simd reduction(| : diff)
        for (int x = 0; x < n; x++) {
            dst[x] = s[x * 3];
            diff |= (unsigned)(s[x * 3] ^ s[x * 3 + 1]) | (unsigned)(s[x * 3] ^ s[x * 3 + 2]);
        }
        return diff ? -1 : 0;
    }
    for (int c = 0; c < 3; c++)
        for (int x = 0; x < n; x++) dst[c * stride + x] = s[x * 3 + c];
    return 0;
}

/* Source row y through the horizontal pass: C planes of cw into dst. The
 * channels share each pixel's taps, so one loop serves all of them. */
PIXEL_LOOP int hpass_row(const pass *p, int y, uint8_t *dst) {
    if (!p->h) return planes_of_row(p, y, dst, (size_t)p->cw); /* nr == cw */
    const size_t stride = (size_t)p->nr + PAD;
    if (planes_of_row(p, y, p->line, stride)) return -1;
    const vm_bicubic_coeffs *h = p->h;
    const int C = p->C, cw = p->cw;
    const uint8_t *l0 = p->line, *l1 = l0 + (C == 3 ? stride : 0), *l2 = l1 + (C == 3 ? stride : 0);
    uint8_t *o0 = dst, *o1 = dst + (C == 3 ? cw : 0), *o2 = o1 + (C == 3 ? cw : 0);
    for (int x = 0; x < cw; x++) {
        const int off = h->bounds[x * 2] - p->xr0, n = h->bounds[x * 2 + 1];
        const int32_t *k = h->k + (size_t)x * h->ksize;
        const uint8_t *q0 = l0 + off, *q1 = l1 + off, *q2 = l2 + off;
        int32_t s0 = BIAS, s1 = BIAS, s2 = BIAS;
        if (p->up4) {
            /* k[n..3] are 0 and the plane's padding reads as 0, so always
             * 4 taps (straight code, no loop). */
            s0 += q0[0] * k[0] + q0[1] * k[1] + q0[2] * k[2] + q0[3] * k[3];
            if (C == 3) {
                s1 += q1[0] * k[0] + q1[1] * k[1] + q1[2] * k[2] + q1[3] * k[3];
                s2 += q2[0] * k[0] + q2[1] * k[1] + q2[2] * k[2] + q2[3] * k[3];
            }
        } else if (C == 1) {
#pragma omp simd reduction(+ : s0)
            for (int i = 0; i < n; i++) s0 += q0[i] * k[i];
        } else {
#pragma omp simd reduction(+ : s0, s1, s2)
            for (int i = 0; i < n; i++) {
                s0 += q0[i] * k[i];
                s1 += q1[i] * k[i];
                s2 += q2[i] * k[i];
            }
        }
        /* C == 1: o1 == o2 == o0, written last with s0 */
        o2[x] = vm_bicubic_clip8(s2);
        o1[x] = vm_bicubic_clip8(s1);
        o0[x] = vm_bicubic_clip8(s0);
    }
    return 0;
}

/* One output row of the vertical pass from its n source rows, four taps at
 * a time (a quarter of the passes over acc); with 4 taps or fewer
 * (upsampling) in one pass, without acc (absent taps weigh 0). */
PIXEL_LOOP void vpass_row(uint8_t *const *rows, const int32_t *k, int n, int len, int32_t *acc, uint8_t *out) {
    if (n <= 4) {
        const uint8_t *r0 = rows[0], *r1 = rows[n > 1], *r2 = rows[n > 2 ? 2 : 0], *r3 = rows[n > 3 ? 3 : 0];
        const int32_t w0 = k[0], w1 = n > 1 ? k[1] : 0, w2 = n > 2 ? k[2] : 0, w3 = n > 3 ? k[3] : 0;
#pragma omp simd
        for (int x = 0; x < len; x++) out[x] = vm_bicubic_clip8(BIAS + r0[x] * w0 + r1[x] * w1 + r2[x] * w2 + r3[x] * w3);
        return;
    }
    for (int x = 0; x < len; x++) acc[x] = BIAS;
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint8_t *r0 = rows[i], *r1 = rows[i + 1], *r2 = rows[i + 2], *r3 = rows[i + 3];
        const int32_t w0 = k[i], w1 = k[i + 1], w2 = k[i + 2], w3 = k[i + 3];
#pragma omp simd
        for (int x = 0; x < len; x++) acc[x] += r0[x] * w0 + r1[x] * w1 + r2[x] * w2 + r3[x] * w3;
    }
    for (; i < n; i++) {
        const uint8_t *r = rows[i];
        const int32_t w = k[i];
#pragma omp simd
        for (int x = 0; x < len; x++) acc[x] += r[x] * w;
    }
    for (int x = 0; x < len; x++) out[x] = vm_bicubic_clip8(acc[x]);
}

/* C planes of cw into an interleaved RGB row (one plane: gray, replicated). */
PIXEL_LOOP void interleave_row(const uint8_t *src, int C, int cw, uint8_t *o) {
    for (int c = 0; c < 3; c++) {
        const uint8_t *s = src + (size_t)(C == 1 ? 0 : c) * cw;
        for (int x = 0; x < cw; x++) o[x * 3 + c] = s[x];
    }
}

/* The window with p->C channels: 0, -1 out of memory, 1 a colour pixel
 * where C is 1 (out->rgb partly written; run again with 3). */
static int run(pass *p, vm_image *out) {
    const int C = p->C, len = C * p->cw;
    const vm_bicubic_coeffs *v = p->v;
    int rc = -1;
    uint8_t *row = malloc((size_t)len), *ring = NULL, **taps = NULL;
    int32_t *acc = NULL;
    p->line = p->h ? calloc((size_t)C, (size_t)p->nr + PAD) : NULL;
    if (!row || (p->h && !p->line)) goto done;
    if (!v) {
        for (int y = 0; y < p->ch; y++) {
            if (hpass_row(p, p->y0 + y, row)) { rc = 1; goto done; }
            interleave_row(row, C, p->cw, out->rgb + (size_t)y * p->cw * 3);
        }
        rc = 0;
        goto done;
    }
    /* Source row r sits in ring slot r % K until row r + K replaces it: the
     * first tap of the output rows never moves up and no row has more than
     * K taps, so every row the current output row reads is still there. */
    const int y_first = v->bounds[0], y_last = v->bounds[p->ch * 2 - 2] + v->bounds[p->ch * 2 - 1];
    const int K = v->ksize < y_last - y_first ? v->ksize : y_last - y_first;
    ring = malloc((size_t)K * len);
    taps = malloc((size_t)K * sizeof *taps);
    acc = malloc((size_t)len * sizeof *acc);
    if (!ring || !taps || !acc) goto done;
    int next = y_first;
    for (int y = 0; y < p->ch; y++) {
        const int ymin = v->bounds[y * 2], yn = v->bounds[y * 2 + 1];
        for (; next < ymin + yn; next++)
            if (hpass_row(p, next, ring + (size_t)(next % K) * len)) { rc = 1; goto done; }
        for (int i = 0; i < yn; i++) taps[i] = ring + (size_t)((ymin + i) % K) * len;
        vpass_row(taps, v->k + (size_t)y * v->ksize, yn, len, acc, row);
        interleave_row(row, C, p->cw, out->rgb + (size_t)y * p->cw * 3);
    }
    rc = 0;
done:
    free(row);
    free(ring);
    free(taps);
    free(acc);
    free(p->line);
    p->line = NULL;
    return rc;
}

int vm_resize_bicubic_window(const vm_image *in, int out_w, int out_h, int x0, int y0, int cw, int ch, vm_image *out) {
    vm_bicubic_window win;
    int rc = vm_bicubic_window_begin(in, out_w, out_h, x0, y0, cw, ch, out, &win);
    if (rc) return rc < 0 ? -1 : 0; /* a bad window, or Pillow's plain copy */
    vm_bicubic_coeffs *chz = win.need_h ? &win.h : NULL;
    pass p = {in, chz, win.need_v ? &win.v : NULL, x0, cw, y0, ch, x0, cw, 1, NULL, 0};
    if (chz) {
        p.xr0 = chz->bounds[0];
        p.nr = chz->bounds[cw * 2 - 2] + chz->bounds[cw * 2 - 1] - p.xr0;
        /* Upsampling's taps span [centre - 1.5, centre + 2.5): 4 at most,
         * a 5th only by a rounding of the bounds, and then weighing 0. */
        p.up4 = chz->ksize == 5;
        for (int x = 0; x < cw && p.up4; x++) p.up4 = chz->k[x * 5 + 4] == 0;
    }
    rc = run(&p, out);
    if (rc == 1) {
        p.C = 3;
        rc = run(&p, out);
    }
    vm_bicubic_window_free(&win);
    if (rc) vm_image_free(out);
    return rc;
}

int vm_resize_bicubic(const vm_image *in, vm_image *out, int out_w, int out_h) {
    return vm_resize_bicubic_window(in, out_w, out_h, 0, 0, out_w, out_h, out);
}
