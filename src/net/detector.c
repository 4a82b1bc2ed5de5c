/* detector.c - the public detection API: a VMamba backbone (vm_model) plus
 * the Mask R-CNN heads module, the mmdet test pipeline around them. */
#include "net/detector.h"
#include "net/det_weights.h"
#include "net/dataset_meta.h"
#include "image/image.h"
#include "image/decode_cv.h"
#include "image/resize_cv.h"
#include "core/util.h"
#include "model/model.h" /* vm_backbone_from_preset */

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Immutable once made: the heads' bound weights and the class names, over
 * a model (owned when the detector loaded it). Shared by any number of
 * threads; each runs it on its own vm_ctx of that model. */
struct vm_detector {
    vm_model *owned;
    const vm_model *m;
    vm_head *head;
    char **classes;                /* NULL-terminated, or NULL = COCO */
    int nclasses;
};

static const char *const coco80[80] = {
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush"};

/* COCO's category ids of the 80 classes (the 2017 annotations skip some). */
static const int coco80_ids[80] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                                   22, 23, 24, 25, 27, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44,
                                   46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65,
                                   67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90};

int vm_coco_category_id(int label) { return label >= 0 && label < 80 ? coco80_ids[label] : -1; }

void vm_detect_defaults(vm_detect_opts *o) {
    o->scale_w = 1333;
    o->scale_h = 800;
    o->score_thr = 0.05f;
    o->nms_iou = 0.5f;
    o->max_per_img = 100;
    o->mask_thr = 0.5f;
    o->rpn_nms_pre = 1000;
    o->rpn_max_per_img = 1000;
    o->rpn_nms_iou = 0.7f;
}

/* Bind the heads from src onto model m (owned: freed on failure). */
static vm_detector *make(const vm_model *m, vm_model *owned, const vm_weights_src *src, char *err, size_t errlen) {
    vm_info I;
    vm_model_info(m, &I);
    vm_detector *d = NULL;
    if (!I.is_backbone) {
        vm_errf(err, errlen, "%s: the backbone has no outnorm0..3 layers (not an mmdet backbone)", src->path);
        goto fail;
    }
    if (!(d = calloc(1, sizeof *d))) {
        vm_errf(err, errlen, "%s: out of memory (%zu bytes) for the detector", src->path, sizeof *d);
        goto fail;
    }
    d->m = m;
    d->head = vm_maskrcnn_head_ops.bind(src, "", err, errlen);
    if (!d->head) goto fail;
    const det_weights *w = (const det_weights *)d->head;
    for (int i = 0; i < 4; i++)
        if (w->Cin[i] != I.dims[i]) {
            vm_errf(err, errlen, "%s: FPN lateral %d takes %d channels but backbone stage %d has %d", src->path, i,
                    w->Cin[i], i, I.dims[i]);
            goto fail;
        }
    d->owned = owned;
    return d;
fail:
    vm_detector_free(d);
    vm_model_free(owned);
    return NULL;
}

vm_detector *vm_detector_new(const vm_model *m, char *err, size_t errlen) {
    vm_weights_src src;
    vm_model_weights(m, &src);
    return make(m, NULL, &src, err, errlen);
}

vm_detector *vm_detector_load(const char *path, const vm_load_opts *opts, char *err, size_t errlen) {
    vm_load_opts lo = {opts && opts->key ? opts->key : "state_dict", 1};
    vm_model *m = vm_model_load(path, &lo, err, errlen);
    if (!m) return NULL;
    vm_weights_src src;
    vm_model_weights(m, &src);
    vm_detector *d = make(m, m, &src, err, errlen);
    if (d) {
        vm_dataset_meta meta;
        if (vm_dataset_meta_read(path, &meta, err, errlen) ||
            (meta.n == 0 && vm_dataset_meta_from_json(vm_model_metadata(m), &meta) &&
             vm_errf(err, errlen, "%s: out of memory reading the class names", path))) { /* from_json: an INT8 file's copy */
            vm_detector_free(d);
            return NULL;
        }
        if (meta.n == ((const det_weights *)d->head)->ncls) { /* names that do not fit the head are not used */
            /* The names move over (NULL-terminated: one more slot). */
            char **c = realloc(meta.names, ((size_t)meta.n + 1) * sizeof *c);
            if (!c) {
                vm_dataset_meta_free(&meta);
                vm_detector_free(d);
                vm_errf(err, errlen, "%s: out of memory for the class names", path);
                return NULL;
            }
            c[meta.n] = NULL;
            d->classes = c;
            d->nclasses = meta.n;
            meta.names = NULL;
            meta.n = 0;
        }
        vm_dataset_meta_free(&meta);
    }
    return d;
}

