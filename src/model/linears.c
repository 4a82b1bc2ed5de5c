/* linears.c - the model's linear layers as one list, and the packing of
 * their FP32 weights for oneDNN's matmul.
 *
 * Packing (once, at load) trades the plain [N][K] copy for oneDNN's
 * blocked layout, so the weights are held once either way (peak RSS
 * budget: 1.5x the weights). The packs are read-only afterwards: code that
 * reads plain weights (saving, CUDA upload) unpacks a temporary copy
 * (vm_param_values); only calibration turns a private model back to plain
 * weights for good (vm_model_unpack). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "../core/util.h"

static size_t add(vm_lin_slot *out, size_t cap, size_t n, vm_lin_slot s) {
    if (out && n < cap) out[n] = s;
    return n + 1;
}

static size_t list_linears(vm_model *m, vm_lin_slot *out, size_t cap) {
    const vm_info *I = &m->info;
    size_t n = 0;
    for (int s = 0; s < 4; s++) {
        vm_stage *st = &m->st[s];
        const int C = st->C, D = st->d_inner, Din = D * (I->z_gate ? 2 : 1);
        for (int j = 0; j < st->depth; j++) {
            vm_block *b = &st->blocks[j];
            n = add(out, cap, n, (vm_lin_slot){&b->in_proj_w, b->q_in, &b->f_in, Din, C, s, NULL, 0, 0});
            n = add(out, cap, n, (vm_lin_slot){&b->out_proj_w, b->q_out, &b->f_out, C, D, s, NULL, 0, 1});
            if (st->hidden) {
                n = add(out, cap, n, (vm_lin_slot){&b->fc1_w, b->q_fc1, &b->f_fc1, st->hidden, C, s, b->fc1_b, 1, 0});
                n = add(out, cap, n, (vm_lin_slot){&b->fc2_w, b->q_fc2, &b->f_fc2, C, st->hidden, s, b->fc2_b, 0, 1});
            }
        }
        if (s < 3 && I->downsample_version == 1)
            n = add(out, cap, n, (vm_lin_slot){&st->ds_reduction, st->q_ds, &st->f_ds, st->C_next, 4 * C, s + 10, NULL, 0, 0});
    }
    if (m->head_w || m->q_head || m->f_head)
        n = add(out, cap, n, (vm_lin_slot){&m->head_w, m->q_head, &m->f_head, I->num_classes, I->dims[3], -1, m->head_b, 0, 0});
    return n;
}

vm_lin_slot *vm_linears(const vm_model *cm, size_t *n) {
    vm_model *m = (vm_model *)cm; /* only read here; the slots point into m for the load-time packer */
    *n = list_linears(m, NULL, 0);
    vm_lin_slot *v = calloc(*n ? *n : 1, sizeof *v);
    if (v) list_linears(m, v, *n);
    return v;
}

/* Give every INT8 and packed layer its index in the list (its primitive's
 * place in a context's plan). */
static int number_slots(vm_model *m) {
    size_t n;
    vm_lin_slot *v = vm_linears(m, &n);
    if (!v) return vm_errf(m->err, sizeof m->err, "out of memory numbering the model's %zu linear layers", n);
    for (size_t i = 0; i < n; i++) {
        if (v[i].q) v[i].q->slot = (int)i;
        if (*v[i].f) (*v[i].f)->slot = (int)i;
    }
    free(v);
    return 0;
}

/* Give a weight buffer back to the system and take it off m->allocs (the
 * last entry moves into its slot, so pack/unpack cycles do not grow the
 * list). */
static void drop_alloc(vm_model *m, const float *p) {
    for (size_t i = 0; i < m->nallocs; i++)
        if (m->allocs[i] == p) {
            free(m->allocs[i]);
            m->allocs[i] = m->allocs[--m->nallocs];
            return;
        }
}

