/* pickle.c - see pickle.h. */
#include "pickle.h"
#include "../core/util.h"

#include <stdlib.h>
#include <string.h>

struct pk_state {
    pk_obj **all;          /* every object, for freeing */
    size_t nall, capall;
    pk_obj **stack;
    size_t sp, capstack;
    size_t *marks;         /* stack heights at each MARK */
    size_t nmarks, capmarks;
    pk_obj **memo;
    size_t nmemo;
    const char *what;
    char *err;
    size_t errlen;
    size_t bytes, limit;   /* bytes allocated so far (with malloc overhead), bound */
    int over;              /* the bound was hit, or malloc failed: the load fails */
    pk_obj sink;           /* what newobj gives after a failure (owns nothing) */
};

/* Memory bound: everything the interpreter allocates (objects, strings,
 * containers, stack, memo), counted with a 16-byte malloc overhead per
 * block, may not exceed PK_MEM_FACTOR x the pickle's length plus
 * PK_MEM_SLACK. torch's state-dict pickles need ~ 10x (measured on a
 * 347 MB vmamba-base checkpoint and on the test checkpoints: 13-16x); a pickle made
 * of 1-byte object-creating opcodes needs ~ 70x and is refused. */
#define PK_MEM_FACTOR 32
#define PK_MEM_SLACK (1u << 20)
#define PK_MALLOC_OVERHEAD 16

/* Charge n more bytes; 0 if within the bound. */
static int charge(pk_state *s, size_t n) {
    s->bytes += n + PK_MALLOC_OVERHEAD;
    if (s->bytes > s->limit && !s->over) {
        s->over = 1;
        vm_errf(s->err, s->errlen, "%s: pickle needs more than %zu bytes of memory (%d x its size): refused as hostile or corrupt",
                s->what, s->limit, PK_MEM_FACTOR);
    }
    return s->over ? -1 : 0;
}

/* realloc that never aborts: on failure the load fails with a message
 * (the main loop stops at the next opcode) and NULL is returned. */
static void *pk_alloc(pk_state *s, void *old, size_t n) {
    void *p = realloc(old, n ? n : 1);
    if (!p && !s->over) {
        s->over = 1;
        vm_errf(s->err, s->errlen, "%s: out of memory (%zu bytes) reading the pickle", s->what, n);
    }
    if (!p) s->over = 1;
    return p;
}

static char *pk_strdup(pk_state *s, const char *str) {
    size_t n = strlen(str) + 1;
    char *p = pk_alloc(s, NULL, n);
    if (p) memcpy(p, str, n);
    return p;
}

/* Containers may not grow past this many items: far above any checkpoint,
 * and it bounds what a hostile pickle can make us allocate. */
#define PK_MAX_ITEMS (1u << 26)

static pk_obj *newobj(pk_state *s, pk_type t) {
    if (s->nall == s->capall) {
        size_t old = s->capall;
        s->capall = s->capall ? s->capall * 2 : 256;
        charge(s, (s->capall - old) * sizeof *s->all);
        pk_obj **all = pk_alloc(s, s->all, s->capall * sizeof *s->all);
        if (!all) {
            s->capall = old;
            return &s->sink;
        }
        s->all = all;
    }
    charge(s, sizeof(pk_obj));
    pk_obj *o = pk_alloc(s, NULL, sizeof *o);
    if (!o) return &s->sink;
    memset(o, 0, sizeof *o);
    o->t = t;
    s->all[s->nall++] = o;
    return o;
}

static void free_obj(pk_obj *o) {
    switch (o->t) {
    case PK_STR: case PK_BYTES: free(o->u.str.s); break;
    case PK_TUPLE: case PK_LIST: case PK_SET: free(o->u.seq.items); break;
    case PK_DICT: free(o->u.dict.keys); free(o->u.dict.vals); break;
    case PK_GLOBAL: free(o->u.global.module); free(o->u.global.name); break;
    case PK_STORAGE: free(o->u.storage.key); free(o->u.storage.type_name); break;
    case PK_TENSOR: free(o->u.tensor); break;
    default: break;
    }
    free(o);
}

