/* classifier.c - the image-classification head, written once for every
 * backend on the backbone ops (net/backbone.h): LayerNorm over the last
 * stage's channels, global average pool, linear layer (the official
 * classifier = norm -> permute -> avgpool -> flatten -> head).
 *
 * Its linear layer is one of the model's linears (load.c binds
 * classifier.* with the backbone: packed at load, INT8-calibrated,
 * observed by calibration, uploaded to CUDA with the others), so it runs
 * through the backend's model-layer ops rather than src/ops/backend.h's
 * plain-weight linear. A checkpoint with both outnorm3 and a classifier
 * feeds the classifier the un-normalised map (x). */
#include <stdio.h>

#include "../backbone.h"
#include "model/model.h"
#include "../../core/util.h"

int vm_classifier_bind(const vm_model *m, vm_classifier *h, char *err, size_t errlen) {
    const vm_info *I = &m->info;
    h->C = I->dims[3];
    h->ncls = I->num_classes;
    if (h->ncls <= 0 || !m->cls_norm.w || (!m->head_w && !m->f_head && !m->q_head))
        return vm_errf(err, errlen, "%s: no classifier (classifier.norm / classifier.head)", m->path ? m->path : "model");
    return 0;
}

int vm_classifier_run(const vm_classifier *h, vm_bb *bb, const float *x, int B, int L, float *logits) {
    const vm_bb_ops *o = bb->ops;
    const int C = h->C;
    /* t0 and t1 are free once the backbone is done */
    if (o->layernorm(bb, VM_BB_CLS_NORM, 3, 0, x, bb->t0, (size_t)B * L, C) || o->mean_tokens(bb, bb->t0, B, L, C, bb->t1) ||
        o->linear(bb, VM_BB_HEAD, 3, 0, bb->t1, C, B, h->ncls, C, logits, h->ncls, 0, 0))
        return -1;
    return 0;
}
