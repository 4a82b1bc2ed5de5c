/* test_heads.c - the loader keeps every checkpoint tensor: heads find
 * their weights under the full checkpoint names through the model's
 * vm_weights_src, vm_model_heads says which heads a checkpoint holds, and
 * keys nobody knows are listed, never dropped. The classifier runs as a
 * head on vm_ctx_backbone's NHWC maps. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "model/model.h"
#include "loaders/checkpoint.h"
#include "loaders/safetensors.h"

/* name through the model's weight source equals the checkpoint's tensor
 * (read straight from the file) in shape and every value. */
static void same_as_file(const vm_model *m, const char *path, const char *name, int ndim) {
    vm_weights_src src;
    vm_model_weights(m, &src);
    vm_tensor_view v;
    ck_assert_msg(src.get(src.user, name, &v) == 0, "%s: '%s' not served", path, name);
    ck_assert_int_eq(v.ndim, ndim);
    vm_checkpoint ck;
    char e[256];
    ck_assert_msg(vm_checkpoint_open(&ck, path, NULL, e, sizeof e) == 0, "%s", e);
    const vm_ckpt_tensor *t = vm_checkpoint_find(&ck, name);
    ck_assert_msg(t, "%s: no '%s' in the file", path, name);
    ck_assert_int_eq(t->ndim, ndim);
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        ck_assert_int_eq(v.shape[i], t->shape[i]);
        n *= (size_t)t->shape[i];
    }
    float *ref = malloc(n * sizeof *ref);
    ck_assert(vm_ckpt_read_f32(&ck, t, ref, e, sizeof e) == 0);
    ck_assert_msg(memcmp(ref, v.data, n * sizeof *ref) == 0, "'%s' differs from the file", name);
    free(ref);
    vm_checkpoint_close(&ck);
    ck_assert_msg(strcmp(src.path, path) == 0, "source path %s", src.path);
}

START_TEST(seg_checkpoint_keeps_heads) {
    const char *path = tdata("seg_upernet/model.pth");
    vm_model *m = tload_model(path);
    ck_assert_uint_eq(vm_model_heads(m), VM_HEAD_UPERNET | VM_HEAD_AUXILIARY);
    ck_assert_msg(vm_model_unknown_key(m, 0) == NULL, "unknown key %s", vm_model_unknown_key(m, 0));
    same_as_file(m, path, "decode_head.conv_seg.weight", 4);
    same_as_file(m, path, "decode_head.conv_seg.bias", 1);
    same_as_file(m, path, "decode_head.lateral_convs.0.conv.weight", 4);
    same_as_file(m, path, "auxiliary_head.conv_seg.weight", 4);
    vm_weights_src src;
    vm_model_weights(m, &src);
    vm_tensor_view v;
    ck_assert_int_eq(src.get(src.user, "decode_head.no_such.weight", &v), -1);
    /* num_batches_tracked (int64) is kept by name but is not a float tensor */
    ck_assert_int_eq(src.get(src.user, "decode_head.bottleneck.bn.num_batches_tracked", &v), -1);
    vm_info I;
    vm_model_info(m, &I);
    ck_assert_msg(I.is_backbone && I.num_classes == 0, "backbone binding changed");
    vm_model_free(m);
}
END_TEST

START_TEST(det_checkpoint_keeps_heads) {
    const char *path = tdata("det_maskrcnn/model.pth");
    vm_model *m = tload_model(path);
    ck_assert_uint_eq(vm_model_heads(m), VM_HEAD_FPN | VM_HEAD_RPN | VM_HEAD_ROI);
    ck_assert_msg(vm_model_unknown_key(m, 0) == NULL, "unknown key %s", vm_model_unknown_key(m, 0));
    same_as_file(m, path, "neck.lateral_convs.0.conv.weight", 4);
    same_as_file(m, path, "roi_head.bbox_head.fc_cls.weight", 2);
    same_as_file(m, path, "rpn_head.rpn_conv.weight", 4);
    vm_model_free(m);
}
END_TEST

