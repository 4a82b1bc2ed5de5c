/* api.c - public entry points that check their arguments, then call the
 * forward pass. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "model.h"
#include "../ops/gemm_xnnpack.h"
#include "../core/util.h"

static int g_threads;

void vm_set_threads(int n) {
    g_threads = n > 0 ? n : 0;
    if (n > 0) omp_set_num_threads(n);
}

int vm_get_threads(void) { return g_threads > 0 ? g_threads : omp_get_max_threads(); }

/* ---- contexts ---------------------------------------------------------- */

int vm_ctx_fail(vm_ctx *c, vm_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    c->status = code;
    return -1;
}

static vm_ctx *ctx_new(const vm_model *m, char *err, size_t errlen) {
    vm_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        vm_errf(err, errlen, "out of memory");
        return NULL;
    }
    c->m = m;
    c->device = VM_DEV_MODEL;
    c->dx = vm_dnnl_exec_new(err, errlen);
    if (!c->dx) {
        free(c);
        return NULL;
    }
    c->be = vm_be_cpu_new(c->dx, err, errlen);
    if (!c->be) {
        vm_dnnl_exec_free(c->dx);
        free(c);
        return NULL;
    }
    return c;
}

vm_ctx *vm_ctx_new(const vm_model *m, char *err, size_t errlen) {
    if (!m) {
        vm_errf(err, errlen, "model is NULL");
        return NULL;
    }
    vm_ctx *c = ctx_new(m, err, errlen);
    /* Counted so that tooling which rewrites weights (calibration) refuses
     * a model in use; the count is the only thing a context writes in it. */
    if (c) __atomic_add_fetch(&((vm_model *)m)->nctx, 1, __ATOMIC_ACQ_REL);
    return c;
}

static void ctx_release(vm_ctx *c) {
#ifdef VM_HAVE_CUDA
    if (c->device >= 0) vm_cuda_weights((vm_model *)c->m, c->device, -1, NULL, 0);
#endif
    for (int i = 0; i < VM_CTX_HEADS; i++)
        if (c->heads[i].p) c->heads[i].ops->plan_free(c->heads[i].p);
    if (c->dev_ctx) c->dev_release(c->dev_ctx);
    vm_plan_free(&c->plan);
    for (int i = 0; i < 4; i++)
        if (c->dev_feat[i]) c->be_dev->free(c->be_dev, c->dev_feat[i]);
    vm_be_free(c->be_dev);
    vm_be_free(c->be);
    vm_dnnl_exec_free(c->dx);
    free(c);
}

void vm_ctx_free(vm_ctx *c) {
    if (!c) return;
    if (!c->internal) __atomic_sub_fetch(&((vm_model *)c->m)->nctx, 1, __ATOMIC_ACQ_REL);
    ctx_release(c);
}

uint64_t vm_head_id_next(void) {
    static uint64_t last;
    return __atomic_add_fetch(&last, 1, __ATOMIC_RELAXED);
}

int vm_ctx_device_index(const vm_ctx *c) {
    if (c->device != VM_DEV_MODEL) return c->device;
    return c->m->dev_cuda ? c->m->dev_cuda - 1 : VM_DEV_CPU;
}

const char *vm_ctx_device(const vm_ctx *c) {
    if (!c) return "cpu";
    int d = vm_ctx_device_index(c);
    if (d < 0) return "cpu";
    vm_ctx *w = (vm_ctx *)c; /* the name's buffer: c is used by one thread at a time */
    snprintf(w->dev_name, sizeof w->dev_name, "cuda:%d", d);
    return w->dev_name;
}

/* The reason a CUDA device index cannot be used, in err; 0 when it can. */
static int cuda_device_ok(int idx, char *err, size_t errlen) {
#ifdef VM_HAVE_CUDA
    int n = vm_cuda_device_count();
    if (n < 1) return vm_errf(err, errlen, "no CUDA device found");
    if (idx >= n)
        return n == 1 ? vm_errf(err, errlen, "CUDA device %d does not exist (1 device: cuda:0)", idx)
                      : vm_errf(err, errlen, "CUDA device %d does not exist (%d devices: cuda:0 to cuda:%d)", idx, n,
                                n - 1);
    return 0;
#else
    (void)idx;
    return vm_errf(err, errlen, "this build has no CUDA backend (configure --with-cuda)");
#endif
}

