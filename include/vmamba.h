/*
 * vmamba.h - the one public header of libvmamba.
 *
 * Data flow: load a model (official .pth checkpoint or a named preset with
 * random weights), then run a forward pass on float32 NCHW images, getting
 * logits (classifier) or the four stage feature maps (backbone).
 *
 * Errors: functions that take `char *err, size_t errlen` write a message of
 * the form "<file>: <problem>" there on failure. A loaded model carries its
 * own error string for later calls (vm_model_error), like a tjhandle.
 */
#ifndef VMAMBA_H
#define VMAMBA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VM_VERSION_STRING "0.1.0"

typedef struct vm_model vm_model; /* opaque */

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
vm_model *vm_model_load(const char *path, const vm_load_opts *opts,
                        char *err, size_t errlen);

/* Build one of the released architectures by name with deterministic
 * random weights (for benchmarks). num_classes <= 0 means 1000. */
vm_model *vm_model_from_preset(const char *name, int num_classes,
                               uint64_t seed, char *err, size_t errlen);

/* Load also reads .safetensors files written by vm_model_save. */

/* Save the model's weights as .safetensors (dtype "f32", "f16" or "bf16"
 * storage) with a JSON metadata string (preprocessing defaults, labels)
 * stored under "__metadata__"/"vmamba". Written atomically. */
int vm_model_save(vm_model *m, const char *path, const char *dtype, const char *metadata_json);
/* That metadata string of a model loaded from .safetensors, or NULL. */
const char *vm_model_metadata(const vm_model *m);

/* Names of the presets, NULL-terminated. */
const char *const *vm_preset_names(void);

void vm_model_free(vm_model *m);

/* Last error of calls on this model. Never NULL. */
const char *vm_model_error(const vm_model *m);

void vm_model_info(const vm_model *m, vm_info *out);
const char *vm_family_name(vm_family f);

/* Where forward passes run. "cpu" (default) or "cuda" (builds configured
 * with --with-cuda and a GPU present). precision selects the GPU GEMM
 * arithmetic: FP32 (exact), or TF32 / FP16 / BF16 tensor cores with FP32
 * storage and accumulation. Returns 0, or -1 (see vm_model_error). */
typedef enum { VM_PRECISION_FP32 = 0, VM_PRECISION_TF32, VM_PRECISION_FP16, VM_PRECISION_BF16 } vm_precision;
int vm_model_set_device(vm_model *m, const char *device, vm_precision precision);
const char *vm_model_device(const vm_model *m);
/* Number of usable CUDA devices; 0 without a GPU or without CUDA support. */
int vm_cuda_devices(void);

/* Memory for input batches (and outputs). With a CUDA device present it is
 * page-locked, so a model on the GPU uploads it at full bus speed (plain
 * malloc'd memory is staged through the driver at a fraction of that);
 * otherwise it is ordinary aligned memory. NULL when out of memory. Free
 * with vm_host_free only. */
void *vm_host_alloc(size_t bytes);
void vm_host_free(void *p);

/* Threads used by forward passes; <= 0 means OMP_NUM_THREADS or all cores. */
void vm_set_threads(int n);
int vm_get_threads(void);

/* Classifier forward. in: float32 (B,3,H,W) contiguous; logits: (B,classes).
 * H and W must be >= 1 (>= 32 recommended). Returns 0 or -1 (see
 * vm_model_error). */
int vm_forward(vm_model *m, const float *in, int B, int H, int W,
               float *logits);

/* Shape of backbone feature map i (0..3) for an H x W input. */
void vm_feature_shape(const vm_model *m, int H, int W, int i,
                      int *C, int *h, int *w);

/* Backbone forward: feats[i] receives (B, C_i, h_i, w_i) NCHW float32,
 * sized by vm_feature_shape. Needs a backbone checkpoint (outnorm0..3);
 * a classifier gives an error. */
int vm_forward_features(vm_model *m, const float *in, int B, int H, int W,
                        float *feats[4]);

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

void vm_preprocess_defaults(vm_preprocess_opts *o);

/* Decode and preprocess one image file into out: float32 (3, size, size). */
int vm_preprocess_file(const char *path, const vm_preprocess_opts *o, float *out,
                       char *err, size_t errlen);

/* Name of ImageNet-1k class i (0..999), or NULL. */
const char *vm_imagenet_label(int i);

/* ---- semantic segmentation --------------------------------------------
 * Official VMamba ADE20K checkpoints (mmsegmentation 1.x UPerNet) run as
 * mmseg's test pipeline: OpenCV-exact decode (EXIF orientation applied),
 * keep-ratio resize to fit scale_w x scale_h (mmseg: 2048 x 512), whole-
 * image inference, logits resized back to the original size, argmax.
 * A segmentor is used by one thread at a time. */
typedef struct vm_segmentor vm_segmentor;
vm_segmentor *vm_segmentor_load(const char *path, char *err, size_t errlen);
void vm_segmentor_free(vm_segmentor *s);
/* Segment an image file: *labels receives a malloc'd (*h, *w) uint8 label
 * map of the (oriented) original size. Returns 0 or -1 with a message. */
int vm_segment_file(vm_segmentor *s, const char *image_path, int scale_w, int scale_h, uint8_t **labels, int *w,
                    int *h, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* VMAMBA_H */