/* A key no head knows is kept and listed; saving keeps it too. */
START_TEST(unknown_keys_listed) {
    char e[256];
    vm_model *m = tload_model(tdata("v2_s1/model.pth"));
    ck_assert_uint_eq(vm_model_heads(m), VM_HEAD_CLASSIFIER);
    ck_assert_ptr_null(vm_model_unknown_key(m, 0));
    char p1[64], p2[64];
    snprintf(p1, sizeof p1, "/tmp/vmtest_keys_%d_a.safetensors", (int)getpid());
    snprintf(p2, sizeof p2, "/tmp/vmtest_keys_%d_b.safetensors", (int)getpid());
    ck_assert(vm_model_save(m, p1, "f32", NULL) == 0);
    vm_model_free(m);
    /* p1's tensors plus two foreign keys */
    vm_checkpoint ck;
    ck_assert_msg(vm_checkpoint_open(&ck, p1, NULL, e, sizeof e) == 0, "%s", e);
    vm_st_tensor *t = calloc(ck.n + 2, sizeof *t);
    float **buf = calloc(ck.n, sizeof *buf);
    for (size_t i = 0; i < ck.n; i++) {
        size_t n = (size_t)vm_ckpt_numel(&ck.t[i]);
        buf[i] = malloc((n ? n : 1) * sizeof(float));
        ck_assert(vm_ckpt_read_f32(&ck, &ck.t[i], buf[i], e, sizeof e) == 0);
        t[i] = (vm_st_tensor){.name = ck.t[i].name, .data = buf[i], .ndim = ck.t[i].ndim};
        memcpy(t[i].shape, ck.t[i].shape, sizeof ck.t[i].shape);
    }
    static const float extra[6] = {1, 2, 3, 4, 5, 6};
    t[ck.n] = (vm_st_tensor){.name = "ema_decay.weight", .data = extra, .ndim = 2, .shape = {2, 3}};
    t[ck.n + 1] = (vm_st_tensor){.name = "decode_head.conv_seg.bias", .data = extra, .ndim = 1, .shape = {6}};
    ck_assert(vm_safetensors_write(p2, t, ck.n + 2, VM_ST_F32, NULL, 0, e, sizeof e) == 0);
    for (size_t i = 0; i < ck.n; i++) free(buf[i]);
    free(buf);
    free(t);
    vm_checkpoint_close(&ck);
    m = vm_model_load(p2, NULL, e, sizeof e);
    ck_assert_msg(m, "%s", e);
    ck_assert_str_eq(vm_model_unknown_key(m, 0), "ema_decay.weight");
    ck_assert_ptr_null(vm_model_unknown_key(m, 1));
    ck_assert_uint_eq(vm_model_heads(m), VM_HEAD_CLASSIFIER | VM_HEAD_UPERNET);
    vm_weights_src src;
    vm_model_weights(m, &src);
    vm_tensor_view v;
    ck_assert(src.get(src.user, "ema_decay.weight", &v) == 0);
    ck_assert(v.ndim == 2 && v.shape[0] == 2 && v.shape[1] == 3 && v.data[5] == 6.0f);
    /* saved again, the extra keys stay */
    ck_assert(vm_model_save(m, p1, "f32", NULL) == 0);
    vm_model_free(m);
    m = vm_model_load(p1, NULL, e, sizeof e);
    ck_assert_msg(m, "%s", e);
    ck_assert_str_eq(vm_model_unknown_key(m, 0), "ema_decay.weight");
    ck_assert_uint_eq(vm_model_heads(m), VM_HEAD_CLASSIFIER | VM_HEAD_UPERNET);
    vm_model_free(m);
    unlink(p1);
    unlink(p2);
}
END_TEST

/* vm_ctx_backbone leaves a backbone's four outnorm maps in the context's
 * arena, NHWC: the same numbers as vm_ctx_forward_features' NCHW copies. */
