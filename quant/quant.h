/* quant.h - INT8 post-training quantization: observe the FP32 model on
 * calibration inputs, choose scales, and write the INT8 model file.
 *
 * Scheme: weights s8, symmetric, per output channel (scale = max|w|/127);
 * activations u8, asymmetric, per tensor (scale and zero point from the
 * observed range, which always includes 0). Quantized: every linear layer
 * (in_proj, out_proj, MLP fc1/fc2, v1 downsample reduction, head) as real
 * INT8 matmuls; the head and the convolutions are stored as s8 and run in
 * FP32 unless asked (int8_head, int8_convs: INT8 matmul / convolution
 * kernels), as their error is the largest per MAC saved. The selective scan, x_proj /
 * dt_proj, LayerNorms, softplus/exp and residual adds stay FP32.
 * Dense-prediction models (calib_dense.c): the heads' tensors are written
 * as loaded (FP32), except the UPerHead convolutions whose inputs were
 * observed (vm_calib_observe): s8 per output channel + input scale, run as
 * INT8 convolutions with the BatchNorm folded into the scales at bind. */
#ifndef VM_QUANT_H
#define VM_QUANT_H

#include <stdio.h>

#include "model/model.h"

/* The calibration API (vm_calib_opts, vm_calib_begin/write/report/layers/
 * free, vm_smooth_begin/apply/free, and the dense models' vm_calib_dense_*)
 * is public: see include/vmamba.h. This header is the library's side of it. */

/* A head convolution's input (dense heads: UPerHead), seen by the caller
 * running the head: NHWC rows x cols, under the convolution's checkpoint
 * prefix ("decode_head.bottleneck.conv"). vm_calib_write then stores that
 * convolution's weight as s8 per output channel with the observed input
 * scale (an INT8 convolution), unless a skip pattern matches it. Heads
 * not observed are written FP32 as loaded. */
void vm_calib_observe(vm_calib *c, const char *layer, const float *x, size_t rows, int cols);

/* A photo through d's test pipeline: a malloc'd (3, *H, *W) input, or
 * NULL with a message naming the file in err. */
float *vm_calib_dense_input(const vm_calib_dense *d, const char *path, int *H, int *W, char *err, size_t errlen);

/* Mixed precision (calib_mixed.c): stop observing (the model runs FP32
 * reference passes), the model, the backbone's quantised units (malloc'd
 * names; count, or -1 out of memory), and the units vm_calib_write keeps
 * FP32 with the search's record for the file's "quantization" metadata
 * (copied; 0, or -1 out of memory with nothing changed). */
void vm_calib_stop(vm_calib *c);
vm_model *vm_calib_model(const vm_calib *c);
int vm_calib_units(const vm_calib *c, char ***units);
int vm_calib_set_fp32(vm_calib *c, const char *const *units, int n, const char *json);

#endif
