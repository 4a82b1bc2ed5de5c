/* gemm_xnnpack.c - see gemm_xnnpack.h. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_xnnpack.h"
#include "../core/util.h"

#if defined(VM_HAVE_XNNPACK) && !defined(VM_NO_XNNPACK)
#include <pthreadpool.h>
#include <xnnpack.h>

struct vm_xop {
    xnn_operator_t op;
    pthread_mutex_t lock; /* setup + run: the operator holds the call's pointers */
    int conv;
    /* fully-connected: what the FP16 twin is made from, at its first use */
    int N, K, lda, ldc;
    const float *W, *bias;
    xnn_operator_t op16;
};

#if defined(__aarch64__)
#include <arm_neon.h>
#define VM_XNN_FP16 1
/* rows of A (lda apart) -> packed half precision (round to nearest even) */
static void to_f16(const float *a, int M, int K, int lda, __fp16 *o) {
    for (int m = 0; m < M; m++) {
        const float *r = a + (size_t)m * lda;
        __fp16 *d = o + (size_t)m * K;
        int k = 0;
        for (; k + 8 <= K; k += 8)
            vst1q_f16((float16_t *)(d + k), vcombine_f16(vcvt_f16_f32(vld1q_f32(r + k)), vcvt_f16_f32(vld1q_f32(r + k + 4))));
        for (; k < K; k++) d[k] = (__fp16)r[k];
    }
}
/* packed half precision -> rows of C (ldc apart), exact */
static void from_f16(const __fp16 *c, int M, int N, float *o, int ldc) {
    for (int m = 0; m < M; m++) {
        const __fp16 *r = c + (size_t)m * N;
        float *d = o + (size_t)m * ldc;
        int k = 0;
        for (; k + 8 <= N; k += 8) {
            float16x8_t h = vld1q_f16((const float16_t *)(r + k));
            vst1q_f32(d + k, vcvt_f32_f16(vget_low_f16(h)));
            vst1q_f32(d + k + 4, vcvt_f32_f16(vget_high_f16(h)));
        }
        for (; k < N; k++) d[k] = (float)r[k];
    }
}
#endif

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static enum xnn_status init_status = xnn_status_uninitialized;
static void init_xnn(void) { init_status = xnn_initialize(NULL); }

static int ready(char *err, size_t errlen) {
    pthread_once(&init_once, init_xnn);
    if (init_status == xnn_status_success) return 1;
    vm_errf(err, errlen, "XNNPACK: xnn_initialize failed (status %d: this CPU lacks what it needs, or cpuinfo could not read it)",
            (int)init_status);
    return 0;
}

int vm_gemm_use_xnnpack(char *err, size_t errlen) {
    const char *e = getenv("VMAMBA_GEMM");
    if (e && *e) {
        if (!strcmp(e, "dnnl")) return 0;
        if (strcmp(e, "xnnpack")) {
            vm_errf(err, errlen, "VMAMBA_GEMM=%s: expected dnnl or xnnpack", e);
            return -1;
        }
        return ready(err, errlen) ? 1 : -1;
    }
#if defined(__aarch64__)
    /* Debian's arm64 oneDNN 2.6 (no Arm Compute Library) runs reference
     * GEMMs on NEON-only cores (Cortex-A5x/A7x, Neoverse N1): 14.4 G
     * instructions per s1l8 image against XNNPACK's 2.15 G; on SVE cores
     * (qemu's 'max', A64FX, Neoverse V1) XNNPACK's NEON kernels need fewer
     * instructions too (bench/RESULTS.md, ARM sessions 5 and 7), and every
     * suite passes on them there, so every aarch64 core defaults to
     * XNNPACK. VMAMBA_GEMM=dnnl keeps oneDNN (CI runs the goldens on it). */
    {
        char e2[8];
        return ready(e2, sizeof e2);
    }
#endif
    return 0;
}

