/* test_threads.c - one model shared by four threads, a context each,
 * different input shapes per thread, 100+ forwards each: every output must
 * be bit-identical to a single-context run with the same thread count
 * (same primitives, same reduction order: no tolerance is needed). */
#include <stdio.h>
#include <stdlib.h>

#include <unistd.h>

#include "vmamba.h"
#include "quant.h"

#include "testutil.h"
#include "threads_core.h"

static int omp_threads(void) {
    const char *s = getenv("VMAMBA_TEST_CTX_THREADS");
    return s && atoi(s) > 0 ? atoi(s) : 2;
}

START_TEST(shared_model_classifier) {
    char msg[512];
    int rc = vm_threads_check(tdata("v2_s1/model.pth"), NULL, 0, 4, 100, omp_threads(), msg, sizeof msg);
    ck_assert_msg(rc == 0, "%s", msg);
}
END_TEST

/* v0 (patch merging, z gate) and a backbone's four feature maps. */
START_TEST(shared_model_v0_classifier) {
    char msg[512];
    int rc = vm_threads_check(tdata("v0_ds4/model.pth"), NULL, 0, 4, 100, omp_threads(), msg, sizeof msg);
    ck_assert_msg(rc == 0, "%s", msg);
}
END_TEST

START_TEST(shared_model_features) {
    char msg[512];
    int rc = vm_threads_check(tdata("backbone_v2/model.pth"), NULL, 1, 4, 100, omp_threads(), msg, sizeof msg);
    ck_assert_msg(rc == 0, "%s", msg);
}
END_TEST

/* An INT8 model (every linear layer, the head and the convolutions as
 * INT8 primitives: u8 inputs quantized into the context's buffer). */
START_TEST(shared_model_int8) {
    char e[512], path[64];
    snprintf(path, sizeof path, "/tmp/vmtest_threads_q_%d.safetensors", (int)getpid());
    vm_model *m = vm_model_load(tdata("v2_s1/model.pth"), NULL, e, sizeof e);
    ck_assert_msg(m, "%s", e);
    vm_npy in;
    tload(&in, tdata("v2_s1/input.npy"));
    vm_calib_opts co = {VM_CALIB_MINMAX, 99.99, NULL, 0, 1, 1, 0};
    vm_calib *c = vm_calib_begin(m, &co);
    ck_assert_msg(c, "%s", vm_model_error(m));
    vm_info I;
    vm_model_info(m, &I);
    float *logits = malloc((size_t)in.shape[0] * I.num_classes * sizeof(float));
    ck_assert(vm_forward(m, in.data, (int)in.shape[0], (int)in.shape[2], (int)in.shape[3], logits) == 0);
    ck_assert_msg(vm_calib_write(c, path, NULL, e, sizeof e) == 0, "%s", e);
    vm_calib_free(c);
    vm_model_free(m);
    free(logits);
    vm_npy_free(&in);
    char msg[512];
    int rc = vm_threads_check(path, NULL, 0, 4, 100, omp_threads(), msg, sizeof msg);
    unlink(path);
    ck_assert_msg(rc == 0, "%s", msg);
}
END_TEST

/* The same on the GPU: each context its own stream, cuBLAS handle and
 * arena over the model's one copy of the weights. */
START_TEST(shared_model_cuda) {
    if (vm_cuda_devices() < 1) {
        fprintf(stderr, "  shared_model_cuda: no CUDA device (or a build without --with-cuda): not run\n");
        return;
    }
    char msg[512];
    int rc = vm_threads_check(tdata("v2_s1/model.pth"), "cuda", 0, 4, 100, 1, msg, sizeof msg);
    ck_assert_msg(rc == 0, "%s", msg);
    rc = vm_threads_check(tdata("backbone_v2/model.pth"), "cuda", 1, 4, 100, 1, msg, sizeof msg);
    ck_assert_msg(rc == 0, "%s", msg);
}
END_TEST

Suite *suite_threads(void) {
    Suite *s = suite_create("threads");
    TCase *tc = tcase_create("threads");
    tcase_set_timeout(tc, 1800);
    tcase_add_test(tc, shared_model_classifier);
    tcase_add_test(tc, shared_model_v0_classifier);
    tcase_add_test(tc, shared_model_features);
    tcase_add_test(tc, shared_model_int8);
    tcase_add_test(tc, shared_model_cuda);
    suite_add_tcase(s, tc);
    return s;
}