void vm_xnn_release(vm_model *m) {
    /* Only an XNNPACK-path model has operators; any other may be a
     * half-built one (out of memory while binding: stages without blocks),
     * which vm_linears() cannot walk. */
    if (!m->xnn) return;
    size_t nl;
    vm_lin_slot *v = vm_linears(m, &nl); /* NULL (out of memory): the INT8 operators leak, nothing breaks */
    for (size_t i = 0; v && i < nl; i++)
        if (v[i].q) {
            vm_xop_free(v[i].q->x);
            v[i].q->x = NULL;
        }
    free(v);
    for (size_t i = 0; i < m->nflin; i++) {
        vm_xop_free(m->flin[i].x);
        m->flin[i].x = NULL;
    }
    vm_conv *cv[5] = {&m->pe_conv1, &m->pe_conv2, &m->st[0].ds_conv, &m->st[1].ds_conv, &m->st[2].ds_conv};
    for (int i = 0; i < 5; i++) {
        vm_xop_free(cv[i]->x);
        cv[i]->x = NULL;
    }
    for (int s = 0; s < 4; s++)
        for (int j = 0; m->st[s].blocks && j < m->st[s].depth; j++) {
            vm_block *b = &m->st[s].blocks[j];
            vm_xop_free(b->x_xproj);
            b->x_xproj = NULL;
            for (int k = 0; k < 4; k++) {
                vm_xop_free(b->x_dt[k]);
                b->x_dt[k] = NULL;
            }
        }
}

/* The XNNPACK path (m->xnn): one operator per FP32 linear layer, x_proj,
 * dt_proj and FP32 convolution, made from the plain weights, which stay
 * (saving, the CUDA upload and calibration read them; XNNPACK cannot give
 * its packs back). INT8 layers keep their oneDNN primitives. */
static int xnn_pack(vm_model *m, vm_lin_slot *v, size_t n) {
    char e[256];
    int rc = 0;
    size_t k = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        vm_qlinear *q = v[i].q;
        if (q && q->o_scale > 0) { /* INT8 with the output range XNNPACK needs; else oneDNN's INT8 primitive */
            if (!(q->x = vm_xop_qc8(q->N, q->K, q->w, q->w_scale, v[i].bias, q->a_scale, q->a_zp, q->o_scale, q->o_zp, e, sizeof e)))
                rc = vm_errf(m->err, sizeof m->err, "%s", e);
            continue;
        }
        if (v[i].q || !*v[i].w) continue;
        vm_flinear *f = &m->flin[k];
        f->param = SIZE_MAX;
        f->x = vm_xop_fc(v[i].N, v[i].K, v[i].K, v[i].N, *v[i].w, v[i].bias, e, sizeof e);
        if (!f->x) {
            rc = vm_errf(m->err, sizeof m->err, "%s", e);
            break;
        }
        *v[i].f = f;
        m->nflin = ++k;
    }
    const int N = m->info.d_state;
    for (int s = 0; s < 4 && !rc; s++) {
        vm_stage *st = &m->st[s];
        const int D = st->d_inner, R = st->R, P = R + 2 * N;
        for (int j = 0; j < st->depth && !rc; j++) {
            vm_block *b = &st->blocks[j];
            if (b->x_proj_w && !(b->x_xproj = vm_xop_fc(4 * P, D, D, 4 * P, b->x_proj_w, NULL, e, sizeof e))) rc = -1;
            for (int d = 0; d < 4 && !rc && b->dt_w; d++)
                if (!(b->x_dt[d] = vm_xop_fc(D, R, 4 * P, D, b->dt_w + (size_t)d * D * R, NULL, e, sizeof e))) rc = -1;
        }
    }
    vm_conv *cv[5] = {&m->pe_conv1, &m->pe_conv2, &m->st[0].ds_conv, &m->st[1].ds_conv, &m->st[2].ds_conv};
    for (int i = 0; i < 5 && !rc; i++)
        if (cv[i]->w && !cv[i]->w8 &&
            !(cv[i]->x = vm_xop_conv(cv[i]->cin, cv[i]->cout, cv[i]->k, cv[i]->stride, cv[i]->pad, cv[i]->w, cv[i]->b, e, sizeof e)))
            rc = -1;
    if (rc && !m->err[0]) vm_errf(m->err, sizeof m->err, "%s", e);
    return rc;
}

