/* test_golden.c - the engine against the official PyTorch VMamba.
 *
 * Tolerance (from the issue): |ours - golden| <= 1e-4 * max(1, |golden|).
 * Why that is right: the reference is FP32 too; what differs is summation
 * order inside GEMMs/LayerNorm and libm's expf/erff vs torch's, each
 * ~1e-7 relative, which grows to ~1e-6 through the network (measured max
 * 5e-6 here). 1e-4 leaves room for other BLAS kernels and ISAs while still
 * catching any real mistake (a wrong index or a missing term is >= 1e-2).
 *
 * Every config is checked for logits (or backbone features) on every
 * input, every stage output on every input that has a trace, and the
 * first SS2D's internals step by step on the _dbg input. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "model/model.h"
#include "simd/kernels.h"

#define TOL 1e-4

typedef struct {
    char name[64];
    float *data;
    int B, H, W, C;
} trace_rec;

typedef struct {
    trace_rec r[256];
    int n;
} trace_log;

static void record(void *user, const char *name, const float *data, int B, int H, int W, int C) {
    trace_log *t = user;
    if (t->n == 256) return;
    trace_rec *r = &t->r[t->n++];
    snprintf(r->name, sizeof r->name, "%s", name);
    size_t n = (size_t)B * H * W * C;
    r->data = malloc(n * sizeof(float));
    memcpy(r->data, data, n * sizeof(float));
    r->B = B; r->H = H; r->W = W; r->C = C;
}

static const trace_rec *get(const trace_log *t, const char *name) {
    for (int i = t->n - 1; i >= 0; i--)
        if (!strcmp(t->r[i].name, name)) return &t->r[i];
    ck_abort_msg("no trace named %s", name);
    return NULL;
}

static void clear(trace_log *t) {
    for (int i = 0; i < t->n; i++) free(t->r[i].data);
    t->n = 0;
}

/* Token-major (B,H,W,C) channels [c0, c0+nc) -> NCHW or NHWC. */
static float *layout(const trace_rec *r, int c0, int nc, int nchw) {
    float *o = malloc((size_t)r->B * r->H * r->W * nc * sizeof(float));
    size_t L = (size_t)r->H * r->W;
    for (int b = 0; b < r->B; b++)
        for (size_t t = 0; t < L; t++)
            for (int c = 0; c < nc; c++) {
                float v = r->data[((size_t)b * L + t) * r->C + c0 + c];
                if (nchw) o[((size_t)b * nc + c) * L + t] = v;
                else o[((size_t)b * L + t) * nc + c] = v;
            }
    return o;
}

static void cmp_trace(const trace_log *t, const char *name, const char *file, int c0, int nc, int nchw) {
    const trace_rec *r = get(t, name);
    if (nc < 0) nc = r->C;
    vm_npy g;
    tload(&g, file);
    ck_assert_msg(g.numel == (size_t)r->B * r->H * r->W * nc, "%s: size %zu vs golden %zu", file,
                  (size_t)r->B * r->H * r->W * nc, g.numel);
    float *o = layout(r, c0, nc, nchw);
    tclose(file, o, g.data, g.numel, TOL);
    free(o);
    vm_npy_free(&g);
}

typedef struct { const char *name; int channel_first; } gconfig;
static const gconfig configs[] = {
    {"v0_ds4", 0}, {"v0_ds16", 0}, {"v2_s2", 1}, {"v2_s1", 1}, {"v2z_ds16", 0}, {"backbone_v2", 1},
};
static const char *suffixes[] = {"", "_odd1", "_odd2", "_dbg"};

