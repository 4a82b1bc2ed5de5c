/* testutil.h - helpers shared by the Check suites. */
#ifndef VM_TESTUTIL_H
#define VM_TESTUTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "loaders/npy.h"

/* Path under the test data folder ($VMAMBA_TEST_DATA, else tests/data). */
const char *tdata(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int tfile_exists(const char *path);

/* Load a golden .npy or fail the test. */
void tload(vm_npy *a, const char *path);

/* Whole file into memory (malloc'd), or fail the test. */
uint8_t *tslurp(const char *path, size_t *n);

/* The golden tolerance of the issue: |got - ref| <= tol * max(1, |ref|).
 * Returns the worst ratio err / (tol * max(1,|ref|)); fails when > 1. */
double tclose(const char *what, const float *got, const float *ref, size_t n, double tol);

Suite *suite_loader(void);
Suite *suite_golden(void);
Suite *suite_kernels(void);
Suite *suite_npy(void);
Suite *suite_arch(void);
Suite *suite_image(void);
Suite *suite_image_model(void);
Suite *suite_quant(void);
Suite *suite_seg(void);
Suite *suite_threads(void);
Suite *suite_heads(void);
Suite *suite_harden(void);
Suite *suite_det(void);
Suite *suite_int8_dense(void);
Suite *suite_xnnpack(void);

#endif
