/* calib_dense.c - calibration inputs for the dense-prediction models
 * (segmentation, detection, bare backbones): each photo goes through the
 * test pipeline its task uses (OpenCV decode with EXIF orientation, mmcv's
 * keep-ratio INTER_LINEAR resize to fit the scale, BGR->RGB, normalise;
 * detection pads with zeros to multiples of 32), not the classification
 * crop: the activation ranges then are those `segment` / `detect` see. */
#include <stdlib.h>
#include <string.h>

#include "quant.h"
#include "core/util.h"
#include "image/decode_cv.h"
#include "image/resize_cv.h"
#include "net/heads/upernet.h"
#include "post/seg_post.h"

/* Largest resized input accepted here (as segment's bound). */
#define MAX_PIXELS (1ull << 26)

static void obs(void *user, const char *conv, const float *x, size_t hw, int C) { vm_calib_observe(user, conv, x, hw, C); }

int vm_calib_dense_tensor(vm_calib *cal, vm_model *m, const vm_head *uper, const float *chw, int H, int W, char *err,
                          size_t errlen) {
    vm_ctx *c = vm_model_ctx(m);
    if (!c) return vm_errf(err, errlen, "%s", vm_model_error(m));
    vm_feats f;
    if (vm_ctx_backbone(c, chw, 1, H, W, &f)) return vm_errf(err, errlen, "%s", vm_ctx_error(c));
    if (!uper) return 0;
    /* The head on this context's maps, with its own plan: every
     * convolution's input goes to the calibration. */
    vm_head_plan *p = vm_upernet_ops.plan(uper, &f, err, errlen);
    if (!p) return -1;
    float *logits = malloc(sizeof(float) * (size_t)f.H[0] * f.W[0] * vm_upernet_classes(uper));
    int rc = -1;
    if (!logits) vm_errf(err, errlen, "out of memory for the logits of a %dx%d map", f.W[0], f.H[0]);
    else {
        vm_upernet_set_observe(p, obs, cal);
        rc = vm_upernet_ops.forward(uper, p, &f, logits, err, errlen);
    }
    free(logits);
    vm_upernet_ops.plan_free(p);
    return rc;
}

int vm_calib_dense_image(vm_calib *cal, vm_model *m, const vm_head *uper, const char *path, int pad32, int sw, int sh,
                         char *err, size_t errlen) {
    vm_image im;
    if (vm_cv_load(path, &im, err, errlen)) return -1; /* BGR, EXIF applied */
    int w1, h1, rc = -1;
    vm_cv_rescale_size(im.w, im.h, sw, sh, &w1, &h1);
    if (w1 < 1 || h1 < 1 || (uint64_t)w1 * h1 > MAX_PIXELS) {
        vm_errf(err, errlen, "%s: %dx%d rescaled to %dx%d by scale %d,%d: out of range", path, im.w, im.h, w1, h1, sw, sh);
        vm_image_free(&im);
        return -1;
    }
    int hp = pad32 ? (h1 + 31) / 32 * 32 : h1, wp = pad32 ? (w1 + 31) / 32 * 32 : w1;
    uint8_t *rs = malloc((size_t)w1 * h1 * 3);
    float *in = malloc(sizeof(float) * 3 * (size_t)w1 * h1), *x = pad32 ? calloc((size_t)3 * hp * wp, sizeof(float)) : in;
    if (!rs || !in || !x) {
        vm_errf(err, errlen, "%s: out of memory for a %dx%d input", path, wp, hp);
        goto done;
    }
    if (vm_cv_resize_linear(im.rgb, im.w, im.h, 3, rs, w1, h1)) {
        vm_errf(err, errlen, "%s: out of memory resizing to %dx%d", path, w1, h1);
        goto done;
    }
    vm_seg_normalize(rs, w1, h1, in); /* mmseg's and mmdet's mean/std, BGR->RGB, planar */
    if (pad32)
        for (int ch = 0; ch < 3; ch++)
            for (int y = 0; y < h1; y++)
                memcpy(x + ((size_t)ch * hp + y) * wp, in + ((size_t)ch * h1 + y) * w1, sizeof(float) * w1);
    rc = vm_calib_dense_tensor(cal, m, uper, x, hp, wp, err, errlen);
done:
    if (x != in) free(x);
    free(in);
    free(rs);
    vm_image_free(&im);
    return rc;
}
