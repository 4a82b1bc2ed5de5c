/* ops.cu - the CUDA backend of src/ops/backend.h, for the heads.
 *
 * One per context: its own device, stream and cuBLAS handle. Buffers are
 * device memory (cudaMalloc). Convolutions are im2col (in row chunks that
 * bound the workspace) + one FP32 cuBLAS GEMM against the weights
 * re-laid once at plan time as [Cout][ky][kx][Cin], then a bias/ReLU pass;
 * 1x1 stride-1 convolutions skip the im2col. linear is the same GEMM.
 * Weights (linear's and the re-laid convolution weights) are uploaded once
 * per backend and shared by every plan (wcache.h): a new input shape makes
 * new plans but copies no weights.
 * The resizes, pools and copies do the same float operations in the same
 * order as src/ops/dense.c and backend_cpu.c with explicit round-to-nearest
 * intrinsics (no FMA contraction), so they are expected to match the CPU
 * bit for bit; only the GEMMs' summation order differs.
 *
 * The math mode is CUBLAS_DEFAULT_MATH with FP32 GEMMs: true FP32, never
 * TF32 (unless NVIDIA_TF32_OVERRIDE=1 is set in the environment). */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/backend.h"
#include "ops/wcache.h"
#include "keep_device.cuh"

extern "C" int vm_roi_level(const float box[4], float finest_scale, int nlevels); /* post/det_post.h */

namespace {

struct impl {
    int device;
    cudaStream_t s;
    cublasHandle_t blas;
    float *ws;      /* im2col workspace */
    size_t ws_n;
    vm_wcache wc;   /* the weights' device copies, one per host array (wcache.h) */
    float *roi;     /* roi_align's boxes and levels, grown to the largest n */
    size_t roi_n;
};

/* im2col chunks: at most this many floats (256 MiB) per chunk */
const size_t WS_MAX = (size_t)64 << 20;

int fail(vm_be *be, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(be->err, sizeof be->err, fmt, ap);
    va_end(ap);
    return -1;
}

impl *I(vm_be *be) { return (impl *)be->impl; }

/* Selects the backend's device. Every caller holds a keep_device first
 * (keep_device.cuh): the heads call these ops from the application's
 * thread, which leaves on the device it came in with. */
int cur(vm_be *be) {
    cudaError_t e = cudaSetDevice(I(be)->device);
    if (e != cudaSuccess) return fail(be, "CUDA: cannot select device %d: %s", I(be)->device, cudaGetErrorString(e));
    return 0;
}

/* After launches: a launch error (bad configuration...) as -1. */
int launched(vm_be *be, const char *what) {
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return fail(be, "CUDA: %s: %s", what, cudaGetErrorString(e));
    return 0;
}

/* ---- kernels --------------------------------------------------------- */

/* The mask head's per-class 1x1 logits after the deconvolution (backend.h
 * mask_logits): one thread per output pixel, the channel sum in order with
 * round-to-nearest (no FMA), as the CPU loop. lab: the RoIs' labels. */
__global__ void k_mask_logits(const float *up, int n, int S, int Cm, const float *up_b, const float *lw, const float *lb,
                              const int *lab, float *logits) {
    size_t total = (size_t)n * S * S * 4;
    const int S2 = 2 * S;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        int q = (int)(i % 4);
        size_t px = i / 4;
        int x = (int)(px % S), y = (int)((px / S) % S);
        size_t r = px / ((size_t)S * S);
        const float *u = up + px * 4 * Cm + (size_t)q * Cm, *w = lw + (size_t)lab[r] * Cm;
        float acc = 0.0f;
        for (int c = 0; c < Cm; c++) {
            float v = __fadd_rn(u[c], up_b[c]);
            acc = __fadd_rn(acc, __fmul_rn(v > 0.0f ? v : 0.0f, w[c]));
        }
        logits[((size_t)r * S2 + 2 * y + q / 2) * S2 + 2 * x + q % 2] = __fadd_rn(acc, lb[lab[r]]);
    }
}

