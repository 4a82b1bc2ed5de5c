/* calib_dense.c - calibration inputs for the dense-prediction models
 * (segmentation, detection, bare backbones): each photo goes through the
 * test pipeline its task uses (OpenCV decode with EXIF orientation, mmcv's
 * keep-ratio INTER_LINEAR resize to fit the scale, BGR->RGB, normalise;
 * detection pads with zeros to multiples of 32), not the classification
 * crop: the activation ranges then are those `segment` / `detect` see.
 * The public side is vm_calib_dense_* in include/vmamba.h. */
#include <stdlib.h>
#include <string.h>

#include "quant.h"
#include "core/util.h"
#include "net/dataset_meta.h"
#include "image/decode_cv.h"
#include "image/resize_cv.h"
#include "net/heads/upernet.h"
#include "post/seg_post.h"

/* Largest resized input accepted here (as segment's bound). */
#define MAX_PIXELS (1ull << 26)

struct vm_calib_dense {
    vm_model *m;
    vm_calib_task task;
    int sw, sh;
    vm_head *uper; /* the UPerHead bound from m's weights, or NULL */
};

vm_calib_dense *vm_calib_dense_new(vm_model *m, vm_calib_task task, int scale_w, int scale_h, int with_head, char *err,
                                   size_t errlen) {
    if (!m || (task != VM_CALIB_TASK_SEGMENT && task != VM_CALIB_TASK_DETECT) || scale_w < 1 || scale_h < 1) {
        vm_errf(err, errlen, "vm_calib_dense_new: no model, an unknown task or a scale below 1x1");
        return NULL;
    }
    vm_calib_dense *d = calloc(1, sizeof *d);
    if (!d) {
        vm_errf(err, errlen, "out of memory");
        return NULL;
    }
    *d = (vm_calib_dense){m, task, scale_w, scale_h, NULL};
    if (with_head) {
        if (!(vm_model_heads(m) & VM_HEAD_UPERNET)) {
            vm_errf(err, errlen, "%s: no UPerNet head (decode_head.*) to calibrate", m->path ? m->path : "(preset)");
            free(d);
            return NULL;
        }
        vm_weights_src src;
        vm_model_weights(m, &src);
        if (!(d->uper = vm_upernet_ops.bind(&src, "decode_head.", err, errlen))) {
            free(d);
            return NULL;
        }
    }
    return d;
}

void vm_calib_dense_free(vm_calib_dense *d) {
    if (!d) return;
    if (d->uper) vm_upernet_ops.free(d->uper);
    free(d);
}

int vm_calib_dense_head_convs(const vm_calib_dense *d) {
    int total = 0;
    if (d && d->uper) vm_upernet_int8_convs(d->uper, &total);
    return total;
}

static void obs(void *user, const char *conv, const float *x, size_t hw, int C) { vm_calib_observe(user, conv, x, hw, C); }

int vm_calib_dense_tensor(vm_calib_dense *d, vm_calib *cal, const float *chw, int H, int W, char *err, size_t errlen) {
    vm_ctx *c = vm_model_ctx(d->m);
    if (!c) return vm_errf(err, errlen, "%s", vm_model_error(d->m));
    vm_feats f;
    if (vm_ctx_backbone(c, chw, 1, H, W, &f)) return vm_errf(err, errlen, "%s", vm_ctx_error(c));
    if (!d->uper) return 0;
    /* The head on this context's maps (host memory: the CPU backend), with
     * its own plan: every convolution's input goes to the calibration. */
    vm_head_plan *p = vm_upernet_ops.plan(d->uper, c->be, &f, err, errlen);
    if (!p) return -1;
    float *logits = malloc(sizeof(float) * (size_t)f.H[0] * f.W[0] * vm_upernet_classes(d->uper));
    int rc = -1;
    if (!logits) vm_errf(err, errlen, "out of memory for the logits of a %dx%d map", f.W[0], f.H[0]);
    else {
        if (cal) vm_upernet_set_observe(p, obs, cal);
        rc = vm_upernet_ops.forward(d->uper, p, &f, logits, err, errlen);
    }
    free(logits);
    vm_upernet_ops.plan_free(p);
    return rc;
}

