/* detector.h - internals of the public vm_detector (include/vmamba.h):
 * the traced entry the golden tests use. Internal to libvmamba. */
#ifndef VM_NET_DETECTOR_H
#define VM_NET_DETECTOR_H

#include "vmamba.h"
#include "net/heads/maskrcnn.h"

/* vm_detect_tensor with every intermediate handed to trace (see
 * maskrcnn.h for the names and layouts; "backbone_feat%d" are NHWC). */
vm_detections *vm_detect_tensor_traced(vm_detector *d, const float *chw, int hp, int wp, int img_h, int img_w,
                                       int ori_h, int ori_w, double scale_w, double scale_h, const vm_detect_opts *o,
                                       det_trace_fn trace, void *user);

/* Run the heads on another backbone of the same widths (e.g. the INT8 model
 * `vmamba calibrate` wrote from this checkpoint's backbone); the detector
 * takes ownership of bb on success. */
int vm_detector_use_backbone(vm_detector *d, vm_model *bb, char *err, size_t errlen);

#endif
