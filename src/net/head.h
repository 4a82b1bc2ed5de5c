/* head.h - the module interface every head follows (classifier, UPerNet,
 * Mask R-CNN's FPN/RPN/RoI heads). Internal to libvmamba.
 *
 * Life cycle, and who owns what:
 *   bind    at model load: read and fold weights (BatchNorm into convs),
 *           pack them once; the result is immutable and shared by every
 *           thread that uses the model.
 *   plan    per context and input shape, on one of the context's backends
 *           (src/ops/backend.h: the CPU's oneDNN primitives on the
 *           context's stream and scratchpad, or CUDA): ops planned for the
 *           shape and buffers in that backend's memory. Mutable, owned by
 *           one context (one thread at a time).
 *   forward reads the backbone's four feature maps (NHWC, in the plan's
 *           backend memory: the context's arena on the CPU) and writes the
 *           head's output (host memory).
 *   free    plan_free per context, free with the model.
 */
#ifndef VM_NET_HEAD_H
#define VM_NET_HEAD_H

#include <stddef.h>
#include <stdint.h>

#include "../ops/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One float32 tensor by name, contiguous row-major (PyTorch order). */
typedef struct {
    const float *data;
    int ndim;
    int64_t shape[4];
} vm_tensor_view;

/* Where a head finds its weights: a name -> tensor lookup (the loaded
 * checkpoint's tensors, with the checkpoint's full key names such as
 * "decode_head.conv_seg.weight"). get returns 0 and fills *out, or -1 when
 * the name is absent or not a float tensor. The data stays valid until
 * the source is closed (bind copies what it keeps). */
typedef struct vm_weights_src {
    void *user;
    int (*get)(void *user, const char *name, vm_tensor_view *out);
    const char *path;             /* for error messages */
    /* Optional (NULL: no int8 tensors): an int8 tensor by name (a
     * calibrated model's head convolution weights, s8 with a
     * "<prefix>.weight_scale" per output channel beside it). 0 and *data,
     * ndim, shape filled, or -1 when absent or not int8. */
    int (*get_i8)(void *user, const char *name, const int8_t **data, int *ndim, int64_t shape[4]);
} vm_weights_src;

/* The backbone's four feature maps for one batch, NHWC: data[i] holds
 * (B, H[i], W[i], C[i]) float32, in the memory of the backend the head
 * was planned on. */
typedef struct {
    int B;
    int C[4], H[4], W[4];
    const float *data[4];
} vm_feats;

typedef struct vm_head vm_head;            /* immutable, bound weights */

/* Every head's bound struct starts with a vm_head_id that bind fills from
 * vm_head_id_next(): a process-wide number never given twice. A context
 * keeps its head plans under (pointer, id), so a head freed and another
 * bound at the same address is never served the first one's stale plan. */
typedef struct {
    uint64_t id;
} vm_head_id;
uint64_t vm_head_id_next(void);
#define VM_HEAD_ID(h) (((const vm_head_id *)(const void *)(h))->id)
typedef struct vm_head_plan vm_head_plan;  /* per context and shape    */

typedef struct vm_head_ops {
    const char *name;                      /* "classifier", "upernet", "maskrcnn" */
    /* Bind the weights under `prefix` (e.g. "decode_head."); sizes come from
     * the weight shapes. Returns NULL with a message naming src->path. */
    vm_head *(*bind)(const vm_weights_src *src, const char *prefix, char *err, size_t errlen);
    /* Ops and buffers for these feature shapes on backend be (which
     * outlives the plan). */
    vm_head_plan *(*plan)(const vm_head *h, vm_be *be, const vm_feats *shape, char *err, size_t errlen);
    /* Run; `out` is head-specific (logits, a result object...). */
    int (*forward)(const vm_head *h, vm_head_plan *p, const vm_feats *in, void *out, char *err, size_t errlen);
    void (*plan_free)(vm_head_plan *p);
    void (*free)(vm_head *h);
} vm_head_ops;

#ifdef __cplusplus
}
#endif
#endif
