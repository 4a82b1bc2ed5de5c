/*
 * vmamba.h - the one public header of libvmamba.
 *
 * Data flow: load a model (official .pth checkpoint or a named preset with
 * random weights), then run a forward pass on float32 NCHW images, getting
 * logits (classifier) or the four stage feature maps (backbone).
 *
 * Errors: functions that take `char *err, size_t errlen` write a message of
 * the form "<file>: <problem>" there on failure. A loaded model carries its
 * own error string for later calls (vm_model_error), like a tjhandle; a
 * context (vm_ctx) carries the error and its code (vm_status) of its
 * forward passes; running out of memory there is VM_ERR_NOMEM, not an
 * abort.
 *
 * Threads: a loaded model is read-only and may be shared by any number of
 * threads, each running forward passes through its own context (vm_ctx_new).
 * A context holds everything a forward pass changes (activation buffers
 * planned per input shape, oneDNN primitives, stream and scratchpad, error,
 * profile) and is used by one thread at a time. vm_forward and
 * vm_forward_features are single-threaded conveniences over an internal
 * context of the model: call them from one thread at a time, and never
 * concurrently with the model-changing calls (vm_model_set_device,
 * vm_model_save, vm_model_free).
 */
#ifndef VMAMBA_H
#define VMAMBA_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VM_VERSION_MAJOR 0
#define VM_VERSION_MINOR 2
#define VM_VERSION_PATCH 0
#define VM_VERSION_STRING "0.2.0"

/* Export control: the library is built with -fvisibility=hidden and exports
 * exactly the functions this header declares, each marked VM_API
 * (tests/exports_test.sh checks that every declaration carries it and that
 * nm -D lists nothing else). */
#if defined(__GNUC__) && !defined(VM_STATIC)
#define VM_API __attribute__((visibility("default")))
#else
#define VM_API
#endif

typedef struct vm_model vm_model; /* opaque */
typedef struct vm_ctx vm_ctx;     /* opaque: one per thread */

/* Error codes (returned by the vm_ctx calls, see vm_ctx_error_code). */
typedef enum {
    VM_OK = 0,
    VM_ERR_INPUT = -1,       /* bad argument or input shape            */
    VM_ERR_UNSUPPORTED = -2, /* the model or build cannot do this       */
    VM_ERR_NOMEM = -3,       /* out of memory                           */
    VM_ERR_IO = -4,          /* reading or writing a file               */
    VM_ERR_BACKEND = -5      /* oneDNN or CUDA failed                   */
} vm_status;

/* Architecture family, derived from the checkpoint's key names and shapes. */
typedef enum {
    VM_FAMILY_V0 = 0,     /* "vanilla": patch merging, no MLP, z gate  */
    VM_FAMILY_V2 = 1,     /* v05_noz: conv downsample, MLP, no z gate  */
    VM_FAMILY_V2Z = 2,    /* v2 blocks with z gate (forward type v02)  */
    VM_FAMILY_OTHER = 3   /* a mix the above names do not cover        */
} vm_family;

typedef struct {
    vm_family family;
    int dims[4];          /* stage widths, read from weight shapes     */
    int depths[4];
    int d_inner[4];
    int dt_rank[4];
    int mlp_hidden[4];    /* 0 = no MLP                                 */
    int d_state;
    float ssm_ratio;      /* d_inner[0] / dims[0]                       */
    float mlp_ratio;      /* mlp_hidden[0] / dims[0], 0 = none          */
    int z_gate;           /* 1 if in_proj produces x and z              */
    int conv_bias;        /* depthwise conv has a bias                  */
    int patch_embed_version; /* 1 or 2                                  */
    int downsample_version;  /* 1 (patch merging) or 3 (conv)           */
    int patch_size;       /* total stride of the patch embed            */
    int num_classes;      /* 0 for a backbone                           */
    int is_backbone;      /* 1: has outnorm0..3, returns 4 features     */
    int64_t params;       /* parameters the forward pass uses           */
    double gflops_224;    /* multiply-adds at 224x224 in G (fvcore's
                             convention, as in the VMamba paper)         */
} vm_info;

typedef struct {
    const char *key;      /* top-level dict key holding the weights:
                             NULL = "model", else e.g. "model_ema"      */
    int quiet;            /* 1: no warnings on stderr                   */
} vm_load_opts;

/* Load an official torch.save checkpoint (.pth). Returns NULL on error. */
VM_API vm_model *vm_model_load(const char *path, const vm_load_opts *opts,
                        char *err, size_t errlen);

/* Build one of the released architectures by name with deterministic
 * random weights (for benchmarks). num_classes <= 0 means 1000. */
VM_API vm_model *vm_model_from_preset(const char *name, int num_classes,
                               uint64_t seed, char *err, size_t errlen);

