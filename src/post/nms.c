/* nms.c - greedy non-maximum suppression exactly as mmcv's nms_cpu and
 * batched_nms compute it (float32 IoU, strict '>', score-descending order),
 * because the kept set and its order are the detector's output. */
#include "det_post.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    float s;
    int i;
} score_idx;

/* Descending score, then ascending index: a stable descending sort. */
static int cmp_desc(const void *a, const void *b) {
    const score_idx *x = a, *y = b;
    if (x->s > y->s) return -1;
    if (x->s < y->s) return 1;
    return (x->i > y->i) - (x->i < y->i);
}

static score_idx *sorted_order(const float *scores, int n) {
    score_idx *o = malloc((size_t)(n ? n : 1) * sizeof *o);
    if (!o) return NULL;
    for (int i = 0; i < n; i++) o[i] = (score_idx){scores[i], i};
    qsort(o, (size_t)n, sizeof *o, cmp_desc);
    return o;
}

int vm_topk_desc(const float *scores, int n, int k, int *idx) {
    score_idx *o = sorted_order(scores, n);
    if (!o) return -1;
    int m = n < k ? n : k;
    for (int i = 0; i < m; i++) idx[i] = o[i].i;
    free(o);
    return m;
}

int vm_nms_ref(const float *boxes, const float *scores, int n, float iou_thr, int *keep) {
    score_idx *o = sorted_order(scores, n);
    uint8_t *sup = calloc((size_t)(n ? n : 1), 1);
    if (!o || !sup) { free(o); free(sup); return -1; }
    int nk = 0;
    for (int a = 0; a < n; a++) {
        int i = o[a].i;
        if (sup[i]) continue;
        keep[nk++] = i;
        const float *bi = boxes + 4 * (size_t)i;
        float iarea = (bi[2] - bi[0]) * (bi[3] - bi[1]);
        for (int b = a + 1; b < n; b++) {
            int j = o[b].i;
            if (sup[j]) continue;
            const float *bj = boxes + 4 * (size_t)j;
            float xx1 = fmaxf(bi[0], bj[0]), yy1 = fmaxf(bi[1], bj[1]);
            float xx2 = fminf(bi[2], bj[2]), yy2 = fminf(bi[3], bj[3]);
            float w = fmaxf(0.0f, xx2 - xx1), h = fmaxf(0.0f, yy2 - yy1);
            float inter = w * h;
            float jarea = (bj[2] - bj[0]) * (bj[3] - bj[1]);
            float ovr = inter / (iarea + jarea - inter);
            if (ovr > iou_thr) sup[j] = 1;
        }
    }
    free(o);
    free(sup);
    return nk;
}

/* The same arithmetic on score-sorted structure-of-arrays copies, so the
 * inner loop over later boxes is contiguous and vectorises; a suppressed
 * box stays in the arrays and is skipped through its flag. */
int vm_nms(const float *boxes, const float *scores, int n, float iou_thr, int *keep) {
    score_idx *o = sorted_order(scores, n);
    size_t nn = (size_t)(n ? n : 1);
    float *x1 = malloc(5 * nn * sizeof(float));
    uint8_t *sup = calloc(nn, 1);
    if (!o || !x1 || !sup) { free(o); free(x1); free(sup); return -1; }
    float *y1 = x1 + nn, *x2 = y1 + nn, *y2 = x2 + nn, *area = y2 + nn;
    for (int a = 0; a < n; a++) {
        const float *b = boxes + 4 * (size_t)o[a].i;
        x1[a] = b[0]; y1[a] = b[1]; x2[a] = b[2]; y2[a] = b[3];
        area[a] = (b[2] - b[0]) * (b[3] - b[1]);
    }
    int nk = 0;
    for (int a = 0; a < n; a++) {
        if (sup[a]) continue;
        keep[nk++] = o[a].i;
        float ix1 = x1[a], iy1 = y1[a], ix2 = x2[a], iy2 = y2[a], iarea = area[a];
        for (int b = a + 1; b < n; b++) {
            float w = fmaxf(0.0f, fminf(ix2, x2[b]) - fmaxf(ix1, x1[b]));
            float h = fmaxf(0.0f, fminf(iy2, y2[b]) - fmaxf(iy1, y1[b]));
            float inter = w * h;
            float ovr = inter / (iarea + area[b] - inter);
            sup[b] |= ovr > iou_thr;
        }
    }
    free(o);
    free(x1);
    free(sup);
    return nk;
}

int vm_batched_nms(const float *boxes, const float *scores, const int *idxs, int n, float iou_thr, int *keep) {
    if (n <= 0) return 0;
    if (n < 10000) {
        float maxc = -INFINITY;
        for (size_t i = 0; i < 4 * (size_t)n; i++) maxc = fmaxf(maxc, boxes[i]);
        float *off = malloc(4 * (size_t)n * sizeof(float));
        if (!off) return -1;
        for (int i = 0; i < n; i++) {
            float o = (float)idxs[i] * (maxc + 1.0f);
            for (int k = 0; k < 4; k++) off[4 * (size_t)i + k] = boxes[4 * (size_t)i + k] + o;
        }
        int nk = vm_nms(off, scores, n, iou_thr, keep);
        free(off);
        return nk;
    }
    /* mmcv's split path: nms per idx, then the union sorted by score. */
    int maxid = 0;
    for (int i = 0; i < n; i++) maxid = idxs[i] > maxid ? idxs[i] : maxid;
    int *sel = malloc((size_t)n * sizeof *sel), *k2 = malloc((size_t)n * sizeof *k2);
    float *bb = malloc(4 * (size_t)n * sizeof *bb), *ss = malloc((size_t)n * sizeof *ss);
    uint8_t *kept = calloc((size_t)n, 1);
    int rc = -1;
    if (!sel || !k2 || !bb || !ss || !kept) goto done;
    for (int id = 0; id <= maxid; id++) {
        int m = 0;
        for (int i = 0; i < n; i++)
            if (idxs[i] == id) {
                memcpy(bb + 4 * (size_t)m, boxes + 4 * (size_t)i, 4 * sizeof(float));
                ss[m] = scores[i];
                sel[m++] = i;
            }
        if (!m) continue;
        int nk = vm_nms(bb, ss, m, iou_thr, k2);
        if (nk < 0) goto done;
        for (int t = 0; t < nk; t++) kept[sel[k2[t]]] = 1;
    }
    int m = 0;
    for (int i = 0; i < n; i++)
        if (kept[i]) { ss[m] = scores[i]; sel[m++] = i; }
    int nk = vm_topk_desc(ss, m, m, k2);
    if (nk < 0) goto done;
    for (int t = 0; t < nk; t++) keep[t] = sel[k2[t]];
    rc = nk;
done:
    free(sel); free(k2); free(bb); free(ss); free(kept);
    return rc;
}
