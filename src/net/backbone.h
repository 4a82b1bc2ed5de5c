/* backbone.h - the VMamba backbone, described once (backbone.c) against
 * the backbone ops of a backend, as the heads are written once against
 * src/ops/backend.h. Internal to libvmamba.
 *
 * The description walks patch embed -> 4 stages of VSS blocks (LayerNorm,
 * in_proj, depthwise conv + SiLU, x_proj, selective scan, out norm, gate,
 * out_proj, MLP) -> downsample, and names every layer by (kind, stage,
 * block). A backend resolves those names to its own form of the weights
 * (the CPU: the model's packed / INT8 / XNNPACK layers and the context's
 * oneDNN primitives, src/ops/backbone_cpu.c) and runs them with its own
 * kernels. Activations are token-major (B, H, W, C) NHWC for every family,
 * in the backend's memory (bb->x ... planned by the backend for the
 * input shape). */
#ifndef VM_NET_BACKBONE_H
#define VM_NET_BACKBONE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vm_model;
struct vm_ctx;

/* The backbone's layers, by kind; (s, j) = stage and block where they
 * apply (s only for per-stage layers, neither for the patch embed). */
typedef enum {
    VM_BB_PE_CONV1, VM_BB_PE_CONV2, VM_BB_PE_NORM1, VM_BB_PE_NORM2, /* patch embed      */
    VM_BB_NORM, VM_BB_IN_PROJ, VM_BB_X_PROJ, VM_BB_OUT_PROJ,        /* SS2D of block j  */
    VM_BB_NORM2, VM_BB_FC1, VM_BB_FC2,                              /* MLP of block j   */
    VM_BB_DS_NORM, VM_BB_DS_REDUCTION, VM_BB_DS_CONV,               /* stage s's downsample */
    VM_BB_OUTNORM,                                                  /* backbone output s */
    VM_BB_CLS_NORM, VM_BB_HEAD                                      /* the classifier   */
} vm_bb_layer;

typedef struct vm_bb vm_bb;

/* The ops a backend implements for the backbone. Each returns 0, or -1
 * with the context's error set. Sizes are explicit; buffers are in the
 * backend's memory. */
typedef struct {
    const char *name;
    /* Profile clock in seconds (a device backend waits for its queue). */
    double (*now)(vm_bb *bb);
    /* The stem: the NCHW host input in (B,3,H,W), convolution PE_CONV1,
     * LayerNorm PE_NORM1, then GELU if gelu (v2), into out (NHWC). */
    int (*stem)(vm_bb *bb, const float *in_nchw, int B, int H, int W, float *out, int gelu);
    /* Convolution `conv` of (B,H,W,Cin) in into mid, then LayerNorm `ln`
     * (both of stage s) from mid into out (out may be mid). */
    int (*conv_ln)(vm_bb *bb, vm_bb_layer conv, vm_bb_layer ln, int s, const float *in, int B, int H, int W, float *mid,
                   float *out);
    /* LayerNorm `ln` over C channels of T tokens; out may be in. */
    int (*layernorm)(vm_bb *bb, vm_bb_layer ln, int s, int j, const float *in, float *out, size_t T, int C);
    /* C[M][N] (ldc) = A[M][K] (lda) W^T of linear layer `l`, + its bias if
     * it has one, then GELU if gelu, then + C (the residual) if accumulate. */
    int (*linear)(vm_bb *bb, vm_bb_layer l, int s, int j, const float *A, int lda, int M, int N, int K, float *C, int ldc,
                  int gelu, int accumulate);
    /* Depthwise 3x3 (pad 1) + bias + SiLU of block (s, j): in (B,h,w) tokens
     * of row stride ld_in, D channels, into out [B*h*w][D]. */
    int (*dwconv_silu)(vm_bb *bb, int s, int j, const float *in, int ld_in, float *out, int B, int h, int w, int D);
    /* The SS2D core of block (s, j) after x_proj: dt_proj of the four
     * directions, the selective scan with cross-scan and cross-merge,
     * out_norm, then y *= SiLU(z) when z is given (row stride ldz).
     * u [B*h*w][D] (the conv output), xdbl [B*h*w][4][R+2N], y [B*h*w][D]. */
    int (*ssm)(vm_bb *bb, int s, int j, const float *u, const float *xdbl, const float *z, int ldz, float *y, int B, int h,
               int w);
    /* v1 patch merging's gather: (B,h,w,C) zero-padded to even size, 2x2
     * neighbours into 4C channels in the order (0,0),(1,0),(0,1),(1,1). */
    int (*merge_gather)(vm_bb *bb, const float *in, float *out, int B, int h, int w, int C);
    /* Global average pool: out[b][c] = mean over L tokens of in[b][t][c]. */
    int (*mean_tokens)(vm_bb *bb, const float *in, int B, int L, int C, float *out);
    /* Optional (NULL: layernorm, then linear): LayerNorm `ln` of in (T x C),
     * then linear `l` of it as linear would run it (lda = K = C, M = T), fused,
     * without writing the norm's output anywhere (the CPU: an INT8 layer
     * quantizes straight from the norm). Returns 1, having done nothing, for
     * a layer the backend does not fuse: the description then runs the two
     * ops into ln_out (so the profile keeps them apart). Called only where
     * nothing else reads ln_out. */
    int (*norm_linear)(vm_bb *bb, vm_bb_layer ln, vm_bb_layer l, int s, int j, const float *in, float *ln_out, size_t T,
                       int C, int N, float *Cout, int ldc, int gelu, int accumulate);
} vm_bb_ops;

