/* backbone_cpu.c - the CPU backend's backbone ops (net/backbone.h): the
 * optimised kernels the CPU forward has always run, behind the one
 * backbone description. Layers resolve to the model's bound weights: INT8
 * layers (oneDNN u8s8 matmul / convolution primitives, or XNNPACK qc8),
 * packed FP32 linears (oneDNN matmul primitives, FP32 or BF16 per plan, or
 * XNNPACK operators), plain weights (oneDNN sgemm); the element-wise
 * kernels and the selective scan are simd/'s (AVX-512 / AVX2 / NEON /
 * scalar, vm_kernels()). Primitives and buffers are the context's plan
 * (src/model/forward.c). Calibration observers see every quantizable
 * layer's input, traces the scan's intermediates. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../model/model.h"
#include "../net/backbone.h"
#include "../../simd/kernels.h"

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

double vm_prof_now(void) {
    struct timespec t;
    clock_gettime(prof_clock(), &t);
    return (double)t.tv_sec + 1e-9 * t.tv_nsec;
}

/* Time `stmt` under op `op` when profiling; free otherwise. */
#define PROF(op, stmt)                                                  \
    do {                                                                \
        if (c->prof.enabled) {                                          \
            double t_ = vm_prof_now();                                  \
            stmt;                                                       \
            c->prof.seconds[op] += vm_prof_now() - t_;                  \
        } else {                                                        \
            stmt;                                                       \
        }                                                               \
    } while (0)

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

static void add_bias_rows(float *x, const float *bias, size_t T, int C) {
#pragma omp parallel for schedule(static)
    for (size_t t = 0; t < T; t++)
        for (int c = 0; c < C; c++) x[t * C + c] += bias[c];
}

static void fill_bias_rows(float *x, const float *bias, size_t T, int C) {
#pragma omp parallel for schedule(static)
    for (size_t t = 0; t < T; t++) memcpy(x + t * C, bias, (size_t)C * sizeof *x);
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
    if (q && q->dynamic) {
        /* per-row scales: quantize each row, the exact s32 product, then
         * row scale x column scale (+ bias) in one pass; GELU after */
        if (gelu && accumulate) return -1; /* no layer is both (vm_linears) */
        const vm_kernel_table *kt = vm_kernels();
        vm_plan *p = &c->plan;
        kt->quantize_rows_u8(p->qbuf, p->qrow_scale, p->qrow_zp, A, (size_t)M, K, lda);
        if (vm_qmatmul_run_s32(p->lin[q->slot].q, p->qbuf, p->qacc)) return -1;
        kt->dequant_rows(C, ldc, p->qacc, (size_t)M, N, p->qrow_scale, p->qrow_zp, q->w_scale, q->w_sum, bias, accumulate);
        if (gelu) {
            if (ldc == N) kt->gelu(C, C, (size_t)M * N);
            else
                for (int r = 0; r < M; r++) kt->gelu(C + (size_t)r * ldc, C + (size_t)r * ldc, (size_t)N);
        }
        return 0;
    }
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

/* A convolution on an NHWC map: observed for calibration; an INT8 one
 * quantises its input into its own zero-point-padded buffer. */
static int run_conv(vm_ctx *c, const vm_conv *cv, vm_conv_prim *prim, const char *name, const float *in, int B, int H, int W,
                    float *out) {
    const size_t pixels = (size_t)B * H * W;
    if (c->observe) c->observe(c->observe_user, name, in, pixels, cv->cin, cv->cin, NULL, cv->cout);
    if (cv->x) return vm_xop_conv_run(cv->x, B, H, W, in, out, xpool(c));
    return cv->w8 ? vm_qconv_run(prim, in, out) : vm_conv_run(prim, in, out);
}

#define CTX(bb) ((vm_ctx *)(bb)->c)

static double cpu_now(vm_bb *bb) {
    (void)bb;
    return vm_prof_now();
}

const vm_ln *vm_model_ln(const vm_model *m, vm_bb_layer l, int s, int j) {
    switch (l) {
    case VM_BB_PE_NORM1: return &m->pe_norm1;
    case VM_BB_PE_NORM2: return &m->pe_norm2;
    case VM_BB_NORM: return &m->st[s].blocks[j].norm;
    case VM_BB_NORM2: return &m->st[s].blocks[j].norm2;
    case VM_BB_DS_NORM: return &m->st[s].ds_norm;
    case VM_BB_OUTNORM: return &m->st[s].outnorm;
    case VM_BB_CLS_NORM: return &m->cls_norm;
    default: return NULL;
    }
}

static int cpu_layernorm(vm_bb *bb, vm_bb_layer l, int s, int j, const float *in, float *out, size_t T, int C) {
    const vm_ln *n = vm_model_ln(bb->m, l, s, j);
    if (!n) return vm_ctx_fail(CTX(bb), VM_ERR_BACKEND, "backbone: layer kind %d is not a LayerNorm", (int)l);
    vm_kernels()->layernorm(out, in, n->w, n->b, T, C, VM_LN_EPS);
    return 0;
}

/* A convolution layer, its primitive in the plan and its checkpoint name. */
static const vm_conv *conv_of(vm_bb *bb, vm_bb_layer l, int s, vm_conv_prim **prim, char *name, size_t len) {
    const vm_model *m = bb->m;
    vm_plan *p = &CTX(bb)->plan;
    switch (l) {
    case VM_BB_PE_CONV1: *prim = p->pe1; snprintf(name, len, "patch_embed.0"); return &m->pe_conv1;
    case VM_BB_PE_CONV2: *prim = p->pe2; snprintf(name, len, "patch_embed.5"); return &m->pe_conv2;
    case VM_BB_DS_CONV: *prim = p->ds[s]; snprintf(name, len, "layers.%d.downsample.1", s); return &m->st[s].ds_conv;
    default: return NULL;
    }
}

static void nchw_to_nhwc(float *dst, const float *src, int B, int C, int H, int W) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                for (int c = 0; c < C; c++)
                    dst[(((size_t)b * H + y) * W + x) * C + c] = src[(((size_t)b * C + c) * H + y) * W + x];
}

