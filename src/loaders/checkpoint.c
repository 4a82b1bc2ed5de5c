/* checkpoint.c - open a torch.save zip, run its data.pkl, and index the
 * tensors of the chosen state dict. */
#include "checkpoint.h"
#include "safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const char *obj_kind(const pk_obj *o) {
    switch (o->t) {
    case PK_DICT: return "dict";
    case PK_TENSOR: return "tensor";
    case PK_OBJ: return "object";
    case PK_LIST: return "list";
    case PK_TUPLE: return "tuple";
    default: return "value";
    }
}

/* A dict that maps strings to tensors (at least one) is a state dict. */
static int looks_like_state_dict(const pk_obj *d) {
    if (!d || d->t != PK_DICT) return 0;
    size_t tensors = 0;
    for (size_t i = 0; i < d->u.dict.n; i++) {
        if (d->u.dict.keys[i]->t != PK_STR) return 0;
        tensors += d->u.dict.vals[i]->t == PK_TENSOR;
    }
    return tensors > 0;
}

static void list_keys(const pk_obj *d, char *buf, size_t len) {
    size_t off = 0;
    buf[0] = 0;
    for (size_t i = 0; i < d->u.dict.n && off + 4 < len; i++) {
        const pk_obj *k = d->u.dict.keys[i];
        if (k->t != PK_STR) continue;
        int w = snprintf(buf + off, len - off, "%s%s", off ? ", " : "", k->u.str.s);
        if (w < 0) break;
        off += (size_t)w;
    }
    if (off >= len) snprintf(buf + len - 4, 4, "...");
}

static int pick_weights(const pk_obj *root, const char *key, const char *path, const pk_obj **sd,
                        const char **strip, char *err, size_t errlen) {
    *strip = NULL;
    char keys[256];
    if (key) {
        const pk_obj *v = root->t == PK_DICT ? pk_dict_get(root, key) : NULL;
        if (!v) {
            if (root->t == PK_DICT) list_keys(root, keys, sizeof keys);
            else snprintf(keys, sizeof keys, "none: the file holds a %s", obj_kind(root));
            return vm_errf(err, errlen, "%s: no key '%s' in checkpoint (top-level keys: %s)", path, key, keys);
        }
        if (!looks_like_state_dict(v))
            return vm_errf(err, errlen, "%s: key '%s' holds a %s, not a state dict of tensors", path, key, obj_kind(v));
        *sd = v;
        if (strcmp(key, "state_dict") == 0) *strip = "backbone.";
        return 0;
    }
    if (root->t != PK_DICT) return vm_errf(err, errlen, "%s: checkpoint holds a %s, not a dict of weights", path, obj_kind(root));
    const pk_obj *v;
    if ((v = pk_dict_get(root, "model")) && looks_like_state_dict(v)) { *sd = v; return 0; }
    if ((v = pk_dict_get(root, "state_dict")) && looks_like_state_dict(v)) { *sd = v; *strip = "backbone."; return 0; }
    if (looks_like_state_dict(root)) { *sd = root; return 0; }
    list_keys(root, keys, sizeof keys);
    return vm_errf(err, errlen, "%s: no weights found: expected a 'model' or 'state_dict' entry or a bare state dict (top-level keys: %s)", path, keys);
}