vm_detector *vm_detector_from_preset(const char *name, uint64_t seed, char *err, size_t errlen) {
    if (strcmp(name, "maskrcnn-vmamba-tiny") != 0) {
        vm_errf(err, errlen, "%s: unknown detection preset (known: maskrcnn-vmamba-tiny)", name);
        return NULL;
    }
    vm_model *m = vm_backbone_from_preset("vmamba-tiny-s1l8", seed, err, errlen);
    if (!m) return NULL;
    vm_info I;
    vm_model_info(m, &I);
    det_src *src = det_src_random(I.dims, 256, 1024, 80, 256, seed);
    if (!src) {
        vm_errf(err, errlen, "%s: out of memory for the random head weights", name);
        vm_model_free(m);
        return NULL;
    }
    vm_detector *d = make(m, m, det_src_weights(src), err, errlen);
    det_src_close(src); /* bind copied what it keeps */
    return d;
}

const vm_model *vm_detector_model(const vm_detector *d) { return d->m; }

void vm_detector_free(vm_detector *d) {
    if (!d) return;
    if (d->head) vm_maskrcnn_head_ops.free(d->head);
    vm_model_free(d->owned);
    if (d->classes)
        for (int i = 0; d->classes[i]; i++) free(d->classes[i]);
    free(d->classes);
    free(d);
}

int vm_detector_num_classes(const vm_detector *d) { return ((const det_weights *)d->head)->ncls; }

const char *vm_detector_class_name(const vm_detector *d, int label) {
    if (label < 0 || label >= vm_detector_num_classes(d)) return NULL;
    if (d->classes) return d->classes[label];
    return label < 80 ? coco80[label] : NULL;
}

void vm_detections_free(vm_detections *r) {
    if (!r) return;
    for (int i = 0; r->masks && i < r->count; i++) free(r->masks[i].bits);
    free(r->masks); free(r->boxes); free(r->scores); free(r->labels);
    free(r);
}

void vm_detection_mask_full(const vm_detections *r, int i, uint8_t *full) {
    memset(full, 0, (size_t)r->height * r->width);
    if (i < 0 || i >= r->count || !r->masks) return;
    const vm_det_mask *m = &r->masks[i];
    for (int y = 0; y < m->h; y++) memcpy(full + (size_t)(m->y + y) * r->width + m->x, m->bits + (size_t)y * m->w, (size_t)m->w);
}

static double now_ms(void) { return omp_get_wtime() * 1e3; }

