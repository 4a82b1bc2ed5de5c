/* safetensors.c - see safetensors.h. Every size and offset in the header
 * is checked against the file before anything is allocated from it. */
#include "safetensors.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* jansson needs ~20x a JSON header's size (measured: a 50 MB header took
 * 1 GB), so the header is bounded well below the format's 100 MB: real
 * ones are ~100 bytes per tensor plus the metadata (a few hundred KB). */
#define MAX_HEADER (16u << 20)

int vm_is_safetensors(const uint8_t *buf, size_t len) {
    /* The JSON header starts right after the length: a '{' there is a
     * safetensors file (a zip starts "PK\3\4" and has a name there), even
     * if the length is broken; vm_safetensors_index then says what is. */
    return len >= 10 && buf[8] == '{' && vm_rd32(buf) != 0x04034b50u;
}

static pk_dtype st_dtype(const char *s) {
    static const struct { const char *n; pk_dtype d; } map[] = {
        {"F32", PK_DT_F32}, {"F16", PK_DT_F16}, {"BF16", PK_DT_BF16}, {"F64", PK_DT_F64},
        {"I64", PK_DT_I64}, {"I32", PK_DT_I32}, {"I16", PK_DT_I16}, {"I8", PK_DT_I8}, {"U8", PK_DT_U8}, {"BOOL", PK_DT_BOOL}};
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (!strcmp(map[i].n, s)) return map[i].d;
    return PK_DT_UNKNOWN;
}

int vm_safetensors_index(vm_checkpoint *c, char *err, size_t errlen) {
    const uint8_t *buf = c->map.data;
    size_t len = c->map.size;
    if (len < 8) return vm_errf(err, errlen, "%s: truncated safetensors file", c->path);
    uint64_t hn = vm_rd64(buf);
    if (hn > len - 8)
        return vm_errf(err, errlen, "%s: corrupted safetensors file: header length %llu but the file has only %zu bytes", c->path,
                       (unsigned long long)hn, len);
    if (hn > MAX_HEADER)
        return vm_errf(err, errlen, "%s: corrupted safetensors file: header length %llu is over the %u-byte limit", c->path,
                       (unsigned long long)hn, MAX_HEADER);
    json_error_t je;
    json_t *h = json_loadb((const char *)buf + 8, (size_t)hn, JSON_REJECT_DUPLICATES, &je);
    if (!h || !json_is_object(h)) {
        json_decref(h);
        return vm_errf(err, errlen, "%s: corrupted safetensors header: %s", c->path, h ? "not an object" : je.text);
    }
    const uint8_t *data = buf + 8 + hn;
    size_t data_len = len - 8 - (size_t)hn;
    c->t = calloc(json_object_size(h) + 1, sizeof *c->t);
    if (!c->t) {
        json_decref(h);
        return vm_errf(err, errlen, "%s: out of memory (%zu bytes) for the tensor table", c->path,
                       (json_object_size(h) + 1) * sizeof *c->t);
    }
    const char *key;
    json_t *v;
    int rc = 0;
    json_object_foreach(h, key, v) {
        if (!strcmp(key, "__metadata__")) {
            json_t *m = json_object_get(v, "vmamba");
            if (json_is_string(m) && !c->metadata && !(c->metadata = strdup(json_string_value(m)))) {
                rc = vm_errf(err, errlen, "%s: out of memory for the metadata", c->path);
                break;
            }
            continue;
        }
        json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape"), *off = json_object_get(v, "data_offsets");
        if (!json_is_string(dt) || !json_is_array(sh) || !json_is_array(off) || json_array_size(off) != 2 ||
            json_array_size(sh) > PK_MAX_DIMS) {
            rc = vm_errf(err, errlen, "%s: corrupted safetensors header: bad entry '%s'", c->path, key);
            break;
        }
        vm_ckpt_tensor *t = &c->t[c->n];
        if (!(t->name = strdup(key))) {
            rc = vm_errf(err, errlen, "%s: out of memory for a tensor name", c->path);
            break;
        }
        c->n++;
        t->dtype = st_dtype(json_string_value(dt));
        t->ndim = (int)json_array_size(sh);
        uint64_t numel = 1;
        int bad = 0;
        for (int i = 0; i < t->ndim; i++) {
            json_t *d = json_array_get(sh, (size_t)i);
            if (!json_is_integer(d) || json_integer_value(d) < 0 || json_integer_value(d) > (1LL << 40)) { bad = 1; break; }
            t->shape[i] = json_integer_value(d);
            if (t->shape[i] && numel > UINT64_MAX / (uint64_t)t->shape[i]) { bad = 1; break; }
            numel *= (uint64_t)t->shape[i];
        }
        for (int i = t->ndim - 1; i >= 0; i--) t->stride[i] = i == t->ndim - 1 ? 1 : t->stride[i + 1] * t->shape[i + 1];
        json_t *b0 = json_array_get(off, 0), *b1 = json_array_get(off, 1);
        if (bad || !json_is_integer(b0) || !json_is_integer(b1)) {
            rc = vm_errf(err, errlen, "%s: corrupted safetensors header: bad shape or offsets of '%s'", c->path, key);
            break;
        }
        uint64_t lo = (uint64_t)json_integer_value(b0), hi = (uint64_t)json_integer_value(b1);
        if (json_integer_value(b0) < 0 || hi < lo || hi > data_len) {
            rc = vm_errf(err, errlen, "%s: tensor '%s': data offsets [%llu, %llu) outside the %zu data bytes", c->path, key,
                         (unsigned long long)lo, (unsigned long long)hi, data_len);
            break;
        }
        if (t->dtype == PK_DT_UNKNOWN) { t->problem = "unsupported dtype"; continue; }
        size_t es = pk_dtype_size(t->dtype);
        if (numel > (hi - lo) / es || numel * es != hi - lo) {
            rc = vm_errf(err, errlen, "%s: tensor '%s': %llu bytes for %llu elements of %s", c->path, key,
                         (unsigned long long)(hi - lo), (unsigned long long)numel, pk_dtype_name(t->dtype));
            break;
        }
        t->data = data + lo;
        t->storage_bytes = hi - lo;
        t->storage_numel = (int64_t)numel;
    }
    json_decref(h);
    return rc;
}