/* Load also reads .safetensors files written by vm_model_save. */

/* Save the model's weights as .safetensors (dtype "f32", "f16" or "bf16"
 * storage) with a JSON metadata string (preprocessing defaults, labels)
 * stored under "__metadata__"/"vmamba". Written atomically. Returns 0, or
 * -1 with the reason in vm_model_error(m) (a NULL model or path: -1 too). */
VM_API int vm_model_save(vm_model *m, const char *path, const char *dtype, const char *metadata_json);
/* That metadata string of a model loaded from .safetensors, or NULL. */
VM_API const char *vm_model_metadata(const vm_model *m);

/* Names of the presets, NULL-terminated. */
VM_API const char *const *vm_preset_names(void);

VM_API void vm_model_free(vm_model *m);

/* Last error of calls on this model. Never NULL. */
VM_API const char *vm_model_error(const vm_model *m);

VM_API void vm_model_info(const vm_model *m, vm_info *out);
VM_API const char *vm_family_name(vm_family f);

/* Where forward passes run by default. "cpu" (default), "cuda" (= "cuda:0") or
 * "cuda:N", GPU N (builds configured with --with-cuda and a GPU present):
 * the weights go to that GPU and every context of the model that did not
 * choose its own device (vm_ctx_set_device) runs there (each with its own
 * stream, arena and cuBLAS handle); copies on other GPUs that no context
 * chose are freed. A malformed name, a
 * GPU that does not exist (N >= vm_cuda_devices()) or a build without CUDA
 * give -1 with the reason, and the model stays where it was. precision selects the GPU GEMM
 * arithmetic: FP32 (exact), or TF32 / FP16 / BF16 tensor cores with FP32
 * storage and accumulation. On the CPU: FP32, or BF16 = linear layers and
 * convolutions (patch embed, downsample) in bf16 with FP32 accumulation
 * through oneDNN (CPUs with avx512_bf16 or AMX; elsewhere -1 with a message
 * saying so), everything else FP32. It is the default of the model's
 * contexts (vm_ctx_set_precision overrides it per context); the weights
 * stay FP32 in the model and each BF16 context keeps a bf16 copy of the
 * linear/conv weights (half their FP32 size). FP16 on the CPU: the linear
 * layers (and x_proj/dt_proj) in half precision through XNNPACK, on
 * aarch64 cores with FP16 arithmetic (ARMv8.2: Cortex-A55/A76 and later)
 * where the model runs its GEMMs on XNNPACK (elsewhere -1 with a message);
 * the model keeps one f16 copy of those weights, made at first use.
 * A model-changing call, like vm_model_save and vm_model_free: not while a
 * context of the model runs a forward pass (the contexts that follow the
 * default move, and the GPU copies it frees may be the ones they read).
 * Returns 0, or -1 (see vm_model_error). */
typedef enum { VM_PRECISION_FP32 = 0, VM_PRECISION_TF32, VM_PRECISION_FP16, VM_PRECISION_BF16 } vm_precision;
VM_API int vm_model_set_device(vm_model *m, const char *device, vm_precision precision);
/* The model's default device: "cpu" or "cuda:N". */
VM_API const char *vm_model_device(const vm_model *m);
/* Number of usable CUDA devices; 0 without a GPU or without CUDA support. */
VM_API int vm_cuda_devices(void);

/* Memory for input batches (and outputs). With a CUDA device present it is
 * page-locked, so a model on the GPU uploads it at full bus speed (plain
 * malloc'd memory is staged through the driver at a fraction of that);
 * otherwise it is ordinary aligned memory. NULL when out of memory. Free
 * with vm_host_free only. */
VM_API void *vm_host_alloc(size_t bytes);
VM_API void vm_host_free(void *p);

/* Threads used by forward passes of contexts without their own setting
 * (vm_ctx_set_threads); <= 0 means OMP_NUM_THREADS or all cores. Sets the
 * calling thread's OpenMP default. */
VM_API void vm_set_threads(int n);
VM_API int vm_get_threads(void);

/* Classifier forward. in: float32 (B,3,H,W) contiguous; logits: (B,classes).
 * H and W must be >= 1 (>= 32 recommended). Returns 0 or -1 (see
 * vm_model_error). Runs on the model's internal context: one thread at a
 * time; threads sharing a model use vm_ctx_forward. */
VM_API int vm_forward(vm_model *m, const float *in, int B, int H, int W,
               float *logits);

/* Shape of backbone feature map i (0..3) for an H x W input. */
VM_API void vm_feature_shape(const vm_model *m, int H, int W, int i,
                      int *C, int *h, int *w);

/* Backbone forward: feats[i] receives (B, C_i, h_i, w_i) NCHW float32,
 * sized by vm_feature_shape. Needs a backbone checkpoint (outnorm0..3);
 * a classifier gives an error. */
