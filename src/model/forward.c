/* forward.c - the FP32 forward pass: plan activations once per input
 * shape, then patch embed -> 4 stages of VSS blocks (+ downsample) ->
 * classifier head or backbone features.
 *
 * Activations are token-major (B, H, W, C) for every family: LayerNorm2d
 * over channels and Linear2d are the same maths in this layout, so the
 * channel-first (ln2d) models need no separate path. */
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <omp.h>

#include "model.h"
#include "../../simd/kernels.h"
#include "../core/util.h"

static size_t maxz(size_t a, size_t b) { return a > b ? a : b; }

const char *const vm_op_names[VM_OP_COUNT] = {"patch_embed", "layernorm", "in_proj", "dwconv+silu", "x_proj+dt_proj",
                                               "selective_scan", "gate", "out_proj", "mlp_gemm", "gelu",
                                               "downsample", "head", "host<->device"};

/* VMAMBA_PROFILE_CLOCK=cpu: the profile counts the process's CPU time
 * instead of wall time. At 1 thread that is the op's own work, blind to
 * other processes' load (what A/B comparisons on a shared machine need). */
static clockid_t prof_clock(void) {
    static int mode; /* 0 unknown, 1 wall, 2 cpu; a benign race: every thread computes the same */
    if (!mode) {
        const char *e = getenv("VMAMBA_PROFILE_CLOCK");
        mode = e && !strcmp(e, "cpu") ? 2 : 1;
    }
    return mode == 2 ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(prof_clock(), &t);
    return (double)t.tv_sec + 1e-9 * t.tv_nsec;
}

/* Time `stmt` under op `op` when profiling; free otherwise. */
#define PROF(op, stmt)                                                  \
    do {                                                                \
        if (c->prof.enabled) {                                          \
            double t_ = now_s();                                        \
            stmt;                                                       \
            c->prof.seconds[op] += now_s() - t_;                        \
        } else {                                                        \
            stmt;                                                       \
        }                                                               \
    } while (0)

void vm_plan_free(vm_plan *p) {
    free(p->arena);
    free(p->qbuf);
    free(p->xacc);
    free(p->xq8);
    vm_xnn_pool_free(p->xpool);
    free(p->h16);
    for (size_t i = 0; i < p->nlin; i++) {
        vm_matmul_free(p->lin[i].f);
        vm_qmatmul_free(p->lin[i].q);
    }
    free(p->lin);
    for (size_t i = 0; i < p->nsp; i++) {
        if (p->sp_mm) vm_matmul_free(p->sp_mm[i]);
        if (p->sp_pack) vm_wpack_free(p->sp_pack[i]);
    }
    free(p->sp_mm);
    free(p->sp_pack);
    vm_conv_free(p->pe1);
    vm_conv_free(p->pe2);
    for (int s = 0; s < 3; s++) vm_conv_free(p->ds[s]);
    memset(p, 0, sizeof *p);
}

static int make_conv(vm_ctx *c, vm_conv_prim **out, const vm_conv *cv, int B, int H, int W) {
    char e[256];
    if (cv->x) { /* XNNPACK path: the model's operator, nothing per context */
        *out = NULL;
        return 0;
    }
    if (cv->w8)
        *out = vm_qconv_create_x(c->dx, B, cv->cin, H, W, cv->cout, cv->k, cv->stride, cv->pad, cv->w8, cv->w_scale, cv->a_scale,
                               cv->a_zp, cv->b, e, sizeof e);
    else if (c->plan.bf16)
        *out = vm_conv_create_bf16_x(c->dx, B, cv->cin, H, W, cv->cout, cv->k, cv->stride, cv->pad, cv->w, cv->b, e, sizeof e);
    else
        *out = vm_conv_create_x(c->dx, B, cv->cin, H, W, cv->cout, cv->k, cv->stride, cv->pad, cv->w, cv->b, e, sizeof e);
    if (!*out) return vm_ctx_fail(c, VM_ERR_BACKEND, "%s", e);
    return 0;
}

/* One matmul primitive per linear layer for this shape's row count: INT8
 * for quantized layers, FP32 on packed weights otherwise (layers left
 * plain run through vm_gemm). Bias, GELU and the residual add are fused
 * as the layer list says. Returns the largest INT8 input (for qbuf). */
