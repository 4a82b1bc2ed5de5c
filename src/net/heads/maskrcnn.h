/* maskrcnn.h - mmdet's Mask R-CNN heads on the backbone's NHWC features,
 * one file per pipeline step:
 *   fpn.c        lateral 1x1 convs, top-down nearest adds, 3x3 convs, P6
 *   rpn.c        RPN conv + objectness/deltas, anchors, top-k, NMS -> proposals
 *   roi_heads.c  RoIAlign 7x7, Shared2FC box head, per-class decode, NMS
 *   mask_head.c  RoIAlign 14x14, FCN mask head, deconv, paste
 *   maskrcnn.c   bind / plan / forward / free (net/head.h module)
 * Internal to libvmamba. */
#ifndef VM_NET_MASKRCNN_H
#define VM_NET_MASKRCNN_H

#include <stddef.h>
#include <stdint.h>

#include "net/head.h"
#include "vmamba.h"

#define DET_LEVELS 5   /* P2..P6 */
#define DET_ROI_LEVELS 4
#define DET_MAX_MASK_CONVS 8

typedef struct {
    int cout, cin, k;
    float *w;          /* OIHW */
    float *b;          /* cout */
} det_conv_w;

/* Bound weights: immutable, shared. */
typedef struct {
    vm_head_id hid;              /* first (net/head.h) */
    int Cin[4], F;               /* backbone widths, FPN width */
    det_conv_w lateral[4], fpn[4];
    int A;                       /* anchors per location */
    det_conv_w rpn_conv;
    det_conv_w rpn_out;          /* objectness (A) and deltas (4A) fused: A + 4A outputs */
    int roi_out, fc_hidden, ncls;  /* 7, 1024, 80 */
    float *fc0_w, *fc0_b;        /* (hidden, 49*F) reordered to (ph, pw, c) inputs */
    float *fc1_w, *fc1_b;
    float *cls_w, *cls_b;        /* (ncls + 1, hidden) */
    float *reg_w, *reg_b;        /* (4 ncls, hidden) */
    int nmask_convs, Cm, mask_roi;  /* 4, 256, 14 */
    det_conv_w mconv[DET_MAX_MASK_CONVS];
    float *up_w, *up_b;          /* deconv k2 s2 as a GEMM: (4 Cm, Cm) rows (i, j, co) */
    float *logit_w, *logit_b;    /* (ncls, Cm) */
} det_weights;

/* A grow-only buffer in a plan's backend memory. */
typedef struct {
    float *p;
    size_t n;
} det_buf;
/* b's buffer with room for n floats (its contents are not kept when it
 * grows); NULL when out of memory. det_buf_free: with the plan. */
float *det_buf_grow(vm_be *be, det_buf *b, size_t n);
void det_buf_free(vm_be *be, det_buf *b);

/* Per context and input shape, on one backend (src/ops/backend.h): the
 * convolutions and FCs run there; RPN decoding, NMS, RoIAlign and pasting
 * stay on the host and read host views of P2..P6 and the RPN outputs. */
typedef struct {
    vm_be *be;
    int H[DET_LEVELS], W[DET_LEVELS];
    vm_be_conv *lateral[4], *fpn[4], *rpn_conv[DET_LEVELS], *rpn_out[DET_LEVELS];
    float *lat[4], *P[DET_LEVELS], *rpn_o[DET_LEVELS]; /* backend memory */
    float *Ph[DET_LEVELS], *rpn_oh[DET_LEVELS];        /* host views (the same buffers on a host backend) */
    float *rpn_t;                /* aliases lat[0] (largest level) */
    /* the FC and deconvolution weights as the backend holds them */
    const float *fc0_w, *fc0_b, *fc1_w, *fc1_b, *cls_w, *cls_b, *reg_w, *reg_b, *up_w;
    const float *up_b, *logit_w, *logit_b; /* off the host with be->mask_logits only; else NULL */
    /* the box head's backend buffers, grown (never shrunk) to the largest
     * proposal count seen: no device allocation per image */
    det_buf bx_h1, bx_h2, bx_feats, bx_cls, bx_reg;
    /* the mask head's (conv ping-pong, deconvolution output), likewise */
    det_buf mk_a, mk_b, mk_up, mk_logit;
    /* mask convs for the last detection count */
    int mask_n;
    vm_be_conv *mconv[DET_MAX_MASK_CONVS];
} det_plan;

/* Intermediates for tests: name, data, up to 4 dims (unused = 1), in
 * this module's layout (NHWC maps, row-major tables):
 *   backbone_feat0..3 (1,H,W,C)    fpn_p2..p6 (1,H,W,F)
 *   rpn_out_l0..4 (1,H,W,A+4A): objectness of anchor a at channel a, its
 *                 deltas dx,dy,dw,dh at A+4a..A+4a+3
 *   proposals (P,5)                bbox_roi_feats (P,7,7,F)
 *   bbox_cls_logits (P,ncls+1)     bbox_reg (P,4 ncls)
 *   dets_resized (N,4)             mask_roi_feats (N,14,14,F)
 *   mask_logits (N,28,28)  (the detection's own class) */
typedef void (*det_trace_fn)(void *user, const char *name, const float *data, int n0, int n1, int n2, int n3);

/* What forward needs besides the features, and what it returns. */
typedef struct {
    int img_h, img_w;            /* resized, unpadded */
    int ori_h, ori_w;
    double scale_w, scale_h;
    vm_detect_opts opts;
    det_trace_fn trace;
    void *trace_user;
    vm_detections *out;          /* filled: count, boxes, scores, labels, masks, ms_* */
    const float *given_props;    /* tests: the box head runs on these (n, 5) instead of the RPN's */
    int n_given_props;
    const float *given_dets;     /* tests: the mask head runs on these boxes (n, 4, resized frame) */
    const int *given_labels;     /* and labels instead of the box head's (same count) */
    int n_given_dets;
} det_io;

extern const vm_head_ops vm_maskrcnn_head_ops;

/* Pipeline steps (explicit sizes; w bound, p planned). */
int det_fpn_forward(const det_weights *w, det_plan *p, const vm_feats *in);
int det_rpn_forward(const det_weights *w, det_plan *p);
/* Proposals (n, 5: x1 y1 x2 y2 score) into *props (malloc'd). */
int det_rpn_proposals(const det_weights *w, const det_plan *p, const det_io *io, float **props, int *n);
/* Box head on the proposals: detections in the resized frame. -1 with a
 * message in err (out of memory, oneDNN, the backend). */
int det_bbox_forward(const det_weights *w, det_plan *p, const det_io *io, const float *props, int nprop,
                     float **boxes, float **scores, int **labels, int *ndet, char *err, size_t errlen);
/* Mask head on the detections (resized frame): probabilities (n, 28, 28). */
int det_mask_forward(const det_weights *w, det_plan *p, const det_io *io, const float *boxes, const int *labels, int n,
                     float *prob, char *err, size_t errlen);

/* RoIAlign runs on the backend (be->roi_align, reading P2..P5 where they
 * are) off the host; on a host backend the heads call vm_roi_align
 * themselves (det_roi_feats), as before. Off the host, the maps then come
 * to the host only for tracing. */
static inline int det_on_backend(const vm_be *be) { return !be->host && be->roi_align; }

/* FPN level of a P2..P5 map for a box (0..3) and the feature pointers. */
void det_roi_feats(const det_weights *w, const det_plan *p, const float *box, int out, float *dst);

#endif
