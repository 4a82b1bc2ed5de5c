/* calibrate.c - see quant.h. */
#include <fnmatch.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant.h"
#include "simd/kernels.h"
#include "core/util.h"
#include "loaders/safetensors.h"

/* Rows of the first batch kept per layer for the error report. */
#define REPORT_ROWS 256
/* Entropy method: histogram of |x| and the number of quantized levels the
 * KL search compares against (the positive half of a u8 range). */
#define HBINS 2048
#define QLEVELS 128

typedef struct {
    char *name;
    double lo, hi;            /* minmax: running range; percentile: sums */
    long batches;
    const float *w;           /* FP32 weights [n_out][K] */
    int K, n_out;
    float *sample;            /* REPORT_ROWS x K from the first batch */
    int sample_rows;
    double *hist;             /* entropy: HBINS bins of |x| over [0, hmax) */
    double hmax;
    double olo, ohi;          /* range of the layer's output (A W^T + bias): the
                                 XNNPACK INT8 path requantizes to s8 there */
} layer_stats;

struct vm_calib {
    vm_model *m;
    vm_calib_opts o;
    layer_stats *l;
    int n, cap;
    float *tmp;
    size_t tmp_cap;
    float *out;               /* a layer's product, for its output range */
    size_t out_cap;
    size_t oom; /* bytes of the first allocation that failed (observers cannot return an error) */
    /* mixed precision (calib_mixed.c): backbone units kept FP32 beyond the
     * user's --skip, and what the search found (the file's metadata) */
    char **fp32;
    int nfp32;
    char *mixed_json;
};

static int cmpf(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* k-th smallest of v[0..n) (v is reordered): quickselect. */
static float kth(float *v, size_t n, size_t k) {
    size_t lo = 0, hi = n - 1;
    while (hi > lo + 16) {
        float p = v[lo + (hi - lo) / 2];
        size_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] < p) i++;
            while (v[j] > p) j--;
            if (i <= j) {
                float t = v[i]; v[i] = v[j]; v[j] = t;
                i++;
                if (j == 0) break;
                j--;
            }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else return v[k];
    }
    qsort(v + lo, hi - lo + 1, sizeof *v, cmpf);
    return v[k];
}

/* Take fn off the model's internal context, if it is still set there. */
static void stop_observing(vm_model *m, vm_observe_fn fn) {
    if (m->ictx && m->ictx->observe == fn) vm_ctx_set_observe(m->ictx, NULL, NULL);
}

/* Record an out-of-memory in c (first one wins): vm_calib_write reports it. */
static int calib_oom(vm_calib *c, size_t bytes) {
    if (!c->oom) c->oom = bytes ? bytes : 1;
    return -1;
}