static int make_linears(vm_ctx *c, int B, size_t *qbytes) {
    vm_plan *p = &c->plan;
    size_t n;
    vm_lin_slot *v = vm_linears(c->m, &n);
    if (!v) return vm_ctx_fail(c, VM_ERR_NOMEM, "out of memory (layer list)");
    p->lin = calloc(n ? n : 1, sizeof *p->lin);
    if (!p->lin) {
        free(v);
        return vm_ctx_fail(c, VM_ERR_NOMEM, "out of memory (%zu layer primitives)", n);
    }
    p->nlin = n;
    int rc = 0;
    char e[256];
    size_t xacc = 0, xq8 = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const vm_lin_slot *L = &v[i];
        int st = L->rows_stage, M;
        if (st < 0) M = B;
        else if (st >= 10) M = B * ((p->h[st - 10] + 1) / 2) * ((p->w[st - 10] + 1) / 2);
        else M = B * p->h[st] * p->w[st];
        if (L->q && L->q->x) {
            /* XNNPACK INT8: the model's operator; s8 output in p->xq8 */
            if ((size_t)M * L->q->K > *qbytes) *qbytes = (size_t)M * L->q->K;
            if ((size_t)M * L->q->N > xq8) xq8 = (size_t)M * L->q->N;
        } else if (L->q) {
            const vm_qlinear *q = L->q;
            p->lin[i].q = vm_qmatmul_create_x(c->dx, M, q->N, q->K, q->K, q->N, q->w, q->w_scale, q->a_scale, q->a_zp, L->bias,
                                            L->gelu, L->accumulate, e, sizeof e);
            if (!p->lin[i].q) rc = vm_ctx_fail(c, VM_ERR_BACKEND, "%s", e);
            if ((size_t)M * q->K > *qbytes) *qbytes = (size_t)M * q->K;
        } else if (*L->f && (*L->f)->x) {
            /* XNNPACK: the model's operator; a residual layer's product
             * goes to p->xacc first (no accumulating output there) */
            if (L->accumulate && (size_t)M * L->N > xacc) xacc = (size_t)M * L->N;
        } else if (*L->f) {
            const vm_flinear *f = *L->f;
            p->lin[i].f = p->bf16 ? vm_matmul_create_bf16_x(c->dx, M, L->N, L->K, L->K, L->N, f->pack, L->bias, L->gelu, L->accumulate, e, sizeof e)
                                  : vm_matmul_create_x(c->dx, M, L->N, L->K, L->K, L->N, f->pack, L->bias, L->gelu, L->accumulate, e, sizeof e);
            if (!p->lin[i].f) rc = vm_ctx_fail(c, VM_ERR_BACKEND, "%s", e);
        }
    }
    free(v);
    if (!rc && xacc && !(p->xacc = malloc(xacc * sizeof *p->xacc)))
        rc = vm_ctx_fail(c, VM_ERR_NOMEM, "out of memory (%zu floats of GEMM output)", xacc);
    if (!rc && xq8 && !(p->xq8 = malloc(xq8)))
        rc = vm_ctx_fail(c, VM_ERR_NOMEM, "out of memory (%zu bytes of INT8 GEMM output)", xq8);
    return rc;
}

/* This context's XNNPACK worker threads, as many as OpenMP would use now. */
static void *xpool(vm_ctx *c) {
    vm_plan *p = &c->plan;
    int t = omp_get_max_threads();
    if (t != p->xpool_threads) {
        vm_xnn_pool_free(p->xpool);
        p->xpool = vm_xnn_pool_create(t);
        p->xpool_threads = t;
    }
    return p->xpool;
}

/* An XNNPACK fully-connected product in this context's arithmetic: FP32,
 * or FP16 (vm_ctx_fp16) through the operator's f16 twin. */
static int xfc(vm_ctx *c, vm_xop *x, int M, const float *A, float *C) {
    if (!vm_ctx_fp16(c)) return vm_xop_fc_run(x, M, A, C, xpool(c));
    vm_plan *p = &c->plan;
    size_t need = vm_xop_fc16_scratch(x, M);
    if (need > p->h16_cap) {
        free(p->h16);
        p->h16_cap = 0;
        if (!(p->h16 = malloc(need))) return -1;
        p->h16_cap = need;
    }
    return vm_xop_fc_run16(x, M, A, C, p->h16, xpool(c));
}

/* x_proj (T x D -> 4(R+2N)) and dt_proj (4 x: T x R -> D, reading the
 * x_proj output in place, lda 4(R+2N)) as matmul primitives: sgemm's
 * small-N shapes ran at ~1/3 of the FP32 rate and split badly over
 * threads. In a BF16 plan they run in bf16 like the other linears. */