uint16_t vm_float_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, exp = (x >> 23) & 0xff, man = x & 0x7fffff;
    if (exp == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0)); /* inf / nan */
    int e = (int)exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00);                           /* overflow */
    if (e <= 0) {                                                             /* subnormal or zero */
        if (e < -10) return (uint16_t)sign;
        man |= 0x800000;
        int shift = 14 - e;
        uint32_t h = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; /* may carry into the exponent: correct */
    return (uint16_t)(sign | h);
}

uint16_t vm_float_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40); /* quiet nan */
    x += 0x7fff + ((x >> 16) & 1);                                            /* round to nearest even */
    return (uint16_t)(x >> 16);
}

int vm_safetensors_write(const char *path, const vm_st_tensor *t, size_t n, vm_st_dtype dtype,
                         const char *const *meta_kv, size_t nmeta, char *err, size_t errlen) {
    static const char *names[] = {"F32", "F16", "BF16"};
    const size_t es = dtype == VM_ST_F32 ? 4 : 2;
    json_t *h = json_object(), *meta = json_object();
    for (size_t i = 0; i + 1 < 2 * nmeta + 1 && i < 2 * nmeta; i += 2) json_object_set_new(meta, meta_kv[i], json_string(meta_kv[i + 1]));
    json_object_set_new(h, "__metadata__", meta);
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        size_t numel = 1;
        json_t *sh = json_array();
        for (int d = 0; d < t[i].ndim; d++) {
            numel *= (size_t)t[i].shape[d];
            json_array_append_new(sh, json_integer(t[i].shape[d]));
        }
        json_t *e = json_object();
        json_object_set_new(e, "dtype", json_string(t[i].i8 ? "I8" : names[dtype]));
        json_object_set_new(e, "shape", sh);
        json_t *o = json_array();
        json_array_append_new(o, json_integer((json_int_t)off));
        off += numel * (t[i].i8 ? 1 : es);
        json_array_append_new(o, json_integer((json_int_t)off));
        json_object_set_new(e, "data_offsets", o);
        json_object_set_new(h, t[i].name, e);
    }
    /* Sorted keys: the same model always gives the same bytes. */
    char *txt = json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(h);
    if (!txt) return vm_errf(err, errlen, "%s: out of memory writing the header", path);
    size_t tl = strlen(txt), padded = (tl + 7) & ~(size_t)7; /* data 8-byte aligned */
    uint8_t hdr[8];
    for (int i = 0; i < 8; i++) hdr[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    vm_atomic_file *f = vm_atomic_open(path, err, errlen);
    if (!f) { free(txt); return -1; }
    vm_atomic_write(f, hdr, 8);
    vm_atomic_write(f, txt, tl);
    vm_atomic_write(f, "        ", padded - tl);
    free(txt);
    /* Tensors in the order of their offsets (the order given). */
    uint8_t *buf = malloc(1 << 16);
    if (!buf) {
        vm_atomic_abort(f);
        return vm_errf(err, errlen, "%s: out of memory (65536 bytes)", path);
    }
    for (size_t i = 0; i < n; i++) {
        size_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++) numel *= (size_t)t[i].shape[d];
        if (t[i].i8) {
            vm_atomic_write(f, t[i].i8, numel);
            continue;
        }
        if (dtype == VM_ST_F32) {
            vm_atomic_write(f, t[i].data, numel * 4);
            continue;
        }
        for (size_t j = 0; j < numel; j += 1 << 15) {
            size_t m = numel - j < (1 << 15) ? numel - j : (1 << 15);
            for (size_t q = 0; q < m; q++) {
                uint16_t v = dtype == VM_ST_F16 ? vm_float_to_half(t[i].data[j + q]) : vm_float_to_bf16(t[i].data[j + q]);
                buf[2 * q] = (uint8_t)v;
                buf[2 * q + 1] = (uint8_t)(v >> 8);
            }
            vm_atomic_write(f, buf, m * 2);
        }
    }
    free(buf);
    return vm_atomic_commit(f, err, errlen);
}
