/* api.c - public entry points that check their arguments, then call the
 * forward pass. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <omp.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

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
    return m->dev ? m->dev->forward(m, in, B, H, W, logits, NULL) : vm_forward_impl(m, in, B, H, W, logits, NULL);
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
    return m->dev ? m->dev->forward(m, in, B, H, W, NULL, feats) : vm_forward_impl(m, in, B, H, W, NULL, feats);
}

int vm_cuda_devices(void) {
#ifdef VM_HAVE_CUDA
    return vm_cuda_device_count();
#else
    return 0;
#endif
}

/* A 64-byte header before the block says how it was allocated (and keeps
 * the block 64-byte aligned). */
#define HOST_HDR 64
void *vm_host_alloc(size_t bytes) {
    if (bytes > SIZE_MAX - HOST_HDR) return NULL;
    unsigned char *p = NULL;
    int pinned = 0;
#ifdef VM_HAVE_CUDA
    if (vm_cuda_device_count() > 0 && (p = vm_cuda_host_alloc(bytes + HOST_HDR)) != NULL) pinned = 1;
#endif
    if (!p && posix_memalign((void **)&p, 64, bytes + HOST_HDR) != 0) return NULL;
    memcpy(p, &pinned, sizeof pinned);
    return p + HOST_HDR;
}

void vm_host_free(void *q) {
    if (!q) return;
    unsigned char *p = (unsigned char *)q - HOST_HDR;
    int pinned;
    memcpy(&pinned, p, sizeof pinned);
#ifdef VM_HAVE_CUDA
    if (pinned) {
        vm_cuda_host_free(p);
        return;
    }
#endif
    free(p);
}

const char *vm_model_device(const vm_model *m) { return m->dev ? m->dev->name : "cpu"; }

int vm_model_set_device(vm_model *m, const char *device, vm_precision precision) {
    if (!device || !strcmp(device, "cpu")) {
        if (m->dev) {
            m->dev->release(m);
            m->dev = NULL;
        }
        return 0;
    }
    if (strcmp(device, "cuda") != 0)
        return vm_errf(m->err, sizeof m->err, "unknown device '%s' (expected cpu or cuda)", device);
    if ((unsigned)precision > VM_PRECISION_BF16) return vm_errf(m->err, sizeof m->err, "unknown precision %d", (int)precision);
#ifdef VM_HAVE_CUDA
    if (m->dev) m->dev->release(m);
    m->dev = NULL;
    char e[400];
    if (vm_weights_plain(m)) return -1; /* the upload reads plain weights */
    if (vm_cuda_attach(m, (int)precision, e, sizeof e)) return vm_errf(m->err, sizeof m->err, "%s", e);
    return 0;
#else
    return vm_errf(m->err, sizeof m->err, "this build has no CUDA backend (configure --with-cuda)");
#endif
}
