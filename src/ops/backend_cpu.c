/* backend_cpu.c - the CPU backend of ops/backend.h: convolutions are oneDNN
 * primitives made on the owning context's exec (its stream and user-managed
 * scratchpad, shared with the backbone's primitives), linear is oneDNN's
 * sgemm plus a bias/ReLU pass, the resizes and pools are src/ops/dense.c's
 * kernels. The same arithmetic the heads did before the interface existed,
 * so their results are unchanged bit for bit. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "dense.h"
#include "wcache.h"
#include "../core/dnnl_compat.h"
#include "../core/util.h"
#include "../../simd/kernels.h"

typedef struct {
    vm_dnnl_exec *x;
    vm_wcache wc; /* the off-host backend's weight copies */
} cpu_impl;

static int fail(vm_be *be, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(be->err, sizeof be->err, fmt, ap);
    va_end(ap);
    return -1;
}

static float *c_alloc(vm_be *be, size_t n) {
    (void)be;
    return malloc(sizeof(float) * (n ? n : 1));
}
static void c_free(vm_be *be, float *p) {
    (void)be;
    free(p);
}
static int c_copy(vm_be *be, float *dst, const float *src, size_t n) {
    (void)be;
    if (dst != src) memcpy(dst, src, sizeof(float) * n);
    return 0;
}
static int c_sync(vm_be *be) {
    (void)be;
    return 0;
}
static const float *c_weights(vm_be *be, const float *host, size_t n) {
    (void)be;
    (void)n;
    return host;
}
static void c_free_weights(vm_be *be, const float *w) {
    (void)be;
    (void)w;
}

/* A planned convolution: the oneDNN primitive (an INT8 one quantises its
 * f32 input itself, vm_qconv_run). */
typedef struct {
    vm_conv_prim *p;
    int int8;
} cpu_conv;

static vm_be_conv *wrap(vm_be *be, vm_conv_prim *p) {
    if (!p) return NULL;
    cpu_conv *c = calloc(1, sizeof *c);
    if (!c) {
        vm_conv_free(p);
        fail(be, "out of memory for a convolution plan");
        return NULL;
    }
    c->p = p;
    return (vm_be_conv *)c;
}

static vm_be_conv *c_conv_make(vm_be *be, int B, int Cin, int H, int W, int Cout, int k, int stride, int pad,
                               const float *w, const float *bias, int relu) {
    cpu_impl *ci = be->impl;
    return wrap(be, vm_conv_create_relu_x(ci->x, B, Cin, H, W, Cout, k, stride, pad, w, bias, relu, be->err,
                                          sizeof be->err));
}
static vm_be_conv *c_qconv_make(vm_be *be, int B, int Cin, int H, int W, int Cout, int k, int stride, int pad,
                                const int8_t *w8, const float *w_scale, float a_scale, int zp, const float *bias,
                                int relu) {
    cpu_impl *ci = be->impl;
    if (!(a_scale > 0.0f) || zp < 0 || zp > 255) {
        fail(be, "INT8 convolution: input scale %g / zero point %d out of range", a_scale, zp);
        return NULL;
    }
    cpu_conv *c = (cpu_conv *)wrap(be, vm_qconv_create_relu_x(ci->x, B, Cin, H, W, Cout, k, stride, pad, w8, w_scale,
                                                              a_scale, zp, bias, relu, be->err, sizeof be->err));
    if (!c) return NULL;
    c->int8 = 1;
    return (vm_be_conv *)c;
}
static int c_conv_run(vm_be *be, vm_be_conv *k, const float *src, float *dst) {
    cpu_conv *c = (cpu_conv *)k;
    if (c->int8 ? vm_qconv_run(c->p, src, dst) : vm_conv_run(c->p, src, dst))
        return fail(be, "oneDNN: a%s convolution failed to run", c->int8 ? "n INT8" : "");
    return 0;
}
static void c_conv_free(vm_be *be, vm_be_conv *k) {
    (void)be;
    cpu_conv *c = (cpu_conv *)k;
    if (!c) return;
    vm_conv_free(c->p);
    free(c);
}

static int c_linear(vm_be *be, int M, int N, int K, const float *A, int lda, const float *W, const float *b, int relu,
                    float *C, int ldc) {
    if (vm_gemm(M, N, K, A, lda, W, K, C, ldc, 0.0f)) return fail(be, "oneDNN: sgemm %dx%dx%d failed", M, N, K);
    if (!b && !relu) return 0;
#pragma omp parallel for schedule(static) if ((size_t)M * N > 65536)
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        for (int j = 0; j < N; j++) {
            float v = b ? c[j] + b[j] : c[j];
            c[j] = relu && v < 0.0f ? 0.0f : v;
        }
    }
    return 0;
}