START_TEST(backbone_maps_nhwc) {
    char e[256];
    vm_model *m = tload_model(tdata("backbone_v2/model.pth"));
    vm_ctx *c = vm_ctx_new(m, e, sizeof e);
    ck_assert_msg(c, "%s", e);
    const int B = 2, H = 64, W = 48;
    float *in = malloc((size_t)B * 3 * H * W * sizeof(float));
    for (int i = 0; i < B * 3 * H * W; i++) in[i] = sinf(0.01f * (float)i);
    float *nchw[4];
    for (int s = 0; s < 4; s++) {
        int C, h, w;
        vm_feature_shape(m, H, W, s, &C, &h, &w);
        nchw[s] = malloc((size_t)B * C * h * w * sizeof(float));
    }
    ck_assert_msg(vm_ctx_forward_features(c, in, B, H, W, nchw) == 0, "%s", vm_ctx_error(c));
    vm_feats f;
    ck_assert_msg(vm_ctx_backbone(c, in, B, H, W, &f) == 0, "%s", vm_ctx_error(c));
    ck_assert_int_eq(f.B, B);
    for (int s = 0; s < 4; s++) {
        int C, h, w;
        vm_feature_shape(m, H, W, s, &C, &h, &w);
        ck_assert(f.C[s] == C && f.H[s] == h && f.W[s] == w && f.data[s]);
        for (int b = 0; b < B; b++)
            for (int ch = 0; ch < C; ch++)
                for (int t = 0; t < h * w; t++)
                    ck_assert(f.data[s][((size_t)b * h * w + t) * C + ch] == nchw[s][((size_t)b * C + ch) * h * w + t]);
        free(nchw[s]);
    }
    free(in);
    vm_ctx_free(c);
    vm_model_free(m);
}
END_TEST

/* Error codes: bad input and unsupported requests say what they are. */
START_TEST(ctx_error_codes) {
    char e[256];
    vm_model *m = tload_model(tdata("backbone_v2/model.pth"));
    vm_ctx *c = vm_ctx_new(m, e, sizeof e);
    float x[3 * 32 * 32] = {0}, logits[10];
    ck_assert_int_eq(vm_ctx_forward(c, x, 1, 32, 32, logits), VM_ERR_UNSUPPORTED);
    ck_assert_int_eq(vm_ctx_error_code(c), VM_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(vm_ctx_error(c), "backbone"), "%s", vm_ctx_error(c));
    float *f[4] = {NULL, NULL, NULL, NULL};
    ck_assert_int_eq(vm_ctx_forward_features(c, x, 0, 32, 32, f), VM_ERR_INPUT);
    ck_assert_int_eq(vm_ctx_forward_features(c, x, 1, 1, 1, f), VM_ERR_INPUT); /* NULL buffers */
    ck_assert_int_eq(vm_ctx_set_threads(c, 1), 0);
    ck_assert_int_eq(vm_ctx_forward(NULL, x, 1, 32, 32, logits), VM_ERR_INPUT);
    /* calibration refuses a model other contexts use */
    ck_assert_int_eq(vm_model_unpack(m), -1);
    ck_assert_msg(strstr(vm_model_error(m), "in use"), "%s", vm_model_error(m));
    vm_ctx_free(c);
    ck_assert_int_eq(vm_model_unpack(m), 0);
    vm_model_free(m);
}
END_TEST

/* A toy head following net/head.h: binds a weight by its full checkpoint
 * name, plans a buffer per feature shape, and writes each map's channel
 * means (B x C_i, maps one after another) plus conv_seg.bias[0]. */
struct vm_head {
    vm_head_id hid; /* first (net/head.h) */
    float bias0;
};
struct vm_head_plan {
    vm_feats shape;
    float *acc;
};
static int n_plans, n_frees;

