/* maskrcnn.c - the Mask R-CNN heads as one net/head.h module: bind reads
 * and checks every weight (sizes from the shapes), plan makes the oneDNN
 * convolutions and buffers for one set of feature shapes, forward runs
 * FPN -> RPN -> box head -> mask head -> paste and fills a vm_detections. */
#include "maskrcnn.h"
#include "post/det_post.h"
#include "core/util.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double now_ms(void) { return omp_get_wtime() * 1e3; }

/* ---- bind ---------------------------------------------------------------- */

typedef struct {
    const vm_weights_src *src;
    const char *prefix;
    char *err;
    size_t errlen;
    int failed;
} binder;

/* Copy weight `name` (under the prefix) checking its shape; dims < 0 are
 * free and returned through `got`. */
static float *take(binder *b, const char *name, int ndim, const int64_t *want, int64_t *got) {
    if (b->failed) return NULL;
    char full[256];
    snprintf(full, sizeof full, "%s%s", b->prefix, name);
    vm_tensor_view v;
    if (b->src->get(b->src->user, full, &v)) {
        vm_errf(b->err, b->errlen, "%s: missing tensor '%s' (not a Mask R-CNN checkpoint?)", b->src->path, full);
        b->failed = 1;
        return NULL;
    }
    int ok = v.ndim == ndim;
    size_t n = 1;
    for (int i = 0; ok && i < ndim; i++) {
        if (want[i] >= 0 && v.shape[i] != want[i]) ok = 0;
        if (v.shape[i] <= 0 || v.shape[i] > (1 << 24)) ok = 0;
        if (got) got[i] = v.shape[i];
        if (ok && !vm_mul_ok(n, (size_t)v.shape[i], &n)) ok = 0;
    }
    if (!ok) {
        char ws[64] = "", hs[64] = "";
        for (int i = 0; i < ndim; i++)
            snprintf(ws + strlen(ws), sizeof ws - strlen(ws), "%s%lld", i ? "," : "", (long long)want[i]);
        for (int i = 0; i < v.ndim && i < 4; i++)
            snprintf(hs + strlen(hs), sizeof hs - strlen(hs), "%s%lld", i ? "," : "", (long long)v.shape[i]);
        vm_errf(b->err, b->errlen, "%s: tensor '%s' has shape [%s], expected [%s] (-1 = any)", b->src->path, full, hs, ws);
        b->failed = 1;
        return NULL;
    }
    float *d = malloc(n * sizeof(float));
    if (!d) {
        vm_errf(b->err, b->errlen, "%s: out of memory for '%s'", b->src->path, full);
        b->failed = 1;
        return NULL;
    }
    memcpy(d, v.data, n * sizeof(float));
    return d;
}

static void take_conv(binder *b, det_conv_w *c, const char *name, int cout, int cin, int k) {
    char n1[160], n2[160];
    snprintf(n1, sizeof n1, "%s.weight", name);
    snprintf(n2, sizeof n2, "%s.bias", name);
    int64_t want[4] = {cout, cin, k, k}, got[4];
    c->w = take(b, n1, 4, want, got);
    if (!c->w) return;
    c->cout = (int)got[0]; c->cin = (int)got[1]; c->k = (int)got[2];
    if (got[2] != got[3]) {
        vm_errf(b->err, b->errlen, "%s: '%s%s' is not a square kernel", b->src->path, b->prefix, n1);
        b->failed = 1;
        return;
    }
    int64_t wb[1] = {c->cout};
    c->b = take(b, n2, 1, wb, NULL);
}

static int has(const vm_weights_src *src, const char *prefix, const char *name) {
    char full[256];
    vm_tensor_view v;
    snprintf(full, sizeof full, "%s%s", prefix, name);
    return src->get(src->user, full, &v) == 0;
}

static void conv_free(det_conv_w *c) { free(c->w); free(c->b); }

