/* api.c - public entry points that check their arguments, then call the
 * forward pass. */
#include <omp.h>
#include <stdlib.h>

#include "model.h"
#include "../core/util.h"

static int g_threads;

void vm_set_threads(int n) {
    g_threads = n > 0 ? n : 0;
    if (n > 0) omp_set_num_threads(n);
}

int vm_get_threads(void) { return g_threads > 0 ? g_threads : omp_get_max_threads(); }

static int check_input(vm_model *m, const float *in, int B, int H, int W) {
    if (!in) return vm_errf(m->err, sizeof m->err, "input is NULL");
    if (B < 1 || H < 1 || W < 1) return vm_errf(m->err, sizeof m->err, "bad input shape (%d, 3, %d, %d)", B, H, W);
    return 0;
}

int vm_forward(vm_model *m, const float *in, int B, int H, int W, float *logits) {
    if (check_input(m, in, B, H, W)) return -1;
    if (m->info.num_classes <= 0)
        return vm_errf(m->err, sizeof m->err, "model is a backbone without a classifier head; use features");
    if (!logits) return vm_errf(m->err, sizeof m->err, "logits buffer is NULL");
    return vm_forward_impl(m, in, B, H, W, logits, NULL);
}

void vm_feature_shape(const vm_model *m, int H, int W, int i, int *C, int *h, int *w) {
    const vm_info *I = &m->info;
    int hh, ww;
    if (I->patch_embed_version == 1) {
        hh = vm_conv_out_size(H, I->patch_size, I->patch_size, 0);
        ww = vm_conv_out_size(W, I->patch_size, I->patch_size, 0);
    } else {
        int k = m->pe_conv1.k, s = m->pe_conv1.stride;
        hh = vm_conv_out_size(vm_conv_out_size(H, k, s, 1), k, s, 1);
        ww = vm_conv_out_size(vm_conv_out_size(W, k, s, 1), k, s, 1);
    }
    for (int s = 0; s < i; s++) {
        hh = (hh + 1) / 2;
        ww = (ww + 1) / 2;
    }
    *C = I->dims[i];
    *h = hh;
    *w = ww;
}

int vm_forward_features(vm_model *m, const float *in, int B, int H, int W, float *feats[4]) {
    if (check_input(m, in, B, H, W)) return -1;
    if (!m->info.is_backbone)
        return vm_errf(m->err, sizeof m->err, "model has no outnorm0..3 layers: features need a backbone (mmdet/mmseg) checkpoint");
    for (int i = 0; i < 4; i++)
        if (!feats || !feats[i]) return vm_errf(m->err, sizeof m->err, "feature buffer %d is NULL", i);
    return vm_forward_impl(m, in, B, H, W, NULL, feats);
}
