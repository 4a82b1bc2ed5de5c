/* backend.cu - the CUDA backend: weights uploaded once per device (the
 * model's per-device copies, shared and read-only: a context on cuda:0 and
 * one on cuda:1 each find theirs), activations kept on the GPU in one arena
 * planned per input shape, inputs up and logits / features down once per
 * call. Each vm_ctx gets its own state on its device: a shallow copy of that
 * device's weight state with its own stream, cuBLAS handle, events and
 * arena, so contexts on several threads run concurrently. GEMMs through cuBLAS (FP32, or TF32 / FP16
 * / BF16 tensor cores with FP32 storage and accumulation); convolutions
 * as im2col + GEMM; everything else in kernels.cu. The maths and layouts
 * are those of src/model/forward.c (token-major activations). */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.cuh"
#include "keep_device.cuh"
/* Built only with --with-cuda (nvcc does not read config.h): model.h's
 * declarations of this file's entry points are wanted here too. */
#ifndef VM_HAVE_CUDA
#define VM_HAVE_CUDA 1
#endif
#include "model/model.h"
#include "net/backbone.h"
#include <time.h>
extern "C" {
#include "core/util.h"
}

namespace {

/* The input goes up in this many pieces; the stem convolution of each
 * runs as soon as it lands, overlapping the next piece's copy. */
#define UPLOAD_PIECES 4

struct dconv { float *w, *b; int cin, cout, k, stride, pad; }; /* w: [cout][k][k][cin] */
struct dln { float *w, *b; int C; };
struct dblock {
    dln norm, out_norm, norm2;
    float *in_proj, *conv_w, *conv_b, *x_proj, *dt_w, *dt_b, *A, *Ds, *out_proj, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
};
struct dstage { dblock *blocks; dln ds_norm, outnorm; float *ds_reduction; dconv ds_conv; };

struct state {
    cudaStream_t stream;
    cublasHandle_t blas;
    cublasComputeType_t compute;
    dconv pe1, pe2;
    dln pe_norm1, pe_norm2, cls_norm;
    float *head_w, *head_b;
    dstage st[4];
    float **allocs;
    size_t nallocs, cap;
    /* plan */
    int B, H, W, h[4], w[4], h1, w1;
    float *arena, *in, *x, *t0, *t1, *t2, *t3, *t5, *col, *out, *scan;
    float *feat[4];       /* a backbone's outnorm maps, NHWC */
    size_t out_n;
    cudaEvent_t ev0, ev1; /* for --profile */
    cudaStream_t up;      /* input upload, overlapped with the stem */
    cudaEvent_t landed[UPLOAD_PIECES];
    int scan_chunks;      /* VMAMBA_CUDA_SCAN_CHUNKS (tests): 0 = fit the GPU */
    int direct_stem;      /* VMAMBA_CUDA_DIRECT_STEM=0 (tests): im2col stem */
    vm_profile *prof;     /* the calling context's (set by forward) */
    int device;           /* where the weights live */
    unsigned long gen;    /* the upload: unique per weight state; a context's copy keeps its base's */
};

/* The model's weight states, one per device, in m->dev_weights. Made and
 * freed under g_lock; the slots are published with release stores, so a
 * forward reads its device's slot without the lock (a slot is freed only
 * by vm_model_set_device / vm_model_free, when no forward may run). */
struct devtab {
    int n;
    state **w; /* [n], NULL: not on that device */
    int *pins; /* [n], contexts that chose that device (vm_ctx_set_device); under g_lock */
};
pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
unsigned long g_gen; /* under g_lock */


#define CK(call)                                                                                   \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) return vm_errf(err, errlen, "CUDA: %s (%s:%d)", cudaGetErrorString(e_), __FILE__, __LINE__); \
    } while (0)

float *dalloc(state *s, size_t n, const float *host, char *err, size_t errlen) {
    float *p = NULL;
    if (cudaMalloc(&p, (n ? n : 1) * sizeof(float)) != cudaSuccess) {
        vm_errf(err, errlen, "CUDA: out of device memory (%zu bytes)", n * sizeof(float));
        return NULL;
    }
    if (host && cudaMemcpy(p, host, n * sizeof(float), cudaMemcpyHostToDevice) != cudaSuccess) {
        cudaFree(p);
        vm_errf(err, errlen, "CUDA: upload failed");
        return NULL;
    }
    if (s->nallocs == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        float **a = (float **)realloc(s->allocs, cap * sizeof(float *));
        if (!a) {
            cudaFree(p);
            vm_errf(err, errlen, "out of host memory for the CUDA weight table");
            return NULL;
        }
        s->allocs = a;
        s->cap = cap;
    }
    s->allocs[s->nallocs++] = p;
    return p;
}

#define UP(dst, host, n)                                                \
    do {                                                                \
        if (host) {                                                     \
            if (!((dst) = dalloc(s, (n), (host), err, errlen))) return -1; \
        } else (dst) = NULL;                                            \
    } while (0)

/* A linear layer's weights: plain, or unpacked from the CPU pack into a
 * temporary copy (the model's packs are never changed). */
#define UPL(dst, host, pack, n)                                                      \
    do {                                                                             \
        float *tmp_ = NULL;                                                          \
        const float *w_ = vm_linear_values((host), (pack), (n), &tmp_);              \
        if (!w_ && ((host) || (pack))) return vm_errf(err, errlen, "out of memory unpacking weights"); \
        UP(dst, w_, n);                                                              \
        free(tmp_);                                                                  \
    } while (0)

int up_ln(state *s, dln *d, const vm_ln *h, char *err, size_t errlen) {
    d->C = h->C;
    UP(d->w, h->w, (size_t)h->C);
    UP(d->b, h->b, (size_t)h->C);
    return 0;
}

