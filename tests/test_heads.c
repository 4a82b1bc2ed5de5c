/* test_heads.c - the loader keeps every checkpoint tensor: heads find
 * their weights under the full checkpoint names through the model's
 * vm_weights_src, vm_model_heads says which heads a checkpoint holds, and
 * keys nobody knows are listed, never dropped. The classifier runs as a
 * head on vm_ctx_backbone's NHWC maps. */
#include <math.h>
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
    char e[256];
    vm_model *m = vm_model_load(path, NULL, e, sizeof e);
    ck_assert_msg(m, "%s", e);
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
    char e[256];
    vm_model *m = vm_model_load(path, NULL, e, sizeof e);
    ck_assert_msg(m, "%s", e);
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
    vm_model *m = vm_model_load(tdata("v2_s1/model.pth"), NULL, e, sizeof e);
    ck_assert_msg(m, "%s", e);
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
    vm_model *m = vm_model_load(tdata("backbone_v2/model.pth"), NULL, e, sizeof e);
    ck_assert_msg(m, "%s", e);
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
    vm_model *m = vm_model_load(tdata("backbone_v2/model.pth"), NULL, e, sizeof e);
    ck_assert_msg(m, "%s", e);
    vm_ctx *c = vm_ctx_new(m, e, sizeof e);
    float x[3 * 32 * 32] = {0}, logits[10];
    ck_assert_int_eq(vm_ctx_forward(c, x, 1, 32, 32, logits), VM_ERR_UNSUPPORTED);
    ck_assert_int_eq(vm_ctx_error_code(c), VM_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(vm_ctx_error(c), "backbone"), "%s", vm_ctx_error(c));
    float *f[4] = {NULL, NULL, NULL, NULL};
    ck_assert_int_eq(vm_ctx_forward_features(c, x, 0, 32, 32, f), VM_ERR_INPUT);
    ck_assert_int_eq(vm_ctx_forward_features(c, x, 1, 1, 1, f), VM_ERR_INPUT); /* NULL buffers */
    ck_assert_int_eq(vm_ctx_set_threads(c, 1), 0);
    /* calibration refuses a model other contexts use */
    ck_assert_int_eq(vm_model_unpack(m), -1);
    ck_assert_msg(strstr(vm_model_error(m), "in use"), "%s", vm_model_error(m));
    vm_ctx_free(c);
    ck_assert_int_eq(vm_model_unpack(m), 0);
    vm_model_free(m);
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
    suite_add_tcase(s, tc);
    return s;
}