VM_API int vm_forward_features(vm_model *m, const float *in, int B, int H, int W,
                        float *feats[4]);

/* ---- contexts: one model, many threads ----------------------------------
 * A context runs forward passes of model m (which must outlive it). It
 * plans its buffers for the last input shape and re-plans when the shape
 * changes. Returns NULL with a message in err on failure. */
VM_API vm_ctx *vm_ctx_new(const vm_model *m, char *err, size_t errlen);
VM_API void vm_ctx_free(vm_ctx *c);
/* Message of the last failed call on c ("" if none). Never NULL. */
VM_API const char *vm_ctx_error(const vm_ctx *c);
/* Code of the last failed call on c (VM_OK if none). */
VM_API vm_status vm_ctx_error_code(const vm_ctx *c);
/* OpenMP threads this context's forwards use; <= 0: the calling thread's
 * setting (OMP_NUM_THREADS, vm_set_threads). Returns 0 (VM_ERR_INPUT for
 * a NULL context, as the forward calls). */
VM_API int vm_ctx_set_threads(vm_ctx *c, int n);
/* This context's CPU arithmetic: VM_PRECISION_FP32, VM_PRECISION_BF16 or
 * VM_PRECISION_FP16 (see vm_model_set_device), overriding the model's
 * default; takes effect at the next forward (re-plans). Returns 0,
 * VM_ERR_UNSUPPORTED (message in vm_ctx_error) for TF32, BF16 on a CPU
 * without avx512_bf16/AMX or FP16 off ARMv8.2's XNNPACK path, or
 * VM_ERR_INPUT for a NULL context. */
VM_API int vm_ctx_set_precision(vm_ctx *c, vm_precision p);
/* Where this context runs: "cpu", "cuda" (= "cuda:0") or "cuda:N", or
 * NULL to follow the model's setting (vm_model_set_device; the default of
 * every new context). Each context on a GPU has its own stream, cuBLAS
 * handle and activation arena there; the model's weights go to a GPU once
 * (at the first context or vm_model_set_device naming it) and are shared,
 * read-only, by every context on that GPU, until vm_model_free. No call
 * changes the calling thread's current CUDA device (the library selects
 * its own and puts the caller's back). Safe while
 * other threads run forward passes on other contexts of the model. The GEMM
 * precision on a GPU is the model's (vm_model_set_device). Returns 0, or
 * VM_ERR_INPUT for a malformed name, VM_ERR_UNSUPPORTED for a GPU that does
 * not exist (N >= vm_cuda_devices()), a build without CUDA, a model that
 * cannot run there (INT8) or no memory for the weights there (message in
 * vm_ctx_error); the context then stays where it was. */
VM_API int vm_ctx_set_device(vm_ctx *c, const char *device);
/* The device c runs on now: "cpu" or "cuda:N" (valid until the next call
 * on c). */
VM_API const char *vm_ctx_device(const vm_ctx *c);
/* As vm_forward / vm_forward_features, on this context. Return 0 or a
 * negative vm_status. */
VM_API int vm_ctx_forward(vm_ctx *c, const float *in, int B, int H, int W, float *logits);
VM_API int vm_ctx_forward_features(vm_ctx *c, const float *in, int B, int H, int W, float *feats[4]);

/* Per-op-kind time of c's forward passes (benchmarks). on = 1 zeroes the
 * counters and starts timing (a little overhead; on a GPU every op is
 * synchronised, so the sum exceeds a plain run's time), 0 stops. */
VM_API void vm_ctx_profile_enable(vm_ctx *c, int on);
/* The op kinds: how many, and the name of kind i ("layernorm",
 * "selective_scan", ...; NULL out of range). */
VM_API int vm_profile_op_count(void);
VM_API const char *vm_profile_op_name(int i);
/* Seconds c spent in op kind i since profiling was enabled. */
VM_API double vm_ctx_profile_seconds(const vm_ctx *c, int i);

/* Heads the checkpoint holds (bit mask of vm_head_kind), whether or not
 * this build runs them. Keys the engine does not know are listed by
 * vm_model_unknown_key (vmamba info --verbose). */
typedef enum {
    VM_HEAD_CLASSIFIER = 1 << 0, /* classifier.* (or the legacy head.*)  */
    VM_HEAD_UPERNET = 1 << 1,    /* mmseg decode_head.*                   */
    VM_HEAD_AUXILIARY = 1 << 2,  /* mmseg auxiliary_head.* (FCN)          */
    VM_HEAD_FPN = 1 << 3,        /* mmdet neck.*                          */
    VM_HEAD_RPN = 1 << 4,        /* mmdet rpn_head.*                      */
    VM_HEAD_ROI = 1 << 5         /* mmdet roi_head.*                      */
} vm_head_kind;
VM_API unsigned vm_model_heads(const vm_model *m);
/* Number of tensors the model keeps from its checkpoint (every one). */
VM_API size_t vm_model_tensor_count(const vm_model *m);
/* Name of the i-th checkpoint key that belongs to neither the backbone nor
 * a known head, or NULL past the last. */