static void det_free(vm_head *hh) {
    det_weights *w = (det_weights *)hh;
    if (!w) return;
    for (int i = 0; i < 4; i++) { conv_free(&w->lateral[i]); conv_free(&w->fpn[i]); }
    conv_free(&w->rpn_conv);
    conv_free(&w->rpn_out);
    free(w->fc0_w); free(w->fc0_b); free(w->fc1_w); free(w->fc1_b);
    free(w->cls_w); free(w->cls_b); free(w->reg_w); free(w->reg_b);
    for (int i = 0; i < DET_MAX_MASK_CONVS; i++) conv_free(&w->mconv[i]);
    free(w->up_w); free(w->up_b); free(w->logit_w); free(w->logit_b);
    free(w);
}

static vm_head *det_bind(const vm_weights_src *src, const char *prefix, char *err, size_t errlen) {
    det_weights *w = calloc(1, sizeof *w);
    if (!w) { vm_errf(err, errlen, "%s: out of memory", src->path); return NULL; }
    w->hid.id = vm_head_id_next();
    binder b = {src, prefix ? prefix : "", err, errlen, 0};
    char name[160];
    if (has(src, b.prefix, "neck.lateral_convs.4.conv.weight") || has(src, b.prefix, "neck.fpn_convs.4.conv.weight")) {
        vm_errf(err, errlen, "%s: FPN with extra convolutions (add_extra_convs) is not supported; P6 must come from max-pooling", src->path);
        goto fail;
    }
    take_conv(&b, &w->lateral[0], "neck.lateral_convs.0.conv", -1, -1, 1);
    w->F = w->lateral[0].cout;
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "neck.lateral_convs.%d.conv", i);
        if (i) take_conv(&b, &w->lateral[i], name, w->F, -1, 1);
        w->Cin[i] = w->lateral[i].cin;
        snprintf(name, sizeof name, "neck.fpn_convs.%d.conv", i);
        take_conv(&b, &w->fpn[i], name, w->F, w->F, 3);
    }
    /* RPN: one 3x3 conv, objectness (A) and deltas (4A) fused into one 1x1 */
    int64_t got[4];
    {
        int64_t wc[4] = {w->F, w->F, 3, 3};
        w->rpn_conv.w = take(&b, "rpn_head.rpn_conv.weight", 4, wc, NULL);
        int64_t wb[1] = {w->F};
        w->rpn_conv.b = take(&b, "rpn_head.rpn_conv.bias", 1, wb, NULL);
        w->rpn_conv.cout = w->rpn_conv.cin = w->F;
        w->rpn_conv.k = 3;
        int64_t wcls[4] = {3, w->F, 1, 1}, wreg[4] = {12, w->F, 1, 1}, b3[1] = {3}, b12[1] = {12};
        float *cw = take(&b, "rpn_head.rpn_cls.weight", 4, wcls, got), *cb = take(&b, "rpn_head.rpn_cls.bias", 1, b3, NULL);
        float *rw = take(&b, "rpn_head.rpn_reg.weight", 4, wreg, NULL), *rb = take(&b, "rpn_head.rpn_reg.bias", 1, b12, NULL);
        if (!b.failed) {
            w->A = 3;
            det_conv_w *o = &w->rpn_out;
            o->cout = 15; o->cin = w->F; o->k = 1;
            o->w = malloc((size_t)15 * w->F * sizeof(float));
            o->b = malloc(15 * sizeof(float));
            if (o->w && o->b) {
                memcpy(o->w, cw, (size_t)3 * w->F * sizeof(float));
                memcpy(o->w + (size_t)3 * w->F, rw, (size_t)12 * w->F * sizeof(float));
                memcpy(o->b, cb, 3 * sizeof(float));
                memcpy(o->b + 3, rb, 12 * sizeof(float));
            } else {
                vm_errf(err, errlen, "%s: out of memory", src->path);
                b.failed = 1;
            }
        }
        free(cw); free(cb); free(rw); free(rb);
    }
    if (b.failed) goto fail;
    /* Box head */
    w->roi_out = 7;
    {
        int64_t w0[2] = {-1, (int64_t)w->F * 49};
        float *fc0 = take(&b, "roi_head.bbox_head.shared_fcs.0.weight", 2, w0, got);
        if (b.failed) goto fail;
        w->fc_hidden = (int)got[0];
        int64_t bh[1] = {w->fc_hidden}, w1[2] = {w->fc_hidden, w->fc_hidden};
        w->fc0_b = take(&b, "roi_head.bbox_head.shared_fcs.0.bias", 1, bh, NULL);
        w->fc1_w = take(&b, "roi_head.bbox_head.shared_fcs.1.weight", 2, w1, NULL);
        w->fc1_b = take(&b, "roi_head.bbox_head.shared_fcs.1.bias", 1, bh, NULL);
        if (has(src, b.prefix, "roi_head.bbox_head.shared_fcs.2.weight")) {
            vm_errf(err, errlen, "%s: box heads with more than two shared FCs are not supported", src->path);
            free(fc0);
            goto fail;
        }
        int64_t wc[2] = {-1, w->fc_hidden};
        w->cls_w = take(&b, "roi_head.bbox_head.fc_cls.weight", 2, wc, got);
        if (b.failed) { free(fc0); goto fail; }
        w->ncls = (int)got[0] - 1;
        int64_t bc[1] = {w->ncls + 1}, wr[2] = {4 * w->ncls, w->fc_hidden}, br[1] = {4 * w->ncls};
        w->cls_b = take(&b, "roi_head.bbox_head.fc_cls.bias", 1, bc, NULL);
        w->reg_w = take(&b, "roi_head.bbox_head.fc_reg.weight", 2, wr, NULL);
        w->reg_b = take(&b, "roi_head.bbox_head.fc_reg.bias", 1, br, NULL);
        if (b.failed || w->ncls < 1) {
            if (!b.failed) vm_errf(err, errlen, "%s: fc_cls has no class rows", src->path);
            free(fc0);
            goto fail;
        }
        /* flatten order (c, ph, pw) -> this engine's RoI rows (ph, pw, c) */
        size_t K = (size_t)w->F * 49;
        w->fc0_w = malloc((size_t)w->fc_hidden * K * sizeof(float));
        if (!w->fc0_w) { free(fc0); vm_errf(err, errlen, "%s: out of memory", src->path); goto fail; }
        for (int h = 0; h < w->fc_hidden; h++)
            for (int c = 0; c < w->F; c++)
                for (int q = 0; q < 49; q++) w->fc0_w[(size_t)h * K + (size_t)q * w->F + c] = fc0[(size_t)h * K + (size_t)c * 49 + q];
        free(fc0);
    }
    /* Mask head */
    w->mask_roi = 14;
    int cin = w->F;
    for (int i = 0; i < DET_MAX_MASK_CONVS; i++) {
        snprintf(name, sizeof name, "roi_head.mask_head.convs.%d.conv.weight", i);
        if (!has(src, b.prefix, name)) break;
        snprintf(name, sizeof name, "roi_head.mask_head.convs.%d.conv", i);
        take_conv(&b, &w->mconv[i], name, -1, cin, 3);
        if (b.failed) goto fail;
        cin = w->mconv[i].cout;
        w->nmask_convs = i + 1;
    }
    if (!w->nmask_convs) {
        vm_errf(err, errlen, "%s: missing tensor '%sroi_head.mask_head.convs.0.conv.weight' (no mask head)", src->path, b.prefix);
        goto fail;
    }
    w->Cm = cin;
    {
        int64_t wu[4] = {w->Cm, w->Cm, 2, 2}, bu[1] = {w->Cm}, wl[4] = {w->ncls, w->Cm, 1, 1}, bl[1] = {w->ncls};
        float *uw = take(&b, "roi_head.mask_head.upsample.weight", 4, wu, NULL);
        w->up_b = take(&b, "roi_head.mask_head.upsample.bias", 1, bu, NULL);
        w->logit_w = take(&b, "roi_head.mask_head.conv_logits.weight", 4, wl, NULL);
        w->logit_b = take(&b, "roi_head.mask_head.conv_logits.bias", 1, bl, NULL);
        if (b.failed) { free(uw); goto fail; }
        /* ConvTranspose2d weight (ci, co, i, j) -> GEMM rows ((i*2 + j) * Cm + co, ci) */
        int Cm = w->Cm;
        w->up_w = malloc((size_t)4 * Cm * Cm * sizeof(float));
        if (!w->up_w) { free(uw); vm_errf(err, errlen, "%s: out of memory", src->path); goto fail; }
        for (int ci = 0; ci < Cm; ci++)
            for (int co = 0; co < Cm; co++)
                for (int q = 0; q < 4; q++) w->up_w[((size_t)q * Cm + co) * Cm + ci] = uw[((size_t)ci * Cm + co) * 4 + q];
        free(uw);
    }
    return (vm_head *)w;