static void observe(void *user, const char *layer, const float *x, size_t rows, int cols, int ld, const float *w, int n_out) {
    vm_calib *c = user;
    if (c->oom) return; /* the run already failed: vm_calib_write says so */
    layer_stats *s = NULL;
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->l[i].name, layer)) s = &c->l[i];
    if (!s) {
        if (c->n == c->cap) {
            int cap = c->cap ? 2 * c->cap : 64;
            layer_stats *nl = realloc(c->l, (size_t)cap * sizeof *nl);
            if (!nl) {
                calib_oom(c, (size_t)cap * sizeof *nl);
                return;
            }
            c->l = nl;
            c->cap = cap;
        }
        s = &c->l[c->n++];
        memset(s, 0, sizeof *s);
        if (!(s->name = strdup(layer))) {
            c->n--;
            calib_oom(c, strlen(layer) + 1);
            return;
        }
        s->lo = s->olo = INFINITY;
        s->hi = s->ohi = -INFINITY;
        s->w = w;
        s->K = cols;
        s->n_out = n_out;
        s->sample_rows = rows < REPORT_ROWS ? (int)rows : REPORT_ROWS;
        s->sample = malloc((size_t)(s->sample_rows ? s->sample_rows : 1) * cols * sizeof(float));
        if (!s->sample) {
            calib_oom(c, (size_t)s->sample_rows * cols * sizeof(float));
            return;
        }
        for (int r = 0; r < s->sample_rows; r++) memcpy(s->sample + (size_t)r * cols, x + (size_t)r * ld, (size_t)cols * sizeof(float));
        if (c->o.method == VM_CALIB_PERCENTILE) s->lo = s->hi = 0;
    }
    size_t n = rows * (size_t)cols;
    if (c->o.method == VM_CALIB_ENTROPY) {
        if (!s->hist && !(s->hist = calloc(HBINS, sizeof *s->hist))) {
            calib_oom(c, HBINS * sizeof *s->hist);
            return;
        }
        double amax = 0;
        for (size_t r = 0; r < rows; r++)
            for (int k = 0; k < cols; k++) amax = fmax(amax, fabs(x[r * ld + k]));
        if (s->hmax == 0) s->hmax = amax > 0 ? amax : 1e-6;
        while (amax >= s->hmax) { /* widen by merging bin pairs: exact */
            for (int b = 0; b < HBINS / 2; b++) s->hist[b] = s->hist[2 * b] + s->hist[2 * b + 1];
            memset(s->hist + HBINS / 2, 0, HBINS / 2 * sizeof *s->hist);
            s->hmax *= 2;
        }
        const double scale = HBINS / s->hmax;
        for (size_t r = 0; r < rows; r++)
            for (int k = 0; k < cols; k++) {
                int b = (int)(fabs(x[r * ld + k]) * scale);
                s->hist[b < HBINS ? b : HBINS - 1] += 1;
            }
    }
    if (c->o.method != VM_CALIB_PERCENTILE) {
        for (size_t r = 0; r < rows; r++)
            for (int k = 0; k < cols; k++) {
                float v = x[r * ld + k];
                if (v < s->lo) s->lo = v;
                if (v > s->hi) s->hi = v;
            }
    } else {
        if (n > c->tmp_cap) {
            float *nt = realloc(c->tmp, n * sizeof *nt);
            if (!nt) {
                calib_oom(c, n * sizeof *nt);
                return;
            }
            c->tmp = nt;
            c->tmp_cap = n;
        }
        for (size_t r = 0; r < rows; r++) memcpy(c->tmp + r * cols, x + r * ld, (size_t)cols * sizeof(float));
        double q = c->o.percentile / 100.0;
        size_t khi = (size_t)floor(q * (double)(n - 1)), klo = n - 1 - khi;
        s->hi += kth(c->tmp, n, khi);
        s->lo += kth(c->tmp, n, klo);
    }
    /* The output's range (minmax: a clipped residual-stream value costs
     * more than a coarser step), from the FP32 weights and bias. */
    if (w) {
        size_t no = rows * (size_t)n_out;
        if (no > c->out_cap) {
            float *nt = realloc(c->out, no * sizeof *nt);
            if (!nt) {
                calib_oom(c, no * sizeof *nt);
                return;
            }
            c->out = nt;
            c->out_cap = no;
        }
        const float *bias = NULL;
        char bn[256];
        snprintf(bn, sizeof bn, "%s.bias", layer);
        for (size_t i = 0; i < c->m->nparams; i++)
            if (!strcmp(c->m->params[i].name, bn)) bias = c->m->params[i].data;
        if (vm_gemm((int)rows, n_out, cols, x, ld, w, cols, c->out, n_out, 0.0f) == 0)
            for (size_t r = 0; r < rows; r++)
                for (int o = 0; o < n_out; o++) {
                    float v = c->out[r * n_out + o] + (bias ? bias[o] : 0.0f);
                    if (v < s->olo) s->olo = v;
                    if (v > s->ohi) s->ohi = v;
                }
    }
    s->batches++;
}

void vm_calib_observe(vm_calib *c, const char *layer, const float *x, size_t rows, int cols) {
    if (rows && cols > 0) observe(c, layer, x, rows, cols, cols, NULL, 0);
}

vm_calib *vm_calib_begin(vm_model *m, const vm_calib_opts *o) {
    vm_calib *c = calloc(1, sizeof *c);
    if (!c) {
        vm_errf(m->err, sizeof m->err, "out of memory (%zu bytes) starting calibration", sizeof *c);
        return NULL;
    }
    c->m = m;
    c->o = *o;
    /* The observer keeps pointers to plain weights, and the INT8 file is
     * written from them: calibration works on a private model, turned
     * back to plain weights for good (refused if contexts use it). */
    vm_ctx *x = vm_model_unpack(m) ? NULL : vm_model_ctx(m);
    if (!x) {
        free(c);
        return NULL;
    }
    vm_ctx_set_observe(x, observe, c);
    return c;
}

int vm_calib_layers(const vm_calib *c) { return c->n; }

/* Layers that by default keep FP32 compute with s8 storage: the head (its
 * error lands on the logits unfiltered) and the convolutions (the first
 * sees raw normalised pixels, three channels of different ranges under
 * one u8 scale; the downsample convolutions cost 0.009 of logit cosine on
 * v2_s1 for 3 % of the MACs). */
