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
    const vm_zip_entry *entry;/* its storage's zip entry (CRC checked when read), or NULL */
    int used;                 /* set by the model loader: bound by the backbone */
} vm_ckpt_tensor;

typedef struct vm_checkpoint {
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

/* What a tensor's layout may be (torch allows any non-negative strides):
 *  - every element, offset + sum((size - 1) * stride), lies inside the
 *    storage, and the storage's elements inside the archive entry's bytes;
 *  - strides and offsets are otherwise free (transposed, sliced views);
 *  - a view that repeats storage elements (stride 0 from expand(), or
 *    overlapping strides) so that it has more elements than its storage is
 *    legal only up to VM_CKPT_MAX_BROADCAST elements. A real checkpoint
 *    never needs more (weights are materialised), and without the bound a
 *    few bytes of file could ask for gigabytes.
 * The model loader further bounds the memory of all weights together by a
 * small multiple of the file's size (storages may be shared by tensors). */
#define VM_CKPT_MAX_BROADCAST 4096

/* The layout check alone, for any dtype: the storage holds its claimed
 * elements, and offset and strides keep every element inside it. */
int vm_ckpt_check_layout(const vm_checkpoint *c, const vm_ckpt_tensor *t, char *err, size_t errlen);

/* Copy an int8 tensor into dst contiguously (offset and strides honoured),
 * after the layout check. */
int vm_ckpt_read_i8(const vm_checkpoint *c, const vm_ckpt_tensor *t, int8_t *dst, char *err, size_t errlen);

/* The reads below check the CRC-32 of a .pth tensor's storage (the zip
 * entry) before converting it; data.pkl's CRC is checked at open. The
 * environment variable VMAMBA_NO_CRC=1 skips the storage checks. */

/* Copy tensor `t` into dst as contiguous float32 (converting f16/bf16/f64),
 * checking every element lies inside its storage. */
int vm_ckpt_read_f32(const vm_checkpoint *c, const vm_ckpt_tensor *t, float *dst, char *err, size_t errlen);

/* Give back the pages of t's storage after it was copied (peak memory). */
void vm_ckpt_release(const vm_checkpoint *c, const vm_ckpt_tensor *t);

#endif
