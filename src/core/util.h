/* util.h - aligned allocation, error strings, file helpers.
 * The library never aborts on out-of-memory: every allocation is checked
 * (malloc/calloc/realloc or vm_aligned_alloc_try) and a failure returns
 * -1 / NULL with an "out of memory (N bytes) ..." error naming the file
 * or the object. There are deliberately no aborting x-wrappers. */
#ifndef VM_UTIL_H
#define VM_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

/* A 64-byte aligned, zeroed block (free with free()), or NULL when memory
 * runs out; callers return -1 with an "out of memory (N bytes)" error. */
void *vm_aligned_alloc_try(size_t n);

/* snprintf into an error buffer; tolerates buf == NULL. Returns -1 so
 * callers can `return vm_errf(...)`. */
int vm_errf(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Overflow-checked size arithmetic: return 0 on overflow. */
int vm_mul_ok(size_t a, size_t b, size_t *out);

/* A read-only view of a whole file (mmap, or malloc for non-regular). */
typedef struct {
    const uint8_t *data;
    size_t size;
    int mapped;
} vm_file_map;

int vm_map_file(const char *path, vm_file_map *out, char *err, size_t errlen);
void vm_unmap_file(vm_file_map *f);

/* Atomic file output (vm_atomic_open/write/commit/abort: data goes to
 * PATH.tmp.XXXXXX, renamed on success, removed on failure) is public. */
#include "vmamba.h"

/* IEEE half / bfloat16 to float. */
float vm_half_to_float(uint16_t h);
float vm_bf16_to_float(uint16_t b);

/* Little-endian loads from unaligned memory. */
static inline uint16_t vm_rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t vm_rd32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t vm_rd64(const uint8_t *p) { return (uint64_t)vm_rd32(p) | ((uint64_t)vm_rd32(p + 4) << 32); }

#endif