static vm_head *toy_bind(const vm_weights_src *src, const char *prefix, char *err, size_t errlen) {
    char nm[128];
    snprintf(nm, sizeof nm, "%sconv_seg.bias", prefix);
    vm_tensor_view v;
    if (src->get(src->user, nm, &v)) {
        snprintf(err, errlen, "%s: missing '%s'", src->path, nm);
        return NULL;
    }
    vm_head *h = malloc(sizeof *h);
    h->hid.id = vm_head_id_next();
    h->bias0 = v.data[0];
    return h;
}
static vm_head_plan *toy_plan(const vm_head *h, vm_be *be, const vm_feats *f, char *err, size_t errlen) {
    (void)be;
    vm_head_plan *p = calloc(1, sizeof *p);
    p->shape = *f;
    p->acc = malloc((size_t)f->C[0] * sizeof(float));
    n_plans++;
    return p;
}
static int toy_forward(const vm_head *h, vm_head_plan *p, const vm_feats *f, void *out, char *err, size_t errlen) {
    float *o = out;
    for (int s = 0; s < 4; s++)
        for (int b = 0; b < f->B; b++)
            for (int c = 0; c < f->C[s]; c++) {
                double acc = 0;
                for (int t = 0; t < f->H[s] * f->W[s]; t++) acc += f->data[s][((size_t)b * f->H[s] * f->W[s] + t) * f->C[s] + c];
                *o++ = (float)(acc / (f->H[s] * f->W[s])) + h->bias0;
            }
    return 0;
}
static void toy_plan_free(vm_head_plan *p) {
    free(p->acc);
    free(p);
    n_frees++;
}
static void toy_free(vm_head *h) { free(h); }
static const vm_head_ops toy_ops = {"toy", toy_bind, toy_plan, toy_forward, toy_plan_free, toy_free};

/* The seg_upernet model (or the test fails with the loader's message) and
 * its weights as a head binds them. */
static vm_model *upernet_weights(vm_weights_src *src) {
    vm_model *m = tload_model(tdata("seg_upernet/model.pth"));
    vm_model_weights(m, src);
    return m;
}

/* vm_ctx_run_head: bind from the model's weights, plan once per shape
 * (re-planned when it changes), output from the NHWC maps. */
START_TEST(head_module_on_ctx) {
    char e[256];
    vm_weights_src src;
    vm_model *m = upernet_weights(&src);
    ck_assert_ptr_null(toy_ops.bind(&src, "no_such_head.", e, sizeof e));
    ck_assert_msg(strstr(e, "no_such_head.conv_seg.bias"), "%s", e);
    vm_head *h = toy_ops.bind(&src, "decode_head.", e, sizeof e);
    ck_assert_msg(h, "%s", e);
    vm_ctx *c = vm_ctx_new(m, e, sizeof e);
    n_plans = n_frees = 0;
    static const int shapes[3][3] = {{1, 64, 64}, {2, 48, 80}, {1, 64, 64}};
    for (int k = 0; k < 3; k++) {
        const int B = shapes[k][0], H = shapes[k][1], W = shapes[k][2];
        float *in = malloc((size_t)B * 3 * H * W * sizeof(float));
        for (int i = 0; i < B * 3 * H * W; i++) in[i] = cosf(0.003f * (float)i);
        size_t n = 0;
        float *nchw[4];
        int C[4], hh[4], ww[4];
        for (int s = 0; s < 4; s++) {
            vm_feature_shape(m, H, W, s, &C[s], &hh[s], &ww[s]);
            nchw[s] = malloc((size_t)B * C[s] * hh[s] * ww[s] * sizeof(float));
            n += (size_t)B * C[s];
        }
        float *out = malloc(n * sizeof(float));
        for (int rep = 0; rep < 2; rep++) ck_assert_msg(vm_ctx_run_head(c, &toy_ops, h, in, B, H, W, out) == 0, "%s", vm_ctx_error(c));
        ck_assert(vm_ctx_forward_features(c, in, B, H, W, nchw) == 0);
        size_t o = 0;
        for (int s = 0; s < 4; s++) {
            for (int b = 0; b < B; b++)
                for (int ch = 0; ch < C[s]; ch++) {
                    double acc = 0;
                    for (int t = 0; t < hh[s] * ww[s]; t++) acc += nchw[s][((size_t)b * C[s] + ch) * hh[s] * ww[s] + t];
                    ck_assert(out[o++] == (float)(acc / (hh[s] * ww[s])) + h->bias0);
                }
            free(nchw[s]);
        }
        free(out);
        free(in);
    }
    ck_assert_int_eq(n_plans, 3); /* one per shape change, none for repeats */
    ck_assert_int_eq(n_frees, 2);
    vm_ctx_free(c);
    ck_assert_int_eq(n_frees, 3);
    toy_ops.free(h);
    vm_model_free(m);
}
END_TEST