VM_API const char *vm_model_unknown_key(const vm_model *m, size_t i);

/* ---- images ------------------------------------------------------------
 * Official evaluation preprocessing, bit-exact with Pillow + torchvision:
 * decode (JPEG, PNG) to RGB, bicubic-resize the shorter side to
 * int(size / crop_pct), center-crop size x size, /255, (x - mean) / std.
 * no_crop = 1 resizes straight to size x size (official TEST.CROP=False). */
typedef struct {
    int size;             /* 224 */
    double crop_pct;      /* 0.875: shorter side -> int(size / crop_pct) */
    int no_crop;
    float mean[3], std[3];/* ImageNet defaults */
} vm_preprocess_opts;

VM_API void vm_preprocess_defaults(vm_preprocess_opts *o);

/* Decode and preprocess one image file into out: float32 (3, size, size). */
VM_API int vm_preprocess_file(const char *path, const vm_preprocess_opts *o, float *out,
                       char *err, size_t errlen);

/* Name of ImageNet-1k class i (0..999), or NULL. */
VM_API const char *vm_imagenet_label(int i);

/* ---- library contract (version, postprocessing) -------------------------- */

/* The library's version, VM_VERSION_STRING of the build ("0.2.0"); compare
 * with the header's macros to catch a header/library mismatch. */
VM_API const char *vm_version(void);

/* Softmax of n float logits into n double probabilities: max-subtracted
 * and computed in double (so printed probabilities do not carry float
 * rounding). */
VM_API void vm_softmax(const float *logits, int n, double *probs);
/* Indices of the k largest of n values, largest first; equal values in
 * index order. Returns min(k, n) (fewer when only NaNs are left). */
VM_API int vm_topk(const float *v, int n, int k, int *idx);

/* Multiply-adds of one forward pass at H x W in G (fvcore's convention). */
VM_API double vm_model_gmacs(const vm_model *m, int H, int W);
/* 1 when the model has INT8 layers (written by calibration). */
VM_API int vm_model_is_int8(const vm_model *m);
/* Which library runs the model's CPU GEMMs and convolutions: "xnnpack"
 * (aarch64: oneDNN has tuned kernels only for SVE, and even there
 * XNNPACK needs fewer instructions) or "onednn"; VMAMBA_GEMM=dnnl|xnnpack at load forces one. */
VM_API const char *vm_model_gemm(const vm_model *m);

/* What the build runs on: the CPU kernels in use ("avx512", "avx2",
 * "neon", "scalar"; VMAMBA_ISA may force one) and oneDNN's version. */
VM_API const char *vm_isa(void);
VM_API const char *vm_onednn_version(void);

/* NumPy .npy tensors: float32 only, C order (what run takes and writes).
 * vm_npy_write writes atomically: no partial file on failure. */
#define VM_NPY_MAX_DIMS 8
typedef struct {
    float *data;      /* malloc'd, contiguous C order */
    int ndim;
    int64_t shape[VM_NPY_MAX_DIMS];
    size_t numel;
} vm_npy;
VM_API int vm_npy_read(const char *path, vm_npy *out, char *err, size_t errlen);
VM_API int vm_npy_write(const char *path, const float *data, int ndim, const int64_t *shape, char *err, size_t errlen);
VM_API void vm_npy_free(vm_npy *a);


/* ---- semantic segmentation --------------------------------------------
 * Official VMamba ADE20K checkpoints (mmsegmentation 1.x UPerNet) run as
 * mmseg's test pipeline: OpenCV-exact decode (EXIF orientation applied),
 * keep-ratio resize to fit scale_w x scale_h (mmseg: 2048 x 512), whole-
 * image inference, logits resized back to the original size, argmax.
 * A segmentor (the model plus its bound UPerHead, class names, palette) is
 * read-only after load and shared by any number of threads, each running
 * through its own context made on the segmentor's model:
 *     vm_segmentor *s = vm_segmentor_load("upernet.pth", err, sizeof err);
 *     vm_ctx *c = vm_ctx_new(vm_segmentor_model(s), err, sizeof err);
 *     vm_ctx_segment_file(c, s, "photo.jpg", 2048, 512, &labels, &w, &h);
 * A classification or backbone-only checkpoint is refused at load. */
