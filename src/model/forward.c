/* forward.c - the CPU forward pass: plan activations and primitives once
 * per input shape, then the backbone (described once in net/backbone.c,
 * run with the CPU ops of src/ops/backbone_cpu.c) -> classifier head or
 * backbone features.
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
#include "../net/backbone.h"
#include "../../simd/kernels.h"
#include "../core/util.h"

static size_t maxz(size_t a, size_t b) { return a > b ? a : b; }

const char *const vm_op_names[VM_OP_COUNT] = {"patch_embed", "layernorm", "in_proj", "dwconv+silu", "x_proj+dt_proj",
                                               "selective_scan", "gate", "out_proj", "mlp_gemm", "gelu",
                                               "downsample", "head", "host<->device"};

void vm_plan_free(vm_plan *p) {
    free(p->arena);
    free(p->qbuf);
    free(p->qacc);
    free(p->qrow_scale);
    free(p->qrow_zp);
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
    free(p->dt_wt_buf);
    free(p->dt_wt);
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
    size_t xacc = 0, xq8 = 0, qacc = 0, qrows = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const vm_lin_slot *L = &v[i];
        int st = L->rows_stage, M;
        if (st < 0) M = B;
        else if (st >= 10) M = B * ((p->h[st - 10] + 1) / 2) * ((p->w[st - 10] + 1) / 2);
        else M = B * p->h[st] * p->w[st];
        if (L->q && L->q->dynamic) {
            /* dynamic INT8: the bare s32 product; scales, bias, GELU and
             * the residual add in vm_linear */
            const vm_qlinear *q = L->q;
            p->lin[i].q = vm_qmatmul_create_s32_x(c->dx, M, q->N, q->K, q->K, q->w, e, sizeof e);
            if (!p->lin[i].q) rc = vm_ctx_fail(c, VM_ERR_BACKEND, "%s", e);
            if ((size_t)M * q->K > *qbytes) *qbytes = (size_t)M * q->K;
            if ((size_t)M * q->N > qacc) qacc = (size_t)M * q->N;
            if ((size_t)M > qrows) qrows = (size_t)M;
        } else if (L->q && L->q->x) {
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
    if (!rc && qacc &&
        (!(p->qacc = malloc(qacc * sizeof *p->qacc)) || !(p->qrow_scale = malloc(qrows * sizeof *p->qrow_scale)) ||
         !(p->qrow_zp = malloc(qrows * sizeof *p->qrow_zp))))
        rc = vm_ctx_fail(c, VM_ERR_NOMEM, "out of memory (%zu s32 of dynamic INT8 GEMM output)", qacc);
    if (!rc && xq8 && !(p->xq8 = malloc(xq8)))
        rc = vm_ctx_fail(c, VM_ERR_NOMEM, "out of memory (%zu bytes of INT8 GEMM output)", xq8);
    return rc;
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
    /* d_state 1, FP32: dt_proj runs as one kernel call for the four
     * directions (kernels.h dt_proj) on these r-major copies; the four
     * primitives below stay for BF16 plans and are made anyway (cheap) */
    if (m->info.d_state == 1 && !p->bf16) {
        size_t n = 0;
        for (int s = 0; s < 4; s++) n += (size_t)m->st[s].depth * 4 * m->st[s].R * m->st[s].d_inner;
        p->dt_wt_buf = malloc(n * sizeof *p->dt_wt_buf);
        p->dt_wt = malloc(nb * sizeof *p->dt_wt);
        if (!p->dt_wt_buf || !p->dt_wt) return vm_ctx_fail(c, VM_ERR_NOMEM, "out of memory (dt_proj weights)");
        float *q = p->dt_wt_buf;
        size_t bi = 0;
        for (int s = 0; s < 4; s++) {
            const int D = m->st[s].d_inner, R = m->st[s].R;
            for (int j = 0; j < m->st[s].depth; j++, bi++) {
                const float *w = m->st[s].blocks[j].dt_w;
                p->dt_wt[bi] = q;
                for (int k = 0; k < 4; k++)
                    for (int r = 0; r < R; r++)
                        for (int d = 0; d < D; d++) *q++ = w[((size_t)k * D + d) * R + r];
            }
        }
    }
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

/* Token-major (B,h,w,C) to NCHW. */
static void to_nchw(float *dst, const float *src, int B, int h, int w, int C) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            for (int t = 0; t < h * w; t++) dst[((size_t)b * C + c) * h * w + t] = src[((size_t)b * h * w + t) * C + c];
}

/* The CPU backbone ops over c's plan (vm_plan_ensure first). */
static void cpu_bb(vm_ctx *c, vm_bb *bb) {
    vm_plan *p = &c->plan;
    memset(bb, 0, sizeof *bb);
    bb->ops = &vm_bb_cpu_ops;
    bb->m = c->m;
    bb->c = c;
    bb->host = 1;
    for (int s = 0; s < 4; s++) {
        bb->h[s] = p->h[s];
        bb->w[s] = p->w[s];
        bb->feat[s] = p->feat[s];
    }
    bb->pe_h1 = p->pe_h1;
    bb->pe_w1 = p->pe_w1;
    bb->x = p->x;
    bb->t0 = p->t0;
    bb->t1 = p->t1;
    bb->t2 = p->t2;
    bb->t3 = p->t3;
    bb->t5 = p->t5;
}

int vm_ctx_backbone(vm_ctx *c, const float *in, int B, int H, int W, vm_feats *out) {
    if (vm_plan_ensure(c, B, H, W)) return -1;
    vm_plan *p = &c->plan;
    vm_bb bb;
    cpu_bb(c, &bb);
    if (vm_backbone_run(&bb, in, B, H, W)) return -1;
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
        double t_head = c->prof.enabled ? vm_prof_now() : 0;
        vm_classifier h;
        char e[256];
        if (vm_classifier_bind(c->m, &h, e, sizeof e)) return vm_ctx_fail(c, VM_ERR_UNSUPPORTED, "%s", e);
        vm_bb bb;
        cpu_bb(c, &bb);
        /* the last stage's raw output (a checkpoint with both outnorm3
         * and a classifier feeds the classifier the un-normalised map) */
        if (vm_classifier_run(&h, &bb, c->plan.x, B, f.H[3] * f.W[3], logits)) return -1;
        if (c->prof.enabled) c->prof.seconds[VM_OP_HEAD] += vm_prof_now() - t_head;
    }
    return 0;
}
