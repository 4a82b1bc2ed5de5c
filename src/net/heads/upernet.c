/* upernet.c - UPerHead (mmseg 1.2.2 decode_heads/uper_head.py), NHWC.
 *
 *   PPM on x = feat[L-1]: p_s = up(ConvModule1x1(AdaptiveAvgPool(s)(x))),
 *     s in (1,2,3,6); psp = bottleneck3x3(cat[x, p_1, p_2, p_3, p_6])
 *   lateral_i = ConvModule1x1(feat_i) for i < L-1; lateral_{L-1} = psp
 *   top-down: lat_{i-1} += up(lat_i), i = L-1..1 (each from the updated one)
 *   fpn_i = ConvModule3x3(lat_i) for i < L-1; fpn_{L-1} = psp
 *   fused = fpn_bottleneck3x3(cat[fpn_0, up(fpn_1), .., up(fpn_{L-1})])
 *   logits = conv_seg1x1(fused) + bias
 * up = bilinear, align_corners=False, to the target's size. Every
 * ConvModule is conv (no bias) + BatchNorm (eval) + ReLU; the BatchNorm is
 * folded into the conv at bind (w' = w*a, b' = beta - mean*a with
 * a = gamma / sqrt(var + 1e-5)), and the ReLU fused into the conv op.
 * Every op goes through the plan's backend (src/ops/backend.h): the same
 * code runs on the CPU (oneDNN, dense.c) and on CUDA. A calibrated (INT8)
 * file's head convolutions are s8 per output channel with the BatchNorm
 * folded into the scales, run by the backend's qconv_make (CPU only). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upernet.h"
#include "../../core/util.h"
#include "../../ops/backend.h"

#define MAX_PPM 8

typedef struct {
    int cin, cout, k;
    float *w, *b; /* folded OIHW weights and bias */
    /* INT8 (a calibrated model): s8 OIHW weights with the BatchNorm folded
     * into the per-channel scales (w is NULL), u8 input scale/zero point */
    int8_t *w8;
    float *wsc, a_scale;
    int zp;
    char name[96]; /* checkpoint prefix ("decode_head.bottleneck.conv"): calibration sees inputs under it */
} conv_w;

struct vm_head {
    vm_head_id hid;         /* first (net/head.h) */
    int L;                  /* input levels (4) */
    int cin[4], ch, ncls;
    int nppm, scales[MAX_PPM];
    conv_w ppm[MAX_PPM], bottleneck, lateral[3], fpn[3], fpn_bottleneck, seg;
};

struct vm_head_plan {
    int H[4], W[4];
    vm_be *be;              /* the context's backend the ops run on */
    vm_head_obs_fn obs;     /* calibration: sees every convolution's input (host backends) */
    void *obs_user;
    vm_be_conv *ppm[MAX_PPM], *bottleneck, *lateral[3], *fpn[3], *fpn_bottleneck, *seg;
    float *pooled, *ppm_out, *bott_in, *lat[4], *tmp, *fuse_in, *fused; /* backend memory */
    float *logits;          /* off-host backends: conv_seg's output before download */
    vm_head_dbg_fn dbg;
    void *dbg_user;
};

static int get_w(const vm_weights_src *src, const char *prefix, const char *name, vm_tensor_view *v, int ndim,
                char *err, size_t errlen) {
    char key[256];
    snprintf(key, sizeof key, "%s%s", prefix, name);
    if (src->get(src->user, key, v) != 0)
        return vm_errf(err, errlen, "%s: missing or unreadable tensor '%s' (an mmseg UPerHead checkpoint has it)",
                       src->path, key);
    if (v->ndim != ndim) return vm_errf(err, errlen, "%s: tensor '%s' has %d dimensions, expected %d", src->path, key, v->ndim, ndim);
    return 0;
}

/* An int8 weight under prefix+name: its shape into *w (data NULL), 1. */
static int get_i8_w(const vm_weights_src *src, const char *prefix, const char *name, vm_tensor_view *w, const int8_t **w8) {
    char key[256];
    snprintf(key, sizeof key, "%s%s", prefix, name);
    int nd;
    if (!src->get_i8 || src->get_i8(src->user, key, w8, &nd, w->shape) != 0 || nd != 4) return 0;
    w->data = NULL;
    w->ndim = 4;
    return 1;
}

