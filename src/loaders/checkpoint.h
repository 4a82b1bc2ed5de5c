/* checkpoint.h - the weights of a torch.save checkpoint as a name -> tensor
 * table, without Python or libtorch. */
#ifndef VM_CHECKPOINT_H
#define VM_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "pickle.h"
#include "zipread.h"
#include "../core/util.h"

typedef struct {
    char *name;
    pk_dtype dtype;
    int ndim;
    int64_t shape[PK_MAX_DIMS];
    int64_t stride[PK_MAX_DIMS];
    int64_t offset;           /* in elements */
    const uint8_t *data;      /* storage bytes (in the mapping), NULL if unresolved */
    uint64_t storage_bytes;
    int64_t storage_numel;
    const char *problem;      /* why it is not a usable tensor, or NULL */
    int used;                 /* set by the model loader: bound by the backbone */
} vm_ckpt_tensor;

typedef struct {
    char *path;
    vm_file_map map;
    vm_zip zip;
    vm_ckpt_tensor *t;
    size_t n;
    char *metadata;           /* safetensors "vmamba" metadata (JSON), or NULL */
} vm_checkpoint;

/* key: which top-level entry holds the weights (NULL = auto: "model",
 * then "state_dict" with "backbone." stripped from the backbone's keys,
 * the others, e.g. "decode_head.*", kept as they are; then a bare state
 * dict). Every tensor is listed. */
int vm_checkpoint_open(vm_checkpoint *c, const char *path, const char *key, char *err, size_t errlen);
/* The same, keeping every key with its full name (no "backbone." strip):
 * the heads of an mmseg/mmdet checkpoint ("decode_head.*", ...). */
int vm_checkpoint_open_all(vm_checkpoint *c, const char *path, const char *key, char *err, size_t errlen);
void vm_checkpoint_close(vm_checkpoint *c);

const vm_ckpt_tensor *vm_checkpoint_find(const vm_checkpoint *c, const char *name);
int64_t vm_ckpt_numel(const vm_ckpt_tensor *t);

/* Check dtype, and that every element lies inside the storage bytes. */
int vm_ckpt_validate(const vm_checkpoint *c, const vm_ckpt_tensor *t, char *err, size_t errlen);

/* Copy tensor `t` into dst as contiguous float32 (converting f16/bf16/f64),
 * checking every element lies inside its storage. */
int vm_ckpt_read_f32(const vm_checkpoint *c, const vm_ckpt_tensor *t, float *dst, char *err, size_t errlen);

/* Give back the pages of t's storage after it was copied (peak memory). */
void vm_ckpt_release(const vm_checkpoint *c, const vm_ckpt_tensor *t);

#endif
