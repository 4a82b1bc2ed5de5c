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
 * dt_proj, LayerNorms, softplus/exp and residual adds stay FP32. */
#ifndef VM_QUANT_H
#define VM_QUANT_H

#include <stdio.h>

#include "model/model.h"

/* The calibration API (vm_calib_opts, vm_calib_begin/write/report/layers/
 * free, vm_smooth_begin/apply/free) is public: see include/vmamba.h. This
 * header is the library's side of it. */

#endif
