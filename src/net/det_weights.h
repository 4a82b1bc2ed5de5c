/* det_weights.h - deterministic random weights for the Mask R-CNN heads of
 * the benchmark preset (a checkpoint's come from vm_model_weights).
 * Internal. */
#ifndef VM_NET_DET_WEIGHTS_H
#define VM_NET_DET_WEIGHTS_H

#include <stdint.h>

#include "net/head.h"

typedef struct det_src det_src;

/* Random tensors with the shapes of mmdet's Mask R-CNN heads. */
det_src *det_src_random(const int Cin[4], int F, int fc_hidden, int ncls, int Cm, uint64_t seed);
const vm_weights_src *det_src_weights(det_src *s);
void det_src_close(det_src *s);

#endif