float *vm_calib_dense_input(const vm_calib_dense *d, const char *path, int *H, int *W, char *err, size_t errlen) {
    vm_image im;
    if (vm_cv_load(path, &im, err, errlen)) return NULL; /* BGR, EXIF applied */
    int w1, h1, pad32 = d->task == VM_CALIB_TASK_DETECT, sw = d->sw, sh = d->sh;
    float *x = NULL;
    vm_cv_rescale_size(im.w, im.h, sw, sh, &w1, &h1);
    if (w1 < 1 || h1 < 1 || (uint64_t)w1 * h1 > MAX_PIXELS) {
        vm_errf(err, errlen, "%s: %dx%d rescaled to %dx%d by scale %d,%d: out of range", path, im.w, im.h, w1, h1, sw, sh);
        vm_image_free(&im);
        return NULL;
    }
    int hp = pad32 ? (h1 + 31) / 32 * 32 : h1, wp = pad32 ? (w1 + 31) / 32 * 32 : w1;
    uint8_t *rs = malloc((size_t)w1 * h1 * 3);
    float *in = malloc(sizeof(float) * 3 * (size_t)w1 * h1);
    x = pad32 ? calloc((size_t)3 * hp * wp, sizeof(float)) : in;
    if (!rs || !in || !x) {
        vm_errf(err, errlen, "%s: out of memory for a %dx%d input", path, wp, hp);
        goto fail;
    }
    if (vm_cv_resize_linear(im.rgb, im.w, im.h, 3, rs, w1, h1)) {
        vm_errf(err, errlen, "%s: out of memory resizing to %dx%d", path, w1, h1);
        goto fail;
    }
    vm_seg_normalize(rs, w1, h1, in); /* mmseg's and mmdet's mean/std, BGR->RGB, planar */
    if (pad32) {
        for (int ch = 0; ch < 3; ch++)
            for (int y = 0; y < h1; y++)
                memcpy(x + ((size_t)ch * hp + y) * wp, in + ((size_t)ch * h1 + y) * w1, sizeof(float) * w1);
        free(in);
    }
    free(rs);
    vm_image_free(&im);
    *H = hp, *W = wp;
    return x;
fail:
    if (x != in) free(x);
    free(in);
    free(rs);
    vm_image_free(&im);
    return NULL;
}

int vm_calib_dense_image(vm_calib_dense *d, vm_calib *cal, const char *path, char *err, size_t errlen) {
    int hp, wp, rc;
    float *x = vm_calib_dense_input(d, path, &hp, &wp, err, errlen);
    if (!x) return -1;
    if ((rc = vm_calib_dense_tensor(d, cal, x, hp, wp, err, errlen))) {
        /* name the photo in the message */
        char tmp[512];
        snprintf(tmp, sizeof tmp, "%s", err);
        vm_errf(err, errlen, "%s: %s", path, tmp);
    }
    free(x);
    return rc;
}

char *vm_calib_dense_metadata(const vm_calib_dense *d, const char *model_path, char *err, size_t errlen) {
    vm_dataset_meta dm;
    if (vm_dataset_meta_read(model_path, &dm, err, errlen)) return NULL;
    char *dj = vm_dataset_meta_to_json(&dm), *meta = NULL;
    if (dm.n > 0 && !dj) goto oom;
    size_t len = 160 + (dj ? strlen(dj) : 0);
    if (!(meta = malloc(len))) goto oom;
    snprintf(meta, len, "{\"task\": \"%s\", \"calibration_scale\": [%d, %d]%s%s}",
             d->task == VM_CALIB_TASK_DETECT ? "detect" : "segment", d->sw, d->sh, dj ? ", \"dataset_meta\": " : "",
             dj ? dj : "");
    free(dj);
    vm_dataset_meta_free(&dm);
    return meta;
oom:
    vm_errf(err, errlen, "%s: out of memory for the INT8 file's metadata", model_path);
    free(dj);
    vm_dataset_meta_free(&dm);
    return NULL;
}