/* A positive finite float tensor of n values (scales), or -1. */
static int get_scales(const vm_weights_src *src, const char *conv, const char *what, int n, vm_tensor_view *v, char *err,
                      size_t errlen) {
    char key[192];
    snprintf(key, sizeof key, "%s.%s", conv, what);
    if (src->get(src->user, key, v) != 0 || v->ndim != 1 || v->shape[0] != n)
        return vm_errf(err, errlen, "%s: int8 '%s.weight' needs a float '%s' of %d values", src->path, conv, key, n);
    for (int i = 0; i < n; i++)
        if (!(v->data[i] > 0.0f) || !isfinite(v->data[i]))
            return vm_errf(err, errlen, "%s: '%s' holds a non-positive or non-finite scale", src->path, key);
    return 0;
}

/* An INT8 convolution (int8 weight with weight_scale, input_scale and
 * input_zero_point beside it, as `vmamba calibrate` writes): the s8
 * weights and scales copied into c (the BatchNorm folded later). An int8
 * weight without input scale is storage only: dequantised into c->w. */
static int bind_q(const vm_weights_src *src, const char *conv, const vm_tensor_view *w, conv_w *c, char *err, size_t errlen) {
    char key[192];
    const int8_t *w8;
    int nd;
    int64_t sh[4];
    snprintf(key, sizeof key, "%s.weight", conv);
    src->get_i8(src->user, key, &w8, &nd, sh);
    int cout = (int)w->shape[0];
    size_t per = (size_t)w->shape[1] * w->shape[2] * w->shape[3], n = per * cout;
    vm_tensor_view ws, is, zp;
    if (cout < 1 || get_scales(src, conv, "weight_scale", cout, &ws, err, errlen)) return cout < 1 ? vm_errf(err, errlen, "%s: '%s' is empty", src->path, key) : -1;
    snprintf(key, sizeof key, "%s.input_scale", conv);
    if (src->get(src->user, key, &is) != 0) { /* storage only */
        if (!(c->w = malloc(sizeof(float) * n))) return vm_errf(err, errlen, "%s: out of memory for %s", src->path, conv);
        for (size_t i = 0; i < n; i++) c->w[i] = (float)w8[i] * ws.data[i / per];
        return 0;
    }
    if (get_scales(src, conv, "input_scale", 1, &is, err, errlen)) return -1;
    snprintf(key, sizeof key, "%s.input_zero_point", conv);
    if (src->get(src->user, key, &zp) != 0 || zp.ndim != 1 || zp.shape[0] != 1 || !(zp.data[0] >= 0.0f && zp.data[0] <= 255.0f) ||
        zp.data[0] != floorf(zp.data[0]))
        return vm_errf(err, errlen, "%s: '%s' must be one integer in [0, 255]", src->path, key);
    c->w8 = malloc(n);
    c->wsc = malloc(sizeof(float) * cout);
    if (!c->w8 || !c->wsc) return vm_errf(err, errlen, "%s: out of memory (%zu bytes) for %s", src->path, n + 4 * (size_t)cout, conv);
    memcpy(c->w8, w8, n);
    memcpy(c->wsc, ws.data, sizeof(float) * cout);
    c->a_scale = is.data[0];
    c->zp = (int)zp.data[0];
    return 0;
}