typedef struct vm_segmentor vm_segmentor;
VM_API vm_segmentor *vm_segmentor_load(const char *path, char *err, size_t errlen);
VM_API void vm_segmentor_free(vm_segmentor *s);
VM_API const vm_model *vm_segmentor_model(const vm_segmentor *s);
VM_API int vm_segmentor_classes(const vm_segmentor *s);
/* Class i's name (NULL if unknown) and the classes x 3 RGB palette: the
 * checkpoint's meta.dataset_meta, else ADE20K's for 150 classes. */
VM_API const char *vm_segmentor_class_name(const vm_segmentor *s, int i);
VM_API const uint8_t *vm_segmentor_palette(const vm_segmentor *s);
/* Run the backbone and the head on "cuda" / "cuda:N" (FP32; the head through the CUDA
 * op backend of each context) or back on "cpu". Like vm_model_set_device:
 * the default of contexts that did not choose their own (vm_ctx_set_device,
 * which also moves a segmentation context); not while contexts of the
 * segmentor are running. 0, or -1 with err. */
VM_API int vm_segmentor_set_device(vm_segmentor *s, const char *device, char *err, size_t errlen);
/* Segment a BGR image (h, w, 3) uint8: labels receives (h, w) class ids.
 * Returns 0, or -1 with vm_ctx_error / vm_ctx_error_code. */
VM_API int vm_ctx_segment(vm_ctx *c, const vm_segmentor *s, const uint8_t *bgr, int w, int h, int scale_w, int scale_h,
                   uint8_t *labels);
/* Decode an image file (JPEG/PNG, as cv2.imdecode) and segment it: *labels
 * receives a malloc'd (*h, *w) label map of the oriented original size. */
VM_API int vm_ctx_segment_file(vm_ctx *c, const vm_segmentor *s, const char *image_path, int scale_w, int scale_h,
                        uint8_t **labels, int *w, int *h);


/* ==== Detection and instance segmentation (Mask R-CNN + FPN, mmdet) ======
 * A detector is mmdet's FPN neck, RPN head and StandardRoIHead (Shared2FC
 * box head, FCN mask head) bound to a VMamba backbone model, from an
 * mmdetection 3.x checkpoint (state_dict with backbone.*, neck.*,
 * rpn_head.*, roi_head.*) or a preset with random weights. It is immutable
 * once made: any number of threads share one detector, each running it on
 * its own vm_ctx of the detector's model (vm_detector_model). Results are
 * owned by the library: free them with vm_detections_free. Errors of the
 * vm_ctx_detect_* calls are the context's (vm_ctx_error). */
typedef struct vm_detector vm_detector;

typedef struct {
    int x, y, w, h;        /* the mask's window in the original image      */
    uint8_t *bits;         /* h * w bytes, 0 or 1; pixels outside are 0    */
} vm_det_mask;

typedef struct {
    int count;             /* detections, in the model's output order      */
    int height, width;     /* original image size (the masks' frame)       */
    float *boxes;          /* count x 4: x1, y1, x2, y2 in original pixels */
    float *scores;         /* count                                        */
    int *labels;           /* count, 0 .. num_classes-1                    */
    vm_det_mask *masks;    /* count                                        */
    /* milliseconds spent per stage of this call */
    double ms_preprocess, ms_backbone, ms_fpn_rpn, ms_roi_heads, ms_mask_paste;
} vm_detections;

typedef struct {
    int scale_w, scale_h;  /* keep-ratio test scale: 1333, 800             */
    float score_thr;       /* 0.05: scores above it are candidates         */
    float nms_iou;         /* 0.5                                          */
    int max_per_img;       /* 100                                          */
    float mask_thr;        /* 0.5: mask pixel on when probability >= it    */
    int rpn_nms_pre;       /* 1000 per level                               */
    int rpn_max_per_img;   /* 1000                                         */
    float rpn_nms_iou;     /* 0.7                                          */
} vm_detect_opts;

VM_API void vm_detect_defaults(vm_detect_opts *o);

/* Load an mmdet Mask R-CNN checkpoint (.pth) with its backbone (owned by
 * the detector). opts->key defaults to "state_dict". NULL on error. */
VM_API vm_detector *vm_detector_load(const char *path, const vm_load_opts *opts, char *err, size_t errlen);
/* Bind the heads from a loaded model's checkpoint tensors (the model is
 * borrowed and must outlive the detector). */
VM_API vm_detector *vm_detector_new(const vm_model *m, char *err, size_t errlen);
/* "maskrcnn-vmamba-tiny": VMamba-T backbone, FPN 256, box FC 1024, mask
 * convs 256, 80 classes, deterministic random weights (benchmarks). */
