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

typedef enum { VM_CALIB_MINMAX, VM_CALIB_PERCENTILE, VM_CALIB_ENTROPY } vm_calib_method;

typedef struct {
    vm_calib_method method;
    double percentile;        /* e.g. 99.99, for VM_CALIB_PERCENTILE */
    const char *const *skip;  /* layer-name patterns (fnmatch) kept FP32 */
    int nskip;
    int int8_head;            /* quantize the classifier head too (off: its
                                 error lands on the logits unfiltered) */
    int int8_convs;           /* run the patch-embed and downsample
                                 convolutions as INT8 too (off: s8 storage,
                                 FP32 compute; see calibrate.c) */
} vm_calib_opts;

typedef struct vm_calib vm_calib;

/* SmoothQuant: first observe per-channel input maxima of the layers that
 * follow a LayerNorm (in_proj, MLP fc1), then migrate difficulty from
 * activations to weights: s_j = max|X_j|^alpha / max|W_:,j|^(1-alpha),
 * LayerNorm weight and bias divided by s, the layer's columns multiplied
 * by s (the FP32 model computes the same function, up to rounding). */
typedef struct vm_smooth vm_smooth;
vm_smooth *vm_smooth_begin(vm_model *m);
/* Fold the scales into m (stops observing). Returns the layers smoothed,
 * or -1 (nothing changed; vm_model_error says why) when memory for the
 * statistics ran out during the forward passes. */
int vm_smooth_apply(vm_smooth *s, double alpha);
void vm_smooth_free(vm_smooth *s);

/* Start observing m's linear-layer inputs (through vm_forward: the model's
 * internal context); run forward passes, then write. m must be private to
 * the caller: it is turned back to plain weights. NULL if m is in use by
 * contexts (see vm_model_error). vm_smooth_begin likewise. */
vm_calib *vm_calib_begin(vm_model *m, const vm_calib_opts *o);
/* A head convolution's input (dense heads: UPerHead), seen by the caller
 * running the head: NHWC rows x cols, under the convolution's checkpoint
 * prefix ("decode_head.bottleneck.conv"). vm_calib_write then stores that
 * convolution's weight as s8 per output channel with the observed input
 * scale (an INT8 convolution), unless a --skip pattern matches it. Heads
 * not observed are written FP32 as loaded. */
void vm_calib_observe(vm_calib *c, const char *layer, const float *x, size_t rows, int cols);
/* calib_dense.c - one calibration input of a segmentation, detection or
 * backbone-only model (m is the model given to vm_calib_begin): the
 * backbone on the input, then, when uper is given (a UPerHead bound from
 * m's weights), the head with every convolution's input observed. The
 * image form runs the task's test pipeline on a photo: OpenCV decode,
 * keep-ratio resize to fit sw x sh, normalise, and for detection (pad32)
 * zero padding to multiples of 32. 0, or -1 with err. */
int vm_calib_dense_tensor(vm_calib *c, vm_model *m, const vm_head *uper, const float *chw, int H, int W, char *err,
                          size_t errlen);
int vm_calib_dense_image(vm_calib *c, vm_model *m, const vm_head *uper, const char *path, int pad32, int sw, int sh,
                         char *err, size_t errlen);
/* Stop observing; write the INT8 model with metadata_json (may be NULL).
 * -1 with an "out of memory" error (and no file) when memory for the
 * statistics ran out during the forward passes or runs out here. */
int vm_calib_write(vm_calib *c, const char *path, const char *metadata_json, char *err, size_t errlen);
/* Each layer's error on the first calibration batch: cosine and relative
 * L2 of its INT8 output against FP32. */
void vm_calib_report(vm_calib *c, FILE *f);
int vm_calib_layers(const vm_calib *c);
void vm_calib_free(vm_calib *c);

#endif