int vm_ctx_set_device(vm_ctx *c, const char *device) {
    if (!c) return VM_ERR_INPUT;
    c->status = VM_OK;
    c->err[0] = 0;
    int idx = vm_device_index(device);
    if (!device) idx = VM_DEV_MODEL;
    else if (idx == -2) {
        vm_ctx_fail(c, VM_ERR_INPUT, "unknown device '%s' (expected cpu, cuda or cuda:N)", device);
        return VM_ERR_INPUT;
    }
    if (idx >= 0 && cuda_device_ok(idx, c->err, sizeof c->err)) {
        c->status = VM_ERR_UNSUPPORTED;
        return VM_ERR_UNSUPPORTED;
    }
    if (idx == c->device) return 0;
#ifdef VM_HAVE_CUDA
    /* The weights go to the new device (once per device: shared with the
     * other contexts there) before this context lets go of the old one. */
    if (idx >= 0 && vm_cuda_weights((vm_model *)c->m, idx, 1, c->err, sizeof c->err)) {
        c->status = VM_ERR_UNSUPPORTED;
        return VM_ERR_UNSUPPORTED;
    }
    if (c->device >= 0) vm_cuda_weights((vm_model *)c->m, c->device, -1, NULL, 0);
#endif
    const int was = vm_ctx_device_index(c);
    c->device = idx;
    if (c->dev_ctx && vm_ctx_device_index(c) != was) { /* the old device's stream, handle and arena */
        c->dev_release(c->dev_ctx);
        c->dev_ctx = NULL;
    }
    return 0;
}

vm_ctx *vm_model_ctx(vm_model *m) {
    if (!m->ictx) {
        char e[256];
        m->ictx = ctx_new(m, e, sizeof e);
        if (!m->ictx) vm_errf(m->err, sizeof m->err, "%s", e);
        else m->ictx->internal = 1; /* not counted in m->nctx */
    }
    return m->ictx;
}

const char *vm_ctx_error(const vm_ctx *c) { return c ? c->err : "no context"; }
vm_status vm_ctx_error_code(const vm_ctx *c) { return c ? c->status : VM_ERR_INPUT; }

int vm_ctx_set_threads(vm_ctx *c, int n) {
    if (!c) return VM_ERR_INPUT;
    c->threads = n > 0 ? n : 0;
    return 0;
}

int vm_ctx_bf16(const vm_ctx *c) {
    return c->precision ? c->precision - 1 == VM_PRECISION_BF16 : c->m->cpu_bf16;
}

int vm_ctx_fp16(const vm_ctx *c) {
    return c->precision ? c->precision - 1 == VM_PRECISION_FP16 : c->m->cpu_fp16;
}

/* CPU arithmetic: FP32, BF16 GEMMs and convolutions (avx512_bf16 / AMX),
 * or FP16 linear layers (XNNPACK on ARMv8.2 cores with FP16 arithmetic). */
static int cpu_precision_ok(const vm_model *m, vm_precision p, char *err, size_t errlen) {
    if (p == VM_PRECISION_FP32) return 0;
    if (p == VM_PRECISION_FP16) {
        if (!m->xnn || !vm_xnn_fp16_supported())
            return vm_errf(err, errlen, "fp16 on the CPU needs an aarch64 core with FP16 arithmetic (ARMv8.2: Cortex-A55/A76 "
                                        "and later) and the XNNPACK GEMM path%s",
                           m->xnn ? " (XNNPACK refuses FP16 operators on this CPU)" : " (this model's GEMMs run on oneDNN here)");
        return 0;
    }
    if (p != VM_PRECISION_BF16)
        return vm_errf(err, errlen, "precision %s is for CUDA only; the CPU does fp32, bf16 or fp16",
                       p == VM_PRECISION_TF32 ? "tf32" : "(unknown)");
    if (!vm_dnnl_bf16_supported())
        return vm_errf(err, errlen, "bf16 needs a CPU with avx512_bf16 or AMX; this one (as oneDNN sees it) has neither");
    return 0;
}

int vm_ctx_set_precision(vm_ctx *c, vm_precision p) {
    if (!c) return VM_ERR_INPUT;
    if (cpu_precision_ok(c->m, p, c->err, sizeof c->err)) {
        c->status = VM_ERR_UNSUPPORTED;
        return VM_ERR_UNSUPPORTED;
    }
    c->precision = 1 + (int)p; /* the plan follows at the next forward */
    return 0;
}

void vm_ctx_set_trace(vm_ctx *c, vm_trace_fn fn, void *user) {
    c->trace = fn;
    c->trace_user = user;
}

void vm_ctx_set_observe(vm_ctx *c, vm_observe_fn fn, void *user) {
    c->observe = fn;
    c->observe_user = user;
}