static int storage_only(const vm_calib *c, const char *name) {
    if (!c->o.int8_head && !strncmp(name, "classifier.head", 15)) return 1;
    if (!c->o.int8_convs && (!strncmp(name, "patch_embed.", 12) || strstr(name, ".downsample.1"))) return 1;
    return 0;
}

/* A --skip pattern matches: the layer stays FP32, its weights too. */
static int user_skipped(const vm_calib *c, const char *name) {
    for (int i = 0; i < c->o.nskip; i++)
        if (fnmatch(c->o.skip[i], name, 0) == 0 || strstr(name, c->o.skip[i])) return 1;
    /* a mixed-precision unit: the layer's own tensors (unit "x.in_proj"
     * keeps "x.in_proj.weight", not "x.in_proj2.weight") */
    for (int i = 0; i < c->nfp32; i++) {
        size_t n = strlen(c->fp32[i]);
        if (!strncmp(name, c->fp32[i], n) && (name[n] == 0 || name[n] == '.')) return 1;
    }
    return 0;
}

void vm_calib_stop(vm_calib *c) { stop_observing(c->m, observe); }

vm_model *vm_calib_model(const vm_calib *c) { return c->m; }

int vm_calib_set_fp32(vm_calib *c, const char *const *units, int n, const char *json) {
    char **l = n ? calloc((size_t)n, sizeof *l) : NULL;
    char *j = json ? strdup(json) : NULL;
    int bad = (n && !l) || (json && !j);
    for (int i = 0; i < n && !bad; i++) bad = !(l[i] = strdup(units[i]));
    if (bad) {
        for (int i = 0; l && i < n; i++) free(l[i]);
        free(l);
        free(j);
        return -1;
    }
    for (int i = 0; i < c->nfp32; i++) free(c->fp32[i]);
    free(c->fp32);
    free(c->mixed_json);
    c->fp32 = l, c->nfp32 = n, c->mixed_json = j;
    return 0;
}

/* The backbone's quantised units: observed linear layers and convolutions
 * (patch embed, downsample) and each block's x_proj / dt_proj (s8 rows),
 * not those the user's --skip keeps FP32 already. */
int vm_calib_units(const vm_calib *c, char ***out) {
    int cap = c->n + (int)c->m->nparams, n = 0;
    char **u = calloc((size_t)(cap ? cap : 1), sizeof *u);
    if (!u) return -1;
    for (int i = 0; i < c->n; i++) {
        const char *nm = c->l[i].name;
        if (strncmp(nm, "patch_embed.", 12) && strncmp(nm, "layers.", 7)) continue; /* a head convolution */
        char wn[256];
        snprintf(wn, sizeof wn, "%s.weight", nm);
        for (int k = 0; k < c->o.nskip; k++)
            if (fnmatch(c->o.skip[k], wn, 0) == 0 || strstr(wn, c->o.skip[k])) goto next;
        if (!(u[n++] = strdup(nm))) goto oom;
    next:;
    }
    for (size_t i = 0; i < c->m->nparams; i++) {
        const char *nm = c->m->params[i].name;
        if (!strstr(nm, "op.x_proj_weight") && !strstr(nm, "op.dt_projs_weight")) continue;
        int sk = 0;
        for (int k = 0; k < c->o.nskip; k++) sk |= fnmatch(c->o.skip[k], nm, 0) == 0 || strstr(nm, c->o.skip[k]);
        if (!sk && !(u[n++] = strdup(nm))) goto oom;
    }
    *out = u;
    return n;
oom:
    for (int i = 0; i < n; i++) free(u[i]);
    free(u);
    return -1;
}

static int skipped(const vm_calib *c, const char *name) { return storage_only(c, name) || user_skipped(c, name); }

/* KL-divergence threshold (the TensorRT recipe): clip |x| at the bin edge
 * whose clipped, QLEVELS-level quantized distribution Q is closest to the
 * observed one P. */
