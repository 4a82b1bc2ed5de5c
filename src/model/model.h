/* model.h - the in-memory model: architecture, bound weights, and the
 * activation plan for the last input shape. Internal to libvmamba. */
#ifndef VM_MODEL_H
#define VM_MODEL_H

#include "vmamba.h"
#include "../core/dnnl_compat.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VM_LN_EPS 1e-5f

typedef struct { const float *w, *b; int C; } vm_ln;

typedef struct {
    const float *w, *b;   /* OIHW, bias or NULL */
    int cin, cout, k, stride, pad;
    vm_conv_prim *prim;   /* for the planned shape */
    const int8_t *w8;     /* INT8 model: s8 OIHW, per-channel scales, */
    const float *w_scale; /* input scale and zero point (w is NULL)  */
    float a_scale;
    int a_zp;
} vm_conv;

/* An INT8 linear layer (from a calibrated model file): s8 weights per
 * output channel, u8 activations with one scale and zero point. */
typedef struct {
    const int8_t *w;          /* [N][K] */
    const float *w_scale;     /* [N] */
    float a_scale;
    int a_zp;
    int N, K;
    vm_qmatmul *prim;         /* for the planned row count */
} vm_qlinear;

/* An FP32 linear layer whose weights were packed for oneDNN's matmul
 * (linears.c). While packed, the plain weight field is NULL. */
typedef struct {
    vm_wpack *pack;
    vm_matmul *prim;          /* for the planned row count */
    size_t param;             /* index in m->params, or SIZE_MAX */
} vm_flinear;

typedef struct {
    vm_ln norm;
    vm_qlinear *q_in, *q_out, *q_fc1, *q_fc2; /* NULL: FP32 */
    vm_flinear *f_in, *f_out, *f_fc1, *f_fc2; /* NULL: not packed */
    const float *in_proj_w;   /* [d_inner*(1+z)][C]       */
    const float *conv_w;      /* [d_inner][9]             */
    const float *conv_b;      /* [d_inner] or NULL        */
    const float *x_proj_w;    /* [4*(R+2N)][d_inner]      */
    const float *dt_w;        /* [4][d_inner][R]          */
    const float *dt_b;        /* [4*d_inner]              */
    float *A;                 /* [4*d_inner][N] = -exp(A_logs) */
    const float *Ds;          /* [4*d_inner]              */
    vm_ln out_norm;
    const float *out_proj_w;  /* [C][d_inner]             */
    vm_ln norm2;              /* MLP, if mlp_hidden > 0   */
    const float *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} vm_block;

typedef struct {
    int C, depth, d_inner, R, hidden, C_next;
    vm_block *blocks;
    /* downsample to the next stage */
    vm_ln ds_norm;            /* v1: over 4C; v3: over C_next */
    const float *ds_reduction; /* v1: [C_next][4C] */
    vm_conv ds_conv;          /* v3 */
    vm_qlinear *q_ds;         /* v1 reduction, INT8 */
    vm_flinear *f_ds;
    vm_ln outnorm;            /* backbone only */
} vm_stage;

/* Called with named intermediate tensors when set (tests). */
typedef void (*vm_trace_fn)(void *user, const char *name, const float *data, int B, int H, int W, int C);

/* Per-op time accounting for `vmamba bench --profile`. */
typedef enum {
    VM_OP_PATCH_EMBED, VM_OP_NORM, VM_OP_IN_PROJ, VM_OP_DWCONV, VM_OP_X_PROJ, VM_OP_SCAN, VM_OP_GATE,
    VM_OP_OUT_PROJ, VM_OP_MLP_GEMM, VM_OP_GELU, VM_OP_DOWNSAMPLE, VM_OP_HEAD, VM_OP_TRANSFER, VM_OP_COUNT
} vm_op;
extern const char *const vm_op_names[VM_OP_COUNT];
typedef struct {
    int enabled;
    double seconds[VM_OP_COUNT];
} vm_profile;

typedef struct {
    int B, H, W;              /* planned input shape, 0 = none */
    int h[4], w[4];           /* stage map sizes               */
    int pe_h1, pe_w1;         /* v2 patch embed: after conv 1  */
    float *arena;
    float *x, *t0, *t1, *t2, *t3, *t4, *t5;
    uint8_t *qbuf;            /* quantized GEMM input, INT8 models */
} vm_plan;

