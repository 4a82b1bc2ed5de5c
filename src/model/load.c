/* load.c - build a vm_model: detect the architecture from a checkpoint's
 * key names and shapes (or take a preset), then bind every parameter with
 * its shape checked. Presets get deterministic random weights. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "../../simd/kernels.h"
#include "../loaders/checkpoint.h"
#include "../loaders/safetensors.h"
#include "../core/util.h"

int vm_arch_preset(const char *name, int num_classes, vm_info *info);

/* Where parameter values come from. */
struct vm_wsrc {
    const vm_checkpoint *ck; /* NULL: random (presets) */
    uint64_t seed;
    int quiet;
    int64_t params;
    uint64_t budget; /* bytes of weights the file can still justify */
    const char *what; /* the file or preset, for messages */
};

/* Weights read from a file may take at most VM_LOAD_MEM_FACTOR times the
 * file's size (+ VM_LOAD_MEM_SLACK): the largest legitimate expansion is
 * INT8 storage dequantised to float (1 + 4 bytes per file byte). Without
 * it, tensors sharing one storage could ask for any amount of memory. */
#define VM_LOAD_MEM_FACTOR 8
#define VM_LOAD_MEM_SLACK (16u << 20)

static int charge(vm_model *m, struct vm_wsrc *src, const char *name, uint64_t bytes) {
    if (!src->ck) return 0;
    if (bytes <= src->budget) {
        src->budget -= bytes;
        return 0;
    }
    return vm_errf(m->err, sizeof m->err, "%s: tensor '%s' would take the weights past %d times the file's size "
                   "(%zu bytes): storages shared by many tensors?", src->ck->path, name, VM_LOAD_MEM_FACTOR, src->ck->map.size);
}

typedef enum { INIT_LINEAR, INIT_ONES, INIT_ZEROS, INIT_ALOGS, INIT_DTBIAS } init_kind;

/* NULL with m->err set ("out of memory (N bytes) ...") when memory runs out. */
float *vm_model_alloc(vm_model *m, size_t n) {
    size_t bytes;
    if (m->nallocs == m->capallocs) {
        size_t cap = m->capallocs ? m->capallocs * 2 : 64;
        void **a = realloc(m->allocs, cap * sizeof *a);
        if (!a) {
            vm_errf(m->err, sizeof m->err, "out of memory (%zu bytes) for the model's allocation table", cap * sizeof *a);
            return NULL;
        }
        m->allocs = a;
        m->capallocs = cap;
    }
    float *p = vm_mul_ok(n, sizeof(float), &bytes) ? vm_aligned_alloc_try(bytes) : NULL;
    if (!p) {
        vm_errf(m->err, sizeof m->err, "out of memory (%zu x 4 bytes) for model weights", n);
        return NULL;
    }
    m->allocs[m->nallocs++] = p;
    return p;
}

/* vm_model_alloc without the abort (the sizes come from the file or the
 * preset): NULL with m->err set when memory runs out. */