static int make_ssm_proj(vm_ctx *c, int B) {
    const vm_model *m = c->m;
    vm_plan *p = &c->plan;
    if (m->no_pack || m->xnn) return 0; /* XNNPACK path: the model's operators */
    size_t nb = 0;
    for (int s = 0; s < 4; s++) nb += (size_t)m->st[s].depth;
    p->sp_pack = calloc(5 * nb + 1, sizeof *p->sp_pack);
    p->sp_mm = calloc(5 * nb + 1, sizeof *p->sp_mm);
    if (!p->sp_pack || !p->sp_mm) return vm_ctx_fail(c, VM_ERR_NOMEM, "out of memory (x_proj/dt_proj primitives)");
    p->nsp = 5 * nb;
    char e[256];
    size_t i = 0;
    for (int s = 0; s < 4; s++) {
        const vm_stage *st = &m->st[s];
        const int D = st->d_inner, R = st->R, P = R + 2 * m->info.d_state, M = B * p->h[s] * p->w[s];
        for (int j = 0; j < st->depth; j++) {
            const vm_block *bk = &st->blocks[j];
            for (int k = -1; k < 4; k++, i++) {
                const int N = k < 0 ? 4 * P : D, K = k < 0 ? D : R, lda = k < 0 ? D : 4 * P;
                const float *W = k < 0 ? bk->x_proj_w : bk->dt_w + (size_t)k * D * R;
                p->sp_pack[i] = vm_wpack_create(N, K, W, e, sizeof e);
                if (p->sp_pack[i])
                    p->sp_mm[i] = p->bf16 ? vm_matmul_create_bf16_x(c->dx, M, N, K, lda, N, p->sp_pack[i], NULL, 0, 0, e, sizeof e)
                                          : vm_matmul_create_x(c->dx, M, N, K, lda, N, p->sp_pack[i], NULL, 0, 0, e, sizeof e);
                if (!p->sp_mm[i]) return vm_ctx_fail(c, VM_ERR_BACKEND, "%s", e);
            }
        }
    }
    return 0;
}

/* Size every buffer for the largest layer at this input shape, allocate one
 * arena, and create the convolution and matmul primitives. Never aborts:
 * out of memory is VM_ERR_NOMEM on c. */