void vm_ctx_profile_enable(vm_ctx *c, int on) {
    if (!c) return;
    if (on) memset(&c->prof, 0, sizeof c->prof);
    c->prof.enabled = on != 0;
}

int vm_profile_op_count(void) { return VM_OP_COUNT; }
const char *vm_profile_op_name(int i) { return i >= 0 && i < VM_OP_COUNT ? vm_op_names[i] : NULL; }
double vm_ctx_profile_seconds(const vm_ctx *c, int i) { return c && i >= 0 && i < VM_OP_COUNT ? c->prof.seconds[i] : 0.0; }

static int check_input(vm_ctx *c, const float *in, int B, int H, int W);

static int same_shape(const vm_feats *a, const vm_feats *b) {
    if (a->B != b->B) return 0;
    for (int i = 0; i < 4; i++)
        if (a->C[i] != b->C[i] || a->H[i] != b->H[i] || a->W[i] != b->W[i]) return 0;
    return 1;
}

int vm_ctx_backbone_be(vm_ctx *c, const float *in, int B, int H, int W, vm_feats *f, vm_be **be) {
    const int dev = vm_ctx_device_index(c);
    if (dev < 0) {
        *be = c->be_test ? c->be_test : c->be;
        return vm_ctx_backbone(c, in, B, H, W, f);
    }
#ifdef VM_HAVE_CUDA
    vm_model *m = (vm_model *)c->m;
    /* The device backbone writes its maps NHWC straight into device
     * buffers of the context's CUDA op backend (kept in c, grown as needed). */
    vm_be *d = vm_ctx_cuda_backend(c, dev);
    if (!d) return -1;
    memset(f, 0, sizeof *f);
    f->B = B;
    for (int i = 0; i < 4; i++) {
        vm_feature_shape(m, H, W, i, &f->C[i], &f->H[i], &f->W[i]);
        size_t n = (size_t)B * f->C[i] * f->H[i] * f->W[i];
        if (c->dev_feat_n[i] < n) {
            if (c->dev_feat[i]) d->free(d, c->dev_feat[i]);
            c->dev_feat_n[i] = 0;
            if (!(c->dev_feat[i] = d->alloc(d, n)))
                return vm_ctx_fail(c, VM_ERR_NOMEM, "out of device memory for the backbone's feature maps (%dx%d input)", W, H);
            c->dev_feat_n[i] = n;
        }
        f->data[i] = c->dev_feat[i];
    }
    if (vm_cuda_forward_features_dev(m, c, dev, in, B, H, W, c->dev_feat)) {
        if (c->status == VM_OK) c->status = VM_ERR_BACKEND;
        return -1;
    }
    *be = d;
    return 0;
#else
    (void)in, (void)B, (void)H, (void)W, (void)f, (void)be;
    return vm_ctx_fail(c, VM_ERR_UNSUPPORTED, "heads run on the CPU only in this build (the context is on cuda:%d)", dev);
#endif
}

static int run_head(vm_ctx *c, const vm_head_ops *ops, const vm_head *h, const float *in, int B, int H, int W, void *out) {
    vm_feats f;
    vm_be *be = NULL;
    if (vm_ctx_backbone_be(c, in, B, H, W, &f, &be)) return -1;
    return vm_ctx_head_forward_on(c, be, ops, h, &f, out);
}

vm_be *vm_ctx_cuda_backend(vm_ctx *c, int device) {
    if (c->be_dev && c->be_dev_device == device) return c->be_dev;
    if (c->be_dev) { /* plans and maps made on the other device go with it */
        for (int i = 0; i < 4; i++) {
            if (c->dev_feat[i]) c->be_dev->free(c->be_dev, c->dev_feat[i]);
            c->dev_feat[i] = NULL;
            c->dev_feat_n[i] = 0;
        }
        for (int i = 0; i < VM_CTX_HEADS; i++)
            if (c->heads[i].be == c->be_dev) {
                if (c->heads[i].p) c->heads[i].ops->plan_free(c->heads[i].p);
                memset(&c->heads[i], 0, sizeof c->heads[i]);
            }
        vm_be_free(c->be_dev);
        c->be_dev = NULL;
    }
    char e[256];
    c->be_dev = vm_be_cuda_new(device, e, sizeof e);
    if (!c->be_dev) {
        vm_ctx_fail(c, VM_ERR_UNSUPPORTED, "%s", e);
        return NULL;
    }
    c->be_dev_device = device;
    return c->be_dev;
}

int vm_ctx_head_forward(vm_ctx *c, const vm_head_ops *ops, const vm_head *h, const vm_feats *fp, void *out) {
    return vm_ctx_head_forward_on(c, c->be, ops, h, fp, out);
}