/* Upload host[rows][cols] as [cols][rows]. */
float *up_transposed(state *s, const float *host, size_t rows, size_t cols, char *err, size_t errlen) {
    float *t = (float *)malloc(rows * cols * sizeof(float));
    if (!t) {
        vm_errf(err, errlen, "out of host memory");
        return NULL;
    }
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) t[c * rows + r] = host[r * cols + c];
    float *d = dalloc(s, rows * cols, t, err, errlen);
    free(t);
    return d;
}

/* OIHW -> [cout][kh][kw][cin], the column order of vmc_im2col. */
int up_conv(state *s, dconv *d, const vm_conv *h, char *err, size_t errlen) {
    *d = dconv{NULL, NULL, h->cin, h->cout, h->k, h->stride, h->pad};
    size_t n = (size_t)h->cout * h->cin * h->k * h->k;
    float *t = (float *)malloc(n * sizeof(float));
    if (!t) return vm_errf(err, errlen, "out of host memory re-laying convolution weights");
    for (int o = 0; o < h->cout; o++)
        for (int i = 0; i < h->cin; i++)
            for (int y = 0; y < h->k; y++)
                for (int x = 0; x < h->k; x++)
                    t[(((size_t)o * h->k + y) * h->k + x) * h->cin + i] = h->w[(((size_t)o * h->cin + i) * h->k + y) * h->k + x];
    d->w = dalloc(s, n, t, err, errlen);
    free(t);
    if (!d->w) return -1;
    UP(d->b, h->b, (size_t)h->cout);
    return 0;
}

/* Tests (vm_cuda_test_fail_create): the n-th creation from now of a
 * stream, event or cuBLAS handle in make_streams fails as if out of
 * memory; g_live counts those alive, so that a test sees a failure
 * part-way leave none behind. Atomics: contexts are made on any thread. */
int g_fail_create;
long g_live;

bool injected() {
    return __atomic_load_n(&g_fail_create, __ATOMIC_RELAXED) > 0 &&
           __atomic_sub_fetch(&g_fail_create, 1, __ATOMIC_RELAXED) == 0;
}

void live(long d) { __atomic_add_fetch(&g_live, d, __ATOMIC_RELAXED); }

cudaError_t new_stream(cudaStream_t *q, unsigned flags) {
    *q = NULL;
    cudaError_t e = injected() ? cudaErrorMemoryAllocation : cudaStreamCreateWithFlags(q, flags);
    if (e == cudaSuccess) live(1);
    else *q = NULL;
    return e;
}

cudaError_t new_event(cudaEvent_t *ev, unsigned flags) {
    *ev = NULL;
    cudaError_t e = injected() ? cudaErrorMemoryAllocation : cudaEventCreateWithFlags(ev, flags);
    if (e == cudaSuccess) live(1);
    else *ev = NULL;
    return e;
}

/* Destroys what make_streams made (NULL: not made) and clears it. Never
 * called with NULL handles to the runtime: destroying stream 0 would be
 * the legacy default stream, and a failed destroy would leave an error
 * for the next forward's cudaGetLastError. */
void destroy_streams(state *s) {
    cudaEvent_t *ev[2 + UPLOAD_PIECES] = {&s->ev0, &s->ev1};
    for (int i = 0; i < UPLOAD_PIECES; i++) ev[2 + i] = &s->landed[i];
    for (int i = 0; i < 2 + UPLOAD_PIECES; i++)
        if (*ev[i]) cudaEventDestroy(*ev[i]), *ev[i] = NULL, live(-1);
    if (s->up) cudaStreamDestroy(s->up), s->up = NULL, live(-1);
    if (s->blas) cublasDestroy(s->blas), s->blas = NULL, live(-1);
    if (s->stream) cudaStreamDestroy(s->stream), s->stream = NULL, live(-1);
}

int streams_failed(state *s, const char *what, const char *why, char *err, size_t errlen) {
    cudaGetLastError(); /* not left for the next forward's launch check */
    destroy_streams(s);
    return vm_errf(err, errlen, "CUDA: cannot create %s: %s", what, why);
}

/* A stream, cuBLAS handle and events of one state (a context's), each
 * creation checked: on a failure those made are destroyed (s holds none)
 * and the error returned; the next forward tries again. */
int make_streams(state *s, char *err, size_t errlen) {
    s->stream = s->up = NULL;
    s->blas = NULL;
    s->ev0 = s->ev1 = NULL;
    for (int i = 0; i < UPLOAD_PIECES; i++) s->landed[i] = NULL;
    cudaError_t e = new_stream(&s->stream, cudaStreamDefault);
    if (e != cudaSuccess) return streams_failed(s, "a stream", cudaGetErrorString(e), err, errlen);
    cublasStatus_t st = injected() ? CUBLAS_STATUS_ALLOC_FAILED : cublasCreate(&s->blas);
    if (st != CUBLAS_STATUS_SUCCESS) {
        s->blas = NULL;
        return streams_failed(s, "a cuBLAS handle", cublasGetStatusString(st), err, errlen);
    }
    live(1);
    /* CUBLAS_COMPUTE_32F never uses TF32; the FAST_* types opt in: the
     * compute type alone decides (CUBLAS_DEFAULT_MATH). Checked: a handle
     * left on the legacy default stream would serialise with every other. */
    if ((st = cublasSetStream(s->blas, s->stream)) != CUBLAS_STATUS_SUCCESS ||
        (st = cublasSetMathMode(s->blas, CUBLAS_DEFAULT_MATH)) != CUBLAS_STATUS_SUCCESS)
        return streams_failed(s, "a cuBLAS handle on the context's stream", cublasGetStatusString(st), err, errlen);
    if ((e = new_event(&s->ev0, cudaEventDefault)) != cudaSuccess || (e = new_event(&s->ev1, cudaEventDefault)) != cudaSuccess)
        return streams_failed(s, "an event", cudaGetErrorString(e), err, errlen);
    if ((e = new_stream(&s->up, cudaStreamNonBlocking)) != cudaSuccess)
        return streams_failed(s, "the upload stream", cudaGetErrorString(e), err, errlen);
    for (int i = 0; i < UPLOAD_PIECES; i++)
        if ((e = new_event(&s->landed[i], cudaEventDisableTiming)) != cudaSuccess)
            return streams_failed(s, "an upload event", cudaGetErrorString(e), err, errlen);
    return 0;
}

