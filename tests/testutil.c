/* testutil.c - see testutil.h. */
#include "testutil.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

const char *tdata(const char *fmt, ...) {
    static char bufs[8][4096];
    static int next;
    char *buf = bufs[next++ % 8];
    const char *root = getenv("VMAMBA_TEST_DATA");
    int n = snprintf(buf, 4096, "%s/", root && *root ? root : "tests/data");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, 4096 - (size_t)n, fmt, ap);
    va_end(ap);
    return buf;
}

int tfile_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

void tload(vm_npy *a, const char *path) {
    char err[512];
    int rc = vm_npy_read(path, a, err, sizeof err);
    ck_assert_msg(rc == 0, "cannot load %s: %s", path, err);
}

double tclose(const char *what, const float *got, const float *ref, size_t n, double tol) {
    double worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double lim = tol * fmax(1.0, fabs((double)ref[i]));
        double r = fabs((double)got[i] - (double)ref[i]) / lim;
        if (!(r <= worst)) { /* catches NaN too */
            worst = isnan(r) ? INFINITY : r;
            at = i;
        }
    }
    ck_assert_msg(worst <= 1.0, "%s: element %zu: got %.8g, want %.8g (error %.3g x tolerance %g)", what, at,
                  (double)got[at], (double)ref[at], worst, tol);
    return worst;
}

uint8_t *tslurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*n ? *n : 1);
    ck_assert(fread(b, 1, *n, f) == *n);
    fclose(f);
    return b;
}

vm_model *tload_model(const char *path) {
    char err[512];
    vm_model *m = vm_model_load(path, NULL, err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    return m;
}

double tmean_cosine(const float *a, const float *b, int rows, int cols, int *agree) {
    double sum = 0;
    *agree = 0;
    for (int r = 0; r < rows; r++) {
        double d = 0, na = 0, nb = 0;
        int ia = 0, ib = 0;
        for (int c = 0; c < cols; c++) {
            const float x = a[r * cols + c], y = b[r * cols + c];
            d += (double)x * y;
            na += (double)x * x;
            nb += (double)y * y;
            if (x > a[r * cols + ia]) ia = c;
            if (y > b[r * cols + ib]) ib = c;
        }
        sum += d / sqrt(na * nb);
        *agree += ia == ib;
    }
    return sum / rows;
}

void tdigits_images(float **calib, float **test) {
    vm_preprocess_opts o;
    vm_preprocess_defaults(&o);
    o.size = 32;
    o.no_crop = 1;
    const size_t per = 3 * 32 * 32;
    *calib = malloc(100 * per * sizeof(float));
    *test = malloc(200 * per * sizeof(float));
    ck_assert(*calib && *test);
    char err[512];
    for (int i = 0; i < 100; i++)
        ck_assert_msg(vm_preprocess_file(tdata("digits/calib/%03d.png", i), &o, *calib + i * per, err, sizeof err) == 0, "%s", err);
    for (int i = 0; i < 200; i++)
        ck_assert_msg(vm_preprocess_file(tdata("digits/test/%03d.png", i), &o, *test + i * per, err, sizeof err) == 0, "%s", err);
}