fail:
    det_free((vm_head *)w);
    return NULL;
}

/* ---- plan ---------------------------------------------------------------- */

static void det_plan_free(vm_head_plan *pp) {
    det_plan *p = (det_plan *)pp;
    if (!p) return;
    vm_be *be = p->be;
    for (int i = 0; i < 4; i++) {
        be->conv_free(be, p->lateral[i]); be->conv_free(be, p->fpn[i]);
        be->free(be, p->lat[i]);
    }
    for (int l = 0; l < DET_LEVELS; l++) {
        be->conv_free(be, p->rpn_conv[l]); be->conv_free(be, p->rpn_out[l]);
        be->free(be, p->P[l]); be->free(be, p->rpn_o[l]);
        if (!be->host) { free(p->Ph[l]); free(p->rpn_oh[l]); }
    }
    for (int i = 0; i < DET_MAX_MASK_CONVS; i++) be->conv_free(be, p->mconv[i]);
    det_buf *bufs[] = {&p->bx_h1, &p->bx_h2, &p->bx_feats, &p->bx_cls, &p->bx_reg, &p->mk_a, &p->mk_b, &p->mk_up, &p->mk_logit};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) det_buf_free(be, bufs[i]);
    const float *ws[] = {p->fc0_w, p->fc0_b, p->fc1_w, p->fc1_b, p->cls_w, p->cls_b, p->reg_w, p->reg_b, p->up_w,
                         p->up_b, p->logit_w, p->logit_b};
    for (size_t i = 0; i < sizeof ws / sizeof *ws; i++)
        if (ws[i]) be->free_weights(be, ws[i]);
    free(p);
}

