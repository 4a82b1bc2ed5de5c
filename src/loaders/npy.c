/* npy.c - the .npy format: magic "\x93NUMPY", version, header length, a
 * Python dict literal with descr / fortran_order / shape, then raw data. */
#include "npy.h"
#include "../core/util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Find `'key':` in the header and return the text after the colon. */
static const char *hdr_value(const char *h, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *p = strstr(h, pat);
    if (!p) return NULL;
    p += strlen(pat);
    while (*p == ' ') p++;
    if (*p != ':') return NULL;
    p++;
    while (*p == ' ') p++;
    return p;
}

static int parse(const uint8_t *buf, size_t len, const char *what, vm_npy *out, int allow_u8, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0) return vm_errf(err, errlen, "%s: not a .npy file (bad magic)", what);
    int major = buf[6];
    size_t hlen, hoff;
    if (major == 1) { hlen = vm_rd16(buf + 8); hoff = 10; }
    else if (major == 2 || major == 3) {
        if (len < 12) return vm_errf(err, errlen, "%s: truncated .npy header", what);
        hlen = vm_rd32(buf + 8);
        hoff = 12;
    } else return vm_errf(err, errlen, "%s: unsupported .npy version %d", what, major);
    if (hlen > len - hoff) return vm_errf(err, errlen, "%s: truncated .npy header", what);
    char *h = malloc(hlen + 1);
    if (!h) return vm_errf(err, errlen, "%s: out of memory (%zu bytes) for the .npy header", what, hlen + 1);
    memcpy(h, buf + hoff, hlen);
    h[hlen] = 0;
    int rc = -1;
    const char *d = hdr_value(h, "descr"), *f = hdr_value(h, "fortran_order"), *s = hdr_value(h, "shape");
    if (!d || !f || !s) { vm_errf(err, errlen, "%s: malformed .npy header", what); goto done; }
    int u8 = allow_u8 && (strncmp(d, "'|u1'", 5) == 0 || strncmp(d, "'<u1'", 5) == 0);
    int i64 = allow_u8 == 2 && strncmp(d, "'<i8'", 5) == 0;
    if (!u8 && !i64 && strncmp(d, "'<f4'", 5) != 0 && strncmp(d, "'float32'", 9) != 0) {
        char dt[16] = {0};
        sscanf(d, "'%15[^']'", dt);
        vm_errf(err, errlen, "%s: dtype is '%s', expected float32 ('<f4')", what, dt);
        goto done;
    }
    if (strncmp(f, "False", 5) != 0) { vm_errf(err, errlen, "%s: Fortran-order arrays are not supported; save a C-contiguous array", what); goto done; }
    if (*s != '(') { vm_errf(err, errlen, "%s: malformed .npy shape", what); goto done; }
    s++;
    size_t numel = 1;
    for (;;) {
        while (*s == ' ' || *s == ',') s++;
        if (*s == ')') break;
        if (!isdigit((unsigned char)*s)) { vm_errf(err, errlen, "%s: malformed .npy shape", what); goto done; }
        if (out->ndim == VM_NPY_MAX_DIMS) { vm_errf(err, errlen, "%s: too many dimensions", what); goto done; }
        char *e;
        long long v = strtoll(s, &e, 10);
        if (v < 0 || !vm_mul_ok(numel, (size_t)v, &numel)) { vm_errf(err, errlen, "%s: .npy shape too large", what); goto done; }
        out->shape[out->ndim++] = v;
        s = e;
    }
    size_t nbytes;
    if (!vm_mul_ok(numel, u8 ? 1 : i64 ? 8 : 4, &nbytes) || nbytes > len - hoff - hlen) {
        vm_errf(err, errlen, "%s: truncated .npy data (expected %zu elements)", what, numel);
        goto done;
    }
    out->data = malloc(numel ? numel * sizeof(float) : 1);
    if (!out->data) { vm_errf(err, errlen, "%s: out of memory (%zu bytes) for the array", what, numel * sizeof(float)); goto done; }
    out->numel = numel;
    if (u8)
        for (size_t i = 0; i < numel; i++) out->data[i] = buf[hoff + hlen + i];
    else if (i64)
        for (size_t i = 0; i < numel; i++) out->data[i] = (float)(int64_t)vm_rd64(buf + hoff + hlen + 8 * i);
    else
        memcpy(out->data, buf + hoff + hlen, nbytes);
    rc = 0;
done:
    free(h);
    return rc;
}

int vm_npy_parse(const uint8_t *buf, size_t len, const char *what, vm_npy *out, char *err, size_t errlen) {
    return parse(buf, len, what, out, 0, err, errlen);
}

static int read_file(const char *path, vm_npy *out, int allow_u8, char *err, size_t errlen) {
    vm_file_map m;
    if (vm_map_file(path, &m, err, errlen)) return -1;
    int rc = parse(m.data, m.size, path, out, allow_u8, err, errlen);
    vm_unmap_file(&m);
    return rc;
}

int vm_npy_read(const char *path, vm_npy *out, char *err, size_t errlen) { return read_file(path, out, 0, err, errlen); }

int vm_npy_read_u8_or_f32(const char *path, vm_npy *out, char *err, size_t errlen) {
    return read_file(path, out, 1, err, errlen);
}

int vm_npy_read_any(const char *path, vm_npy *out, char *err, size_t errlen) { return read_file(path, out, 2, err, errlen); }

int vm_npy_write(const char *path, const float *data, int ndim, const int64_t *shape, char *err, size_t errlen) {
    return vm_npy_write_typed(path, data, "<f4", 4, ndim, shape, err, errlen);
}

int vm_npy_write_typed(const char *path, const void *data, const char *descr, size_t elsize, int ndim, const int64_t *shape,
                       char *err, size_t errlen) {
    char hdr[256];
    int n = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        n += snprintf(hdr + n, sizeof hdr - (size_t)n, "%lld,%s", (long long)shape[i], (ndim > 1 && i < ndim - 1) ? " " : "");
        numel *= (size_t)shape[i];
    }
    if (ndim > 1) n--; /* "(2, 3)" not "(2, 3,)" */
    n += snprintf(hdr + n, sizeof hdr - (size_t)n, "), }");
    /* Pad so data starts on a 64-byte boundary, ending with '\n'. */
    size_t total = 10 + (size_t)n + 1;
    size_t pad = (64 - total % 64) % 64;
    uint8_t pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    size_t hlen = (size_t)n + pad + 1;
    pre[8] = (uint8_t)(hlen & 0xff);
    pre[9] = (uint8_t)(hlen >> 8);
    vm_atomic_file *f = vm_atomic_open(path, err, errlen);
    if (!f) return -1;
    char spaces[64];
    memset(spaces, ' ', sizeof spaces);
    vm_atomic_write(f, pre, 10);
    vm_atomic_write(f, hdr, (size_t)n);
    vm_atomic_write(f, spaces, pad);
    vm_atomic_write(f, "\n", 1);
    vm_atomic_write(f, data, numel * elsize);
    return vm_atomic_commit(f, err, errlen);
}

void vm_npy_free(vm_npy *a) {
    free(a->data);
    memset(a, 0, sizeof *a);
}