VM_API vm_detector *vm_detector_from_preset(const char *name, uint64_t seed, char *err, size_t errlen);
/* The backbone model: make contexts on it (vm_ctx_new). */
VM_API const vm_model *vm_detector_model(const vm_detector *d);
VM_API void vm_detector_free(vm_detector *d);
VM_API int vm_detector_num_classes(const vm_detector *d);
/* The checkpoint's meta.dataset_meta.classes when present, else COCO's. */
VM_API const char *vm_detector_class_name(const vm_detector *d, int label);
/* Backbone, FPN, RPN convolutions and the box/mask heads' convolutions and
 * FCs on "cuda" / "cuda:N" (FP32; NMS, RoIAlign and mask pasting stay on the CPU), or
 * back on "cpu": the default of contexts that did not choose their own
 * (vm_ctx_set_device moves one detection context). Only for a detector that
 * owns its model (vm_detector_load, vm_detector_from_preset); not while its
 * contexts are running. */
VM_API int vm_detector_set_device(vm_detector *d, const char *device, char *err, size_t errlen);
/* COCO's category id (1..90) of COCO-80 label i (0..79), or -1. */
VM_API int vm_coco_category_id(int label);

/* Detect on a decoded image (RGB, h x w, row-major): keep-ratio resize to
 * the test scale (OpenCV INTER_LINEAR), normalise, zero-pad to a multiple
 * of 32, run on context c. NULL on error (vm_ctx_error(c)). c may belong
 * to another model with the same backbone widths (e.g. the INT8 model
 * calibrated from this checkpoint's backbone). */
VM_API vm_detections *vm_ctx_detect_rgb(vm_ctx *c, const vm_detector *d, const uint8_t *rgb, int h, int w,
                                 const vm_detect_opts *o);
/* The same from an image file (JPEG, PNG; decoded as cv2.imdecode does,
 * EXIF orientation applied). */
VM_API vm_detections *vm_ctx_detect_file(vm_ctx *c, const vm_detector *d, const char *path, const vm_detect_opts *o);
/* From a normalised, padded input (3, hp, wp) float32 whose top-left
 * img_h x img_w is the resized image of an ori_h x ori_w original,
 * scale_w = img_w / ori_w and scale_h = img_h / ori_h as mmdet computes. */
VM_API vm_detections *vm_ctx_detect_tensor(vm_ctx *c, const vm_detector *d, const float *chw, int hp, int wp, int img_h,
                                    int img_w, int ori_h, int ori_w, double scale_w, double scale_h,
                                    const vm_detect_opts *o);
VM_API void vm_detections_free(vm_detections *r);
/* Detection i's mask expanded to the whole image: full receives
 * height * width bytes 0/1. */
VM_API void vm_detection_mask_full(const vm_detections *r, int i, uint8_t *full);
/* ==== end of detection ==================================================== */


/* ==== images and outputs of the dense tasks ==============================
 * What the command-line tool needs to read photos and write results of
 * segmentation and detection; every file is written atomically (data goes
 * to PATH.tmp.XXXXXX, renamed on success, removed on failure or on
 * SIGINT/SIGTERM/SIGHUP), so no partial output file is ever left. */

/* Decode a JPEG/PNG file exactly as OpenCV 4.6's cv2.imdecode(IMREAD_COLOR)
 * (the mmseg/mmdet test pipelines; EXIF orientation applied): *bgr
 * receives malloc'd (*h, *w, 3) bytes in B,G,R order (free with free()).
 * Returns 0, or -1 with a message naming the file in err. */
VM_API int vm_image_load_bgr(const char *path, uint8_t **bgr, int *w, int *h, char *err, size_t errlen);

/* labels (h, w) as an 8-bit palette PNG; colour i = palette[3i..3i+2] for
 * i < ncolors (<= 256). */
VM_API int vm_write_png_indexed(const char *path, const uint8_t *labels, int w, int h, const uint8_t *palette, int ncolors,
                         char *err, size_t errlen);
/* rgb (h, w, 3) as an 8-bit RGB PNG. */
VM_API int vm_write_png_rgb(const char *path, const uint8_t *rgb, int w, int h, char *err, size_t errlen);
/* A C-order uint8 array (NumPy '|u1'). */
VM_API int vm_write_npy_u8(const char *path, const uint8_t *data, int ndim, const int64_t *shape, char *err, size_t errlen);
/* A C-order array of any NumPy dtype descr ("<f4", "<i8", ...) of elsize
 * bytes per element. */
VM_API int vm_npy_write_typed(const char *path, const void *data, const char *descr, size_t elsize, int ndim,
                       const int64_t *shape, char *err, size_t errlen);

/* Streaming atomic output: open, write any number of times, then commit
 * (rename into place) or abort (remove). write returns 0 or -1; the first
 * error is reported by commit, which then removes the file. */
