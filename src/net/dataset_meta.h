/* dataset_meta.h - class names and palette from an mmengine checkpoint's
 * meta.dataset_meta ({'classes': tuple of str, 'palette': [[r,g,b], ...]}),
 * read from the pickle without executing anything. */
#ifndef VM_NET_DATASET_META_H
#define VM_NET_DATASET_META_H

#include <stdint.h>

typedef struct {
    int n;            /* classes, 0 when the file has none */
    char **names;     /* n strings */
    uint8_t *palette; /* n * 3 (RGB), or NULL when absent or malformed */
} vm_dataset_meta;

/* Fills m (zeroed when the file has no usable meta); never fails hard:
 * a file without meta is normal. */
void vm_dataset_meta_read(const char *path, vm_dataset_meta *m);
void vm_dataset_meta_free(vm_dataset_meta *m);

#endif