/* RoIAlign on a pyramid of up to 4 NHWC maps (roi_align below). */
struct roi_maps {
    const float *p[4];
    int H[4], W[4];
};

/* src/post/roi_align.c's vm_roi_align for one output element (box r, bin
 * ph, pw, channel c): the same float operations in the same order, each
 * rounded to nearest (no FMA contraction), so the result is the host's
 * bit for bit. boxes: (n, 4); lev: the box's level as float (host-chosen). */
__global__ void k_roi_align(roi_maps m, int C, const float *boxes, const float *lev, int n, int S, float *out) {
    size_t total = (size_t)n * S * S * C;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
        int c = (int)(i % C);
        size_t bin = i / C;
        int pw = (int)(bin % S), ph = (int)((bin / S) % S);
        size_t r = bin / ((size_t)S * S);
        int l = (int)lev[r], H = m.H[l], W = m.W[l];
        const float *f = m.p[l];
        const float *b = boxes + 4 * r;
        const float scale = __fdiv_rn(1.0f, (float)(4 << l)), off = 0.5f;
        float sw = __fsub_rn(__fmul_rn(b[0], scale), off), sh = __fsub_rn(__fmul_rn(b[1], scale), off);
        float ew = __fsub_rn(__fmul_rn(b[2], scale), off), eh = __fsub_rn(__fmul_rn(b[3], scale), off);
        float rw = __fsub_rn(ew, sw), rh = __fsub_rn(eh, sh);
        float bh = __fdiv_rn(rh, (float)S), bw = __fdiv_rn(rw, (float)S);
        float gh = ceilf(__fdiv_rn(rh, (float)S)), gw = ceilf(__fdiv_rn(rw, (float)S));
        int grid_h = (gh >= 0.0f && gh < 65536.0f) ? (int)gh : 0, grid_w = (gw >= 0.0f && gw < 65536.0f) ? (int)gw : 0;
        int cnt = grid_h * grid_w;
        float count = (float)(cnt > 1 ? cnt : 1);
        float acc = 0.0f;
        for (int iy = 0; iy < grid_h; iy++) {
            float y = __fadd_rn(__fadd_rn(sh, __fmul_rn((float)ph, bh)),
                                __fdiv_rn(__fmul_rn(__fadd_rn((float)iy, 0.5f), bh), (float)grid_h));
            for (int ix = 0; ix < grid_w; ix++) {
                float x = __fadd_rn(__fadd_rn(sw, __fmul_rn((float)pw, bw)),
                                    __fdiv_rn(__fmul_rn(__fadd_rn((float)ix, 0.5f), bw), (float)grid_w));
                if (y < -1.0f || y > (float)H || x < -1.0f || x > (float)W) continue; /* all weights 0 */
                float yy = y <= 0 ? 0.0f : y, xx = x <= 0 ? 0.0f : x;
                int yl = (int)yy, xl = (int)xx, yh, xh;
                if (yl >= H - 1) { yh = yl = H - 1; yy = (float)yl; } else yh = yl + 1;
                if (xl >= W - 1) { xh = xl = W - 1; xx = (float)xl; } else xh = xl + 1;
                float ly = __fsub_rn(yy, (float)yl), lx = __fsub_rn(xx, (float)xl);
                float hy = __fsub_rn(1.0f, ly), hx = __fsub_rn(1.0f, lx);
                float w1 = __fmul_rn(hy, hx), w2 = __fmul_rn(hy, lx), w3 = __fmul_rn(ly, hx), w4 = __fmul_rn(ly, lx);
                if (w1 == 0.0f && w2 == 0.0f && w3 == 0.0f && w4 == 0.0f) continue;
                float v = __fadd_rn(__fadd_rn(__fadd_rn(__fmul_rn(w1, f[((size_t)yl * W + xl) * C + c]),
                                                        __fmul_rn(w2, f[((size_t)yl * W + xh) * C + c])),
                                              __fmul_rn(w3, f[((size_t)yh * W + xl) * C + c])),
                                    __fmul_rn(w4, f[((size_t)yh * W + xh) * C + c]));
                acc = __fadd_rn(acc, v);
            }
        }
        out[i] = __fdiv_rn(acc, count);
    }
}