static vm_head_plan *det_plan_new(const vm_head *hh, vm_be *be, const vm_feats *s, char *err, size_t errlen) {
    const det_weights *w = (const det_weights *)hh;
    if (s->B != 1) { vm_errf(err, errlen, "Mask R-CNN runs one image at a time (batch %d)", s->B); return NULL; }
    for (int i = 0; i < 4; i++)
        if (s->C[i] != w->Cin[i]) {
            vm_errf(err, errlen, "backbone feature %d has %d channels but the FPN expects %d", i, s->C[i], w->Cin[i]);
            return NULL;
        }
    det_plan *p = calloc(1, sizeof *p);
    if (!p) { vm_errf(err, errlen, "out of memory"); return NULL; }
    p->be = be;
    const int F = w->F, O = w->rpn_out.cout;
    for (int i = 0; i < 4; i++) { p->H[i] = s->H[i]; p->W[i] = s->W[i]; }
    p->H[4] = (p->H[3] + 1) / 2;
    p->W[4] = (p->W[3] + 1) / 2;
    for (int l = 0; l < DET_LEVELS; l++) {
        size_t hw = (size_t)p->H[l] * p->W[l];
        if (l < 4) {
            p->lateral[l] = be->conv_make(be, 1, w->Cin[l], p->H[l], p->W[l], F, 1, 1, 0, w->lateral[l].w, w->lateral[l].b, 0);
            p->fpn[l] = p->lateral[l] ? be->conv_make(be, 1, F, p->H[l], p->W[l], F, 3, 1, 1, w->fpn[l].w, w->fpn[l].b, 0) : NULL;
            if (!p->lateral[l] || !p->fpn[l]) goto fail;
            if (!(p->lat[l] = be->alloc(be, hw * F))) goto oom;
        }
        p->rpn_conv[l] = be->conv_make(be, 1, F, p->H[l], p->W[l], F, 3, 1, 1, w->rpn_conv.w, w->rpn_conv.b, 1);
        p->rpn_out[l] = p->rpn_conv[l] ? be->conv_make(be, 1, F, p->H[l], p->W[l], O, 1, 1, 0, w->rpn_out.w, w->rpn_out.b, 0) : NULL;
        if (!p->rpn_conv[l] || !p->rpn_out[l]) goto fail;
        p->P[l] = be->alloc(be, hw * F);
        p->rpn_o[l] = be->alloc(be, hw * O);
        if (!p->P[l] || !p->rpn_o[l]) goto oom;
        if (be->host) {
            p->Ph[l] = p->P[l], p->rpn_oh[l] = p->rpn_o[l];
        } else {
            p->Ph[l] = malloc(hw * F * sizeof(float));
            p->rpn_oh[l] = malloc(hw * O * sizeof(float));
            if (!p->Ph[l] || !p->rpn_oh[l]) goto oom;
        }
    }
    /* The RPN's hidden map reuses the largest lateral buffer: the laterals
     * are dead once the FPN convolutions ran (saves a P2-sized map). */
    p->rpn_t = p->lat[0];
    const size_t K0 = (size_t)w->roi_out * w->roi_out * F, Hd = w->fc_hidden, NC = w->ncls;
    if (!(p->fc0_w = be->weights(be, w->fc0_w, Hd * K0)) || !(p->fc0_b = be->weights(be, w->fc0_b, Hd)) ||
        !(p->fc1_w = be->weights(be, w->fc1_w, Hd * Hd)) || !(p->fc1_b = be->weights(be, w->fc1_b, Hd)) ||
        !(p->cls_w = be->weights(be, w->cls_w, (NC + 1) * Hd)) || !(p->cls_b = be->weights(be, w->cls_b, NC + 1)) ||
        !(p->reg_w = be->weights(be, w->reg_w, 4 * NC * Hd)) || !(p->reg_b = be->weights(be, w->reg_b, 4 * NC)) ||
        !(p->up_w = be->weights(be, w->up_w, (size_t)4 * w->Cm * w->Cm)))
        goto oom;
    if (det_on_backend(be) && be->mask_logits && /* the mask logits where the deconvolution ran */
        (!(p->up_b = be->weights(be, w->up_b, (size_t)w->Cm)) ||
         !(p->logit_w = be->weights(be, w->logit_w, (size_t)w->ncls * w->Cm)) ||
         !(p->logit_b = be->weights(be, w->logit_b, (size_t)w->ncls))))
        goto oom;
    return (vm_head_plan *)p;
oom:
    vm_errf(err, errlen, "out of %s memory for the detection buffers (%dx%d features)", be->name, s->H[0], s->W[0]);
    goto out;
fail:
    vm_errf(err, errlen, "%s", be->err);
out:
    det_plan_free((vm_head_plan *)p);
    return NULL;
}