static int c_bilinear(vm_be *be, const float *in, int H, int W, int C, int ldi, float *out, int OH, int OW, int ldo,
                      int accumulate) {
    if (vm_bilinear_nhwc(in, H, W, C, ldi, out, OH, OW, ldo, accumulate))
        return fail(be, "out of memory for the bilinear resize tables and rows");
    return 0;
}

static int c_avgpool(vm_be *be, const float *in, int H, int W, int C, int s, float *out) {
    (void)be;
    vm_adaptive_avgpool_nhwc(in, H, W, C, s, out);
    return 0;
}

int vm_nearest_idx(int o, int in, int out) {
    if (out == 2 * in) return o >> 1;
    if (out == in) return o;
    float scale = (float)in / (float)out;
    int i = (int)floorf((float)o * scale);
    return i < in - 1 ? i : in - 1;
}

static int c_upsample_add(vm_be *be, float *dst, int Ho, int Wo, const float *src, int Hi, int Wi, int C) {
    (void)be;
#pragma omp parallel for schedule(static)
    for (int y = 0; y < Ho; y++) {
        const float *srow = src + (size_t)vm_nearest_idx(y, Hi, Ho) * Wi * C;
        float *drow = dst + (size_t)y * Wo * C;
        for (int x = 0; x < Wo; x++) {
            const float *s = srow + (size_t)vm_nearest_idx(x, Wi, Wo) * C;
            float *d = drow + (size_t)x * C;
            for (int c = 0; c < C; c++) d[c] += s[c];
        }
    }
    return 0;
}

static int c_subsample2(vm_be *be, const float *src, int H, int W, int C, float *dst) {
    (void)be;
    vm_subsample2_ref(src, H, W, C, dst);
    return 0;
}

/* The off-host backend copies its weights as a device backend does,
 * through the same cache, so the tests see the cache's behaviour. */
static float *oh_make(vm_be *be, const float *host, size_t n, int layout, void *user) {
    (void)layout, (void)user;
    float *d = malloc(sizeof(float) * (n ? n : 1));
    if (!d) {
        fail(be, "out of memory copying %zu weights", n);
        return NULL;
    }
    memcpy(d, host, sizeof(float) * n);
    return d;
}
static void oh_drop(vm_be *be, float *d) {
    (void)be;
    free(d);
}
static const float *oh_weights(vm_be *be, const float *host, size_t n) {
    return vm_wcache_get(be->wcache, be, host, n, 0, oh_make, NULL, oh_drop);
}
static void oh_free_weights(vm_be *be, const float *w) {
    if (vm_wcache_put(be->wcache, w)) free((float *)w);
}

static void c_release(vm_be *be) {
    cpu_impl *ci = be->impl;
    if (ci && be->wcache) vm_wcache_clear(be->wcache, be, oh_drop);
    free(ci);
}

vm_be *vm_be_cpu_new(struct vm_dnnl_exec *x, char *err, size_t errlen) {
    vm_be *be = calloc(1, sizeof *be);
    cpu_impl *ci = calloc(1, sizeof *ci);
    if (!be || !ci) {
        free(be);
        free(ci);
        vm_errf(err, errlen, "out of memory for the CPU backend");
        return NULL;
    }
    ci->x = x;
    be->name = "cpu";
    be->host = 1;
    be->impl = ci;
    be->alloc = c_alloc;
    be->free = c_free;
    be->upload = c_copy;
    be->download = c_copy;
    be->sync = c_sync;
    be->weights = c_weights;
    be->free_weights = c_free_weights;
    be->conv_make = c_conv_make;
    be->conv_run = c_conv_run;
    be->conv_free = c_conv_free;
    be->qconv_make = c_qconv_make;
    be->linear = c_linear;
    be->bilinear = c_bilinear;
    be->avgpool = c_avgpool;
    be->upsample_add = c_upsample_add;
    be->subsample2 = c_subsample2;
    be->release = c_release;
    return be;
}

vm_be *vm_be_offhost_new(char *err, size_t errlen) {
    vm_be *be = vm_be_cpu_new(NULL, err, errlen);
    if (be) {
        be->name = "cpu-offhost";
        be->host = 0;
        be->wcache = &((cpu_impl *)be->impl)->wc;
        be->weights = oh_weights;
        be->free_weights = oh_free_weights;
    }
    return be;
}

void vm_be_free(vm_be *be) {
    if (!be) return;
    if (be->release) be->release(be);
    free(be);
}