__global__ void k_im2col(float *col, const float *in, int H, int W, int C, int k, int st, int p, int OH, int OW,
                         size_t row0, size_t nrows) {
    size_t Kc = (size_t)k * k * C, n = nrows * Kc;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / Kc, q = i % Kc, row = row0 + r;
        int ci = (int)(q % C), t = (int)(q / C), kx = t % k, ky = t / k;
        int ox = (int)(row % OW), oy = (int)((row / OW) % OH), b = (int)(row / ((size_t)OW * OH));
        int iy = oy * st - p + ky, ix = ox * st - p + kx;
        col[i] = iy >= 0 && iy < H && ix >= 0 && ix < W ? in[(((size_t)b * H + iy) * W + ix) * C + ci] : 0.0f;
    }
}

__global__ void k_bias_act(float *C, int ldc, size_t M, int N, const float *b, int relu) {
    size_t n = M * N;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t r = i / N;
        int j = (int)(i % N);
        float *c = C + r * ldc + j;
        float v = b ? __fadd_rn(*c, b[j]) : *c;
        *c = relu && v < 0.0f ? 0.0f : v;
    }
}

/* vm_bilin_axis_make's index rule for output index d. */
__device__ void bilin_axis(int d, int in, int out, int *i0, int *i1, float *l0, float *l1) {
    if (in == out) {
        *i0 = *i1 = d;
        *l0 = 1.0f;
        *l1 = 0.0f;
        return;
    }
    float scale = __fdiv_rn((float)in, (float)out);
    double src = __dadd_rn(__dmul_rn((double)scale, (double)d + 0.5), -0.5);
    if (src < 0) src = 0;
    int a = (int)src;
    if (a > in - 1) a = in - 1;
    *i0 = a;
    *i1 = a < in - 1 ? a + 1 : a;
    *l1 = (float)(src - a);
    *l0 = __fsub_rn(1.0f, *l1);
}

__global__ void k_bilinear(const float *in, int H, int W, int C, int ldi, float *out, int OH, int OW, int ldo, int acc) {
    size_t n = (size_t)OH * OW * C;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        int c = (int)(i % C);
        size_t px = i / C;
        int x = (int)(px % OW), y = (int)(px / OW);
        float v;
        if (H == OH && W == OW) {
            v = in[px * ldi + c];
        } else {
            int y0, y1, x0, x1;
            float ly0, ly1, lx0, lx1;
            bilin_axis(y, H, OH, &y0, &y1, &ly0, &ly1);
            bilin_axis(x, W, OW, &x0, &x1, &lx0, &lx1);
            const float *r0 = in + (size_t)y0 * W * ldi, *r1 = in + (size_t)y1 * W * ldi;
            float t0 = __fadd_rn(__fmul_rn(r0[(size_t)x0 * ldi + c], lx0), __fmul_rn(r0[(size_t)x1 * ldi + c], lx1));
            float t1 = __fadd_rn(__fmul_rn(r1[(size_t)x0 * ldi + c], lx0), __fmul_rn(r1[(size_t)x1 * ldi + c], lx1));
            v = __fadd_rn(__fmul_rn(t0, ly0), __fmul_rn(t1, ly1));
        }
        float *o = out + px * ldo + c;
        *o = acc ? __fadd_rn(*o, v) : v;
    }
}

__device__ int bin_start(int i, int n, int s) { return (int)((long long)i * n / s); }
__device__ int bin_end(int i, int n, int s) { return (int)(((long long)(i + 1) * n + s - 1) / s); }