void pk_free(pk_state *s) {
    if (!s) return;
    for (size_t i = 0; i < s->nall; i++) free_obj(s->all[i]);
    free(s->all);
    free(s->stack);
    free(s->marks);
    free(s->memo);
    free(s);
}

static int seq_push(pk_state *s, pk_obj *q, pk_obj *item) {
    if (q->u.seq.n == q->u.seq.cap) {
        if (q->u.seq.cap >= PK_MAX_ITEMS) return vm_errf(s->err, s->errlen, "%s: corrupt pickle: container too large", s->what);
        /* The capacity changes only with the allocation: after a failure
         * (or on the sink that newobj hands out after one) n == cap still
         * holds, so a later push cannot write through a NULL or short
         * array (it did: SIGSEGV under out of memory). */
        size_t old = q->u.seq.cap, cap = old ? old * 2 : 4;
        if (q == &s->sink || charge(s, (cap - old) * sizeof(pk_obj *))) return -1;
        pk_obj **items = pk_alloc(s, q->u.seq.items, cap * sizeof(pk_obj *));
        if (!items) return -1;
        q->u.seq.items = items;
        q->u.seq.cap = cap;
    }
    q->u.seq.items[q->u.seq.n++] = item;
    return 0;
}

static int dict_set(pk_state *s, pk_obj *d, pk_obj *k, pk_obj *v) {
    if (d->u.dict.n == d->u.dict.cap) {
        if (d->u.dict.cap >= PK_MAX_ITEMS) return vm_errf(s->err, s->errlen, "%s: corrupt pickle: dict too large", s->what);
        size_t old = d->u.dict.cap, cap = old ? old * 2 : 8; /* set only with both arrays (see seq_push) */
        if (d == &s->sink || charge(s, 2 * (cap - old) * sizeof(pk_obj *))) return -1;
        pk_obj **keys = pk_alloc(s, d->u.dict.keys, cap * sizeof(pk_obj *));
        if (keys) d->u.dict.keys = keys;
        pk_obj **vals = keys ? pk_alloc(s, d->u.dict.vals, cap * sizeof(pk_obj *)) : NULL;
        if (vals) d->u.dict.vals = vals;
        if (!keys || !vals) return -1;
        d->u.dict.cap = cap;
    }
    d->u.dict.keys[d->u.dict.n] = k;
    d->u.dict.vals[d->u.dict.n] = v;
    d->u.dict.n++;
    return 0;
}

pk_obj *pk_dict_get(const pk_obj *d, const char *key) {
    if (!d || d->t != PK_DICT) return NULL;
    size_t kl = strlen(key);
    for (size_t i = d->u.dict.n; i-- > 0;) {
        const pk_obj *k = d->u.dict.keys[i];
        if (k->t == PK_STR && k->u.str.len == kl && memcmp(k->u.str.s, key, kl) == 0) return d->u.dict.vals[i];
    }
    return NULL;
}

size_t pk_dtype_size(pk_dtype d) {
    switch (d) {
    case PK_DT_F32: case PK_DT_I32: return 4;
    case PK_DT_F16: case PK_DT_BF16: case PK_DT_I16: return 2;
    case PK_DT_F64: case PK_DT_I64: return 8;
    case PK_DT_I8: case PK_DT_U8: case PK_DT_BOOL: return 1;
    default: return 0;
    }
}

const char *pk_dtype_name(pk_dtype d) {
    static const char *n[] = {"unknown", "float32", "float16", "bfloat16", "float64", "int64",
                              "int32", "int16", "int8", "uint8", "bool"};
    return (unsigned)d < sizeof n / sizeof *n ? n[d] : "unknown";
}