static int checkpoint_open(vm_checkpoint *c, const char *path, const char *key, int keep_all, char *err, size_t errlen) {
    memset(c, 0, sizeof *c);
    if (!(c->path = strdup(path))) return vm_errf(err, errlen, "%s: out of memory (%zu bytes)", path, strlen(path) + 1);
    if (vm_map_file(path, &c->map, err, errlen)) goto fail;
    if (vm_is_safetensors(c->map.data, c->map.size)) {
        if (vm_safetensors_index(c, err, errlen)) goto fail;
        return 0;
    }
    if (vm_zip_open(&c->zip, c->map.data, c->map.size, path, err, errlen)) goto fail;
    /* The archive folder name varies ("archive/", "model/", ...). */
    const vm_zip_entry *pkl = NULL;
    size_t prefix_len = 0;
    for (size_t i = 0; i < c->zip.n; i++) {
        const char *nm = c->zip.entries[i].name, *slash = strrchr(nm, '/');
        if (slash && strchr(nm, '/') == slash && strcmp(slash + 1, "data.pkl") == 0) {
            pkl = &c->zip.entries[i];
            prefix_len = (size_t)(slash - nm) + 1;
            break;
        }
    }
    if (!pkl) { vm_errf(err, errlen, "%s: not a torch checkpoint (zip archive has no <folder>/data.pkl)", path); goto fail; }
    if (pkl->method != 0) { vm_errf(err, errlen, "%s: data.pkl is compressed; torch.save stores it uncompressed (was the file re-zipped?)", path); goto fail; }
    if (!vm_zip_crc_ok(pkl)) { vm_errf(err, errlen, "%s: '%s' fails its CRC-32 check: the file is corrupt", path, pkl->name); goto fail; }

    pk_state *ps = NULL;
    pk_obj *root = NULL;
    if (pk_load(pkl->data, (size_t)pkl->size, path, &ps, &root, err, errlen)) { pk_free(ps); goto fail; }
    const pk_obj *sd = NULL;
    const char *strip;
    if (pick_weights(root, key, path, &sd, &strip, err, errlen)) { pk_free(ps); goto fail; }
    if (keep_all) strip = NULL;

    /* With a prefix to strip (mmdet/mmseg), the backbone's keys lose it;
     * every other key (decode_head.*, neck.*, ...) is kept as it is. */
    size_t strip_len = strip ? strlen(strip) : 0;
    int any_prefixed = 0;
    for (size_t i = 0; strip && i < sd->u.dict.n; i++)
        any_prefixed |= strncmp(sd->u.dict.keys[i]->u.str.s, strip, strip_len) == 0;
    if (!any_prefixed) strip_len = 0;

    char entry[512];
    c->t = calloc(sd->u.dict.n ? sd->u.dict.n : 1, sizeof *c->t);
    if (!c->t) {
        vm_errf(err, errlen, "%s: out of memory (%zu bytes) for the tensor table", path, sd->u.dict.n * sizeof *c->t);
        pk_free(ps);
        goto fail;
    }
    for (size_t i = 0; i < sd->u.dict.n; i++) {
        const char *name = sd->u.dict.keys[i]->u.str.s;
        const pk_obj *v = sd->u.dict.vals[i];
        if (strip_len && strncmp(name, strip, strip_len) == 0) name += strip_len;
        if (strncmp(name, "module.", 7) == 0) name += 7; /* DataParallel */
        vm_ckpt_tensor *t = &c->t[c->n];
        if (!(t->name = strdup(name))) {
            vm_errf(err, errlen, "%s: out of memory (%zu bytes) for a tensor name", path, strlen(name) + 1);
            pk_free(ps);
            goto fail;
        }
        c->n++;
        if (v->t != PK_TENSOR) { t->problem = "not a dense tensor"; continue; }
        const pk_obj *st = v->u.tensor->storage;
        t->dtype = st->u.storage.dtype;
        t->ndim = v->u.tensor->ndim;
        memcpy(t->shape, v->u.tensor->size, sizeof t->shape);
        memcpy(t->stride, v->u.tensor->stride, sizeof t->stride);
        t->offset = v->u.tensor->offset;
        t->storage_numel = st->u.storage.numel;
        if (t->dtype == PK_DT_UNKNOWN) { t->problem = "unsupported storage type"; continue; }
        if (prefix_len + 5 + strlen(st->u.storage.key) + 1 > sizeof entry) { t->problem = "storage key too long"; continue; }
        snprintf(entry, sizeof entry, "%.*sdata/%s", (int)prefix_len, pkl->name, st->u.storage.key);
        const vm_zip_entry *e = vm_zip_find(&c->zip, entry);
        if (!e) { t->problem = "its storage is missing from the archive"; continue; }
        if (e->method != 0) { t->problem = "its storage is compressed"; continue; }
        t->data = e->data;
        t->storage_bytes = e->size;
        t->entry = e;
    }
    pk_free(ps);
    return 0;
fail:
    vm_checkpoint_close(c);
    return -1;
}

int vm_checkpoint_open(vm_checkpoint *c, const char *path, const char *key, char *err, size_t errlen) {
    return checkpoint_open(c, path, key, 0, err, errlen);
}

