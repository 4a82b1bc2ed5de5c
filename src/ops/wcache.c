/* wcache.c - the per-backend weight cache (see wcache.h). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "wcache.h"

uint64_t vm_wcache_tag(const float *host, size_t n) {
    uint64_t h = 1469598103934665603ull ^ (uint64_t)n; /* FNV-1a */
    size_t step = n > 64 ? n / 64 : 1;
    for (size_t i = 0; i < n; i += step) {
        uint32_t v;
        memcpy(&v, host + i, sizeof v);
        h = (h ^ v) * 1099511628211ull;
    }
    if (n) { /* the last value too */
        uint32_t v;
        memcpy(&v, host + n - 1, sizeof v);
        h = (h ^ v) * 1099511628211ull;
    }
    return h;
}

float *vm_wcache_get(vm_wcache *wc, vm_be *be, const float *host, size_t n, int layout, vm_wcache_make_fn make,
                     void *user, vm_wcache_drop_fn drop) {
    uint64_t tag = vm_wcache_tag(host, n);
    for (int i = 0; i < wc->n; i++) {
        vm_wcache_entry *e = &wc->e[i];
        if (e->host != host || e->n != n || e->layout != layout) continue;
        if (e->tag == tag) {
            e->refs++;
            return e->dev;
        }
        if (e->refs == 0) { /* another array now lives at this address */
            drop(be, e->dev);
            wc->e[i--] = wc->e[--wc->n];
        }
    }
    if (wc->n == wc->cap) {
        int cap = wc->cap ? 2 * wc->cap : 32;
        vm_wcache_entry *ne = realloc(wc->e, sizeof *ne * (size_t)cap);
        if (!ne) {
            snprintf(be->err, sizeof be->err, "out of memory for the weight cache");
            return NULL;
        }
        wc->e = ne;
        wc->cap = cap;
    }
    float *dev = make(be, host, n, layout, user);
    if (!dev) return NULL;
    wc->e[wc->n++] = (vm_wcache_entry){host, n, layout, tag, dev, 1};
    wc->copies++;
    return dev;
}

int vm_wcache_put(vm_wcache *wc, const float *dev) {
    if (!dev) return 0;
    for (int i = 0; i < wc->n; i++)
        if (wc->e[i].dev == dev) {
            if (wc->e[i].refs > 0) wc->e[i].refs--;
            return 0;
        }
    return -1;
}

void vm_wcache_clear(vm_wcache *wc, vm_be *be, vm_wcache_drop_fn drop) {
    for (int i = 0; i < wc->n; i++) drop(be, wc->e[i].dev);
    free(wc->e);
    memset(wc, 0, sizeof *wc);
}
