/* dnnl_compat.c - oneDNN glue. Built against 2.6 (Debian 12); the 3.x
 * branches follow the 3.0 C API (memory descriptors became handles,
 * op descriptors were folded into primitive-descriptor constructors). */
#include "dnnl_compat.h"
#include "util.h"

#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static dnnl_engine_t g_engine;
static dnnl_stream_t g_stream;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_ok;

static void init_engine(void) {
    if (dnnl_engine_create(&g_engine, dnnl_cpu, 0) != dnnl_success) return;
    if (dnnl_stream_create(&g_stream, g_engine, dnnl_stream_default_flags) != dnnl_success) return;
    g_ok = 1;
}

int vm_gemm(int M, int N, int K, const float *A, int lda, const float *W, int ldw, float *C, int ldc, float beta) {
    if (M == 0 || N == 0) return 0;
    return dnnl_sgemm('N', 'T', M, N, K, 1.0f, A, lda, W, ldw, beta, C, ldc) == dnnl_success ? 0 : -1;
}

int vm_conv_out_size(int in, int k, int stride, int pad) { return (in + 2 * pad - k) / stride + 1; }

struct vm_conv_prim {
    dnnl_primitive_t prim;
    dnnl_memory_t src, wei, bias, dst;
};

#if DNNL_VERSION_MAJOR >= 3
typedef dnnl_memory_desc_t md_t;
#define MD_PTR(x) (x)
static int md_make(md_t *md, int nd, const dnnl_dims_t dims, dnnl_format_tag_t tag) {
    return dnnl_memory_desc_create_with_tag(md, nd, dims, dnnl_f32, tag) == dnnl_success ? 0 : -1;
}
static void md_free(md_t md) { dnnl_memory_desc_destroy(md); }
#else
typedef dnnl_memory_desc_t md_t;
#define MD_PTR(x) (&(x))
static int md_make(md_t *md, int nd, const dnnl_dims_t dims, dnnl_format_tag_t tag) {
    return dnnl_memory_desc_init_by_tag(md, nd, dims, dnnl_f32, tag) == dnnl_success ? 0 : -1;
}
static void md_free(md_t md) { (void)md; }
#endif

void vm_conv_free(vm_conv_prim *p) {
    if (!p) return;
    if (p->prim) dnnl_primitive_destroy(p->prim);
    if (p->src) dnnl_memory_destroy(p->src);
    if (p->wei) dnnl_memory_destroy(p->wei);
    if (p->bias) dnnl_memory_destroy(p->bias);
    if (p->dst) dnnl_memory_destroy(p->dst);
    free(p);
}

vm_conv_prim *vm_conv_create(int B, int Cin, int H, int W, int Cout, int k, int stride, int pad, int src_nchw,
                             const float *weight_oihw, const float *bias, char *err, size_t errlen) {
    pthread_once(&g_once, init_engine);
    if (!g_ok) { vm_errf(err, errlen, "oneDNN: cannot create a CPU engine"); return NULL; }
    int OH = vm_conv_out_size(H, k, stride, pad), OW = vm_conv_out_size(W, k, stride, pad);
    if (OH < 1 || OW < 1) { vm_errf(err, errlen, "input %dx%d too small for a %dx%d stride-%d convolution", H, W, k, k, stride); return NULL; }
    dnnl_dims_t sd = {B, Cin, H, W}, wd = {Cout, Cin, k, k}, bd = {Cout}, dd = {B, Cout, OH, OW};
    dnnl_dims_t strides = {stride, stride}, padl = {pad, pad}, padr = {pad, pad};
    md_t src_md, wei_any, wei_user, bias_md, dst_md;
    md_make(&src_md, 4, sd, src_nchw ? dnnl_nchw : dnnl_nhwc);
    md_make(&wei_any, 4, wd, dnnl_format_tag_any);
    md_make(&wei_user, 4, wd, dnnl_oihw);
    md_make(&bias_md, 1, bd, dnnl_x);
    md_make(&dst_md, 4, dd, dnnl_nhwc);
    vm_conv_prim *p = vm_xcalloc(1, sizeof *p);
    dnnl_primitive_desc_t pd = NULL, rpd = NULL;
    dnnl_primitive_t reorder = NULL;
    dnnl_memory_t wuser = NULL;
    int ok = 0;
#if DNNL_VERSION_MAJOR >= 3
    if (dnnl_convolution_forward_primitive_desc_create(&pd, g_engine, dnnl_forward_inference, dnnl_convolution_direct,
                                                       src_md, wei_any, bias ? bias_md : NULL, dst_md, strides, NULL,
                                                       padl, padr, NULL) != dnnl_success)
        goto done;
#else
    dnnl_convolution_desc_t cd;
    if (dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &src_md, &wei_any,
                                           bias ? &bias_md : NULL, &dst_md, strides, padl, padr) != dnnl_success)
        goto done;
    if (dnnl_primitive_desc_create(&pd, &cd, NULL, g_engine, NULL) != dnnl_success) goto done;