static vm_xop *wrap(xnn_operator_t op, int conv, char *err, size_t errlen) {
    vm_xop *x = calloc(1, sizeof *x);
    if (!x || pthread_mutex_init(&x->lock, NULL)) {
        free(x);
        xnn_delete_operator(op);
        vm_errf(err, errlen, "out of memory (XNNPACK operator)");
        return NULL;
    }
    x->op = op;
    x->conv = conv;
    return x;
}

vm_xop *vm_xop_fc(int N, int K, int lda, int ldc, const float *W, const float *bias, char *err, size_t errlen) {
    if (!ready(err, errlen)) return NULL;
    xnn_operator_t op = NULL;
    enum xnn_status st = xnn_create_fully_connected_nc_f32((size_t)K, (size_t)N, (size_t)lda, (size_t)ldc, W, bias, -INFINITY,
                                                           INFINITY, XNN_FLAG_YIELD_WORKERS, &op);
    if (st != xnn_status_success) {
        vm_errf(err, errlen, "XNNPACK: cannot make a %d x %d fully-connected operator (status %d%s)", N, K, (int)st,
                st == xnn_status_out_of_memory ? ": out of memory" : "");
        return NULL;
    }
    vm_xop *x = wrap(op, 0, err, errlen);
    if (x) x->N = N, x->K = K, x->lda = lda, x->ldc = ldc, x->W = W, x->bias = bias;
    return x;
}

static pthread_once_t f16_once = PTHREAD_ONCE_INIT;
static int f16_ok;
static void probe_f16(void) {
#ifdef VM_XNN_FP16
    char e[8];
    if (!ready(e, sizeof e)) return;
    const float w = 1.0f;
    xnn_operator_t op = NULL;
    if (xnn_create_fully_connected_nc_f16(1, 1, 1, 1, &w, NULL, -INFINITY, INFINITY, XNN_FLAG_FP32_STATIC_WEIGHTS, &op) ==
        xnn_status_success) {
        f16_ok = 1;
        xnn_delete_operator(op);
    }
#endif
}

int vm_xnn_fp16_supported(void) {
    pthread_once(&f16_once, probe_f16);
    return f16_ok;
}

size_t vm_xop_fc16_scratch(const vm_xop *x, int M) {
    /* A and C in half precision, each with XNN_EXTRA_BYTES after it */
    return ((size_t)M * x->K + (size_t)M * x->N) * 2 + 2 * 16 + 16;
}

int vm_xop_fc_run16(vm_xop *x, int M, const float *A, float *C, void *scratch, void *pool) {
#ifdef VM_XNN_FP16
    if (!vm_xnn_fp16_supported() || !x->W) return -1;
    __fp16 *a16 = scratch, *c16 = (__fp16 *)((char *)scratch + (((size_t)M * x->K * 2 + 16 + 15) & ~(size_t)15));
    pthread_mutex_lock(&x->lock);
    enum xnn_status st = xnn_status_success;
    if (!x->op16)
        st = xnn_create_fully_connected_nc_f16((size_t)x->K, (size_t)x->N, (size_t)x->K, (size_t)x->N, x->W, x->bias, -INFINITY,
                                               INFINITY, XNN_FLAG_YIELD_WORKERS | XNN_FLAG_FP32_STATIC_WEIGHTS, &x->op16);
    if (st == xnn_status_success) {
        to_f16(A, M, x->K, x->lda, a16);
        st = xnn_setup_fully_connected_nc_f16(x->op16, (size_t)M, a16, c16, (pthreadpool_t)pool);
    }
    if (st == xnn_status_success) st = xnn_run_operator(x->op16, (pthreadpool_t)pool);
    if (st == xnn_status_success) from_f16(c16, M, x->N, C, x->ldc);
    pthread_mutex_unlock(&x->lock);
    return st == xnn_status_success ? 0 : -1;
#else
    (void)x, (void)M, (void)A, (void)C, (void)scratch, (void)pool;
    return -1;
#endif
}

