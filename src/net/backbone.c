/* backbone.c - the VMamba backbone, written once: patch embed -> 4 stages
 * of VSS blocks (+ downsample), each step one backend op (backbone.h).
 * The same sequence for every family: v1/v2 patch embed, v1 patch merging
 * or v3 conv downsample, with or without the z gate and the MLP. */
#include <stdio.h>

#include "backbone.h"
#include "../model/model.h"

/* Time `stmt` under op `op` when profiling; free otherwise. */
#define PROF(op, stmt)                                                  \
    do {                                                                \
        if (c->prof.enabled) {                                          \
            double t_ = bb->ops->now(bb);                               \
            stmt;                                                       \
            c->prof.seconds[op] += bb->ops->now(bb) - t_;               \
        } else {                                                        \
            stmt;                                                       \
        }                                                               \
    } while (0)

/* Named intermediate tensors for tests (host backends only). */
#define TRACE(name, data, b, hh, ww, ch) \
    do { if (c->trace && bb->host) c->trace(c->trace_user, name, data, b, hh, ww, ch); } while (0)

/* x = x + SS2D(LN(x)); then x = x + MLP(LN2(x)) if the block has one. */
static int vss_block(vm_bb *bb, int s, int j, int B, int h, int w) {
    const vm_model *m = bb->m;
    vm_ctx *c = bb->c;
    const vm_bb_ops *o = bb->ops;
    const vm_stage *st = &m->st[s];
    const int C = st->C, D = st->d_inner, P = st->R + 2 * m->info.d_state;
    const int Din = D * (m->info.z_gate ? 2 : 1);
    const size_t T = (size_t)B * h * w;
    char nm[64];
#define TR(what, data, b, hh, ww, ch) \
    do { if (c->trace) { snprintf(nm, sizeof nm, "s%d.b%d.%s", s, j, what); TRACE(nm, data, b, hh, ww, ch); } } while (0)
    int rc = 0;
    /* The norms before in_proj and fc1 feed only them: one fused op where
     * the backend has it (profiled under the linear; not while tracing,
     * which reads the norm's output) */
    const int fuse = o->norm_linear && !c->trace;
    int f = 1;
    if (fuse) PROF(VM_OP_IN_PROJ, f = o->norm_linear(bb, VM_BB_NORM, VM_BB_IN_PROJ, s, j, bb->x, bb->t0, T, C, Din, bb->t1, Din, 0, 0));
    if (f < 0) rc = -1;
    if (f == 1) {
        PROF(VM_OP_NORM, rc |= o->layernorm(bb, VM_BB_NORM, s, j, bb->x, bb->t0, T, C));
        TR("ss2d_in", bb->t0, B, h, w, C);
        PROF(VM_OP_IN_PROJ, rc |= o->linear(bb, VM_BB_IN_PROJ, s, j, bb->t0, C, (int)T, Din, C, bb->t1, Din, 0, 0));
    }
    TR("in_proj", bb->t1, B, h, w, Din);
    PROF(VM_OP_DWCONV, rc |= o->dwconv_silu(bb, s, j, bb->t1, Din, bb->t2, B, h, w, D));
    TR("act", bb->t2, B, h, w, D);
    PROF(VM_OP_X_PROJ, rc |= o->linear(bb, VM_BB_X_PROJ, s, j, bb->t2, D, (int)T, 4 * P, D, bb->t3, 4 * P, 0, 0));
    TR("x_dbl", bb->t3, B, h, w, 4 * P);
    /* dt_proj, scan, merge, out_norm, gate: profiled inside by the backend */
    rc |= o->ssm(bb, s, j, bb->t2, bb->t3, m->info.z_gate ? bb->t1 + D : NULL, Din, bb->t5, B, h, w);
    PROF(VM_OP_OUT_PROJ, rc |= o->linear(bb, VM_BB_OUT_PROJ, s, j, bb->t5, D, (int)T, C, D, bb->x, C, 0, 1)); /* residual */
    TR("block_after_ssm", bb->x, B, h, w, C);
    if (st->hidden) {
        const int Hd = st->hidden;
        f = 1;
        if (fuse) PROF(VM_OP_MLP_GEMM, f = o->norm_linear(bb, VM_BB_NORM2, VM_BB_FC1, s, j, bb->x, bb->t0, T, C, Hd, bb->t1, Hd, 1, 0));
        if (f < 0) rc = -1;
        if (f == 1) {
            PROF(VM_OP_NORM, rc |= o->layernorm(bb, VM_BB_NORM2, s, j, bb->x, bb->t0, T, C));
            PROF(VM_OP_MLP_GEMM, rc |= o->linear(bb, VM_BB_FC1, s, j, bb->t0, C, (int)T, Hd, C, bb->t1, Hd, 1, 0)); /* GELU */
        }
        PROF(VM_OP_MLP_GEMM, rc |= o->linear(bb, VM_BB_FC2, s, j, bb->t1, Hd, (int)T, C, Hd, bb->x, C, 0, 1)); /* residual */
    }
    TR("block_out", bb->x, B, h, w, C);
#undef TR
    return rc ? -1 : 0;
}

