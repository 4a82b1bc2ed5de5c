/* fpn.c - mmdet FPN (start_level 0, no extra convs, no norm/activation):
 * lateral 1x1 convs, top-down nearest-upsample adds, 3x3 output convs, and
 * P6 as max_pool2d(P5, kernel 1, stride 2), i.e. every other pixel. All
 * through the plan's backend (src/ops/backend.h). */
#include "maskrcnn.h"

int det_fpn_forward(const det_weights *w, det_plan *p, const vm_feats *in) {
    vm_be *be = p->be;
    for (int i = 0; i < 4; i++)
        if (be->conv_run(be, p->lateral[i], in->data[i], p->lat[i])) return -1;
    for (int i = 3; i >= 1; i--)
        if (be->upsample_add(be, p->lat[i - 1], p->H[i - 1], p->W[i - 1], p->lat[i], p->H[i], p->W[i], w->F)) return -1;
    for (int i = 0; i < 4; i++)
        if (be->conv_run(be, p->fpn[i], p->lat[i], p->P[i])) return -1;
    return be->subsample2(be, p->P[3], p->H[3], p->W[3], w->F, p->P[4]);
}