vm_xop *vm_xop_conv(int cin, int cout, int k, int stride, int pad, const float *w_oihw, const float *bias, char *err,
                    size_t errlen) {
    if (!ready(err, errlen)) return NULL;
    /* XNNPACK wants OHWI ([cout][kh][kw][cin]); packed at creation, so the
     * reordered copy is only temporary. */
    size_t n = (size_t)cout * k * k * cin;
    float *w = malloc(n * sizeof *w);
    if (!w) {
        vm_errf(err, errlen, "out of memory (convolution weights for XNNPACK)");
        return NULL;
    }
    for (int o = 0; o < cout; o++)
        for (int i = 0; i < cin; i++)
            for (int t = 0; t < k * k; t++) w[((size_t)o * k * k + t) * cin + i] = w_oihw[((size_t)o * cin + i) * k * k + t];
    xnn_operator_t op = NULL;
    enum xnn_status st = xnn_create_convolution2d_nhwc_f32((uint32_t)pad, (uint32_t)pad, (uint32_t)pad, (uint32_t)pad, (uint32_t)k,
                                                           (uint32_t)k, (uint32_t)stride, (uint32_t)stride, 1, 1, 1, (size_t)cin,
                                                           (size_t)cout, (size_t)cin, (size_t)cout, w, bias, -INFINITY, INFINITY, XNN_FLAG_YIELD_WORKERS,
                                                           &op);
    free(w);
    if (st != xnn_status_success) {
        vm_errf(err, errlen, "XNNPACK: cannot make a %dx%d convolution %d -> %d (status %d)", k, k, cin, cout, (int)st);
        return NULL;
    }
    return wrap(op, 1, err, errlen);
}

vm_xop *vm_xop_qc8(int N, int K, const int8_t *W, const float *w_scale, const float *bias, float a_scale, int a_zp,
                   float o_scale, int o_zp, char *err, size_t errlen) {
    if (!ready(err, errlen)) return NULL;
    /* int32 bias in units of a_scale * w_scale[n], as the accumulator */
    int32_t *b = calloc((size_t)N, sizeof *b);
    if (!b) {
        vm_errf(err, errlen, "out of memory (INT8 bias for XNNPACK)");
        return NULL;
    }
    for (int n = 0; bias && n < N; n++) {
        double v = nearbyint((double)bias[n] / ((double)a_scale * w_scale[n]));
        b[n] = (int32_t)(v > 2147483647.0 ? 2147483647.0 : v < -2147483648.0 ? -2147483648.0 : v);
    }
    xnn_operator_t op = NULL;
    enum xnn_status st = xnn_create_convolution2d_nhwc_qc8(0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, (size_t)K, (size_t)N, (size_t)K, (size_t)N,
                                                           (int8_t)(a_zp - 128), a_scale, w_scale, W, b, (int8_t)(o_zp - 128), o_scale,
                                                           -128, 127, XNN_FLAG_YIELD_WORKERS, &op);
    free(b);
    if (st != xnn_status_success) {
        vm_errf(err, errlen, "XNNPACK: cannot make a %d x %d INT8 (qc8) operator (status %d; scales a %g o %g)", N, K, (int)st,
                (double)a_scale, (double)o_scale);
        return NULL;
    }
    return wrap(op, 2, err, errlen);
}

int vm_xop_qc8_run(vm_xop *x, int M, const int8_t *A, int8_t *C, void *pool) {
    pthread_mutex_lock(&x->lock);
    enum xnn_status st = xnn_setup_convolution2d_nhwc_qc8(x->op, 1, 1, (size_t)M, A, C, (pthreadpool_t)pool);
    if (st == xnn_status_success) st = xnn_run_operator(x->op, (pthreadpool_t)pool);
    pthread_mutex_unlock(&x->lock);
    return st == xnn_status_success ? 0 : -1;
}

int vm_xop_fc_run(vm_xop *x, int M, const float *A, float *C, void *pool) {
    pthread_mutex_lock(&x->lock);
    enum xnn_status st = xnn_setup_fully_connected_nc_f32(x->op, (size_t)M, A, C, (pthreadpool_t)pool);
    if (st == xnn_status_success) st = xnn_run_operator(x->op, (pthreadpool_t)pool);
    pthread_mutex_unlock(&x->lock);
    return st == xnn_status_success ? 0 : -1;
}

