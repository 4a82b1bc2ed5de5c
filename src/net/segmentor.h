/* segmentor.h - semantic segmentation as mmseg's EncoderDecoder in test
 * mode: OpenCV decode (caller) -> keep-ratio INTER_LINEAR resize ->
 * normalise -> backbone -> UPerHead -> two bilinear resizes -> argmax.
 * A segmentor holds the model and its per-shape plans: one thread at a
 * time uses it (until the ctx branch gives per-thread contexts). */
#ifndef VM_NET_SEGMENTOR_H
#define VM_NET_SEGMENTOR_H

#include <stddef.h>
#include <stdint.h>

#include "image/image.h"
#include "post/seg_post.h"

typedef struct vm_segmentor vm_segmentor;

/* Largest resized image the network is run on (64 Mpixel, 32x mmseg's). */
#define VM_SEG_MAX_INPUT_PIXELS (1ull << 26)

/* An mmseg checkpoint (backbone.* + decode_head.*). A classifier or
 * backbone-only file is refused with a message naming what is missing. */
vm_segmentor *vm_segmentor_load(const char *path, char *err, size_t errlen);
/* Random weights: "upernet-vmamba-tiny" (VMamba-T s1l8 backbone, dims 96,
 * depths 2,2,8,2; UPerHead channels 512, 150 classes), for benchmarks. */
vm_segmentor *vm_segmentor_from_preset(const char *name, uint64_t seed, char *err, size_t errlen);
void vm_segmentor_free(vm_segmentor *s);
int vm_segmentor_classes(const vm_segmentor *s);
/* Class names and palette: the checkpoint's meta.dataset_meta when it has
 * one entry per class, else ADE20K's for 150 classes, else NULL names and a
 * grey ramp. The palette holds classes * 3 RGB values. */
const char *vm_segmentor_class_name(const vm_segmentor *s, int i);
const uint8_t *vm_segmentor_palette(const vm_segmentor *s);

/* Stage outputs and timings of one run (all optional; free with
 * vm_seg_trace_free). keep = 1 keeps the buffers. */
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

/* Segment one BGR image (w0 x h0, e.g. from vm_cv_load) at --scale sw,sh:
 * labels receives (h0, w0) class indices. row_cb (optional) sees every
 * final logits row. Returns 0 or -1 with a message. */
int vm_segmentor_run(vm_segmentor *s, const vm_image *bgr, int sw, int sh, uint8_t *labels, vm_seg_row_fn row_cb,
                     void *user, vm_seg_trace *trace, char *err, size_t errlen);

/* Run only the head on given NHWC features (tests), into logits4. */
struct vm_head_plan;
int vm_segmentor_head(vm_segmentor *s, const float *const feats[4], const int C[4], const int H[4], const int W[4],
                      float *logits4, void (*dbg)(void *, const char *, const float *, int, int, int), void *dbg_user,
                      char *err, size_t errlen);

#endif
