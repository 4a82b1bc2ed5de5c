/* dataset_meta.h - class names and palette from an mmengine checkpoint's
 * meta.dataset_meta ({'classes': tuple of str, 'palette': [[r,g,b], ...]}),
 * read from the pickle without executing anything. */
#ifndef VM_NET_DATASET_META_H
#define VM_NET_DATASET_META_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int n;            /* classes, 0 when the file has none */
    char **names;     /* n strings */
    uint8_t *palette; /* n * 3 (RGB), or NULL when absent or malformed */
} vm_dataset_meta;

/* Fills m (zeroed when the file has no usable meta): a file without meta
 * is normal and returns 0. Returns -1 with an "out of memory" error (m
 * zeroed) only when memory for the names or palette runs out. */
int vm_dataset_meta_read(const char *path, vm_dataset_meta *m, char *err, size_t errlen);
void vm_dataset_meta_free(vm_dataset_meta *m);
/* The same carried in a model file's "vmamba" metadata (an INT8 file from
 * `vmamba calibrate`): json's "dataset_meta" object {"classes": [str...],
 * "palette": [[r,g,b]...]}. m zeroed when absent or malformed; -1 only when
 * memory runs out. */
int vm_dataset_meta_from_json(const char *json, vm_dataset_meta *m);
/* m as that object's JSON text (malloc'd), or NULL (no classes, or out of
 * memory). */
char *vm_dataset_meta_to_json(const vm_dataset_meta *m);

#endif