/* A ConvModule (conv + bn) under prefix+name, folded. cin < 0: any. */
static int bind_cm(const vm_weights_src *src, const char *prefix, const char *name, int cin, int cout, int k,
                   conv_w *c, char *err, size_t errlen) {
    char n[160];
    vm_tensor_view w, g, b, m, v;
    snprintf(n, sizeof n, "%s.conv.weight", name);
    snprintf(c->name, sizeof c->name, "%s%s.conv", prefix, name);
    const int8_t *w8 = NULL;
    if (get_i8_w(src, prefix, n, &w, &w8)) {
        if (bind_q(src, c->name, &w, c, err, errlen)) return -1;
    } else if (get_w(src, prefix, n, &w, 4, err, errlen)) return -1;
    if ((cin >= 0 && w.shape[1] != cin) || (cout >= 0 && w.shape[0] != cout) || w.shape[2] != k || w.shape[3] != k)
        return vm_errf(err, errlen, "%s: %s%s has shape [%lld,%lld,%lld,%lld], expected [%d,%d,%d,%d]", src->path,
                       prefix, n, (long long)w.shape[0], (long long)w.shape[1], (long long)w.shape[2],
                       (long long)w.shape[3], cout, cin, k, k);
    const char *bn[4] = {"weight", "bias", "running_mean", "running_var"};
    vm_tensor_view *bv[4] = {&g, &b, &m, &v};
    for (int i = 0; i < 4; i++) {
        snprintf(n, sizeof n, "%s.bn.%s", name, bn[i]);
        if (get_w(src, prefix, n, bv[i], 1, err, errlen)) return -1;
        if (bv[i]->shape[0] != w.shape[0])
            return vm_errf(err, errlen, "%s: %s%s has %lld entries for %lld channels", src->path, prefix, n,
                           (long long)bv[i]->shape[0], (long long)w.shape[0]);
    }
    c->cout = (int)w.shape[0];
    c->cin = (int)w.shape[1];
    c->k = k;
    size_t per = (size_t)c->cin * k * k;
    const float *wsrc = w.data ? w.data : c->w; /* c->w: an int8 weight stored only, dequantised (folded in place) */
    if (!c->w8 && !c->w) c->w = malloc(sizeof(float) * per * c->cout);
    c->b = malloc(sizeof(float) * c->cout);
    if ((!c->w && !c->w8) || !c->b)
        return vm_errf(err, errlen, "%s: out of memory (%zu bytes) for UPerHead weights %s%s", src->path,
                       sizeof(float) * (per + 1) * c->cout, prefix, name);
    for (int o = 0; o < c->cout; o++) {
        float a = g.data[o] / sqrtf(v.data[o] + 1e-5f);
        c->b[o] = b.data[o] - m.data[o] * a;
        if (c->w8) { /* into the scale; a negative factor flips the row (s8 is symmetric: -127..127) */
            c->wsc[o] *= fabsf(a);
            if (a < 0)
                for (size_t i = 0; i < per; i++) c->w8[o * per + i] = (int8_t)-c->w8[o * per + i];
        } else
            for (size_t i = 0; i < per; i++) c->w[o * per + i] = wsrc[o * per + i] * a;
    }
    return 0;
}

static void free_cw(conv_w *c) {
    free(c->w);
    free(c->b);
    free(c->w8);
    free(c->wsc);
}

static void up_free(vm_head *h) {
    if (!h) return;
    for (int i = 0; i < h->nppm; i++) free_cw(&h->ppm[i]);
    for (int i = 0; i < 3; i++) free_cw(&h->lateral[i]), free_cw(&h->fpn[i]);
    free_cw(&h->bottleneck);
    free_cw(&h->fpn_bottleneck);
    free_cw(&h->seg);
    free(h);
}

/* Whether a float or int8 (INT8 model) tensor of that name exists. */
static int has_w(const vm_weights_src *src, const char *key, vm_tensor_view *v) {
    const int8_t *d;
    int nd;
    return src->get(src->user, key, v) == 0 || (src->get_i8 && src->get_i8(src->user, key, &d, &nd, v->shape) == 0);
}