void free_plan(state *s) {
    if (s->arena) cudaFree(s->arena);
    s->arena = NULL;
    s->B = s->H = s->W = 0;
}

/* Frees one device's weight state (it has no streams or arena of its own). */
void release_weights(state *s) {
    if (!s) return;
    keep_device kd; /* the caller's current device back on return */
    cudaSetDevice(s->device); /* the weights' device, whichever is current */
    for (size_t i = 0; i < s->nallocs; i++) cudaFree(s->allocs[i]);
    free(s->allocs);
    for (int i = 0; i < 4; i++) free(s->st[i].blocks);
    free(s);
}

/* m->dev_free: every device's weights, with the model. */
void release_all(vm_model *m) {
    devtab *t = (devtab *)m->dev_weights;
    if (!t) return;
    for (int i = 0; i < t->n; i++) release_weights(t->w[i]);
    free(t->w);
    free(t->pins);
    free(t);
    m->dev_weights = NULL;
    m->dev_free = NULL;
}

/* Device d's weight state, or NULL (not uploaded). Lock-free (see devtab). */
const state *weights_on(const vm_model *m, int d) {
    const devtab *t = (const devtab *)__atomic_load_n(&m->dev_weights, __ATOMIC_ACQUIRE);
    if (!t || d < 0 || d >= t->n) return NULL;
    return __atomic_load_n(&t->w[d], __ATOMIC_ACQUIRE);
}

/* C[M][N] = A[M][K] W[N][K]^T + beta C, row-major, via column-major cuBLAS. */
int gemm(state *s, int M, int N, int K, const float *A, int lda, const float *Wt, int ldw, float *C, int ldc, float beta) {
    const float one = 1.0f;
    if (M == 0 || N == 0) return 0;
    cublasStatus_t st = cublasGemmEx(s->blas, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &one, Wt, CUDA_R_32F, ldw, A, CUDA_R_32F,
                                     lda, &beta, C, CUDA_R_32F, ldc, s->compute, CUBLAS_GEMM_DEFAULT);
    return st == CUBLAS_STATUS_SUCCESS ? 0 : -1;
}

int conv_out(int in, int k, int st, int p) { return (in + 2 * p - k) / st + 1; }

/* im2col + GEMM + bias: out (B, OH, OW, cout). */
int conv(state *s, const dconv *c, const float *in, int B, int H, int W, float *out, int *OH, int *OW) {
    *OH = conv_out(H, c->k, c->stride, c->pad);
    *OW = conv_out(W, c->k, c->stride, c->pad);
    size_t T = (size_t)B * *OH * *OW;
    int K = c->k * c->k * c->cin;
    vmc_im2col(s->col, in, B, H, W, c->cin, c->k, c->stride, c->pad, *OH, *OW, s->stream);
    vmc_fill_rows(out, c->b, T, c->cout, s->stream);
    return gemm(s, (int)T, c->cout, K, s->col, K, c->w, K, out, c->cout, 1.0f);
}

size_t mx(size_t a, size_t b) { return a > b ? a : b; }

int plan(vm_model *m, state *s, int B, int H, int W, char *err, size_t errlen) {
    if (s->B == B && s->H == H && s->W == W) return 0;
    free_plan(s);
    const vm_info *I = &m->info;
    size_t sx = 0, s0 = (size_t)B * H * W * 3, s1 = 0, s2 = 0, s3 = 0, s5 = 0, scol = 0;
    int h, w;
    if (I->patch_embed_version == 1) {
        h = conv_out(H, s->pe1.k, s->pe1.stride, 0);
        w = conv_out(W, s->pe1.k, s->pe1.stride, 0);
        scol = (size_t)B * h * w * s->pe1.k * s->pe1.k * 3;
    } else {
        s->h1 = conv_out(H, s->pe1.k, s->pe1.stride, 1);
        s->w1 = conv_out(W, s->pe1.k, s->pe1.stride, 1);
        h = conv_out(s->h1, s->pe2.k, s->pe2.stride, 1);
        w = conv_out(s->w1, s->pe2.k, s->pe2.stride, 1);
        s1 = (size_t)B * s->h1 * s->w1 * s->pe1.cout;
        scol = mx((size_t)B * s->h1 * s->w1 * 27, (size_t)B * h * w * 9 * s->pe1.cout);
    }
    if (h < 1 || w < 1) return vm_errf(err, errlen, "input %dx%d is too small for this model", H, W);
    for (int i = 0; i < 4; i++) {
        s->h[i] = h;
        s->w[i] = w;
        const vm_stage *st = &m->st[i];
        size_t T = (size_t)B * h * w, D = st->d_inner, P = (size_t)st->R + 2 * I->d_state;
        sx = mx(sx, T * st->C);
        s0 = mx(s0, T * st->C);
        s1 = mx(s1, mx(T * D * (I->z_gate ? 2 : 1), T * (size_t)st->hidden));
        s1 = mx(s1, (size_t)B * st->C);
        s2 = mx(s2, T * D);
        s3 = mx(s3, T * 4 * P);
        s5 = mx(s5, T * D);
        if (i < 3) {
            int h2 = (h + 1) / 2, w2 = (w + 1) / 2;
            size_t T2 = (size_t)B * h2 * w2;
            s0 = mx(s0, T2 * (I->downsample_version == 1 ? 4 * (size_t)st->C : (size_t)st->C_next));
            sx = mx(sx, T2 * st->C_next);
            if (I->downsample_version == 3) scol = mx(scol, T2 * 9 * st->C);
            h = h2;
            w = w2;
        }
    }
    size_t sscan = 0;
    for (int i = 0; i < 4; i++)
        sscan = mx(sscan, vmc_scan_chunked_scratch(B, s->h[i], s->w[i], m->st[i].d_inner, I->d_state));
    size_t out_n = 0;
    if (I->num_classes) out_n = (size_t)B * I->num_classes;
    for (int i = 0; i < 4 && I->is_backbone; i++) out_n = mx(out_n, (size_t)B * s->h[i] * s->w[i] * I->dims[i]);
    size_t in_n = (size_t)B * 3 * H * W;
    /* a backbone's outnorm maps (NHWC), kept until the features go down */
    size_t sf[4] = {0, 0, 0, 0};
    for (int i = 0; i < 4 && I->is_backbone; i++) sf[i] = (size_t)B * s->h[i] * s->w[i] * I->dims[i];
    size_t sizes[14] = {in_n, sx, s0, s1, s2, s3, s5, scol, out_n, sscan, sf[0], sf[1], sf[2], sf[3]}, total = 0; /* dt is computed inside the scan */
    for (int i = 0; i < 14; i++) total += (sizes[i] + 63) & ~(size_t)63;
    if (cudaMalloc(&s->arena, total * sizeof(float)) != cudaSuccess)
        return vm_errf(err, errlen, "CUDA: out of device memory for batch %d at %dx%d (%.1f GB)", B, H, W, total * 4e-9);
    float **slots[14] = {&s->in, &s->x, &s->t0, &s->t1, &s->t2, &s->t3, &s->t5, &s->col, &s->out, &s->scan,
                         &s->feat[0], &s->feat[1], &s->feat[2], &s->feat[3]};
    size_t off = 0;
    for (int i = 0; i < 14; i++) {
        *slots[i] = sizes[i] ? s->arena + off : NULL;
        off += (sizes[i] + 63) & ~(size_t)63;
    }
    s->out_n = out_n;
    s->B = B;
    s->H = H;
    s->W = W;
    return 0;
}

