/* safetensors.h - the native model format: an 8-byte little-endian header
 * length, a JSON header (tensor name -> dtype, shape, data offsets, plus a
 * "__metadata__" object of strings), then the raw little-endian tensors.
 * Loaded by mmap with no pickle; parsed with jansson. */
#ifndef VM_SAFETENSORS_H
#define VM_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "checkpoint.h"

/* Does this mapped file look like safetensors (vs a zip)? */
int vm_is_safetensors(const uint8_t *buf, size_t len);

/* Fill c's tensor table from the already mapped file c->map. */
int vm_safetensors_index(vm_checkpoint *c, char *err, size_t errlen);

typedef enum { VM_ST_F32, VM_ST_F16, VM_ST_BF16 } vm_st_dtype;

typedef struct {
    const char *name;
    const float *data;        /* stored in the file's dtype ...            */
    const int8_t *i8;         /* ... or, when set, stored as I8 as it is   */
    int ndim;
    int64_t shape[PK_MAX_DIMS];
} vm_st_tensor;

/* Write tensors (converted to dtype) and metadata (key/value strings),
 * atomically: no partial file on failure. */
int vm_safetensors_write(const char *path, const vm_st_tensor *t, size_t n, vm_st_dtype dtype,
                         const char *const *meta_kv, size_t nmeta, char *err, size_t errlen);

uint16_t vm_float_to_half(float f);
uint16_t vm_float_to_bf16(float f);

#endif
