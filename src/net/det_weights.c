/* det_weights.c - vm_weights_src over deterministic random tensors (the
 * benchmark preset's heads). */
#include "net/det_weights.h"
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
    int oom; /* an allocation failed: det_src_random gives NULL */
    uint64_t seed;
};

/* NULL (and s->oom set) when memory runs out. */
static entry *add(det_src *s, const char *name) {
    if (s->oom) return NULL;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        entry *ne = realloc(s->e, cap * sizeof *ne);
        if (!ne) {
            s->oom = 1;
            return NULL;
        }
        s->e = ne;
        s->cap = cap;
    }
    entry *e = &s->e[s->n];
    memset(e, 0, sizeof *e);
    if (!(e->name = strdup(name))) {
        s->oom = 1;
        return NULL;
    }
    s->n++;
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

/* The entry's random values (deterministic per name and seed); -1 when
 * memory runs out. det_src_random fills every entry up front, so that
 * running out is an "out of memory" error there, not a "missing tensor"
 * from get(). */
static int fill(det_src *s, entry *e) {
    const char *name = e->name;
    {
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
    return 0;
}

static int get(void *user, const char *name, vm_tensor_view *out) {
    det_src *s = user;
    entry *e = lookup(s, name);
    if (!e || (!e->data && fill(s, e))) return -1;
    out->data = e->data;
    out->ndim = e->ndim;
    for (int i = 0; i < 4; i++) out->shape[i] = i < e->ndim ? e->shape[i] : 1;
    return 0;
}

static void shape(det_src *s, const char *name, int ndim, int64_t a, int64_t b, int64_t c, int64_t d, float bound, float bias) {
    entry *e = add(s, name);
    if (!e) return;
    e->ndim = ndim;
    e->shape[0] = a; e->shape[1] = b; e->shape[2] = c; e->shape[3] = d;
    e->bound = bound;
    e->bias = bias;
    if (fill(s, e)) s->oom = 1;
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
    det_src *s = calloc(1, sizeof *s);
    if (!s) return NULL;
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
    if (s->oom) {
        det_src_close(s);
        return NULL;
    }
    return s;
}

const vm_weights_src *det_src_weights(det_src *s) { return &s->ws; }

void det_src_close(det_src *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) { free(s->e[i].name); free(s->e[i].data); }
    free(s->e);
    free(s);
}
