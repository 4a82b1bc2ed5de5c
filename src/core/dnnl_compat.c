/* dnnl_compat.c - oneDNN glue. Built against 2.6 (Debian 12); the 3.x
 * branches follow the 3.0 C API (memory descriptors became handles,
 * op descriptors were folded into primitive-descriptor constructors). */
#include "dnnl_compat.h"
#include "util.h"
#include "simd/kernels.h"

#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* One CPU engine for the process (oneDNN engines are thread-safe). Streams
 * are not: each context has its own (vm_dnnl_exec), and one-off reorders
 * at creation time use a stream of their own. */
static dnnl_engine_t g_engine;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_ok;

static void init_engine(void) {
    if (dnnl_engine_create(&g_engine, dnnl_cpu, 0) != dnnl_success) return;
    g_ok = 1;
}

static int engine_ok(char *err, size_t errlen) {
    pthread_once(&g_once, init_engine);
    if (!g_ok) return vm_errf(err, errlen, "oneDNN: cannot create a CPU engine");
    return 0;
}

/* A context's stream and its scratchpad. Every run-time primitive is
 * created with a user-managed scratchpad (dnnl_scratchpad_mode_user), so
 * its temporary memory is this buffer and not one oneDNN ties to the
 * creating thread: a primitive may then run on any thread, one at a time. */
struct vm_dnnl_exec {
    dnnl_stream_t stream;
    void *scratch;
    size_t scratch_bytes;
    uint16_t *cvt;            /* BF16 primitives: their input, converted (bf16 block below) */
    size_t cvt_elems;
};

vm_dnnl_exec *vm_dnnl_exec_new(char *err, size_t errlen) {
    if (engine_ok(err, errlen)) return NULL;
    vm_dnnl_exec *x = calloc(1, sizeof *x);
    if (!x) { vm_errf(err, errlen, "out of memory"); return NULL; }
    if (dnnl_stream_create(&x->stream, g_engine, dnnl_stream_default_flags) != dnnl_success) {
        free(x);
        vm_errf(err, errlen, "oneDNN: cannot create a CPU stream");
        return NULL;
    }
    return x;
}

void vm_dnnl_exec_free(vm_dnnl_exec *x) {
    if (!x) return;
    if (x->stream) dnnl_stream_destroy(x->stream);
    free(x->scratch);
    free(x->cvt);
    free(x);
}

/* Grow the scratchpad to hold `bytes` (64-byte aligned). */
static int exec_reserve(vm_dnnl_exec *x, size_t bytes, char *err, size_t errlen) {
    if (bytes <= x->scratch_bytes) return 0;
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes) != 0) return vm_errf(err, errlen, "out of memory (oneDNN scratchpad of %zu bytes)", bytes);
    free(x->scratch);
    x->scratch = p;
    x->scratch_bytes = bytes;
    return 0;
}

static dnnl_primitive_attr_t user_scratch_attr(void) {
    dnnl_primitive_attr_t attr = NULL;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success) return NULL;
    if (dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) != dnnl_success) {
        dnnl_primitive_attr_destroy(attr);
        return NULL;
    }
    return attr;
}

int vm_gemm(int M, int N, int K, const float *A, int lda, const float *W, int ldw, float *C, int ldc, float beta) {
    if (M == 0 || N == 0) return 0;
    return dnnl_sgemm('N', 'T', M, N, K, 1.0f, A, lda, W, ldw, beta, C, ldc) == dnnl_success ? 0 : -1;
}

int vm_conv_out_size(int in, int k, int stride, int pad) { return (in + 2 * pad - k) / stride + 1; }

#if DNNL_VERSION_MAJOR >= 3
typedef dnnl_memory_desc_t md_t;
#define MD_PTR(x) (x)
static int md_make_t(md_t *md, int nd, const dnnl_dims_t dims, dnnl_data_type_t dt, dnnl_format_tag_t tag) {
    return dnnl_memory_desc_create_with_tag(md, nd, dims, dt, tag) == dnnl_success ? 0 : -1;
}
static void md_free(md_t md) { dnnl_memory_desc_destroy(md); }
#else
typedef dnnl_memory_desc_t md_t;
#define MD_PTR(x) (&(x))
static int md_make_t(md_t *md, int nd, const dnnl_dims_t dims, dnnl_data_type_t dt, dnnl_format_tag_t tag) {
    return dnnl_memory_desc_init_by_tag(md, nd, dims, dt, tag) == dnnl_success ? 0 : -1;
}
static void md_free(md_t md) { (void)md; }
#endif
static int md_make(md_t *md, int nd, const dnnl_dims_t dims, dnnl_format_tag_t tag) {
    return md_make_t(md, nd, dims, dnnl_f32, tag);
}

#if DNNL_VERSION_MAJOR >= 3
typedef const_dnnl_memory_desc_t md_arg;
#else
typedef const dnnl_memory_desc_t *md_arg;
#endif

/* Copy one memory into another of the same logical shape, converting the
 * layout (oneDNN reorder). */
static int reorder_mem(dnnl_memory_t from, dnnl_memory_t to) {
    md_arg a, b;
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t r = NULL;
    int ok = dnnl_memory_get_memory_desc(from, &a) == dnnl_success && dnnl_memory_get_memory_desc(to, &b) == dnnl_success &&
             dnnl_reorder_primitive_desc_create(&rpd, a, g_engine, b, g_engine, NULL) == dnnl_success &&
             dnnl_primitive_create(&r, rpd) == dnnl_success;
    dnnl_stream_t st = NULL;
    if (ok) ok = dnnl_stream_create(&st, g_engine, dnnl_stream_default_flags) == dnnl_success;
    if (ok) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
        ok = dnnl_primitive_execute(r, st, 2, args) == dnnl_success && dnnl_stream_wait(st) == dnnl_success;
    }
    if (st) dnnl_stream_destroy(st);
    if (r) dnnl_primitive_destroy(r);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    return ok ? 0 : -1;
}

/* Reorder weights from the user layout into the one primitive pd wants,
 * once, at creation: this is the "pre-packing" every primitive shares. */
static int pack_weights(const_dnnl_primitive_desc_t pd, md_arg user, const void *data, dnnl_memory_t *out) {
    md_arg wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_memory_t wuser = NULL;
    int ok = dnnl_memory_create(out, wmd, g_engine, DNNL_MEMORY_ALLOCATE) == dnnl_success &&
             dnnl_memory_create(&wuser, user, g_engine, (void *)data) == dnnl_success && !reorder_mem(wuser, *out);
    if (wuser) dnnl_memory_destroy(wuser);
    return ok ? 0 : -1;
}

