/* classifier.c - the image-classification head: LayerNorm over the last
 * stage's channels, global average pool, linear layer (the official
 * classifier = norm -> permute -> avgpool -> flatten -> head).
 *
 * Unlike the heads that follow net/head.h (bound from vm_model_weights,
 * run by vm_ctx_run_head), the classifier's weights are bound with the
 * backbone's (load.c: classifier.*): its linear layer is one of the
 * model's linears, packed at load with them, INT8-calibrated and observed
 * by calibration with them, uploaded to CUDA with them. It reads the same
 * vm_feats from vm_ctx_backbone as the other heads. */
#include <stdlib.h>

#include "model/model.h"
#include "../../../simd/kernels.h"

int vm_classifier_forward(vm_ctx *c, const vm_feats *f, float *logits) {
    const vm_model *m = c->m;
    const vm_info *I = &m->info;
    vm_plan *p = &c->plan;
    const int B = f->B, C = I->dims[3], L = f->H[3] * f->W[3];
    /* The last stage's raw output (p->x; a checkpoint with both outnorm3
     * and a classifier feeds the classifier the un-normalised map). t0 and
     * t1 are free once the backbone is done. */
    vm_kernels()->layernorm(p->t0, p->x, m->cls_norm.w, m->cls_norm.b, (size_t)B * L, C, VM_LN_EPS);
    float *pooled = p->t1;
    for (int b = 0; b < B; b++)
        for (int ch = 0; ch < C; ch++) {
            double acc = 0;
            for (int t = 0; t < L; t++) acc += p->t0[((size_t)b * L + t) * C + ch];
            pooled[(size_t)b * C + ch] = (float)(acc / L);
        }
    if (vm_linear(c, m->q_head, m->f_head, "classifier.head", pooled, C, B, I->num_classes, C, m->head_w, logits, I->num_classes,
                  m->head_b, 0, 0))
        return vm_ctx_fail(c, VM_ERR_BACKEND, "oneDNN primitive execution failed");
    return 0;
}