static vm_head *up_bind(const vm_weights_src *src, const char *prefix, char *err, size_t errlen) {
    vm_head *h = calloc(1, sizeof *h);
    if (!h) {
        vm_errf(err, errlen, "%s: out of memory (%zu bytes) for the UPerHead", src->path, sizeof *h);
        return NULL;
    }
    h->hid.id = vm_head_id_next();
    vm_tensor_view v;
    char n[160];
    /* PPM branches: psp_modules.<i>.1 (index 0 of each Sequential is the pool). */
    while (h->nppm < MAX_PPM) {
        snprintf(n, sizeof n, "%spsp_modules.%d.1.conv.weight", prefix, h->nppm);
        if (!has_w(src, n, &v)) break;
        h->nppm++;
    }
    if (h->nppm == 0) {
        vm_errf(err, errlen, "%s: no UPerHead weights: '%spsp_modules.0.1.conv.weight' is missing (is this a "
                "segmentation checkpoint?)", src->path, prefix);
        goto fail;
    }
    /* The pool sizes are not in the weights: mmseg's (1,2,3,6) is the only
     * 4-branch setting VMamba's configs use. */
    if (h->nppm != 4) {
        vm_errf(err, errlen, "%s: UPerHead with %d pyramid pooling branches; only pool_scales (1,2,3,6) are supported",
                src->path, h->nppm);
        goto fail;
    }
    h->scales[0] = 1, h->scales[1] = 2, h->scales[2] = 3, h->scales[3] = 6;
    for (int i = 0; i < h->nppm; i++) {
        snprintf(n, sizeof n, "psp_modules.%d.1", i);
        if (bind_cm(src, prefix, n, i ? h->ppm[0].cin : -1, i ? h->ppm[0].cout : -1, 1, &h->ppm[i], err, errlen)) goto fail;
    }
    h->ch = h->ppm[0].cout;
    /* Laterals: lateral_convs.<i> for every level but the last. */
    h->L = 1;
    for (int i = 0; i < 3; i++) {
        snprintf(n, sizeof n, "%slateral_convs.%d.conv.weight", prefix, i);
        if (!has_w(src, n, &v)) break;
        snprintf(n, sizeof n, "lateral_convs.%d", i);
        if (bind_cm(src, prefix, n, -1, h->ch, 1, &h->lateral[i], err, errlen)) goto fail;
        h->cin[i] = h->lateral[i].cin;
        h->L++;
    }
    if (h->L != 4) {
        vm_errf(err, errlen, "%s: UPerHead has %d lateral convolutions; the VMamba backbone gives 4 levels (3 expected)",
                src->path, h->L - 1);
        goto fail;
    }
    h->cin[3] = h->ppm[0].cin;
    if (bind_cm(src, prefix, "bottleneck", h->cin[3] + h->nppm * h->ch, h->ch, 3, &h->bottleneck, err, errlen)) goto fail;
    for (int i = 0; i < h->L - 1; i++) {
        snprintf(n, sizeof n, "fpn_convs.%d", i);
        if (bind_cm(src, prefix, n, h->ch, h->ch, 3, &h->fpn[i], err, errlen)) goto fail;
    }
    if (bind_cm(src, prefix, "fpn_bottleneck", h->L * h->ch, h->ch, 3, &h->fpn_bottleneck, err, errlen)) goto fail;
    vm_tensor_view w, b;
    const int8_t *w8 = NULL;
    snprintf(h->seg.name, sizeof h->seg.name, "%sconv_seg", prefix);
    if (get_i8_w(src, prefix, "conv_seg.weight", &w, &w8)) {
        if (bind_q(src, h->seg.name, &w, &h->seg, err, errlen)) goto fail;
    } else if (get_w(src, prefix, "conv_seg.weight", &w, 4, err, errlen))
        goto fail;
    if (get_w(src, prefix, "conv_seg.bias", &b, 1, err, errlen)) goto fail;
    if (w.shape[1] != h->ch || w.shape[2] != 1 || w.shape[3] != 1 || b.shape[0] != w.shape[0] || w.shape[0] < 1 ||
        w.shape[0] > 255) {
        vm_errf(err, errlen, "%s: %sconv_seg.weight has shape [%lld,%lld,%lld,%lld], expected [classes<=255,%d,1,1]",
                src->path, prefix, (long long)w.shape[0], (long long)w.shape[1], (long long)w.shape[2],
                (long long)w.shape[3], h->ch);
        goto fail;
    }
    h->ncls = (int)w.shape[0];
    h->seg.cin = h->ch, h->seg.cout = h->ncls, h->seg.k = 1;
    if (!h->seg.w8 && !h->seg.w) h->seg.w = malloc(sizeof(float) * h->ncls * h->ch);
    h->seg.b = malloc(sizeof(float) * h->ncls);
    if ((!h->seg.w && !h->seg.w8) || !h->seg.b) {
        vm_errf(err, errlen, "%s: out of memory (%zu bytes) for %sconv_seg", src->path,
                sizeof(float) * (size_t)h->ncls * (h->ch + 1), prefix);
        goto fail;
    }
    if (w.data) memcpy(h->seg.w, w.data, sizeof(float) * h->ncls * h->ch);
    memcpy(h->seg.b, b.data, sizeof(float) * h->ncls);
    return h;
fail:
    up_free(h);
    return NULL;
}