/* What every run-time primitive holds: src and dst memories created
 * without data (each call sets them), its weights, bias and scratchpad
 * memory (its data is the context's scratchpad, set at each call). */
typedef struct {
    dnnl_primitive_t prim;
    dnnl_memory_t src, wei, bias, dst, scratch;
    vm_dnnl_exec *x;          /* where it runs: a context's, or its own */
    int own_x;
    int cvt_rows, cvt_cols, cvt_ld; /* BF16 primitives: the f32 input (rows x cols, leading
                                        dim ld) is rounded to bf16 into x->cvt first; 0: none */
    float *own_bias;          /* INT8 primitives: the bias divided by the output scales */
} prim_t;

static void cvt_bf16(const float *a, int rows, int cols, int ld, uint16_t *out);

static void prim_release(prim_t *p) {
    if (p->own_x) vm_dnnl_exec_free(p->x);
    if (p->prim) dnnl_primitive_destroy(p->prim);
    if (p->src) dnnl_memory_destroy(p->src);
    if (p->wei) dnnl_memory_destroy(p->wei);
    if (p->bias) dnnl_memory_destroy(p->bias);
    if (p->dst) dnnl_memory_destroy(p->dst);
    if (p->scratch) dnnl_memory_destroy(p->scratch);
    free(p->own_bias);
}

/* oneDNN 2.x adds an f32 bias to the s32 accumulator BEFORE the output
 * scales: dst = scale[o] * (acc + bias[o]) (measured on the AMX, AVX-512
 * and AVX2 kernels; tests/test_quant.c checks it against a scalar
 * reference). The caller's bias is in output units, so the primitive gets
 * bias[o] / scale[o], a copy it owns. NULL bias: NULL. *fail on OOM. */
static inline const float *int8_bias(prim_t *p, const float *bias, const float *scales, int n, int *fail) {
    if (!bias) return NULL;
    if (!(p->own_bias = malloc((size_t)n * sizeof(float)))) {
        *fail = 1;
        return NULL;
    }
    for (int o = 0; o < n; o++) p->own_bias[o] = scales[o] != 0.0f ? bias[o] / scales[o] : 0.0f;
    return p->own_bias;
}

/* Create the primitive, its src/dst/bias memories and the scratchpad
 * memory of pd, and make room for that scratchpad in x (x NULL: the
 * primitive gets a stream and scratchpad of its own). */
static int prim_make(prim_t *p, const_dnnl_primitive_desc_t pd, vm_dnnl_exec *x, const float *bias, md_arg bias_md) {
    if (!x) {
        if (!(x = vm_dnnl_exec_new(NULL, 0))) return -1;
        p->own_x = 1;
    }
    p->x = x;
    if (dnnl_primitive_create(&p->prim, pd) != dnnl_success) return -1;
    if (dnnl_memory_create(&p->src, dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0), g_engine, DNNL_MEMORY_NONE) != dnnl_success)
        return -1;
    if (dnnl_memory_create(&p->dst, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), g_engine, DNNL_MEMORY_NONE) != dnnl_success)
        return -1;
    if (bias && dnnl_memory_create(&p->bias, bias_md, g_engine, (void *)bias) != dnnl_success) return -1;
    md_arg smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t sbytes = smd ? dnnl_memory_desc_get_size(smd) : 0;
    if (sbytes) {
        if (dnnl_memory_create(&p->scratch, smd, g_engine, DNNL_MEMORY_NONE) != dnnl_success) return -1;
        if (exec_reserve(x, sbytes, NULL, 0)) return -1;
    }
    return 0;
}

/* Run a primitive on this call's buffers, on its exec's stream with its
 * exec's scratchpad. */
static int run_prim(prim_t *p, const void *a, void *c) {
    vm_dnnl_exec *x = p->x;
    if (p->cvt_rows) {
        cvt_bf16(a, p->cvt_rows, p->cvt_cols, p->cvt_ld, x->cvt);
        a = x->cvt;
    }
    dnnl_memory_set_data_handle(p->src, (void *)a);
    dnnl_memory_set_data_handle(p->dst, c);
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, p->src}, {DNNL_ARG_WEIGHTS, p->wei}, {DNNL_ARG_DST, p->dst}};
    int n = 3;
    if (p->bias) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, p->bias};
    if (p->scratch) {
        dnnl_memory_set_data_handle(p->scratch, x->scratch);
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, p->scratch};
    }
    if (dnnl_primitive_execute(p->prim, x->stream, n, args) != dnnl_success) return -1;
    return dnnl_stream_wait(x->stream) == dnnl_success ? 0 : -1;
}

/* An INT8 convolution (vm_qconv_create_relu_x) runs oneDNN with no
 * zero point, no scales and no padding of its own: s32 sums into the
 * caller's f32 dst (same element size), then int8_finish applies the zero
 * point, scales, bias and ReLU exactly. Why: oneDNN 2.6's AMX kernel
 * jit_1x1:avx512_core_amx_int8, chosen for 1x1 convolutions with a source
 * zero point, writes past the end of dst when the pixel count is not a
 * multiple of its tile (6x6: 12 pixels too many), which corrupted the heap
 * of INT8 UPerNet heads on Sapphire Rapids (devprobe run, session 6). */
typedef struct {
    int B, H, W, Cin, Cout, pad, OH, OW, relu, zp;
    uint8_t *u8;      /* the quantised input, inside a zp border of pad pixels: (H+2pad)x(W+2pad) */
    int32_t *comp;    /* zp * sum of the channel's weights */
    float *scale;     /* a_scale * w_scale[o] */
    float *bias;      /* NULL: none */
    float inv;        /* 1 / a_scale */
} qconv_post;

struct vm_conv_prim {
    prim_t p;
    qconv_post *q; /* INT8 convolutions only */
};

static void qconv_post_free(qconv_post *q) {
    if (!q) return;
    free(q->u8);
    free(q->comp);
    free(q->scale);
    free(q->bias);
    free(q);
}

void vm_conv_free(vm_conv_prim *c) {
    if (!c) return;
    prim_release(&c->p);
    qconv_post_free(c->q);
    free(c);
}

/* dst holds oneDNN's s32 sums over the zp-padded u8 input; turn them into
 * (acc - zp * sum(w)) * a_scale * w_scale + bias, then ReLU. The int32
 * difference is exact (|acc - comp| <= 255 * 127 * Cin*k*k < 2^31, checked
 * at creation); float from there on, each step rounded once: within the
 * bound test_backend_ops derives against vm_qconv2d_ref's double. */
