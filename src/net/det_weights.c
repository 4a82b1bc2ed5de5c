/* det_weights.c - vm_weights_src over deterministic random tensors (the
 * benchmark preset's heads). */
#include "net/det_weights.h"
#include "core/util.h"
#include "core/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *name;
    int ndim;
    int64_t shape[4];
    float *data;       /* converted copy, made on first use */
    float bound, bias; /* random: U(-bound, bound) + bias */
} entry;

struct det_src {
    vm_weights_src ws;
    entry *e;
    size_t n, cap;
    uint64_t seed;
};

static entry *add(det_src *s, const char *name) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->e = vm_xrealloc(s->e, s->cap * sizeof *s->e);
    }
    entry *e = &s->e[s->n++];
    memset(e, 0, sizeof *e);
    e->name = vm_xstrdup(name);
    return e;
}

static entry *lookup(det_src *s, const char *name) {
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->e[i].name, name)) return &s->e[i];
    return NULL;
}

static uint64_t splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int get(void *user, const char *name, vm_tensor_view *out) {
    det_src *s = user;
    entry *e = lookup(s, name);
    if (!e) return -1;
    if (!e->data) { /* random */
        size_t n = 1;
        for (int i = 0; i < e->ndim; i++) n *= (size_t)e->shape[i];
        e->data = malloc(n * sizeof(float));
        if (!e->data) return -1;
        uint64_t x = s->seed;
        for (const char *c = name; *c; c++) x = (x ^ (uint8_t)*c) * 1099511628211ull;
        for (size_t i = 0; i < n; i++) {
            float r = (float)((splitmix(&x) >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
            e->data[i] = r * e->bound + e->bias;
        }
        /* the first 5 classes' logits lifted so that a benchmark sees
         * detections and masks (random weights alone give ~1/81 per class,
         * below score_thr) */
        if (strstr(name, "fc_cls.bias"))
            for (size_t i = 0; i < n && i < 5; i++) e->data[i] += 5.0f;
    }
    out->data = e->data;
    out->ndim = e->ndim;
    for (int i = 0; i < 4; i++) out->shape[i] = i < e->ndim ? e->shape[i] : 1;
    return 0;
}

static void shape(det_src *s, const char *name, int ndim, int64_t a, int64_t b, int64_t c, int64_t d, float bound, float bias) {
    entry *e = add(s, name);
    e->ndim = ndim;
    e->shape[0] = a; e->shape[1] = b; e->shape[2] = c; e->shape[3] = d;
    e->bound = bound;
    e->bias = bias;
}

static void conv(det_src *s, const char *name, int cout, int cin, int k) {
    char n[160];
    float bound = 1.0f / sqrtf((float)(cin * k * k));
    snprintf(n, sizeof n, "%s.weight", name);
    shape(s, n, 4, cout, cin, k, k, bound, 0.0f);
    snprintf(n, sizeof n, "%s.bias", name);
    shape(s, n, 1, cout, 1, 1, 1, bound, 0.0f);
}

det_src *det_src_random(const int Cin[4], int F, int fc_hidden, int ncls, int Cm, uint64_t seed) {
    det_src *s = vm_xcalloc(1, sizeof *s);
    s->seed = seed;
    s->ws.user = s;
    s->ws.get = get;
    s->ws.path = "(random weights)";
    char n[160];
    for (int i = 0; i < 4; i++) {
        snprintf(n, sizeof n, "neck.lateral_convs.%d.conv", i);
        conv(s, n, F, Cin[i], 1);
        snprintf(n, sizeof n, "neck.fpn_convs.%d.conv", i);
        conv(s, n, F, F, 3);
    }
    conv(s, "rpn_head.rpn_conv", F, F, 3);
    conv(s, "rpn_head.rpn_cls", 3, F, 1);
    conv(s, "rpn_head.rpn_reg", 12, F, 1);
    float b0 = 1.0f / sqrtf((float)(F * 49)), b1 = 1.0f / sqrtf((float)fc_hidden);
    shape(s, "roi_head.bbox_head.shared_fcs.0.weight", 2, fc_hidden, (int64_t)F * 49, 1, 1, b0, 0.0f);
    shape(s, "roi_head.bbox_head.shared_fcs.0.bias", 1, fc_hidden, 1, 1, 1, b0, 0.0f);
    shape(s, "roi_head.bbox_head.shared_fcs.1.weight", 2, fc_hidden, fc_hidden, 1, 1, b1, 0.0f);
    shape(s, "roi_head.bbox_head.shared_fcs.1.bias", 1, fc_hidden, 1, 1, 1, b1, 0.0f);
    shape(s, "roi_head.bbox_head.fc_cls.weight", 2, ncls + 1, fc_hidden, 1, 1, b1, 0.0f);
    shape(s, "roi_head.bbox_head.fc_cls.bias", 1, ncls + 1, 1, 1, 1, b1, 0.0f);
    shape(s, "roi_head.bbox_head.fc_reg.weight", 2, 4 * ncls, fc_hidden, 1, 1, b1, 0.0f);
    shape(s, "roi_head.bbox_head.fc_reg.bias", 1, 4 * ncls, 1, 1, 1, b1, 0.0f);
    for (int i = 0; i < 4; i++) {
        snprintf(n, sizeof n, "roi_head.mask_head.convs.%d.conv", i);
        conv(s, n, Cm, i ? Cm : F, 3);
    }
    float bu = 1.0f / sqrtf((float)(Cm * 4));
    shape(s, "roi_head.mask_head.upsample.weight", 4, Cm, Cm, 2, 2, bu, 0.0f);
    shape(s, "roi_head.mask_head.upsample.bias", 1, Cm, 1, 1, 1, bu, 0.0f);
    conv(s, "roi_head.mask_head.conv_logits", ncls, Cm, 1);
    return s;
}

const vm_weights_src *det_src_weights(det_src *s) { return &s->ws; }

void det_src_close(det_src *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) { free(s->e[i].name); free(s->e[i].data); }
    free(s->e);
    free(s);
}
