/* testutil.h - helpers shared by the Check suites. */
#ifndef VM_TESTUTIL_H
#define VM_TESTUTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include "loaders/npy.h"
#include "vmamba.h"

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

/* vm_model_load or fail the test with the loader's message. */
vm_model *tload_model(const char *path);

/* Mean cosine of the matching rows of a and b (rows x cols logits), and
 * in *agree how many rows have the same argmax. */
double tmean_cosine(const float *a, const float *b, int rows, int cols, int *agree);

/* The digits model's 100 calib/ and 200 test/ images preprocessed as it
 * was trained (32 x 32, no crop), CHW float32 (malloc'd), or fail. */
void tdigits_images(float **calib, float **test);

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