static void int8_finish(const qconv_post *q, float *dst) {
    size_t n = (size_t)q->B * q->OH * q->OW;
    const int C = q->Cout;
    const float *sc = q->scale, *bi = q->bias;
    const int32_t *cp = q->comp;
#pragma omp parallel for schedule(static) if (n * (size_t)C > 65536)
    for (size_t px = 0; px < n; px++) {
        float *d = dst + px * C;
        const int32_t *s = (const int32_t *)d;
        if (q->relu) {
#pragma omp simd
            for (int o = 0; o < C; o++) {
                float v = (float)(s[o] - cp[o]) * sc[o] + (bi ? bi[o] : 0.0f);
                d[o] = v > 0.0f ? v : 0.0f;
            }
        } else {
#pragma omp simd
            for (int o = 0; o < C; o++) d[o] = (float)(s[o] - cp[o]) * sc[o] + (bi ? bi[o] : 0.0f);
        }
    }
}

/* One convolution primitive for one input shape: NHWC src/dst, OIHW user
 * weights packed at creation, optional bias and fused ReLU. dt is the
 * arithmetic type of src and weights (f32, or bf16 with f32 bias/dst);
 * what names the kind in the error message. */
static vm_conv_prim *conv_make(vm_dnnl_exec *x, int B, int Cin, int H, int W, int Cout, int k, int stride, int pad,
                               const float *weight_oihw, const float *bias, int relu, dnnl_data_type_t dt,
                               const char *what, char *err, size_t errlen) {
    if (engine_ok(err, errlen)) return NULL;
    int OH = vm_conv_out_size(H, k, stride, pad), OW = vm_conv_out_size(W, k, stride, pad);
    if (OH < 1 || OW < 1) { vm_errf(err, errlen, "input %dx%d too small for a %dx%d stride-%d convolution", H, W, k, k, stride); return NULL; }
    vm_conv_prim *c = calloc(1, sizeof *c);
    if (!c) { vm_errf(err, errlen, "out of memory"); return NULL; }
    dnnl_dims_t sd = {B, Cin, H, W}, wd = {Cout, Cin, k, k}, bd = {Cout}, dd = {B, Cout, OH, OW};
    dnnl_dims_t strides = {stride, stride}, padl = {pad, pad}, padr = {pad, pad};
    md_t src_md, wei_any, wei_user, bias_md, dst_md;
    md_make_t(&src_md, 4, sd, dt, dnnl_nhwc);
    md_make_t(&wei_any, 4, wd, dt, dnnl_format_tag_any);
    md_make(&wei_user, 4, wd, dnnl_oihw);
    md_make(&bias_md, 1, bd, dnnl_x);
    md_make(&dst_md, 4, dd, dnnl_nhwc);
    dnnl_primitive_attr_t attr = user_scratch_attr();
    dnnl_primitive_desc_t pd = NULL;
    dnnl_post_ops_t po = NULL;
    int ok = 0;
    if (!attr) goto done;
    if (relu) {
        if (dnnl_post_ops_create(&po) != dnnl_success) goto done;
#if DNNL_VERSION_MAJOR >= 3
        if (dnnl_post_ops_append_eltwise(po, dnnl_eltwise_relu, 0.0f, 0.0f) != dnnl_success) goto done;
#else
        if (dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f) != dnnl_success) goto done;
#endif
        if (dnnl_primitive_attr_set_post_ops(attr, po) != dnnl_success) goto done;
    }
#if DNNL_VERSION_MAJOR >= 3
    if (dnnl_convolution_forward_primitive_desc_create(&pd, g_engine, dnnl_forward_inference, dnnl_convolution_direct,
                                                       src_md, wei_any, bias ? bias_md : NULL, dst_md, strides, NULL,
                                                       padl, padr, attr) != dnnl_success)
        goto done;
#else
    dnnl_convolution_desc_t cd;
    if (dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &src_md, &wei_any,
                                           bias ? &bias_md : NULL, &dst_md, strides, padl, padr) != dnnl_success)
        goto done;
    if (dnnl_primitive_desc_create(&pd, &cd, attr, g_engine, NULL) != dnnl_success) goto done;
#endif
    if (prim_make(&c->p, pd, x, bias, MD_PTR(bias_md))) goto done;
    /* for bf16 the reorder also rounds the f32 weights */
    if (pack_weights(pd, MD_PTR(wei_user), weight_oihw, &c->p.wei)) goto done;
    ok = 1;
done:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    md_free(src_md); md_free(wei_any); md_free(wei_user); md_free(bias_md); md_free(dst_md);
    if (!ok) {
        vm_errf(err, errlen, "oneDNN: cannot create a %s%dx%d convolution%s (%d->%d channels) for input %dx%d", what, k,
                k, relu ? " with ReLU" : "", Cin, Cout, H, W);
        vm_conv_free(c);
        return NULL;
    }
    return c;
}

vm_conv_prim *vm_conv_create_x(vm_dnnl_exec *x, int B, int Cin, int H, int W, int Cout, int k, int stride, int pad,
                             const float *weight_oihw, const float *bias, char *err, size_t errlen) {
    return conv_make(x, B, Cin, H, W, Cout, k, stride, pad, weight_oihw, bias, 0, dnnl_f32, "", err, errlen);
}

/* vm_conv_create_x with a fused ReLU post-op (relu != 0): the ConvModules
 * of the dense heads (conv + folded BatchNorm as bias + ReLU) in one pass. */
vm_conv_prim *vm_conv_create_relu_x(vm_dnnl_exec *x, int B, int Cin, int H, int W, int Cout, int k, int stride, int pad,
                                    const float *weight_oihw, const float *bias, int relu, char *err, size_t errlen) {
    return conv_make(x, B, Cin, H, W, Cout, k, stride, pad, weight_oihw, bias, relu, dnnl_f32, "", err, errlen);
}

vm_conv_prim *vm_conv_create_relu(int B, int Cin, int H, int W, int Cout, int k, int stride, int pad,
                                  const float *weight_oihw, const float *bias, int relu, char *err, size_t errlen) {
    return vm_conv_create_relu_x(NULL, B, Cin, H, W, Cout, k, stride, pad, weight_oihw, bias, relu, err, errlen);
}

#if DNNL_VERSION_MAJOR >= 3
/* The INT8 creators' answer on oneDNN 3 (output scales moved to
 * per-argument scales there; not wired yet). */