static int cpu_conv_ln(vm_bb *bb, vm_bb_layer conv, vm_bb_layer ln, int s, const float *in, int B, int H, int W, float *mid,
                       float *out) {
    vm_ctx *c = CTX(bb);
    vm_conv_prim *prim = NULL;
    char name[64];
    const vm_conv *cv = conv_of(bb, conv, s, &prim, name, sizeof name);
    const vm_ln *n = vm_model_ln(bb->m, ln, s, 0);
    if (!cv || !n) return vm_ctx_fail(c, VM_ERR_BACKEND, "backbone: layer kinds %d/%d are not a convolution and a LayerNorm", (int)conv, (int)ln);
    if (run_conv(c, cv, prim, name, in, B, H, W, mid)) return vm_ctx_fail(c, VM_ERR_BACKEND, "oneDNN primitive execution failed (%s)", name);
    const int OH = (H + 2 * cv->pad - cv->k) / cv->stride + 1, OW = (W + 2 * cv->pad - cv->k) / cv->stride + 1;
    vm_kernels()->layernorm(out, mid, n->w, n->b, (size_t)B * OH * OW, cv->cout, VM_LN_EPS);
    return 0;
}

/* The input transposed to NHWC first: oneDNN has fast (jit) kernels for
 * nhwc -> nhwc convolutions, not for nchw -> nhwc. */
static int cpu_stem(vm_bb *bb, const float *in, int B, int H, int W, float *out, int gelu) {
    float *t0 = bb->t0;
    nchw_to_nhwc(t0, in, B, 3, H, W);
    if (cpu_conv_ln(bb, VM_BB_PE_CONV1, VM_BB_PE_NORM1, 0, t0, B, H, W, out, out)) return -1;
    if (gelu) {
        const vm_conv *cv = &bb->m->pe_conv1;
        const int OH = (H + 2 * cv->pad - cv->k) / cv->stride + 1, OW = (W + 2 * cv->pad - cv->k) / cv->stride + 1;
        vm_kernels()->gelu(out, out, (size_t)B * OH * OW * cv->cout);
    }
    return 0;
}

