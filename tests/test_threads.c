/* test_threads.c - one model shared by four threads, a context each,
 * different input shapes per thread, 100+ forwards each: every output must
 * be bit-identical to a single-context run with the same thread count
 * (same primitives, same reduction order: no tolerance is needed). */
#include <stdio.h>
#include <stdlib.h>

#include "vmamba.h"

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
    tcase_add_test(tc, shared_model_cuda);
    suite_add_tcase(s, tc);
    return s;
}