int vm_weights_pack(vm_model *m) {
    if (m->flin || m->no_pack) return number_slots(m);
    size_t n, k = 0;
    vm_lin_slot *v = vm_linears(m, &n);
    m->flin = v ? calloc(n ? n : 1, sizeof *m->flin) : NULL;
    if (!m->flin) {
        free(v);
        return vm_errf(m->err, sizeof m->err, "out of memory");
    }
    int rc = 0;
    if (m->xnn) {
        m->err[0] = 0;
        rc = xnn_pack(m, v, n);
        free(v);
        if (rc) {
            vm_model_unpack(m); /* back to oneDNN on the plain weights */
            return -1;
        }
        return number_slots(m);
    }
    for (size_t i = 0; i < n && !rc; i++) {
        if (v[i].q || !*v[i].w) continue;
        vm_flinear *f = &m->flin[k];
        f->param = SIZE_MAX;
        for (size_t p = 0; p < m->nparams; p++)
            if (m->params[p].data == *v[i].w) f->param = p;
        char e[256];
        f->pack = vm_wpack_create(v[i].N, v[i].K, *v[i].w, e, sizeof e);
        if (!f->pack) {
            rc = vm_errf(m->err, sizeof m->err, "%s", e);
            break;
        }
        /* one layer at a time, so the peak is the weights plus one layer */
        drop_alloc(m, *v[i].w);
        if (f->param != SIZE_MAX) m->params[f->param].data = NULL;
        *v[i].w = NULL;
        *v[i].f = f;
        m->nflin = ++k;
    }
    free(v);
    if (rc) {
        vm_model_unpack(m); /* back to the plain weights already packed */
        return -1;
    }
    return number_slots(m);
}

const float *vm_param_values(const vm_model *m, size_t i, float **tmp) {
    *tmp = NULL;
    const vm_param *p = &m->params[i];
    if (p->data) return p->data;
    for (size_t k = 0; k < m->nflin; k++) {
        const vm_flinear *f = &m->flin[k];
        if (f->param != i) continue;
        size_t n = (size_t)p->shape[0] * (size_t)p->shape[1];
        float *w = malloc(n * sizeof *w);
        if (!w) return NULL;
        if (vm_wpack_unpack(f->pack, w)) {
            free(w);
            return NULL;
        }
        return *tmp = w;
    }
    return NULL;
}

const float *vm_linear_values(const float *w, const vm_flinear *f, size_t n, float **tmp) {
    *tmp = NULL;
    if (w || !f) return w;
    float *p = malloc(n * sizeof *p);
    if (!p) return NULL;
    if (vm_wpack_unpack(f->pack, p)) {
        free(p);
        return NULL;
    }
    return *tmp = p;
}

int vm_model_unpack(vm_model *m) {
    if (__atomic_load_n(&m->nctx, __ATOMIC_ACQUIRE) > 0)
        return vm_errf(m->err, sizeof m->err, "the model is in use by %d context(s): its weights cannot be changed", m->nctx);
    m->no_pack = 1; /* stays plain: the plain-GEMM path */
    if (m->ictx) vm_plan_free(&m->ictx->plan); /* its primitives read the packs */
    if (m->xnn) {
        /* the plain weights never went: drop the operators */
        vm_xnn_release(m);
        size_t n;
        vm_lin_slot *v = vm_linears(m, &n);
        if (!v) return vm_errf(m->err, sizeof m->err, "out of memory");
        for (size_t i = 0; i < n; i++) *v[i].f = NULL;
        free(v);
        free(m->flin);
        m->flin = NULL;
        m->nflin = 0;
        m->xnn = 0;
        return number_slots(m);
    }
    if (!m->flin) return number_slots(m);
    size_t n;
    vm_lin_slot *v = vm_linears(m, &n);
    if (!v) return vm_errf(m->err, sizeof m->err, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        vm_flinear *f = *v[i].f;
        if (!f) continue;
        float *w = vm_model_alloc(m, (size_t)v[i].N * v[i].K);
        if (!w) {
            /* m->err says out of memory. The slots not reached keep their
             * packs (m->flin stays, vm_model_free frees them); the ones
             * done are plain. */
            free(v);
            return -1;
        }
        if (vm_wpack_unpack(f->pack, w)) rc = vm_errf(m->err, sizeof m->err, "oneDNN: cannot unpack a %d x %d weight matrix", v[i].N, v[i].K);
        vm_wpack_free(f->pack);
        f->pack = NULL;
        *v[i].w = w;
        if (f->param != SIZE_MAX) m->params[f->param].data = w;
        *v[i].f = NULL;
    }
    free(v);
    free(m->flin);
    m->flin = NULL;
    m->nflin = 0;
    return rc ? rc : number_slots(m);
}
