/* dense.h - float kernels of the dense-prediction heads, NHWC:
 * PyTorch's bilinear interpolation (align_corners=False) and adaptive
 * average pooling. Each has a plain scalar reference (*_ref) and a
 * threaded/vectorised variant tested against it. */
#ifndef VM_OPS_DENSE_H
#define VM_OPS_DENSE_H

#include <stddef.h>

/* One axis of F.interpolate(mode='bilinear', align_corners=False) with an
 * output size, PyTorch 1.13 CPU: scale = (float)in/out (float32), src =
 * scale*(d + 0.5) - 0.5 in double, clamped at 0; i0 = (int)src, i1 = i0+1
 * unless at the last index; l1 = (float)(src - i0), l0 = 1 - l1. */
typedef struct {
    int n;
    int *i0, *i1;
    float *l0, *l1;
} vm_bilin_axis;
void vm_bilin_axis_make(vm_bilin_axis *a, int in, int out);
void vm_bilin_axis_free(vm_bilin_axis *a);

/* in (H, W, C) with pixel stride ldi -> out (OH, OW, C) with pixel stride
 * ldo (so out may be a channel slice of a concatenation). Per element, in
 * float32: (x00*lw0 + x01*lw1)*lh0 + (x10*lw0 + x11*lw1)*lh1; when
 * accumulate, out += that (a top-down `L + up(...)`). Same size copies. */
void vm_bilinear_nhwc_ref(const float *in, int H, int W, int C, int ldi, float *out, int OH, int OW, int ldo,
                          int accumulate);
void vm_bilinear_nhwc(const float *in, int H, int W, int C, int ldi, float *out, int OH, int OW, int ldo,
                      int accumulate);

/* One output row of the interpolation from two horizontally interpolated
 * source rows (for callers that stream rows, e.g. logits -> label map):
 * hrow = x[h, w0]*lw0 + x[h, w1]*lw1 over the OW*C row. */
void vm_bilin_hrow(const float *src_row, int C, int ldi, const vm_bilin_axis *x, float *hrow);
void vm_bilin_vrow(const float *h0, const float *h1, float lh0, float lh1, size_t n, float *out);

/* nn.AdaptiveAvgPool2d(s): bin i covers [floor(i*H/s), ceil((i+1)*H/s)),
 * same for columns; mean = sum / kh / kw (PyTorch's order). in (H,W,C)
 * dense -> out (s, s, C). */
void vm_adaptive_avgpool_nhwc_ref(const float *in, int H, int W, int C, int s, float *out);
void vm_adaptive_avgpool_nhwc(const float *in, int H, int W, int C, int s, float *out);

#endif