int vm_plan_ensure(vm_ctx *c, int B, int H, int W) {
    const vm_model *m = c->m;
    vm_plan *p = &c->plan;
    const int bf16 = vm_ctx_bf16(c);
    if (p->B == B && p->H == H && p->W == W && p->bf16 == bf16) return 0;
    vm_plan_free(p);
    p->bf16 = bf16;
    const vm_info *I = &m->info;
    int h, w;
    size_t sx = 0, s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0;
    if (I->patch_embed_version == 1) {
        h = vm_conv_out_size(H, I->patch_size, I->patch_size, 0);
        w = vm_conv_out_size(W, I->patch_size, I->patch_size, 0);
    } else {
        p->pe_h1 = vm_conv_out_size(H, m->pe_conv1.k, m->pe_conv1.stride, 1);
        p->pe_w1 = vm_conv_out_size(W, m->pe_conv1.k, m->pe_conv1.stride, 1);
        h = vm_conv_out_size(p->pe_h1, m->pe_conv2.k, m->pe_conv2.stride, 1);
        w = vm_conv_out_size(p->pe_w1, m->pe_conv2.k, m->pe_conv2.stride, 1);
        if (p->pe_h1 >= 1 && p->pe_w1 >= 1) s1 = (size_t)B * p->pe_h1 * p->pe_w1 * m->pe_conv1.cout;
    }
    /* The input is transposed to NHWC first: oneDNN has fast (jit)
     * kernels for nhwc -> nhwc convolutions, not for nchw -> nhwc. */
    s0 = (size_t)B * H * W * 3;
    if (h < 1 || w < 1 || B < 1) {
        vm_ctx_fail(c, VM_ERR_INPUT, "input %dx%d (batch %d) is too small for this model", H, W, B);
        memset(p, 0, sizeof *p);
        return -1;
    }
    /* Guard the products below against overflow on absurd inputs. */
    if ((double)B * H * W * 3 > 4e9 / 4) {
        vm_ctx_fail(c, VM_ERR_INPUT, "input batch %d x %dx%d is too large", B, H, W);
        memset(p, 0, sizeof *p);
        return -1;
    }
    size_t sf[4] = {0, 0, 0, 0};
    for (int s = 0; s < 4; s++) {
        p->h[s] = h;
        p->w[s] = w;
        const vm_stage *st = &m->st[s];
        size_t T = (size_t)B * h * w, D = (size_t)st->d_inner, P = (size_t)st->R + 2 * (size_t)I->d_state;
        if (I->is_backbone) sf[s] = T * st->C;
        sx = maxz(sx, T * st->C);
        s0 = maxz(s0, T * st->C);
        s1 = maxz(s1, maxz(T * D * (I->z_gate ? 2 : 1), T * (size_t)st->hidden));
        s1 = maxz(s1, (size_t)B * st->C); /* pooled features */
        s2 = maxz(s2, T * D);
        s3 = maxz(s3, T * 4 * P);
        s4 = maxz(s4, 4 * T * D);
        s5 = maxz(s5, T * D);
        if (s < 3) {
            int h2 = (h + 1) / 2, w2 = (w + 1) / 2;
            size_t T2 = (size_t)B * h2 * w2;
            s0 = maxz(s0, T2 * (I->downsample_version == 1 ? 4 * (size_t)st->C : (size_t)st->C_next));
            sx = maxz(sx, T2 * st->C_next);
            h = h2;
            w = w2;
        }
    }
    size_t sizes[11] = {sx, s0, s1, s2, s3, s4, s5, sf[0], sf[1], sf[2], sf[3]}, total = 0;
    for (int i = 0; i < 11; i++) total += (sizes[i] + 15) & ~(size_t)15; /* 64-byte aligned slices */
    total += 16; /* XNNPACK may read 16 bytes past its input (XNN_EXTRA_BYTES): the last slice too */
    void *arena = NULL;
    if (posix_memalign(&arena, 64, total * sizeof(float)) != 0) {
        memset(p, 0, sizeof *p);
        return vm_ctx_fail(c, VM_ERR_NOMEM, "out of memory (%zu MB of activations for batch %d x %dx%d)",
                           total * sizeof(float) >> 20, B, H, W);
    }
    p->arena = arena;
    float **slots[11] = {&p->x, &p->t0, &p->t1, &p->t2, &p->t3, &p->t4, &p->t5, &p->feat[0], &p->feat[1], &p->feat[2], &p->feat[3]};
    size_t off = 0;
    for (int i = 0; i < 11; i++) {
        *slots[i] = sizes[i] ? p->arena + off : NULL;
        off += (sizes[i] + 15) & ~(size_t)15;
    }
    int rc = 0;
    if (I->patch_embed_version == 1) rc = make_conv(c, &p->pe1, &m->pe_conv1, B, H, W);
    else {
        rc = make_conv(c, &p->pe1, &m->pe_conv1, B, H, W);
        if (!rc) rc = make_conv(c, &p->pe2, &m->pe_conv2, B, p->pe_h1, p->pe_w1);
    }
    for (int s = 0; s < 3 && !rc; s++)
        if (I->downsample_version == 3) rc = make_conv(c, &p->ds[s], &m->st[s].ds_conv, B, p->h[s], p->w[s]);
    size_t qbytes = 0;
    if (!rc) rc = make_linears(c, B, &qbytes);
    if (!rc) rc = make_ssm_proj(c, B);
    if (!rc && m->quantized) {
        /* INT8 convolutions quantize their whole input map */
        size_t conv_in = (size_t)B * H * W * 3;
        if (I->patch_embed_version == 2) conv_in = maxz(conv_in, (size_t)B * p->pe_h1 * p->pe_w1 * m->pe_conv1.cout);
        for (int s = 0; s < 3; s++) conv_in = maxz(conv_in, (size_t)B * p->h[s] * p->w[s] * m->st[s].C);
        qbytes = maxz(qbytes, conv_in);
        p->qbuf = malloc(qbytes + 16); /* + XNNPACK's XNN_EXTRA_BYTES of readable tail */
        if (!p->qbuf) rc = vm_ctx_fail(c, VM_ERR_NOMEM, "out of memory (INT8 input buffer of %zu bytes)", qbytes);
    }
    if (rc) {
        vm_plan_free(p);
        return -1;
    }
    p->B = B;
    p->H = H;
    p->W = W;
    return 0;
}

#define TRACE(name, data, b, hh, ww, ch) \
    do { if (c->trace) c->trace(c->trace_user, name, data, b, hh, ww, ch); } while (0)

static void add_bias_rows(float *x, const float *bias, size_t T, int C) {
#pragma omp parallel for schedule(static)
    for (size_t t = 0; t < T; t++)
        for (int c = 0; c < C; c++) x[t * C + c] += bias[c];
}

