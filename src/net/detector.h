/* detector.h - internals of the public vm_detector (include/vmamba.h):
 * the traced entry the golden tests use. Internal to libvmamba. */
#ifndef VM_NET_DETECTOR_H
#define VM_NET_DETECTOR_H

#include "vmamba.h"
#include "net/heads/maskrcnn.h"

/* vm_ctx_detect_tensor with every intermediate handed to trace (see
 * maskrcnn.h for the names and layouts). */
vm_detections *vm_ctx_detect_tensor_traced(vm_ctx *c, const vm_detector *d, const float *chw, int hp, int wp, int img_h,
                                           int img_w, int ori_h, int ori_w, double scale_w, double scale_h,
                                           const vm_detect_opts *o, det_trace_fn trace, void *user);

/* What a golden test feeds a stage instead of our own upstream result, so
 * that each stage is compared on the reference's input: ours agree only
 * within the 1e-3 px box tolerance, and the heads' logits are sensitive to
 * the last bits of a box (see tests/test_det.c golden_china_full_scale).
 * NULL pointers: our own. */
typedef struct {
    const float *props;  /* the box head runs on these (nprops, 5: x1 y1 x2 y2 score, resized frame) */
    int nprops;
    const float *dets;   /* the mask head runs on these (ndets, 4: resized frame) */
    const int *labels;   /* with these labels; ndets must equal the box head's count */
    int ndets;
} det_given;

/* vm_ctx_detect_tensor_traced with stages fed from g (may be NULL). */
vm_detections *vm_ctx_detect_tensor_given(vm_ctx *c, const vm_detector *d, const float *chw, int hp, int wp, int img_h,
                                          int img_w, int ori_h, int ori_w, double scale_w, double scale_h,
                                          const vm_detect_opts *o, det_trace_fn trace, void *user, const det_given *g);

#endif