static double entropy_threshold(const layer_stats *s) {
    const double *h = s->hist;
    double best = INFINITY;
    int best_i = HBINS;
    /* On the stack (32 KB): nothing here can run out of memory. */
    double P[HBINS], Q[HBINS];
    for (int i = QLEVELS; i <= HBINS; i += 16) {
        double outl = 0, tot = 0;
        for (int b = i; b < HBINS; b++) outl += h[b];
        for (int b = 0; b < i; b++) P[b] = h[b];
        P[i - 1] += outl;
        for (int b = 0; b < i; b++) tot += P[b];
        if (tot <= 0) continue;
        /* Q: the clipped histogram without the outliers, merged into
         * QLEVELS levels and spread back over each level's non-empty bins;
         * P keeps the outliers in its last bin, so clipping too much costs */
        for (int q = 0; q < QLEVELS; q++) {
            int b0 = (int)((long)q * i / QLEVELS), b1 = (int)((long)(q + 1) * i / QLEVELS);
            double sum = 0;
            int nz = 0;
            for (int b = b0; b < b1; b++) { sum += h[b]; nz += h[b] > 0; }
            for (int b = b0; b < b1; b++) Q[b] = h[b] > 0 ? sum / nz : 0;
        }
        double kl = 0, qt = 0;
        for (int b = 0; b < i; b++) qt += Q[b];
        for (int b = 0; b < i; b++)
            if (P[b] > 0) kl += P[b] / tot * log((P[b] / tot) / (Q[b] > 0 ? Q[b] / qt : 1e-12));
        if (kl < best) { best = kl; best_i = i; }
    }
    return (double)best_i * s->hmax / HBINS;
}

/* Final range of a layer's input, always containing 0. */
static void range(const vm_calib *c, const layer_stats *s, float *scale, int *zp) {
    double lo = s->lo, hi = s->hi;
    if (c->o.method == VM_CALIB_ENTROPY && s->hist) {
        double t = entropy_threshold(s);
        if (lo < -t) lo = -t;
        if (hi > t) hi = t;
    }
    if (c->o.method == VM_CALIB_PERCENTILE && s->batches) {
        lo /= (double)s->batches;
        hi /= (double)s->batches;
    }
    if (lo > 0) lo = 0;
    if (hi < 0) hi = 0;
    double sc = (hi - lo) / 255.0;
    if (!(sc > 0)) sc = 1e-8;
    int z = (int)nearbyint(-lo / sc);
    *scale = (float)sc;
    *zp = z < 0 ? 0 : z > 255 ? 255 : z;
}

/* s8 weights, symmetric per output row. */
static void quantize_rows_s8(int8_t *q, float *scale, const float *w, int n_out, size_t K) {
    for (int r = 0; r < n_out; r++) {
        float mx = 0.0f;
        for (size_t k = 0; k < K; k++) mx = fmaxf(mx, fabsf(w[r * K + k]));
        float s = mx > 0 ? mx / 127.0f : 1.0f;
        scale[r] = s;
        for (size_t k = 0; k < K; k++) {
            float v = nearbyintf(w[r * K + k] / s);
            q[r * K + k] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
        }
    }
}

static int is_conv_weight(const vm_param *p) {
    return p->ndim == 4 && p->shape[1] > 1 && strstr(p->name, ".weight") &&
           (!strncmp(p->name, "patch_embed.", 12) || strstr(p->name, ".downsample."));
}

