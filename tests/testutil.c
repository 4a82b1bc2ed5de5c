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
