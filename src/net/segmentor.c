/* segmentor.c - see segmentor.h. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "segmentor.h"
#include "dataset_meta.h"
#include "heads/upernet.h"
#include "../core/util.h"
#include "../image/decode_cv.h"
#include "../image/resize_cv.h"
#include "../model/model.h"

struct vm_segmentor {
    vm_model *m;              /* backbone + kept head tensors */
    vm_head *head;            /* UPerHead, bound from m's weights */
    vm_dataset_meta meta;     /* from the checkpoint, if any */
    uint8_t *palette;         /* classes * 3 */
};

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Names and colours once the class count is known (see vmamba.h). */
static int set_palette(vm_segmentor *s, const char *what, char *err, size_t errlen) {
    int n = vm_upernet_classes(s->head);
    if (!(s->palette = calloc((size_t)n, 3)))
        return vm_errf(err, errlen, "%s: out of memory (%zu bytes) for the palette", what, (size_t)n * 3);
    for (int i = 0; i < n; i++) {
        const uint8_t *c = s->meta.n == n && s->meta.palette ? s->meta.palette + 3 * i : n == 150 ? vm_ade20k_color(i) : NULL;
        if (c) memcpy(s->palette + 3 * i, c, 3);
        else s->palette[3 * i] = s->palette[3 * i + 1] = s->palette[3 * i + 2] = (uint8_t)(i * 255 / (n > 1 ? n - 1 : 1));
    }
    return 0;
}

const vm_model *vm_segmentor_model(const vm_segmentor *s) { return s->m; }
int vm_segmentor_classes(const vm_segmentor *s) { return vm_upernet_classes(s->head); }
const uint8_t *vm_segmentor_palette(const vm_segmentor *s) { return s->palette; }

const char *vm_segmentor_class_name(const vm_segmentor *s, int i) {
    int n = vm_upernet_classes(s->head);
    if (i < 0 || i >= n) return NULL;
    if (s->meta.n == n) return s->meta.names[i];
    return n == 150 ? vm_ade20k_class(i) : NULL;
}

vm_segmentor *vm_segmentor_load(const char *path, char *err, size_t errlen) {
    vm_segmentor *s = calloc(1, sizeof *s);
    if (!s) {
        vm_errf(err, errlen, "%s: out of memory (%zu bytes) for the segmentor", path, sizeof *s);
        return NULL;
    }
    vm_load_opts o = {.key = NULL, .quiet = 1};
    if (!(s->m = vm_model_load(path, &o, err, errlen))) goto fail;
    vm_info I;
    vm_model_info(s->m, &I);
    if (!(vm_model_heads(s->m) & VM_HEAD_UPERNET)) {
        vm_errf(err, errlen, "%s: not a segmentation checkpoint: no 'decode_head.*' weights (UPerHead) found; this "
                "looks like a %s checkpoint. Use an mmseg UPerNet checkpoint (e.g. upernet_vssm_4xb4-160k_ade20k-"
                "512x512_tiny)", path, I.num_classes > 0 ? "classification" : "backbone-only");
        goto fail;
    }
    if (!I.is_backbone) {
        vm_errf(err, errlen, "%s: the backbone has no outnorm0..3 (backbone.outnorm0.weight missing): it cannot give "
                "the four feature maps UPerHead needs", path);
        goto fail;
    }
    vm_weights_src src;
    vm_model_weights(s->m, &src);
    if (!(s->head = vm_upernet_ops.bind(&src, "decode_head.", err, errlen))) goto fail;
    if (vm_dataset_meta_read(path, &s->meta, err, errlen) || set_palette(s, path, err, errlen)) goto fail;
    return s;
fail:
    vm_segmentor_free(s);
    return NULL;
}

/* ---- random-weights preset ------------------------------------------------ */

typedef struct {
    char name[96];
    int ndim;
    int64_t shape[4];
    float *data;
} rt;

typedef struct {
    rt *t;
    int n, cap;
    int oom; /* an allocation failed: the tensors are incomplete */
    uint64_t state;
} rand_src;