/* A context's head plans belong to the head they were made for, not to its
 * address: a head freed and another bound at the same address (malloc
 * reuses the block) gets a plan of its own; the freed one's plan is freed.
 * More heads than a context keeps plans for: the least recently run plan
 * makes room. */
START_TEST(head_plan_not_matched_by_address) {
    char e[256];
    vm_weights_src src;
    vm_model *m = upernet_weights(&src);
    vm_ctx *c = vm_ctx_new(m, e, sizeof e);
    const int H = 64, W = 64;
    float *in = calloc(3 * H * W, sizeof(float)), *out = malloc(4096 * sizeof(float));
    n_plans = n_frees = 0;
    vm_head *h1 = toy_ops.bind(&src, "decode_head.", e, sizeof e);
    ck_assert_msg(h1, "%s", e);
    ck_assert(vm_ctx_run_head(c, &toy_ops, h1, in, 1, H, W, out) == 0);
    ck_assert_int_eq(n_plans, 1);
    /* The reuse made by hand: another head bound, moved to h1's address. */
    vm_head *fresh = toy_ops.bind(&src, "decode_head.", e, sizeof e);
    *h1 = *fresh;
    toy_ops.free(fresh);
    ck_assert(vm_ctx_run_head(c, &toy_ops, h1, in, 1, H, W, out) == 0);
    ck_assert_int_eq(n_plans, 2); /* a plan of its own, though the shape is the same */
    ck_assert_int_eq(n_frees, 1); /* and the old head's plan went */
    ck_assert(vm_ctx_run_head(c, &toy_ops, h1, in, 1, H, W, out) == 0);
    ck_assert_int_eq(n_plans, 2); /* then kept */
    /* The same through the allocator: free it and bind until a head lands
     * at that address (glibc's tcache hands the block straight back). */
    void *addr = h1;
    toy_ops.free(h1);
    vm_head *h2 = NULL, *kept[64];
    int nk = 0;
    while (!h2 && nk < 64) {
        vm_head *h = toy_ops.bind(&src, "decode_head.", e, sizeof e);
        if ((void *)h == addr) h2 = h;
        else kept[nk++] = h;
    }
    for (int i = 0; i < nk; i++) toy_ops.free(kept[i]);
    if (h2) {
        ck_assert(vm_ctx_run_head(c, &toy_ops, h2, in, 1, H, W, out) == 0);
        ck_assert_int_eq(n_plans, 3);
        ck_assert_int_eq(n_frees, 2);
        toy_ops.free(h2);
    } else {
        fprintf(stderr, "  head_plan_not_matched_by_address: malloc did not reuse the address (checked by hand above)\n");
    }
    /* Six live heads on a context that keeps four plans: each runs; the
     * least recently run plan makes room. */
    const int before = n_plans;
    vm_head *hs[6];
    for (int i = 0; i < 6; i++) {
        hs[i] = toy_ops.bind(&src, "decode_head.", e, sizeof e);
        ck_assert_msg(vm_ctx_run_head(c, &toy_ops, hs[i], in, 1, H, W, out) == 0, "%s", vm_ctx_error(c));
    }
    ck_assert_int_eq(n_plans, before + 6);
    ck_assert(vm_ctx_run_head(c, &toy_ops, hs[5], in, 1, H, W, out) == 0);
    ck_assert_int_eq(n_plans, before + 6); /* the most recent is kept */
    vm_ctx_free(c);
    ck_assert_int_eq(n_frees, n_plans);
    for (int i = 0; i < 6; i++) toy_ops.free(hs[i]);
    free(in), free(out);
    vm_model_free(m);
}
END_TEST

