/* roi_heads.c - mmdet StandardRoIHead, box branch: SingleRoIExtractor
 * (RoIAlign 7x7 on the level chosen by box size), Shared2FCBBoxHead (two
 * FC + ReLU, then class logits and per-class deltas), softmax, per-class
 * decoding clipped to the resized image, multiclass NMS. */
#include "maskrcnn.h"
#include "core/util.h"
#include "post/det_post.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void det_roi_feats(const det_weights *w, const det_plan *p, const float *box, int out, float *dst) {
    int l = vm_roi_level(box, 56.0f, DET_ROI_LEVELS);
    vm_roi_align(p->Ph[l], p->H[l], p->W[l], w->F, box, 1.0f / (float)(4 << l), out, out, 0, dst);
}

/* C = act(A W^T + b), row-major, on the plan's backend. */
static int fc(vm_be *be, const float *A, int M, int K, const float *W, const float *b, int N, int relu, float *C) {
    return be->linear(be, M, N, K, A, K, W, b, relu, C, N);
}

float *det_buf_grow(vm_be *be, det_buf *b, size_t n) {
    if (b->p && b->n >= n) return b->p;
    if (b->p) be->free(be, b->p);
    b->n = 0;
    if (!(b->p = be->alloc(be, n))) return NULL;
    b->n = n;
    return b->p;
}

void det_buf_free(vm_be *be, det_buf *b) {
    if (b->p) be->free(be, b->p);
    b->p = NULL;
    b->n = 0;
}