int vm_checkpoint_open_all(vm_checkpoint *c, const char *path, const char *key, char *err, size_t errlen) {
    return checkpoint_open(c, path, key, 1, err, errlen);
}

void vm_checkpoint_close(vm_checkpoint *c) {
    free(c->metadata);
    for (size_t i = 0; i < c->n; i++) free(c->t[i].name);
    free(c->t);
    vm_zip_close(&c->zip);
    vm_unmap_file(&c->map);
    free(c->path);
    memset(c, 0, sizeof *c);
}

const vm_ckpt_tensor *vm_checkpoint_find(const vm_checkpoint *c, const char *name) {
    for (size_t i = c->n; i-- > 0;)
        if (strcmp(c->t[i].name, name) == 0) return &c->t[i];
    return NULL;
}

int64_t vm_ckpt_numel(const vm_ckpt_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] && n > INT64_MAX / t->shape[i]) return -1;
        n *= t->shape[i];
    }
    return n;
}

static float load_elem(pk_dtype dt, const uint8_t *p) {
    switch (dt) {
    case PK_DT_F32: { float f; memcpy(&f, p, 4); return f; }
    case PK_DT_F16: return vm_half_to_float(vm_rd16(p));
    case PK_DT_BF16: return vm_bf16_to_float(vm_rd16(p));
    case PK_DT_F64: { double d; memcpy(&d, p, 8); return (float)d; }
    default: return 0.0f;
    }
}

int vm_ckpt_check_layout(const vm_checkpoint *c, const vm_ckpt_tensor *t, char *err, size_t errlen) {
    if (t->problem) return vm_errf(err, errlen, "%s: tensor '%s': %s", c->path, t->name, t->problem);
    size_t es = pk_dtype_size(t->dtype);
    if (!es) return vm_errf(err, errlen, "%s: tensor '%s': unsupported dtype", c->path, t->name);
    /* Storage numel must fit the bytes in the archive. */
    if (t->storage_numel < 0 || (uint64_t)t->storage_numel > t->storage_bytes / es)
        return vm_errf(err, errlen, "%s: tensor '%s': storage claims %lld elements but holds %llu bytes", c->path, t->name,
                       (long long)t->storage_numel, (unsigned long long)t->storage_bytes);
    int64_t numel = vm_ckpt_numel(t);
    if (numel < 0) return vm_errf(err, errlen, "%s: tensor '%s': shape overflows", c->path, t->name);
    if (numel == 0) return 0;
    /* Broadcast views (stride 0, overlapping strides) only for small
     * tensors: otherwise a few bytes of storage would make us allocate
     * gigabytes (see checkpoint.h). */
    if (numel > t->storage_numel && numel > VM_CKPT_MAX_BROADCAST)
        return vm_errf(err, errlen, "%s: tensor '%s': a broadcast (stride-0 or overlapping) view of %lld elements over a "
                       "%lld-element storage; only tensors of up to %d elements may repeat storage elements", c->path,
                       t->name, (long long)numel, (long long)t->storage_numel, VM_CKPT_MAX_BROADCAST);
    /* Highest element touched: offset + sum((size-1)*stride). */
    uint64_t hi = (uint64_t)t->offset;
    for (int i = 0; i < t->ndim; i++) {
        uint64_t span = (uint64_t)(t->shape[i] - 1);
        if (t->stride[i] && span > (UINT64_MAX - hi) / (uint64_t)t->stride[i])
            return vm_errf(err, errlen, "%s: tensor '%s': strides overflow", c->path, t->name);
        hi += span * (uint64_t)t->stride[i];
    }
    if (hi >= (uint64_t)t->storage_numel)
        return vm_errf(err, errlen, "%s: tensor '%s': bytes out of range (element %llu of a %lld-element storage)", c->path,
                       t->name, (unsigned long long)hi, (long long)t->storage_numel);
    return 0;
}

