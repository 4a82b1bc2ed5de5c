/* det_int8.c - INT8 backbone + FP32 heads vs FP32 on the detection golden
 * photos: calibrates the backbone of tests/data/det_maskrcnn/model.pth on
 * four held-out photos (not the golden ones: crops and a gray copy of the
 * same scenes, at the detection scale 1333x800, as the test
 * det_int8_backbone_agreement does; minmax; percentile 99.99 or dynamic
 * per-row scales with a second argument "percentile" / "dynamic"), writes
 * det_int8_backbone.safetensors, runs both detectors on the golden photos and
 * reports how many FP32 detections the INT8 run reproduces (same label, box
 * IoU >= 0.9).
 * Build (bench/RESULTS.md): gcc -std=gnu11 -O2 -fopenmp -I include -I src -I . -I quant bench/det_int8.c \
 *   .libs/libvmamba_core.a -ldnnl -lturbojpeg -lpng16 -ljansson -lm -o det_int8 && ./det_int8 tests/data */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "net/detector.h"
#include "quant/quant.h"
#include "image/decode_cv.h"
#include "image/resize_cv.h"
typedef struct { float *x; int hp, wp, nh, nw, h, w; } prep;
static prep prepare(const char *path, int sw, int sh) {
    vm_image im; char err[256]; prep p;
    if (vm_cv_load(path, &im, err, sizeof err)) { puts(err); exit(1); }
    p.h = im.h; p.w = im.w;
    vm_cv_rescale_size(im.w, im.h, sw, sh, &p.nw, &p.nh);
    uint8_t *b = malloc((size_t)p.nw * p.nh * 3);
    vm_cv_resize_linear(im.rgb, im.w, im.h, 3, b, p.nw, p.nh);
    p.hp = (p.nh + 31) / 32 * 32; p.wp = (p.nw + 31) / 32 * 32;
    p.x = calloc((size_t)3 * p.hp * p.wp, 4);
    const float mean[3] = {123.675f, 116.28f, 103.53f}, sd[3] = {58.395f, 57.12f, 57.375f};
    for (int c = 0; c < 3; c++) for (int y = 0; y < p.nh; y++) for (int x = 0; x < p.nw; x++)
        p.x[((size_t)c * p.hp + y) * p.wp + x] = ((float)b[((size_t)y * p.nw + x) * 3 + 2 - c] - mean[c]) / sd[c];
    free(b); vm_image_free(&im); return p;
}
static float iou(const float *a, const float *b) {
    float w = fminf(a[2], b[2]) - fmaxf(a[0], b[0]), h = fminf(a[3], b[3]) - fmaxf(a[1], b[1]);
    if (w <= 0 || h <= 0) return 0;
    float i = w * h;
    return i / ((a[2]-a[0])*(a[3]-a[1]) + (b[2]-b[0])*(b[3]-b[1]) - i);
}
int main(int argc, char **argv) {
    const char *D = argc > 1 ? argv[1] : "tests/data";
    char path[512], err[512];
    prep ps[2];
    snprintf(path, sizeof path, "%s/det_maskrcnn/flower_crop.png", D); ps[0] = prepare(path, 400, 240);
    snprintf(path, sizeof path, "%s/preprocess/china.jpg", D); ps[1] = prepare(path, 1333, 800);
    snprintf(path, sizeof path, "%s/det_maskrcnn/model.pth", D);
    vm_load_opts lo = {"state_dict", 1};
    vm_model *m = vm_model_load(path, &lo, err, sizeof err);
    if (!m) { puts(err); return 1; }
    /* second argument: "percentile" (99.99), "dynamic" (per-row input
     * scales at run time), anything else or none: minmax */
    const char *var = argc > 2 ? argv[2] : "minmax";
    /* further arguments: --skip patterns (layers kept FP32) */
    vm_calib_opts co = {!strcmp(var, "percentile") ? VM_CALIB_PERCENTILE : VM_CALIB_MINMAX, 99.99,
                        argc > 3 ? (const char *const *)argv + 3 : NULL, argc > 3 ? argc - 3 : 0, 0, 0,
                        !strcmp(var, "dynamic")};
    vm_calib *cal = vm_calib_begin(m, &co);
    static const char *const held_out[] = {"seg_upernet/china_crop.png", "seg_upernet/mini.png", "preprocess/china_crop.png",
                                           "preprocess/flower_gray.jpg"};
    for (int k = 0; k < 4; k++) {
        snprintf(path, sizeof path, "%s/%s", D, held_out[k]);
        prep c = prepare(path, 1333, 800);
        float *f[4]; for (int i = 0; i < 4; i++) { int C, h, w; vm_feature_shape(m, c.hp, c.wp, i, &C, &h, &w); f[i] = malloc((size_t)C*h*w*4); }
        if (vm_forward_features(m, c.x, 1, c.hp, c.wp, f)) { puts(vm_model_error(m)); return 1; }
        for (int i = 0; i < 4; i++) free(f[i]);
        free(c.x);
    }
    snprintf(path, sizeof path, "%s/det_maskrcnn/model.pth", D);
    if (vm_calib_write(cal, "det_int8_backbone.safetensors", NULL, err, sizeof err)) { puts(err); return 1; }
    printf("INT8 layers %d\n", vm_calib_layers(cal));
    vm_calib_free(cal); vm_model_free(m);
    vm_detector *d = vm_detector_load(path, NULL, err, sizeof err);
    vm_model *q = vm_model_load("det_int8_backbone.safetensors", NULL, err, sizeof err);
    if (!d || !q) { puts(err); return 1; }
    /* FP32 heads on an INT8 backbone: a context of the INT8 model runs the detector */
    vm_ctx *c32 = vm_ctx_new(vm_detector_model(d), err, sizeof err), *c8 = vm_ctx_new(q, err, sizeof err);
    for (int k = 0; k < 2; k++) {
        vm_detect_opts o; vm_detect_defaults(&o);
        vm_detections *a = vm_ctx_detect_tensor(c32, d, ps[k].x, ps[k].hp, ps[k].wp, ps[k].nh, ps[k].nw, ps[k].h, ps[k].w, (double)ps[k].nw/ps[k].w, (double)ps[k].nh/ps[k].h, &o);
        vm_detections *b = vm_ctx_detect_tensor(c8, d, ps[k].x, ps[k].hp, ps[k].wp, ps[k].nh, ps[k].nw, ps[k].h, ps[k].w, (double)ps[k].nw/ps[k].w, (double)ps[k].nh/ps[k].h, &o);
        if (!a || !b) { puts(vm_ctx_error(c8)); return 1; }
        int matched = 0, same_order = 0; float worst = 1, maxds = 0;
        for (int i = 0; i < a->count; i++) {
            int best = -1; float bi = 0;
            for (int j = 0; j < b->count; j++) if (b->labels[j] == a->labels[i]) { float v = iou(a->boxes+4*i, b->boxes+4*j); if (v > bi) { bi = v; best = j; } }
            if (best >= 0 && bi >= 0.9f) { matched++; if (bi < worst) worst = bi; if (fabsf(a->scores[i]-b->scores[best]) > maxds) maxds = fabsf(a->scores[i]-b->scores[best]); same_order += best == i; }
        }
        printf("%s: FP32 %d dets, INT8 %d dets; matched (same label, IoU>=0.9) %d, same position %d, worst IoU %.4f, max |dscore| %.4f\n", k ? "china" : "flower_crop", a->count, b->count, matched, same_order, worst, maxds);
        vm_detections_free(a); vm_detections_free(b);
    }
    return 0;
}