/* x_proj: the XNNPACK operator, the plan's matmul primitive, or sgemm on
 * the plain weights (unpacked models). */
static int x_proj(vm_bb *bb, int s, int j, const float *A, int M, int N, int K, float *C) {
    vm_ctx *c = CTX(bb);
    const vm_model *m = bb->m;
    const vm_block *bk = &m->st[s].blocks[j];
    vm_plan *p = &c->plan;
    if (bk->x_xproj) return xfc(c, bk->x_xproj, M, A, C);
    if (p->sp_mm) {
        size_t bi = (size_t)j;
        for (int q = 0; q < s; q++) bi += (size_t)m->st[q].depth;
        return vm_matmul_run(p->sp_mm[5 * bi], A, C);
    }
    return vm_gemm(M, N, K, A, K, bk->x_proj_w, K, C, N, 0.0f);
}

static int cpu_linear(vm_bb *bb, vm_bb_layer l, int s, int j, const float *A, int lda, int M, int N, int K, float *C, int ldc,
                      int gelu, int accumulate) {
    vm_ctx *c = CTX(bb);
    const vm_model *m = bb->m;
    const vm_stage *st = &m->st[s];
    const vm_block *bk = l == VM_BB_DS_REDUCTION || l == VM_BB_HEAD ? NULL : &st->blocks[j];
    char name[80];
    int rc;
    switch (l) {
    case VM_BB_X_PROJ: rc = x_proj(bb, s, j, A, M, N, K, C); break;
    case VM_BB_IN_PROJ:
        snprintf(name, sizeof name, "layers.%d.blocks.%d.op.in_proj", s, j);
        rc = vm_linear(c, bk->q_in, bk->f_in, name, A, lda, M, N, K, bk->in_proj_w, C, ldc, NULL, gelu, accumulate);
        break;
    case VM_BB_OUT_PROJ:
        snprintf(name, sizeof name, "layers.%d.blocks.%d.op.out_proj", s, j);
        rc = vm_linear(c, bk->q_out, bk->f_out, name, A, lda, M, N, K, bk->out_proj_w, C, ldc, NULL, gelu, accumulate);
        break;
    case VM_BB_FC1:
        snprintf(name, sizeof name, "layers.%d.blocks.%d.mlp.fc1", s, j);
        rc = vm_linear(c, bk->q_fc1, bk->f_fc1, name, A, lda, M, N, K, bk->fc1_w, C, ldc, bk->fc1_b, gelu, accumulate);
        break;
    case VM_BB_FC2:
        snprintf(name, sizeof name, "layers.%d.blocks.%d.mlp.fc2", s, j);
        rc = vm_linear(c, bk->q_fc2, bk->f_fc2, name, A, lda, M, N, K, bk->fc2_w, C, ldc, bk->fc2_b, gelu, accumulate);
        break;
    case VM_BB_DS_REDUCTION:
        snprintf(name, sizeof name, "layers.%d.downsample.reduction", s);
        rc = vm_linear(c, st->q_ds, st->f_ds, name, A, lda, M, N, K, st->ds_reduction, C, ldc, NULL, gelu, accumulate);
        if (rc) return vm_ctx_fail(c, VM_ERR_BACKEND, "GEMM failed in downsample");
        return 0;
    case VM_BB_HEAD:
        if (vm_linear(c, m->q_head, m->f_head, "classifier.head", A, lda, M, N, K, m->head_w, C, ldc, m->head_b, gelu, accumulate))
            return vm_ctx_fail(c, VM_ERR_BACKEND, "oneDNN primitive execution failed (classifier.head)");
        return 0;
    default: return vm_ctx_fail(c, VM_ERR_BACKEND, "backbone: layer kind %d is not a linear layer", (int)l);
    }
    if (rc) return vm_ctx_fail(c, VM_ERR_BACKEND, "oneDNN GEMM failed in stage %d block %d", s, j);
    return 0;
}