static void fill_bias_rows(float *x, const float *bias, size_t T, int C) {
#pragma omp parallel for schedule(static)
    for (size_t t = 0; t < T; t++) memcpy(x + t * C, bias, (size_t)C * sizeof *x);
}

/* A convolution on an NHWC map: observed for calibration, and on INT8
 * models its input is quantized first. */
static int run_conv(vm_ctx *c, const vm_conv *cv, vm_conv_prim *prim, const char *name, const float *in, int B, int H, int W,
                    float *out) {
    const size_t pixels = (size_t)B * H * W;
    if (c->observe) c->observe(c->observe_user, name, in, pixels, cv->cin, cv->cin, NULL, cv->cout);
    if (cv->x) return vm_xop_conv_run(cv->x, B, H, W, in, out, xpool(c));
    if (cv->w8) {
        vm_kernels()->quantize_u8(c->plan.qbuf, in, pixels, cv->cin, cv->cin, 1.0f / cv->a_scale, (float)cv->a_zp);
        return vm_conv_run(prim, (const float *)c->plan.qbuf, out);
    }
    return vm_conv_run(prim, in, out);
}

/* XNNPACK INT8 (qc8) on the u8 input in c->plan.qbuf: to s8 (the same
 * codes minus 128), the product requantized to s8 at the layer's
 * calibrated output range, then back to FP32 into C (or added to it), GELU
 * after. The loops are "omp simd" (-O2 does not vectorize them otherwise),
 * their "if" for the parallel part only: a false if would also turn off simd. */
static int xnn_int8(vm_ctx *c, const vm_qlinear *q, int M, int N, float *C, int ldc, int gelu, int accumulate) {
    if (ldc != N) return -1; /* every caller writes packed rows */
    vm_plan *p = &c->plan;
    const size_t nin = (size_t)M * q->K, nout = (size_t)M * N;
    uint8_t *in = p->qbuf;
#pragma omp parallel for simd schedule(static) if (parallel: nin > 262144)
    for (size_t i = 0; i < nin; i++) in[i] ^= 0x80;
    if (vm_xop_qc8_run(q->x, M, (const int8_t *)in, p->xq8, xpool(c))) return -1;
    const float s = q->o_scale, z = (float)(q->o_zp - 128);
    const int8_t *o = p->xq8;
    if (accumulate) {
#pragma omp parallel for simd schedule(static) if (parallel: nout > 65536)
        for (size_t i = 0; i < nout; i++) C[i] += ((float)o[i] - z) * s;
    } else {
#pragma omp parallel for simd schedule(static) if (parallel: nout > 65536)
        for (size_t i = 0; i < nout; i++) C[i] = ((float)o[i] - z) * s;
    }
    if (gelu) vm_kernels()->gelu(C, C, nout);
    return 0;
}

/* One linear layer: C = A W^T (+ bias) (GELU) (+ C if accumulate), INT8
 * when the model file quantized it, else FP32: a matmul primitive with
 * everything fused when the weights are packed, or oneDNN's GEMM plus
 * separate passes on plain weights. The calibration observer sees A first
 * (weights are plain while it is set). bias/gelu/accumulate must be what
 * vm_linears() lists for the layer: the primitives were built from it. */
int vm_linear(vm_ctx *c, const vm_qlinear *q, const vm_flinear *f, const char *name, const float *A, int lda, int M, int N,
                  int K, const float *W, float *C, int ldc, const float *bias, int gelu, int accumulate) {
    if (c->observe) c->observe(c->observe_user, name, A, (size_t)M, K, lda, W, N);
    if (q) {
        vm_kernels()->quantize_u8(c->plan.qbuf, A, (size_t)M, K, lda, 1.0f / q->a_scale, (float)q->a_zp);
        if (q->x) return xnn_int8(c, q, M, N, C, ldc, gelu, accumulate);
        return vm_qmatmul_run(c->plan.lin[q->slot].q, c->plan.qbuf, C);
    }
    if (f && f->x) {
        /* XNNPACK: bias inside, GELU and the residual add after */
        if (lda != K || ldc != N) return -1; /* the operator's strides; every caller passes these */
        float *out = accumulate ? c->plan.xacc : C;
        if (xfc(c, f->x, M, A, out)) return -1;
        if (gelu) vm_kernels()->gelu(C, C, (size_t)M * N);
        if (accumulate) {
            const size_t n = (size_t)M * N;
#pragma omp parallel for simd schedule(static) if (parallel: n > 65536)
            for (size_t i = 0; i < n; i++) C[i] += out[i];
        }
        return 0;
    }
    if (f) return vm_matmul_run(c->plan.lin[f->slot].f, A, C);
    float beta = accumulate ? 1.0f : 0.0f;
    if (bias && accumulate) add_bias_rows(C, bias, (size_t)M, N);
    else if (bias) { fill_bias_rows(C, bias, (size_t)M, N); beta = 1.0f; }
    int rc = vm_gemm(M, N, K, A, lda, W, K, C, ldc, beta);
    if (gelu) vm_kernels()->gelu(C, C, (size_t)M * N);
    return rc;
}