/* Time `stmt` on the GPU under op `op` when profiling (synchronises). */
#define GPROF(op, stmt)                                                         \
    do {                                                                        \
        if (s->prof->enabled) {                                                  \
            cudaEventRecord(s->ev0, s->stream);                                 \
            stmt;                                                               \
            cudaEventRecord(s->ev1, s->stream);                                 \
            cudaEventSynchronize(s->ev1);                                       \
            float ms_ = 0;                                                      \
            cudaEventElapsedTime(&ms_, s->ev0, s->ev1);                         \
            s->prof->seconds[op] += ms_ * 1e-3;                                  \
        } else {                                                                \
            stmt;                                                               \
        }                                                                       \
    } while (0)


/* ---- the backbone ops (net/backbone.h) on this state ------------------
 * The backbone itself is described once in src/net/backbone.c; these
 * resolve its layer names to the device weights and run the kernels. */

state *S(vm_bb *bb) { return (state *)bb->impl; }

/* Record a failure on the calling context: -1. */
int bb_fail(vm_bb *bb, const char *what) {
    vm_ctx_fail(bb->c, VM_ERR_BACKEND, "CUDA: %s", what);
    return -1;
}

/* Profile clock: the GPU's queue drained first (profiling only). */
double cu_now(vm_bb *bb) {
    cudaStreamSynchronize(S(bb)->stream);
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * t.tv_nsec;
}

const dln *cu_ln(state *s, vm_bb_layer l, int si, int j) {
    switch (l) {
    case VM_BB_PE_NORM1: return &s->pe_norm1;
    case VM_BB_PE_NORM2: return &s->pe_norm2;
    case VM_BB_NORM: return &s->st[si].blocks[j].norm;
    case VM_BB_NORM2: return &s->st[si].blocks[j].norm2;
    case VM_BB_DS_NORM: return &s->st[si].ds_norm;
    case VM_BB_OUTNORM: return &s->st[si].outnorm;
    case VM_BB_CLS_NORM: return &s->cls_norm;
    default: return NULL;
    }
}

int cu_layernorm(vm_bb *bb, vm_bb_layer l, int si, int j, const float *in, float *out, size_t T, int C) {
    state *s = S(bb);
    const dln *n = cu_ln(s, l, si, j);
    if (!n) return bb_fail(bb, "backbone layer is not a LayerNorm");
    vmc_layernorm(out, in, n->w, n->b, T, C, VM_LN_EPS, s->stream);
    return 0;
}

int cu_conv_ln(vm_bb *bb, vm_bb_layer cl, vm_bb_layer ll, int si, const float *in, int B, int H, int W, float *mid, float *out) {
    state *s = S(bb);
    const dconv *cv = cl == VM_BB_PE_CONV1 ? &s->pe1 : cl == VM_BB_PE_CONV2 ? &s->pe2 : cl == VM_BB_DS_CONV ? &s->st[si].ds_conv : NULL;
    const dln *n = cu_ln(s, ll, si, 0);
    if (!cv || !n) return bb_fail(bb, "backbone layers are not a convolution and a LayerNorm");
    int oh, ow;
    if (conv(s, cv, in, B, H, W, mid, &oh, &ow)) return bb_fail(bb, "cuBLAS GEMM failed (convolution)");
    vmc_layernorm(out, mid, n->w, n->b, (size_t)B * oh * ow, cv->cout, VM_LN_EPS, s->stream);
    return 0;
}

/* The stem: the first convolution direct from the NCHW input with its
 * norm (and GELU, v2) fused, else the layout pass + im2col path. The
 * input goes up in pieces on the upload stream and each piece's stem
 * convolution starts as soon as it has landed, overlapping the next
 * piece's copy (in one piece, on the compute stream, when profiling, so
 * that the transfer is timed on its own). */