vm_detections *vm_ctx_detect_tensor_given(vm_ctx *c, const vm_detector *d, const float *chw, int hp, int wp, int img_h,
                                          int img_w, int ori_h, int ori_w, double scale_w, double scale_h,
                                          const vm_detect_opts *o, det_trace_fn trace, void *user, const det_given *g) {
    if (!c || !d) return NULL;
    c->status = VM_OK;
    c->err[0] = 0;
    vm_detect_opts def;
    if (!o) { vm_detect_defaults(&def); o = &def; }
    if (c->m != d->m) {
        /* another model's context: fine if the backbone widths fit (an
         * INT8 model calibrated from the same checkpoint, say) */
        vm_info I, J;
        vm_model_info(c->m, &I);
        vm_model_info(d->m, &J);
        for (int i = 0; i < 4; i++)
            if (I.dims[i] != J.dims[i] || !I.is_backbone) {
                vm_ctx_fail(c, VM_ERR_INPUT, "this context's model is not a backbone of the detector's widths");
                return NULL;
            }
    }
    if (!chw || hp < 32 || wp < 32 || hp % 32 || wp % 32 || img_h < 1 || img_w < 1 || img_h > hp || img_w > wp ||
        ori_h < 1 || ori_w < 1 || !(scale_w > 0) || !(scale_h > 0)) {
        vm_ctx_fail(c, VM_ERR_INPUT, "detection input: padded %dx%d (multiples of 32), image %dx%d inside it, original %dx%d, scale %g,%g",
                    wp, hp, img_w, img_h, ori_w, ori_h, scale_w, scale_h);
        return NULL;
    }
    if ((size_t)ori_h * ori_w > (1u << 28)) {
        vm_ctx_fail(c, VM_ERR_INPUT, "original image %dx%d too large", ori_w, ori_h);
        return NULL;
    }
    vm_detections *r = calloc(1, sizeof *r);
    if (!r) { vm_ctx_fail(c, VM_ERR_NOMEM, "out of memory"); return NULL; }
    r->height = ori_h;
    r->width = ori_w;
    det_given none = {0};
    if (!g) g = &none;
    if ((g->props && g->nprops < 0) || (g->dets && (g->ndets < 0 || !g->labels))) {
        vm_ctx_fail(c, VM_ERR_INPUT, "given proposals or detections: negative count or no labels");
        vm_detections_free(r);
        return NULL;
    }
    if (g->dets)
        for (int i = 0; i < g->ndets; i++)
            if (g->labels[i] < 0 || g->labels[i] >= vm_detector_num_classes(d)) {
                vm_ctx_fail(c, VM_ERR_INPUT, "given detection %d: label %d out of range", i, g->labels[i]);
                vm_detections_free(r);
                return NULL;
            }
    det_io io = {img_h, img_w, ori_h, ori_w, scale_w, scale_h, *o, trace, user, r,
                 g->props, g->nprops, g->dets, g->labels, g->ndets};
    double t0 = now_ms();
    if (vm_ctx_run_head(c, &vm_maskrcnn_head_ops, d->head, chw, 1, hp, wp, &io)) {
        vm_detections_free(r);
        return NULL;
    }
    /* the backbone (and any planning) is what the heads did not time */
    r->ms_backbone = now_ms() - t0 - r->ms_fpn_rpn - r->ms_roi_heads - r->ms_mask_paste;
    return r;
}

vm_detections *vm_ctx_detect_tensor_traced(vm_ctx *c, const vm_detector *d, const float *chw, int hp, int wp, int img_h,
                                           int img_w, int ori_h, int ori_w, double scale_w, double scale_h,
                                           const vm_detect_opts *o, det_trace_fn trace, void *user) {
    return vm_ctx_detect_tensor_given(c, d, chw, hp, wp, img_h, img_w, ori_h, ori_w, scale_w, scale_h, o, trace, user, NULL);
}

vm_detections *vm_ctx_detect_tensor(vm_ctx *c, const vm_detector *d, const float *chw, int hp, int wp, int img_h, int img_w,
                                    int ori_h, int ori_w, double scale_w, double scale_h, const vm_detect_opts *o) {
    return vm_ctx_detect_tensor_traced(c, d, chw, hp, wp, img_h, img_w, ori_h, ori_w, scale_w, scale_h, o, NULL, NULL);
}

/* mmdet's test pipeline on interleaved 8-bit pixels (RGB, or BGR as
 * cv2.imdecode gives): mmcv.imrescale (keep ratio, cv2 INTER_LINEAR),
 * BGR->RGB, (x - mean) / std in float32, zero padding to multiples of 32. */