int vm_ctx_head_forward_on(vm_ctx *c, vm_be *be, const vm_head_ops *ops, const vm_head *h, const vm_feats *fp, void *out) {
    vm_feats f = *fp;
    const uint64_t hid = VM_HEAD_ID(h);
    vm_ctx_head *slot = NULL, *free_slot = NULL, *oldest = &c->heads[0];
    for (int i = 0; i < VM_CTX_HEADS; i++) {
        vm_ctx_head *s = &c->heads[i];
        if (s->h == h && s->hid != hid) { /* a freed head's plan: its address was bound again */
            if (s->p) s->ops->plan_free(s->p);
            memset(s, 0, sizeof *s);
        }
        if (s->h == h && s->hid == hid && s->ops == ops && s->be == be) slot = s;
        if (!s->h && !free_slot) free_slot = s;
        if (s->used < oldest->used) oldest = s;
    }
    if (!slot && !free_slot) { /* full: the least recently run plan makes room (heads may have been freed) */
        if (oldest->p) oldest->ops->plan_free(oldest->p);
        memset(oldest, 0, sizeof *oldest);
        free_slot = oldest;
    }
    if (!slot) {
        slot = free_slot;
        slot->ops = ops;
        slot->h = h;
        slot->hid = hid;
        slot->be = be;
    }
    slot->used = ++c->head_clock;
    char e[256] = "";
    if (slot->p && !same_shape(&slot->shape, &f)) {
        ops->plan_free(slot->p);
        slot->p = NULL;
    }
    if (!slot->p) {
        slot->p = ops->plan(h, be, &f, e, sizeof e);
        if (!slot->p) return vm_ctx_fail(c, VM_ERR_BACKEND, "%s head: %s", ops->name, e);
        slot->shape = f;
    }
    if (ops->forward(h, slot->p, &f, out, e, sizeof e)) return vm_ctx_fail(c, VM_ERR_BACKEND, "%s head: %s", ops->name, e);
    return 0;
}

int vm_ctx_run_head(vm_ctx *c, const vm_head_ops *ops, const vm_head *h, const float *in, int B, int H, int W, void *out) {
    c->status = VM_OK;
    c->err[0] = 0;
    if (check_input(c, in, B, H, W)) return -1;
    int saved = 0;
    if (c->threads > 0) {
        saved = omp_get_max_threads();
        omp_set_num_threads(c->threads);
    }
    int rc = run_head(c, ops, h, in, B, H, W, out);
    if (c->threads > 0) omp_set_num_threads(saved);
    return rc;
}

static int check_input(vm_ctx *c, const float *in, int B, int H, int W) {
    if (!in) return vm_ctx_fail(c, VM_ERR_INPUT, "input is NULL");
    if (B < 1 || H < 1 || W < 1) return vm_ctx_fail(c, VM_ERR_INPUT, "bad input shape (%d, 3, %d, %d)", B, H, W);
    return 0;
}

/* Run on c's thread count (OpenMP's per-thread setting, restored after),
 * on c's device: the CPU, or the GPU it (or by default the model) chose. */
static int run(vm_ctx *c, const float *in, int B, int H, int W, float *logits, float *feats[4]) {
    int saved = 0;
    if (c->threads > 0) {
        saved = omp_get_max_threads();
        omp_set_num_threads(c->threads);
    }
    int rc;
    const int dev = vm_ctx_device_index(c);
    if (dev >= 0) {
#ifdef VM_HAVE_CUDA
        rc = vm_cuda_forward((vm_model *)c->m, c, dev, in, B, H, W, logits, feats);
        if (rc && c->status == VM_OK) c->status = VM_ERR_BACKEND;
#else
        rc = vm_ctx_fail(c, VM_ERR_UNSUPPORTED, "this build has no CUDA backend");
#endif
    } else {
        rc = vm_forward_impl(c, in, B, H, W, logits, feats);
    }
    if (c->threads > 0) omp_set_num_threads(saved);
    return rc ? (int)(c->status != VM_OK ? c->status : VM_ERR_BACKEND) : 0;
}

int vm_ctx_forward(vm_ctx *c, const float *in, int B, int H, int W, float *logits) {
    if (!c) return VM_ERR_INPUT;
    c->status = VM_OK;
    c->err[0] = 0;
    if (check_input(c, in, B, H, W)) return VM_ERR_INPUT;
    if (c->m->info.num_classes <= 0) {
        vm_ctx_fail(c, VM_ERR_UNSUPPORTED, "model is a backbone without a classifier head; use features");
        return VM_ERR_UNSUPPORTED;
    }
    if (!logits) return vm_ctx_fail(c, VM_ERR_INPUT, "logits buffer is NULL"), VM_ERR_INPUT;
    return run(c, in, B, H, W, logits, NULL);
}