int cu_stem(vm_bb *bb, const float *in, int B, int H, int W, float *out, int gelu) {
    state *s = S(bb);
    vm_ctx *c = bb->c;
    char *err = c->err;
    size_t errlen = sizeof c->err;
    cudaStream_t q = s->stream;
    int oh = conv_out(H, s->pe1.k, s->pe1.stride, s->pe1.pad), ow = conv_out(W, s->pe1.k, s->pe1.stride, s->pe1.pad);
    const size_t img = (size_t)3 * H * W, pe_img = (size_t)oh * ow * s->pe1.cout;
    const int direct = s->direct_stem && vmc_stem_conv_ok(3, s->pe1.cout, s->pe1.k);
    const int pieces = direct && !s->prof->enabled ? (B < UPLOAD_PIECES ? B : UPLOAD_PIECES) : 1;
    if (pieces == 1) {
        /* timed as host<->device, not as the patch embed it runs inside */
        double t0 = s->prof->enabled ? cu_now(bb) : 0;
        CK(cudaMemcpyAsync(s->in, in, B * img * sizeof(float), cudaMemcpyHostToDevice, q));
        if (s->prof->enabled) {
            double dt = cu_now(bb) - t0;
            s->prof->seconds[VM_OP_TRANSFER] += dt;
            s->prof->seconds[VM_OP_PATCH_EMBED] -= dt;
        }
    }
    for (int p = 0; direct && p < pieces; p++) {
        const int b0 = (int)((long)B * p / pieces), b1 = (int)((long)B * (p + 1) / pieces);
        if (pieces > 1) {
            CK(cudaMemcpyAsync(s->in + b0 * img, in + b0 * img, (b1 - b0) * img * sizeof(float), cudaMemcpyHostToDevice, s->up));
            CK(cudaEventRecord(s->landed[p], s->up));
            CK(cudaStreamWaitEvent(q, s->landed[p], 0));
        }
        if (vmc_stem_conv(out + b0 * pe_img, s->in + b0 * img, s->pe1.w, s->pe1.b, s->pe_norm1.w, s->pe_norm1.b, gelu,
                          b1 - b0, 3, H, W, s->pe1.cout, s->pe1.k, s->pe1.stride, s->pe1.pad, oh, ow, VM_LN_EPS, q))
            return vm_errf(err, errlen, "CUDA: no stem convolution kernel for %d output channels", s->pe1.cout);
    }
    if (!direct) {
        vmc_nchw_to_nhwc(s->t0, s->in, B, 3, H, W, q);
        if (conv(s, &s->pe1, s->t0, B, H, W, out, &oh, &ow)) return bb_fail(bb, "cuBLAS GEMM failed (patch embed)");
        vmc_layernorm(out, out, s->pe_norm1.w, s->pe_norm1.b, (size_t)B * oh * ow, s->pe1.cout, VM_LN_EPS, q);
        if (gelu) vmc_gelu(out, (size_t)B * oh * ow * s->pe1.cout, q);
    }
    return 0;
}

/* fc1's bias and GELU run after the GEMM, fc2's bias is added to the
 * residual before it; the other layers have no bias. */
int cu_linear(vm_bb *bb, vm_bb_layer l, int si, int j, const float *A, int lda, int M, int N, int K, float *C, int ldc, int gelu,
              int accumulate) {
    state *s = S(bb);
    cudaStream_t q = s->stream;
    const dstage *ds = &s->st[si];
    const dblock *bk = ds->blocks ? &ds->blocks[j] : NULL;
    const float *W = NULL, *bias = NULL;
    switch (l) {
    case VM_BB_IN_PROJ: W = bk->in_proj; break;
    case VM_BB_X_PROJ: W = bk->x_proj; break;
    case VM_BB_OUT_PROJ: W = bk->out_proj; break;
    case VM_BB_FC1: W = bk->fc1_w; bias = bk->fc1_b; break;
    case VM_BB_FC2: W = bk->fc2_w; bias = bk->fc2_b; break;
    case VM_BB_DS_REDUCTION: W = ds->ds_reduction; break;
    case VM_BB_HEAD: W = s->head_w; bias = s->head_b; break;
    default: return bb_fail(bb, "backbone layer is not a linear layer");
    }
    if ((bias || gelu) && ldc != N) return bb_fail(bb, "a linear layer with bias or GELU needs packed output rows");
    int rc;
    if (accumulate) {
        if (bias) vmc_add_rows(C, bias, (size_t)M, N, q);
        rc = gemm(s, M, N, K, A, lda, W, K, C, ldc, 1.0f);
    } else if (bias && !gelu) {
        vmc_fill_rows(C, bias, (size_t)M, N, q);
        rc = gemm(s, M, N, K, A, lda, W, K, C, ldc, 1.0f);
    } else {
        rc = gemm(s, M, N, K, A, lda, W, K, C, ldc, 0.0f);
        if (!rc && gelu) {
            if (bias) vmc_bias_gelu(C, bias, (size_t)M, N, q);
            else vmc_gelu(C, (size_t)M * N, q);
        }
    }
    if (rc) return bb_fail(bb, "cuBLAS GEMM failed");
    return 0;
}

int cu_dwconv_silu(vm_bb *bb, int si, int j, const float *in, int ld_in, float *out, int B, int h, int w, int D) {
    state *s = S(bb);
    const dblock *bk = &s->st[si].blocks[j];
    vmc_dwconv3x3_silu(out, in, ld_in, bk->conv_w, bk->conv_b, B, h, w, D, s->stream);
    return 0;
}

/* dt_proj runs inside the chunked scan kernel; the cross-merge, out_norm
 * and the z gate are one pass. */
int cu_ssm(vm_bb *bb, int si, int j, const float *u, const float *xdbl, const float *z, int ldz, float *y, int B, int h, int w) {
    state *s = S(bb);
    const vm_model *m = bb->m;
    const dblock *bk = &s->st[si].blocks[j];
    const int D = m->st[si].d_inner, R = m->st[si].R, N = m->info.d_state;
    const size_t T = (size_t)B * h * w;
    cudaStream_t q = s->stream;
    GPROF(VM_OP_SCAN, vmc_scan_cross_chunked(s->scan, u, bk->dt_w, xdbl, bk->A, bk->Ds, bk->dt_b, B, h, w, D, N, R,
                                             vmc_scan_chunks(B, h, w, D, s->scan_chunks), q));
    GPROF(VM_OP_NORM, vmc_merge4_layernorm(y, s->scan, T, D, bk->out_norm.w, bk->out_norm.b, VM_LN_EPS, z, ldz, q));
    return 0;
}