int vm_calib_write(vm_calib *c, const char *path, const char *metadata_json, char *err, size_t errlen) {
    vm_model *m = c->m;
    stop_observing(m, observe);
    if (c->oom)
        return vm_errf(err, errlen, "%s: out of memory (%zu bytes) for calibration statistics: nothing written", path, c->oom);
    if (c->n == 0) return vm_errf(err, errlen, "calibration saw no layer inputs (no forward pass ran)");
    size_t cap = m->nparams * 6 + m->nkept * 4 + 8, n = 0; /* a weight: itself, 5 scales and zero points; a head conv: 4 */
    vm_st_tensor *t = calloc(cap, sizeof *t);
    void **owned = calloc(cap, sizeof *owned);
    size_t nowned = 0;
    char **names = calloc(cap, sizeof *names);
    size_t nnames = 0;
    size_t oom = 0;
    int rc = -1;
    if (!t || !owned || !names) {
        oom = cap * (sizeof *t + sizeof *owned + sizeof *names);
        goto done;
    }
    /* OWN/NAME jump to done (out of memory) when an allocation fails. */
#define OWN(bytes) ((owned[nowned] = malloc(bytes)) ? owned[nowned++] : (oom = (bytes), NULL))
#define NAME(...) ((names[nnames] = malloc(200)) ? (snprintf(names[nnames], 200, __VA_ARGS__), names[nnames++]) : (oom = 200, NULL))
    int nq = 0;
    for (size_t i = 0; i < m->nparams; i++) {
        const vm_param *p = &m->params[i];
        size_t numel = 1;
        for (int d = 0; d < p->ndim; d++) numel *= (size_t)p->shape[d];
        layer_stats *s = NULL;
        size_t nl = strlen(p->name);
        if (nl > 7 && !strcmp(p->name + nl - 7, ".weight"))
            for (int k = 0; k < c->n; k++)
                if (strlen(c->l[k].name) == nl - 7 && !strncmp(c->l[k].name, p->name, nl - 7)) s = &c->l[k];
        /* x_proj / dt_proj (4 directions' projections, computed in FP32 or
         * BF16): s8 storage with a scale per row, dequantised at load
         * (load.c s8_rows_param); --skip keeps them FP32. */
        if (p->ndim >= 2 && (strstr(p->name, "op.x_proj_weight") || strstr(p->name, "op.dt_projs_weight")) &&
            !user_skipped(c, p->name)) {
            size_t K = (size_t)p->shape[p->ndim - 1], rows = numel / K;
            int8_t *q = OWN(numel);
            float *ws = q ? OWN(rows * sizeof(float)) : NULL;
            char *wsn = ws ? NAME("%s_scale", p->name) : NULL;
            if (!wsn) goto done;
            quantize_rows_s8(q, ws, p->data, (int)rows, K);
            t[n++] = (vm_st_tensor){.name = p->name, .i8 = q, .ndim = p->ndim,
                                    .shape = {p->shape[0], p->shape[1], p->shape[2], p->shape[3]}};
            t[n++] = (vm_st_tensor){.name = wsn, .data = ws, .ndim = 1, .shape = {(int64_t)rows}};
            continue;
        }
        int conv = is_conv_weight(p);
        int store8 = (s || conv) && storage_only(c, p->name) && !user_skipped(c, p->name); /* s8 storage, FP32 compute */
        /* decided before s is dropped: the head is no convolution, and
         * testing (s || conv) after `s = NULL` wrote it FP32 (57dd2e3 to
         * session 8) */
        const int to_s8 = (s || conv) && (store8 || !skipped(c, p->name));
        if (store8) s = NULL; /* no input scale: dequantised at load */
        if (to_s8) {
            int rows = (int)p->shape[0];
            size_t K = numel / (size_t)rows;
            int8_t *q = OWN(numel);
            float *ws = q ? OWN((size_t)rows * sizeof(float)) : NULL;
            char *wsn = ws ? NAME("%.*s.weight_scale", (int)nl - 7, p->name) : NULL;
            if (!wsn) goto done;
            quantize_rows_s8(q, ws, p->data, rows, K);
            t[n++] = (vm_st_tensor){.name = p->name, .i8 = q, .ndim = p->ndim,
                                    .shape = {p->shape[0], p->shape[1], p->shape[2], p->shape[3]}};
            t[n++] = (vm_st_tensor){.name = wsn, .data = ws, .ndim = 1, .shape = {rows}};
            if (s && c->o.dynamic && !conv) {
                /* per-row input scales at run time (load.c dynamic_qlinear) */
                float *one = OWN(sizeof(float));
                char *dn = one ? NAME("%.*s.input_dynamic", (int)nl - 7, p->name) : NULL;
                if (!dn) goto done;
                one[0] = 1.0f;
                t[n++] = (vm_st_tensor){.name = dn, .data = one, .ndim = 1, .shape = {1}};
                nq++;
            } else if (s) {
                float *as = OWN(2 * sizeof(float));
                char *isn = as ? NAME("%.*s.input_scale", (int)nl - 7, p->name) : NULL;
                char *izn = isn ? NAME("%.*s.input_zero_point", (int)nl - 7, p->name) : NULL;
                if (!izn) goto done;
                int zp;
                range(c, s, &as[0], &zp);
                as[1] = (float)zp;
                t[n++] = (vm_st_tensor){.name = isn, .data = as, .ndim = 1, .shape = {1}};
                t[n++] = (vm_st_tensor){.name = izn, .data = as + 1, .ndim = 1, .shape = {1}};
                if (s->ohi >= s->olo) { /* the output's u8 scale and zero point, as the input's */
                    float *os = OWN(2 * sizeof(float));
                    char *osn = os ? NAME("%.*s.output_scale", (int)nl - 7, p->name) : NULL;
                    char *ozn = osn ? NAME("%.*s.output_zero_point", (int)nl - 7, p->name) : NULL;
                    if (!ozn) goto done;
                    double lo = fmin(s->olo, 0), hi = fmax(s->ohi, 0), sc = (hi - lo) / 255.0;
                    if (!(sc > 0)) sc = 1e-8;
                    int z = (int)nearbyint(-lo / sc);
                    os[0] = (float)sc;
                    os[1] = (float)(z < 0 ? 0 : z > 255 ? 255 : z);
                    t[n++] = (vm_st_tensor){.name = osn, .data = os, .ndim = 1, .shape = {1}};
                    t[n++] = (vm_st_tensor){.name = ozn, .data = os + 1, .ndim = 1, .shape = {1}};
                }
                nq++;
            }
            continue;
        }
        t[n++] = (vm_st_tensor){.name = p->name, .data = p->data, .ndim = p->ndim,
                                .shape = {p->shape[0], p->shape[1], p->shape[2], p->shape[3]}};
    }
    /* The heads' tensors (decode_head.*, neck.*, rpn_head.*, roi_head.*,
     * unknown keys): FP32 as loaded, except a head convolution whose input
     * was observed (vm_calib_observe) and is not skipped: s8 per output
     * channel with its input scale, run as an INT8 convolution by the head.
     * Non-float tensors (BatchNorm's num_batches_tracked) are not needed
     * at inference and are dropped. */
    for (size_t i = 0; i < m->nkept; i++) {
        const vm_kept *k = &m->kept[i];
        if (!k->data || k->ndim > 4) continue;
        layer_stats *s = NULL;
        size_t nl = strlen(k->name);
        if (k->ndim == 4 && nl > 7 && !strcmp(k->name + nl - 7, ".weight") && !skipped(c, k->name))
            for (int j = 0; j < c->n; j++)
                if (!c->l[j].w && strlen(c->l[j].name) == nl - 7 && !strncmp(c->l[j].name, k->name, nl - 7)) s = &c->l[j];
        if (s) {
            int rows = (int)k->shape[0];
            size_t numel = (size_t)k->shape[0] * k->shape[1] * k->shape[2] * k->shape[3], K = numel / (size_t)rows;
            int8_t *q = OWN(numel);
            float *ws = q ? OWN((size_t)rows * sizeof(float)) : NULL;
            float *as = ws ? OWN(2 * sizeof(float)) : NULL;
            char *wsn = as ? NAME("%.*s.weight_scale", (int)nl - 7, k->name) : NULL;
            char *isn = wsn ? NAME("%.*s.input_scale", (int)nl - 7, k->name) : NULL;
            char *izn = isn ? NAME("%.*s.input_zero_point", (int)nl - 7, k->name) : NULL;
            if (!izn) goto done;
            quantize_rows_s8(q, ws, k->data, rows, K);
            int zp;
            range(c, s, &as[0], &zp);
            as[1] = (float)zp;
            t[n++] = (vm_st_tensor){.name = k->name, .i8 = q, .ndim = 4,
                                    .shape = {k->shape[0], k->shape[1], k->shape[2], k->shape[3]}};
            t[n++] = (vm_st_tensor){.name = wsn, .data = ws, .ndim = 1, .shape = {rows}};
            t[n++] = (vm_st_tensor){.name = isn, .data = as, .ndim = 1, .shape = {1}};
            t[n++] = (vm_st_tensor){.name = izn, .data = as + 1, .ndim = 1, .shape = {1}};
            nq++;
            continue;
        }
        vm_st_tensor e = {.name = k->name, .data = k->data, .ndim = k->ndim};
        for (int d = 0; d < k->ndim; d++) e.shape[d] = k->shape[d];
        t[n++] = e;
    }
    size_t slen = 256 + (c->mixed_json ? strlen(c->mixed_json) : 0);
    char *scheme = OWN(slen);
    if (!scheme) goto done;
    snprintf(scheme, slen,
             "{\"weights\": \"s8 symmetric per output channel\", \"activations\": \"u8 asymmetric per %s\", "
             "\"method\": \"%s\", \"percentile\": %g, \"int8_layers\": %d%s%s}",
             c->o.dynamic ? "row, at run time" : "tensor",
             c->o.method == VM_CALIB_MINMAX ? "minmax" : c->o.method == VM_CALIB_ENTROPY ? "entropy" : "percentile",
             c->o.percentile, nq, c->mixed_json ? ", \"mixed_precision\": " : "", c->mixed_json ? c->mixed_json : "");
    char arch[512];
    vm_arch_json(m, arch, sizeof arch);
    const char *kv[8] = {"format", "pt", "vmamba", metadata_json ? metadata_json : "{}", "quantization", scheme,
                         "architecture", arch};
    rc = vm_safetensors_write(path, t, n, VM_ST_F32, kv, 4, err, errlen);
done:
    if (oom) rc = vm_errf(err, errlen, "%s: out of memory (%zu bytes) quantizing the weights: nothing written", path, oom);
    for (size_t i = 0; i < nowned; i++) free(owned[i]);
    for (size_t i = 0; i < nnames; i++) free(names[i]);
    free(owned);
    free(names);
    free(t);
    return rc;
#undef OWN
#undef NAME
}