static pk_dtype storage_dtype(const char *name) {
    static const struct { const char *n; pk_dtype d; } map[] = {
        {"FloatStorage", PK_DT_F32}, {"HalfStorage", PK_DT_F16}, {"BFloat16Storage", PK_DT_BF16},
        {"DoubleStorage", PK_DT_F64}, {"LongStorage", PK_DT_I64}, {"IntStorage", PK_DT_I32},
        {"ShortStorage", PK_DT_I16}, {"CharStorage", PK_DT_I8}, {"ByteStorage", PK_DT_U8},
        {"BoolStorage", PK_DT_BOOL}};
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (strcmp(map[i].n, name) == 0) return map[i].d;
    return PK_DT_UNKNOWN;
}

#define FAIL(...) return vm_errf(s->err, s->errlen, __VA_ARGS__)

static int push(pk_state *s, pk_obj *o) {
    if (s->sp == s->capstack) {
        size_t old = s->capstack;
        s->capstack = s->capstack ? s->capstack * 2 : 64;
        charge(s, (s->capstack - old) * sizeof *s->stack);
        pk_obj **st = pk_alloc(s, s->stack, s->capstack * sizeof *s->stack);
        if (!st) { s->capstack = old; return -1; }
        s->stack = st;
    }
    s->stack[s->sp++] = o;
    return 0;
}

/* The stack floor is the last MARK: ops may not pop below it. */
static size_t floor_(pk_state *s) { return s->nmarks ? s->marks[s->nmarks - 1] : 0; }

static pk_obj *pop(pk_state *s) {
    if (s->sp <= floor_(s)) return NULL;
    return s->stack[--s->sp];
}

static int pop_mark(pk_state *s, size_t *base) {
    if (!s->nmarks) return -1;
    *base = s->marks[--s->nmarks];
    return 0;
}

static int is_global(const pk_obj *o, const char *mod, const char *name) {
    return o && o->t == PK_GLOBAL && strcmp(o->u.global.module, mod) == 0 && strcmp(o->u.global.name, name) == 0;
}

static int get_int(const pk_obj *o, int64_t *v) {
    if (!o || (o->t != PK_INT && o->t != PK_BOOL)) return 0;
    *v = o->u.i;
    return 1;
}

static pk_obj *make_str(pk_state *s, pk_type t, const uint8_t *p, size_t n) {
    charge(s, n + 1);
    pk_obj *o = newobj(s, t);
    if (o == &s->sink || !(o->u.str.s = pk_alloc(s, NULL, n + 1))) return o;
    memcpy(o->u.str.s, p, n);
    o->u.str.s[n] = 0;
    o->u.str.len = n;
    return o;
}

/* torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...) */
static pk_obj *rebuild_tensor(pk_state *s, pk_obj *args) {
    if (args->t != PK_TUPLE || args->u.seq.n < 4) return NULL;
    pk_obj **a = args->u.seq.items;
    if (a[0]->t != PK_STORAGE || a[2]->t != PK_TUPLE || a[3]->t != PK_TUPLE) return NULL;
    if (a[2]->u.seq.n != a[3]->u.seq.n || a[2]->u.seq.n > PK_MAX_DIMS) return NULL;
    pk_obj *o = newobj(s, PK_TENSOR);
    charge(s, sizeof(pk_tensor));
    if (o == &s->sink || !(o->u.tensor = pk_alloc(s, NULL, sizeof(pk_tensor)))) return NULL;
    pk_tensor *t = o->u.tensor;
    memset(t, 0, sizeof *t);
    t->storage = a[0];
    if (!get_int(a[1], &t->offset) || t->offset < 0) return NULL;
    t->ndim = (int)a[2]->u.seq.n;
    for (int i = 0; i < t->ndim; i++) {
        if (!get_int(a[2]->u.seq.items[i], &t->size[i]) || t->size[i] < 0) return NULL;
        if (!get_int(a[3]->u.seq.items[i], &t->stride[i]) || t->stride[i] < 0) return NULL;
    }
    return o;
}