/* x = x + SS2D(LN(x)); then x = x + MLP(LN2(x)) if the block has one. */
static int vss_block(vm_ctx *c, const vm_stage *st, const vm_block *bk, int s, int j, int B, int h, int w) {
    const vm_model *m = c->m;
    const vm_kernel_table *K = vm_kernels();
    vm_plan *p = &c->plan;
    const int C = st->C, D = st->d_inner, R = st->R, N = m->info.d_state, P = R + 2 * N;
    const int Din = D * (m->info.z_gate ? 2 : 1);
    const size_t T = (size_t)B * h * w;
    char nm[64];
#define TR(what, data, b, hh, ww, ch) \
    do { if (c->trace) { snprintf(nm, sizeof nm, "s%d.b%d.%s", s, j, what); TRACE(nm, data, b, hh, ww, ch); } } while (0)
    int rc = 0;
    PROF(VM_OP_NORM, K->layernorm(p->t0, p->x, bk->norm.w, bk->norm.b, T, C, VM_LN_EPS));
    TR("ss2d_in", p->t0, B, h, w, C);
    char ln_[80];
#define LNAME(x) (snprintf(ln_, sizeof ln_, "layers.%d.blocks.%d.%s", s, j, x), ln_)
    PROF(VM_OP_IN_PROJ, rc |= vm_linear(c, bk->q_in, bk->f_in, LNAME("op.in_proj"), p->t0, C, (int)T, Din, C, bk->in_proj_w, p->t1, Din, NULL, 0, 0));
    TR("in_proj", p->t1, B, h, w, Din);
    PROF(VM_OP_DWCONV, K->dwconv3x3_silu(p->t2, p->t1, Din, bk->conv_w, bk->conv_b, B, h, w, D));
    TR("act", p->t2, B, h, w, D);
    vm_matmul **sp = NULL; /* this block's x_proj, dt_proj[4] primitives */
    if (p->sp_mm) {
        size_t bi = (size_t)j;
        for (int q = 0; q < s; q++) bi += (size_t)m->st[q].depth;
        sp = p->sp_mm + 5 * bi;
    }
    if (bk->x_xproj) { /* XNNPACK path */
        PROF(VM_OP_X_PROJ, rc |= xfc(c, bk->x_xproj, (int)T, p->t2, p->t3));
    } else {
        PROF(VM_OP_X_PROJ, rc |= sp ? vm_matmul_run(sp[0], p->t2, p->t3) : vm_gemm((int)T, 4 * P, D, p->t2, D, bk->x_proj_w, D, p->t3, 4 * P, 0.0f));
    }
    TR("x_dbl", p->t3, B, h, w, 4 * P);
    for (int k = 0; k < 4; k++) {
        if (bk->x_dt[k]) {
            PROF(VM_OP_X_PROJ, rc |= xfc(c, bk->x_dt[k], (int)T, p->t3 + (size_t)k * P, p->t4 + (size_t)k * T * D));
        } else {
            PROF(VM_OP_X_PROJ, rc |= sp ? vm_matmul_run(sp[1 + k], p->t3 + (size_t)k * P, p->t4 + (size_t)k * T * D)
                                        : vm_gemm((int)T, D, R, p->t3 + (size_t)k * P, 4 * P, bk->dt_w + (size_t)k * D * R, R,
                                                  p->t4 + (size_t)k * T * D, D, 0.0f));
        }
    }
    TR("dts", p->t4, 4 * B, h, w, D);
    vm_scan_dims dims = {B, h, w, D, N, R};
    PROF(VM_OP_SCAN, K->scan_cross(p->t5, p->t2, p->t4, p->t3, bk->A, bk->Ds, bk->dt_b, &dims));
    TR("y_merged", p->t5, B, h, w, D);
    PROF(VM_OP_NORM, K->layernorm(p->t5, p->t5, bk->out_norm.w, bk->out_norm.b, T, D, VM_LN_EPS));
    TR("out_norm", p->t5, B, h, w, D);
    if (m->info.z_gate) {
        PROF(VM_OP_GATE, K->mul_silu(p->t5, p->t5, p->t1 + D, T, D, Din));
        TR("out_proj_in", p->t5, B, h, w, D);
    }
    PROF(VM_OP_OUT_PROJ, rc |= vm_linear(c, bk->q_out, bk->f_out, LNAME("op.out_proj"), p->t5, D, (int)T, C, D, bk->out_proj_w, p->x, C,
                                      NULL, 0, 1)); /* residual fused */
    TR("block_after_ssm", p->x, B, h, w, C);
    if (st->hidden) {
        const int Hd = st->hidden;
        PROF(VM_OP_NORM, K->layernorm(p->t0, p->x, bk->norm2.w, bk->norm2.b, T, C, VM_LN_EPS));
        PROF(VM_OP_MLP_GEMM, rc |= vm_linear(c, bk->q_fc1, bk->f_fc1, LNAME("mlp.fc1"), p->t0, C, (int)T, Hd, C, bk->fc1_w, p->t1, Hd,
                                          bk->fc1_b, 1, 0)); /* bias and GELU included */
        PROF(VM_OP_MLP_GEMM, rc |= vm_linear(c, bk->q_fc2, bk->f_fc2, LNAME("mlp.fc2"), p->t1, Hd, (int)T, C, Hd, bk->fc2_w, p->x, C,
                                          bk->fc2_b, 0, 1));
    }
    TR("block_out", p->x, B, h, w, C);
#undef TR
#undef LNAME
    if (rc) return vm_ctx_fail(c, VM_ERR_BACKEND, "oneDNN GEMM failed in stage %d block %d", s, j);
    return 0;
}