static void *int8_needs_dnnl2(char *err, size_t errlen) {
    vm_errf(err, errlen, "the INT8 path needs oneDNN 2.x (this build has %d.%d)", DNNL_VERSION_MAJOR, DNNL_VERSION_MINOR);
    return NULL;
}
#else
/* What every INT8 primitive does once its op is described: the primitive
 * descriptor (attr: scales, zero points, post-ops), the primitive and its
 * memories (bias: already divided by the output scales, or NULL), and the
 * s8 weights packed from the user's layout wusr. 0, or -1 with p partly
 * made (the caller frees it). */
static int int8_prim(prim_t *p, const_dnnl_op_desc_t op, const_dnnl_primitive_attr_t attr, vm_dnnl_exec *x,
                     const float *bias, md_arg bias_md, md_arg wusr, const int8_t *w) {
    dnnl_primitive_desc_t pd = NULL;
    int ok = dnnl_primitive_desc_create(&pd, op, attr, g_engine, NULL) == dnnl_success && !prim_make(p, pd, x, bias, bias_md) &&
             !pack_weights(pd, wusr, w, &p->wei);
    if (pd) dnnl_primitive_desc_destroy(pd);
    return ok ? 0 : -1;
}

/* An INT8 matmul's M x K u8 source (rows lda apart) and its K x N s8
 * weights, in any layout oneDNN picks (wany) and as the caller holds them,
 * row n of W being column n (wusr). */
static void qmatmul_mds(int M, int N, int K, int lda, dnnl_memory_desc_t *src, dnnl_memory_desc_t *wany,
                        dnnl_memory_desc_t *wusr) {
    dnnl_dims_t sd = {M, K}, ss = {lda, 1}, wd = {K, N}, ws = {1, K};
    dnnl_memory_desc_init_by_strides(src, 2, sd, dnnl_u8, ss);
    dnnl_memory_desc_init_by_tag(wany, 2, wd, dnnl_s8, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_strides(wusr, 2, wd, dnnl_s8, ws);
}
#endif

#if DNNL_VERSION_MAJOR >= 3
vm_conv_prim *vm_qconv_create_relu_x(vm_dnnl_exec *x, int B, int Cin, int H, int W, int Cout, int k, int stride, int pad,
                                     const int8_t *w8, const float *w_scale, float a_scale, int zp, const float *bias,
                                     int relu, char *err, size_t errlen) {
    return int8_needs_dnnl2(err, errlen);
}
#else
vm_conv_prim *vm_qconv_create_relu_x(vm_dnnl_exec *x, int B, int Cin, int H, int W, int Cout, int k, int stride, int pad,
                                     const int8_t *w8, const float *w_scale, float a_scale, int zp, const float *bias,
                                     int relu, char *err, size_t errlen) {
    if (engine_ok(err, errlen)) return NULL;
    int OH = vm_conv_out_size(H, k, stride, pad), OW = vm_conv_out_size(W, k, stride, pad);
    if (OH < 1 || OW < 1) { vm_errf(err, errlen, "input %dx%d too small for a %dx%d stride-%d convolution", H, W, k, k, stride); return NULL; }
    /* |sum| <= 255 * 127 * Cin*k*k must fit oneDNN's s32 accumulator */
    if ((int64_t)Cin * k * k > INT32_MAX / (255 * 127)) {
        vm_errf(err, errlen, "INT8 convolution with %d x %dx%d inputs per output overflows 32-bit sums", Cin, k, k);
        return NULL;
    }
    int Hp = H + 2 * pad, Wp = W + 2 * pad;
    vm_conv_prim *c = calloc(1, sizeof *c);
    qconv_post *q = calloc(1, sizeof *q);
    if (c) c->q = q;
    if (!c || !q || !(q->comp = malloc((size_t)Cout * sizeof *q->comp)) ||
        !(q->scale = malloc((size_t)Cout * sizeof *q->scale)) ||
        (bias && !(q->bias = malloc((size_t)Cout * sizeof *q->bias))) ||
        !(q->u8 = malloc((size_t)B * Hp * Wp * Cin))) {
        if (c) vm_conv_free(c); else free(q);
        vm_errf(err, errlen, "out of memory for an INT8 %dx%d convolution (%d->%d channels, input %dx%d)", k, k, Cin, Cout, H, W);
        return NULL;
    }
    *q = (qconv_post){B, H, W, Cin, Cout, pad, OH, OW, relu, zp, q->u8, q->comp, q->scale, q->bias, 1.0f / a_scale};
    for (int o = 0; o < Cout; o++) {
        int64_t sw = 0;
        for (size_t i = 0; i < (size_t)Cin * k * k; i++) sw += w8[(size_t)o * Cin * k * k + i];
        q->comp[o] = (int32_t)(zp * sw);
        q->scale[o] = (float)((double)a_scale * w_scale[o]);
        if (bias) q->bias[o] = bias[o];
    }
    if (pad) memset(q->u8, zp, (size_t)B * Hp * Wp * Cin); /* the border stays zp: a real 0 */
    dnnl_dims_t sd = {B, Cin, Hp, Wp}, wd = {Cout, Cin, k, k}, dd = {B, Cout, OH, OW};
    dnnl_dims_t strides = {stride, stride}, nopad = {0, 0};
    dnnl_memory_desc_t src_md, wei_any, wei_user, dst_md;
    dnnl_memory_desc_init_by_tag(&src_md, 4, sd, dnnl_u8, dnnl_nhwc);
    dnnl_memory_desc_init_by_tag(&wei_any, 4, wd, dnnl_s8, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&wei_user, 4, wd, dnnl_s8, dnnl_oihw);
    dnnl_memory_desc_init_by_tag(&dst_md, 4, dd, dnnl_s32, dnnl_nhwc);
    dnnl_primitive_attr_t attr = user_scratch_attr();
    dnnl_convolution_desc_t cd;
    int ok = attr &&
             dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &src_md, &wei_any, NULL,
                                                &dst_md, strides, nopad, nopad) == dnnl_success &&
             !int8_prim(&c->p, &cd, attr, x, NULL, NULL, &wei_user, w8);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (!ok) {
        vm_errf(err, errlen, "oneDNN: cannot create an INT8 %dx%d convolution (%d->%d channels)", k, k, Cin, Cout);
        vm_conv_free(c);
        return NULL;
    }
    return c;
}
#endif