int vm_ctx_forward_features(vm_ctx *c, const float *in, int B, int H, int W, float *feats[4]) {
    if (!c) return VM_ERR_INPUT;
    c->status = VM_OK;
    c->err[0] = 0;
    if (check_input(c, in, B, H, W)) return VM_ERR_INPUT;
    if (!c->m->info.is_backbone) {
        vm_ctx_fail(c, VM_ERR_UNSUPPORTED, "model has no outnorm0..3 layers: features need a backbone (mmdet/mmseg) checkpoint");
        return VM_ERR_UNSUPPORTED;
    }
    for (int i = 0; i < 4; i++)
        if (!feats || !feats[i]) return vm_ctx_fail(c, VM_ERR_INPUT, "feature buffer %d is NULL", i), VM_ERR_INPUT;
    return run(c, in, B, H, W, NULL, feats);
}

/* The single-threaded conveniences: the model's internal context, its
 * error copied to the model's. */
int vm_forward(vm_model *m, const float *in, int B, int H, int W, float *logits) {
    vm_ctx *c = vm_model_ctx(m);
    if (!c) return -1;
    if (vm_ctx_forward(c, in, B, H, W, logits)) return vm_errf(m->err, sizeof m->err, "%s", c->err);
    return 0;
}

int vm_forward_features(vm_model *m, const float *in, int B, int H, int W, float *feats[4]) {
    vm_ctx *c = vm_model_ctx(m);
    if (!c) return -1;
    if (vm_ctx_forward_features(c, in, B, H, W, feats)) return vm_errf(m->err, sizeof m->err, "%s", c->err);
    return 0;
}

void vm_feature_shape(const vm_model *m, int H, int W, int i, int *C, int *h, int *w) {
    const vm_info *I = &m->info;
    int hh, ww;
    if (i < 0 || i > 3) { /* there are four maps */
        *C = *h = *w = 0;
        return;
    }
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

const char *vm_model_device(const vm_model *m) { return m && m->dev_cuda ? m->dev_name : "cpu"; }

/* "cpu" -> -1, "cuda" -> 0, "cuda:N" -> N (decimal digits only); -2 for
 * anything else. */
int vm_device_index(const char *device) {
    if (!device || !strcmp(device, "cpu")) return -1;
    if (strncmp(device, "cuda", 4)) return -2;
    if (!device[4]) return 0;
    if (device[4] != ':' || !device[5]) return -2;
    long n = 0;
    for (const char *q = device + 5; *q; q++) {
        if (*q < '0' || *q > '9' || n > 9999) return -2;
        n = n * 10 + (*q - '0');
    }
    return n > 9999 ? -2 : (int)n;
}

int vm_model_set_device(vm_model *m, const char *device, vm_precision precision) {
    int idx = vm_device_index(device);
    if (idx == -1) {
        if (cpu_precision_ok(m, precision, m->err, sizeof m->err)) return -1;
        m->cpu_bf16 = precision == VM_PRECISION_BF16;
        m->cpu_fp16 = precision == VM_PRECISION_FP16;
        if (m->ictx) vm_plan_free(&m->ictx->plan);
        m->dev_cuda = 0;
#ifdef VM_HAVE_CUDA
        vm_cuda_release_unpinned(m, -1); /* copies contexts chose themselves stay */
#endif
        return 0;
    }
    if (idx < 0) return vm_errf(m->err, sizeof m->err, "unknown device '%s' (expected cpu, cuda or cuda:N)", device);
    if ((unsigned)precision > VM_PRECISION_BF16) return vm_errf(m->err, sizeof m->err, "unknown precision %d", (int)precision);
    if (cuda_device_ok(idx, m->err, sizeof m->err)) return -1;
#ifdef VM_HAVE_CUDA
    char e[400] = "";
    /* the weights go to device idx (kept if they are there already); on
     * failure the model stays where it was */
    if (vm_cuda_weights(m, idx, 0, e, sizeof e)) return vm_errf(m->err, sizeof m->err, "%s", e);
    if (m->ictx) vm_plan_free(&m->ictx->plan);
    m->dev_cuda = idx + 1;
    m->dev_precision = (int)precision;
    snprintf(m->dev_name, sizeof m->dev_name, "cuda:%d", idx);
    vm_cuda_release_unpinned(m, idx);
    return 0;
#else
    return -1;
#endif
}