int vm_upernet_classes(const vm_head *h) { return h->ncls; }
int vm_upernet_channels(const vm_head *h) { return h->ch; }

static void up_plan_free(vm_head_plan *p) {
    if (!p) return;
    vm_be *be = p->be;
    for (int i = 0; i < MAX_PPM; i++) be->conv_free(be, p->ppm[i]);
    for (int i = 0; i < 3; i++) be->conv_free(be, p->lateral[i]), be->conv_free(be, p->fpn[i]);
    be->conv_free(be, p->bottleneck);
    be->conv_free(be, p->fpn_bottleneck);
    be->conv_free(be, p->seg);
    float **bufs[] = {&p->pooled, &p->ppm_out, &p->bott_in, &p->lat[0], &p->lat[1], &p->lat[2], &p->lat[3],
                      &p->tmp, &p->fuse_in, &p->fused, &p->logits};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) be->free(be, *bufs[i]);
    free(p);
}

/* A convolution planned on the backend: an INT8 one (a calibrated file's
 * head) through qconv_make, which only the CPU backends have. */
static vm_be_conv *mk(vm_be *be, const conv_w *c, int H, int W, int relu, char *err, size_t errlen) {
    vm_be_conv *k;
    if (c->w8) {
        if (!be->qconv_make) {
            vm_errf(err, errlen, "UPerHead: %s is an INT8 convolution (a calibrated file); INT8 heads run on the CPU only, "
                    "not on the %s backend", c->name, be->name);
            return NULL;
        }
        k = be->qconv_make(be, 1, c->cin, H, W, c->cout, c->k, 1, c->k / 2, c->w8, c->wsc, c->a_scale, c->zp, c->b, relu);
    } else
        k = be->conv_make(be, 1, c->cin, H, W, c->cout, c->k, 1, c->k / 2, c->w, c->b, relu);
    if (!k) vm_errf(err, errlen, "%s", be->err);
    return k;
}

static vm_head_plan *up_plan(const vm_head *h, vm_be *be, const vm_feats *f, char *err, size_t errlen) {
    for (int i = 0; i < 4; i++)
        if (f->C[i] != h->cin[i] || f->H[i] < 1 || f->W[i] < 1) {
            vm_errf(err, errlen, "UPerHead: feature %d is %dx%dx%d, the head expects %d channels", i, f->H[i], f->W[i],
                    f->C[i], h->cin[i]);
            return NULL;
        }
    vm_head_plan *p = calloc(1, sizeof *p);
    if (!p) {
        vm_errf(err, errlen, "out of memory (%zu bytes) for the UPerHead plan", sizeof *p);
        return NULL;
    }
    p->be = be;
    memcpy(p->H, f->H, sizeof p->H);
    memcpy(p->W, f->W, sizeof p->W);
    int ch = h->ch, H3 = f->H[3], W3 = f->W[3], H0 = f->H[0], W0 = f->W[0];
    int smax = 0;
    for (int j = 0; j < h->nppm; j++) {
        int s = h->scales[j];
        smax = s > smax ? s : smax;
        if (!(p->ppm[j] = mk(be, &h->ppm[j], s, s, 1, err, errlen))) goto fail;
    }
    if (!(p->bottleneck = mk(be, &h->bottleneck, H3, W3, 1, err, errlen))) goto fail;
    size_t big = 0;
    for (int i = 0; i < 3; i++) {
        if (!(p->lateral[i] = mk(be, &h->lateral[i], f->H[i], f->W[i], 1, err, errlen))) goto fail;
        if (!(p->fpn[i] = mk(be, &h->fpn[i], f->H[i], f->W[i], 1, err, errlen))) goto fail;
        size_t n = (size_t)f->H[i] * f->W[i] * ch;
        big = n > big ? n : big;
    }
    if (!(p->fpn_bottleneck = mk(be, &h->fpn_bottleneck, H0, W0, 1, err, errlen))) goto fail;
    if (!(p->seg = mk(be, &h->seg, H0, W0, 0, err, errlen))) goto fail;
    p->pooled = be->alloc(be, (size_t)smax * smax * h->cin[3]);
    p->ppm_out = be->alloc(be, (size_t)smax * smax * ch);
    p->bott_in = be->alloc(be, (size_t)H3 * W3 * h->bottleneck.cin);
    for (int i = 0; i < 4; i++) p->lat[i] = be->alloc(be, (size_t)f->H[i] * f->W[i] * ch);
    p->tmp = be->alloc(be, big);
    p->fuse_in = be->alloc(be, (size_t)H0 * W0 * h->fpn_bottleneck.cin);
    p->fused = be->alloc(be, (size_t)H0 * W0 * ch);
    /* the logits go straight into the caller's host buffer on the CPU */
    if (!be->host) p->logits = be->alloc(be, (size_t)H0 * W0 * h->ncls);
    if (!p->pooled || !p->ppm_out || !p->bott_in || !p->lat[0] || !p->lat[1] || !p->lat[2] || !p->lat[3] || !p->tmp ||
        !p->fuse_in || !p->fused || (!be->host && !p->logits)) {
        vm_errf(err, errlen, "UPerHead: out of %s memory for a %dx%d level-0 map", be->name, H0, W0);
        goto fail;
    }
    return p;
fail:
    up_plan_free(p);
    return NULL;
}

