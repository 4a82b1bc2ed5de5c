/* backend.h - the op interface the heads are written against, once, for
 * every backend (as ggml's backends do): the CPU (backend_cpu.c: oneDNN
 * primitives on the context's stream and scratchpad, src/ops/dense.c
 * kernels) and CUDA (src/cuda/ops.cu: cuBLAS GEMMs, simple kernels).
 *
 * A vm_be belongs to one context (one thread at a time). Tensors are
 * float buffers in the backend's memory (device memory on CUDA), NHWC,
 * allocated by the backend; be->host says whether that memory is the
 * host's (then vm_be_to_host / vm_be_from_host are no-ops). Every op is
 * enqueued on the backend's stream; download and sync wait for it.
 * Ops return 0, or -1 with a message in be->err. Internal to libvmamba. */
#ifndef VM_OPS_BACKEND_H
#define VM_OPS_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vm_be vm_be;
typedef struct vm_be_conv vm_be_conv; /* a convolution planned for one shape */

struct vm_be {
    const char *name;  /* "cpu", "cuda" */
    int host;          /* buffers are host memory */
    void *impl;
    char err[256];
    /* The backend's copies of read-only weights (weights(), conv weights),
     * one per host array, kept until the backend is freed (wcache.h);
     * NULL when the backend uses the host arrays themselves. */
    struct vm_wcache *wcache;
    size_t nalloc;     /* buffers alloc() made so far (tests: no allocation per call) */

    /* Memory. alloc: NULL when out of memory (n == 0 allocates one float). */
    float *(*alloc)(vm_be *be, size_t n);
    void (*free)(vm_be *be, float *p);
    int (*upload)(vm_be *be, float *dst, const float *src_host, size_t n);
    int (*download)(vm_be *be, float *dst_host, const float *src, size_t n);
    int (*sync)(vm_be *be);
    /* Read-only weights for linear(): the CPU uses the host array itself
     * (no copy); CUDA (and the off-host test backend) copy it once per
     * backend: the same host array gives the same copy to every plan.
     * Released with free_weights (the copy stays cached). */
    const float *(*weights)(vm_be *be, const float *host, size_t n);
    void (*free_weights)(vm_be *be, const float *w);

    /* 2-D convolution, NHWC src (B,H,W,Cin) -> dst (B,OH,OW,Cout), weights
     * OIHW (host, PyTorch order; they stay referenced on the CPU: keep them
     * alive), k x k, stride, zero padding pad, bias (may be NULL), then ReLU
     * if relu. Planned for one shape, run any number of times. */
    vm_be_conv *(*conv_make)(vm_be *be, int B, int Cin, int H, int W, int Cout, int k, int stride, int pad,
                             const float *w_oihw, const float *bias, int relu);
    int (*conv_run)(vm_be *be, vm_be_conv *c, const float *src, float *dst);
    void (*conv_free)(vm_be *be, vm_be_conv *c);
    /* INT8 convolution (a calibrated model's head), the same shapes and
     * conv_run/conv_free: weights s8 OIHW (copied at make) with a scale per
     * output channel; conv_run quantises the f32 src to u8 first,
     * q = clamp(floor(x / a_scale + zp + 0.5), 0, 255) (simd quantize_u8),
     * then dst = a_scale * w_scale[o] * sum((q - zp) * w8) + bias[o], zero
     * padding being a real 0, then ReLU if relu (vm_qconv2d_ref). CPU
     * backends only: NULL on the others (CUDA), whose callers report that
     * INT8 heads run on the CPU only. */
    vm_be_conv *(*qconv_make)(vm_be *be, int B, int Cin, int H, int W, int Cout, int k, int stride, int pad,
                              const int8_t *w8, const float *w_scale, float a_scale, int zp, const float *bias, int relu);

    /* C[M][N] (row stride ldc) = A[M][K] (lda) W[N][K]^T, + b[n] (b may be
     * NULL), then ReLU if relu. W and b from weights(). */
    int (*linear)(vm_be *be, int M, int N, int K, const float *A, int lda, const float *W, const float *b, int relu,
                  float *C, int ldc);

