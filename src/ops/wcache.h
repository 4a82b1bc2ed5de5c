/* wcache.h - one backend-side copy of each read-only weight array, per
 * backend (so per context): the heads' plans are made again whenever the
 * input shape changes, and their weights must not be copied again each
 * time (~60 MB for Mask R-CNN). Keyed by the host array (pointer, length,
 * layout); an entry stays while the backend lives, also after the last
 * plan using it is freed, so that the next plan finds it. A short sampled
 * fingerprint of the host values is checked on every hit: a host array
 * freed and another allocated at the same address (a head freed while a
 * context lives on) is copied afresh, never served stale. Internal. */
#ifndef VM_OPS_WCACHE_H
#define VM_OPS_WCACHE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vm_be;

typedef struct {
    const float *host;
    size_t n;
    int layout;  /* 0: as on the host; else a backend-defined re-layout (e.g. conv k) */
    uint64_t tag; /* fingerprint of the host values */
    float *dev;
    int refs;
} vm_wcache_entry;

typedef struct vm_wcache {
    vm_wcache_entry *e;
    int n, cap;
    size_t copies; /* arrays copied to the backend so far (tests count them) */
} vm_wcache;

/* make: a backend copy of host[0..n) in `layout` (NULL with be->err set);
 * drop: frees such a copy. */
typedef float *(*vm_wcache_make_fn)(struct vm_be *be, const float *host, size_t n, int layout, void *user);
typedef void (*vm_wcache_drop_fn)(struct vm_be *be, float *dev);

/* The cached copy of host (made on a miss), one more reference; NULL on
 * failure (be->err). */
float *vm_wcache_get(vm_wcache *wc, struct vm_be *be, const float *host, size_t n, int layout, vm_wcache_make_fn make,
                     void *user, vm_wcache_drop_fn drop);
/* One reference less; the copy stays cached. 0, or -1 when dev is not a
 * cached copy (the caller frees it then). */
int vm_wcache_put(vm_wcache *wc, const float *dev);
/* Frees every copy (with the backend). */
void vm_wcache_clear(vm_wcache *wc, struct vm_be *be, vm_wcache_drop_fn drop);
/* The fingerprint: n and up to 64 values spread over the array, bitwise. */
uint64_t vm_wcache_tag(const float *host, size_t n);

#ifdef __cplusplus
}
#endif
#endif
