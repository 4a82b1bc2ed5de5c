/* upernet.h - mmseg's UPerHead (decode_head of the VMamba segmentation
 * checkpoints) as a head module (net/head.h). forward's `out` is float
 * logits (B, H0, W0, classes) NHWC at the level-0 feature size. */
#ifndef VM_NET_HEADS_UPERNET_H
#define VM_NET_HEADS_UPERNET_H

#include "../head.h"

extern const vm_head_ops vm_upernet_ops;

int vm_upernet_classes(const vm_head *h);
int vm_upernet_channels(const vm_head *h);

/* Tests: called with every intermediate of the first image, NHWC, under
 * the golden's names (ppm1.., bottleneck_in, psp_out, lateral0..,
 * fpn_in0.., fpn_out0.., fpn_bottleneck_in, fused). */
typedef void (*vm_head_dbg_fn)(void *user, const char *name, const float *nhwc, int H, int W, int C);
void vm_upernet_set_debug(vm_head_plan *p, vm_head_dbg_fn fn, void *user);
/* Calibration: called with every convolution's input (NHWC, hw pixels of
 * C channels) under the convolution's checkpoint prefix
 * ("decode_head.fpn_convs.0.conv", "decode_head.conv_seg"). */
typedef void (*vm_head_obs_fn)(void *user, const char *conv, const float *nhwc, size_t hw, int C);
void vm_upernet_set_observe(vm_head_plan *p, vm_head_obs_fn fn, void *user);
/* Convolutions bound as INT8 (a calibrated model), of all. */
int vm_upernet_int8_convs(const vm_head *h, int *total);

#endif
