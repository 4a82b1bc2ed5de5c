/* pickle.h - a restricted, non-executing pickle interpreter for torch
 * checkpoints (see Python's pickletools for the opcode reference).
 *
 * Only data is built: GLOBAL never imports anything. Three callables are
 * understood (collections.OrderedDict, torch._utils._rebuild_tensor_v2,
 * torch._utils._rebuild_parameter[_with_state]); any other class becomes
 * an opaque object that later code skips. Memory use is bounded by a small
 * multiple of the pickle's length: everything the interpreter allocates is
 * counted, and a pickle that needs more than 32 x its length (+1 MiB) is
 * refused (torch's own pickles need 13-16x; see PK_MEM_FACTOR). */
#ifndef VM_PICKLE_H
#define VM_PICKLE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    PK_NONE, PK_BOOL, PK_INT, PK_FLOAT, PK_STR, PK_BYTES, PK_TUPLE, PK_LIST,
    PK_DICT, PK_SET, PK_GLOBAL, PK_OBJ, PK_STORAGE, PK_TENSOR
} pk_type;

/* Storage element types torch writes as persistent ids. */
typedef enum {
    PK_DT_UNKNOWN = 0, PK_DT_F32, PK_DT_F16, PK_DT_BF16, PK_DT_F64,
    PK_DT_I64, PK_DT_I32, PK_DT_I16, PK_DT_I8, PK_DT_U8, PK_DT_BOOL
} pk_dtype;

#define PK_MAX_DIMS 8

typedef struct pk_obj pk_obj;
typedef struct {
    pk_obj *storage;
    int64_t offset;
    int ndim;
    int64_t size[PK_MAX_DIMS], stride[PK_MAX_DIMS];
} pk_tensor;
/* Kept small (40 bytes): the pickle's memory bound counts every object. */
struct pk_obj {
    pk_type t;
    union {
        int64_t i;                                          /* INT, BOOL */
        double f;                                           /* FLOAT     */
        struct { char *s; size_t len; } str;                /* STR,BYTES */
        struct { pk_obj **items; size_t n, cap; } seq;      /* TUPLE,LIST,SET */
        struct { pk_obj **keys, **vals; size_t n, cap; } dict;
        struct { char *module, *name; } global;             /* GLOBAL    */
        struct { pk_obj *cls; } obj;                        /* OBJ       */
        struct { pk_dtype dtype; char *type_name; char *key; int64_t numel; } storage;
        pk_tensor *tensor;                                  /* TENSOR    */
    } u;
};

typedef struct pk_state pk_state; /* owns every object it made */

/* Run the pickle in buf. On success *root is the unpickled value. */
int pk_load(const uint8_t *buf, size_t len, const char *what, pk_state **st, pk_obj **root,
            char *err, size_t errlen);
void pk_free(pk_state *st);

/* Dict lookup by string key (the last match wins, as in Python). */
pk_obj *pk_dict_get(const pk_obj *d, const char *key);
size_t pk_dtype_size(pk_dtype d);
const char *pk_dtype_name(pk_dtype d);

#endif