static vm_detections *detect_pixels(vm_ctx *c, const vm_detector *d, const uint8_t *px, int h, int w, int bgr,
                                    const vm_detect_opts *o) {
    vm_detect_opts def;
    if (!o) { vm_detect_defaults(&def); o = &def; }
    if (!c || !d) return NULL;
    if (!px || h < 1 || w < 1 || (size_t)h * w > VM_IMAGE_MAX_PIXELS || o->scale_w < 1 || o->scale_h < 1 ||
        o->scale_w > 16384 || o->scale_h > 16384) {
        vm_ctx_fail(c, VM_ERR_INPUT, "bad detection input: image %dx%d, scale %d,%d", w, h, o->scale_w, o->scale_h);
        return NULL;
    }
    double t0 = now_ms();
    int nw, nh;
    vm_cv_rescale_size(w, h, o->scale_w, o->scale_h, &nw, &nh);
    if (nw < 1 || nh < 1 || (size_t)nw * nh > VM_IMAGE_MAX_PIXELS) {
        vm_ctx_fail(c, VM_ERR_INPUT, "image %dx%d rescales to %dx%d", w, h, nw, nh);
        return NULL;
    }
    int hp = (nh + 31) / 32 * 32, wp = (nw + 31) / 32 * 32;
    uint8_t *rs = malloc((size_t)nw * nh * 3);
    float *x = calloc((size_t)3 * hp * wp, sizeof(float));
    if (!rs || !x) {
        free(rs); free(x);
        vm_ctx_fail(c, VM_ERR_NOMEM, "out of memory for a %dx%d input", wp, hp);
        return NULL;
    }
    if (vm_cv_resize_linear(px, w, h, 3, rs, nw, nh)) {
        free(rs); free(x);
        vm_ctx_fail(c, VM_ERR_NOMEM, "out of memory resizing to %dx%d", nw, nh);
        return NULL;
    }
    const float mean[3] = {123.675f, 116.28f, 103.53f}, std[3] = {58.395f, 57.12f, 57.375f};
    for (int c = 0; c < 3; c++) {
        int src_c = bgr ? 2 - c : c;
#pragma omp parallel for schedule(static)
        for (int y = 0; y < nh; y++)
            for (int xx = 0; xx < nw; xx++)
                x[((size_t)c * hp + y) * wp + xx] = ((float)rs[((size_t)y * nw + xx) * 3 + src_c] - mean[c]) / std[c];
    }
    free(rs);
    double t1 = now_ms();
    vm_detections *r = vm_ctx_detect_tensor(c, d, x, hp, wp, nh, nw, h, w, (double)nw / w, (double)nh / h, o);
    free(x);
    if (r) r->ms_preprocess = t1 - t0;
    return r;
}

vm_detections *vm_ctx_detect_rgb(vm_ctx *c, const vm_detector *d, const uint8_t *rgb, int h, int w, const vm_detect_opts *o) {
    return detect_pixels(c, d, rgb, h, w, 0, o);
}

vm_detections *vm_ctx_detect_file(vm_ctx *c, const vm_detector *d, const char *path, const vm_detect_opts *o) {
    vm_image im;
    char e[512];
    if (!c || !d) return NULL;
    double t0 = now_ms();
    if (vm_cv_load(path, &im, e, sizeof e)) { /* BGR, EXIF applied, as cv2.imdecode */
        vm_ctx_fail(c, VM_ERR_IO, "%s", e);
        return NULL;
    }
    double t1 = now_ms();
    vm_detections *r = detect_pixels(c, d, im.rgb, im.h, im.w, 1, o);
    vm_image_free(&im);
    if (r) r->ms_preprocess += t1 - t0;
    return r;
}

int vm_detector_set_device(vm_detector *d, const char *device, char *err, size_t errlen) {
    if (!d) return vm_errf(err, errlen, "detector is NULL");
    if (!d->owned)
        return vm_errf(err, errlen, "this detector borrows its model (vm_detector_new): set the model's device or the context's (vm_ctx_set_device) instead");
    if (vm_model_set_device(d->owned, device, VM_PRECISION_FP32)) return vm_errf(err, errlen, "%s", vm_model_error(d->owned));
    return 0;
}
