/* segmentor.c - see segmentor.h. The backbone runs through the public
 * vm_forward_features (NCHW) and is transposed to NHWC here: the only glue
 * to replace once the ctx branch gives NHWC features from a context. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "segmentor.h"
#include "heads/upernet.h"
#include "dataset_meta.h"
#include "weights_ckpt.h"
#include "vmamba.h"
#include "../core/util.h"
#include "../image/decode_cv.h"
#include "../image/resize_cv.h"
#include "../model/model.h"

struct vm_segmentor {
    vm_model *bb;
    vm_ckpt_src *ws;          /* NULL for presets */
    vm_head *head;
    const vm_head_ops *ops;
    vm_head_plan *plan;       /* for plan_shape */
    int plan_shape[12];
    float *nchw[4];           /* backbone output scratch */
    size_t nchw_cap[4];
    vm_dataset_meta meta;     /* from the checkpoint, if any */
    uint8_t *palette;         /* classes * 3 */
};

/* Names and colours once the class count is known (see segmentor.h). */
static void set_palette(vm_segmentor *s) {
    int n = vm_upernet_classes(s->head);
    s->palette = vm_xcalloc((size_t)n, 3);
    for (int i = 0; i < n; i++) {
        const uint8_t *c = s->meta.n == n && s->meta.palette ? s->meta.palette + 3 * i : n == 150 ? vm_ade20k_color(i) : NULL;
        if (c) memcpy(s->palette + 3 * i, c, 3);
        else s->palette[3 * i] = s->palette[3 * i + 1] = s->palette[3 * i + 2] = (uint8_t)(i * 255 / (n > 1 ? n - 1 : 1));
    }
}

const char *vm_segmentor_class_name(const vm_segmentor *s, int i) {
    int n = vm_upernet_classes(s->head);
    if (i < 0 || i >= n) return NULL;
    if (s->meta.n == n) return s->meta.names[i];
    return n == 150 ? vm_ade20k_class(i) : NULL;
}

const uint8_t *vm_segmentor_palette(const vm_segmentor *s) { return s->palette; }

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

vm_segmentor *vm_segmentor_load(const char *path, char *err, size_t errlen) {
    vm_segmentor *s = vm_xcalloc(1, sizeof *s);
    s->ops = &vm_upernet_ops;
    if (!(s->ws = vm_ckpt_src_open(path, err, errlen))) goto fail;
    if (!vm_ckpt_src_has_prefix(s->ws, "decode_head.")) {
        int cls = vm_ckpt_src_has_prefix(s->ws, "classifier.") || vm_ckpt_src_has_prefix(s->ws, "head.");
        vm_errf(err, errlen, "%s: not a segmentation checkpoint: no 'decode_head.*' weights (UPerHead) found; this "
                "looks like a %s checkpoint. Use an mmseg UPerNet checkpoint (e.g. upernet_vssm_4xb4-160k_ade20k-"
                "512x512_tiny)", path, cls ? "classification" : "backbone-only");
        goto fail;
    }
    if (!(s->head = s->ops->bind(vm_ckpt_src_get(s->ws), "decode_head.", err, errlen))) goto fail;
    vm_load_opts o = {.key = "state_dict", .quiet = 1};
    if (!(s->bb = vm_model_load(path, &o, err, errlen))) goto fail;
    vm_info I;
    vm_model_info(s->bb, &I);
    if (!I.is_backbone) {
        vm_errf(err, errlen, "%s: the backbone has no outnorm0..3 (backbone.outnorm0.weight missing): it cannot give "
                "the four feature maps UPerHead needs", path);
        goto fail;
    }
    vm_dataset_meta_read(path, &s->meta);
    set_palette(s);
    /* The backbone's checkpoint copy is done; only the head's folded
     * weights are kept, so the tensor copies can go. */
    vm_ckpt_src_close(s->ws);
    s->ws = NULL;
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
    uint64_t state;
} rand_src;