static void *try_alloc(vm_model *m, struct vm_wsrc *src, size_t bytes, const char *name) {
    if (m->nallocs == m->capallocs) {
        size_t cap = m->capallocs ? m->capallocs * 2 : 64;
        void **a = realloc(m->allocs, cap * sizeof *a);
        if (!a) {
            vm_errf(m->err, sizeof m->err, "%s: out of memory (%zu bytes) loading the model", src->what, cap * sizeof *a);
            return NULL;
        }
        m->allocs = a;
        m->capallocs = cap;
    }
    void *p = vm_aligned_alloc_try(bytes);
    if (!p) {
        vm_errf(m->err, sizeof m->err, "%s: out of memory (%zu bytes) for '%s'", src->what, bytes, name);
        return NULL;
    }
    m->allocs[m->nallocs++] = p;
    return p;
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t hash_name(const char *s) {
    uint64_t h = 1469598103934665603ull;
    while (*s) h = (h ^ (uint8_t)*s++) * 1099511628211ull;
    return h;
}

static void random_fill(float *p, size_t n, init_kind kind, int fan_in, uint64_t seed, const char *name) {
    uint64_t s = seed ^ hash_name(name);
    float bound = fan_in > 0 ? 1.0f / sqrtf((float)fan_in) : 0.1f;
    for (size_t i = 0; i < n; i++) {
        float r = (float)((splitmix(&s) >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f; /* U(-1,1) */
        switch (kind) {
        case INIT_LINEAR: p[i] = r * bound; break;
        case INIT_ONES: p[i] = 1.0f; break;
        case INIT_ZEROS: p[i] = 0.0f; break;
        case INIT_ALOGS: p[i] = 0.0f; break; /* filled per state below */
        case INIT_DTBIAS: p[i] = -4.0f + r; break; /* softplus^-1 of a small dt */
        }
    }
}

static void fmt_shape(char *buf, size_t len, int nd, const int64_t *s) {
    size_t off = (size_t)snprintf(buf, len, "(");
    for (int i = 0; i < nd && off < len; i++) off += (size_t)snprintf(buf + off, len - off, "%s%lld", i ? ", " : "", (long long)s[i]);
    if (off < len) snprintf(buf + off, len - off, ")");
}

static int record(vm_model *m, struct vm_wsrc *src, const char *name, const float *p, int nd, const int64_t *shape) {
    if (m->nparams == m->capparams) {
        size_t cap = m->capparams ? m->capparams * 2 : 256;
        vm_param *q = realloc(m->params, cap * sizeof *q);
        if (!q) return vm_errf(m->err, sizeof m->err, "%s: out of memory (%zu bytes) loading the model", src->what, cap * sizeof *q);
        m->params = q;
        m->capparams = cap;
    }
    vm_param *q = &m->params[m->nparams];
    if (!(q->name = strdup(name))) return vm_errf(m->err, sizeof m->err, "%s: out of memory loading the model", src->what);
    m->nparams++;
    q->data = p;
    q->ndim = nd;
    memcpy(q->shape, shape, (size_t)nd * sizeof *shape);
    return 0;
}

/* Fetch parameter `name` of the given shape. Returns NULL with m->err set
 * on error, or NULL without error if optional and absent. */
static float *param(vm_model *m, struct vm_wsrc *src, const char *name, int nd, const int64_t *shape, init_kind kind,
                    int fan_in, int optional, int *fail) {
    size_t n = 1;
    for (int i = 0; i < nd; i++) n *= (size_t)shape[i];
    if (!src->ck) {
        float *p = try_alloc(m, src, n * sizeof(float), name);
        if (!p) {
            *fail = 1;
            return NULL;
        }
        random_fill(p, n, kind, fan_in, src->seed, name);
        if (kind == INIT_ALOGS) { /* S4D-real: A_n = -(n+1) */
            int64_t N = shape[1];
            for (size_t i = 0; i < n; i++) p[i] = logf((float)(i % (size_t)N + 1));
        }
        src->params += (int64_t)n;
        if (record(m, src, name, p, nd, shape)) *fail = 1;
        return *fail ? NULL : p;
    }
    const vm_ckpt_tensor *t = vm_checkpoint_find(src->ck, name);
    if (t) ((vm_ckpt_tensor *)t)->used = 1;
    if (!t) {
        if (!optional) {
            vm_errf(m->err, sizeof m->err, "%s: missing key '%s'", src->ck->path, name);
            *fail = 1;
        }
        return NULL;
    }
    /* Shapes must match; a 1x1 conv stored 4-D (out,in,1,1) is accepted
     * for a 2-D linear weight. */
    int ok = t->ndim >= nd;
    for (int i = 0; ok && i < t->ndim; i++) ok = i < nd ? t->shape[i] == shape[i] : t->shape[i] == 1;
    if (!ok) {
        char a[96], b[96];
        fmt_shape(a, sizeof a, t->ndim, t->shape);
        fmt_shape(b, sizeof b, nd, shape);
        vm_errf(m->err, sizeof m->err, "%s: tensor '%s' has shape %s, expected %s", src->ck->path, name, a, b);
        *fail = 1;
        return NULL;
    }
    /* Validate against the file before allocating from its shape. */
    if (vm_ckpt_validate(src->ck, t, m->err, sizeof m->err)) {
        *fail = 1;
        return NULL;
    }
    if (charge(m, src, name, (uint64_t)n * sizeof(float))) {
        *fail = 1;
        return NULL;
    }
    float *p = try_alloc(m, src, n * sizeof(float), name);
    if (!p || vm_ckpt_read_f32(src->ck, t, p, m->err, sizeof m->err)) {
        *fail = 1;
        return NULL;
    }
    vm_ckpt_release(src->ck, t);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += !isfinite(p[i]);
    if (bad && !src->quiet)
        fprintf(stderr, "vmamba: warning: %s: tensor '%s' has %zu NaN/Inf values\n", src->ck->path, name, bad);
    src->params += (int64_t)n;
    if (record(m, src, name, p, nd, shape)) *fail = 1;
    return *fail ? NULL : p;
}

#define S(...) ((int64_t[]){__VA_ARGS__})
#define P(name, nd, shape, kind, fan) param(m, src, name, nd, shape, kind, fan, 0, &fail)
#define POPT(name, nd, shape, kind, fan) param(m, src, name, nd, shape, kind, fan, 1, &fail)

/* An s8 tensor of shape (N, K) [x 1 x 1], or NULL if name is absent or
 * not int8 (then the FP32 path binds it). Errors set *fail. */
static const int8_t *int8_param(vm_model *m, struct vm_wsrc *src, const char *name, int N, int K, int *fail) {
    if (!src->ck) return NULL;
    const vm_ckpt_tensor *t = vm_checkpoint_find(src->ck, name);
    if (!t || t->dtype != PK_DT_I8) return NULL;
    int64_t numel = vm_ckpt_numel(t);
    if (t->ndim < 2 || t->shape[0] != N || numel != (int64_t)N * K) {
        vm_errf(m->err, sizeof m->err, "%s: int8 tensor '%s' does not have %d x %d elements", src->ck->path, name, N, K);
        *fail = 1;
        return NULL;
    }
    /* Checked like float tensors (storage bytes, offset, strides) before
     * anything is allocated or read; then copied element by element. */
    if (vm_ckpt_check_layout(src->ck, t, m->err, sizeof m->err)) {
        *fail = 1;
        return NULL;
    }
    if (charge(m, src, name, (uint64_t)N * K)) {
        *fail = 1;
        return NULL;
    }
    int8_t *w = try_alloc(m, src, (size_t)N * K, name);
    if (!w || vm_ckpt_read_i8(src->ck, t, w, m->err, sizeof m->err)) {
        *fail = 1;
        return NULL;
    }
    ((vm_ckpt_tensor *)t)->used = 1;
    src->params += numel;
    return w;
}

/* Per-output-channel scales of an int8 tensor: finite and positive. */
static const float *scales(vm_model *m, struct vm_wsrc *src, const char *name, int N, int *fail) {
    if (*fail) return NULL;
    float *p = param(m, src, name, 1, (int64_t[]){N}, INIT_ONES, 0, 0, fail);
    for (int i = 0; p && i < N; i++)
        if (!(p[i] > 0.0f) || !isfinite(p[i])) {
            vm_errf(m->err, sizeof m->err, "%s: '%s' holds a non-positive or non-finite scale", src->ck->path, name);
            *fail = 1;
            return NULL;
        }
    return p;
}

/* w8 (rows x K, s8) times its per-row scales, into a new float array
 * charged to the weights budget; NULL with *fail set on failure. Shared by
 * the storage-only INT8 convolutions and s8_rows_param. */
static float *dequant_rows(vm_model *m, struct vm_wsrc *src, const char *name, const int8_t *w8, const float *sc,
                           size_t rows, size_t K, int *fail) {
    size_t n = rows * K;
    float *w = charge(m, src, name, (uint64_t)n * sizeof(float)) ? NULL : try_alloc(m, src, n * sizeof(float), name);
    if (!w) {
        *fail = 1;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) w[i] = (float)w8[i] * sc[i / K];
    return w;
}

/* A float parameter an INT8 file stores as s8 rows (`name`, int8, the
 * shape the float tensor has) with a scale per row (`name`_scale: one per
 * element of all dimensions but the last): dequantised once here, so the
 * layer computes in FP32 (or BF16) as before. calibrate writes x_proj and
 * dt_proj this way (storage only: 4 bytes -> 1 per weight). NULL without
 * an error when `name` is absent or not int8: the caller reads it as float. */
static float *s8_rows_param(vm_model *m, struct vm_wsrc *src, const char *name, int nd, const int64_t *shape, int *fail) {
    if (*fail || !src->ck) return NULL;
    const vm_ckpt_tensor *t = vm_checkpoint_find(src->ck, name);
    if (!t || t->dtype != PK_DT_I8) return NULL;
    size_t n = 1;
    int ok = t->ndim == nd;
    for (int i = 0; i < nd; i++) {
        n *= (size_t)shape[i];
        ok = ok && t->shape[i] == shape[i];
    }
    if (!ok) {
        char a[96], b[96];
        fmt_shape(a, sizeof a, t->ndim, t->shape);
        fmt_shape(b, sizeof b, nd, shape);
        vm_errf(m->err, sizeof m->err, "%s: int8 tensor '%s' has shape %s, expected %s", src->ck->path, name, a, b);
        *fail = 1;
        return NULL;
    }
    size_t K = (size_t)shape[nd - 1], rows = n / K;
    const int8_t *w8 = int8_param(m, src, name, (int)shape[0], (int)(n / (size_t)shape[0]), fail);
    if (!w8) return NULL;
    char sn[200];
    snprintf(sn, sizeof sn, "%s_scale", name);
    const float *sc = scales(m, src, sn, (int)rows, fail);
    if (!sc) return NULL;
    float *w = dequant_rows(m, src, name, w8, sc, rows, K, fail);
    if (!w) return NULL;
    if (record(m, src, name, w, nd, shape)) *fail = 1;
    return *fail ? NULL : w;
}

/* A dynamic INT8 layer (`calibrate --dynamic`): s8 weights with
 * ".weight_scale" and the marker ".input_dynamic" (1) instead of an input
 * scale: its activations are quantized per row at run time. */
static vm_qlinear *dynamic_qlinear(vm_model *m, struct vm_wsrc *src, const char *prefix, const int8_t *w, int N, int K,
                                   int *fail) {
    char nm[200];
    snprintf(nm, sizeof nm, "%s.input_dynamic", prefix);
    const float *mk = param(m, src, nm, 1, (int64_t[]){1}, INIT_ZEROS, 0, 0, fail);
    if (*fail) return NULL;
    if (mk[0] != 1.0f) {
        vm_errf(m->err, sizeof m->err, "%s: '%s' must be 1", src->ck->path, nm);
        *fail = 1;
        return NULL;
    }
    vm_qlinear *q = try_alloc(m, src, sizeof(vm_qlinear), prefix);
    int32_t *ws = q ? try_alloc(m, src, (size_t)N * sizeof(int32_t), prefix) : NULL;
    if (!ws) {
        *fail = 1;
        return NULL;
    }
    for (int n = 0; n < N; n++) {
        int32_t t = 0;
        for (int k = 0; k < K; k++) t += w[(size_t)n * K + k];
        ws[n] = t;
    }
    q->w = w;
    q->N = N;
    q->K = K;
    q->dynamic = 1;
    q->w_sum = ws;
    snprintf(nm, sizeof nm, "%s.weight_scale", prefix);
    q->w_scale = scales(m, src, nm, N, fail);
    if (*fail) return NULL;
    m->quantized = 1;
    return q;
}

/* A calibrated INT8 linear layer "<prefix>.weight" (s8) with
 * ".weight_scale", ".input_scale", ".input_zero_point"; NULL if FP32.
 * An s8 weight without input scale is INT8 storage only: it is
 * dequantised into *w_fp32 and the layer runs in FP32. */
static vm_qlinear *qlinear(vm_model *m, struct vm_wsrc *src, const char *prefix, int N, int K, const float **w_fp32,
                           int *fail) {
    char nm[200];
    snprintf(nm, sizeof nm, "%s.weight", prefix);
    const int8_t *w = int8_param(m, src, nm, N, K, fail);
    if (!w) return NULL;
    snprintf(nm, sizeof nm, "%s.input_scale", prefix);
    char dn[200];
    snprintf(dn, sizeof dn, "%s.input_dynamic", prefix);
    const int dynamic = !vm_checkpoint_find(src->ck, nm) && vm_checkpoint_find(src->ck, dn);
    if (dynamic) return dynamic_qlinear(m, src, prefix, w, N, K, fail);
    if (!vm_checkpoint_find(src->ck, nm)) {
        snprintf(nm, sizeof nm, "%s.weight_scale", prefix);
        const float *sc = scales(m, src, nm, N, fail);
        if (!*fail && charge(m, src, prefix, (uint64_t)N * K * sizeof(float))) *fail = 1;
        if (*fail) return NULL;
        float *f = try_alloc(m, src, (size_t)N * K * sizeof(float), prefix);
        if (!f) {
            *fail = 1;
            return NULL;
        }
        for (size_t i = 0; i < (size_t)N * K; i++) f[i] = (float)w[i] * sc[i / (size_t)K];
        *w_fp32 = f;
        m->quantized = 1; /* not re-savable */
        return NULL;
    }
    vm_qlinear *q = try_alloc(m, src, sizeof(vm_qlinear), prefix);
    if (!q) {
        *fail = 1;
        return NULL;
    }
    q->w = w;
    q->N = N;
    q->K = K;
    snprintf(nm, sizeof nm, "%s.weight_scale", prefix);
    q->w_scale = scales(m, src, nm, N, fail);
    snprintf(nm, sizeof nm, "%s.input_scale", prefix);
    const float *as = scales(m, src, nm, 1, fail);
    snprintf(nm, sizeof nm, "%s.input_zero_point", prefix);
    const float *zp = *fail ? NULL : param(m, src, nm, 1, (int64_t[]){1}, INIT_ZEROS, 0, 0, fail);
    if (*fail) return NULL;
    if (!(zp[0] >= 0.0f && zp[0] <= 255.0f) || zp[0] != floorf(zp[0])) {
        vm_errf(m->err, sizeof m->err, "%s: '%s' must be an integer in [0, 255]", src->ck->path, nm);
        *fail = 1;
        return NULL;
    }
    q->a_scale = as[0];
    q->a_zp = (int)zp[0];
    /* Optional (files calibrated since the XNNPACK path): the output's
     * range, where XNNPACK's INT8 operators requantize to s8. */
    snprintf(nm, sizeof nm, "%s.output_scale", prefix);
    if (vm_checkpoint_find(src->ck, nm)) {
        const float *os = scales(m, src, nm, 1, fail);
        snprintf(nm, sizeof nm, "%s.output_zero_point", prefix);
        const float *oz = *fail ? NULL : param(m, src, nm, 1, (int64_t[]){1}, INIT_ZEROS, 0, 0, fail);
        if (*fail) return NULL;
        if (!(oz[0] >= 0.0f && oz[0] <= 255.0f) || oz[0] != floorf(oz[0])) {
            vm_errf(m->err, sizeof m->err, "%s: '%s' must be an integer in [0, 255]", src->ck->path, nm);
            *fail = 1;
            return NULL;
        }
        q->o_scale = os[0];
        q->o_zp = (int)oz[0];
    }
    m->quantized = 1;
    return q;
}

static void ln(vm_model *m, struct vm_wsrc *src, vm_ln *out, const char *prefix, int C, int *failp) {
    int fail = 0;
    char nm[160];
    snprintf(nm, sizeof nm, "%s.weight", prefix);
    out->w = P(nm, 1, S(C), INIT_ONES, 0);
    snprintf(nm, sizeof nm, "%s.bias", prefix);
    if (!fail) out->b = P(nm, 1, S(C), INIT_ZEROS, 0);
    out->C = C;
    *failp |= fail;
}

static void conv(vm_model *m, struct vm_wsrc *src, vm_conv *c, const char *prefix, int cin, int cout, int k,
                 int stride, int pad, int *failp) {
    int fail = 0;
    char nm[160];
    snprintf(nm, sizeof nm, "%s.weight", prefix);
    const int8_t *w8 = int8_param(m, src, nm, cout, cin * k * k, &fail);
    char in_nm[200];
    snprintf(in_nm, sizeof in_nm, "%s.input_scale", prefix);
    if (w8 && vm_checkpoint_find(src->ck, in_nm)) { /* INT8 convolution */
        snprintf(nm, sizeof nm, "%s.weight_scale", prefix);
        c->w_scale = scales(m, src, nm, cout, &fail);
        const float *as = scales(m, src, in_nm, 1, &fail);
        snprintf(nm, sizeof nm, "%s.input_zero_point", prefix);
        const float *zp = fail ? NULL : param(m, src, nm, 1, (int64_t[]){1}, INIT_ZEROS, 0, 0, &fail);
        if (!fail && (!(zp[0] >= 0.0f && zp[0] <= 255.0f) || zp[0] != floorf(zp[0]))) {
            vm_errf(m->err, sizeof m->err, "%s: '%s' must be an integer in [0, 255]", src->ck->path, nm);
            fail = 1;
        }
        if (!fail) {
            c->w8 = w8;
            c->a_scale = as[0];
            c->a_zp = (int)zp[0];
            m->quantized = 1;
        }
    } else if (w8) { /* INT8 storage only: dequantised once here */
        snprintf(nm, sizeof nm, "%s.weight_scale", prefix);
        const float *sc = scales(m, src, nm, cout, &fail);
        if (!fail) c->w = dequant_rows(m, src, prefix, w8, sc, (size_t)cout, (size_t)cin * k * k, &fail);
    } else if (!fail) {
        c->w = P(nm, 4, S(cout, cin, k, k), INIT_LINEAR, cin * k * k);
    }
    snprintf(nm, sizeof nm, "%s.bias", prefix);
    if (!fail) c->b = P(nm, 1, S(cout), INIT_LINEAR, cin * k * k);
    c->cin = cin;
    c->cout = cout;
    c->k = k;
    c->stride = stride;
    c->pad = pad;
    *failp |= fail;
}

static int bind_block(vm_model *m, struct vm_wsrc *src, vm_block *b, int s, int j) {
    const vm_info *I = &m->info;
    int C = I->dims[s], D = I->d_inner[s], R = I->dt_rank[s], N = I->d_state, Hd = I->mlp_hidden[s];
    int fail = 0;
    char p[96], nm[160];
    snprintf(p, sizeof p, "layers.%d.blocks.%d", s, j);
#define NM(suffix) (snprintf(nm, sizeof nm, "%s.%s", p, suffix), nm)
    ln(m, src, &b->norm, NM("norm"), C, &fail);
    if (!fail) b->q_in = qlinear(m, src, NM("op.in_proj"), D * (I->z_gate ? 2 : 1), C, &b->in_proj_w, &fail);
    if (!fail && !b->q_in && !b->in_proj_w) b->in_proj_w = P(NM("op.in_proj.weight"), 2, S(D * (I->z_gate ? 2 : 1), C), INIT_LINEAR, C);
    if (!fail) b->conv_w = P(NM("op.conv2d.weight"), 4, S(D, 1, 3, 3), INIT_LINEAR, 9);
    if (!fail && I->conv_bias) b->conv_b = P(NM("op.conv2d.bias"), 1, S(D), INIT_LINEAR, 9);
    if (!fail) b->x_proj_w = s8_rows_param(m, src, NM("op.x_proj_weight"), 3, S(4, R + 2 * N, D), &fail);
    if (!fail && !b->x_proj_w) b->x_proj_w = P(NM("op.x_proj_weight"), 3, S(4, R + 2 * N, D), INIT_LINEAR, D);
    if (!fail) b->dt_w = s8_rows_param(m, src, NM("op.dt_projs_weight"), 3, S(4, D, R), &fail);
    if (!fail && !b->dt_w) b->dt_w = P(NM("op.dt_projs_weight"), 3, S(4, D, R), INIT_LINEAR, R);
    if (!fail) b->dt_b = P(NM("op.dt_projs_bias"), 2, S(4, D), INIT_DTBIAS, 0);
    float *alogs = NULL;
    if (!fail) alogs = P(NM("op.A_logs"), 2, S(4 * D, N), INIT_ALOGS, 0);
    if (!fail) b->Ds = P(NM("op.Ds"), 1, S(4 * D), INIT_ONES, 0);
    if (!fail) ln(m, src, &b->out_norm, NM("op.out_norm"), D, &fail);
    if (!fail) b->q_out = qlinear(m, src, NM("op.out_proj"), C, D, &b->out_proj_w, &fail);
    if (!fail && !b->q_out && !b->out_proj_w) b->out_proj_w = P(NM("op.out_proj.weight"), 2, S(C, D), INIT_LINEAR, D);
    if (!fail && Hd) {
        ln(m, src, &b->norm2, NM("norm2"), C, &fail);
        if (!fail) b->q_fc1 = qlinear(m, src, NM("mlp.fc1"), Hd, C, &b->fc1_w, &fail);
        if (!fail && !b->q_fc1 && !b->fc1_w) b->fc1_w = P(NM("mlp.fc1.weight"), 2, S(Hd, C), INIT_LINEAR, C);
        if (!fail) b->fc1_b = P(NM("mlp.fc1.bias"), 1, S(Hd), INIT_LINEAR, C);
        if (!fail) b->q_fc2 = qlinear(m, src, NM("mlp.fc2"), C, Hd, &b->fc2_w, &fail);
        if (!fail && !b->q_fc2 && !b->fc2_w) b->fc2_w = P(NM("mlp.fc2.weight"), 2, S(C, Hd), INIT_LINEAR, Hd);
        if (!fail) b->fc2_b = P(NM("mlp.fc2.bias"), 1, S(C), INIT_LINEAR, Hd);
    }
#undef NM
    if (fail) return -1;
    /* A = -exp(A_logs), once at load time; A_logs is kept for saving. */
    if (!(b->A = try_alloc(m, src, (size_t)4 * D * N * sizeof(float), "A"))) return -1;
    for (size_t i = 0; i < (size_t)4 * D * N; i++) b->A[i] = -expf(alogs[i]);
    return 0;
}

static int bind_all(vm_model *m, struct vm_wsrc *src) {
    vm_info *I = &m->info;
    int fail = 0;
    if (I->patch_embed_version == 1) {
        conv(m, src, &m->pe_conv1, "patch_embed.0", 3, I->dims[0], I->patch_size, I->patch_size, 0, &fail);
        if (!fail) ln(m, src, &m->pe_norm1, "patch_embed.2", I->dims[0], &fail);
    } else {
        int half = I->dims[0] / 2;
        if (src->ck) { /* read the hidden width, never assume C/2 */
            const vm_ckpt_tensor *t = vm_checkpoint_find(src->ck, "patch_embed.0.weight");
            if (t && t->ndim == 4) half = (int)t->shape[0]; /* checked by detect() */
        }
        int k = I->patch_size / 2 + 1, st = I->patch_size / 2;
        conv(m, src, &m->pe_conv1, "patch_embed.0", 3, half, k, st, 1, &fail);
        if (!fail) ln(m, src, &m->pe_norm1, "patch_embed.2", half, &fail);
        if (!fail) conv(m, src, &m->pe_conv2, "patch_embed.5", half, I->dims[0], k, st, 1, &fail);
        if (!fail) ln(m, src, &m->pe_norm2, "patch_embed.7", I->dims[0], &fail);
    }
    for (int s = 0; s < 4 && !fail; s++) {
        vm_stage *st = &m->st[s];
        st->C = I->dims[s];
        st->depth = I->depths[s];
        st->d_inner = I->d_inner[s];
        st->R = I->dt_rank[s];
        st->hidden = I->mlp_hidden[s];
        st->blocks = calloc((size_t)st->depth, sizeof *st->blocks);
        if (!st->blocks) {
            vm_errf(m->err, sizeof m->err, "%s: out of memory loading the model", src->what);
            fail = 1;
            break;
        }
        for (int j = 0; j < st->depth && !fail; j++) fail = bind_block(m, src, &st->blocks[j], s, j) != 0;
        if (fail) break;
        char nm[96];
        if (s < 3) {
            st->C_next = I->dims[s + 1];
            if (I->downsample_version == 1) {
                snprintf(nm, sizeof nm, "layers.%d.downsample.norm", s);
                ln(m, src, &st->ds_norm, nm, 4 * st->C, &fail);
                snprintf(nm, sizeof nm, "layers.%d.downsample.reduction", s);
                if (!fail) st->q_ds = qlinear(m, src, nm, st->C_next, 4 * st->C, &st->ds_reduction, &fail);
                snprintf(nm, sizeof nm, "layers.%d.downsample.reduction.weight", s);
                if (!fail && !st->q_ds && !st->ds_reduction) st->ds_reduction = P(nm, 2, S(st->C_next, 4 * st->C), INIT_LINEAR, 4 * st->C);
            } else {
                snprintf(nm, sizeof nm, "layers.%d.downsample.1", s);
                conv(m, src, &st->ds_conv, nm, st->C, st->C_next, 3, 2, 1, &fail);
                snprintf(nm, sizeof nm, "layers.%d.downsample.3", s);
                if (!fail) ln(m, src, &st->ds_norm, nm, st->C_next, &fail);
            }
        }
        if (!fail && I->is_backbone) {
            snprintf(nm, sizeof nm, "outnorm%d", s);
            ln(m, src, &st->outnorm, nm, st->C, &fail);
        }
    }
    if (!fail && I->num_classes > 0) {
        ln(m, src, &m->cls_norm, "classifier.norm", I->dims[3], &fail);
        if (!fail) m->q_head = qlinear(m, src, "classifier.head", I->num_classes, I->dims[3], &m->head_w, &fail);
        if (!fail && !m->q_head && !m->head_w) m->head_w = P("classifier.head.weight", 2, S(I->num_classes, I->dims[3]), INIT_LINEAR, I->dims[3]);
        if (!fail) m->head_b = P("classifier.head.bias", 1, S(I->num_classes), INIT_LINEAR, I->dims[3]);
    }
    I->params = src->params;
    return fail ? -1 : 0;
}

/* ---- architecture detection ------------------------------------------ */

static const vm_ckpt_tensor *find(const vm_checkpoint *c, const char *fmt, int a, int b) {
    char nm[160];
    snprintf(nm, sizeof nm, fmt, a, b);
    return vm_checkpoint_find(c, nm);
}

static int need(vm_model *m, const vm_checkpoint *c, const vm_ckpt_tensor *t, const char *fmt, int a, int b, int nd) {
    if (t && t->ndim == nd && !t->problem) return 0;
    char nm[160];
    snprintf(nm, sizeof nm, fmt, a, b);
    if (!t) return vm_errf(m->err, sizeof m->err, "%s: missing key '%s' (cannot detect the architecture)", c->path, nm);
    if (t->problem) return vm_errf(m->err, sizeof m->err, "%s: tensor '%s': %s", c->path, nm, t->problem);
    return vm_errf(m->err, sizeof m->err, "%s: tensor '%s' has %d dimensions, expected %d", c->path, nm, t->ndim, nd);
}

/* Upper bounds that no real VMamba comes near; they keep a hostile file
 * from making us allocate absurd buffers from its shapes. */
#define MAX_WIDTH 65536
#define MAX_DEPTH 1024
#define MAX_STATE VM_MAX_D_STATE

/* Shape entry i of t as an int; a size that does not fit (a 64-bit shape
 * from a hostile or broken file) is an error naming the tensor, never a
 * silently truncated or negative width. */
static int dim_of(vm_model *m, const vm_checkpoint *c, const vm_ckpt_tensor *t, int i, int *out) {
    if (t->shape[i] < 0 || t->shape[i] > INT_MAX)
        return vm_errf(m->err, sizeof m->err, "%s: tensor '%s' has a dimension of %lld, too large for any model", c->path,
                       t->name, (long long)t->shape[i]);
    *out = (int)t->shape[i];
    return 0;
}

static int detect(vm_model *m, const vm_checkpoint *c) {
    vm_info *I = &m->info;
    memset(I, 0, sizeof *I);
    const vm_ckpt_tensor *t = vm_checkpoint_find(c, "patch_embed.0.weight");
    if (need(m, c, t, "patch_embed.0.weight", 0, 0, 4)) return -1;
    int pe_k = 0;
    if (dim_of(m, c, t, 2, &pe_k)) return -1;
    if (vm_checkpoint_find(c, "patch_embed.5.weight")) {
        I->patch_embed_version = 2;
        I->patch_size = 2 * (pe_k - 1); /* k = stride + 1, two stride-s convs */
    } else {
        I->patch_embed_version = 1;
        I->patch_size = pe_k;
    }
    if (pe_k < 1 || pe_k > 64 || I->patch_size < 1) return vm_errf(m->err, sizeof m->err, "%s: unsupported patch embed kernel %d", c->path, pe_k);
    if (t->shape[0] < 1 || t->shape[0] > MAX_WIDTH) /* bind_all reads the v2 stem's hidden width from it */
        return vm_errf(m->err, sizeof m->err, "%s: tensor 'patch_embed.0.weight' has an implausible width %lld", c->path,
                       (long long)t->shape[0]);
    for (int s = 0; s < 4; s++) {
        int d = 0;
        while (d <= MAX_DEPTH && find(c, "layers.%d.blocks.%d.norm.weight", s, d)) d++;
        if (d == 0) return vm_errf(m->err, sizeof m->err, "%s: missing key 'layers.%d.blocks.0.norm.weight' (expected 4 stages)", c->path, s);
        if (d > MAX_DEPTH) return vm_errf(m->err, sizeof m->err, "%s: stage %d has too many blocks", c->path, s);
        I->depths[s] = d;
        t = find(c, "layers.%d.blocks.%d.norm.weight", s, 0);
        if (need(m, c, t, "layers.%d.blocks.%d.norm.weight", s, 0, 1)) return -1;
        if (dim_of(m, c, t, 0, &I->dims[s])) return -1;
        t = find(c, "layers.%d.blocks.%d.op.conv2d.weight", s, 0);
        if (need(m, c, t, "layers.%d.blocks.%d.op.conv2d.weight", s, 0, 4)) return -1;
        if (dim_of(m, c, t, 0, &I->d_inner[s])) return -1;
        t = find(c, "layers.%d.blocks.%d.op.dt_projs_weight", s, 0);
        if (need(m, c, t, "layers.%d.blocks.%d.op.dt_projs_weight", s, 0, 3)) return -1;
        if (dim_of(m, c, t, 2, &I->dt_rank[s])) return -1;
        t = find(c, "layers.%d.blocks.%d.op.A_logs", s, 0);
        if (need(m, c, t, "layers.%d.blocks.%d.op.A_logs", s, 0, 2)) return -1;
        if (s == 0) {
            if (dim_of(m, c, t, 1, &I->d_state)) return -1;
        } else if (t->shape[1] != I->d_state)
            return vm_errf(m->err, sizeof m->err, "%s: stage %d has d_state %lld, stage 0 has %d", c->path, s, (long long)t->shape[1], I->d_state);
        t = find(c, "layers.%d.blocks.%d.op.in_proj.weight", s, 0);
        if (need(m, c, t, "layers.%d.blocks.%d.op.in_proj.weight", s, 0, 2)) return -1;
        int z = t->shape[0] == 2 * (int64_t)I->d_inner[s];
        if (s == 0) I->z_gate = z;
        else if (z != I->z_gate) return vm_errf(m->err, sizeof m->err, "%s: stages disagree on the z gate", c->path);
        if (s == 0) I->conv_bias = find(c, "layers.%d.blocks.%d.op.conv2d.bias", s, 0) != NULL;
        t = find(c, "layers.%d.blocks.%d.mlp.fc1.weight", s, 0);
        I->mlp_hidden[s] = 0;
        if (t && t->ndim >= 2 && dim_of(m, c, t, 0, &I->mlp_hidden[s])) return -1;
        if (I->dims[s] < 1 || I->dims[s] > MAX_WIDTH || I->d_inner[s] < 1 || I->d_inner[s] > MAX_WIDTH ||
            I->dt_rank[s] < 1 || I->dt_rank[s] > MAX_WIDTH || I->mlp_hidden[s] < 0 || I->mlp_hidden[s] > 16 * MAX_WIDTH ||
            I->d_state < 1 || I->d_state > MAX_STATE)
            return vm_errf(m->err, sizeof m->err, "%s: implausible layer sizes in stage %d", c->path, s);
    }
    if (vm_checkpoint_find(c, "layers.0.downsample.reduction.weight")) I->downsample_version = 1;
    else if (vm_checkpoint_find(c, "layers.0.downsample.1.weight")) I->downsample_version = 3;
    else return vm_errf(m->err, sizeof m->err, "%s: missing key 'layers.0.downsample.1.weight' (or '.reduction.weight'): unknown downsample", c->path);
    t = vm_checkpoint_find(c, "classifier.head.weight");
    if (t && t->ndim == 2 && dim_of(m, c, t, 0, &I->num_classes)) return -1;
    I->is_backbone = vm_checkpoint_find(c, "outnorm0.weight") != NULL;
    if (!I->num_classes && !I->is_backbone)
        return vm_errf(m->err, sizeof m->err, "%s: missing key 'classifier.head.weight' (and no 'outnorm0.weight' for a backbone)", c->path);
    if (I->num_classes > 10000000) return vm_errf(m->err, sizeof m->err, "%s: implausible class count %d", c->path, I->num_classes);
    if (I->patch_embed_version == 1 && I->downsample_version == 1 && !I->mlp_hidden[0] && I->z_gate) I->family = VM_FAMILY_V0;
    else if (I->patch_embed_version == 2 && I->downsample_version == 3 && I->mlp_hidden[0] && !I->z_gate) I->family = VM_FAMILY_V2;
    else if (I->patch_embed_version == 2 && I->downsample_version == 3 && I->z_gate) I->family = VM_FAMILY_V2Z;
    else I->family = VM_FAMILY_OTHER;
    return 0;
}

/* Checkpoints written by the January 2024 code use older module names; map
 * them the way the official VSSM._load_from_state_dict does. */
static int rename_legacy(vm_checkpoint *c, char *err, size_t errlen) {
    static const struct { const char *from, *to; } map[] = {
        {"patch_embed.proj.", "patch_embed.0."}, {"patch_embed.norm.", "patch_embed.2."},
        {".ln_1.", ".norm."}, {".self_attention.", ".op."}, {"norm.", "classifier.norm."},
        {"head.", "classifier.head."}};
    for (size_t i = 0; i < c->n; i++) {
        for (size_t r = 0; r < sizeof map / sizeof *map; r++) {
            char *name = c->t[i].name, *hit;
            int prefix_only = map[r].from[0] != '.';
            if (prefix_only) hit = strncmp(name, map[r].from, strlen(map[r].from)) == 0 ? name : NULL;
            else hit = strstr(name, map[r].from);
            if (!hit) continue;
            size_t fl = strlen(map[r].from), tl = strlen(map[r].to), nl = strlen(name);
            char *nn = malloc(nl - fl + tl + 1);
            if (!nn) return vm_errf(err, errlen, "%s: out of memory renaming legacy keys", c->path);
            memcpy(nn, name, (size_t)(hit - name));
            memcpy(nn + (hit - name), map[r].to, tl);
            strcpy(nn + (hit - name) + tl, hit + fl);
            free(name);
            c->t[i].name = nn;
        }
    }
    return 0;
}

static vm_model *model_new(void) {
    return calloc(1, sizeof(vm_model)); /* NULL: the caller reports out of memory */
}

static vm_model *finish(vm_model *m, struct vm_wsrc *src, char *err, size_t errlen) {
    if (bind_all(m, src)) {
        vm_errf(err, errlen, "%s", m->err);
        vm_model_free(m);
        return NULL;
    }
    vm_arch_finish(m);
    /* VMAMBA_PACK=0 keeps the plain-weight GEMM path (for side-by-side
     * benchmarks and bug reports, like VMAMBA_ISA). */
    const char *pk = getenv("VMAMBA_PACK");
    m->no_pack = pk && !strcmp(pk, "0");
    /* GEMMs through XNNPACK or oneDNN: by the CPU, or VMAMBA_GEMM. A
     * forced choice this build or CPU cannot honour is an error, not a
     * silent fallback (tests A/B the two paths with it). */
    char ge[256];
    int xnn = vm_gemm_use_xnnpack(ge, sizeof ge);
    if (xnn < 0) {
        vm_errf(err, errlen, "%s", ge);
        vm_model_free(m);
        return NULL;
    }
    m->xnn = xnn && !m->no_pack;
    /* Pack the FP32 linear weights for the CPU now, once: the model is
     * read-only from here on (contexts only read the packs). */
    int packing = !m->no_pack;
    if (vm_weights_pack(m)) {
        /* Unpacked, this only numbers the layers' plan slots (INT8 layers
         * need theirs): a failure there is an error, not a slower path (it
         * was ignored, and an INT8 model would run with its slots unset). */
        if (!packing) {
            vm_errf(err, errlen, "%s: %s", src->what ? src->what : "model", m->err);
            vm_model_free(m);
            return NULL;
        }
        /* Still correct on the plain-weight path, only slower: say so. */
        if (!src->quiet) fprintf(stderr, "vmamba: warning: %s; using unpacked GEMMs\n", m->err);
        m->no_pack = 1;
        m->err[0] = 0;
        if (vm_weights_pack(m)) {
            vm_errf(err, errlen, "%s: %s", src->what ? src->what : "model", m->err);
            vm_model_free(m);
            return NULL;
        }
    }
    return m;
}

/* ---- everything else in the checkpoint --------------------------------- */

static const struct { const char *prefix; unsigned bit; } head_prefixes[] = {
    {"classifier.", VM_HEAD_CLASSIFIER}, {"decode_head.", VM_HEAD_UPERNET}, {"auxiliary_head.", VM_HEAD_AUXILIARY},
    {"neck.", VM_HEAD_FPN}, {"rpn_head.", VM_HEAD_RPN}, {"roi_head.", VM_HEAD_ROI}};

static unsigned head_of(const char *name) {
    for (size_t i = 0; i < sizeof head_prefixes / sizeof *head_prefixes; i++)
        if (!strncmp(name, head_prefixes[i].prefix, strlen(head_prefixes[i].prefix))) return head_prefixes[i].bit;
    return 0;
}

/* Keep every tensor the backbone did not bind, under its full checkpoint
 * name: the heads' weights (bound later by their modules through
 * vm_model_weights) and keys the engine does not know (listed, never
 * dropped). Float tensors are copied as float32; others (BatchNorm's
 * num_batches_tracked...) are kept by name and shape only. */
static int keep_rest(vm_model *m, const vm_checkpoint *ck, struct vm_wsrc *src) {
    size_t n = 0;
    for (size_t i = 0; i < ck->n; i++) n += !ck->t[i].used;
    for (size_t i = 0; i < m->nparams; i++) m->heads |= head_of(m->params[i].name);
    if (!n) return 0;
    /* Kept tensors come from the file: allocated without aborting and
     * charged to the same budget as the backbone's weights. */
    if (!(m->kept = calloc(n, sizeof *m->kept)))
        return vm_errf(m->err, sizeof m->err, "%s: out of memory (%zu bytes) for the tensor table", ck->path, n * sizeof *m->kept);
    for (size_t i = 0; i < ck->n; i++) {
        const vm_ckpt_tensor *t = &ck->t[i];
        if (t->used) continue;
        vm_kept *k = &m->kept[m->nkept++];
        if (!(k->name = strdup(t->name))) return vm_errf(m->err, sizeof m->err, "%s: out of memory loading the model", ck->path);
        unsigned h = head_of(t->name);
        m->heads |= h;
        k->unknown = h == 0 || h == VM_HEAD_CLASSIFIER; /* the classifier binds all it knows */
        k->ndim = t->ndim < 8 ? t->ndim : 8;
        memcpy(k->shape, t->shape, (size_t)k->ndim * sizeof *k->shape);
        int is_float = t->dtype == PK_DT_F32 || t->dtype == PK_DT_F16 || t->dtype == PK_DT_BF16 || t->dtype == PK_DT_F64;
        if (t->dtype == PK_DT_I8 && !t->problem && t->ndim >= 1 && t->ndim <= 4) { /* a head's INT8 conv weight */
            if (vm_ckpt_check_layout(ck, t, m->err, sizeof m->err)) return -1;
            int64_t numel = vm_ckpt_numel(t);
            size_t bytes = numel > 0 ? (size_t)numel : 1;
            if (charge(m, src, t->name, bytes)) return -1;
            int8_t *p = try_alloc(m, src, bytes, t->name);
            if (!p || vm_ckpt_read_i8(ck, t, p, m->err, sizeof m->err)) return -1;
            k->i8 = p;
            continue;
        }
        if (!is_float || t->problem || t->ndim > 8) continue;
        if (vm_ckpt_validate(ck, t, m->err, sizeof m->err)) return -1;
        int64_t numel = vm_ckpt_numel(t);
        size_t bytes = (numel > 0 ? (size_t)numel : 1) * sizeof(float);
        if (charge(m, src, t->name, bytes)) return -1;
        float *p = try_alloc(m, src, bytes, t->name);
        if (!p || vm_ckpt_read_f32(ck, t, p, m->err, sizeof m->err)) return -1;
        k->data = p;
    }
    return 0;
}

static int weights_get(void *user, const char *name, vm_tensor_view *out) {
    const vm_model *m = user;
    for (size_t i = 0; i < m->nkept; i++) {
        const vm_kept *k = &m->kept[i];
        if (strcmp(k->name, name) != 0) continue;
        if (!k->data || k->ndim > 4) return -1;
        out->data = k->data;
        out->ndim = k->ndim;
        memset(out->shape, 0, sizeof out->shape);
        memcpy(out->shape, k->shape, (size_t)k->ndim * sizeof *k->shape);
        return 0;
    }
    for (size_t i = 0; i < m->nparams; i++) {
        const vm_param *p = &m->params[i];
        if (strcmp(p->name, name) != 0) continue;
        if (!p->data) return -1; /* packed for the backbone's matmuls */
        out->data = p->data;
        out->ndim = p->ndim;
        memset(out->shape, 0, sizeof out->shape);
        memcpy(out->shape, p->shape, (size_t)p->ndim * sizeof *p->shape);
        return 0;
    }
    return -1;
}

static int weights_get_i8(void *user, const char *name, const int8_t **data, int *ndim, int64_t shape[4]) {
    const vm_model *m = user;
    for (size_t i = 0; i < m->nkept; i++) {
        const vm_kept *k = &m->kept[i];
        if (strcmp(k->name, name) != 0) continue;
        if (!k->i8 || k->ndim > 4) return -1;
        *data = k->i8;
        *ndim = k->ndim;
        memset(shape, 0, 4 * sizeof *shape);
        memcpy(shape, k->shape, (size_t)k->ndim * sizeof *k->shape);
        return 0;
    }
    return -1;
}

void vm_model_weights(const vm_model *m, vm_weights_src *out) {
    out->user = (void *)m;
    out->get = weights_get;
    out->get_i8 = weights_get_i8;
    out->path = m->path ? m->path : "(preset)";
}

unsigned vm_model_heads(const vm_model *m) { return m->heads; }

size_t vm_model_tensor_count(const vm_model *m) { return m->ntensors; }

const char *vm_model_unknown_key(const vm_model *m, size_t i) {
    for (size_t k = 0; k < m->nkept; k++)
        if (m->kept[k].unknown && i-- == 0) return m->kept[k].name;
    return NULL;
}

vm_model *vm_model_from_checkpoint(vm_checkpoint *ck, const vm_load_opts *opts, char *err, size_t errlen) {
    const char *path = ck->path;
    vm_model *m = NULL;
    if (rename_legacy(ck, err, errlen) == 0 && !(m = model_new()))
        vm_errf(err, errlen, "%s: out of memory (%zu bytes)", path, sizeof(vm_model));
    if (!m) return NULL;
    if (detect(m, ck)) {
        vm_errf(err, errlen, "%s", m->err);
        vm_model_free(m);
        return NULL;
    }
    struct vm_wsrc src = {.ck = ck, .quiet = opts ? opts->quiet : 0, .what = ck->path};
    src.budget = (uint64_t)VM_LOAD_MEM_FACTOR * ck->map.size + VM_LOAD_MEM_SLACK;
    if ((ck->metadata && !(m->metadata = strdup(ck->metadata))) || !(m->path = strdup(path))) {
        vm_errf(err, errlen, "%s: out of memory loading the model", path);
        vm_model_free(m);
        return NULL;
    }
    m->ntensors = ck->n;
    m = finish(m, &src, err, errlen);
    if (m && keep_rest(m, ck, &src)) {
        vm_errf(err, errlen, "%s", m->err);
        vm_model_free(m);
        m = NULL;
    }
    return m;
}

vm_model *vm_model_load(const char *path, const vm_load_opts *opts, char *err, size_t errlen) {
    vm_checkpoint ck;
    if (vm_checkpoint_open(&ck, path, opts ? opts->key : NULL, err, errlen)) return NULL;
    vm_model *m = vm_model_from_checkpoint(&ck, opts, err, errlen);
    vm_checkpoint_close(&ck); /* weights were copied: the mapping can go */
    return m;
}

vm_model *vm_model_from_preset(const char *name, int num_classes, uint64_t seed, char *err, size_t errlen) {
    vm_model *m = model_new();
    if (!m) {
        vm_errf(err, errlen, "%s: out of memory (%zu bytes)", name, sizeof(vm_model));
        return NULL;
    }
    if (vm_arch_preset(name, num_classes, &m->info)) {
        vm_errf(err, errlen, "%s: unknown preset (see 'vmamba info --list-presets')", name);
        vm_model_free(m);
        return NULL;
    }
    struct vm_wsrc src = {.ck = NULL, .seed = seed, .what = name};
    m = finish(m, &src, err, errlen);
    if (m) {
        m->ntensors = m->nparams;
        if (m->info.num_classes > 0) m->heads |= VM_HEAD_CLASSIFIER;
    }
    return m;
}

/* A preset as a backbone (outnorm0..3, four features, no classifier) with
 * random weights: the backbone of the dense-prediction presets. */
vm_model *vm_backbone_from_preset(const char *name, uint64_t seed, char *err, size_t errlen) {
    vm_model *m = model_new();
    if (!m) {
        vm_errf(err, errlen, "%s: out of memory (%zu bytes)", name, sizeof(vm_model));
        return NULL;
    }
    if (vm_arch_preset(name, 1, &m->info)) {
        vm_errf(err, errlen, "%s: unknown preset (see 'vmamba info --list-presets')", name);
        free(m);
        return NULL;
    }
    m->info.num_classes = 0;
    m->info.is_backbone = 1;
    struct vm_wsrc src = {.ck = NULL, .seed = seed};
    return finish(m, &src, err, errlen);
}

void vm_model_free(vm_model *m) {
    if (!m) return;
    vm_ctx_free(m->ictx);
    if (m->dev_free) m->dev_free(m); /* every device copy of the weights */
    vm_xnn_release(m);
    for (size_t i = 0; i < m->nflin; i++) vm_wpack_free(m->flin[i].pack);
    free(m->flin);
    for (int s = 0; s < 4; s++) free(m->st[s].blocks);
    for (size_t i = 0; i < m->nallocs; i++) free(m->allocs[i]);
    free(m->allocs);
    for (size_t i = 0; i < m->nparams; i++) free(m->params[i].name);
    free(m->params);
    for (size_t i = 0; i < m->nkept; i++) free(m->kept[i].name);
    free(m->kept);
    free(m->metadata);
    free(m->path);
    free(m);
}

const char *vm_model_error(const vm_model *m) { return m ? m->err : "no model"; }

const char *vm_model_metadata(const vm_model *m) { return m ? m->metadata : NULL; }

int vm_model_save(vm_model *m, const char *path, const char *dtype, const char *metadata_json) {
    if (!m) return -1; /* vm_model_error(NULL) says "no model" */
    if (!path || !*path) return vm_errf(m->err, sizeof m->err, "vm_model_save: no output path");
    if (m->quantized)
        return vm_errf(m->err, sizeof m->err, "an INT8 model cannot be re-saved; convert or calibrate the FP32 model");
    vm_st_dtype dt = VM_ST_F32;
    if (dtype && !strcmp(dtype, "f16")) dt = VM_ST_F16;
    else if (dtype && !strcmp(dtype, "bf16")) dt = VM_ST_BF16;
    else if (dtype && strcmp(dtype, "f32") != 0)
        return vm_errf(m->err, sizeof m->err, "unknown storage dtype '%s' (f32, f16 or bf16)", dtype);
    /* Packed linears are unpacked into temporary copies: the model itself
     * is not changed (another thread may be running it). */
    /* The heads' (and unknown) float tensors go along under their full
     * names, so a saved segmentation or detection model keeps its heads. */
    size_t cap = m->nparams + m->nkept, n = 0;
    vm_st_tensor *t = calloc(cap ? cap : 1, sizeof *t);
    float **tmp = calloc(m->nparams ? m->nparams : 1, sizeof *tmp);
    int rc = 0;
    if (!t || !tmp) rc = vm_errf(m->err, sizeof m->err, "out of memory");
    for (size_t i = 0; i < m->nparams && !rc; i++, n++) {
        t[n].name = m->params[i].name;
        t[n].data = vm_param_values(m, i, &tmp[i]);
        if (!t[n].data) rc = vm_errf(m->err, sizeof m->err, "%s: cannot unpack tensor '%s' (out of memory)", path, t[n].name);
        t[n].ndim = m->params[i].ndim;
        memcpy(t[n].shape, m->params[i].shape, sizeof m->params[i].shape);
    }
    for (size_t i = 0; i < m->nkept && !rc; i++) {
        const vm_kept *k = &m->kept[i];
        if (!k->data || k->ndim > 4) continue; /* non-float (e.g. num_batches_tracked) */
        t[n].name = k->name;
        t[n].data = k->data;
        t[n].ndim = k->ndim;
        memcpy(t[n].shape, k->shape, (size_t)k->ndim * sizeof *k->shape);
        n++;
    }
    if (!rc) {
        char arch[512];
        vm_arch_json(m, arch, sizeof arch);
        const char *kv[6] = {"format", "pt", "vmamba", metadata_json ? metadata_json : "{}", "architecture", arch};
        rc = vm_safetensors_write(path, t, n, dt, kv, 3, m->err, sizeof m->err);
    }
    for (size_t i = 0; tmp && i < m->nparams; i++) free(tmp[i]);
    free(tmp);
    free(t);
    return rc;
}

void vm_model_info(const vm_model *m, vm_info *out) { *out = m->info; }

int vm_arch_finish(vm_model *m) {
    vm_info *I = &m->info;
    I->ssm_ratio = (float)I->d_inner[0] / (float)I->dims[0];
    I->mlp_ratio = (float)I->mlp_hidden[0] / (float)I->dims[0];
    I->gflops_224 = vm_arch_gmacs(m, 224, 224);
    return 0;
}

void vm_model_set_trace(vm_model *m, vm_trace_fn fn, void *user) {
    vm_ctx *c = vm_model_ctx(m);
    if (c) vm_ctx_set_trace(c, fn, user);
}