/* Heads make their own oneDNN primitives: the plain *_create forms give a
 * primitive its own stream and scratchpad, the *_create_x forms share a
 * context's; both compute the same bits, and a primitive runs on a thread
 * other than the one that made it. */
typedef struct {
    vm_conv_prim *p;
    const float *in;
    float *out;
    int rc;
} conv_job;

static void *conv_thread(void *arg) {
    conv_job *j = arg;
    j->rc = vm_conv_run(j->p, j->in, j->out);
    return NULL;
}

START_TEST(dnnl_own_and_shared_exec) {
    const int B = 2, C = 16, H = 13, W = 11, O = 24, k = 3;
    const size_t nin = (size_t)B * H * W * C, nout = (size_t)B * H * W * O;
    float *in = malloc(nin * sizeof(float)), *w = malloc((size_t)O * C * k * k * sizeof(float)), *b = malloc(O * sizeof(float));
    float *o1 = malloc(nout * sizeof(float)), *o2 = malloc(nout * sizeof(float)), *o3 = malloc(nout * sizeof(float));
    for (size_t i = 0; i < nin; i++) in[i] = sinf(0.37f * (float)i);
    for (int i = 0; i < O * C * k * k; i++) w[i] = cosf(0.11f * (float)i) * 0.1f;
    for (int i = 0; i < O; i++) b[i] = 0.01f * (float)i;
    char e[256];
    vm_dnnl_exec *x = vm_dnnl_exec_new(e, sizeof e);
    ck_assert_msg(x, "%s", e);
    vm_conv_prim *own = vm_conv_create(B, C, H, W, O, k, 1, 1, w, b, e, sizeof e);
    vm_conv_prim *shared = vm_conv_create_x(x, B, C, H, W, O, k, 1, 1, w, b, e, sizeof e);
    ck_assert_msg(own && shared, "%s", e);
    ck_assert_int_eq(vm_conv_run(own, in, o1), 0);
    ck_assert_int_eq(vm_conv_run(shared, in, o2), 0);
    ck_assert(memcmp(o1, o2, nout * sizeof(float)) == 0);
    conv_job j = {own, in, o3, -1};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, conv_thread, &j), 0);
    pthread_join(t, NULL);
    ck_assert_int_eq(j.rc, 0);
    ck_assert(memcmp(o1, o3, nout * sizeof(float)) == 0);
    vm_conv_free(own);
    vm_conv_free(shared);
    vm_dnnl_exec_free(x);
    free(in); free(w); free(b); free(o1); free(o2); free(o3);
}
END_TEST

Suite *suite_heads(void) {
    Suite *s = suite_create("heads");
    TCase *tc = tcase_create("heads");
    tcase_add_test(tc, seg_checkpoint_keeps_heads);
    tcase_add_test(tc, det_checkpoint_keeps_heads);
    tcase_add_test(tc, unknown_keys_listed);
    tcase_add_test(tc, backbone_maps_nhwc);
    tcase_add_test(tc, ctx_error_codes);
    tcase_add_test(tc, head_module_on_ctx);
    tcase_add_test(tc, head_plan_not_matched_by_address);
    tcase_add_test(tc, dnnl_own_and_shared_exec);
    suite_add_tcase(s, tc);
    return s;
}