/* v1 patch merging: zero-pad to even size, gather 2x2 neighbours into 4C
 * channels in the order (0,0),(1,0),(0,1),(1,1), LayerNorm, project. */
static int patch_merge(vm_ctx *c, const vm_stage *st, int B, int h, int w) {
    const vm_model *m = c->m;
    vm_plan *p = &c->plan;
    const int C = st->C, h2 = (h + 1) / 2, w2 = (w + 1) / 2;
    const size_t T2 = (size_t)B * h2 * w2;
    static const int dy[4] = {0, 1, 0, 1}, dx[4] = {0, 0, 1, 1};
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int y = 0; y < h2; y++)
            for (int x = 0; x < w2; x++) {
                float *o = p->t0 + (((size_t)b * h2 + y) * w2 + x) * 4 * C;
                for (int q = 0; q < 4; q++) {
                    int yy = 2 * y + dy[q], xx = 2 * x + dx[q];
                    if (yy < h && xx < w) memcpy(o + q * C, p->x + (((size_t)b * h + yy) * w + xx) * C, (size_t)C * 4);
                    else memset(o + q * C, 0, (size_t)C * 4);
                }
            }
    vm_kernels()->layernorm(p->t0, p->t0, st->ds_norm.w, st->ds_norm.b, T2, 4 * C, VM_LN_EPS);
    char name[64];
    snprintf(name, sizeof name, "layers.%d.downsample.reduction", (int)(st - m->st));
    if (vm_linear(c, st->q_ds, st->f_ds, name, p->t0, 4 * C, (int)T2, st->C_next, 4 * C, st->ds_reduction, p->x, st->C_next, NULL, 0, 0))
        return vm_ctx_fail(c, VM_ERR_BACKEND, "GEMM failed in downsample");
    return 0;
}

static void nchw_to_nhwc(float *dst, const float *src, int B, int C, int H, int W) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int c = 0; c < C; c++)
                    dst[(((size_t)b * H + y) * W + x) * C + c] = src[(((size_t)b * C + c) * H + y) * W + x];
}

/* Token-major (B,h,w,C) to NCHW. */
static void to_nchw(float *dst, const float *src, int B, int h, int w, int C) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            for (int t = 0; t < h * w; t++) dst[((size_t)b * C + c) * h * w + t] = src[((size_t)b * h * w + t) * C + c];
}

/* Patch embed and the four stages of VSS blocks with their downsamples.
 * The last stage's output stays in p->x; a backbone's outnorm_i maps are
 * kept in p->feat[i] (NHWC) for the heads. */
