/* seg_bench.c - latency of `vmamba segment`'s pipeline with a per-part
 * breakdown (input resize + normalise / backbone / head / logits resizes +
 * argmax), median over runs, and peak RSS. Build: make bench/seg_bench.
 * Usage: bench/seg_bench MODEL|upernet-vmamba-tiny IMAGE [--size W,H]
 *        [--scale W,H] [--threads N] [--runs N] [--device cuda]
 * --size first resizes the decoded photo (OpenCV INTER_LINEAR) to W x H,
 * which then is the "original" image the pipeline sees. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "vmamba.h"
#include "image/decode_cv.h"
#include "image/resize_cv.h"
#include "net/segmentor.h"
#include "bench/median.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL|upernet-vmamba-tiny IMAGE [--size W,H] [--scale W,H] [--threads N] [--runs N] [--device cuda]\n", argv[0]);
        return 2;
    }
    int sw = 2048, sh = 512, threads = 2, runs = 10, rw = 0, rh = 0;
    const char *device = "cpu";
    for (int i = 3; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--scale")) sscanf(argv[i + 1], "%d,%d", &sw, &sh);
        else if (!strcmp(argv[i], "--size")) sscanf(argv[i + 1], "%d,%d", &rw, &rh);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--runs")) runs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--device")) device = argv[i + 1];
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    if (runs < 1 || runs > 10000) runs = 10;
    vm_set_threads(threads);
    char err[1024];
    vm_segmentor *s = strcmp(argv[1], "upernet-vmamba-tiny") == 0 ? vm_segmentor_from_preset(argv[1], 0, err, sizeof err)
                                                                  : vm_segmentor_load(argv[1], err, sizeof err);
    if (!s) { fprintf(stderr, "%s\n", err); return 1; }
    if (strcmp(device, "cpu") && vm_segmentor_set_device(s, device, err, sizeof err)) { fprintf(stderr, "%s\n", err); return 1; }
    vm_ctx *ctx = vm_ctx_new(vm_segmentor_model(s), err, sizeof err);
    if (!ctx) { fprintf(stderr, "%s\n", err); return 1; }
    vm_ctx_set_threads(ctx, threads);
    vm_image im;
    if (vm_cv_load(argv[2], &im, err, sizeof err)) { fprintf(stderr, "%s\n", err); return 1; }
    if (rw > 0 && rh > 0) {
        uint8_t *r = malloc((size_t)rw * rh * 3);
        vm_cv_resize_linear(im.rgb, im.w, im.h, 3, r, rw, rh);
        free(im.rgb);
        im.rgb = r, im.w = rw, im.h = rh;
    }
    uint8_t *labels = malloc((size_t)im.w * im.h);
    double *tot = malloc(sizeof(double) * runs), *p[4];
    for (int k = 0; k < 4; k++) p[k] = malloc(sizeof(double) * runs);
    vm_seg_trace t = {0};
    for (int r = -1; r < runs; r++) { /* r = -1: warm-up (plans, primitives) */
        double t0 = now_ms();
        if (vm_ctx_segment_image(ctx, s, &im, sw, sh, labels, NULL, NULL, &t)) { fprintf(stderr, "%s\n", vm_ctx_error(ctx)); return 1; }
        double t1 = now_ms();
        if (r < 0) continue;
        tot[r] = t1 - t0;
        p[0][r] = t.ms_resize, p[1][r] = t.ms_backbone, p[2][r] = t.ms_head, p[3][r] = t.ms_post;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double mt = median(tot, runs), m0 = median(p[0], runs), m1 = median(p[1], runs), m2 = median(p[2], runs),
           m3 = median(p[3], runs);
    printf("{\"model\": \"%s\", \"image\": \"%s\", \"device\": \"%s\", \"orig_hw\": [%d, %d], \"input_hw\": [%d, %d], \"threads\": %d, "
           "\"runs\": %d, \"median_ms\": %.1f, \"resize_normalize_ms\": %.2f, \"backbone_ms\": %.1f, \"head_ms\": %.1f, "
           "\"logit_resizes_argmax_ms\": %.1f, \"peak_rss_mb\": %.1f}\n",
           argv[1], argv[2], device, im.h, im.w, t.h1, t.w1, threads, runs, mt, m0, m1, m2, m3, ru.ru_maxrss / 1024.0);
    vm_ctx_free(ctx);
    vm_segmentor_free(s);
    free(labels), free(tot);
    for (int k = 0; k < 4; k++) free(p[k]);
    vm_image_free(&im);
    return 0;
}