static int do_reduce(pk_state *s, pk_obj *callable, pk_obj *args, size_t pos, pk_obj **out) {
    if (is_global(callable, "collections", "OrderedDict") || is_global(callable, "builtins", "dict") ||
        is_global(callable, "__builtin__", "dict")) {
        *out = newobj(s, PK_DICT);
        return 0;
    }
    if (is_global(callable, "torch._utils", "_rebuild_tensor_v2")) {
        *out = rebuild_tensor(s, args);
        if (!*out && s->over) return -1;
        if (!*out) FAIL("%s: corrupt pickle: bad arguments to _rebuild_tensor_v2 at offset %zu", s->what, pos);
        return 0;
    }
    if (is_global(callable, "torch._utils", "_rebuild_parameter") ||
        is_global(callable, "torch._utils", "_rebuild_parameter_with_state")) {
        if (args->t != PK_TUPLE || args->u.seq.n < 1) FAIL("%s: corrupt pickle: bad arguments to _rebuild_parameter at offset %zu", s->what, pos);
        *out = args->u.seq.items[0];
        return 0;
    }
    if (callable->t != PK_GLOBAL && callable->t != PK_OBJ)
        FAIL("%s: corrupt pickle: REDUCE on a non-callable at offset %zu", s->what, pos);
    /* Anything else (optimizer state, config classes, numpy scalars...):
     * an opaque object. Nothing is called. */
    pk_obj *o = newobj(s, PK_OBJ);
    o->u.obj.cls = callable;
    *out = o;
    return 0;
}

static int memo_put(pk_state *s, uint64_t idx, size_t len, pk_obj *o) {
    /* Memo indices come from a counter in the writer; one beyond the
     * pickle's length cannot be legitimate and would make us allocate. */
    if (idx > len) FAIL("%s: corrupt pickle: memo index %llu out of range", s->what, (unsigned long long)idx);
    if (idx >= s->nmemo) {
        size_t n = s->nmemo ? s->nmemo : 64;
        while (n <= idx) n *= 2;
        if (charge(s, (n - s->nmemo) * sizeof *s->memo)) return -1;
        pk_obj **memo = pk_alloc(s, s->memo, n * sizeof *s->memo);
        if (!memo) return -1;
        s->memo = memo;
        memset(s->memo + s->nmemo, 0, (n - s->nmemo) * sizeof *s->memo);
        s->nmemo = n;
    }
    s->memo[idx] = o;
    return 0;
}

static char *dup_line(pk_state *s, const uint8_t *p, const uint8_t *end, const uint8_t **next) {
    const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl) return NULL;
    size_t n = (size_t)(nl - p);
    charge(s, n + 1);
    char *r = pk_alloc(s, NULL, n + 1);
    if (!r) return NULL;
    memcpy(r, p, n);
    r[n] = 0;
    *next = nl + 1;
    return r;
}