vm_conv_prim *vm_qconv_create_x(vm_dnnl_exec *x, int B, int Cin, int H, int W, int Cout, int k, int stride, int pad,
                              const int8_t *w8, const float *w_scale, float a_scale, int zp, const float *bias, char *err,
                              size_t errlen) {
    return vm_qconv_create_relu_x(x, B, Cin, H, W, Cout, k, stride, pad, w8, w_scale, a_scale, zp, bias, 0, err, errlen);
}

/* An INT8 convolution's u8 input goes inside its zp border (row by row
 * when there is one), then oneDNN's s32 sums, then int8_finish. */
static uint8_t *qconv_row(const qconv_post *q, int b, int y) {
    int Hp = q->H + 2 * q->pad, Wp = q->W + 2 * q->pad;
    return q->u8 + (((size_t)b * Hp + y + q->pad) * Wp + q->pad) * q->Cin;
}

static int qconv_sums(vm_conv_prim *c, float *dst) {
    if (run_prim(&c->p, c->q->u8, dst)) return -1;
    int8_finish(c->q, dst);
    return 0;
}

int vm_conv_run(vm_conv_prim *c, const float *src, float *dst) {
    qconv_post *q = c->q;
    if (!q) return run_prim(&c->p, src, dst);
    /* INT8, already quantised by the caller: src is u8 (B*H*W x Cin) */
    size_t row = (size_t)q->W * q->Cin;
    for (int b = 0; b < q->B; b++)
        for (int y = 0; y < q->H; y++) memcpy(qconv_row(q, b, y), (const uint8_t *)src + ((size_t)b * q->H + y) * row, row);
    return qconv_sums(c, dst);
}

int vm_qconv_run(vm_conv_prim *c, const float *src, float *dst) {
    qconv_post *q = c->q;
    if (!q) return -1;
    const vm_kernel_table *k = vm_kernels();
    if (!q->pad)
        k->quantize_u8(q->u8, src, (size_t)q->B * q->H * q->W, q->Cin, q->Cin, q->inv, (float)q->zp);
    else
        for (int b = 0; b < q->B; b++)
            for (int y = 0; y < q->H; y++)
                k->quantize_u8(qconv_row(q, b, y), src + ((size_t)b * q->H + y) * q->W * q->Cin, (size_t)q->W, q->Cin,
                               q->Cin, q->inv, (float)q->zp);
    return qconv_sums(c, dst);
}

vm_conv_prim *vm_conv_create(int B, int Cin, int H, int W, int Cout, int k, int stride, int pad, const float *weight_oihw,
                             const float *bias, char *err, size_t errlen) {
    return vm_conv_create_x(NULL, B, Cin, H, W, Cout, k, stride, pad, weight_oihw, bias, err, errlen);
}

vm_conv_prim *vm_qconv_create(int B, int Cin, int H, int W, int Cout, int k, int stride, int pad, const int8_t *w8,
                              const float *w_scale, float a_scale, int zp, const float *bias, char *err, size_t errlen) {
    return vm_qconv_create_x(NULL, B, Cin, H, W, Cout, k, stride, pad, w8, w_scale, a_scale, zp, bias, err, errlen);
}

struct vm_qmatmul {
    prim_t p;
};

void vm_qmatmul_free(vm_qmatmul *q) {
    if (!q) return;
    prim_release(&q->p);
    free(q);
}

#if DNNL_VERSION_MAJOR >= 3
vm_qmatmul *vm_qmatmul_create_x(vm_dnnl_exec *x, int M, int N, int K, int lda, int ldc, const int8_t *W, const float *w_scale,
                              float a_scale, int zp, const float *bias, int gelu, int accumulate, char *err,
                              size_t errlen) {
    return int8_needs_dnnl2(err, errlen);
}
#else
vm_qmatmul *vm_qmatmul_create_x(vm_dnnl_exec *x, int M, int N, int K, int lda, int ldc, const int8_t *W, const float *w_scale,
                              float a_scale, int zp, const float *bias, int gelu, int accumulate, char *err,
                              size_t errlen) {
    if (engine_ok(err, errlen)) return NULL;
    vm_qmatmul *q = calloc(1, sizeof *q);
    float *scales = malloc((size_t)N * sizeof *scales);
    if (!q || !scales) {
        free(q);
        free(scales);
        vm_errf(err, errlen, "out of memory");
        return NULL;
    }
    dnnl_memory_desc_t src, wany, wusr, dst, bmd;
    dnnl_dims_t dd = {M, N}, ds = {ldc, 1}, bd = {1, N};
    qmatmul_mds(M, N, K, lda, &src, &wany, &wusr);
    dnnl_memory_desc_init_by_strides(&dst, 2, dd, dnnl_f32, ds);
    dnnl_memory_desc_init_by_tag(&bmd, 2, bd, dnnl_f32, dnnl_ab);
    dnnl_primitive_attr_t attr = user_scratch_attr();
    dnnl_post_ops_t po = NULL;
    int ok = 0;
    for (int n = 0; n < N; n++) scales[n] = a_scale * w_scale[n];
    dnnl_matmul_desc_t md;
    if (!attr) goto done;
    if (dnnl_matmul_desc_init(&md, &src, &wany, bias ? &bmd : NULL, &dst) != dnnl_success) goto done;
    if (dnnl_primitive_attr_set_output_scales(attr, N, 1 << 1, scales) != dnnl_success) goto done;
    int32_t z = zp;
    if (dnnl_primitive_attr_set_zero_points(attr, DNNL_ARG_SRC, 1, 0, &z) != dnnl_success) goto done;
    if (gelu || accumulate) {
        if (dnnl_post_ops_create(&po) != dnnl_success) goto done;
        if (gelu && dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_gelu_erf, 0.0f, 0.0f) != dnnl_success) goto done;
        if (accumulate && dnnl_post_ops_append_sum(po, 1.0f) != dnnl_success) goto done;
        if (dnnl_primitive_attr_set_post_ops(attr, po) != dnnl_success) goto done;
    }
    int bfail = 0;
    const float *qb = int8_bias(&q->p, bias, scales, N, &bfail);
    if (bfail || int8_prim(&q->p, &md, attr, x, qb, &bmd, &wusr, W)) goto done;
    ok = 1;
done:
    free(scales);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (!ok) {
        vm_errf(err, errlen, "oneDNN: cannot create an INT8 matmul (%d x %d x %d)", M, N, K);
        vm_qmatmul_free(q);
        return NULL;
    }
    return q;
}
#endif

int vm_qmatmul_run(vm_qmatmul *q, const uint8_t *A, float *C) { return run_prim(&q->p, A, C); }