__global__ void k_avgpool(const float *in, int H, int W, int C, int s, float *out) {
    size_t n = (size_t)s * s * C;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        int c = (int)(i % C), bin = (int)(i / C), bi = bin / s, bj = bin % s;
        int h0 = bin_start(bi, H, s), h1 = bin_end(bi, H, s), w0 = bin_start(bj, W, s), w1 = bin_end(bj, W, s);
        float sum = 0.0f;
        for (int y = h0; y < h1; y++)
            for (int x = w0; x < w1; x++) sum = __fadd_rn(sum, in[((size_t)y * W + x) * C + c]);
        out[i] = __fdiv_rn(__fdiv_rn(sum, (float)(h1 - h0)), (float)(w1 - w0));
    }
}

__device__ int nearest_idx(int o, int in, int out) {
    if (out == 2 * in) return o >> 1;
    if (out == in) return o;
    float scale = __fdiv_rn((float)in, (float)out);
    int i = (int)floorf(__fmul_rn((float)o, scale));
    return i < in - 1 ? i : in - 1;
}

__global__ void k_upsample_add(float *dst, int Ho, int Wo, const float *src, int Hi, int Wi, int C) {
    size_t n = (size_t)Ho * Wo * C;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        int c = (int)(i % C);
        size_t px = i / C;
        int x = (int)(px % Wo), y = (int)(px / Wo);
        dst[i] = __fadd_rn(dst[i], src[((size_t)nearest_idx(y, Hi, Ho) * Wi + nearest_idx(x, Wi, Wo)) * C + c]);
    }
}

__global__ void k_subsample2(const float *src, int H, int W, int C, float *dst) {
    int Ho = (H + 1) / 2, Wo = (W + 1) / 2;
    size_t n = (size_t)Ho * Wo * C;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        int c = (int)(i % C);
        size_t px = i / C;
        int x = (int)(px % Wo), y = (int)(px / Wo);
        dst[i] = src[((size_t)(2 * y) * W + 2 * x) * C + c];
    }
}

const int T = 256;
unsigned grid(size_t n) {
    size_t g = (n + T - 1) / T;
    return (unsigned)(g < 65535 * 8 ? (g ? g : 1) : 65535 * 8);
}

/* ---- the vm_be functions --------------------------------------------- */

float *c_alloc(vm_be *be, size_t n) {
    keep_device kd;
    if (cur(be)) return NULL;
    be->nalloc++;
    void *p = NULL;
    if (cudaMalloc(&p, sizeof(float) * (n ? n : 1)) != cudaSuccess) {
        cudaGetLastError();
        fail(be, "CUDA: out of device memory (%zu bytes)", sizeof(float) * n);
        return NULL;
    }
    return (float *)p;
}

void c_free(vm_be *be, float *p) {
    if (!p) return;
    keep_device kd;
    cur(be);
    cudaStreamSynchronize(I(be)->s); /* work queued on it may still read p */
    cudaFree(p);
}

int c_upload(vm_be *be, float *dst, const float *src, size_t n) {
    keep_device kd;
    if (cur(be)) return -1;
    /* synchronous: the host buffer may be reused as soon as this returns */
    if (cudaMemcpyAsync(dst, src, sizeof(float) * n, cudaMemcpyHostToDevice, I(be)->s) != cudaSuccess ||
        cudaStreamSynchronize(I(be)->s) != cudaSuccess)
        return fail(be, "CUDA: upload of %zu floats failed: %s", n, cudaGetErrorString(cudaGetLastError()));
    return 0;
}

int c_download(vm_be *be, float *dst, const float *src, size_t n) {
    keep_device kd;
    if (cur(be)) return -1;
    if (cudaMemcpyAsync(dst, src, sizeof(float) * n, cudaMemcpyDeviceToHost, I(be)->s) != cudaSuccess ||
        cudaStreamSynchronize(I(be)->s) != cudaSuccess)
        return fail(be, "CUDA: download of %zu floats failed: %s", n, cudaGetErrorString(cudaGetLastError()));
    return 0;
}