void vm_upernet_set_debug(vm_head_plan *p, vm_head_dbg_fn fn, void *user) {
    p->dbg = fn;
    p->dbg_user = user;
}

/* Hand an intermediate to the debug hook (tests), as host memory. */
static void dbg_emit(vm_head_plan *p, const char *name, const float *ptr, int H, int W, int C) {
    size_t n = (size_t)H * W * C;
    float *tmp = p->be->host ? NULL : malloc(sizeof(float) * (n ? n : 1));
    if (!p->be->host && !tmp) return;
    const float *h = vm_be_to_host(p->be, ptr, n, tmp);
    if (h) p->dbg(p->dbg_user, name, h, H, W, C);
    free(tmp);
}

void vm_upernet_set_observe(vm_head_plan *p, vm_head_obs_fn fn, void *user) {
    p->obs = fn;
    p->obs_user = user;
}

/* One convolution on an NHWC input of hw pixels, seen first by the
 * calibration observer (host memory: calibration runs on the CPU). */
static int run(vm_head_plan *p, const conv_w *cw, vm_be_conv *c, const float *in, size_t hw, float *out, const char *what,
               char *err, size_t errlen) {
    vm_be *be = p->be;
    if (p->obs) {
        if (!be->host) return vm_errf(err, errlen, "UPerHead: calibration observes the head on the CPU only (backend %s)", be->name);
        p->obs(p->obs_user, cw->name, in, hw, cw->cin);
    }
    if (be->conv_run(be, c, in, out)) return vm_errf(err, errlen, "UPerHead: %s (%s)", be->err, what);
    return 0;
}

#define DBG(name, ptr, H, W, C) \
    do { \
        if (p->dbg && b == 0) dbg_emit(p, name, ptr, H, W, C); \
    } while (0)

#define OP(call) \
    do { \
        if (call) return vm_errf(err, errlen, "UPerHead: %s", be->err); \
    } while (0)