int cu_merge_gather(vm_bb *bb, const float *in, float *out, int B, int h, int w, int C) {
    vmc_patch_merge(out, in, B, h, w, C, S(bb)->stream);
    return 0;
}

int cu_mean_tokens(vm_bb *bb, const float *in, int B, int L, int C, float *out) {
    vmc_mean_tokens(out, in, B, L, C, S(bb)->stream);
    return 0;
}

void ctx_release(void *p) {
    state *s = (state *)p;
    keep_device kd; /* vm_ctx_free / vm_ctx_set_device: the caller's device back on return */
    cudaSetDevice(s->device);
    free_plan(s);
    destroy_streams(s);
    free(s);
}

/* c's state for device d's weights, made on first use: the weights'
 * device pointers are shared (read-only), the rest is c's own. Made again
 * when c moves to another device or the weights were uploaded again. */
state *ctx_state(vm_model *m, vm_ctx *c, int d, char *err, size_t errlen) {
    static const cublasComputeType_t modes[4] = {CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_32F_FAST_TF32,
                                                 CUBLAS_COMPUTE_32F_FAST_16F, CUBLAS_COMPUTE_32F_FAST_16BF};
    const state *base = weights_on(m, d);
    if (!base) {
        vm_errf(err, errlen, "CUDA: the model's weights are not on cuda:%d", d);
        return NULL;
    }
    if (c->dev_ctx && c->dev_gen == base->gen) {
        state *s = (state *)c->dev_ctx;
        s->compute = modes[m->dev_precision & 3]; /* the model's setting, now */
        return s;
    }
    if (c->dev_ctx) c->dev_release(c->dev_ctx); /* made for another device or an earlier upload */
    c->dev_ctx = NULL;
    if (cudaSetDevice(d) != cudaSuccess) {
        vm_errf(err, errlen, "CUDA: cannot select device %d", d);
        return NULL;
    }
    state *s = (state *)malloc(sizeof(state));
    if (!s) {
        vm_errf(err, errlen, "out of memory");
        return NULL;
    }
    *s = *base;
    s->allocs = NULL; /* the model owns the weights */
    s->nallocs = s->cap = 0;
    s->arena = NULL;
    s->B = s->H = s->W = 0;
    s->compute = modes[m->dev_precision & 3];
    if (make_streams(s, err, errlen)) {
        free(s);
        return NULL;
    }
    c->dev_ctx = s;
    c->dev_release = ctx_release;
    c->dev_gen = base->gen;
    return s;
}

/* The backbone (src/net/backbone.c on ops: vm_bb_cuda_ops, or a test's
 * table wrapping them) on CUDA device `device` (the context's), then the
 * features or the classifier. feats_dev: feats[i] are device buffers on
 * that device that take the maps NHWC (for heads on the CUDA op backend),
 * else host NCHW. */
int forward_on(vm_model *m, vm_ctx *c, int device, const vm_bb_ops *ops, const float *in, int B, int H, int W,
               float *logits, float *feats[4], int feats_dev) {
    char *err = c->err;
    size_t errlen = sizeof c->err;
    state *s = ctx_state(m, c, device, err, errlen);
    if (!s) return -1;
    /* this thread may not have the context's device current */
    if (cudaSetDevice(device) != cudaSuccess) return vm_errf(err, errlen, "CUDA: cannot select device %d", device);
    s->prof = &c->prof;
    const vm_info *I = &m->info;
    if (feats && !I->is_backbone) return vm_errf(err, errlen, "features need a backbone checkpoint (outnorm layers)");
    if (plan(m, s, B, H, W, err, errlen)) return -1;
    cudaStream_t q = s->stream;
    cudaError_t ce = cudaSuccess;
    vm_bb bb;
    memset(&bb, 0, sizeof bb);
    bb.ops = ops;
    bb.impl = s;
    bb.m = m;
    bb.c = c;
    bb.host = 0;
    for (int i = 0; i < 4; i++) {
        bb.h[i] = s->h[i];
        bb.w[i] = s->w[i];
        bb.feat[i] = feats && feats_dev ? feats[i] : s->feat[i];
    }
    bb.pe_h1 = s->h1;
    bb.pe_w1 = s->w1;
    bb.x = s->x;
    bb.t0 = s->t0;
    bb.t1 = s->t1;
    bb.t2 = s->t2;
    bb.t3 = s->t3;
    bb.t5 = s->t5;
    if (vm_backbone_run(&bb, in, B, H, W)) {
        if (!err[0]) vm_errf(err, errlen, "CUDA: backbone failed");
        return -1;
    }
    if (feats && !feats_dev) {
        for (int i = 0; i < 4; i++) {
            const size_t n = (size_t)B * s->h[i] * s->w[i] * I->dims[i];
            vmc_nhwc_to_nchw(s->out, s->feat[i], B, s->h[i], s->w[i], I->dims[i], q);
            GPROF(VM_OP_TRANSFER, ce = cudaMemcpyAsync(feats[i], s->out, n * sizeof(float), cudaMemcpyDeviceToHost, q));
            CK(ce);
            CK(cudaStreamSynchronize(q)); /* s->out is reused by the next stage */
        }
    }
    if (logits) {
        /* the classifier (src/net/heads/classifier.c) on these ops, the
         * logits into s->out, then down */
        vm_classifier h;
        if (vm_classifier_bind(m, &h, err, errlen)) return -1;
        double t_head = s->prof->enabled ? cu_now(&bb) : 0;
        if (vm_classifier_run(&h, &bb, s->x, B, s->h[3] * s->w[3], s->out)) {
            if (!err[0]) vm_errf(err, errlen, "CUDA: classifier failed");
            return -1;
        }
        if (s->prof->enabled) s->prof->seconds[VM_OP_HEAD] += cu_now(&bb) - t_head;
        GPROF(VM_OP_TRANSFER, ce = cudaMemcpyAsync(logits, s->out, (size_t)B * I->num_classes * sizeof(float), cudaMemcpyDeviceToHost, q));
        CK(ce);
    }
    CK(cudaStreamSynchronize(q));
    CK(cudaGetLastError());
    return 0;
}