int c_sync(vm_be *be) {
    keep_device kd;
    if (cur(be)) return -1;
    cudaError_t e = cudaStreamSynchronize(I(be)->s);
    if (e != cudaSuccess) return fail(be, "CUDA: %s", cudaGetErrorString(e));
    return 0;
}

void drop_dev(vm_be *be, float *d) { c_free(be, d); }

/* A device copy of host: as it is (layout 0), or convolution weights OIHW
 * re-laid as [Cout][ky][kx][Cin] (layout = k << 20 | Cin). */
float *make_dev(vm_be *be, const float *host, size_t n, int layout, void *user) {
    (void)user;
    const float *src = host;
    float *t = NULL;
    if (layout) {
        int k = layout >> 20, Cin = layout & 0xfffff;
        size_t Kc = (size_t)k * k * Cin, Cout = n / Kc;
        if (!(t = (float *)malloc(sizeof(float) * (n ? n : 1)))) {
            fail(be, "out of memory re-laying convolution weights");
            return NULL;
        }
        for (size_t o = 0; o < Cout; o++)
            for (int ci = 0; ci < Cin; ci++)
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++)
                        t[o * Kc + ((size_t)ky * k + kx) * Cin + ci] = host[(((o * Cin) + ci) * k + ky) * k + kx];
        src = t;
    }
    float *d = c_alloc(be, n);
    if (d && c_upload(be, d, src, n)) {
        c_free(be, d);
        d = NULL;
    }
    free(t);
    return d;
}

const float *c_weights(vm_be *be, const float *host, size_t n) {
    return vm_wcache_get(&I(be)->wc, be, host, n, 0, make_dev, NULL, drop_dev);
}

void c_free_weights(vm_be *be, const float *w) {
    if (vm_wcache_put(&I(be)->wc, w)) c_free(be, (float *)w);
}

/* C[M][N] (ldc) = A[M][K] (lda) W[N][K]^T: column-major C^T = W^T^T A^T. */
int gemm(vm_be *be, size_t M, int N, int K, const float *A, int lda, const float *W, float *C, int ldc) {
    const float one = 1.0f, zero = 0.0f;
    cublasStatus_t st = cublasSgemm(I(be)->blas, CUBLAS_OP_T, CUBLAS_OP_N, N, (int)M, K, &one, W, K, A, lda, &zero, C, ldc);
    if (st != CUBLAS_STATUS_SUCCESS) return fail(be, "cuBLAS: sgemm %zux%dx%d failed (status %d)", M, N, K, (int)st);
    return 0;
}

int c_linear(vm_be *be, int M, int N, int K, const float *A, int lda, const float *W, const float *b, int relu,
             float *C, int ldc) {
    if (M == 0 || N == 0) return 0;
    keep_device kd;
    if (cur(be) || gemm(be, (size_t)M, N, K, A, lda, W, C, ldc)) return -1;
    if (b || relu) k_bias_act<<<grid((size_t)M * N), T, 0, I(be)->s>>>(C, ldc, (size_t)M, N, b, relu);
    return launched(be, "linear");
}

} // namespace

struct vm_be_conv {
    int B, Cin, H, W, Cout, k, stride, pad, relu, OH, OW;
    float *w, *b; /* [Cout][k][k][Cin], [Cout] or NULL */
};