/* What the written file does with a reported layer, as vm_calib_write
 * decides it: a --skip or mixed-precision unit keeps FP32 weights and
 * compute; a storage-only layer (the convolutions and the classifier head
 * unless --int8-convs / --int8-head) is stored as s8 and dequantised at
 * load (load.c conv, qlinear), so it runs in FP32 on every backend; the
 * others run in INT8 (no note). */
static const char *report_note(const vm_calib *c, const char *name) {
    if (user_skipped(c, name)) return "  (skipped: FP32 weights and compute)";
    if (storage_only(c, name))
        return strncmp(name, "classifier.head", 15) ? "  (s8 storage, FP32 compute; INT8 with --int8-convs)"
                                                    : "  (s8 storage, FP32 compute; INT8 with --int8-head)";
    return "";
}

void vm_calib_report(vm_calib *c, FILE *f) {
    fprintf(f, "%-42s %9s %9s %10s %4s\n", "layer (input -> output error, 1st batch)", "cosine", "rel.L2", "scale", "zp");
    for (int i = 0; i < c->n; i++) {
        layer_stats *s = &c->l[i];
        float scale;
        int zp;
        range(c, s, &scale, &zp);
        if (!s->w) { /* a convolution: its range only */
            fprintf(f, "%-42s %9s %9s %10.4g %4d%s\n", s->name, "conv", "-", scale, zp, report_note(c, s->name));
            continue;
        }
        const int K = s->K, N = s->n_out;
        int8_t *q = malloc((size_t)N * K);
        float *ws = malloc((size_t)N * sizeof(float));
        if (!q || !ws) {
            fprintf(f, "%-42s (out of memory for the error report: %zu bytes)\n", s->name, (size_t)N * (K + 4));
            free(q);
            free(ws);
            continue;
        }
        quantize_rows_s8(q, ws, s->w, N, (size_t)K);
        double dot = 0, nf = 0, nq = 0, d2 = 0;
        for (int r = 0; r < s->sample_rows; r++) {
            const float *x = s->sample + (size_t)r * K;
            if (c->o.dynamic) { /* this row's own range, as the run time will (kernels.h quantize_rows_u8) */
                float lo = 0, hi = 0;
                int32_t z;
                for (int k = 0; k < K; k++) lo = x[k] < lo ? x[k] : lo, hi = x[k] > hi ? x[k] : hi;
                vm_row_qparams(lo, hi, &scale, &z);
                zp = (int)z;
            }
            for (int o = 0; o < N; o++) {
                double yf = 0, yq = 0;
                for (int k = 0; k < K; k++) {
                    double xq = nearbyint(x[k] / scale) + zp;
                    xq = (xq < 0 ? 0 : xq > 255 ? 255 : xq) - zp;
                    yf += (double)x[k] * s->w[(size_t)o * K + k];
                    yq += xq * scale * q[(size_t)o * K + k] * ws[o];
                }
                dot += yf * yq;
                nf += yf * yf;
                nq += yq * yq;
                d2 += (yf - yq) * (yf - yq);
            }
        }
        double cosv = dot / (sqrt(nf * nq) + 1e-30), rel = sqrt(d2 / (nf + 1e-30));
        if (c->o.dynamic)
            fprintf(f, "%-42s %9.6f %9.5f %10s %4s%s\n", s->name, cosv, rel, "per row", "-", report_note(c, s->name));
        else
            fprintf(f, "%-42s %9.6f %9.5f %10.4g %4d%s\n", s->name, cosv, rel, scale, zp, report_note(c, s->name));
        free(q);
        free(ws);
    }
}

