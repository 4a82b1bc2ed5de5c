/* model.h - the in-memory model (architecture and bound weights, read-only
 * once loaded) and the per-thread context (vm_ctx: activation plan,
 * oneDNN primitives and stream, hooks, profile, error). Internal. */
#ifndef VM_MODEL_H
#define VM_MODEL_H

#include "vmamba.h"
#include "../core/dnnl_compat.h"
#include "../net/backbone.h"
#include "../net/head.h"
#include "../ops/gemm_xnnpack.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VM_LN_EPS 1e-5f

typedef struct { const float *w, *b; int C; } vm_ln;

typedef struct {
    const float *w, *b;   /* OIHW, bias or NULL */
    int cin, cout, k, stride, pad;
    const int8_t *w8;     /* INT8 model: s8 OIHW, per-channel scales, */
    const float *w_scale; /* input scale and zero point (w is NULL)  */
    float a_scale;
    int a_zp;
    vm_xop *x;            /* XNNPACK path: the packed operator (FP32) */
} vm_conv;

/* An INT8 linear layer (from a calibrated model file): s8 weights per
 * output channel, u8 activations with one scale and zero point. */
typedef struct {
    const int8_t *w;          /* [N][K] */
    const float *w_scale;     /* [N] */
    float a_scale;
    int a_zp;
    int N, K;
    int slot;                 /* index in vm_linears(): its primitive in a plan */
    float o_scale;            /* output range (u8 scale, zero point) when the file */
    int o_zp;                 /* has it (0: absent); the XNNPACK path needs it */
    vm_xop *x;                /* XNNPACK path: the qc8 operator, or NULL (oneDNN) */
    int dynamic;              /* activations quantized per row at run time (a_scale, */
    const int32_t *w_sum;     /* a_zp unused); w_sum[n] = sum_k w[n][k]              */
} vm_qlinear;

/* An FP32 linear layer whose weights were packed for oneDNN's matmul at
 * load (linears.c); the plain weight field is then NULL. */
