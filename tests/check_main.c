/* check_main.c - runs every Check suite. */
#include <stdlib.h>

#include "testutil.h"

int main(void) {
    SRunner *sr = srunner_create(suite_npy());
    srunner_add_suite(sr, suite_loader());
    srunner_add_suite(sr, suite_arch());
    srunner_add_suite(sr, suite_image());
    srunner_add_suite(sr, suite_image_model());
    srunner_add_suite(sr, suite_kernels());
    srunner_add_suite(sr, suite_golden());
    srunner_add_suite(sr, suite_quant());
    srunner_add_suite(sr, suite_seg());
    srunner_add_suite(sr, suite_threads());
    srunner_add_suite(sr, suite_heads());
    srunner_add_suite(sr, suite_harden());
    srunner_add_suite(sr, suite_det());
    srunner_add_suite(sr, suite_int8_dense());
    srunner_add_suite(sr, suite_xnnpack());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