int vm_ckpt_validate(const vm_checkpoint *c, const vm_ckpt_tensor *t, char *err, size_t errlen) {
    if (t->problem) return vm_errf(err, errlen, "%s: tensor '%s': %s", c->path, t->name, t->problem);
    if (t->dtype != PK_DT_F32 && t->dtype != PK_DT_F16 && t->dtype != PK_DT_BF16 && t->dtype != PK_DT_F64)
        return vm_errf(err, errlen, "%s: tensor '%s' has dtype %s; weights must be float32, float16 or bfloat16", c->path, t->name, pk_dtype_name(t->dtype));
    return vm_ckpt_check_layout(c, t, err, errlen);
}

/* Visit every element's storage index in row-major order of the shape.
 * Walks row by row (all dimensions but the last), so the per-element work
 * is one multiply-add; the multi-index bookkeeping is per row. */
#define FOR_EACH_ELEMENT(t, n, off, body)                                          \
    do {                                                                           \
        int64_t idx_[PK_MAX_DIMS] = {0}, numel_ = vm_ckpt_numel(t);                \
        int nd_ = (t)->ndim;                                                       \
        int64_t len_ = nd_ > 0 ? (t)->shape[nd_ - 1] : 1;                          \
        int64_t st_ = nd_ > 0 ? (t)->stride[nd_ - 1] : 0;                          \
        for (int64_t row_ = 0; len_ > 0 && row_ < numel_; row_ += len_) {          \
            int64_t base_ = (t)->offset;                                           \
            for (int i_ = 0; i_ < nd_ - 1; i_++) base_ += idx_[i_] * (t)->stride[i_]; \
            for (int64_t j_ = 0; j_ < len_; j_++) {                                \
                int64_t n = row_ + j_, off = base_ + j_ * st_;                     \
                body;                                                              \
            }                                                                      \
            for (int i_ = nd_ - 2; i_ >= 0; i_--) {                                \
                if (++idx_[i_] < (t)->shape[i_]) break;                            \
                idx_[i_] = 0;                                                      \
            }                                                                      \
        }                                                                          \
    } while (0)

static int crc_check(const vm_checkpoint *c, const vm_ckpt_tensor *t, char *err, size_t errlen) {
    static int skip = -1;
    if (skip < 0) {
        const char *e = getenv("VMAMBA_NO_CRC");
        skip = e && *e && strcmp(e, "0") != 0;
    }
    if (!t->entry || skip || vm_zip_crc_ok(t->entry)) return 0;
    return vm_errf(err, errlen, "%s: tensor '%s': its storage '%s' fails its CRC-32 check: the file is corrupt", c->path,
                   t->name, t->entry->name);
}

int vm_ckpt_read_i8(const vm_checkpoint *c, const vm_ckpt_tensor *t, int8_t *dst, char *err, size_t errlen) {
    if (t->problem) return vm_errf(err, errlen, "%s: tensor '%s': %s", c->path, t->name, t->problem);
    if (t->dtype != PK_DT_I8) return vm_errf(err, errlen, "%s: tensor '%s' has dtype %s, not int8", c->path, t->name, pk_dtype_name(t->dtype));
    if (vm_ckpt_check_layout(c, t, err, errlen) || crc_check(c, t, err, errlen)) return -1;
    FOR_EACH_ELEMENT(t, n, off, dst[n] = (int8_t)t->data[off]);
    return 0;
}

int vm_ckpt_read_f32(const vm_checkpoint *c, const vm_ckpt_tensor *t, float *dst, char *err, size_t errlen) {
    if (vm_ckpt_validate(c, t, err, errlen) || crc_check(c, t, err, errlen)) return -1;
    size_t es = pk_dtype_size(t->dtype);
    FOR_EACH_ELEMENT(t, n, off, dst[n] = load_elem(t->dtype, t->data + (size_t)off * es));
    return 0;
}

void vm_ckpt_release(const vm_checkpoint *c, const vm_ckpt_tensor *t) {
    /* Drop the mapped pages of a tensor already copied out, so loading does
     * not hold the file and the converted weights in memory at once. Only
     * whole pages inside the storage are released; they stay readable
     * (MADV_DONTNEED on a private read-only file mapping re-reads them). */
    if (!c->map.mapped || !t->data || t->problem) return;
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = (uintptr_t)t->data, hi = lo + (uintptr_t)t->storage_bytes;
    lo = (lo + pg - 1) & ~(uintptr_t)(pg - 1);
    hi &= ~(uintptr_t)(pg - 1);
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}