void vm_calib_free(vm_calib *c) {
    if (!c) return;
    if (c->m) stop_observing(c->m, observe);
    for (int i = 0; i < c->n; i++) {
        free(c->l[i].name);
        free(c->l[i].sample);
        free(c->l[i].hist);
    }
    free(c->l);
    free(c->tmp);
    free(c->out);
    for (int i = 0; i < c->nfp32; i++) free(c->fp32[i]);
    free(c->fp32);
    free(c->mixed_json);
    free(c);
}

/* ---- SmoothQuant ------------------------------------------------------- */

typedef struct {
    int stage, block, fc1; /* which layer: in_proj (fc1 = 0) or mlp.fc1 */
    int K;
    float *amax;           /* per input channel */
} smooth_layer;

struct vm_smooth {
    vm_model *m;
    smooth_layer *l;
    int n, cap;
    size_t oom; /* bytes of the first allocation that failed */
};

static void smooth_observe(void *user, const char *layer, const float *x, size_t rows, int cols, int ld, const float *w,
                           int n_out) {
    vm_smooth *sm = user;
    if (sm->oom) return;
    int st, bl;
    char what[32];
    if (sscanf(layer, "layers.%d.blocks.%d.%31s", &st, &bl, what) != 3) return;
    int fc1 = !strcmp(what, "mlp.fc1");
    if (!fc1 && strcmp(what, "op.in_proj")) return;
    smooth_layer *L = NULL;
    for (int i = 0; i < sm->n; i++)
        if (sm->l[i].stage == st && sm->l[i].block == bl && sm->l[i].fc1 == fc1) L = &sm->l[i];
    if (!L) {
        if (sm->n == sm->cap) {
            int cap = sm->cap ? 2 * sm->cap : 32;
            smooth_layer *nl = realloc(sm->l, (size_t)cap * sizeof *nl);
            if (!nl) {
                sm->oom = (size_t)cap * sizeof *nl;
                return;
            }
            sm->l = nl;
            sm->cap = cap;
        }
        float *amax = calloc((size_t)(cols > 0 ? cols : 1), sizeof(float));
        if (!amax) {
            sm->oom = (size_t)cols * sizeof(float) + 1;
            return;
        }
        L = &sm->l[sm->n++];
        *L = (smooth_layer){st, bl, fc1, cols, amax};
    }
    for (size_t r = 0; r < rows; r++)
        for (int k = 0; k < cols; k++) L->amax[k] = fmaxf(L->amax[k], fabsf(x[r * ld + k]));
}

