/* segmentor.h - semantic segmentation as mmseg's EncoderDecoder in test
 * mode: OpenCV decode (caller) -> keep-ratio INTER_LINEAR resize ->
 * normalise -> backbone (vm_ctx_backbone) -> UPerHead (planned per context)
 * -> two bilinear resizes -> argmax. A vm_segmentor is immutable after load
 * and shared; per-call state lives in the vm_ctx. Public part in vmamba.h. */
#ifndef VM_NET_SEGMENTOR_H
#define VM_NET_SEGMENTOR_H

#include <stddef.h>
#include <stdint.h>

#include "vmamba.h"
#include "image/image.h"
#include "post/seg_post.h"

/* Largest resized image the network is run on (64 Mpixel, 32x mmseg's). */
#define VM_SEG_MAX_INPUT_PIXELS (1ull << 26)

/* vm_segmentor_from_preset ("upernet-vmamba-tiny": VMamba-T s1l8 backbone,
 * dims 96, depths 2,2,8,2; UPerHead channels 512, 150 classes) is public. */

/* Stage outputs and timings of one run (all optional; free with
 * vm_seg_trace_free). keep = 1 keeps copies of the buffers. */
typedef struct {
    int keep;
    int w1, h1;                 /* resized image size */
    uint8_t *resized;           /* (h1, w1, 3) BGR */
    float *input;               /* (3, h1, w1) normalised RGB */
    int fC[4], fH[4], fW[4];
    float *feats[4];            /* NHWC */
    int h4, w4, classes;
    float *logits4;             /* (h4, w4, classes) NHWC */
    double ms_resize, ms_backbone, ms_head, ms_post;
} vm_seg_trace;
void vm_seg_trace_free(vm_seg_trace *t);

/* vm_ctx_segment with a BGR vm_image, an optional callback seeing every
 * final logits row (W0, classes), and an optional trace. */
int vm_ctx_segment_image(vm_ctx *c, const vm_segmentor *s, const vm_image *bgr, int sw, int sh, uint8_t *labels,
                         vm_seg_row_fn row_cb, void *user, vm_seg_trace *trace);

/* Tests: the head alone on given NHWC features (its own plan, no context),
 * dbg seeing every intermediate. */
int vm_segmentor_head(const vm_segmentor *s, const float *const feats[4], const int C[4], const int H[4], const int W[4],
                      float *logits4, void (*dbg)(void *, const char *, const float *, int, int, int), void *dbg_user,
                      char *err, size_t errlen);

#endif