static int cpu_dwconv_silu(vm_bb *bb, int s, int j, const float *in, int ld_in, float *out, int B, int h, int w, int D) {
    const vm_block *bk = &bb->m->st[s].blocks[j];
    vm_kernels()->dwconv3x3_silu(out, in, ld_in, bk->conv_w, bk->conv_b, B, h, w, D);
    return 0;
}

#define TRACE(name, data, b, hh, ww, ch) \
    do { if (c->trace) c->trace(c->trace_user, name, data, b, hh, ww, ch); } while (0)

/* dt_proj (4 directions, reading x_proj's output in place, lda 4(R+2N))
 * into the plan's t4, the fused cross scan / merge, out_norm, gate. For
 * d_state > 1 the scan computes dt_proj itself (dt_w): its chunks' first
 * phase has the FMAs' room, and the K = dt_rank GEMMs ran at 45-145 GFLOP/s
 * (bench/RESULTS.md); the d_state-1 scan has no such room (it lost there).
 * d_state 1 in FP32 runs the four products as one dt_proj kernel call (one
 * parallel region instead of four oneDNN calls, the same bits); BF16 plans
 * keep the bf16 primitives, unpacked models sgemm. Traces of d_state > 1
 * still get dts from the GEMMs. */
static int cpu_ssm(vm_bb *bb, int s, int j, const float *u, const float *xdbl, const float *z, int ldz, float *y, int B, int h,
                   int w) {
    vm_ctx *c = CTX(bb);
    const vm_model *m = bb->m;
    const vm_kernel_table *K = vm_kernels();
    vm_plan *p = &c->plan;
    const vm_stage *st = &m->st[s];
    const vm_block *bk = &st->blocks[j];
    const int D = st->d_inner, R = st->R, N = m->info.d_state, P = R + 2 * N;
    const size_t T = (size_t)B * h * w;
    vm_matmul **sp = NULL; /* this block's x_proj, dt_proj[4] primitives */
    const float *dt_wt = NULL; /* its dt_proj weights r-major (d_state 1, FP32) */
    size_t bi = (size_t)j;
    for (int q = 0; q < s; q++) bi += (size_t)m->st[q].depth;
    if (p->sp_mm) sp = p->sp_mm + 5 * bi;
    if (p->dt_wt) dt_wt = p->dt_wt[bi];
    int rc = 0;
    const int dt_in_scan = N > 1 && R <= VM_SCAN_MAX_R;
    const int dt_kernel = !dt_in_scan && dt_wt && !bk->x_dt[0];
    if (dt_kernel) PROF(VM_OP_X_PROJ, K->dt_proj(p->t4, xdbl, dt_wt, T, D, R, P));
    for (int k = 0; k < 4 && !dt_kernel && (!dt_in_scan || c->trace); k++) {
        if (bk->x_dt[k]) {
            PROF(VM_OP_X_PROJ, rc |= xfc(c, bk->x_dt[k], (int)T, xdbl + (size_t)k * P, p->t4 + (size_t)k * T * D));
        } else {
            PROF(VM_OP_X_PROJ, rc |= sp ? vm_matmul_run(sp[1 + k], xdbl + (size_t)k * P, p->t4 + (size_t)k * T * D)
                                        : vm_gemm((int)T, D, R, xdbl + (size_t)k * P, 4 * P, bk->dt_w + (size_t)k * D * R, R,
                                                  p->t4 + (size_t)k * T * D, D, 0.0f));
        }
    }
    if (rc) return vm_ctx_fail(c, VM_ERR_BACKEND, "oneDNN GEMM failed in stage %d block %d (dt_proj)", s, j);
    char nm[64];
#define TR(what, data, b, hh, ww, ch) \
    do { if (c->trace) { snprintf(nm, sizeof nm, "s%d.b%d.%s", s, j, what); TRACE(nm, data, b, hh, ww, ch); } } while (0)
    TR("dts", p->t4, 4 * B, h, w, D);
    vm_scan_dims dims = {B, h, w, D, N, R};
    PROF(VM_OP_SCAN, K->scan_cross(y, u, p->t4, dt_in_scan ? bk->dt_w : NULL, xdbl, bk->A, bk->Ds, bk->dt_b, &dims));
    TR("y_merged", y, B, h, w, D);
    if (z && !c->trace) {
        /* out_norm and the gate in one pass (the same bits as the two
         * kernels); profiled as the gate */
        PROF(VM_OP_GATE, K->layernorm_mul_silu(y, y, bk->out_norm.w, bk->out_norm.b, z, ldz, T, D, VM_LN_EPS));
        return 0;
    }
    PROF(VM_OP_NORM, K->layernorm(y, y, bk->out_norm.w, bk->out_norm.b, T, D, VM_LN_EPS));
    TR("out_norm", y, B, h, w, D);
    if (z) {
        PROF(VM_OP_GATE, K->mul_silu(y, y, z, T, D, ldz));
        TR("out_proj_in", y, B, h, w, D);
    }
#undef TR
    return 0;
}

