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

/* The same, with the box head run on the given proposals (n, 5: x1 y1 x2 y2
 * score, resized frame) instead of the RPN's: a golden test compares the
 * box head against the reference's own proposals, not against ours (which
 * differ in the last bits, and the box head's logits are sensitive to that:
 * see tests/test_det.c golden_china_full_scale). */
vm_detections *vm_ctx_detect_tensor_given_proposals(vm_ctx *c, const vm_detector *d, const float *chw, int hp, int wp,
                                                    int img_h, int img_w, int ori_h, int ori_w, double scale_w,
                                                    double scale_h, const vm_detect_opts *o, det_trace_fn trace,
                                                    void *user, const float *props, int nprops);

#endif