/* forward_on; on failure both streams are drained first, so that no copy
 * still reads the caller's input (it may be page-locked: the copies are
 * asynchronous) and no kernel still runs when the call returns. */
int forward_impl(vm_model *m, vm_ctx *c, int device, const vm_bb_ops *ops, const float *in, int B, int H, int W,
                 float *logits, float *feats[4], int feats_dev) {
    keep_device kd; /* forward_on selects the context's device: the caller's back on return */
    int rc = forward_on(m, c, device, ops, in, B, H, W, logits, feats, feats_dev);
    state *s = rc ? (state *)c->dev_ctx : NULL; /* NULL: no stream was made */
    if (s && s->device == device) {
        cudaStreamSynchronize(s->up);
        cudaStreamSynchronize(s->stream);
    }
    return rc;
}

int upload(vm_model *m, state *s, char *err, size_t errlen) {
    const vm_info *I = &m->info;
    if (up_conv(s, &s->pe1, &m->pe_conv1, err, errlen) || up_ln(s, &s->pe_norm1, &m->pe_norm1, err, errlen)) return -1;
    if (I->patch_embed_version == 2 &&
        (up_conv(s, &s->pe2, &m->pe_conv2, err, errlen) || up_ln(s, &s->pe_norm2, &m->pe_norm2, err, errlen)))
        return -1;
    for (int i = 0; i < 4; i++) {
        const vm_stage *st = &m->st[i];
        const size_t C = st->C, D = st->d_inner, R = st->R, N = I->d_state, P = R + 2 * N, Hd = st->hidden;
        s->st[i].blocks = (dblock *)calloc((size_t)st->depth, sizeof(dblock));
        if (!s->st[i].blocks && st->depth) return vm_errf(err, errlen, "out of host memory for the CUDA weight table");
        for (int j = 0; j < st->depth; j++) {
            const vm_block *h = &st->blocks[j];
            dblock *d = &s->st[i].blocks[j];
            if (up_ln(s, &d->norm, &h->norm, err, errlen) || up_ln(s, &d->out_norm, &h->out_norm, err, errlen)) return -1;
            UPL(d->in_proj, h->in_proj_w, h->f_in, D * (I->z_gate ? 2 : 1) * C);
            if (!(d->conv_w = up_transposed(s, h->conv_w, D, 9, err, errlen))) return -1; /* [9][D] */
            UP(d->conv_b, h->conv_b, D);
            UP(d->x_proj, h->x_proj_w, 4 * P * D);
            UP(d->dt_w, h->dt_w, 4 * D * R);
            UP(d->dt_b, h->dt_b, 4 * D);
            UP(d->A, h->A, 4 * D * N);
            UP(d->Ds, h->Ds, 4 * D);
            UPL(d->out_proj, h->out_proj_w, h->f_out, C * D);
            if (Hd) {
                if (up_ln(s, &d->norm2, &h->norm2, err, errlen)) return -1;
                UPL(d->fc1_w, h->fc1_w, h->f_fc1, Hd * C);
                UP(d->fc1_b, h->fc1_b, Hd);
                UPL(d->fc2_w, h->fc2_w, h->f_fc2, C * Hd);
                UP(d->fc2_b, h->fc2_b, C);
            }
        }
        if (i < 3) {
            if (up_ln(s, &s->st[i].ds_norm, &st->ds_norm, err, errlen)) return -1;
            if (I->downsample_version == 1) UPL(s->st[i].ds_reduction, st->ds_reduction, st->f_ds, (size_t)st->C_next * 4 * C);
            else if (up_conv(s, &s->st[i].ds_conv, &st->ds_conv, err, errlen)) return -1;
        }
        if (I->is_backbone && up_ln(s, &s->st[i].outnorm, &st->outnorm, err, errlen)) return -1;
    }
    if (I->num_classes) {
        if (up_ln(s, &s->cls_norm, &m->cls_norm, err, errlen)) return -1;
        UPL(s->head_w, m->head_w, m->f_head, (size_t)I->num_classes * I->dims[3]);
        UP(s->head_b, m->head_b, (size_t)I->num_classes);
    }
    return 0;
}

} // namespace

extern "C" int vm_cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) return 0;
    return n;
}

extern "C" void *vm_cuda_host_alloc(size_t bytes) {
    void *p = NULL;
    return cudaMallocHost(&p, bytes) == cudaSuccess ? p : NULL;
}

extern "C" void vm_cuda_host_free(void *p) { cudaFreeHost(p); }

extern "C" int vm_cuda_forward(vm_model *m, vm_ctx *c, int device, const float *in, int B, int H, int W,
                               float *logits, float *feats[4]) {
    return forward_impl(m, c, device, &vm_bb_cuda_ops, in, B, H, W, logits, feats, 0);
}

/* Tests: as vm_cuda_forward on a table wrapping vm_bb_cuda_ops (net/backbone.h). */
extern "C" int vm_cuda_forward_ops(vm_model *m, vm_ctx *c, int device, const vm_bb_ops *ops, const float *in, int B,
                                   int H, int W, float *logits, float *feats[4]) {
    return forward_impl(m, c, device, ops, in, B, H, W, logits, feats, 0);
}

/* Tests: n floats of a backbone buffer down, after every op enqueued on bb;
 * a failed kernel launch since the last call is reported here too. */
