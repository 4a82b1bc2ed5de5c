/* resize_cv.h - mmcv's keep-ratio rescale rule and OpenCV 4.6's
 * cv::resize(INTER_LINEAR) on uint8, bit-exact (the mmcv/mmseg/mmdet test
 * pipelines' Resize). Pixels are interleaved, cn channels (BGR: 3). */
#ifndef VM_RESIZE_CV_H
#define VM_RESIZE_CV_H

#include <stdint.h>

/* mmcv.imrescale(keep_ratio=True) size: f = min(max(scale)/max(h,w),
 * min(scale)/min(h,w)) in double, w1 = int(w*f + 0.5), h1 = int(h*f + 0.5).
 * Returns f. */
double vm_cv_rescale_size(int w, int h, int scale_w, int scale_h, int *w1, int *h1);

/* cv::resize(src, (ow, oh), INTER_LINEAR) for uint8: 11-bit fixed-point
 * coefficients, OpenCV's SIMD vertical rounding; same size copies, an
 * exact 2x reduction in both axes averages 2x2 blocks (OpenCV switches to
 * INTER_AREA there). Plain scalar reference, one thread. */
void vm_cv_resize_linear_ref(const uint8_t *src, int w, int h, int cn, uint8_t *dst, int ow, int oh);
/* The same result, rows split over OpenMP threads (tested equal). */
void vm_cv_resize_linear(const uint8_t *src, int w, int h, int cn, uint8_t *dst, int ow, int oh);

#endif
