/* int8_feat_err.c - how far an INT8 backbone's four feature maps are from
 * FP32's on one photo (relative L2 and cosine per level), through the
 * detection (pad32) or segmentation pipeline. Build:
 *   gcc -std=gnu11 -O2 -fopenmp -I include -I src -I . -I quant bench/int8_feat_err.c .libs/libvmamba_core.a \
 *     -ldnnl -lturbojpeg -lpng16 -ljpeg -ljansson -lz -lm -o bench/int8_feat_err
 * Usage: bench/int8_feat_err FP32_MODEL INT8_MODEL IMAGE W,H [pad32] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "model/model.h"
#include "image/decode_cv.h"
#include "image/resize_cv.h"
#include "post/seg_post.h"

int main(int argc, char **argv) {
    if (argc < 5) { fprintf(stderr, "usage: %s FP32 INT8 IMAGE W,H [pad32]\n", argv[0]); return 2; }
    int sw, sh, pad = argc > 5;
    sscanf(argv[4], "%d,%d", &sw, &sh);
    char err[512];
    vm_image im;
    if (vm_cv_load(argv[3], &im, err, sizeof err)) { puts(err); return 1; }
    int w1, h1;
    vm_cv_rescale_size(im.w, im.h, sw, sh, &w1, &h1);
    int hp = pad ? (h1 + 31) / 32 * 32 : h1, wp = pad ? (w1 + 31) / 32 * 32 : w1;
    uint8_t *rs = malloc((size_t)w1 * h1 * 3);
    float *in = malloc(sizeof(float) * 3 * w1 * h1), *x = calloc((size_t)3 * hp * wp, sizeof(float));
    vm_cv_resize_linear(im.rgb, im.w, im.h, 3, rs, w1, h1);
    vm_seg_normalize(rs, w1, h1, in);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < h1; y++) memcpy(x + ((size_t)c * hp + y) * wp, in + ((size_t)c * h1 + y) * w1, sizeof(float) * w1);
    vm_model *m[2];
    float *f[2][4];
    size_t n[4];
    for (int k = 0; k < 2; k++) {
        if (!(m[k] = vm_model_load(argv[1 + k], NULL, err, sizeof err))) { puts(err); return 1; }
        vm_ctx *c = vm_ctx_new(m[k], err, sizeof err);
        vm_feats fe;
        if (vm_ctx_backbone(c, x, 1, hp, wp, &fe)) { puts(vm_ctx_error(c)); return 1; }
        for (int i = 0; i < 4; i++) {
            n[i] = (size_t)fe.C[i] * fe.H[i] * fe.W[i];
            f[k][i] = malloc(n[i] * sizeof(float));
            memcpy(f[k][i], fe.data[i], n[i] * sizeof(float));
        }
        vm_ctx_free(c);
    }
    printf("%s vs %s on %s (%dx%d input):", argv[2], argv[1], argv[3], wp, hp);
    for (int i = 0; i < 4; i++) {
        double d = 0, a = 0, b = 0, ab = 0;
        for (size_t j = 0; j < n[i]; j++) {
            double p = f[0][i][j], q = f[1][i][j];
            d += (p - q) * (p - q), a += p * p, b += q * q, ab += p * q;
        }
        printf(" feat%d relL2 %.4f cos %.6f;", i, sqrt(d / a), ab / sqrt(a * b));
    }
    printf("\n");
    return 0;
}