typedef struct {
    vm_wpack *pack;           /* oneDNN path; NULL on the XNNPACK path */
    vm_xop *x;                /* XNNPACK path: the operator (the plain weights stay) */
    int slot;                 /* index in vm_linears(): its primitive in a plan */
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
    vm_xop *x_xproj, *x_dt[4]; /* XNNPACK path: x_proj, dt_proj per direction */
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

/* A linear layer's primitive for the planned row count. */
typedef struct {
    vm_matmul *f;             /* packed FP32 */
    vm_qmatmul *q;            /* INT8 */
} vm_lin_prim;

/* Buffers and primitives for one input shape, owned by one context. */
typedef struct {
    int B, H, W;              /* planned input shape, 0 = none */
    int h[4], w[4];           /* stage map sizes               */
    int pe_h1, pe_w1;         /* v2 patch embed: after conv 1  */
    float *arena;
    float *x, *t0, *t1, *t2, *t3, *t4, *t5;
    float *feat[4];           /* backbones: outnorm_i maps, NHWC, kept for heads */
    uint8_t *qbuf;            /* quantized GEMM input, INT8 models */
    int32_t *qacc;            /* dynamic INT8: the s32 product, */
    float *qrow_scale;        /* and each row's scale and zero point */
    int32_t *qrow_zp;
    vm_conv_prim *pe1, *pe2, *ds[3];
    vm_lin_prim *lin;         /* [nlin], in vm_linears() order */
    size_t nlin;
    /* x_proj and the 4 dt_proj products of every block (in stage, block
     * order; 5 per block): matmul primitives on this plan's own packs of
     * the model's plain weights (small: 4(R+2N)D + 4DR per block). NULL
     * when the model is unpacked (VMAMBA_PACK=0, calibration): sgemm. */
    vm_wpack **sp_pack;
    vm_matmul **sp_mm;
    size_t nsp;
    /* d_state-1 FP32 plans: every block's dt_proj weights r-major
     * ([4][R][D], dt_wt[block index]) for the dt_proj kernel, copies made
     * with sp_pack's (NULL when it is NULL, in BF16 plans and for d_state
     * > 1, whose scan computes dt itself). */
    float *dt_wt_buf;
    float **dt_wt;
    int bf16;                 /* primitives made in BF16 (vm_ctx_bf16) */
    float *xacc;              /* XNNPACK path: a residual layer's product before the add */
    int8_t *xq8;              /* XNNPACK INT8: a layer's s8 output */
    void *xpool;              /* XNNPACK path: this context's worker threads */
    int xpool_threads;
    void *h16;                /* FP16 contexts: half-precision copies of a GEMM's A and C (grow-only) */
    size_t h16_cap;
} vm_plan;

/* Calibration hook: sees the input of every quantizable linear layer. */
typedef void (*vm_observe_fn)(void *user, const char *layer, const float *x, size_t rows, int cols, int ld,
                              const float *w, int n_out);

/* Devices: a context runs on the CPU or on CUDA device N (vm_ctx_set_device),
 * by default where the model's setting says (vm_model_set_device). The CUDA
 * backend (src/cuda/backend.cu) keeps one copy of the weights per device in
 * the model (m->dev_weights: uploaded on first use, shared read-only by every
 * context on that device, made and freed under a lock); the per-call state
 * (stream, cuBLAS handle, arena) hangs off the context (c->dev_ctx), errors
 * and profile go to c. */
#define VM_DEV_MODEL (-2)     /* a context's device: follow the model's */
#define VM_DEV_CPU (-1)

/* A head's plan for one feature shape, cached in a context. */
typedef struct {
    const vm_head_ops *ops;
    const vm_head *h;
    uint64_t hid;             /* h's VM_HEAD_ID: a head bound later at h's address is another head */
    unsigned long used;       /* when it last ran (c->head_clock): the least recent one makes room */
    vm_be *be;                /* the backend p was planned on */
    vm_head_plan *p;
    vm_feats shape;           /* what p was planned for (data unused) */
} vm_ctx_head;

#define VM_CTX_HEADS 4

/* The per-thread context (public as an opaque vm_ctx). */
struct vm_ctx {
    const vm_model *m;
    vm_dnnl_exec *dx;         /* oneDNN stream + scratchpad */
    vm_be *be;                /* the CPU op backend over dx (heads) */
    vm_be *be_dev;            /* the CUDA op backend, made on first use, or NULL */
    int be_dev_device;
    vm_be *be_test;           /* tests: heads of a CPU model run on this backend */
    float *dev_feat[4];       /* the backbone's NHWC maps in be_dev's memory */
    size_t dev_feat_n[4];
    vm_plan plan;
    int threads;              /* 0: the caller's OpenMP setting */
    int precision;            /* 0: the model's CPU default; else 1 + vm_precision */
    int internal;             /* the model's own (vm_forward's) context */
    vm_trace_fn trace;        /* tests: named intermediate tensors */
    void *trace_user;
    vm_observe_fn observe;    /* calibration: linear-layer inputs */
    void *observe_user;
    vm_profile prof;
    vm_ctx_head heads[VM_CTX_HEADS]; /* head plans (vm_ctx_run_head) */
    unsigned long head_clock;
    void *dev_ctx;            /* the backend's state for this context, or NULL */
    void (*dev_release)(void *dev_ctx);
    unsigned long dev_gen;    /* the device weights (their upload) dev_ctx was made for */
    int device;               /* VM_DEV_MODEL, VM_DEV_CPU or CUDA device N (vm_ctx_set_device) */
    char dev_name[16];        /* vm_ctx_device's answer */
    vm_status status;
    char err[512];
};

/* Record an error on c: returns -1. */
int vm_ctx_fail(vm_ctx *c, vm_status code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Every bound parameter under its checkpoint name (for saving). */
typedef struct {
    char *name;
    const float *data;
    int ndim;
    int64_t shape[4];
} vm_param;

/* A checkpoint tensor the backbone does not bind, kept under its full
 * name: heads' weights, or a key the engine does not know. */
typedef struct {
    char *name;
    const float *data;        /* float32 copy; NULL for non-float tensors */
    const int8_t *i8;         /* an int8 tensor (a head's INT8 conv weight) */
    int ndim;
    int64_t shape[8];
    int unknown;              /* belongs to no known head */
} vm_kept;

struct vm_model {
    vm_info info;
    char *path;               /* the checkpoint's, NULL for presets */
    vm_kept *kept;
    size_t nkept;
    size_t ntensors;          /* tensors in the checkpoint */
    unsigned heads;           /* vm_head_kind bits */
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
    int xnn;                  /* GEMMs and convolutions through XNNPACK (linears.c) */
    int quantized;            /* any INT8 layer */
    void **allocs;            /* weight buffers, freed with the model */
    size_t nallocs, capallocs;
    int dev_cuda;             /* contexts' default device (vm_model_set_device): 0 the CPU,
                                 N + 1 CUDA device N (0 so that a zeroed model is on the CPU) */
    int dev_precision;        /* vm_precision of the GEMMs on CUDA (vm_model_set_device) */
    char dev_name[16];        /* "cuda:N" (vm_model_device); unused on the CPU */
    void *dev_weights;        /* the CUDA backend's per-device weight copies (backend.cu), or NULL */
    void (*dev_free)(vm_model *m); /* frees them, with the model */
    vm_ctx *ictx;             /* vm_forward's internal context (single-threaded convenience) */
    int nctx;                 /* live contexts other than ictx (atomic) */
    int cpu_bf16;             /* default CPU arithmetic of contexts: BF16 GEMMs/convs
                                 (vm_model_set_device "cpu", BF16); a setting, not weights */
    int cpu_fp16;             /* ... or FP16 linear layers (XNNPACK path, ARMv8.2 FP16 arithmetic) */
    char err[512];            /* load, save, set_device and vm_forward errors */
};

/* weights.c: bind every parameter the forward needs. */
typedef struct vm_wsrc vm_wsrc;
float *vm_model_alloc(vm_model *m, size_t n);

/* load.c: the model's tensors by full checkpoint name, for heads' bind
 * ("decode_head.conv_seg.weight", "neck.lateral_convs.0.conv.weight"...);
 * valid while the model lives. Packed backbone linears are not served. */
void vm_model_weights(const vm_model *m, vm_weights_src *out);

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
/* malloc'd list of *n layers (free() it), or NULL when out of memory. The
 * model is only read; the pointers into it are for the load-time packer. */
vm_lin_slot *vm_linears(const vm_model *m, size_t *n);
/* At load: pack every FP32 linear for oneDNN's matmul, dropping the plain
 * copies (the weights are held once), and number the layers' slots. */
int vm_weights_pack(vm_model *m);
/* Free the XNNPACK operators of the XNNPACK path (m->xnn); the model's
 * plain weights are untouched. */
void vm_xnn_release(vm_model *m);
/* Parameter i's values: its plain data, or (a packed linear) unpacked into
 * *tmp, a malloc'd copy the caller frees. NULL when out of memory. */
const float *vm_param_values(const vm_model *m, size_t i, float **tmp);
/* A linear layer's plain weights (n values): w, or its pack f unpacked
 * into *tmp (malloc'd, the caller frees it). NULL when out of memory. */
const float *vm_linear_values(const float *w, const vm_flinear *f, size_t n, float **tmp);
/* Tooling only (calibration, SmoothQuant, the plain-GEMM test): turn the
 * model back to plain weights for good, so observers see and may rewrite
 * them. Refused while any context other than vm_forward's exists: a
 * shared model is never changed. */
int vm_model_unpack(vm_model *m);

/* forward.c */
int vm_plan_ensure(vm_ctx *c, int B, int H, int W);
void vm_plan_free(vm_plan *p);
/* Whether c's CPU primitives are BF16: its own choice, else the model's. */
int vm_ctx_bf16(const vm_ctx *c);
int vm_ctx_fp16(const vm_ctx *c);
int vm_forward_impl(vm_ctx *c, const float *in, int B, int H, int W, float *logits, float *feats[4]);
/* Run the backbone on c; out gets the four maps, NHWC, in c's arena (valid
 * until c's next call): a backbone checkpoint's outnorm_i maps, or for a
 * classifier checkpoint (no outnorm layers) only data[3], the last stage's
 * output before the classifier's own norm. Heads read these. */
int vm_ctx_backbone(vm_ctx *c, const float *in, int B, int H, int W, vm_feats *out);
/* Run the backbone, then head h (bound from this model's weights) on its
 * maps: the head is planned for the feature shape on first use and when
 * the shape changes; the plan is kept in c (up to VM_CTX_HEADS heads) and
 * freed with it. out is the head's. Returns 0 or -1 (vm_ctx_error). */
int vm_ctx_run_head(vm_ctx *c, const vm_head_ops *ops, const vm_head *h, const float *in, int B, int H, int W, void *out);
/* Its second half: head h on maps f already computed on c (vm_ctx_backbone),
 * through the same per-context plan cache. The caller sets the threads. */
int vm_ctx_head_forward(vm_ctx *c, const vm_head_ops *ops, const vm_head *h, const vm_feats *f, void *out);
/* The same on backend be (c->be, or vm_ctx_cuda_backend's), f's maps in
 * be's memory. */
int vm_ctx_head_forward_on(vm_ctx *c, vm_be *be, const vm_head_ops *ops, const vm_head *h, const vm_feats *f, void *out);
/* The backbone on the model's device, for a head: on the CPU
 * vm_ctx_backbone (*be = c->be, maps in c's arena); for a model on CUDA
 * the device backbone, its maps NHWC in device buffers of c's CUDA op
 * backend (*be), kept in c. Returns 0 or -1 (c's error). */
int vm_ctx_backbone_be(vm_ctx *c, const float *in, int B, int H, int W, vm_feats *f, vm_be **be);
/* The context's CUDA op backend on device `device` (made on first use;
 * NULL with c's error set where there is none). */
vm_be *vm_ctx_cuda_backend(vm_ctx *c, int device);
/* One linear layer of the model on c (INT8, packed FP32 or plain): see
 * src/ops/backbone_cpu.c. */
int vm_linear(vm_ctx *c, const vm_qlinear *q, const vm_flinear *f, const char *name, const float *A, int lda, int M, int N,
              int K, const float *W, float *C, int ldc, const float *bias, int gelu, int accumulate);
/* The profile clock (wall, or CPU time with VMAMBA_PROFILE_CLOCK=cpu). */
double vm_prof_now(void);
/* The internal context of vm_forward, created on first use, or NULL. */
vm_ctx *vm_model_ctx(vm_model *m);

/* "cpu" (or NULL) -> -1, "cuda" -> 0, "cuda:N" -> N; -2 when malformed. */
int vm_device_index(const char *device);
/* The device c runs on: VM_DEV_CPU or CUDA device N (its own choice, else
 * the model's default). */
int vm_ctx_device_index(const vm_ctx *c);

#ifdef VM_HAVE_CUDA
/* src/cuda/backend.cu. The model's weights on CUDA device `device`: checks
 * that the model can run there, uploads them on first use (once per device;
 * thread-safe: the copies are made and looked up under a lock, the model's
 * other fields are only read) and adds `pin` (+1, -1 or 0) to the number
 * of contexts that chose that device themselves. 0, or -1 with err. */
int vm_cuda_weights(vm_model *m, int device, int pin, char *err, size_t errlen);
/* Frees the device copies that no context pins, but device keep's (-1:
 * none): vm_model_set_device, when no forward runs. Contexts that follow
 * the model's default pin nothing: one that ran on a freed copy keeps its
 * state (stream, arena, the copy's addresses) until its next forward on a
 * GPU, and backend.cu's ctx_state makes it afresh there, since the upload
 * it was made for (its generation, c->dev_gen) is gone
 * (tests/test_ctx_device.c, default_follower_case). */
void vm_cuda_release_unpinned(vm_model *m, int keep);
int vm_cuda_device_count(void);
/* The backbone (and classifier) on CUDA device `device` for context c. */
int vm_cuda_forward(vm_model *m, vm_ctx *c, int device, const float *in, int B, int H, int W, float *logits,
                    float *feats[4]);
/* The CUDA backbone with its four maps written NHWC into device buffers. */
int vm_cuda_forward_features_dev(vm_model *m, vm_ctx *c, int device, const float *in, int B, int H, int W,
                                 float *dfeats[4]);
void *vm_cuda_host_alloc(size_t bytes); /* page-locked, or NULL */
void vm_cuda_host_free(void *p);
/* The CUDA backend's backbone ops (net/backbone.h). For the per-op test
 * (tests/test_backbone_ops.c): vm_cuda_forward on `ops`, a table wrapping
 * vm_bb_cuda_ops; a download of n floats of one of bb's buffers, ordered
 * after every op enqueued on bb (0, or -1 with the context's error). */
extern const vm_bb_ops vm_bb_cuda_ops;
int vm_cuda_forward_ops(vm_model *m, vm_ctx *c, int device, const vm_bb_ops *ops, const float *in, int B, int H, int W,
                        float *logits, float *feats[4]);
int vm_cuda_bb_download(vm_bb *bb, float *dst, const float *src, size_t n);
/* Tests (tests/test_ctx_device.c). The n-th creation from now (1: the
 * next) of a stream, event or cuBLAS handle of a context's CUDA state
 * fails as out of memory (0: none); returns the count that was armed
 * before (0: it fired, or none was armed). The number of those handles
 * alive. The calling thread's current CUDA device (-1: none), and
 * selecting one (0, or -1). */
int vm_cuda_test_fail_create(int n);
long vm_cuda_test_live_handles(void);
int vm_cuda_test_current_device(void);
int vm_cuda_test_select_device(int d);
#endif

/* Test and calibration hooks (not in the public header). The model forms
 * set them on vm_forward's internal context. */
void vm_ctx_set_trace(vm_ctx *c, vm_trace_fn fn, void *user);
void vm_ctx_set_observe(vm_ctx *c, vm_observe_fn fn, void *user);
void vm_model_set_trace(vm_model *m, vm_trace_fn fn, void *user);

#ifdef __cplusplus
}
#endif
/* A released preset as a backbone (outnorm0..3) with random weights. */
vm_model *vm_backbone_from_preset(const char *name, uint64_t seed, char *err, size_t errlen);
/* vm_model_load on a checkpoint already open (vm_checkpoint_open, which
 * took opts->key): renames legacy keys in it and copies every weight out;
 * the caller closes it. The fuzzers read the tensors and load the model
 * from one parse of the file. */
struct vm_checkpoint;
vm_model *vm_model_from_checkpoint(struct vm_checkpoint *ck, const vm_load_opts *opts, char *err, size_t errlen);

/* The model's LayerNorm that backbone layer l of stage s, block j names
 * (NULL for a layer that is not a norm): the CPU ops and the backbone-op
 * test's references look norms up the same way. */
const vm_ln *vm_model_ln(const vm_model *m, vm_bb_layer l, int s, int j);

#endif