#endif
    if (dnnl_primitive_create(&p->prim, pd) != dnnl_success) goto done;
    {
        const_dnnl_primitive_desc_t cpd = pd;
#if DNNL_VERSION_MAJOR >= 3
        const_dnnl_memory_desc_t wmd = dnnl_primitive_desc_query_md(cpd, dnnl_query_weights_md, 0);
#else
        const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(cpd, dnnl_query_weights_md, 0);
#endif
        /* Pack the weights once into the layout the primitive wants. */
        if (dnnl_memory_create(&p->wei, wmd, g_engine, DNNL_MEMORY_ALLOCATE) != dnnl_success) goto done;
        if (dnnl_memory_create(&wuser, MD_PTR(wei_user), g_engine, (void *)weight_oihw) != dnnl_success) goto done;
        if (dnnl_reorder_primitive_desc_create(&rpd, MD_PTR(wei_user), g_engine, wmd, g_engine, NULL) != dnnl_success) goto done;
        if (dnnl_primitive_create(&reorder, rpd) != dnnl_success) goto done;
        dnnl_exec_arg_t rargs[2] = {{DNNL_ARG_FROM, wuser}, {DNNL_ARG_TO, p->wei}};
        if (dnnl_primitive_execute(reorder, g_stream, 2, rargs) != dnnl_success) goto done;
        dnnl_stream_wait(g_stream);
    }
    if (dnnl_memory_create(&p->src, MD_PTR(src_md), g_engine, DNNL_MEMORY_NONE) != dnnl_success) goto done;
    if (dnnl_memory_create(&p->dst, MD_PTR(dst_md), g_engine, DNNL_MEMORY_NONE) != dnnl_success) goto done;
    if (bias && dnnl_memory_create(&p->bias, MD_PTR(bias_md), g_engine, (void *)bias) != dnnl_success) goto done;
    ok = 1;
done:
    if (reorder) dnnl_primitive_destroy(reorder);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (wuser) dnnl_memory_destroy(wuser);
    if (pd) dnnl_primitive_desc_destroy(pd);
    md_free(src_md); md_free(wei_any); md_free(wei_user); md_free(bias_md); md_free(dst_md);
    if (!ok) {
        vm_errf(err, errlen, "oneDNN: cannot create a %dx%d convolution (%d->%d channels) for input %dx%d", k, k, Cin, Cout, H, W);
        vm_conv_free(p);
        return NULL;
    }
    return p;
}

int vm_conv_run(vm_conv_prim *p, const float *src, float *dst) {
    dnnl_memory_set_data_handle(p->src, (void *)src);
    dnnl_memory_set_data_handle(p->dst, dst);
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, p->src}, {DNNL_ARG_WEIGHTS, p->wei}, {DNNL_ARG_DST, p->dst}, {DNNL_ARG_BIAS, p->bias}};
    if (dnnl_primitive_execute(p->prim, g_stream, p->bias ? 4 : 3, args) != dnnl_success) return -1;
    return dnnl_stream_wait(g_stream) == dnnl_success ? 0 : -1;
}

const char *vm_dnnl_version(void) {
    static char buf[32];
    const dnnl_version_t *v = dnnl_version();
    snprintf(buf, sizeof buf, "%d.%d.%d", v->major, v->minor, v->patch);
    return buf;
}