static int cpu_merge_gather(vm_bb *bb, const float *in, float *out, int B, int h, int w, int C) {
    (void)bb;
    const int h2 = (h + 1) / 2, w2 = (w + 1) / 2;
    static const int dy[4] = {0, 1, 0, 1}, dx[4] = {0, 0, 1, 1};
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int y = 0; y < h2; y++)
            for (int x = 0; x < w2; x++) {
                float *o = out + (((size_t)b * h2 + y) * w2 + x) * 4 * C;
                for (int q = 0; q < 4; q++) {
                    int yy = 2 * y + dy[q], xx = 2 * x + dx[q];
                    if (yy < h && xx < w) memcpy(o + q * C, in + (((size_t)b * h + yy) * w + xx) * C, (size_t)C * 4);
                    else memset(o + q * C, 0, (size_t)C * 4);
                }
            }
    return 0;
}

/* Summed in double, in token order (the classifier's pool). */
static int cpu_mean_tokens(vm_bb *bb, const float *in, int B, int L, int C, float *out) {
    (void)bb;
    for (int b = 0; b < B; b++)
        for (int ch = 0; ch < C; ch++) {
            double acc = 0;
            for (int t = 0; t < L; t++) acc += in[((size_t)b * L + t) * C + ch];
            out[(size_t)b * C + ch] = (float)(acc / L);
        }
    return 0;
}

/* LayerNorm + linear: a static-scale INT8 layer on oneDNN quantizes straight
 * from the norm (layernorm_u8: the same codes as the norm, then quantize_u8,
 * so the same output), saving a pass over the norm's float output and a
 * parallel region; everything else (FP32, dynamic or XNNPACK INT8, a
 * calibration observer, which must see the float input) is left to the
 * two ops (returns 1). */
static int cpu_norm_linear(vm_bb *bb, vm_bb_layer ln, vm_bb_layer l, int s, int j, const float *in, float *ln_out, size_t T,
                           int C, int N, float *Cout, int ldc, int gelu, int accumulate) {
    vm_ctx *c = CTX(bb);
    const vm_block *bk = &bb->m->st[s].blocks[j];
    const vm_qlinear *q = l == VM_BB_IN_PROJ ? bk->q_in : l == VM_BB_FC1 ? bk->q_fc1 : NULL;
    const vm_ln *n = vm_model_ln(bb->m, ln, s, j);
    if (q && n && !q->dynamic && !q->x && !c->observe && C <= VM_LN_U8_MAX_C) {
        vm_kernels()->layernorm_u8(c->plan.qbuf, in, n->w, n->b, T, C, VM_LN_EPS, 1.0f / q->a_scale, (float)q->a_zp);
        if (vm_qmatmul_run(c->plan.lin[q->slot].q, c->plan.qbuf, Cout))
            return vm_ctx_fail(c, VM_ERR_BACKEND, "oneDNN GEMM failed in stage %d block %d", s, j);
        return 0;
    }
    (void)ln_out; (void)N; (void)ldc; (void)gelu; (void)accumulate; /* the primitive has them */
    return 1;
}

const vm_bb_ops vm_bb_cpu_ops = {
    "cpu", cpu_now, cpu_stem, cpu_conv_ln, cpu_layernorm, cpu_linear, cpu_dwconv_silu, cpu_ssm, cpu_merge_gather,
    cpu_mean_tokens, cpu_norm_linear,
};
