/* mask_head.c - mmdet FCNMaskHead on the final boxes: RoIAlign 14x14,
 * num_convs x (3x3 conv + ReLU), ConvTranspose2d(k2, s2) + ReLU, 1x1
 * conv_logits (only the detection's own class is computed), sigmoid. */
#include "maskrcnn.h"
#include "core/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 16

/* Convolution primitives for a batch of n RoIs; kept while n repeats. */
static int plan_convs(const det_weights *w, det_plan *p, int n, char *err, size_t errlen) {
    if (p->mask_n == n) return 0;
    vm_be *be = p->be;
    for (int i = 0; i < w->nmask_convs; i++) {
        be->conv_free(be, p->mconv[i]);
        p->mconv[i] = NULL;
    }
    p->mask_n = 0;
    int S = w->mask_roi;
    for (int i = 0; i < w->nmask_convs; i++) {
        const det_conv_w *c = &w->mconv[i];
        p->mconv[i] = be->conv_make(be, n, c->cin, S, S, c->cout, c->k, 1, c->k / 2, c->w, c->b, 1);
        if (!p->mconv[i]) return vm_errf(err, errlen, "mask head convolution %d: %s", i, be->err);
    }
    p->mask_n = n;
    return 0;
}

int det_mask_forward(const det_weights *w, det_plan *p, const det_io *io, const float *boxes, const int *labels, int n,
                     float *prob, char *err, size_t errlen) {
    if (n == 0) return 0;
    vm_be *be = p->be;
    const int S = w->mask_roi, S2 = 2 * S, Cm = w->Cm;
    size_t cmax = (size_t)(w->F > Cm ? w->F : Cm), nup = (size_t)(n < CHUNK ? n : CHUNK) * S * S * 4 * Cm;
    /* roi: RoIAlign's host output; a, b: the conv ping-pong and up the
     * deconvolution's output in backend memory (roi is a, up is uph on a
     * host backend: no copies). The backend buffers are the plan's, grown
     * to the largest detection count seen (as the box head's): no device
     * allocation per image. */
    float *a = det_buf_grow(be, &p->mk_a, (size_t)n * S * S * cmax), *b = det_buf_grow(be, &p->mk_b, (size_t)n * S * S * cmax);
    float *roi = be->host ? a : malloc((size_t)n * S * S * w->F * sizeof(float));
    float *uph = malloc(nup * sizeof(float)), *up = be->host ? uph : det_buf_grow(be, &p->mk_up, nup);
    float *logit = malloc((size_t)n * S2 * S2 * sizeof(float));
    /* off the host with be->mask_logits: the logits are made where the
     * deconvolution's output is, and only they come back */
    const int dev_logits = det_on_backend(be) && be->mask_logits && p->logit_w;
    float *dlog = dev_logits ? det_buf_grow(be, &p->mk_logit, (size_t)n * S2 * S2) : logit;
    int rc = -1;
    if (!roi || !a || !b || !uph || !up || !logit || !dlog) { vm_errf(err, errlen, "out of memory in the mask head (%d detections)", n); goto done; }
    if (plan_convs(w, p, n, err, errlen)) goto done;
    if (det_on_backend(be)) {
        /* RoIAlign where the maps are, straight into the first conv's input */
        const float *maps[DET_ROI_LEVELS] = {p->P[0], p->P[1], p->P[2], p->P[3]};
        if (be->roi_align(be, maps, p->H, p->W, DET_ROI_LEVELS, w->F, boxes, 4, n, S, a) ||
            (io->trace && be->download(be, roi, a, (size_t)n * S * S * w->F))) {
            vm_errf(err, errlen, "mask head RoIAlign: %s", be->err);
            goto done;
        }
        if (io->trace) io->trace(io->trace_user, "mask_roi_feats", roi, n, S, S, w->F);
    } else {
#pragma omp parallel for schedule(dynamic, 1)
        for (int i = 0; i < n; i++) det_roi_feats(w, p, boxes + 4 * (size_t)i, S, roi + (size_t)i * S * S * w->F);
        if (io->trace) io->trace(io->trace_user, "mask_roi_feats", roi, n, S, S, w->F);
        if (be->upload(be, a, roi, (size_t)n * S * S * w->F)) { vm_errf(err, errlen, "mask head: %s", be->err); goto done; }
    }
    for (int i = 0; i < w->nmask_convs; i++) {
        if (be->conv_run(be, p->mconv[i], a, b)) { vm_errf(err, errlen, "mask head convolution %d: %s", i, be->err); goto done; }
        float *t = a; a = b; b = t;
    }
    /* The k2 s2 deconvolution has no overlapping taps: one GEMM gives, per
     * input pixel, the 2x2 output pixels' channels (rows i, j, co). Done
     * for CHUNK RoIs at a time to bound the buffer. */
    for (int r0 = 0; r0 < n; r0 += CHUNK) {
        int nr = n - r0 < CHUNK ? n - r0 : CHUNK;
        if (be->linear(be, nr * S * S, 4 * Cm, Cm, a + (size_t)r0 * S * S * Cm, Cm, p->up_w, NULL, 0, up, 4 * Cm) ||
            (!be->host && !dev_logits && be->download(be, uph, up, (size_t)nr * S * S * 4 * Cm))) {
            vm_errf(err, errlen, "mask head deconvolution: %s", be->err);
            goto done;
        }
        if (dev_logits) {
            if (be->mask_logits(be, up, nr, S, Cm, p->up_b, p->logit_w, p->logit_b, labels + r0, dlog + (size_t)r0 * S2 * S2)) {
                vm_errf(err, errlen, "mask head logits: %s", be->err);
                goto done;
            }
            continue;
        }
#pragma omp parallel for schedule(static)
        for (int rr = 0; rr < nr; rr++) {
            int r = r0 + rr;
            const float *lw = w->logit_w + (size_t)labels[r] * Cm;
            float lb = w->logit_b[labels[r]];
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++)
                    for (int q = 0; q < 4; q++) {
                        const float *u = uph + (((size_t)rr * S + y) * S + x) * 4 * Cm + (size_t)q * Cm;
                        float acc = 0.0f;
                        for (int c = 0; c < Cm; c++) {
                            float v = u[c] + w->up_b[c];
                            acc += (v > 0.0f ? v : 0.0f) * lw[c];
                        }
                        int oy = 2 * y + q / 2, ox = 2 * x + q % 2;
                        logit[((size_t)r * S2 + oy) * S2 + ox] = acc + lb;
                    }
        }
    }
    if (dev_logits && be->download(be, logit, dlog, (size_t)n * S2 * S2)) {
        vm_errf(err, errlen, "mask head logits: %s", be->err);
        goto done;
    }
    if (io->trace) io->trace(io->trace_user, "mask_logits", logit, n, S2, S2, 1);
    for (size_t i = 0; i < (size_t)n * S2 * S2; i++) prob[i] = 1.0f / (1.0f + expf(-logit[i]));
    rc = 0;
done:
    if (!be->host) free(roi);
    free(uph);
    free(logit);
    return rc;
}
