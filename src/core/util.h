/* util.h - checked allocation, error strings, file helpers.
 * The vm_x* wrappers report the source file and line (llm.c style) and
 * abort on out-of-memory: only for sizes no input controls, and the CLI.
 * The library never aborts on what a file, an image or an option asks
 * for: those allocations use malloc/vm_aligned_alloc_try and return -1
 * with an "out of memory (N bytes) ..." error naming the file. */
#ifndef VM_UTIL_H
#define VM_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

void *vm_xmalloc_impl(size_t n, const char *file, int line);
void *vm_xcalloc_impl(size_t n, size_t sz, const char *file, int line);
void *vm_xrealloc_impl(void *p, size_t n, const char *file, int line);
char *vm_xstrdup_impl(const char *s, const char *file, int line);
#define vm_xmalloc(n) vm_xmalloc_impl((n), __FILE__, __LINE__)
#define vm_xcalloc(n, sz) vm_xcalloc_impl((n), (sz), __FILE__, __LINE__)
#define vm_xrealloc(p, n) vm_xrealloc_impl((p), (n), __FILE__, __LINE__)
#define vm_xstrdup(s) vm_xstrdup_impl((s), __FILE__, __LINE__)

/* 64-byte aligned, zeroed; free with free(). */
void *vm_aligned_alloc_impl(size_t n, const char *file, int line);
#define vm_aligned_alloc(n) vm_aligned_alloc_impl((n), __FILE__, __LINE__)

/* The library's non-aborting path: the same 64-byte aligned, zeroed block,
 * or NULL when memory runs out; callers return -1 with an "out of memory
 * (N bytes)" error. The vm_x* wrappers above abort and are kept for sizes
 * no input controls (and the CLI). */
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

/* Write a file atomically: data goes to PATH.tmp.XXXXXX, renamed on
 * success, removed on failure, so no partial output file is ever left. */
typedef struct vm_atomic_file vm_atomic_file;
vm_atomic_file *vm_atomic_open(const char *path, char *err, size_t errlen);
int vm_atomic_write(vm_atomic_file *f, const void *p, size_t n);
int vm_atomic_commit(vm_atomic_file *f, char *err, size_t errlen);
void vm_atomic_abort(vm_atomic_file *f);

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