static float urand(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

static void radd(rand_src *r, const char *name, int ndim, int64_t a, int64_t b, int64_t c, int64_t d, int kind) {
    if (r->oom) return;
    if (r->n == r->cap) {
        int cap = r->cap ? 2 * r->cap : 64;
        rt *nt = realloc(r->t, sizeof(rt) * (size_t)cap);
        if (!nt) {
            r->oom = 1;
            return;
        }
        r->t = nt;
        r->cap = cap;
    }
    rt *t = &r->t[r->n];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    int64_t sh[4] = {a, b, c, d};
    size_t n = 1;
    for (int i = 0; i < 4; i++) t->shape[i] = i < ndim ? sh[i] : 1, n *= (size_t)t->shape[i];
    if (!(t->data = malloc(sizeof(float) * n))) {
        r->oom = 1;
        return;
    }
    r->n++;
    float fan = ndim == 4 ? (float)(b * c * d) : 1.0f, bound = 1.0f / sqrtf(fan);
    for (size_t i = 0; i < n; i++)
        t->data[i] = kind == 0 ? urand(&r->state) * bound : kind == 1 ? 1.0f : kind == 2 ? 0.0f
                     : 0.5f + 0.5f * (urand(&r->state) + 1.0f); /* 3: running_var in [0.5, 1.5] */
}

static void radd_cm(rand_src *r, const char *name, int cout, int cin, int k) {
    char n[96];
    snprintf(n, sizeof n, "decode_head.%s.conv.weight", name);
    radd(r, n, 4, cout, cin, k, k, 0);
    const char *bn[4] = {"weight", "bias", "running_mean", "running_var"};
    int kinds[4] = {1, 2, 2, 3};
    for (int i = 0; i < 4; i++) {
        snprintf(n, sizeof n, "decode_head.%s.bn.%s", name, bn[i]);
        radd(r, n, 1, cout, 1, 1, 1, kinds[i]);
    }
}

static int rget(void *user, const char *name, vm_tensor_view *out) {
    rand_src *r = user;
    for (int i = 0; i < r->n; i++)
        if (strcmp(r->t[i].name, name) == 0) {
            out->data = r->t[i].data;
            out->ndim = r->t[i].ndim;
            memcpy(out->shape, r->t[i].shape, sizeof out->shape);
            return 0;
        }
    return -1;
}

vm_segmentor *vm_segmentor_from_preset(const char *name, uint64_t seed, char *err, size_t errlen) {
    if (strcmp(name, "upernet-vmamba-tiny") != 0) {
        vm_errf(err, errlen, "%s: unknown segmentation preset (known: upernet-vmamba-tiny)", name);
        return NULL;
    }
    vm_segmentor *s = calloc(1, sizeof *s);
    if (!s) {
        vm_errf(err, errlen, "%s: out of memory (%zu bytes) for the segmentor", name, sizeof *s);
        return NULL;
    }
    if (!(s->m = vm_backbone_from_preset("vmamba-tiny-s1l8", seed, err, errlen))) goto fail;
    const int cin[4] = {96, 192, 384, 768}, ch = 512, ncls = 150;
    rand_src r = {.state = seed * 2654435761u + 1};
    char n[64];
    for (int i = 0; i < 4; i++) snprintf(n, sizeof n, "psp_modules.%d.1", i), radd_cm(&r, n, ch, cin[3], 1);
    radd_cm(&r, "bottleneck", ch, cin[3] + 4 * ch, 3);
    for (int i = 0; i < 3; i++) {
        snprintf(n, sizeof n, "lateral_convs.%d", i), radd_cm(&r, n, ch, cin[i], 1);
        snprintf(n, sizeof n, "fpn_convs.%d", i), radd_cm(&r, n, ch, ch, 3);
    }
    radd_cm(&r, "fpn_bottleneck", ch, 4 * ch, 3);
    radd(&r, "decode_head.conv_seg.weight", 4, ncls, ch, 1, 1, 0);
    radd(&r, "decode_head.conv_seg.bias", 1, ncls, 1, 1, 1, 0);
    vm_weights_src src = {.user = &r, .get = rget, .path = name};
    if (r.oom) vm_errf(err, errlen, "%s: out of memory for the random head weights", name);
    else s->head = vm_upernet_ops.bind(&src, "decode_head.", err, errlen);
    for (int i = 0; i < r.n; i++) free(r.t[i].data);
    free(r.t);
    if (!s->head || set_palette(s, name, err, errlen)) goto fail;
    return s;
fail:
    vm_segmentor_free(s);
    return NULL;
}

void vm_segmentor_free(vm_segmentor *s) {
    if (!s) return;
    if (s->head) vm_upernet_ops.free(s->head);
    vm_model_free(s->m);
    vm_dataset_meta_free(&s->meta);
    free(s->palette);
    free(s);
}

void vm_seg_trace_free(vm_seg_trace *t) {
    free(t->resized);
    free(t->input);
    for (int i = 0; i < 4; i++) free(t->feats[i]);
    free(t->logits4);
    memset(t, 0, sizeof *t);
}

int vm_segmentor_head(const vm_segmentor *s, const float *const feats[4], const int C[4], const int H[4], const int W[4],
                      float *logits4, void (*dbg)(void *, const char *, const float *, int, int, int), void *dbg_user,
                      char *err, size_t errlen) {
    vm_feats f = {.B = 1};
    for (int i = 0; i < 4; i++) f.C[i] = C[i], f.H[i] = H[i], f.W[i] = W[i], f.data[i] = feats[i];
    vm_be *be = vm_be_cpu_new(NULL, err, errlen);
    if (!be) return -1;
    vm_head_plan *p = vm_upernet_ops.plan(s->head, be, &f, err, errlen);
    if (!p) {
        vm_be_free(be);
        return -1;
    }
    vm_upernet_set_debug(p, dbg, dbg_user);
    int rc = vm_upernet_ops.forward(s->head, p, &f, logits4, err, errlen);
    vm_upernet_ops.plan_free(p);
    vm_be_free(be);
    return rc;
}

static float *dup_f(const float *p, size_t n) {
    float *d = malloc(sizeof(float) * (n ? n : 1));
    if (d) memcpy(d, p, sizeof(float) * n);
    return d;
}

static int seg_run(vm_ctx *c, const vm_segmentor *s, const vm_image *bgr, int sw, int sh, uint8_t *labels,
                   vm_seg_row_fn row_cb, void *user, vm_seg_trace *trace) {
    int w1, h1;
    double t0 = now_ms();
    vm_cv_rescale_size(bgr->w, bgr->h, sw, sh, &w1, &h1);
    if (w1 < 1 || h1 < 1)
        return vm_ctx_fail(c, VM_ERR_INPUT, "image %dx%d rescaled to %dx%d by scale %d,%d: too small", bgr->w, bgr->h,
                           w1, h1, sw, sh);
    /* The network input is bounded whatever the scale says (mmseg's is 2048x512). */
    if ((uint64_t)w1 * h1 > VM_SEG_MAX_INPUT_PIXELS)
        return vm_ctx_fail(c, VM_ERR_INPUT, "image %dx%d rescaled to %dx%d by scale %d,%d: more than %llu pixels to infer",
                           bgr->w, bgr->h, w1, h1, sw, sh, (unsigned long long)VM_SEG_MAX_INPUT_PIXELS);
    int rc = -1, ncls = vm_upernet_classes(s->head);
    uint8_t *rs = malloc((size_t)w1 * h1 * 3);
    float *in = malloc(sizeof(float) * 3 * (size_t)w1 * h1), *logits = NULL;
    if (!rs || !in) { vm_ctx_fail(c, VM_ERR_NOMEM, "out of memory for a %dx%d input", w1, h1); goto done; }
    if (vm_cv_resize_linear(bgr->rgb, bgr->w, bgr->h, 3, rs, w1, h1)) {
        vm_ctx_fail(c, VM_ERR_NOMEM, "out of memory resizing to %dx%d", w1, h1);
        goto done;
    }
    vm_seg_normalize(rs, w1, h1, in);
    double t1 = now_ms();
    vm_feats f;
    vm_be *be = NULL; /* the model's device: the head runs there too */
    if (vm_ctx_backbone_be(c, in, 1, h1, w1, &f, &be)) goto done;
    double t2 = now_ms();
    logits = malloc(sizeof(float) * (size_t)f.H[0] * f.W[0] * ncls);
    if (!logits) { vm_ctx_fail(c, VM_ERR_NOMEM, "out of memory for the logits"); goto done; }
    if (vm_ctx_head_forward_on(c, be, &vm_upernet_ops, s->head, &f, logits)) goto done;
    double t3 = now_ms();
    if (vm_seg_labels(logits, f.H[0], f.W[0], ncls, h1, w1, bgr->h, bgr->w, labels, row_cb, user)) {
        vm_ctx_fail(c, VM_ERR_NOMEM, "out of memory resizing the logits");
        goto done;
    }
    double t4 = now_ms();
    if (trace) {
        trace->w1 = w1, trace->h1 = h1;
        trace->ms_resize = t1 - t0, trace->ms_backbone = t2 - t1, trace->ms_head = t3 - t2, trace->ms_post = t4 - t3;
        trace->h4 = f.H[0], trace->w4 = f.W[0], trace->classes = ncls;
        for (int i = 0; i < 4; i++) trace->fC[i] = f.C[i], trace->fH[i] = f.H[i], trace->fW[i] = f.W[i];
        if (trace->keep) { /* the maps live in c's arena: copies */
            trace->resized = rs, rs = NULL;
            trace->input = in, in = NULL;
            for (int i = 0; i < 4; i++) {
                size_t n = (size_t)f.C[i] * f.H[i] * f.W[i];
                if (be->host) trace->feats[i] = dup_f(f.data[i], n);
                else if ((trace->feats[i] = malloc(sizeof(float) * (n ? n : 1))) &&
                         be->download(be, trace->feats[i], f.data[i], n)) {
                    free(trace->feats[i]);
                    trace->feats[i] = NULL;
                }
            }
            trace->logits4 = logits, logits = NULL;
        }
    }
    rc = 0;
done:
    free(rs);
    free(in);
    free(logits);
    return rc;
}

int vm_ctx_segment_image(vm_ctx *c, const vm_segmentor *s, const vm_image *bgr, int sw, int sh, uint8_t *labels,
                         vm_seg_row_fn row_cb, void *user, vm_seg_trace *trace) {
    if (!c) return -1;
    c->status = VM_OK;
    c->err[0] = 0;
    if (!s || !bgr || !bgr->rgb || bgr->w < 1 || bgr->h < 1 || !labels || sw < 1 || sh < 1)
        return vm_ctx_fail(c, VM_ERR_INPUT, "segment: bad arguments");
    if (c->m != s->m) return vm_ctx_fail(c, VM_ERR_INPUT, "segment: the context was made for another model");
    /* The context's thread count for everything, the resizes included. */
    int saved = 0;
    if (c->threads > 0) {
        saved = omp_get_max_threads();
        omp_set_num_threads(c->threads);
    }
    int rc = seg_run(c, s, bgr, sw, sh, labels, row_cb, user, trace);
    if (c->threads > 0) omp_set_num_threads(saved);
    return rc;
}

void vm_segment_resized_size(int w, int h, int scale_w, int scale_h, int *w1, int *h1) {
    vm_cv_rescale_size(w, h, scale_w, scale_h, w1, h1);
}

int vm_ctx_segment(vm_ctx *c, const vm_segmentor *s, const uint8_t *bgr, int w, int h, int scale_w, int scale_h,
                   uint8_t *labels) {
    vm_image im = {.w = w, .h = h, .rgb = (uint8_t *)bgr};
    return vm_ctx_segment_image(c, s, &im, scale_w, scale_h, labels, NULL, NULL, NULL);
}

int vm_ctx_segment_file(vm_ctx *c, const vm_segmentor *s, const char *image_path, int scale_w, int scale_h,
                        uint8_t **labels, int *w, int *h) {
    if (!c) return -1;
    *labels = NULL;
    vm_image im;
    char err[512];
    if (vm_cv_load(image_path, &im, err, sizeof err)) return vm_ctx_fail(c, VM_ERR_IO, "%s", err);
    uint8_t *l = malloc((size_t)im.w * im.h);
    if (!l) {
        vm_image_free(&im);
        return vm_ctx_fail(c, VM_ERR_NOMEM, "%s: out of memory", image_path);
    }
    if (vm_ctx_segment_image(c, s, &im, scale_w, scale_h, l, NULL, NULL, NULL)) {
        free(l);
        vm_image_free(&im);
        return -1;
    }
    *labels = l, *w = im.w, *h = im.h;
    vm_image_free(&im);
    return 0;
}

int vm_segmentor_set_device(vm_segmentor *s, const char *device, char *err, size_t errlen) {
    if (!s) return vm_errf(err, errlen, "segmentor is NULL");
    if (vm_model_set_device(s->m, device, VM_PRECISION_FP32)) return vm_errf(err, errlen, "%s", vm_model_error(s->m));
    return 0;
}