/* Calibration hook: sees the input of every quantizable linear layer. */
typedef void (*vm_observe_fn)(void *user, const char *layer, const float *x, size_t rows, int cols, int ld,
                              const float *w, int n_out);

/* A compute backend other than the CPU (src/cuda/). It owns its state,
 * keeps its own copy of the weights, and runs the whole forward pass. */
typedef struct {
    const char *name;
    int (*forward)(vm_model *m, const float *in, int B, int H, int W, float *logits, float *feats[4]);
    void (*release)(vm_model *m);
} vm_backend_ops;

/* Every bound parameter under its checkpoint name (for saving). */
typedef struct {
    char *name;
    const float *data;
    int ndim;
    int64_t shape[4];
} vm_param;

struct vm_model {
    vm_info info;
    vm_param *params;
    size_t nparams, capparams;
    char *metadata;           /* "vmamba" metadata of a .safetensors file */
    int d_state;
    /* patch embed: v1 conv1+norm1; v2 conv1,norm1,GELU,conv2,norm2 */
    vm_conv pe_conv1, pe_conv2;
    vm_ln pe_norm1, pe_norm2;
    vm_stage st[4];
    vm_ln cls_norm;
    const float *head_w, *head_b;
    vm_qlinear *q_head;
    vm_flinear *f_head;
    vm_flinear *flin;         /* packed FP32 linears (linears.c) */
    size_t nflin;
    int no_pack;              /* VMAMBA_PACK=0: keep plain weights, GEMM via sgemm */
    int quantized;            /* any INT8 layer */
    void **allocs;            /* weight buffers, freed with the model */
    size_t nallocs, capallocs;
    vm_plan plan;
    vm_trace_fn trace;
    void *trace_user;
    vm_observe_fn observe;
    void *observe_user;
    vm_profile prof;
    const vm_backend_ops *dev;   /* NULL: the CPU path of forward.c */
    void *dev_state;
    char err[512];
};

/* weights.c: bind every parameter the forward needs. */
typedef struct vm_wsrc vm_wsrc;
float *vm_model_alloc(vm_model *m, size_t n);

/* arch.c */
int vm_arch_finish(vm_model *m);           /* params and FLOPs */
double vm_arch_gmacs(const vm_model *m, int H, int W);
void vm_arch_json(const vm_model *m, char *buf, size_t len);

/* linears.c: every linear layer of the model, in one list. */
typedef struct {
    const float **w;          /* plain FP32 weights [N][K] (NULL: packed or INT8) */
    vm_qlinear *q;            /* INT8 layer, or NULL */
    vm_flinear **f;           /* where its packed form hangs */
    int N, K;
    int rows_stage;           /* rows = B*h*w of this stage; +10: of the next stage; -1: B */
    const float *bias;
    int gelu, accumulate;     /* fused after the product */
} vm_lin_slot;
vm_lin_slot *vm_linears(vm_model *m, size_t *n); /* malloc'd list of *n layers; free() it */
/* Pack every FP32 linear for oneDNN's matmul, dropping the plain copies;
 * vm_weights_plain undoes it for code that reads weights (save, CUDA
 * upload, calibration). Both are no-ops when already in that state. */
int vm_weights_pack(vm_model *m);
int vm_weights_plain(vm_model *m);

/* forward.c */
int vm_plan_ensure(vm_model *m, int B, int H, int W);
void vm_plan_free(vm_model *m);
int vm_forward_impl(vm_model *m, const float *in, int B, int H, int W, float *logits, float *feats[4]);

#ifdef VM_HAVE_CUDA
/* src/cuda/backend.cu: upload the weights and switch m to the GPU. */
int vm_cuda_attach(vm_model *m, int precision, char *err, size_t errlen);
int vm_cuda_device_count(void);
void *vm_cuda_host_alloc(size_t bytes); /* page-locked, or NULL */
void vm_cuda_host_free(void *p);
#endif

/* Test hook (not in the public header). */
void vm_model_set_trace(vm_model *m, vm_trace_fn fn, void *user);

#ifdef __cplusplus
}
#endif
/* A released preset as a backbone (outnorm0..3) with random weights. */
vm_model *vm_backbone_from_preset(const char *name, uint64_t seed, char *err, size_t errlen);

#endif