/* Dynamic (per-row) INT8: the bare integer product, no scales, no zero
 * point, no bias (src/model/forward.c quantizes each row and dequantizes
 * with the row's scale and zero point: oneDNN 2.x's output scales are per
 * column only). */
#if DNNL_VERSION_MAJOR >= 3
vm_qmatmul *vm_qmatmul_create_s32_x(vm_dnnl_exec *x, int M, int N, int K, int lda, const int8_t *W, char *err,
                                    size_t errlen) {
    return int8_needs_dnnl2(err, errlen);
}
#else
vm_qmatmul *vm_qmatmul_create_s32_x(vm_dnnl_exec *x, int M, int N, int K, int lda, const int8_t *W, char *err,
                                    size_t errlen) {
    if (engine_ok(err, errlen)) return NULL;
    vm_qmatmul *q = calloc(1, sizeof *q);
    if (!q) {
        vm_errf(err, errlen, "out of memory");
        return NULL;
    }
    dnnl_memory_desc_t src, wany, wusr, dst;
    dnnl_dims_t dd = {M, N};
    qmatmul_mds(M, N, K, lda, &src, &wany, &wusr);
    dnnl_memory_desc_init_by_tag(&dst, 2, dd, dnnl_s32, dnnl_ab);
    dnnl_primitive_attr_t attr = user_scratch_attr();
    dnnl_matmul_desc_t md;
    int ok = attr && dnnl_matmul_desc_init(&md, &src, &wany, NULL, &dst) == dnnl_success &&
             !int8_prim(&q->p, &md, attr, x, NULL, NULL, &wusr, W);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (!ok) {
        vm_errf(err, errlen, "oneDNN: cannot create an INT8 matmul with s32 output (%d x %d x %d)", M, N, K);
        vm_qmatmul_free(q);
        return NULL;
    }
    return q;
}
#endif

int vm_qmatmul_run_s32(vm_qmatmul *q, const uint8_t *A, int32_t *C) { return run_prim(&q->p, A, C); }

vm_qmatmul *vm_qmatmul_create(int M, int N, int K, int lda, int ldc, const int8_t *W, const float *w_scale, float a_scale,
                              int zp, const float *bias, int gelu, int accumulate, char *err, size_t errlen) {
    return vm_qmatmul_create_x(NULL, M, N, K, lda, ldc, W, w_scale, a_scale, zp, bias, gelu, accumulate, err, errlen);
}

const char *vm_dnnl_version(void) {
    static char buf[32];
    const dnnl_version_t *v = dnnl_version();
    snprintf(buf, sizeof buf, "%d.%d.%d", v->major, v->minor, v->patch);
    return buf;
}

/* ---- FP32 matmul on packed weights ---------------------------------- */

#if DNNL_VERSION_MAJOR >= 3
static int md_make_strided(md_t *md, int nd, const dnnl_dims_t dims, const dnnl_dims_t strides) {
    return dnnl_memory_desc_create_with_strides(md, nd, dims, dnnl_f32, strides) == dnnl_success ? 0 : -1;
}
static dnnl_primitive_desc_t matmul_pd(md_arg src, md_arg wei, md_arg bias, md_arg dst, dnnl_primitive_attr_t attr) {
    dnnl_primitive_desc_t pd = NULL;
    if (dnnl_matmul_primitive_desc_create(&pd, g_engine, src, wei, bias, dst, attr) != dnnl_success) return NULL;
    return pd;
}
static int append_gelu(dnnl_post_ops_t po) { return dnnl_post_ops_append_eltwise(po, dnnl_eltwise_gelu_erf, 0.0f, 0.0f) == dnnl_success ? 0 : -1; }
static int append_sum(dnnl_post_ops_t po) { return dnnl_post_ops_append_sum(po, 1.0f, 0, dnnl_data_type_undef) == dnnl_success ? 0 : -1; }
#else
static int md_make_strided(md_t *md, int nd, const dnnl_dims_t dims, const dnnl_dims_t strides) {
    return dnnl_memory_desc_init_by_strides(md, nd, dims, dnnl_f32, strides) == dnnl_success ? 0 : -1;
}
static dnnl_primitive_desc_t matmul_pd(md_arg src, md_arg wei, md_arg bias, md_arg dst, dnnl_primitive_attr_t attr) {
    dnnl_matmul_desc_t d;
    dnnl_primitive_desc_t pd = NULL;
    if (dnnl_matmul_desc_init(&d, src, wei, bias, dst) != dnnl_success) return NULL;
    if (dnnl_primitive_desc_create(&pd, &d, attr, g_engine, NULL) != dnnl_success) return NULL;
    return pd;
}
static int append_gelu(dnnl_post_ops_t po) { return dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_gelu_erf, 0.0f, 0.0f) == dnnl_success ? 0 : -1; }
static int append_sum(dnnl_post_ops_t po) { return dnnl_post_ops_append_sum(po, 1.0f) == dnnl_success ? 0 : -1; }
#endif

struct vm_wpack {
    dnnl_memory_t mem; /* packed weights, logical shape K x N; read-only once made */
    int N, K;
};

/* The matmul's logical weights are W^T (K x N); the plain [N][K] array is
 * that matrix with strides (1, K). */
static int plain_wei_md(md_t *md, int N, int K) {
    dnnl_dims_t d = {K, N}, s = {1, K};
    return md_make_strided(md, 2, d, s);
}

/* A matmul primitive descriptor for this shape; weights "any" lets oneDNN
 * choose the packed layout. */
static dnnl_primitive_desc_t fmatmul_pd(int M, int N, int K, int lda, int ldc, int bias, int gelu, int accumulate) {
    md_t src, wany, dst, bmd;
    dnnl_dims_t sd = {M, K}, ss = {lda, 1}, wd = {K, N}, dd = {M, N}, ds = {ldc, 1}, bd = {1, N};
    dnnl_primitive_attr_t attr = user_scratch_attr();
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    md_make_strided(&src, 2, sd, ss);
    md_make(&wany, 2, wd, dnnl_format_tag_any);
    md_make_strided(&dst, 2, dd, ds);
    md_make(&bmd, 2, bd, dnnl_ab);
    int ok = attr && dnnl_post_ops_create(&po) == dnnl_success &&
             (!gelu || !append_gelu(po)) && (!accumulate || !append_sum(po)) &&
             dnnl_primitive_attr_set_post_ops(attr, po) == dnnl_success;
    if (ok) pd = matmul_pd(MD_PTR(src), MD_PTR(wany), bias ? MD_PTR(bmd) : NULL, MD_PTR(dst), attr);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    md_free(src); md_free(wany); md_free(dst); md_free(bmd);
    return pd;
}