/* One backbone run's backend and buffers, filled by the backend's plan
 * for the input shape. */
struct vm_bb {
    const vm_bb_ops *ops;
    void *impl;                 /* the backend's */
    const struct vm_model *m;
    struct vm_ctx *c;           /* error, profile, trace hooks */
    int host;                   /* buffers are host memory (traces see them) */
    int h[4], w[4];             /* stage map sizes */
    int pe_h1, pe_w1;           /* v2 patch embed: after conv 1 */
    /* x: the residual stream; t0..t5 scratch, sized by the plan for the
     * largest layer: t0 LN output / downsample, t1 in_proj (x and z) or
     * MLP hidden, t2 conv output (u), t3 x_proj output, t5 SS2D output. */
    float *x, *t0, *t1, *t2, *t3, *t5;
    float *feat[4];             /* a backbone's outnorm_s maps (NULL: none) */
};

/* Patch embed and the four stages with their downsamples on bb: the last
 * stage's output stays in bb->x; a backbone's outnorm maps go to
 * bb->feat[s]. Returns 0 or -1 (the context's error). */
int vm_backbone_run(vm_bb *bb, const float *in_nchw, int B, int H, int W);

/* The image classifier (src/net/heads/classifier.c), a module like the
 * heads of net/head.h but on these ops: its linear layer is one of the
 * model's linears (packed, INT8-calibrated, observed by calibration and
 * uploaded to CUDA with the backbone's), so it runs where they run.
 *   bind:    vm_classifier_bind checks the model has one and notes its
 *            sizes (immutable, part of the model);
 *   plan:    none of its own: its scratch is the backbone plan's t0 / t1,
 *            free once the stages are done;
 *   forward: LayerNorm over the last stage's raw output x (B, L, C), global
 *            average pool, linear (+ bias) into logits (B, ncls) in the
 *            backend's memory;
 *   free:    nothing (the weights are the model's). */
typedef struct {
    int C, ncls;
} vm_classifier;
int vm_classifier_bind(const struct vm_model *m, vm_classifier *h, char *err, size_t errlen);
int vm_classifier_run(const vm_classifier *h, vm_bb *bb, const float *x, int B, int L, float *logits);

/* The CPU backend's backbone ops (src/ops/backbone_cpu.c). */
extern const vm_bb_ops vm_bb_cpu_ops;

#ifdef __cplusplus
}
#endif
#endif