int pk_load(const uint8_t *buf, size_t len, const char *what, pk_state **out_state, pk_obj **root, char *err,
            size_t errlen) {
    pk_state *s = calloc(1, sizeof *s);
    *out_state = s;
    *root = NULL;
    if (!s) return vm_errf(err, errlen, "%s: out of memory (%zu bytes) reading the pickle", what, sizeof *s);
    s->what = what;
    s->err = err;
    s->errlen = errlen;
    s->limit = len > (SIZE_MAX - PK_MEM_SLACK) / PK_MEM_FACTOR ? SIZE_MAX : len * PK_MEM_FACTOR + PK_MEM_SLACK;
    *out_state = s;
    *root = NULL;
    const uint8_t *p = buf, *end = buf + len;
    size_t memo_counter = 0;

#define NEED(n)                                                                                             \
    do {                                                                                                    \
        if ((size_t)(end - p) < (size_t)(n))                                                                \
            return vm_errf(err, errlen, "%s: truncated pickle (opcode at offset %zu needs %zu more bytes)", \
                           what, pos, (size_t)(n));                                                         \
    } while (0)
#define POP(var)                                                                                                   \
    pk_obj *var = pop(s);                                                                                          \
    if (!var) return vm_errf(err, errlen, "%s: corrupt pickle: stack underflow at offset %zu (opcode 0x%02x)", \
                             what, pos, op)
#define MARKBASE(var)                                                                                               \
    size_t var;                                                                                                     \
    if (pop_mark(s, &var) != 0) return vm_errf(err, errlen, "%s: corrupt pickle: no MARK before offset %zu", what, pos)

    while (p < end) {
        if (s->over) return -1; /* the bound was hit by the last opcode: err says so */
        size_t pos = (size_t)(p - buf);
        uint8_t op = *p++;
        switch (op) {
        case 0x80: NEED(1); p += 1; break;                  /* PROTO */
        case 0x95: NEED(8); p += 8; break;                  /* FRAME */
        case '.': {                                         /* STOP */
            POP(r);
            if (s->over) return -1;
            *root = r;
            return 0;
        }
        case '(':                                           /* MARK */
            if (s->nmarks == s->capmarks) {
                size_t old = s->capmarks;
                s->capmarks = s->capmarks ? s->capmarks * 2 : 16;
                charge(s, (s->capmarks - old) * sizeof *s->marks);
                size_t *marks = pk_alloc(s, s->marks, s->capmarks * sizeof *s->marks);
                if (!marks) { s->capmarks = old; return -1; }
                s->marks = marks;
            }
            s->marks[s->nmarks++] = s->sp;
            break;
        case '}': push(s, newobj(s, PK_DICT)); break;       /* EMPTY_DICT */
        case ']': push(s, newobj(s, PK_LIST)); break;       /* EMPTY_LIST */
        case ')': push(s, newobj(s, PK_TUPLE)); break;      /* EMPTY_TUPLE */
        case 0x8f: push(s, newobj(s, PK_SET)); break;       /* EMPTY_SET */
        case 't': case 0x91: {                              /* TUPLE, FROZENSET */
            MARKBASE(base);
            pk_obj *t = newobj(s, op == 't' ? PK_TUPLE : PK_SET);
            for (size_t i = base; i < s->sp; i++)
                if (seq_push(s, t, s->stack[i])) return -1;
            s->sp = base;
            push(s, t);
            break;
        }
        case 0x85: case 0x86: case 0x87: {                  /* TUPLE1..3 */
            int n = op - 0x84;
            if (s->sp < floor_(s) + (size_t)n) FAIL("%s: corrupt pickle: stack underflow at offset %zu", what, pos);
            pk_obj *t = newobj(s, PK_TUPLE);
            for (size_t i = s->sp - (size_t)n; i < s->sp; i++)
                if (seq_push(s, t, s->stack[i])) return -1;
            s->sp -= (size_t)n;
            push(s, t);
            break;
        }
        case 'a': {                                         /* APPEND */
            POP(v);
            POP(l);
            if (l->t == PK_LIST) { if (seq_push(s, l, v)) return -1; }
            else if (l->t != PK_OBJ) FAIL("%s: corrupt pickle: APPEND to a non-list at offset %zu", what, pos);
            push(s, l);
            break;
        }
        case 'e': case 0x90: {                              /* APPENDS, ADDITEMS */
            MARKBASE(base);
            if (base == 0 || base <= floor_(s)) FAIL("%s: corrupt pickle: APPENDS without a list at offset %zu", what, pos);
            pk_obj *l = s->stack[base - 1];
            if (l->t == PK_LIST || l->t == PK_SET) {
                for (size_t i = base; i < s->sp; i++)
                    if (seq_push(s, l, s->stack[i])) return -1;
            } else if (l->t != PK_OBJ) {
                FAIL("%s: corrupt pickle: APPENDS to a non-list at offset %zu", what, pos);
            }
            s->sp = base;
            break;
        }
        case 's': {                                         /* SETITEM */
            POP(v);
            POP(k);
            POP(d);
            if (d->t == PK_DICT) { if (dict_set(s, d, k, v)) return -1; }
            else if (d->t != PK_OBJ) FAIL("%s: corrupt pickle: SETITEM on a non-dict at offset %zu", what, pos);
            push(s, d);
            break;
        }
        case 'u': {                                         /* SETITEMS */
            MARKBASE(base);
            if (base == 0 || base <= floor_(s) || (s->sp - base) % 2)
                FAIL("%s: corrupt pickle: bad SETITEMS at offset %zu", what, pos);
            pk_obj *d = s->stack[base - 1];
            if (d->t == PK_DICT) {
                for (size_t i = base; i < s->sp; i += 2)
                    if (dict_set(s, d, s->stack[i], s->stack[i + 1])) return -1;
            } else if (d->t != PK_OBJ) {
                FAIL("%s: corrupt pickle: SETITEMS on a non-dict at offset %zu", what, pos);
            }
            s->sp = base;
            break;
        }
        case 'J': { NEED(4); pk_obj *o = newobj(s, PK_INT); o->u.i = (int32_t)vm_rd32(p); p += 4; push(s, o); break; }
        case 'K': { NEED(1); pk_obj *o = newobj(s, PK_INT); o->u.i = p[0]; p += 1; push(s, o); break; }
        case 'M': { NEED(2); pk_obj *o = newobj(s, PK_INT); o->u.i = vm_rd16(p); p += 2; push(s, o); break; }
        case 0x8a: {                                        /* LONG1 */
            NEED(1);
            size_t n = p[0];
            NEED(1 + n);
            if (n > 8) FAIL("%s: unsupported pickle: integer of %zu bytes at offset %zu", what, n, pos);
            uint64_t v = 0;
            for (size_t i = 0; i < n; i++) v |= (uint64_t)p[1 + i] << (8 * i);
            if (n && n < 8 && (p[n] & 0x80)) v |= ~(uint64_t)0 << (8 * n); /* sign-extend */
            pk_obj *o = newobj(s, PK_INT);
            o->u.i = (int64_t)v;
            p += 1 + n;
            push(s, o);
            break;
        }
        case 'G': {                                         /* BINFLOAT, big-endian */
            NEED(8);
            uint64_t v = 0;
            for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
            pk_obj *o = newobj(s, PK_FLOAT);
            memcpy(&o->u.f, &v, 8);
            p += 8;
            push(s, o);
            break;
        }
        case 'X': case 0x8c: case 0x8d: case 'T': case 'U': case 'B': case 'C': case 0x8e: {
            size_t hdr = (op == 0x8c || op == 'U' || op == 'C') ? 1 : (op == 0x8d || op == 0x8e) ? 8 : 4;
            NEED(hdr);
            uint64_t n = hdr == 1 ? p[0] : hdr == 4 ? vm_rd32(p) : vm_rd64(p);
            p += hdr;
            if (n > (uint64_t)(end - p)) FAIL("%s: truncated pickle (string of %llu bytes at offset %zu)", what, (unsigned long long)n, pos);
            int is_bytes = (op == 'B' || op == 'C' || op == 0x8e);
            push(s, make_str(s, is_bytes ? PK_BYTES : PK_STR, p, (size_t)n));
            p += n;
            break;
        }
        case 'N': push(s, newobj(s, PK_NONE)); break;
        case 0x88: case 0x89: { pk_obj *o = newobj(s, PK_BOOL); o->u.i = op == 0x88; push(s, o); break; }
        case 'h': case 'j': {                               /* BINGET, LONG_BINGET */
            size_t n = op == 'h' ? 1 : 4;
            NEED(n);
            uint64_t idx = n == 1 ? p[0] : vm_rd32(p);
            p += n;
            if (idx >= s->nmemo || !s->memo[idx]) FAIL("%s: corrupt pickle: memo key %llu not found at offset %zu", what, (unsigned long long)idx, pos);
            push(s, s->memo[idx]);
            break;
        }
        case 'q': case 'r': case 0x94: {                    /* BINPUT, LONG_BINPUT, MEMOIZE */
            uint64_t idx;
            if (op == 0x94) idx = memo_counter++;
            else {
                size_t n = op == 'q' ? 1 : 4;
                NEED(n);
                idx = n == 1 ? p[0] : vm_rd32(p);
                p += n;
            }
            if (s->sp <= floor_(s)) FAIL("%s: corrupt pickle: PUT on an empty stack at offset %zu", what, pos);
            if (memo_put(s, idx, len, s->stack[s->sp - 1])) return -1;
            break;
        }
        case 'c': {                                         /* GLOBAL "module\nname\n" */
            const uint8_t *q;
            char *mod = dup_line(s, p, end, &q);
            if (!mod && s->over) return -1;
            if (!mod) FAIL("%s: truncated pickle (GLOBAL at offset %zu)", what, pos);
            char *name = dup_line(s, q, end, &p);
            if (!name && s->over) { free(mod); return -1; }
            if (!name) { free(mod); FAIL("%s: truncated pickle (GLOBAL at offset %zu)", what, pos); }
            pk_obj *g = newobj(s, PK_GLOBAL);
            if (g == &s->sink) { free(mod); free(name); return -1; }
            g->u.global.module = mod;
            g->u.global.name = name;
            push(s, g);
            break;
        }
        case 0x93: {                                        /* STACK_GLOBAL */
            POP(name);
            POP(mod);
            if (name->t != PK_STR || mod->t != PK_STR) FAIL("%s: corrupt pickle: STACK_GLOBAL needs strings at offset %zu", what, pos);
            charge(s, mod->u.str.len + name->u.str.len + 2);
            pk_obj *g = newobj(s, PK_GLOBAL);
            if (g == &s->sink || !(g->u.global.module = pk_strdup(s, mod->u.str.s)) ||
                !(g->u.global.name = pk_strdup(s, name->u.str.s)))
                return -1;
            push(s, g);
            break;
        }
        case 'R': case 0x81: {                              /* REDUCE, NEWOBJ */
            POP(args);
            POP(callable);
            if (args->t != PK_TUPLE) FAIL("%s: corrupt pickle: %s arguments are not a tuple at offset %zu", what, op == 'R' ? "REDUCE" : "NEWOBJ", pos);
            pk_obj *r;
            if (do_reduce(s, callable, args, pos, &r)) return -1;
            push(s, r);
            break;
        }
        case 'b': {                                         /* BUILD: state is dropped */
            POP(state);
            (void)state;
            if (s->sp <= floor_(s)) FAIL("%s: corrupt pickle: BUILD on an empty stack at offset %zu", what, pos);
            break;
        }
        case 'Q': {                                         /* BINPERSID */
            POP(pid);
            /* ('storage', storage_type, key, location, numel) */
            if (pid->t != PK_TUPLE || pid->u.seq.n < 5 || pid->u.seq.items[0]->t != PK_STR ||
                strcmp(pid->u.seq.items[0]->u.str.s, "storage") != 0)
                FAIL("%s: unsupported persistent id at offset %zu (expected a torch storage)", what, pos);
            pk_obj **a = pid->u.seq.items;
            int64_t numel;
            if (a[1]->t != PK_GLOBAL || a[2]->t != PK_STR || !get_int(a[4], &numel) || numel < 0)
                FAIL("%s: corrupt pickle: malformed storage id at offset %zu", what, pos);
            charge(s, strlen(a[1]->u.global.name) + strlen(a[2]->u.str.s) + 2);
            pk_obj *st = newobj(s, PK_STORAGE);
            if (st == &s->sink || !(st->u.storage.type_name = pk_strdup(s, a[1]->u.global.name)) ||
                !(st->u.storage.key = pk_strdup(s, a[2]->u.str.s)))
                return -1;
            st->u.storage.dtype = storage_dtype(a[1]->u.global.name);
            st->u.storage.numel = numel;
            push(s, st);
            break;
        }
        case '0': { POP(x); (void)x; break; }               /* POP */
        case '1': { MARKBASE(base); s->sp = base; break; }  /* POP_MARK */
        case '2': {                                         /* DUP */
            if (s->sp <= floor_(s)) FAIL("%s: corrupt pickle: DUP on an empty stack at offset %zu", what, pos);
            push(s, s->stack[s->sp - 1]);
            break;
        }
        default:
            FAIL("%s: unsupported pickle opcode 0x%02x at offset %zu (not used by torch checkpoints)", what, op, pos);
        }
    }
    return vm_errf(err, errlen, "%s: truncated pickle (no STOP opcode)", what);
}
