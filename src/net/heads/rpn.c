/* rpn.c - mmdet RPNHead: a shared 3x3 conv + ReLU per level, objectness
 * and deltas (one 1x1 conv here, both outputs fused), then
 * _predict_by_feat_single: per-level top nms_pre by sigmoid score, delta
 * decoding around the anchors, clipping, the strict w > 0 && h > 0 filter,
 * batched NMS across levels, the first max_per_img. */
#include "maskrcnn.h"
#include "post/det_post.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int det_rpn_forward(const det_weights *w, det_plan *p) {
    (void)w;
    vm_be *be = p->be;
    for (int l = 0; l < DET_LEVELS; l++) {
        if (be->conv_run(be, p->rpn_conv[l], p->P[l], p->rpn_t)) return -1;
        if (be->conv_run(be, p->rpn_out[l], p->rpn_t, p->rpn_o[l])) return -1;
    }
    return 0;
}

static const float k_ratios[3] = {0.5f, 1.0f, 2.0f};

int det_rpn_proposals(const det_weights *w, const det_plan *p, const det_io *io, float **props, int *nout) {
    const int A = w->A, O = A + 4 * A;
    const vm_detect_opts *o = &io->opts;
    int cap = 0;
    for (int l = 0; l < DET_LEVELS; l++) {
        int n = p->H[l] * p->W[l] * A;
        cap += n < o->rpn_nms_pre ? n : o->rpn_nms_pre;
    }
    float *boxes = malloc((size_t)(cap ? cap : 1) * 4 * sizeof(float)), *scores = malloc((size_t)(cap ? cap : 1) * sizeof(float));
    int *lvl = malloc((size_t)(cap ? cap : 1) * sizeof(int)), *keep = malloc((size_t)(cap ? cap : 1) * sizeof(int));
    int rc = -1, m = 0;
    float *sc = NULL;
    int *top = NULL;
    if (!boxes || !scores || !lvl || !keep) goto done;
    const float stds[4] = {1.0f, 1.0f, 1.0f, 1.0f};
    for (int l = 0; l < DET_LEVELS; l++) {
        int HW = p->H[l] * p->W[l], n = HW * A, stride = 4 << l;
        float *nsc = realloc(sc, (size_t)n * sizeof *sc);
        int *ntop = realloc(top, (size_t)n * sizeof *top);
        if (!nsc || !ntop) { sc = nsc ? nsc : sc; top = ntop ? ntop : top; goto done; }
        sc = nsc; top = ntop;
        const float *out = p->rpn_oh[l]; /* host view */
        for (int t = 0; t < HW; t++)
            for (int a = 0; a < A; a++) sc[t * A + a] = 1.0f / (1.0f + expf(-out[(size_t)t * O + a]));
        int k;
        if (n > o->rpn_nms_pre) {
            if ((k = vm_topk_desc(sc, n, o->rpn_nms_pre, top)) < 0) goto done;
        } else {
            for (int i = 0; i < n; i++) top[i] = i;
            k = n;
        }
        for (int j = 0; j < k; j++) {
            int i = top[j], t = i / A, a = i % A, y = t / p->W[l], x = t % p->W[l];
            float anc[4];
            vm_anchors(1, 1, stride, 8.0f, k_ratios + a, 1, anc);
            float sx = (float)(x * stride), sy = (float)(y * stride);
            anc[0] += sx; anc[1] += sy; anc[2] += sx; anc[3] += sy;
            const float *d = out + (size_t)t * O + A + 4 * a;
            float b[4];
            vm_delta2bbox(anc, d, stds, (float)io->img_w, (float)io->img_h, b);
            if (!(b[2] - b[0] > 0.0f && b[3] - b[1] > 0.0f)) continue; /* min_bbox_size 0, strict */
            memcpy(boxes + 4 * (size_t)m, b, sizeof b);
            scores[m] = sc[i];
            lvl[m++] = l;
        }
    }
    int nk = vm_batched_nms(boxes, scores, lvl, m, o->rpn_nms_iou, keep);
    if (nk < 0) goto done;
    if (nk > o->rpn_max_per_img) nk = o->rpn_max_per_img;
    float *pr = malloc((size_t)(nk ? nk : 1) * 5 * sizeof(float));
    if (!pr) goto done;
    for (int j = 0; j < nk; j++) {
        memcpy(pr + 5 * (size_t)j, boxes + 4 * (size_t)keep[j], 4 * sizeof(float));
        pr[5 * (size_t)j + 4] = scores[keep[j]];
    }
    *props = pr;
    *nout = nk;
    rc = 0;
done:
    free(boxes); free(scores); free(lvl); free(keep); free(sc); free(top);
    return rc;
}