vm_wpack *vm_wpack_create(int N, int K, const float *W, char *err, size_t errlen) {
    if (engine_ok(err, errlen)) return NULL;
    /* The layout is chosen for a mid-sized row count; a matmul whose M
     * wants another layout keeps its own re-laid copy (vm_matmul_create). */
    dnnl_primitive_desc_t pd = fmatmul_pd(256, N, K, K, N, 0, 0, 0);
    md_t user;
    plain_wei_md(&user, N, K);
    vm_wpack *p = calloc(1, sizeof *p);
    int ok = p && pd;
    if (ok) {
        p->N = N;
        p->K = K;
        ok = !pack_weights(pd, MD_PTR(user), W, &p->mem);
    }
    if (pd) dnnl_primitive_desc_destroy(pd);
    md_free(user);
    if (!ok) {
        vm_errf(err, errlen, "oneDNN: cannot pack a %d x %d weight matrix", N, K);
        vm_wpack_free(p);
        return NULL;
    }
    return p;
}

int vm_wpack_unpack(const vm_wpack *p, float *W) {
    md_t user;
    plain_wei_md(&user, p->N, p->K);
    dnnl_memory_t plain = NULL;
    int rc = dnnl_memory_create(&plain, MD_PTR(user), g_engine, W) == dnnl_success ? reorder_mem(p->mem, plain) : -1;
    if (plain) dnnl_memory_destroy(plain);
    md_free(user);
    return rc;
}

void vm_wpack_free(vm_wpack *p) {
    if (!p) return;
    if (p->mem) dnnl_memory_destroy(p->mem);
    free(p);
}

struct vm_matmul {
    prim_t p;
    int relaid; /* 1: p.wei is this primitive's own re-laid copy of the pack */
};

void vm_matmul_free(vm_matmul *mm) {
    if (!mm) return;
    prim_release(&mm->p);
    free(mm);
}

static int n_relaid;

int vm_matmul_relaid_count(void) { return __atomic_load_n(&n_relaid, __ATOMIC_RELAXED); }

vm_matmul *vm_matmul_create_x(vm_dnnl_exec *x, int M, int N, int K, int lda, int ldc, const vm_wpack *w, const float *bias,
                            int gelu, int accumulate, char *err, size_t errlen) {
    if (engine_ok(err, errlen)) return NULL;
    vm_matmul *mm = calloc(1, sizeof *mm);
    if (!mm) { vm_errf(err, errlen, "out of memory"); return NULL; }
    dnnl_primitive_desc_t pd = fmatmul_pd(M, N, K, lda, ldc, bias != NULL, gelu, accumulate);
    int ok = pd != NULL && w->N == N && w->K == K;
    md_t bmd;
    dnnl_dims_t bd = {1, N};
    md_make(&bmd, 2, bd, dnnl_ab);
    if (ok) ok = !prim_make(&mm->p, pd, x, bias, MD_PTR(bmd));
    if (ok) {
        /* The shared pack is never changed: a primitive that wants another
         * layout for this M keeps a re-laid copy of its own (per context);
         * one that wants the pack's layout reads it through its own memory
         * object over the same (read-only) data. */
        md_arg want = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0), have;
        void *data = NULL;
        ok = dnnl_memory_get_memory_desc(w->mem, &have) == dnnl_success && dnnl_memory_get_data_handle(w->mem, &data) == dnnl_success;
        if (ok && dnnl_memory_desc_equal(want, have)) {
            ok = dnnl_memory_create(&mm->p.wei, have, g_engine, data) == dnnl_success;
        } else if (ok) {
            ok = dnnl_memory_create(&mm->p.wei, want, g_engine, DNNL_MEMORY_ALLOCATE) == dnnl_success && !reorder_mem(w->mem, mm->p.wei);
            mm->relaid = 1;
            __atomic_add_fetch(&n_relaid, 1, __ATOMIC_RELAXED);
        }
    }
    if (pd) dnnl_primitive_desc_destroy(pd);
    md_free(bmd);
    if (!ok) {
        vm_errf(err, errlen, "oneDNN: cannot create a matmul (%d x %d x %d)", M, N, K);
        vm_matmul_free(mm);
        return NULL;
    }
    return mm;
}

int vm_matmul_run(vm_matmul *mm, const float *A, float *C) { return run_prim(&mm->p, A, C); }

vm_matmul *vm_matmul_create(int M, int N, int K, int lda, int ldc, const vm_wpack *w, const float *bias, int gelu,
                            int accumulate, char *err, size_t errlen) {
    return vm_matmul_create_x(NULL, M, N, K, lda, ldc, w, bias, gelu, accumulate, err, errlen);
}

/* ---- BF16 (--precision bf16 on the CPU) ------------------------------
 * Convolutions and matmuls with bf16 src and weights, f32 accumulation,
 * bias, post-ops and dst. oneDNN 2.6's "fpmath mode" (f32 primitives
 * allowed to compute in bf16) only takes effect on AMX, so the src is
 * rounded to bf16 explicitly (cvt_bf16, into the exec's buffer) before each
 * run; weights are converted once, when the primitive is made. */

int vm_dnnl_bf16_supported(void) {
    /* oneDNN's effective ISA: honours ONEDNN_MAX_CPU_ISA / DNNL_MAX_CPU_ISA,
     * so a BF16-less CPU can be imitated. AMX implies avx512_core_bf16's bits. */
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return ((unsigned)isa & (unsigned)dnnl_cpu_isa_avx512_core_bf16) == (unsigned)dnnl_cpu_isa_avx512_core_bf16;
}

/* f32 -> bf16, round to nearest even (what vcvtneps2bf16 does); NaN stays NaN. */
static inline uint16_t f2bf(float f) {
    union { float f; uint32_t u; } v = {f};
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x40);
    return (uint16_t)((v.u + 0x7fffu + ((v.u >> 16) & 1u)) >> 16);
}

static void row_scalar(const float *s, int n, uint16_t *d) {
    for (int j = 0; j < n; j++) d[j] = f2bf(s[j]);
}