int vm_xop_conv_run(vm_xop *x, int B, int H, int W, const float *in, float *out, void *pool) {
    pthread_mutex_lock(&x->lock);
    enum xnn_status st = xnn_setup_convolution2d_nhwc_f32(x->op, (size_t)B, (size_t)H, (size_t)W, in, out, (pthreadpool_t)pool);
    if (st == xnn_status_success) st = xnn_run_operator(x->op, (pthreadpool_t)pool);
    pthread_mutex_unlock(&x->lock);
    return st == xnn_status_success ? 0 : -1;
}

void vm_xop_free(vm_xop *x) {
    if (!x) return;
    xnn_delete_operator(x->op);
    if (x->op16) xnn_delete_operator(x->op16);
    pthread_mutex_destroy(&x->lock);
    free(x);
}

void *vm_xnn_pool_create(int threads) { return threads > 1 ? pthreadpool_create((size_t)threads) : NULL; }
void vm_xnn_pool_free(void *pool) {
    if (pool) pthreadpool_destroy((pthreadpool_t)pool);
}

#else /* no XNNPACK in this build */

int vm_gemm_use_xnnpack(char *err, size_t errlen) {
    const char *e = getenv("VMAMBA_GEMM");
    if (!e || !*e || !strcmp(e, "dnnl")) return 0;
    if (!strcmp(e, "xnnpack"))
        vm_errf(err, errlen, "VMAMBA_GEMM=xnnpack: this build has no XNNPACK (configure found no libxnnpack-dev)");
    else
        vm_errf(err, errlen, "VMAMBA_GEMM=%s: expected dnnl or xnnpack", e);
    return -1;
}
vm_xop *vm_xop_fc(int N, int K, int lda, int ldc, const float *W, const float *bias, char *err, size_t errlen) {
    (void)N, (void)K, (void)lda, (void)ldc, (void)W, (void)bias;
    vm_errf(err, errlen, "this build has no XNNPACK");
    return NULL;
}
vm_xop *vm_xop_conv(int cin, int cout, int k, int stride, int pad, const float *w_oihw, const float *bias, char *err,
                    size_t errlen) {
    (void)cin, (void)cout, (void)k, (void)stride, (void)pad, (void)w_oihw, (void)bias;
    vm_errf(err, errlen, "this build has no XNNPACK");
    return NULL;
}
int vm_xop_fc_run(vm_xop *x, int M, const float *A, float *C, void *pool) {
    (void)x, (void)M, (void)A, (void)C, (void)pool;
    return -1;
}
vm_xop *vm_xop_qc8(int N, int K, const int8_t *W, const float *w_scale, const float *bias, float a_scale, int a_zp,
                   float o_scale, int o_zp, char *err, size_t errlen) {
    (void)N, (void)K, (void)W, (void)w_scale, (void)bias, (void)a_scale, (void)a_zp, (void)o_scale, (void)o_zp;
    vm_errf(err, errlen, "this build has no XNNPACK");
    return NULL;
}
int vm_xop_qc8_run(vm_xop *x, int M, const int8_t *A, int8_t *C, void *pool) {
    (void)x, (void)M, (void)A, (void)C, (void)pool;
    return -1;
}
int vm_xop_conv_run(vm_xop *x, int B, int H, int W, const float *in, float *out, void *pool) {
    (void)x, (void)B, (void)H, (void)W, (void)in, (void)out, (void)pool;
    return -1;
}
void vm_xop_free(vm_xop *x) { (void)x; }
int vm_xnn_fp16_supported(void) { return 0; }
size_t vm_xop_fc16_scratch(const vm_xop *x, int M) {
    (void)x, (void)M;
    return 0;
}
int vm_xop_fc_run16(vm_xop *x, int M, const float *A, float *C, void *scratch, void *pool) {
    (void)x, (void)M, (void)A, (void)C, (void)scratch, (void)pool;
    return -1;
}
void *vm_xnn_pool_create(int threads) {
    (void)threads;
    return NULL;
}
void vm_xnn_pool_free(void *pool) { (void)pool; }
#endif