typedef struct vm_atomic_file vm_atomic_file;
VM_API vm_atomic_file *vm_atomic_open(const char *path, char *err, size_t errlen);
VM_API int vm_atomic_write(vm_atomic_file *f, const void *p, size_t n);
VM_API int vm_atomic_commit(vm_atomic_file *f, char *err, size_t errlen);
VM_API void vm_atomic_abort(vm_atomic_file *f);

/* Segmentation helpers: the segmentor preset with random weights
 * ("upernet-vmamba-tiny": VMamba-T s1l8 backbone, UPerHead channels 512,
 * 150 classes; benchmarks), the size a w x h image is resized to for a
 * scale (mmcv's keep-ratio rule: f = min(max(scale) / max(h, w),
 * min(scale) / min(h, w)), sizes int(x * f + 0.5)), and mmseg's overlay
 * (alpha 0.5, no text): out_rgb (h, w, 3) = uint8(rgb * 0.5 +
 * palette[label] * 0.5) from the BGR photo; labels >= ncolors are black. */
VM_API vm_segmentor *vm_segmentor_from_preset(const char *name, uint64_t seed, char *err, size_t errlen);
VM_API void vm_segment_resized_size(int w, int h, int scale_w, int scale_h, int *w1, int *h1);
VM_API void vm_seg_overlay(const uint8_t *bgr, const uint8_t *labels, int w, int h, const uint8_t *palette, int ncolors,
                    uint8_t *out_rgb);

/* COCO compressed RLE (pycocotools' rleEncode + rleToString) of a
 * detection mask in an img_h x img_w image: a malloc'd string (free with
 * free()), NULL when out of memory. */
VM_API char *vm_rle_encode(const vm_det_mask *m, int img_h, int img_w);

/* ==== INT8 calibration ====================================================
 * Post-training quantization: observe the FP32 model on calibration
 * inputs, choose scales, write the INT8 model (.safetensors).
 * Weights s8, symmetric, per output channel; activations u8, asymmetric,
 * per tensor (the observed range, always including 0). Every linear layer
 * (in_proj, out_proj, MLP fc1/fc2, v1 downsample reduction) runs as an
 * INT8 matmul; the classifier head and the convolutions are stored as s8
 * and run in FP32 unless int8_head / int8_convs ask. The selective scan,
 * x_proj / dt_proj, LayerNorms and residual adds stay FP32.
 *     vm_calib *c = vm_calib_begin(m, &opts);   (m: private to the caller)
 *     ... vm_forward(m, ...) over the calibration data ...
 *     vm_calib_write(c, "int8.safetensors", metadata_json, err, sizeof err);
 *     vm_calib_free(c);
 */
typedef enum { VM_CALIB_MINMAX, VM_CALIB_PERCENTILE, VM_CALIB_ENTROPY } vm_calib_method;

typedef struct {
    vm_calib_method method;
    double percentile;        /* e.g. 99.99, for VM_CALIB_PERCENTILE */
    const char *const *skip;  /* layer-name patterns (fnmatch or substring) kept FP32 */
    int nskip;
    int int8_head;            /* quantize the classifier head too */
    int int8_convs;           /* run patch-embed / downsample convolutions in INT8 */
    int dynamic;              /* INT8 linears quantize their inputs per row at run time
                                 (a scale and zero point per token, no calibrated
                                 input range): more accurate, a little slower */
} vm_calib_opts;

typedef struct vm_calib vm_calib;
typedef struct vm_smooth vm_smooth;

/* SmoothQuant (optional, before vm_calib_begin): observe per-channel input
 * maxima of the layers after a LayerNorm (in_proj, fc1) through vm_forward
 * passes, then fold s_j = max|X_j|^alpha / max|W_:,j|^(1-alpha) into the
 * LayerNorm and the layer (the FP32 model computes the same function up to
 * rounding). apply returns the layers smoothed, or -1 (vm_model_error;
 * nothing changed). NULL from begin: see vm_model_error. */
VM_API vm_smooth *vm_smooth_begin(vm_model *m);
VM_API int vm_smooth_apply(vm_smooth *s, double alpha);
VM_API void vm_smooth_free(vm_smooth *s);

/* Start observing m's linear-layer inputs through vm_forward (the model's
 * internal context). m must be private to the caller (no contexts): it is
 * turned back to plain weights. NULL on error (vm_model_error). */
VM_API vm_calib *vm_calib_begin(vm_model *m, const vm_calib_opts *o);
/* Stop observing; write the INT8 model with metadata_json (may be NULL).
 * 0, or -1 with the message in err (and no file). */
VM_API int vm_calib_write(vm_calib *c, const char *path, const char *metadata_json, char *err, size_t errlen);
/* Each layer's error on the first calibration batch (cosine, relative L2
 * of its INT8 output against FP32), printed on f. */
