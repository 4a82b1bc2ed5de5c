/* det_post.h - the detection post-processing kernels of Mask R-CNN
 * (mmdet 3.x / mmcv 2.x semantics), each with a plain scalar reference the
 * tests compare the fast variant with. Boxes are x1,y1,x2,y2 float32 in
 * pixels, continuous coordinates (pixel i covers [i, i+1)). */
#ifndef VM_DET_POST_H
#define VM_DET_POST_H

#include <stddef.h>
#include <stdint.h>

#include "vmamba.h" /* vm_det_mask */

/* ---- nms.c ---------------------------------------------------------------
 * mmcv nms_cpu: order = scores descending (stable: equal scores keep index
 * order); greedily keep i and suppress every later j with IoU > thr
 * (strict), IoU = inter / (area_i + area_j - inter), all in float32.
 * keep receives the kept indices in that order; returns their count, or -1
 * when out of memory. */
int vm_nms(const float *boxes, const float *scores, int n, float iou_thr, int *keep);
int vm_nms_ref(const float *boxes, const float *scores, int n, float iou_thr, int *keep);
/* mmcv batched_nms: boxes of different idxs never suppress each other.
 * Below 10000 boxes mmcv offsets each box by idx * (max coordinate + 1)
 * (float32 adds, so IoUs carry the same rounding); at 10000 or more it
 * runs nms per idx and sorts the union by score. Same return as vm_nms. */
int vm_batched_nms(const float *boxes, const float *scores, const int *idxs, int n, float iou_thr, int *keep);

/* ---- bbox.c --------------------------------------------------------------
 * mmdet delta2bbox for one box: deltas * stds (means 0), |dw|,|dh| clamped
 * to |log(16/1000)|, decoded around the box centre, clipped to
 * [0,max_w] x [0,max_h]. */
void vm_delta2bbox(const float roi[4], const float d[4], const float stds[4], float max_w, float max_h, float out[4]);
/* mmdet AnchorGenerator (one scale, ratios r[0..nr), centre offset 0) for a
 * H x W level of stride s, in (y, x, ratio) order: out (H*W*nr, 4). */
void vm_anchors(int H, int W, int stride, float scale, const float *ratios, int nr, float *out);
/* torch.sort(descending)[:k] order of n scores, stable; idx receives the
 * first min(k,n) indices. Returns that count, -1 when out of memory. */
int vm_topk_desc(const float *scores, int n, int k, int *idx);

/* ---- roi_align.c ---------------------------------------------------------
 * mmcv/torchvision RoIAlign (avg, aligned=True: coordinates * scale - 0.5;
 * sampling_ratio 0 = ceil(roi size / out size) samples per bin) of one box
 * on an NHWC (H, W, C) map. out: (out_h, out_w, C). */
void vm_roi_align(const float *feat, int H, int W, int C, const float box[4], float spatial_scale, int out_h,
                  int out_w, int sampling_ratio, float *out);
/* The scalar reference, torchvision's loop per channel on an NCHW map;
 * out: (C, out_h, out_w). */
void vm_roi_align_ref(const float *feat_chw, int H, int W, int C, const float box[4], float spatial_scale, int out_h,
                      int out_w, int sampling_ratio, float *out);
/* mmdet SingleRoIExtractor level: floor(log2(sqrt(w*h) / finest + 1e-6))
 * clamped to [0, nlevels-1]. */
int vm_roi_level(const float box[4], float finest_scale, int nlevels);

/* ---- mask_paste.c --------------------------------------------------------
 * One detection's mask, pasted the way mmdet's _do_paste_mask does on the
 * CPU (one box at a time, skip_empty): window x in [max(floor(x1)-1,0),
 * min(ceil(x2)+1,W)), same for y; grid_sample (bilinear, zeros,
 * align_corners False) of the M x M probabilities at the pixel centres;
 * value >= thr. The window and its bytes (0/1) are returned; pixels
 * outside are 0. */
int vm_paste_mask(const float *prob, int M, const float box[4], int img_h, int img_w, float thr, vm_det_mask *out);
/* Reference: the whole image through the literal grid_sample formula. */
void vm_paste_mask_ref(const float *prob, int M, const float box[4], int img_h, int img_w, float thr, uint8_t *full);

/* ---- coco_rle.c ----------------------------------------------------------
 * COCO compressed RLE (pycocotools maskApi rleEncode + rleToString) of an
 * img_h x img_w mask given as a window: column-major runs starting with a
 * run of zeros, delta-coded against the count two back, 5 bits per char
 * + 48. vm_rle_encode (public, vmamba.h) returns a malloc'd string. */
/* Decode (rleFrString + rleDecode) into full (img_h * img_w, row-major);
 * returns 0, or -1 when the string is malformed or the runs do not add up. */
int vm_rle_decode(const char *s, int img_h, int img_w, uint8_t *full);

#endif