namespace {

vm_be_conv *c_conv_make(vm_be *be, int B, int Cin, int H, int W, int Cout, int k, int stride, int pad,
                        const float *w, const float *bias, int relu) {
    int OH = (H + 2 * pad - k) / stride + 1, OW = (W + 2 * pad - k) / stride + 1;
    if (B < 1 || Cin < 1 || Cout < 1 || k < 1 || stride < 1 || OH < 1 || OW < 1) {
        fail(be, "CUDA conv: bad shape B%d C%d %dx%d -> C%d k%d s%d p%d", B, Cin, H, W, Cout, k, stride, pad);
        return NULL;
    }
    if (Cin >= (1 << 20) || k >= (1 << 11)) {
        fail(be, "CUDA conv: %d input channels, kernel %d: too large", Cin, k);
        return NULL;
    }
    vm_be_conv *c = (vm_be_conv *)calloc(1, sizeof *c);
    size_t Kc = (size_t)k * k * Cin;
    if (!c) {
        fail(be, "out of memory for a convolution plan");
        return NULL;
    }
    *c = vm_be_conv{B, Cin, H, W, Cout, k, stride, pad, relu, OH, OW, NULL, NULL};
    c->w = vm_wcache_get(&I(be)->wc, be, w, Kc * Cout, k << 20 | Cin, make_dev, NULL, drop_dev);
    if (c->w && bias) c->b = (float *)c_weights(be, bias, Cout);
    if (!c->w || (bias && !c->b)) {
        c_free_weights(be, c->w);
        free(c);
        return NULL;
    }
    /* the im2col workspace, grown once here (not while running) */
    if (!(k == 1 && stride == 1 && pad == 0)) {
        size_t rows = (size_t)B * OH * OW, per = WS_MAX / Kc ? WS_MAX / Kc : 1;
        size_t need = (rows < per ? rows : per) * Kc;
        if (need > I(be)->ws_n) {
            c_free(be, I(be)->ws);
            I(be)->ws_n = 0;
            if (!(I(be)->ws = c_alloc(be, need))) {
                c_free_weights(be, c->w);
                c_free_weights(be, c->b);
                free(c);
                return NULL;
            }
            I(be)->ws_n = need;
        }
    }
    return c;
}

int c_conv_run(vm_be *be, vm_be_conv *c, const float *src, float *dst) {
    keep_device kd;
    if (cur(be)) return -1;
    size_t rows = (size_t)c->B * c->OH * c->OW, Kc = (size_t)c->k * c->k * c->Cin;
    cudaStream_t s = I(be)->s;
    if (c->k == 1 && c->stride == 1 && c->pad == 0) {
        if (gemm(be, rows, c->Cout, c->Cin, src, c->Cin, c->w, dst, c->Cout)) return -1;
    } else {
        size_t per = I(be)->ws_n / Kc;
        if (per < 1) return fail(be, "CUDA conv: workspace not planned");
        for (size_t r0 = 0; r0 < rows; r0 += per) {
            size_t nr = rows - r0 < per ? rows - r0 : per;
            k_im2col<<<grid(nr * Kc), T, 0, s>>>(I(be)->ws, src, c->H, c->W, c->Cin, c->k, c->stride, c->pad, c->OH,
                                                 c->OW, r0, nr);
            if (launched(be, "im2col")) return -1;
            if (gemm(be, nr, c->Cout, (int)Kc, I(be)->ws, (int)Kc, c->w, dst + r0 * c->Cout, c->Cout)) return -1;
        }
    }
    if (c->b || c->relu) k_bias_act<<<grid(rows * c->Cout), T, 0, s>>>(dst, c->Cout, rows, c->Cout, c->b, c->relu);
    return launched(be, "conv bias/ReLU");
}

void c_conv_free(vm_be *be, vm_be_conv *c) {
    if (!c) return;
    c_free_weights(be, c->w);
    c_free_weights(be, c->b);
    free(c);
}

int c_bilinear(vm_be *be, const float *in, int H, int W, int C, int ldi, float *out, int OH, int OW, int ldo,
               int accumulate) {
    keep_device kd;
    if (cur(be)) return -1;
    k_bilinear<<<grid((size_t)OH * OW * C), T, 0, I(be)->s>>>(in, H, W, C, ldi, out, OH, OW, ldo, accumulate);
    return launched(be, "bilinear");
}

int c_avgpool(vm_be *be, const float *in, int H, int W, int C, int s, float *out) {
    keep_device kd;
    if (cur(be)) return -1;
    k_avgpool<<<grid((size_t)s * s * C), T, 0, I(be)->s>>>(in, H, W, C, s, out);
    return launched(be, "adaptive avgpool");
}

int c_upsample_add(vm_be *be, float *dst, int Ho, int Wo, const float *src, int Hi, int Wi, int C) {
    keep_device kd;
    if (cur(be)) return -1;
    k_upsample_add<<<grid((size_t)Ho * Wo * C), T, 0, I(be)->s>>>(dst, Ho, Wo, src, Hi, Wi, C);
    return launched(be, "nearest upsample-add");
}

int c_subsample2(vm_be *be, const float *src, int H, int W, int C, float *dst) {
    keep_device kd;
    if (cur(be)) return -1;
    k_subsample2<<<grid((size_t)((H + 1) / 2) * ((W + 1) / 2) * C), T, 0, I(be)->s>>>(src, H, W, C, dst);
    return launched(be, "stride-2 subsample");
}

int c_roi_align(vm_be *be, const float *const *maps, const int *H, const int *W, int nlev, int C, const float *boxes,
                int bstride, int n, int S, float *out) {
    if (n <= 0) return 0;
    if (nlev < 1 || nlev > 4) return fail(be, "CUDA roi_align: %d levels (1..4)", nlev);
    keep_device kd;
    if (cur(be)) return -1;
    impl *p = I(be);
    size_t need = (size_t)n * 5;
    if (need > p->roi_n) {
        if (p->s) cudaStreamSynchronize(p->s); /* the old buffer may still be read */
        cudaFree(p->roi);
        p->roi = NULL;
        p->roi_n = 0;
        if (!(p->roi = c_alloc(be, need))) return -1;
        p->roi_n = need;
    }
    /* boxes (n, 4) then each box's level (as float), chosen on the host by
     * the same vm_roi_level the CPU uses */
    float *h = (float *)malloc(sizeof(float) * need);
    if (!h) return fail(be, "out of memory for %d RoIs", n);
    for (int i = 0; i < n; i++) {
        const float *b = boxes + (size_t)i * bstride;
        memcpy(h + 4 * (size_t)i, b, 4 * sizeof(float));
        h[(size_t)4 * n + i] = (float)vm_roi_level(b, 56.0f, nlev);
    }
    cudaError_t e = cudaMemcpyAsync(p->roi, h, sizeof(float) * need, cudaMemcpyHostToDevice, p->s);
    if (e == cudaSuccess) e = cudaStreamSynchronize(p->s); /* h is freed below */
    free(h);
    if (e != cudaSuccess) return fail(be, "CUDA roi_align upload: %s", cudaGetErrorString(e));
    roi_maps m;
    for (int l = 0; l < 4; l++) {
        m.p[l] = maps[l < nlev ? l : 0];
        m.H[l] = H[l < nlev ? l : 0];
        m.W[l] = W[l < nlev ? l : 0];
    }
    k_roi_align<<<grid((size_t)n * S * S * C), T, 0, p->s>>>(m, C, p->roi, p->roi + (size_t)4 * n, n, S, out);
    return launched(be, "RoIAlign");
}

int c_mask_logits(vm_be *be, const float *up, int n, int S, int Cm, const float *up_b, const float *lw, const float *lb,
                  const int *labels, float *logits) {
    if (n <= 0) return 0;
    keep_device kd;
    if (cur(be)) return -1;
    impl *p = I(be);
    size_t need = (size_t)n; /* the labels, as ints in the float buffer */
    if (need > p->roi_n) {
        if (p->s) cudaStreamSynchronize(p->s);
        cudaFree(p->roi);
        p->roi = NULL;
        p->roi_n = 0;
        if (!(p->roi = c_alloc(be, need))) return -1;
        p->roi_n = need;
    }
    static_assert(sizeof(int) == sizeof(float), "labels share the float buffer");
    /* synchronous from pageable memory: labels may change after return */
    cudaError_t e = cudaMemcpyAsync(p->roi, labels, sizeof(int) * (size_t)n, cudaMemcpyHostToDevice, p->s);
    if (e == cudaSuccess) e = cudaStreamSynchronize(p->s);
    if (e != cudaSuccess) return fail(be, "CUDA mask logits upload: %s", cudaGetErrorString(e));
    k_mask_logits<<<grid((size_t)n * S * S * 4), T, 0, p->s>>>(up, n, S, Cm, up_b, lw, lb, (const int *)p->roi, logits);
    return launched(be, "mask logits");
}

void c_release(vm_be *be) {
    impl *p = I(be);
    if (!p) return;
    keep_device kd; /* the caller's device back on return */
    cudaSetDevice(p->device);
    if (p->s) cudaStreamSynchronize(p->s);
    vm_wcache_clear(&p->wc, be, drop_dev);
    cudaFree(p->ws);
    cudaFree(p->roi);
    if (p->blas) cublasDestroy(p->blas);
    if (p->s) cudaStreamDestroy(p->s);
    free(p);
    be->impl = NULL;
}

} // namespace