vm_smooth *vm_smooth_begin(vm_model *m) {
    vm_smooth *s = calloc(1, sizeof *s);
    if (!s) {
        vm_errf(m->err, sizeof m->err, "out of memory (%zu bytes) starting SmoothQuant", sizeof *s);
        return NULL;
    }
    s->m = m;
    /* smoothing rewrites the plain weights of this private model */
    vm_ctx *x = vm_model_unpack(m) ? NULL : vm_model_ctx(m);
    if (!x) {
        free(s);
        return NULL;
    }
    vm_ctx_set_observe(x, smooth_observe, s);
    return s;
}

int vm_smooth_apply(vm_smooth *s, double alpha) {
    vm_model *m = s->m;
    stop_observing(m, smooth_observe);
    if (s->oom)
        return vm_errf(m->err, sizeof m->err, "out of memory (%zu bytes) for SmoothQuant statistics: nothing smoothed", s->oom);
    int done = 0;
    for (int i = 0; i < s->n; i++) {
        smooth_layer *L = &s->l[i];
        vm_block *b = &m->st[L->stage].blocks[L->block];
        /* the model owns these arrays; smoothing rewrites them in place */
        float *lw = (float *)(L->fc1 ? b->norm2.w : b->norm.w), *lb = (float *)(L->fc1 ? b->norm2.b : b->norm.b);
        float *W = (float *)(L->fc1 ? b->fc1_w : b->in_proj_w);
        int N = L->fc1 ? m->st[L->stage].hidden : m->st[L->stage].d_inner * (m->info.z_gate ? 2 : 1);
        if (!W || !lw) continue;
        for (int k = 0; k < L->K; k++) {
            float wmax = 0.0f;
            for (int n = 0; n < N; n++) wmax = fmaxf(wmax, fabsf(W[(size_t)n * L->K + k]));
            if (!(L->amax[k] > 0) || !(wmax > 0)) continue;
            float sc = (float)(pow(L->amax[k], alpha) / pow(wmax, 1.0 - alpha));
            if (!(sc > 1e-5f) || !isfinite(sc)) continue;
            lw[k] /= sc;
            lb[k] /= sc;
            for (int n = 0; n < N; n++) W[(size_t)n * L->K + k] *= sc;
        }
        done++;
    }
    return done;
}

void vm_smooth_free(vm_smooth *s) {
    if (!s) return;
    if (s->m) stop_observing(s->m, smooth_observe);
    for (int i = 0; i < s->n; i++) free(s->l[i].amax);
    free(s->l);
    free(s);
}