static float urand(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((*s >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

static void radd(rand_src *r, const char *name, int ndim, int64_t a, int64_t b, int64_t c, int64_t d, int kind) {
    if (r->n == r->cap) r->t = vm_xrealloc(r->t, sizeof(rt) * (size_t)(r->cap = r->cap ? 2 * r->cap : 64));
    rt *t = &r->t[r->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    int64_t sh[4] = {a, b, c, d};
    size_t n = 1;
    for (int i = 0; i < 4; i++) t->shape[i] = i < ndim ? sh[i] : 1, n *= (size_t)t->shape[i];
    t->data = vm_xmalloc(sizeof(float) * n);
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
    vm_segmentor *s = vm_xcalloc(1, sizeof *s);
    s->ops = &vm_upernet_ops;
    if (!(s->bb = vm_backbone_from_preset("vmamba-tiny-s1l8", seed, err, errlen))) goto fail;
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
    s->head = s->ops->bind(&src, "decode_head.", err, errlen);
    for (int i = 0; i < r.n; i++) free(r.t[i].data);
    free(r.t);
    if (!s->head) goto fail;
    set_palette(s);
    return s;
fail:
    vm_segmentor_free(s);
    return NULL;
}

void vm_segmentor_free(vm_segmentor *s) {
    if (!s) return;
    if (s->plan) s->ops->plan_free(s->plan);
    if (s->head) s->ops->free(s->head);
    vm_ckpt_src_close(s->ws);
    vm_model_free(s->bb);
    for (int i = 0; i < 4; i++) free(s->nchw[i]);
    vm_dataset_meta_free(&s->meta);
    free(s->palette);
    free(s);
}

int vm_segmentor_classes(const vm_segmentor *s) { return vm_upernet_classes(s->head); }

void vm_seg_trace_free(vm_seg_trace *t) {
    free(t->resized);
    free(t->input);
    for (int i = 0; i < 4; i++) free(t->feats[i]);
    free(t->logits4);
    memset(t, 0, sizeof *t);
}

static vm_head_plan *get_plan(vm_segmentor *s, const vm_feats *f, char *err, size_t errlen) {
    int key[12];
    for (int i = 0; i < 4; i++) key[3 * i] = f->C[i], key[3 * i + 1] = f->H[i], key[3 * i + 2] = f->W[i];
    if (s->plan && memcmp(key, s->plan_shape, sizeof key) == 0) return s->plan;
    if (s->plan) s->ops->plan_free(s->plan);
    s->plan = s->ops->plan(s->head, f, err, errlen);
    memcpy(s->plan_shape, key, sizeof key);
    return s->plan;
}

int vm_segmentor_head(vm_segmentor *s, const float *const feats[4], const int C[4], const int H[4], const int W[4],
                      float *logits4, void (*dbg)(void *, const char *, const float *, int, int, int), void *dbg_user,
                      char *err, size_t errlen) {
    vm_feats f = {.B = 1};
    for (int i = 0; i < 4; i++) f.C[i] = C[i], f.H[i] = H[i], f.W[i] = W[i], f.data[i] = feats[i];
    vm_head_plan *p = get_plan(s, &f, err, errlen);
    if (!p) return -1;
    vm_upernet_set_debug(p, dbg, dbg_user);
    int rc = s->ops->forward(s->head, p, &f, logits4, err, errlen);
    vm_upernet_set_debug(p, NULL, NULL);
    return rc;
}

static void nchw_to_nhwc(const float *in, int C, int HW, float *out) {
#pragma omp parallel for schedule(static) if ((size_t)C * HW > 65536)
    for (int p = 0; p < HW; p++)
        for (int c = 0; c < C; c++) out[(size_t)p * C + c] = in[(size_t)c * HW + p];
}

int vm_segmentor_run(vm_segmentor *s, const vm_image *bgr, int sw, int sh, uint8_t *labels, vm_seg_row_fn row_cb,
                     void *user, vm_seg_trace *trace, char *err, size_t errlen) {
    int rc = -1, w1, h1;
    double t0 = now_ms();
    vm_cv_rescale_size(bgr->w, bgr->h, sw, sh, &w1, &h1);
    if (w1 < 1 || h1 < 1) return vm_errf(err, errlen, "image %dx%d rescaled to %dx%d by --scale %d,%d: too small", bgr->w, bgr->h, w1, h1, sw, sh);
    /* The network input is bounded whatever --scale says (mmseg's is 2048x512). */
    if ((uint64_t)w1 * h1 > VM_SEG_MAX_INPUT_PIXELS)
        return vm_errf(err, errlen, "image %dx%d rescaled to %dx%d by --scale %d,%d: more than %llu pixels to infer", bgr->w,
                       bgr->h, w1, h1, sw, sh, (unsigned long long)VM_SEG_MAX_INPUT_PIXELS);
    uint8_t *rs = malloc((size_t)w1 * h1 * 3);
    float *in = malloc(sizeof(float) * 3 * (size_t)w1 * h1);
    float *nhwc[4] = {0}, *logits = NULL;
    if (!rs || !in) { vm_errf(err, errlen, "out of memory for a %dx%d input", w1, h1); goto done; }
    vm_cv_resize_linear(bgr->rgb, bgr->w, bgr->h, 3, rs, w1, h1);
    vm_seg_normalize(rs, w1, h1, in);
    double t1 = now_ms();
    vm_feats f = {.B = 1};
    for (int i = 0; i < 4; i++) {
        vm_feature_shape(s->bb, h1, w1, i, &f.C[i], &f.H[i], &f.W[i]);
        size_t n = (size_t)f.C[i] * f.H[i] * f.W[i];
        if (n > s->nchw_cap[i]) {
            free(s->nchw[i]);
            s->nchw[i] = malloc(sizeof(float) * n);
            s->nchw_cap[i] = s->nchw[i] ? n : 0;
        }
        nhwc[i] = malloc(sizeof(float) * n);
        if (!s->nchw[i] || !nhwc[i]) { vm_errf(err, errlen, "out of memory for the feature maps"); goto done; }
        f.data[i] = nhwc[i];
    }
    if (vm_forward_features(s->bb, in, 1, h1, w1, s->nchw)) {
        vm_errf(err, errlen, "%s", vm_model_error(s->bb));
        goto done;
    }
    for (int i = 0; i < 4; i++) nchw_to_nhwc(s->nchw[i], f.C[i], f.H[i] * f.W[i], nhwc[i]);
    double t2 = now_ms();
    int ncls = vm_upernet_classes(s->head);
    logits = malloc(sizeof(float) * (size_t)f.H[0] * f.W[0] * ncls);
    if (!logits) { vm_errf(err, errlen, "out of memory for the logits"); goto done; }
    vm_head_plan *p = get_plan(s, &f, err, errlen);
    if (!p || s->ops->forward(s->head, p, &f, logits, err, errlen)) goto done;
    double t3 = now_ms();
    if (vm_seg_labels(logits, f.H[0], f.W[0], ncls, h1, w1, bgr->h, bgr->w, labels, row_cb, user)) {
        vm_errf(err, errlen, "out of memory resizing the logits");
        goto done;
    }
    double t4 = now_ms();
    if (trace) {
        trace->w1 = w1, trace->h1 = h1;
        trace->ms_resize = t1 - t0, trace->ms_backbone = t2 - t1, trace->ms_head = t3 - t2, trace->ms_post = t4 - t3;
        trace->h4 = f.H[0], trace->w4 = f.W[0], trace->classes = ncls;
        for (int i = 0; i < 4; i++) trace->fC[i] = f.C[i], trace->fH[i] = f.H[i], trace->fW[i] = f.W[i];
        if (trace->keep) {
            trace->resized = rs, rs = NULL;
            trace->input = in, in = NULL;
            for (int i = 0; i < 4; i++) trace->feats[i] = nhwc[i], nhwc[i] = NULL;
            trace->logits4 = logits, logits = NULL;
        }
    }
    rc = 0;
done:
    free(rs);
    free(in);
    for (int i = 0; i < 4; i++) free(nhwc[i]);
    free(logits);
    return rc;
}

int vm_segment_file(vm_segmentor *s, const char *image_path, int scale_w, int scale_h, uint8_t **labels, int *w,
                    int *h, char *err, size_t errlen) {
    vm_image im;
    *labels = NULL;
    if (vm_cv_load(image_path, &im, err, errlen)) return -1;
    uint8_t *l = malloc((size_t)im.w * im.h);
    if (!l) {
        vm_image_free(&im);
        return vm_errf(err, errlen, "%s: out of memory", image_path);
    }
    if (vm_segmentor_run(s, &im, scale_w, scale_h, l, NULL, NULL, NULL, err, errlen)) {
        free(l);
        vm_image_free(&im);
        return -1;
    }
    *labels = l, *w = im.w, *h = im.h;
    vm_image_free(&im);
    return 0;
}