static int backbone(vm_ctx *c, const float *in, int B, int H, int W) {
    const vm_model *m = c->m;
    const vm_info *I = &m->info;
    const vm_kernel_table *K = vm_kernels();
    vm_plan *p = &c->plan;
    double t_pe = c->prof.enabled ? now_s() : 0;
    /* Patch embed. */
    nchw_to_nhwc(p->t0, in, B, 3, H, W);
    if (I->patch_embed_version == 1) {
        if (run_conv(c, &m->pe_conv1, p->pe1, "patch_embed.0", p->t0, B, H, W, p->x)) goto dnnl_fail;
    } else {
        size_t T1 = (size_t)B * p->pe_h1 * p->pe_w1;
        if (run_conv(c, &m->pe_conv1, p->pe1, "patch_embed.0", p->t0, B, H, W, p->t1)) goto dnnl_fail;
        K->layernorm(p->t1, p->t1, m->pe_norm1.w, m->pe_norm1.b, T1, m->pe_norm1.C, VM_LN_EPS);
        K->gelu(p->t1, p->t1, T1 * m->pe_norm1.C);
        if (run_conv(c, &m->pe_conv2, p->pe2, "patch_embed.5", p->t1, B, p->pe_h1, p->pe_w1, p->x)) goto dnnl_fail;
    }
    {
        const vm_ln *n = I->patch_embed_version == 1 ? &m->pe_norm1 : &m->pe_norm2;
        K->layernorm(p->x, p->x, n->w, n->b, (size_t)B * p->h[0] * p->w[0], I->dims[0], VM_LN_EPS);
    }
    if (c->prof.enabled) c->prof.seconds[VM_OP_PATCH_EMBED] += now_s() - t_pe;
    TRACE("patch_embed", p->x, B, p->h[0], p->w[0], I->dims[0]);
    char nm[64];
    for (int s = 0; s < 4; s++) {
        const vm_stage *st = &m->st[s];
        const int h = p->h[s], w = p->w[s];
        const size_t T = (size_t)B * h * w;
        for (int j = 0; j < st->depth; j++)
            if (vss_block(c, st, &st->blocks[j], s, j, B, h, w)) return -1;
        snprintf(nm, sizeof nm, "stage%d_blocks", s);
        TRACE(nm, p->x, B, h, w, st->C);
        if (I->is_backbone) K->layernorm(p->feat[s], p->x, st->outnorm.w, st->outnorm.b, T, st->C, VM_LN_EPS);
        if (s == 3) break;
        double t_ds = c->prof.enabled ? now_s() : 0;
        if (I->downsample_version == 1) {
            if (patch_merge(c, st, B, h, w)) return -1;
        } else {
            snprintf(nm, sizeof nm, "layers.%d.downsample.1", s);
            if (run_conv(c, &st->ds_conv, p->ds[s], nm, p->x, B, h, w, p->t0)) goto dnnl_fail;
            K->layernorm(p->x, p->t0, st->ds_norm.w, st->ds_norm.b, (size_t)B * p->h[s + 1] * p->w[s + 1], st->C_next, VM_LN_EPS);
        }
        if (c->prof.enabled) c->prof.seconds[VM_OP_DOWNSAMPLE] += now_s() - t_ds;
        snprintf(nm, sizeof nm, "stage%d_downsample", s);
        TRACE(nm, p->x, B, p->h[s + 1], p->w[s + 1], st->C_next);
    }
    return 0;
dnnl_fail:
    return vm_ctx_fail(c, VM_ERR_BACKEND, "oneDNN primitive execution failed");
}

int vm_ctx_backbone(vm_ctx *c, const float *in, int B, int H, int W, vm_feats *out) {
    if (vm_plan_ensure(c, B, H, W) || backbone(c, in, B, H, W)) return -1;
    const vm_plan *p = &c->plan;
    memset(out, 0, sizeof *out);
    out->B = B;
    for (int s = 0; s < 4; s++) {
        out->C[s] = c->m->st[s].C;
        out->H[s] = p->h[s];
        out->W[s] = p->w[s];
        out->data[s] = p->feat[s];
    }
    if (!c->m->info.is_backbone) out->data[3] = p->x; /* the classifier's input: no outnorm */
    return 0;
}

int vm_forward_impl(vm_ctx *c, const float *in, int B, int H, int W, float *logits, float *feats[4]) {
    vm_feats f;
    if (vm_ctx_backbone(c, in, B, H, W, &f)) return -1;
    if (feats)
        for (int s = 0; s < 4; s++) to_nchw(feats[s], f.data[s], B, f.H[s], f.W[s], f.C[s]);
    if (logits) {
        double t_head = c->prof.enabled ? now_s() : 0;
        if (vm_classifier_forward(c, &f, logits)) return -1;
        if (c->prof.enabled) c->prof.seconds[VM_OP_HEAD] += now_s() - t_head;
    }
    return 0;
}
