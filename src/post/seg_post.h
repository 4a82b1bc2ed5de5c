/* seg_post.h - the segmentation pipeline's pre- and postprocessing
 * (mmseg 1.2.2 test mode): normalise the resized BGR image, resize the
 * head's logits to the resized-image size and then to the original size
 * (two bilinear resizes, as mmseg), argmax (first maximum) to a uint8
 * label map; palette, overlay, class names. */
#ifndef VM_POST_SEG_POST_H
#define VM_POST_SEG_POST_H

#include <stddef.h>
#include <stdint.h>

#include "vmamba.h"

/* SegDataPreProcessor: x[c] = ((float)rgb[c] - mean[c]) / std[c] in float32
 * with mean (123.675, 116.28, 103.53), std (58.395, 57.12, 57.375), from a
 * BGR image (h, w, 3) into NCHW (1, 3, h, w). */
void vm_seg_normalize(const uint8_t *bgr, int w, int h, float *out);

/* logits (h4, w4, C) NHWC -> bilinear to (H1, W1) -> bilinear to (H0, W0)
 * -> labels[H0*W0] = first argmax over C (C <= 256). Rows are streamed
 * (nothing of size H*W*C is allocated) and split over OpenMP threads. If
 * row_cb is given it sees every final logits row (W0, C) NHWC, possibly
 * from several threads at once (distinct y). Returns 0, -1 out of memory. */
typedef void (*vm_seg_row_fn)(void *user, int y, const float *row);
int vm_seg_labels(const float *logits, int h4, int w4, int C, int H1, int W1, int H0, int W0, uint8_t *labels,
                  vm_seg_row_fn row_cb, void *user);

/* vm_seg_overlay, mmseg's SegLocalVisualizer overlay (alpha 0.5, no text;
 * computed in double), is public (vmamba.h). */

/* ADE20K (150 classes): name and RGB colour of label i, NULL outside. */
const char *vm_ade20k_class(int i);
const uint8_t *vm_ade20k_color(int i);

#endif