extern "C" int vm_cuda_bb_download(vm_bb *bb, float *dst, const float *src, size_t n) {
    cudaStream_t q = S(bb)->stream;
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess) e = cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToHost, q);
    if (e == cudaSuccess) e = cudaStreamSynchronize(q);
    return e == cudaSuccess ? 0 : bb_fail(bb, cudaGetErrorString(e));
}

/* The backbone's four maps NHWC into device buffers (on the model's
 * device), for heads on the CUDA op backend: no host round trip. The
 * maps are complete when this returns (the stream is synchronised). */
extern "C" int vm_cuda_forward_features_dev(vm_model *m, vm_ctx *c, int device, const float *in, int B, int H, int W,
                                            float *dfeats[4]) {
    return forward_impl(m, c, device, &vm_bb_cuda_ops, in, B, H, W, NULL, dfeats, 1);
}

/* Device `device`'s weight state for m, made under g_lock. */
static int attach(vm_model *m, int device, char *err, size_t errlen) {
    int ndev = vm_cuda_device_count();
    if (ndev < 1) return vm_errf(err, errlen, "no CUDA device found");
    if (device < 0 || device >= ndev) return vm_errf(err, errlen, "CUDA device %d does not exist (%d found)", device, ndev);
    if (m->quantized) return vm_errf(err, errlen, "INT8 models run on the CPU only; use the FP32 model with --device cuda");
    if (m->info.d_state > VM_CUDA_MAX_STATE)
        return vm_errf(err, errlen, "d_state %d is above the CUDA backend's limit %d", m->info.d_state, VM_CUDA_MAX_STATE);
    for (int i = 0; i < 4; i++)
        if (m->info.dt_rank[i] > VM_CUDA_MAX_DT_RANK)
            return vm_errf(err, errlen, "dt_rank %d is above the CUDA backend's limit %d", m->info.dt_rank[i], VM_CUDA_MAX_DT_RANK);
    devtab *t = (devtab *)m->dev_weights;
    if (!t) { /* sized once for the devices there are: never reallocated (lock-free readers) */
        t = (devtab *)calloc(1, sizeof *t);
        if (!t || !(t->w = (state **)calloc((size_t)ndev, sizeof *t->w)) ||
            !(t->pins = (int *)calloc((size_t)ndev, sizeof *t->pins))) {
            if (t) free(t->w);
            free(t);
            return vm_errf(err, errlen, "out of memory");
        }
        t->n = ndev;
        m->dev_free = release_all;
        __atomic_store_n(&m->dev_weights, (void *)t, __ATOMIC_RELEASE);
    }
    if (device >= t->n) return vm_errf(err, errlen, "CUDA device %d does not exist (%d found)", device, t->n);
    if (t->w[device]) return 0;
    state *s = (state *)calloc(1, sizeof(state));
    if (!s) return vm_errf(err, errlen, "out of memory");
    /* the weights live on `device`; every later call selects it again
     * (the calling thread may have another current) */
    s->device = device;
    if (cudaSetDevice(device) != cudaSuccess) {
        free(s);
        return vm_errf(err, errlen, "CUDA: cannot select device %d: %s", device, cudaGetErrorString(cudaGetLastError()));
    }
    const char *sc = getenv("VMAMBA_CUDA_SCAN_CHUNKS");
    s->scan_chunks = sc ? atoi(sc) : 0;
    const char *ds = getenv("VMAMBA_CUDA_DIRECT_STEM");
    s->direct_stem = !(ds && !strcmp(ds, "0"));
    const char *rk = getenv("VMAMBA_CUDA_REFERENCE_KERNELS");
    if (rk) vmc_use_reference_kernels(!strcmp(rk, "1")); /* a process-wide test switch: written only when set */
    if (upload(m, s, err, errlen)) {
        release_weights(s);
        return -1;
    }
    s->gen = ++g_gen; /* contexts made for an earlier upload start afresh */
    __atomic_store_n(&t->w[device], s, __ATOMIC_RELEASE);
    return 0;
}

extern "C" int vm_cuda_weights(vm_model *m, int device, int pin, char *err, size_t errlen) {
    keep_device kd; /* attach selects `device`: the caller's back on return */
    pthread_mutex_lock(&g_lock);
    int rc = 0;
    if (pin >= 0) rc = attach(m, device, err, errlen);
    devtab *t = (devtab *)m->dev_weights;
    if (!rc && pin && t && device >= 0 && device < t->n) t->pins[device] += pin;
    pthread_mutex_unlock(&g_lock);
    return rc;
}

extern "C" void vm_cuda_release_unpinned(vm_model *m, int keep) {
    pthread_mutex_lock(&g_lock);
    devtab *t = (devtab *)m->dev_weights;
    for (int i = 0; t && i < t->n; i++)
        if (i != keep && t->w[i] && t->pins[i] <= 0) {
            state *s = t->w[i];
            __atomic_store_n(&t->w[i], (state *)NULL, __ATOMIC_RELEASE);
            release_weights(s);
        }
    pthread_mutex_unlock(&g_lock);
}

/* Tests (model.h). */
extern "C" int vm_cuda_test_fail_create(int n) { return __atomic_exchange_n(&g_fail_create, n, __ATOMIC_RELAXED); }
extern "C" long vm_cuda_test_live_handles(void) { return __atomic_load_n(&g_live, __ATOMIC_RELAXED); }
extern "C" int vm_cuda_test_current_device(void) {
    int d = -1;
    if (cudaGetDevice(&d) != cudaSuccess) cudaGetLastError(), d = -1;
    return d;
}
extern "C" int vm_cuda_test_select_device(int d) { return cudaSetDevice(d) == cudaSuccess ? 0 : (cudaGetLastError(), -1); }

/* The backbone ops (net/backbone.h) of this backend: the cu_* above. */
const vm_bb_ops vm_bb_cuda_ops = {
    "cuda", cu_now, cu_stem, cu_conv_ln, cu_layernorm, cu_linear, cu_dwconv_silu, cu_ssm, cu_merge_gather, cu_mean_tokens,
};