#if defined(__x86_64__) && defined(__GNUC__) && (__GNUC__ >= 10 || defined(__clang__))
#include <immintrin.h>
/* vcvtneps2bf16: the same rounding (nearest even); only reached where the
 * CPU has avx512_bf16 (every BF16 primitive checks vm_dnnl_bf16_supported).
 * It treats denormal inputs as zero, which the scalar path does not:
 * vm_bf16_round's test compares on normal numbers and zeros. */
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) static void row_avx512(const float *s, int n, uint16_t *d) {
    int j = 0;
    for (; j + 16 <= n; j += 16) {
        __m256bh v = _mm512_cvtneps_pbh(_mm512_loadu_ps(s + j));
        _mm256_storeu_si256((__m256i *)(d + j), (__m256i)v);
    }
    if (j < n) {
        __mmask16 k = (__mmask16)((1u << (n - j)) - 1);
        __m256bh v = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(k, s + j));
        _mm256_mask_storeu_epi16(d + j, k, (__m256i)v);
    }
}
#define VM_HAVE_ROW_AVX512 1
#endif

static void row_round(const float *s, int n, uint16_t *d, int simd) {
#ifdef VM_HAVE_ROW_AVX512
    if (simd) {
        row_avx512(s, n, d);
        return;
    }
#endif
    (void)simd;
    row_scalar(s, n, d);
}

int vm_bf16_round(const float *x, int n, uint16_t *out, int simd) {
#ifndef VM_HAVE_ROW_AVX512
    if (simd) return -1;
#endif
    if (simd && !vm_dnnl_bf16_supported()) return -1;
    row_round(x, n, out, simd);
    return 0;
}

static void cvt_bf16(const float *a, int rows, int cols, int ld, uint16_t *out) {
    const int simd = vm_dnnl_bf16_supported();
#pragma omp parallel for schedule(static) if ((long)rows * cols > 32768)
    for (int r = 0; r < rows; r++) row_round(a + (size_t)r * ld, cols, out + (size_t)r * cols, simd);
}

static int exec_reserve_cvt(vm_dnnl_exec *x, size_t elems) {
    if (elems <= x->cvt_elems) return 0;
    void *p = NULL;
    if (posix_memalign(&p, 64, elems * sizeof(uint16_t)) != 0) return -1;
    free(x->cvt);
    x->cvt = p;
    x->cvt_elems = elems;
    return 0;
}

vm_conv_prim *vm_conv_create_bf16_x(vm_dnnl_exec *x, int B, int Cin, int H, int W, int Cout, int k, int stride, int pad,
                                    const float *weight_oihw, const float *bias, char *err, size_t errlen) {
    if (engine_ok(err, errlen)) return NULL;
    if (!vm_dnnl_bf16_supported()) { vm_errf(err, errlen, "BF16 needs a CPU with avx512_bf16 or AMX (this one has neither)"); return NULL; }
    vm_conv_prim *c = conv_make(x, B, Cin, H, W, Cout, k, stride, pad, weight_oihw, bias, 0, dnnl_bf16, "BF16 ", err,
                                errlen);
    if (!c) return NULL;
    c->p.cvt_rows = B * H * W;
    c->p.cvt_cols = Cin;
    c->p.cvt_ld = Cin;
    if (exec_reserve_cvt(c->p.x, (size_t)B * H * W * Cin)) {
        vm_errf(err, errlen, "oneDNN: cannot create a BF16 %dx%d convolution (%d->%d channels) for input %dx%d", k, k, Cin, Cout, H, W);
        vm_conv_free(c);
        return NULL;
    }
    return c;
}

vm_matmul *vm_matmul_create_bf16_x(vm_dnnl_exec *x, int M, int N, int K, int lda, int ldc, const vm_wpack *w,
                                   const float *bias, int gelu, int accumulate, char *err, size_t errlen) {
    if (engine_ok(err, errlen)) return NULL;
    if (!vm_dnnl_bf16_supported()) { vm_errf(err, errlen, "BF16 needs a CPU with avx512_bf16 or AMX (this one has neither)"); return NULL; }
    vm_matmul *mm = calloc(1, sizeof *mm);
    if (!mm) { vm_errf(err, errlen, "out of memory"); return NULL; }
    md_t src, wany, dst, bmd;
    dnnl_dims_t sd = {M, K}, wd = {K, N}, dd = {M, N}, ds = {ldc, 1}, bd = {1, N};
    md_make_t(&src, 2, sd, dnnl_bf16, dnnl_ab);
    md_make_t(&wany, 2, wd, dnnl_bf16, dnnl_format_tag_any);
    md_make_strided(&dst, 2, dd, ds);
    md_make(&bmd, 2, bd, dnnl_ab);
    dnnl_primitive_attr_t attr = user_scratch_attr();
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    float *plain = NULL;
    int ok = w->N == N && w->K == K && attr && dnnl_post_ops_create(&po) == dnnl_success &&
             (!gelu || !append_gelu(po)) && (!accumulate || !append_sum(po)) &&
             dnnl_primitive_attr_set_post_ops(attr, po) == dnnl_success;
    if (ok) ok = (pd = matmul_pd(MD_PTR(src), MD_PTR(wany), bias ? MD_PTR(bmd) : NULL, MD_PTR(dst), attr)) != NULL;
    if (ok) ok = !prim_make(&mm->p, pd, x, bias, MD_PTR(bmd));
    if (ok) {
        /* This context's own bf16 copy of the shared FP32 pack (half its
         * size); the pack itself is only read. */
        md_arg want = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
        ok = dnnl_memory_create(&mm->p.wei, want, g_engine, DNNL_MEMORY_ALLOCATE) == dnnl_success;
        if (ok && reorder_mem(w->mem, mm->p.wei)) {
            /* no blocked f32 -> blocked bf16 reorder: go through the plain matrix */
            md_t user;
            dnnl_memory_t pm = NULL;
            plain_wei_md(&user, N, K);
            ok = (plain = malloc((size_t)N * K * sizeof *plain)) && !vm_wpack_unpack(w, plain) &&
                 dnnl_memory_create(&pm, MD_PTR(user), g_engine, plain) == dnnl_success && !reorder_mem(pm, mm->p.wei);
            if (pm) dnnl_memory_destroy(pm);
            md_free(user);
        }
    }
    if (ok) {
        mm->p.cvt_rows = M;
        mm->p.cvt_cols = K;
        mm->p.cvt_ld = lda;
        ok = !exec_reserve_cvt(mm->p.x, (size_t)M * K);
    }
    free(plain);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    md_free(src); md_free(wany); md_free(dst); md_free(bmd);
    if (!ok) {
        vm_errf(err, errlen, "oneDNN: cannot create a BF16 matmul (%d x %d x %d)", M, N, K);
        vm_matmul_free(mm);
        return NULL;
    }
    return mm;
}
