/* coco_rle.c - COCO's compressed RLE, written from pycocotools' maskApi.c
 * (rleEncode, rleToString, rleFrString, rleDecode): counts of alternating
 * 0/1 runs over the mask in column-major order, the first run counting
 * zeros; each count from the third on is stored as the difference to the
 * count two before; each number in 5-bit groups, low first, 0x20 marking
 * "more follows", 0x10 the sign of the last group, + 48 per character. */
#include "det_post.h"

#include <stdlib.h>
#include <string.h>

static int pixel(const vm_det_mask *m, int y, int x) {
    if (x < m->x || x >= m->x + m->w || y < m->y || y >= m->y + m->h) return 0;
    return m->bits[(size_t)(y - m->y) * m->w + (x - m->x)] != 0;
}

char *vm_rle_encode(const vm_det_mask *m, int img_h, int img_w) {
    /* Runs: at most one per pixel + 1. Counted first, then stored. */
    size_t cap = 64, n = 0;
    long *cnts = malloc(cap * sizeof *cnts);
    if (!cnts) return NULL;
    int cur = 0;
    long run = 0;
    for (int x = 0; x < img_w; x++) {
        int inside = m->w > 0 && x >= m->x && x < m->x + m->w;
        if (!inside) {
            if (cur == 0) { run += img_h; continue; }
        }
        for (int y = 0; y < img_h; y++) {
            int v = inside ? pixel(m, y, x) : 0;
            if (v != cur) {
                if (n == cap) {
                    long *nc = realloc(cnts, 2 * cap * sizeof *cnts);
                    if (!nc) { free(cnts); return NULL; }
                    cnts = nc;
                    cap *= 2;
                }
                cnts[n++] = run;
                run = 0;
                cur = v;
            }
            run++;
        }
    }
    if (n == cap) {
        long *nc = realloc(cnts, (cap + 1) * sizeof *cnts);
        if (!nc) { free(cnts); return NULL; }
        cnts = nc;
    }
    cnts[n++] = run;
    /* At most 13 characters per 64-bit count. */
    char *s = malloc(n * 13 + 1);
    if (!s) { free(cnts); return NULL; }
    size_t p = 0;
    for (size_t i = 0; i < n; i++) {
        long x = cnts[i];
        if (i > 2) x -= cnts[i - 2];
        int more = 1;
        while (more) {
            long c = x & 0x1f;
            x >>= 5; /* arithmetic shift, as the C original on signed long */
            more = (c & 0x10) ? x != -1 : x != 0;
            if (more) c |= 0x20;
            s[p++] = (char)(c + 48);
        }
    }
    s[p] = 0;
    free(cnts);
    return s;
}

int vm_rle_decode(const char *s, int img_h, int img_w, uint8_t *full) {
    size_t total = (size_t)img_h * img_w, pos = 0, m = 0;
    long prev2 = 0, prev1 = 0;
    int val = 0;
    memset(full, 0, total);
    for (size_t p = 0; s[p];) {
        long x = 0;
        int k = 0, more = 1;
        while (more) {
            if (!s[p] || k > 12) return -1;
            long c = (long)s[p] - 48;
            if (c < 0 || c > 63) return -1;
            x |= (c & 0x1f) << (5 * k);
            more = (int)(c & 0x20);
            p++;
            k++;
            if (!more && (c & 0x10)) x |= (long)(~0UL << (5 * k)); /* sign-extend */
        }
        if (m > 2) x += prev2;
        prev2 = prev1;
        prev1 = x;
        m++;
        if (x < 0 || (size_t)x > total - pos) return -1;
        for (long i = 0; i < x; i++, pos++)
            if (val) {
                size_t col = pos / (size_t)img_h, row = pos % (size_t)img_h;
                full[row * (size_t)img_w + col] = 1;
            }
        val = !val;
    }
    return pos == total ? 0 : -1;
}