int det_bbox_forward(const det_weights *w, det_plan *p, const det_io *io, const float *props, int P,
                     float **obox, float **oscore, int **olabel, int *ndet, char *err, size_t errlen) {
    const int R = w->roi_out, K0 = R * R * w->F, Hd = w->fc_hidden, NC = w->ncls;
    vm_be *be = p->be;
    float *feats = NULL, *h1 = NULL, *h2 = NULL, *cls = NULL, *reg = NULL, *cb = NULL, *cs = NULL;
    float *dfeats = NULL, *dcls = NULL, *dreg = NULL; /* backend memory off the host */
    int *cl = NULL, *keep = NULL, rc = -1;
    *obox = NULL; *oscore = NULL; *olabel = NULL; *ndet = 0;
    size_t Pn = (size_t)(P ? P : 1);
    feats = malloc(Pn * K0 * sizeof(float));
    h1 = det_buf_grow(be, &p->bx_h1, Pn * Hd);
    h2 = det_buf_grow(be, &p->bx_h2, Pn * Hd);
    cls = malloc(Pn * (NC + 1) * sizeof(float));
    reg = malloc(Pn * 4 * NC * sizeof(float));
    if (!feats || !h1 || !h2 || !cls || !reg) {
        vm_errf(err, errlen, "out of memory in the box head (%d proposals)", P);
        goto done;
    }
    if (be->host) {
        dfeats = feats, dcls = cls, dreg = reg;
    } else {
        dfeats = det_buf_grow(be, &p->bx_feats, Pn * K0);
        dcls = det_buf_grow(be, &p->bx_cls, Pn * (NC + 1));
        dreg = det_buf_grow(be, &p->bx_reg, Pn * 4 * NC);
        if (!dfeats || !dcls || !dreg) {
            vm_errf(err, errlen, "out of %s memory in the box head (%d proposals)", be->name, P);
            goto done;
        }
    }
    if (det_on_backend(be)) {
        /* RoIAlign where the maps are: nothing crosses but the boxes */
        const float *maps[DET_ROI_LEVELS] = {p->P[0], p->P[1], p->P[2], p->P[3]};
        if (be->roi_align(be, maps, p->H, p->W, DET_ROI_LEVELS, w->F, props, 5, P, R, dfeats) ||
            (io->trace && P > 0 && be->download(be, feats, dfeats, (size_t)P * K0))) {
            vm_errf(err, errlen, "%s: box head RoIAlign failed: %s", be->name, be->err);
            goto done;
        }
    } else {
#pragma omp parallel for schedule(dynamic, 4)
        for (int i = 0; i < P; i++) det_roi_feats(w, p, props + 5 * (size_t)i, R, feats + (size_t)i * K0);
    }
    if (io->trace) io->trace(io->trace_user, "bbox_roi_feats", feats, P, R, R, w->F);
    if (P > 0) {
        if (!be->host && !det_on_backend(be) && be->upload(be, dfeats, feats, (size_t)P * K0)) {
            vm_errf(err, errlen, "%s: box head upload failed: %s", be->name, be->err);
            goto done;
        }
        if (fc(be, dfeats, P, K0, p->fc0_w, p->fc0_b, Hd, 1, h1) || fc(be, h1, P, Hd, p->fc1_w, p->fc1_b, Hd, 1, h2) ||
            fc(be, h2, P, Hd, p->cls_w, p->cls_b, NC + 1, 0, dcls) || fc(be, h2, P, Hd, p->reg_w, p->reg_b, 4 * NC, 0, dreg)) {
            vm_errf(err, errlen, "%s: box head FC failed (%d proposals): %s", be->name, P, be->err);
            goto done;
        }
        if (!be->host && (be->download(be, cls, dcls, (size_t)P * (NC + 1)) ||
                          be->download(be, reg, dreg, (size_t)P * 4 * NC))) {
            vm_errf(err, errlen, "%s: box head download failed: %s", be->name, be->err);
            goto done;
        }
    }
    if (io->trace) {
        io->trace(io->trace_user, "bbox_cls_logits", cls, P, NC + 1, 1, 1);
        io->trace(io->trace_user, "bbox_reg", reg, P, 4 * NC, 1, 1);
    }
    /* softmax as torch's vectorised lastdim kernel: exp(x - max), times 1/sum */
    for (int i = 0; i < P; i++) {
        float *c = cls + (size_t)i * (NC + 1), mx = c[0], s = 0.0f;
        for (int j = 1; j <= NC; j++) mx = fmaxf(mx, c[j]);
        for (int j = 0; j <= NC; j++) s += (c[j] = expf(c[j] - mx));
        float inv = 1.0f / s;
        for (int j = 0; j <= NC; j++) c[j] *= inv;
    }
    /* candidates (i, c) with score > thr, row-major i*NC + c */
    int n = 0;
    for (int i = 0; i < P; i++)
        for (int c = 0; c < NC; c++) n += cls[(size_t)i * (NC + 1) + c] > io->opts.score_thr;
    size_t nn = (size_t)(n ? n : 1);
    cb = malloc(nn * 4 * sizeof(float));
    cs = malloc(nn * sizeof(float));
    cl = malloc(nn * sizeof(int));
    keep = malloc(nn * sizeof(int));
    if (!cb || !cs || !cl || !keep) {
        vm_errf(err, errlen, "out of memory in the box head (%d candidate boxes)", n);
        goto done;
    }
    const float stds[4] = {0.1f, 0.1f, 0.2f, 0.2f};
    int m = 0;
    for (int i = 0; i < P; i++)
        for (int c = 0; c < NC; c++) {
            float s = cls[(size_t)i * (NC + 1) + c];
            if (!(s > io->opts.score_thr)) continue;
            vm_delta2bbox(props + 5 * (size_t)i, reg + (size_t)i * 4 * NC + 4 * c, stds, (float)io->img_w,
                          (float)io->img_h, cb + 4 * (size_t)m);
            cs[m] = s;
            cl[m++] = c;
        }
    int nk = vm_batched_nms(cb, cs, cl, m, io->opts.nms_iou, keep);
    if (nk < 0) {
        vm_errf(err, errlen, "out of memory in the box head's NMS (%d candidate boxes)", m);
        goto done;
    }
    if (nk > io->opts.max_per_img) nk = io->opts.max_per_img;
    size_t nd = (size_t)(nk ? nk : 1);
    *obox = malloc(nd * 4 * sizeof(float));
    *oscore = malloc(nd * sizeof(float));
    *olabel = malloc(nd * sizeof(int));
    if (!*obox || !*oscore || !*olabel) {
        free(*obox); free(*oscore); free(*olabel);
        *obox = NULL; *oscore = NULL; *olabel = NULL;
        vm_errf(err, errlen, "out of memory in the box head (%d detections)", nk);
        goto done;
    }
    for (int j = 0; j < nk; j++) {
        memcpy(*obox + 4 * (size_t)j, cb + 4 * (size_t)keep[j], 4 * sizeof(float));
        (*oscore)[j] = cs[keep[j]];
        (*olabel)[j] = cl[keep[j]];
    }
    *ndet = nk;
    rc = 0;
done:
    free(feats); free(cls); free(reg); free(cb); free(cs); free(cl); free(keep);
    return rc;
}
