/* test_npy.c - .npy reading and writing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

START_TEST(roundtrip) {
    char path[] = "/tmp/vmtest_npy_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    float v[6] = {1, -2, 3.5f, 0, 1e-8f, 7};
    int64_t shape[2] = {2, 3};
    char err[256];
    ck_assert_int_eq(vm_npy_write(path, v, 2, shape, err, sizeof err), 0);
    vm_npy a;
    tload(&a, path);
    ck_assert_int_eq(a.ndim, 2);
    ck_assert_int_eq(a.shape[0], 2);
    ck_assert_int_eq(a.shape[1], 3);
    ck_assert_mem_eq(a.data, v, sizeof v);
    vm_npy_free(&a);
    int64_t s1[1] = {6};
    ck_assert_int_eq(vm_npy_write(path, v, 1, s1, err, sizeof err), 0);
    tload(&a, path);
    ck_assert_int_eq(a.ndim, 1);
    ck_assert_int_eq(a.shape[0], 6);
    vm_npy_free(&a);
    unlink(path);
}
END_TEST

static void expect_parse_error(const char *bytes, size_t n, const char *needle) {
    vm_npy a;
    char err[256] = "";
    ck_assert_int_ne(vm_npy_parse((const uint8_t *)bytes, n, "x.npy", &a, err, sizeof err), 0);
    ck_assert_msg(strstr(err, needle) && strstr(err, "x.npy"), "error '%s' lacks '%s'", err, needle);
}

/* A v1 .npy image with the given header dict and `data` bytes of payload. */
static size_t mk(char *buf, const char *dict, size_t data) {
    size_t hl = strlen(dict) + 1;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (char)(hl & 0xff);
    buf[9] = (char)(hl >> 8);
    memcpy(buf + 10, dict, hl - 1);
    buf[10 + hl - 1] = '\n';
    memset(buf + 10 + hl, 0, data);
    return 10 + hl + data;
}

START_TEST(rejects_bad_files) {
    char b[512];
    expect_parse_error("hello world", 11, "not a .npy");
    size_t n = mk(b, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 16);
    expect_parse_error(b, n, "dtype is '<f8'");
    n = mk(b, "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", 8);
    expect_parse_error(b, n, "Fortran");
    n = mk(b, "{'descr': '<f4', 'fortran_order': False, 'shape': (9,), }", 8);
    expect_parse_error(b, n, "truncated");
    n = mk(b, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }", 8);
    expect_parse_error(b, n, "too large");
    n = mk(b, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8);
    vm_npy a;
    char err[128];
    ck_assert_int_eq(vm_npy_parse((const uint8_t *)b, n, "ok.npy", &a, err, sizeof err), 0);
    ck_assert_int_eq(a.numel, 2);
    vm_npy_free(&a);
}
END_TEST

Suite *suite_npy(void) {
    Suite *s = suite_create("npy");
    TCase *tc = tcase_create("npy");
    tcase_add_test(tc, roundtrip);
    tcase_add_test(tc, rejects_bad_files);
    suite_add_tcase(s, tc);
    return s;
}