static vm_model *load(const char *cfg) {
    char err[512];
    vm_model *m = vm_model_load(tdata("%s/model.pth", cfg), NULL, err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    return m;
}

/* Run m on config c's input `sfx` and compare logits (classifier) or the
 * four features (backbone) with the goldens; `who` prefixes messages. */
static void check_outputs(vm_model *m, const gconfig *c, const char *sfx, const char *who) {
    vm_npy in;
    tload(&in, tdata("%s/input%s.npy", c->name, sfx));
    int B = (int)in.shape[0], H = (int)in.shape[2], W = (int)in.shape[3];
    vm_info I;
    vm_model_info(m, &I);
    char what[160];
    if (I.is_backbone) {
        float *f[4];
        int C, h, w;
        for (int i = 0; i < 4; i++) {
            vm_feature_shape(m, H, W, i, &C, &h, &w);
            f[i] = malloc((size_t)B * C * h * w * sizeof(float));
        }
        ck_assert_msg(vm_forward_features(m, in.data, B, H, W, f) == 0, "%s", vm_model_error(m));
        for (int i = 0; i < 4; i++) {
            vm_npy g;
            tload(&g, tdata("%s/feat%d%s.npy", c->name, i, sfx));
            vm_feature_shape(m, H, W, i, &C, &h, &w);
            ck_assert_int_eq(g.numel, (size_t)B * C * h * w);
            ck_assert_int_eq(g.shape[1], C);
            ck_assert_int_eq(g.shape[2], h);
            ck_assert_int_eq(g.shape[3], w);
            snprintf(what, sizeof what, "%s %s feat%d%s", who, c->name, i, sfx);
            tclose(what, f[i], g.data, g.numel, TOL);
            vm_npy_free(&g);
            free(f[i]);
        }
    } else {
        float *logits = malloc((size_t)B * I.num_classes * sizeof(float));
        ck_assert_msg(vm_forward(m, in.data, B, H, W, logits) == 0, "%s", vm_model_error(m));
        vm_npy g;
        tload(&g, tdata("%s/logits%s.npy", c->name, sfx));
        ck_assert_int_eq(g.numel, (size_t)B * I.num_classes);
        snprintf(what, sizeof what, "%s %s logits%s", who, c->name, sfx);
        tclose(what, logits, g.data, g.numel, TOL);
        vm_npy_free(&g);
        free(logits);
    }
    vm_npy_free(&in);
}

static int n_isa(void) {
    int n = 0;
    while (vm_kernels_available()[n]) n++;
    return n;
}

/* Logits or features, and stage activations, for each kernel table x
 * config x input. */
START_TEST(golden_outputs) {
    const int per_isa = (int)(sizeof configs / sizeof *configs) * 4;
    vm_kernels_set(vm_kernels_available()[_i / per_isa]);
    const gconfig *c = &configs[(_i % per_isa) / 4];
    const char *sfx = suffixes[_i % 4];
    vm_model *m = load(c->name);
    trace_log *t = calloc(1, sizeof *t);
    vm_model_set_trace(m, record, t);
    check_outputs(m, c, sfx, vm_kernels()->name);
    /* Stage activations in the model's native layout, where recorded. */
    const char *act = sfx[0] ? sfx + 1 : NULL;
    char nm[64];
    int checked = 0;
    for (int s = -1; s < 4; s++)
        for (int kind = 0; kind < 2; kind++) {
            if (s < 0 && kind) continue;
            if (s < 0) snprintf(nm, sizeof nm, "patch_embed");
            else snprintf(nm, sizeof nm, "stage%d_%s", s, kind ? "downsample" : "blocks");
            if (s == 3 && kind) continue;
            const char *p = act ? tdata("%s/act_%s_%s.npy", c->name, act, nm) : tdata("%s/act_%s.npy", c->name, nm);
            if (!tfile_exists(p)) continue;
            cmp_trace(t, nm, p, 0, -1, c->channel_first);
            checked++;
        }
    if (!strcmp(sfx, "") || !strcmp(sfx, "_dbg")) ck_assert_msg(checked >= 7, "only %d stage traces found", checked);
    clear(t);
    free(t);
    vm_model_free(m);
}
END_TEST

/* Linear layers run as matmul primitives on packed weights with fused
 * bias/GELU/residual (the default, tested above) or, with packing off
 * (VMAMBA_PACK=0, and always while calibrating), as oneDNN sgemm plus
 * separate passes. The plain path must meet the same golden tolerance. */
START_TEST(golden_plain_gemm) {
    const gconfig *c = &configs[_i / 2];
    vm_model *m = load(c->name);
    ck_assert_msg(vm_model_unpack(m) == 0, "%s", vm_model_error(m)); /* loading packed them */
    check_outputs(m, c, _i % 2 ? "_odd1" : "", "plain-gemm");
    ck_assert_msg(m->nflin == 0, "weights were packed with packing off");
    vm_model_free(m);
}
END_TEST

/* Loading packs the FP32 linears once; the model is read-only afterwards.
 * Saving reads temporary unpacked copies: a model saved straight after
 * loading and one saved after a forward pass are byte-identical, the model
 * stays packed through both, and the logits are the same bit for bit. */
START_TEST(pack_roundtrip) {
    const gconfig *c = &configs[3]; /* v2_s1: classifier, MLP, fused GELU */
    vm_model *m = load(c->name);
    vm_npy in;
    tload(&in, tdata("%s/input.npy", c->name));
    int B = (int)in.shape[0], H = (int)in.shape[2], W = (int)in.shape[3];
    vm_info I;
    vm_model_info(m, &I);
    ck_assert_msg(m->nflin > 0, "loading did not pack");
    const size_t nflin = m->nflin;
    char p1[64], p2[64];
    snprintf(p1, sizeof p1, "/tmp/vmtest_pack_%d_a.safetensors", (int)getpid());
    snprintf(p2, sizeof p2, "/tmp/vmtest_pack_%d_b.safetensors", (int)getpid());
    ck_assert(vm_model_save(m, p1, "f32", NULL) == 0);
    ck_assert_msg(m->nflin == nflin, "saving changed the model's packs");
    float *a = malloc((size_t)B * I.num_classes * sizeof(float)), *b = malloc((size_t)B * I.num_classes * sizeof(float));
    ck_assert_msg(vm_forward(m, in.data, B, H, W, a) == 0, "%s", vm_model_error(m));
    ck_assert_msg(vm_model_save(m, p2, "f32", NULL) == 0, "%s", vm_model_error(m));
    ck_assert_msg(m->nflin == nflin, "saving changed the model's packs");
    size_t s1, s2;
    uint8_t *f1 = tslurp(p1, &s1), *f2 = tslurp(p2, &s2);
    ck_assert_int_eq(s1, s2);
    ck_assert_msg(memcmp(f1, f2, s1) == 0, "weights changed through save");
    ck_assert(vm_forward(m, in.data, B, H, W, b) == 0);
    ck_assert_msg(memcmp(a, b, (size_t)B * I.num_classes * sizeof(float)) == 0, "logits changed after saving");
    /* the saved file loads back to the same logits */
    char e[256];
    vm_model *m2 = vm_model_load(p1, NULL, e, sizeof e);
    ck_assert_msg(m2, "%s", e);
    ck_assert(vm_forward(m2, in.data, B, H, W, b) == 0);
    ck_assert_msg(memcmp(a, b, (size_t)B * I.num_classes * sizeof(float)) == 0, "logits changed through save and load");
    vm_model_free(m2);
    unlink(p1);
    unlink(p2);
    free(f1); free(f2); free(a); free(b);
    vm_npy_free(&in);
    vm_model_free(m);
}
END_TEST

/* The first SS2D (layers[0].blocks[0].op) step by step on input_dbg. */
START_TEST(golden_first_ss2d) {
    const int nc = (int)(sizeof configs / sizeof *configs);
    vm_kernels_set(vm_kernels_available()[_i / nc]);
    const gconfig *c = &configs[_i % nc];
    if (!tfile_exists(tdata("%s/dbg_xs.npy", c->name))) return; /* backbone has no dbg trace */
    vm_model *m = load(c->name);
    trace_log *t = calloc(1, sizeof *t);
    vm_model_set_trace(m, record, t);
    vm_npy in;
    tload(&in, tdata("%s/input_dbg.npy", c->name));
    vm_info I;
    vm_model_info(m, &I);
    float *logits = malloc((size_t)I.num_classes * in.shape[0] * sizeof(float));
    ck_assert(vm_forward(m, in.data, (int)in.shape[0], (int)in.shape[2], (int)in.shape[3], logits) == 0);
    const int D = I.d_inner[0], N = I.d_state, R = I.dt_rank[0], P = R + 2 * N, C = I.dims[0];
    const int cf = c->channel_first;
    cmp_trace(t, "s0.b0.ss2d_in", tdata("%s/dbg_ss2d_in.npy", c->name), 0, C, cf);
    cmp_trace(t, "s0.b0.in_proj", tdata("%s/dbg_in_proj.npy", c->name), 0, D * (I.z_gate ? 2 : 1), cf);
    cmp_trace(t, "s0.b0.act", tdata("%s/dbg_act.npy", c->name), 0, D, 1);
    cmp_trace(t, "s0.b0.y_merged", tdata("%s/dbg_y_merged.npy", c->name), 0, D, 1);
    cmp_trace(t, "s0.b0.out_norm", tdata("%s/dbg_out_norm.npy", c->name), 0, D, cf);
    if (I.z_gate) cmp_trace(t, "s0.b0.out_proj_in", tdata("%s/dbg_out_proj_in.npy", c->name), 0, D, cf);

    /* Cross-scan views (B=1): xs/dts [k][d][l], Bs/Cs [k][n][l]. */
    const trace_rec *act = get(t, "s0.b0.act"), *dbl = get(t, "s0.b0.x_dbl"), *dts = get(t, "s0.b0.dts");
    const int H = act->H, W = act->W, L = H * W;
    float *xs = malloc(sizeof(float) * 4 * D * L), *dt = malloc(sizeof(float) * 4 * D * L);
    float *Bs = malloc(sizeof(float) * 4 * N * L), *Cs = malloc(sizeof(float) * 4 * N * L);
    for (int k = 0; k < 4; k++)
        for (int l = 0; l < L; l++) {
            int tok = vm_scan_token(k, l, H, W);
            for (int d = 0; d < D; d++) {
                xs[((size_t)k * D + d) * L + l] = act->data[(size_t)tok * D + d];
                dt[((size_t)k * D + d) * L + l] = dts->data[((size_t)k * L + tok) * D + d];
            }
            for (int n = 0; n < N; n++) {
                Bs[((size_t)k * N + n) * L + l] = dbl->data[(size_t)tok * 4 * P + k * P + R + n];
                Cs[((size_t)k * N + n) * L + l] = dbl->data[(size_t)tok * 4 * P + k * P + R + N + n];
            }
        }
    vm_npy g;
    const char *names[4] = {"dbg_xs", "dbg_dts", "dbg_Bs", "dbg_Cs"};
    float *ours[4] = {xs, dt, Bs, Cs};
    for (int i = 0; i < 4; i++) {
        const char *p = tdata("%s/%s.npy", c->name, names[i]);
        tload(&g, p);
        tclose(p, ours[i], g.data, g.numel, TOL);
        vm_npy_free(&g);
    }
    /* The reference scan, fed the golden scan inputs, gives the golden ys. */
    vm_npy gx, gd, gB, gC, gy;
    tload(&gx, tdata("%s/dbg_xs.npy", c->name));
    tload(&gd, tdata("%s/dbg_dts.npy", c->name));
    tload(&gB, tdata("%s/dbg_Bs.npy", c->name));
    tload(&gC, tdata("%s/dbg_Cs.npy", c->name));
    tload(&gy, tdata("%s/dbg_ys.npy", c->name));
    const vm_block *bk = &m->st[0].blocks[0];
    float *ys = malloc(sizeof(float) * 4 * D * L);
    for (int k = 0; k < 4; k++)
        vm_selective_scan_ref(ys + (size_t)k * D * L, gx.data + (size_t)k * D * L, gd.data + (size_t)k * D * L,
                              bk->A + (size_t)k * D * N, gB.data + (size_t)k * N * L, gC.data + (size_t)k * N * L,
                              bk->Ds + (size_t)k * D, bk->dt_b + (size_t)k * D, D, L, N);
    tclose("dbg_ys (reference scan)", ys, gy.data, gy.numel, TOL);
    /* ss2d_out = block_after_ssm - block input (the patch embed output). */
    const trace_rec *after = get(t, "s0.b0.block_after_ssm"), *pe = get(t, "patch_embed");
    trace_rec diff = *after;
    diff.data = malloc(sizeof(float) * (size_t)L * C);
    for (size_t i = 0; i < (size_t)L * C; i++) diff.data[i] = after->data[i] - pe->data[i];
    float *o = layout(&diff, 0, C, cf);
    tload(&g, tdata("%s/dbg_ss2d_out.npy", c->name));
    tclose("dbg_ss2d_out", o, g.data, g.numel, TOL);
    vm_npy_free(&g);
    free(o);
    if (I.mlp_hidden[0]) {
        cmp_trace(t, "s0.b0.block_after_ssm", tdata("%s/dbg_block_after_ssm.npy", c->name), 0, C, cf);
        const trace_rec *out = get(t, "s0.b0.block_out");
        for (size_t i = 0; i < (size_t)L * C; i++) diff.data[i] = out->data[i] - after->data[i];
        o = layout(&diff, 0, C, cf);
        tload(&g, tdata("%s/dbg_mlp_out.npy", c->name));
        tclose("dbg_mlp_out", o, g.data, g.numel, TOL);
        vm_npy_free(&g);
        free(o);
    }
    free(diff.data);
    vm_npy_free(&gx); vm_npy_free(&gd); vm_npy_free(&gB); vm_npy_free(&gC); vm_npy_free(&gy);
    free(xs); free(dt); free(Bs); free(Cs); free(ys); free(logits);
    clear(t);
    free(t);
    vm_npy_free(&in);
    vm_model_free(m);
}
END_TEST

/* The real trained digits model on its 200 test images. */
START_TEST(golden_digits) {
    vm_kernels_set(vm_kernels_available()[_i]);
    char err[512];
    vm_model *m = vm_model_load(tdata("digits/model.pth"), NULL, err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    vm_npy in, ref;
    tload(&in, tdata("digits/test_input.npy"));
    tload(&ref, tdata("digits/ref_logits.npy"));
    ck_assert_int_eq(in.shape[0], 200);
    float *logits = malloc(200 * 10 * sizeof(float));
    ck_assert(vm_forward(m, in.data, 200, 32, 32, logits) == 0);
    tclose("digits logits", logits, ref.data, ref.numel, TOL);
    /* Top-1 against labels.csv: 198/200 like the reference. */
    FILE *f = fopen(tdata("digits/labels.csv"), "r");
    ck_assert(f != NULL);
    char line[256];
    int correct = 0, n = 0;
    while (fgets(line, sizeof line, f)) {
        int label;
        char path[200];
        if (sscanf(line, "test/%199[^,],%d", path, &label) != 2) continue;
        int best = 0;
        for (int k = 1; k < 10; k++)
            if (logits[n * 10 + k] > logits[n * 10 + best]) best = k;
        correct += best == label;
        n++;
    }
    fclose(f);
    ck_assert_int_eq(n, 200);
    ck_assert_int_eq(correct, 198);
    free(logits);
    vm_npy_free(&in);
    vm_npy_free(&ref);
    vm_model_free(m);
}
END_TEST

/* The CUDA backend (FP32) on every golden config and input, against the
 * same goldens and tolerance as the CPU. Without a GPU (or without a CUDA
 * build) there is nothing to run: the test says so and passes. */
START_TEST(golden_cuda) {
    if (vm_cuda_devices() < 1) {
        if (_i == 0) fprintf(stderr, "  golden_cuda: no CUDA device (or a build without --with-cuda): not run\n");
        return;
    }
    /* The scan's chunk count: fitted to the GPU (many chunks at these small
     * batches), one chunk (the single-pass path large batches take), and an
     * uneven count whose last chunk is short. */
    static const char *chunks[3] = {"0", "1", "5"};
    const int nc = (int)(sizeof configs / sizeof *configs);
    const gconfig *c = &configs[(_i % (nc * 4)) / 4];
    const char *sfx = suffixes[_i % 4];
    setenv("VMAMBA_CUDA_SCAN_CHUNKS", chunks[_i / (nc * 4)], 1);
    /* the last variant also takes the reference paths of the fast
     * kernels: the im2col patch embed instead of the direct stem
     * convolution (and the one-piece upload), and the scalar LayerNorm,
     * cross-merge, GELU and depthwise conv instead of the vectorised ones */
    const int ref = _i / (nc * 4) == 2;
    setenv("VMAMBA_CUDA_DIRECT_STEM", ref ? "0" : "1", 1);
    setenv("VMAMBA_CUDA_REFERENCE_KERNELS", ref ? "1" : "0", 1);
    vm_model *m = load(c->name);
    ck_assert_msg(vm_model_set_device(m, "cuda", VM_PRECISION_FP32) == 0, "%s", vm_model_error(m));
    ck_assert_str_eq(vm_model_device(m), "cuda:0");
    char who[48];
    snprintf(who, sizeof who, "cuda (scan chunks %s%s)", chunks[_i / (nc * 4)], ref ? ", reference kernels" : "");
    check_outputs(m, c, sfx, who);
    vm_model_free(m);
}
END_TEST

START_TEST(golden_cuda_digits) {
    if (vm_cuda_devices() < 1) return;
    char err[512];
    vm_model *m = vm_model_load(tdata("digits/model.pth"), NULL, err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    ck_assert_msg(vm_model_set_device(m, "cuda", VM_PRECISION_FP32) == 0, "%s", vm_model_error(m));
    vm_npy in, ref;
    tload(&in, tdata("digits/test_input.npy"));
    tload(&ref, tdata("digits/ref_logits.npy"));
    float *logits = malloc(200 * 10 * sizeof(float));
    ck_assert(vm_forward(m, in.data, 200, 32, 32, logits) == 0);
    tclose("cuda digits logits", logits, ref.data, ref.numel, TOL);
    /* From a page-locked vm_host_alloc buffer (the direct upload path):
     * the same bits as from ordinary memory. */
    float *pin = vm_host_alloc(in.numel * sizeof(float)), *l2 = malloc(200 * 10 * sizeof(float));
    ck_assert(pin != NULL);
    memcpy(pin, in.data, in.numel * sizeof(float));
    ck_assert(vm_forward(m, pin, 200, 32, 32, l2) == 0);
    ck_assert(memcmp(logits, l2, 200 * 10 * sizeof(float)) == 0);
    vm_host_free(pin);
    free(l2);
    free(logits);
    vm_npy_free(&in);
    vm_npy_free(&ref);
    vm_model_free(m);
}
END_TEST

/* vm_host_alloc: aligned, usable, freed by vm_host_free, NULL on absurd
 * sizes (pinned when a GPU is present, plain otherwise). */
START_TEST(host_buffers) {
    unsigned char *p = vm_host_alloc(1 << 20);
    ck_assert(p != NULL);
    ck_assert_uint_eq((uintptr_t)p % 64, 0);
    memset(p, 0xab, 1 << 20);
    ck_assert_uint_eq(p[(1 << 20) - 1], 0xab);
    vm_host_free(p);
    vm_host_free(NULL);
    ck_assert(vm_host_alloc(SIZE_MAX) == NULL);
    void *z = vm_host_alloc(0);
    ck_assert(z != NULL);
    vm_host_free(z);
}
END_TEST

Suite *suite_golden(void) {
    Suite *s = suite_create("golden");
    TCase *tc = tcase_create("golden");
    tcase_set_timeout(tc, 600);
    int nc = (int)(sizeof configs / sizeof *configs);
    tcase_add_loop_test(tc, golden_outputs, 0, n_isa() * nc * 4);
    tcase_add_loop_test(tc, golden_first_ss2d, 0, n_isa() * nc);
    tcase_add_loop_test(tc, golden_digits, 0, n_isa());
    tcase_add_loop_test(tc, golden_plain_gemm, 0, nc * 2);
    tcase_add_test(tc, pack_roundtrip);
    tcase_add_test(tc, host_buffers);
    tcase_add_loop_test(tc, golden_cuda, 0, nc * 4 * 3);
    tcase_add_test(tc, golden_cuda_digits);
    suite_add_tcase(s, tc);
    return s;
}
