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
    for (int i = 0; i < w->nmask_convs; i++) {
        vm_conv_free(p->mconv[i]);
        p->mconv[i] = NULL;
    }
    p->mask_n = 0;
    int S = w->mask_roi;
    for (int i = 0; i < w->nmask_convs; i++) {
        const det_conv_w *c = &w->mconv[i];
        p->mconv[i] = vm_conv_create_relu(n, c->cin, S, S, c->cout, c->k, 1, c->k / 2, c->w, c->b, 1, err, errlen);
        if (!p->mconv[i]) return -1;
    }
    p->mask_n = n;
    return 0;
}

int det_mask_forward(const det_weights *w, det_plan *p, const det_io *io, const float *boxes, const int *labels, int n,
                     float *prob, char *err, size_t errlen) {
    if (n == 0) return 0;
    const int S = w->mask_roi, S2 = 2 * S, Cm = w->Cm;
    size_t cmax = (size_t)(w->F > Cm ? w->F : Cm);
    float *a = malloc((size_t)n * S * S * cmax * sizeof(float)), *b = malloc((size_t)n * S * S * cmax * sizeof(float));
    float *up = malloc((size_t)(n < CHUNK ? n : CHUNK) * S * S * 4 * Cm * sizeof(float)), *logit = malloc((size_t)n * S2 * S2 * sizeof(float));
    int rc = -1;
    if (!a || !b || !up || !logit) { vm_errf(err, errlen, "out of memory in the mask head (%d detections)", n); goto done; }
    if (plan_convs(w, p, n, err, errlen)) goto done;
#pragma omp parallel for schedule(dynamic, 1)
    for (int i = 0; i < n; i++) det_roi_feats(w, p, boxes + 4 * (size_t)i, S, a + (size_t)i * S * S * w->F);
    if (io->trace) io->trace(io->trace_user, "mask_roi_feats", a, n, S, S, w->F);
    for (int i = 0; i < w->nmask_convs; i++) {
        if (vm_conv_run(p->mconv[i], a, b)) { vm_errf(err, errlen, "oneDNN: mask head convolution %d failed", i); goto done; }
        float *t = a; a = b; b = t;
    }
    /* The k2 s2 deconvolution has no overlapping taps: one GEMM gives, per
     * input pixel, the 2x2 output pixels' channels (rows i, j, co). Done
     * for CHUNK RoIs at a time to bound the buffer. */
    for (int r0 = 0; r0 < n; r0 += CHUNK) {
        int nr = n - r0 < CHUNK ? n - r0 : CHUNK;
        if (vm_gemm(nr * S * S, 4 * Cm, Cm, a + (size_t)r0 * S * S * Cm, Cm, w->up_w, Cm, up, 4 * Cm, 0.0f)) {
            vm_errf(err, errlen, "oneDNN: mask head deconvolution failed");
            goto done;
        }
#pragma omp parallel for schedule(static)
        for (int rr = 0; rr < nr; rr++) {
            int r = r0 + rr;
            const float *lw = w->logit_w + (size_t)labels[r] * Cm;
            float lb = w->logit_b[labels[r]];
            for (int y = 0; y < S; y++)
                for (int x = 0; x < S; x++)
                    for (int q = 0; q < 4; q++) {
                        const float *u = up + (((size_t)rr * S + y) * S + x) * 4 * Cm + (size_t)q * Cm;
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
    if (io->trace) io->trace(io->trace_user, "mask_logits", logit, n, S2, S2, 1);
    for (size_t i = 0; i < (size_t)n * S2 * S2; i++) prob[i] = 1.0f / (1.0f + expf(-logit[i]));
    rc = 0;
done:
    free(a); free(b); free(up); free(logit);
    return rc;
}