int vm_backbone_run(vm_bb *bb, const float *in, int B, int H, int W) {
    const vm_model *m = bb->m;
    const vm_info *I = &m->info;
    vm_ctx *c = bb->c;
    const vm_bb_ops *o = bb->ops;
    double t_pe = c->prof.enabled ? o->now(bb) : 0;
    /* Patch embed: v1 conv + LN; v2 conv, LN, GELU, conv, LN. */
    if (I->patch_embed_version == 1) {
        if (o->stem(bb, in, B, H, W, bb->x, 0)) return -1;
    } else {
        if (o->stem(bb, in, B, H, W, bb->t1, 1) ||
            o->conv_ln(bb, VM_BB_PE_CONV2, VM_BB_PE_NORM2, 0, bb->t1, B, bb->pe_h1, bb->pe_w1, bb->x, bb->x))
            return -1;
    }
    if (c->prof.enabled) c->prof.seconds[VM_OP_PATCH_EMBED] += o->now(bb) - t_pe;
    TRACE("patch_embed", bb->x, B, bb->h[0], bb->w[0], I->dims[0]);
    char nm[64];
    for (int s = 0; s < 4; s++) {
        const vm_stage *st = &m->st[s];
        const int h = bb->h[s], w = bb->w[s];
        const size_t T = (size_t)B * h * w;
        for (int j = 0; j < st->depth; j++)
            if (vss_block(bb, s, j, B, h, w)) return -1;
        snprintf(nm, sizeof nm, "stage%d_blocks", s);
        TRACE(nm, bb->x, B, h, w, st->C);
        if (I->is_backbone && o->layernorm(bb, VM_BB_OUTNORM, s, 0, bb->x, bb->feat[s], T, st->C)) return -1;
        if (s == 3) break;
        double t_ds = c->prof.enabled ? o->now(bb) : 0;
        const size_t T2 = (size_t)B * bb->h[s + 1] * bb->w[s + 1];
        if (I->downsample_version == 1) {
            /* patch merging: gather 2x2 -> 4C, LN, reduction */
            if (o->merge_gather(bb, bb->x, bb->t0, B, h, w, st->C) ||
                o->layernorm(bb, VM_BB_DS_NORM, s, 0, bb->t0, bb->t0, T2, 4 * st->C) ||
                o->linear(bb, VM_BB_DS_REDUCTION, s, 0, bb->t0, 4 * st->C, (int)T2, st->C_next, 4 * st->C, bb->x, st->C_next, 0, 0))
                return -1;
        } else {
            /* 3x3 stride-2 conv, LN */
            if (o->conv_ln(bb, VM_BB_DS_CONV, VM_BB_DS_NORM, s, bb->x, B, h, w, bb->t0, bb->x)) return -1;
        }
        if (c->prof.enabled) c->prof.seconds[VM_OP_DOWNSAMPLE] += o->now(bb) - t_ds;
        snprintf(nm, sizeof nm, "stage%d_downsample", s);
        TRACE(nm, bb->x, B, bb->h[s + 1], bb->w[s + 1], st->C_next);
    }
    return 0;
}