extern "C" vm_be *vm_be_cuda_new(int device, char *err, size_t errlen) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n < 1) {
        cudaGetLastError();
        snprintf(err, errlen, "no CUDA device found");
        return NULL;
    }
    if (device < 0 || device >= n) {
        snprintf(err, errlen, "CUDA device %d does not exist (%d found)", device, n);
        return NULL;
    }
    vm_be *be = (vm_be *)calloc(1, sizeof *be);
    impl *p = (impl *)calloc(1, sizeof *p);
    if (!be || !p) {
        free(be);
        free(p);
        snprintf(err, errlen, "out of memory for the CUDA backend");
        return NULL;
    }
    p->device = device;
    be->impl = p;
    keep_device kd; /* the stream and handle are made on `device`: the caller's back on return */
    be->wcache = &p->wc;
    if (cudaSetDevice(device) != cudaSuccess || cudaStreamCreateWithFlags(&p->s, cudaStreamNonBlocking) != cudaSuccess) {
        snprintf(err, errlen, "CUDA: cannot create a stream on device %d: %s", device, cudaGetErrorString(cudaGetLastError()));
        c_release(be);
        free(be);
        return NULL;
    }
    if (cublasCreate(&p->blas) != CUBLAS_STATUS_SUCCESS) {
        p->blas = NULL;
        snprintf(err, errlen, "cuBLAS: cannot create a handle on device %d", device);
        c_release(be);
        free(be);
        return NULL;
    }
    /* checked as make_streams does: a handle left on the default stream
     * would serialise the heads' GEMMs with every other stream */
    if (cublasSetStream(p->blas, p->s) != CUBLAS_STATUS_SUCCESS ||
        cublasSetMathMode(p->blas, CUBLAS_DEFAULT_MATH) != CUBLAS_STATUS_SUCCESS) {
        snprintf(err, errlen, "cuBLAS: cannot set up the handle on device %d", device);
        c_release(be);
        free(be);
        return NULL;
    }
    be->name = "cuda";
    be->host = 0;
    be->alloc = c_alloc;
    be->free = c_free;
    be->upload = c_upload;
    be->download = c_download;
    be->sync = c_sync;
    be->weights = c_weights;
    be->free_weights = c_free_weights;
    be->conv_make = c_conv_make;
    be->conv_run = c_conv_run;
    be->conv_free = c_conv_free;
    be->qconv_make = NULL; /* INT8 heads (calibrated files) run on the CPU only */
    be->linear = c_linear;
    be->bilinear = c_bilinear;
    be->avgpool = c_avgpool;
    be->upsample_add = c_upsample_add;
    be->subsample2 = c_subsample2;
    be->roi_align = c_roi_align;
    be->mask_logits = c_mask_logits;
    be->release = c_release;
    return be;
}