static int up_forward(const vm_head *h, vm_head_plan *p, const vm_feats *f, void *out, char *err, size_t errlen) {
    for (int i = 0; i < 4; i++)
        if (f->H[i] != p->H[i] || f->W[i] != p->W[i] || f->C[i] != h->cin[i])
            return vm_errf(err, errlen, "UPerHead: features do not match the plan's shapes");
    vm_be *be = p->be;
    int ch = h->ch, C3 = h->cin[3], H3 = f->H[3], W3 = f->W[3], H0 = f->H[0], W0 = f->W[0];
    int cb = h->bottleneck.cin, cf = h->fpn_bottleneck.cin;
    char nm[32];
    for (int b = 0; b < f->B; b++) {
        const float *x[4];
        for (int i = 0; i < 4; i++) x[i] = f->data[i] + (size_t)b * f->H[i] * f->W[i] * f->C[i];
        /* PPM: cat([x, up(ppm_s)...]) built in place in bott_in (a
         * same-size bilinear is a copy into the channel slice). */
        OP(be->bilinear(be, x[3], H3, W3, C3, C3, p->bott_in, H3, W3, cb, 0));
        for (int j = 0; j < h->nppm; j++) {
            int s = h->scales[j];
            OP(be->avgpool(be, x[3], H3, W3, C3, s, p->pooled));
            if (run(p, &h->ppm[j], p->ppm[j], p->pooled, (size_t)s * s, p->ppm_out, "a pyramid pooling conv", err, errlen))
                return -1;
            snprintf(nm, sizeof nm, "ppm%d", s);
            DBG(nm, p->ppm_out, s, s, ch);
            OP(be->bilinear(be, p->ppm_out, s, s, ch, ch, p->bott_in + C3 + j * ch, H3, W3, cb, 0));
        }
        DBG("bottleneck_in", p->bott_in, H3, W3, cb);
        if (run(p, &h->bottleneck, p->bottleneck, p->bott_in, (size_t)H3 * W3, p->lat[3], "the PPM bottleneck", err, errlen))
            return -1;
        DBG("psp_out", p->lat[3], H3, W3, ch);
        for (int i = 0; i < 3; i++) {
            if (run(p, &h->lateral[i], p->lateral[i], x[i], (size_t)f->H[i] * f->W[i], p->lat[i], "a lateral conv", err,
                    errlen))
                return -1;
            snprintf(nm, sizeof nm, "lateral%d", i);
            DBG(nm, p->lat[i], f->H[i], f->W[i], ch);
        }
        /* Top-down, coarse to fine, each from the already-updated level. */
        for (int i = 3; i >= 1; i--)
            OP(be->bilinear(be, p->lat[i], f->H[i], f->W[i], ch, ch, p->lat[i - 1], f->H[i - 1], f->W[i - 1], ch, 1));
        /* FPN convs; every level resized straight to level 0 into fuse_in. */
        for (int i = 0; i < 4; i++) {
            const float *o = p->lat[3];
            if (i < 3) {
                snprintf(nm, sizeof nm, "fpn_in%d", i);
                DBG(nm, p->lat[i], f->H[i], f->W[i], ch);
                if (run(p, &h->fpn[i], p->fpn[i], p->lat[i], (size_t)f->H[i] * f->W[i], p->tmp, "an FPN conv", err, errlen))
                    return -1;
                snprintf(nm, sizeof nm, "fpn_out%d", i);
                DBG(nm, p->tmp, f->H[i], f->W[i], ch);
                o = p->tmp;
            }
            OP(be->bilinear(be, o, f->H[i], f->W[i], ch, ch, p->fuse_in + i * ch, H0, W0, cf, 0));
        }
        DBG("fpn_bottleneck_in", p->fuse_in, H0, W0, cf);
        if (run(p, &h->fpn_bottleneck, p->fpn_bottleneck, p->fuse_in, (size_t)H0 * W0, p->fused, "the FPN bottleneck", err,
                errlen))
            return -1;
        DBG("fused", p->fused, H0, W0, ch);
        float *logits = (float *)out + (size_t)b * H0 * W0 * h->ncls;
        if (run(p, &h->seg, p->seg, p->fused, (size_t)H0 * W0, be->host ? logits : p->logits, "conv_seg", err, errlen))
            return -1;
        if (!be->host) OP(be->download(be, logits, p->logits, (size_t)H0 * W0 * h->ncls));
    }
    return 0;
}

const vm_head_ops vm_upernet_ops = {
    .name = "upernet",
    .bind = up_bind,
    .plan = up_plan,
    .forward = up_forward,
    .plan_free = up_plan_free,
    .free = up_free,
};

int vm_upernet_int8_convs(const vm_head *h, int *total) {
    int n = 0, t = 0;
    const conv_w *all[MAX_PPM + 9];
    for (int i = 0; i < h->nppm; i++) all[t++] = &h->ppm[i];
    all[t++] = &h->bottleneck;
    for (int i = 0; i < 3; i++) all[t++] = &h->lateral[i], all[t++] = &h->fpn[i];
    all[t++] = &h->fpn_bottleneck;
    all[t++] = &h->seg;
    for (int i = 0; i < t; i++) n += all[i]->w8 != NULL;
    if (total) *total = t;
    return n;
}