    /* F.interpolate(bilinear, align_corners=False) of in (H,W,C), pixel
     * stride ldi, to out (OH,OW,C), pixel stride ldo (a channel slice of a
     * concatenation); out += when accumulate. Same size: a copy / add. */
    int (*bilinear)(vm_be *be, const float *in, int H, int W, int C, int ldi, float *out, int OH, int OW, int ldo,
                    int accumulate);
    /* nn.AdaptiveAvgPool2d(s): in (H,W,C) dense -> out (s,s,C). */
    int (*avgpool)(vm_be *be, const float *in, int H, int W, int C, int s, float *out);
    /* dst (Ho,Wo,C) += F.interpolate(src (Hi,Wi,C), size, 'nearest'). */
    int (*upsample_add)(vm_be *be, float *dst, int Ho, int Wo, const float *src, int Hi, int Wi, int C);
    /* max_pool2d(kernel 1, stride 2): dst ((H+1)/2, (W+1)/2, C) = src[2y][2x]. */
    int (*subsample2)(vm_be *be, const float *src, int H, int W, int C, float *dst);
    /* RoIAlign (mmcv / torchvision: aligned, adaptive sampling ratio,
     * average) of n boxes on an FPN pyramid, so that the maps never leave
     * the backend: box i (host array: x1 y1 x2 y2 at boxes + i * bstride,
     * resized frame) is pooled on level l = vm_roi_level(box, 56, nlev) of
     * maps[l] (backend memory, (H[l], W[l], C), stride 4 << l) into out + i
     * S S C ((S, S, C), backend memory). Bit for bit what vm_roi_align
     * (post/det_post.h) gives on the host. n == 0 does nothing. */
    int (*roi_align)(vm_be *be, const float *const *maps, const int *H, const int *W, int nlev, int C,
                     const float *boxes, int bstride, int n, int S, float *out);
    /* The FCN mask head's last two steps for n RoIs, only the RoI's own
     * class: up (n, S, S, 4 Cm) is the k2 s2 deconvolution's GEMM output
     * (per input pixel, rows (i, j, co)); logits (n, 2S, 2S) get
     * lb[l] + sum over c in order of relu(up[y][x][i][j][c] + up_b[c]) *
     * lw[l][c] at (2y + i, 2x + j), l = labels[r] (host ints). up_b (Cm),
     * lw (ncls, Cm), lb (ncls) from weights(); up, logits backend memory. */
    int (*mask_logits)(vm_be *be, const float *up, int n, int S, int Cm, const float *up_b, const float *lw,
                       const float *lb, const int *labels, float *logits);
    void (*release)(vm_be *be);
};

/* The CPU backend over a context's oneDNN exec (stream + scratchpad);
 * x may be NULL (a stream of its own). */
struct vm_dnnl_exec;
vm_be *vm_be_cpu_new(struct vm_dnnl_exec *x, char *err, size_t errlen);
/* The CUDA backend on device `device` (own stream and cuBLAS handle).
 * NULL with a message in a build without CUDA or without a device. */
vm_be *vm_be_cuda_new(int device, char *err, size_t errlen);
/* Tests: the CPU backend claiming its memory is not the host's, so that
 * the heads take their device paths (uploads, downloads, host views) on a
 * machine without a GPU; results must equal the CPU backend's bit for bit. */
vm_be *vm_be_offhost_new(char *err, size_t errlen);
void vm_be_free(vm_be *be);

/* Host views for code that stays on the CPU (NMS, RoIAlign, tests):
 * to_host returns src itself on a host backend, else downloads n floats
 * into tmp (host) and returns tmp; NULL on failure. */
const float *vm_be_to_host(vm_be *be, const float *src, size_t n, float *tmp);

/* Plain scalar references of the ops (the test's ground truth): conv2d
 * NHWC/OIHW with the same semantics as conv_make/conv_run, and linear. */
void vm_conv2d_ref(const float *in, int B, int Cin, int H, int W, int Cout, int k, int stride, int pad,
                   const float *w_oihw, const float *bias, int relu, float *out);
/* INT8: src quantised as qconv_make says, s32 sums, scaled in double. */
void vm_qconv2d_ref(const float *in, int B, int Cin, int H, int W, int Cout, int k, int stride, int pad,
                    const int8_t *w8, const float *w_scale, float a_scale, int zp, const float *bias, int relu,
                    double *out);
void vm_linear_ref(int M, int N, int K, const float *A, int lda, const float *W, const float *b, int relu, float *C,
                   int ldc);
void vm_upsample_add_ref(float *dst, int Ho, int Wo, const float *src, int Hi, int Wi, int C);
void vm_subsample2_ref(const float *src, int H, int W, int C, float *dst);
/* PyTorch's nearest source index (upsample_add). */
int vm_nearest_idx(int o, int in, int out);

#ifdef __cplusplus
}
#endif
#endif