VM_API void vm_calib_report(vm_calib *c, FILE *f);
/* Linear layers observed. */
VM_API int vm_calib_layers(const vm_calib *c);
VM_API void vm_calib_free(vm_calib *c);

/* Dense models (segmentation, detection and backbone-only checkpoints):
 * their calibration inputs go through the task's test pipeline instead of
 * vm_forward, so the observed ranges are those segment / detect see:
 *     vm_calib_dense *d = vm_calib_dense_new(m, VM_CALIB_TASK_SEGMENT, 2048, 512, 1, err, sizeof err);
 *     vm_calib *c = vm_calib_begin(m, &opts);
 *     ... vm_calib_dense_image(d, c, photo, err, sizeof err) per photo ...
 *     char *meta = vm_calib_dense_metadata(d, model_path, err, sizeof err);
 *     vm_calib_write(c, "int8.safetensors", meta, err, sizeof err);
 * The INT8 file keeps every head tensor (FP32 as loaded) and is loaded by
 * vm_segmentor_load / vm_detector_load like the FP32 checkpoint; its
 * backbone's linear layers are INT8 as above. */
typedef enum {
    VM_CALIB_TASK_SEGMENT = 1, /* keep-ratio resize to fit the scale (mmseg) */
    VM_CALIB_TASK_DETECT = 2   /* the same, then zero padding to multiples of 32 (mmdet) */
} vm_calib_task;
typedef struct vm_calib_dense vm_calib_dense;

/* A runner of calibration inputs for m (the model given to vm_smooth_begin
 * / vm_calib_begin; it must outlive the runner): images decoded as
 * OpenCV's imdecode (EXIF orientation applied), resized keeping their
 * aspect ratio to fit scale_w x scale_h (INTER_LINEAR), normalised with
 * mmseg's / mmdet's mean and std. with_head: m holds a UPerNet head
 * (decode_head.*), which runs too, so that calibration sees each of its
 * convolutions' inputs and writes those convolutions INT8 (s8 per output
 * channel, BatchNorm folded into the scales, u8 inputs; they run on the CPU
 * only); 0 keeps every head FP32. NULL with a message in err. */
VM_API vm_calib_dense *vm_calib_dense_new(vm_model *m, vm_calib_task task, int scale_w, int scale_h, int with_head, char *err,
                                   size_t errlen);
/* One calibration input, a photo (JPEG/PNG) or an already normalised
 * (3, H, W) float32 tensor: m's backbone runs on it (observed by an active
 * vm_smooth or vm_calib of m), then the UPerHead when with_head, whose
 * convolution inputs go to cal (NULL: not observed, e.g. a SmoothQuant
 * pass). 0, or -1 with a message naming the file in err. */
VM_API int vm_calib_dense_image(vm_calib_dense *d, vm_calib *cal, const char *path, char *err, size_t errlen);
VM_API int vm_calib_dense_tensor(vm_calib_dense *d, vm_calib *cal, const float *chw, int H, int W, char *err, size_t errlen);
/* The metadata for vm_calib_write: {"task": "segment"|"detect",
 * "calibration_scale": [w, h], "dataset_meta": {"classes": [...],
 * "palette": [...]}} with the class names and palette read from the
 * checkpoint at model_path (segment / detect read them back from the INT8
 * file; "dataset_meta" is left out when the checkpoint has none). A
 * malloc'd string (free with free()), or NULL with a message in err. */
VM_API char *vm_calib_dense_metadata(const vm_calib_dense *d, const char *model_path, char *err, size_t errlen);
/* Sensitivity-driven mixed precision, after the calibration passes and
 * before vm_calib_write: keeps the backbone layers whose quantization
 * moves the features most in FP32 until, on every one of images (the
 * calibration photos, through d's pipeline; up to 64), each of the four
 * feature maps of the INT8 backbone has a cosine >= target against FP32's.
 * Each unit (a linear layer, a patch-embed or downsample convolution, a
 * block's x_proj / dt_proj) is ranked by the damage it does quantised
 * alone; the fewest top-ranked units that meet the target are found by
 * bisection. Trial INT8 files are written to scratch (removed). The units
 * kept FP32 and the cosines reached go into the file's "quantization"
 * metadata ("mixed_precision"). Returns the number of units kept FP32, or
 * -1 with a message in err (the calibration is then unchanged). */
VM_API int vm_calib_dense_mixed(vm_calib_dense *d, vm_calib *c, const char *const *images, int nimages, double target,
                                const char *scratch, FILE *log, char *err, size_t errlen);
/* UPerHead convolutions the runner observes (0 without the head). */
VM_API int vm_calib_dense_head_convs(const vm_calib_dense *d);
VM_API void vm_calib_dense_free(vm_calib_dense *d);

#ifdef __cplusplus
}
#endif
#endif /* VMAMBA_H */