/* ---- forward ------------------------------------------------------------- */

static int det_forward(const vm_head *hh, vm_head_plan *pp, const vm_feats *in, void *outp, char *err, size_t errlen) {
    const det_weights *w = (const det_weights *)hh;
    det_plan *p = (det_plan *)pp;
    det_io *io = outp;
    vm_detections *r = io->out;
    float *props = NULL, *boxes = NULL, *scores = NULL, *prob = NULL;
    int *labels = NULL, nprop = 0, n = 0, rc = -1;
    double t0 = now_ms();
    vm_be *be = p->be;
    if (io->trace)
        for (int i = 0; i < 4; i++) {
            char nm[32];
            snprintf(nm, sizeof nm, "backbone_feat%d", i);
            size_t n = (size_t)in->H[i] * in->W[i] * in->C[i];
            float *tmp = be->host ? NULL : malloc(sizeof(float) * (n ? n : 1));
            const float *hv = be->host || tmp ? vm_be_to_host(be, in->data[i], n, tmp) : NULL;
            if (hv) io->trace(io->trace_user, nm, hv, 1, in->H[i], in->W[i], in->C[i]);
            free(tmp);
        }
    if (det_fpn_forward(w, p, in)) { vm_errf(err, errlen, "FPN: %s", be->err); goto done; }
    if (!be->host && (!det_on_backend(be) || io->trace)) /* host RoIAlign reads P2..P5 there; tracing too */
        for (int l = 0; l < DET_LEVELS; l++)
            if (be->download(be, p->Ph[l], p->P[l], (size_t)p->H[l] * p->W[l] * w->F)) { vm_errf(err, errlen, "FPN: %s", be->err); goto done; }
    if (io->trace)
        for (int l = 0; l < DET_LEVELS; l++) {
            char nm[32];
            snprintf(nm, sizeof nm, "fpn_p%d", l + 2);
            io->trace(io->trace_user, nm, p->Ph[l], 1, p->H[l], p->W[l], w->F);
        }
    if (det_rpn_forward(w, p)) { vm_errf(err, errlen, "RPN: %s", be->err); goto done; }
    if (!be->host)
        for (int l = 0; l < DET_LEVELS; l++)
            if (be->download(be, p->rpn_oh[l], p->rpn_o[l], (size_t)p->H[l] * p->W[l] * w->rpn_out.cout)) { vm_errf(err, errlen, "RPN: %s", be->err); goto done; }
    if (io->trace)
        for (int l = 0; l < DET_LEVELS; l++) {
            char nm[32];
            snprintf(nm, sizeof nm, "rpn_out_l%d", l);
            io->trace(io->trace_user, nm, p->rpn_oh[l], 1, p->H[l], p->W[l], w->rpn_out.cout);
        }
    if (det_rpn_proposals(w, p, io, &props, &nprop)) { vm_errf(err, errlen, "out of memory in the RPN"); goto done; }
    if (io->trace) io->trace(io->trace_user, "proposals", props, nprop, 5, 1, 1);
    double t1 = now_ms();
    const float *bprops = io->given_props ? io->given_props : props;
    int nb = io->given_props ? io->n_given_props : nprop;
    if (det_bbox_forward(w, p, io, bprops, nb, &boxes, &scores, &labels, &n, err, errlen)) goto done;
    if (io->trace) io->trace(io->trace_user, "dets_resized", boxes, n, 4, 1, 1);
    prob = malloc((size_t)(n ? n : 1) * 4 * w->mask_roi * w->mask_roi * sizeof(float));
    if (!prob) { vm_errf(err, errlen, "out of memory in the mask head"); goto done; }
    if (io->given_dets && io->n_given_dets != n) {
        vm_errf(err, errlen, "%d given detections for the mask head, but the box head found %d", io->n_given_dets, n);
        goto done;
    }
    if (det_mask_forward(w, p, io, io->given_dets ? io->given_dets : boxes, io->given_dets ? io->given_labels : labels, n,
                         prob, err, errlen))
        goto done;
    double t2 = now_ms();
    /* rescale to the original image (in place, not clipped again) and paste */
    r->masks = calloc((size_t)(n ? n : 1), sizeof *r->masks);
    if (!r->masks) { vm_errf(err, errlen, "out of memory for %d masks", n); goto done; }
    r->count = n;
    r->boxes = boxes; r->scores = scores; r->labels = labels;
    boxes = NULL; scores = NULL; labels = NULL;
    float sw = (float)io->scale_w, sh = (float)io->scale_h;
    int M = 2 * w->mask_roi, fail = 0;
    for (int i = 0; i < n; i++) {
        float *bx = r->boxes + 4 * (size_t)i;
        bx[0] /= sw; bx[1] /= sh; bx[2] /= sw; bx[3] /= sh;
        if (vm_paste_mask(prob + (size_t)i * M * M, M, bx, io->ori_h, io->ori_w, io->opts.mask_thr, &r->masks[i])) fail = 1;
    }
    if (fail) { vm_errf(err, errlen, "out of memory pasting masks"); goto done; }
    double t3 = now_ms();
    r->ms_fpn_rpn = t1 - t0;
    r->ms_roi_heads = t2 - t1;
    r->ms_mask_paste = t3 - t2;
    rc = 0;
done:
    free(props); free(boxes); free(scores); free(labels); free(prob);
    return rc;
}

const vm_head_ops vm_maskrcnn_head_ops = {
    "maskrcnn", det_bind, det_plan_new, det_forward, det_plan_free, det_free,
};
