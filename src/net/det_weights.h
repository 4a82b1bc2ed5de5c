/* det_weights.h - where the detection heads get their weights: an mmdet
 * checkpoint opened with full key names, or deterministic random tensors
 * for the benchmark preset. One small glue file, so that it can later be
 * swapped for the model's own weight table (the vm_ctx work). Internal. */
#ifndef VM_NET_DET_WEIGHTS_H
#define VM_NET_DET_WEIGHTS_H

#include <stdint.h>

#include "net/head.h"

typedef struct det_src det_src;

/* An mmdet checkpoint; key NULL = "state_dict". classes (may be NULL):
 * meta.dataset_meta.classes when the checkpoint has them. */
det_src *det_src_open(const char *path, const char *key, char *err, size_t errlen);
/* Random tensors with the shapes of mmdet's Mask R-CNN heads. */
det_src *det_src_random(const int Cin[4], int F, int fc_hidden, int ncls, int Cm, uint64_t seed);
const vm_weights_src *det_src_weights(det_src *s);
/* NULL-terminated list of the checkpoint's class names, or NULL. */
char **det_src_take_classes(det_src *s, int *n);
void det_src_close(det_src *s);

#endif