const float *vm_be_to_host(vm_be *be, const float *src, size_t n, float *tmp) {
    if (be->host) return src;
    if (be->download(be, tmp, src, n)) return NULL;
    return tmp;
}

#ifndef VM_HAVE_CUDA
vm_be *vm_be_cuda_new(int device, char *err, size_t errlen) {
    (void)device;
    vm_errf(err, errlen, "this libvmamba was built without CUDA (./configure --with-cuda)");
    return NULL;
}
#endif

/* ---- scalar references ----------------------------------------------- */

void vm_conv2d_ref(const float *in, int B, int Cin, int H, int W, int Cout, int k, int stride, int pad,
                   const float *w, const float *bias, int relu, float *out) {
    int OH = (H + 2 * pad - k) / stride + 1, OW = (W + 2 * pad - k) / stride + 1;
    for (int b = 0; b < B; b++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++)
                for (int co = 0; co < Cout; co++) {
                    float acc = bias ? bias[co] : 0.0f;
                    for (int ky = 0; ky < k; ky++) {
                        int iy = oy * stride - pad + ky;
                        if (iy < 0 || iy >= H) continue;
                        for (int kx = 0; kx < k; kx++) {
                            int ix = ox * stride - pad + kx;
                            if (ix < 0 || ix >= W) continue;
                            const float *p = in + (((size_t)b * H + iy) * W + ix) * Cin;
                            for (int ci = 0; ci < Cin; ci++)
                                acc += p[ci] * w[(((size_t)co * Cin + ci) * k + ky) * k + kx];
                        }
                    }
                    out[(((size_t)b * OH + oy) * OW + ox) * Cout + co] = relu && acc < 0.0f ? 0.0f : acc;
                }
}

void vm_qconv2d_ref(const float *in, int B, int Cin, int H, int W, int Cout, int k, int stride, int pad,
                    const int8_t *w8, const float *w_scale, float a_scale, int zp, const float *bias, int relu,
                    double *out) {
    int OH = (H + 2 * pad - k) / stride + 1, OW = (W + 2 * pad - k) / stride + 1;
    const float inv = 1.0f / a_scale, z = (float)zp + 0.5f;
    for (int b = 0; b < B; b++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++)
                for (int co = 0; co < Cout; co++) {
                    int64_t acc = 0;
                    for (int ky = 0; ky < k; ky++) {
                        int iy = oy * stride - pad + ky;
                        if (iy < 0 || iy >= H) continue;
                        for (int kx = 0; kx < k; kx++) {
                            int ix = ox * stride - pad + kx;
                            if (ix < 0 || ix >= W) continue;
                            const float *p = in + (((size_t)b * H + iy) * W + ix) * Cin;
                            for (int ci = 0; ci < Cin; ci++) {
                                float v = p[ci] * inv + z; /* vm_quantize_u8_scalar */
                                v = v < 0.0f ? 0.0f : v > 255.49f ? 255.49f : v;
                                acc += (int64_t)((int)v - zp) * w8[(((size_t)co * Cin + ci) * k + ky) * k + kx];
                            }
                        }
                    }
                    double r = (double)acc * a_scale * w_scale[co] + (bias ? bias[co] : 0.0);
                    out[(((size_t)b * OH + oy) * OW + ox) * Cout + co] = relu && r < 0.0 ? 0.0 : r;
                }
}

void vm_linear_ref(int M, int N, int K, const float *A, int lda, const float *W, const float *b, int relu, float *C,
                   int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float acc = 0.0f;
            for (int q = 0; q < K; q++) acc += A[(size_t)i * lda + q] * W[(size_t)j * K + q];
            if (b) acc += b[j];
            C[(size_t)i * ldc + j] = relu && acc < 0.0f ? 0.0f : acc;
        }
}

void vm_upsample_add_ref(float *dst, int Ho, int Wo, const float *src, int Hi, int Wi, int C) {
    for (int y = 0; y < Ho; y++)
        for (int x = 0; x < Wo; x++)
            for (int c = 0; c < C; c++)
                dst[((size_t)y * Wo + x) * C + c] +=
                    src[((size_t)vm_nearest_idx(y, Hi, Ho) * Wi + vm_nearest_idx(x, Wi, Wo)) * C + c];
}

void vm_subsample2_ref(const float *src, int H, int W, int C, float *dst) {
    int Ho = (H + 1) / 2, Wo = (W + 1) / 2;
    for (int y = 0; y < Ho; y++)
        for (int x = 0; x < Wo; x++)
            memcpy(dst + ((size_t)y * Wo + x) * C, src + ((size_t)(2 * y) * W + 2 * x) * C, (size_t)C * sizeof(float));
}
