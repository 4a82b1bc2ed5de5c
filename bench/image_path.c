/* image_path.c - time of each stage of the image fuzz harness's path
 * (tests/fuzz/fuzz_image.c) on inputs in its format (4 option bytes, then a
 * JPEG/PNG), median over runs: Pillow-exact decode, preprocessing at the
 * chosen size/crop (bicubic window resize + normalise), OpenCV-exact decode,
 * keep-ratio linear resize to 48x32. Used to bound the harness's worst case
 * (bench/RESULTS.md "Image fuzz harness: worst cases"). Times are the
 * process's CPU time (every stage runs on one thread), which a machine
 * shared with other jobs inflates far less than wall time. Build: make
 * bench/image_path. Usage: bench/image_path [--runs N] FILE... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/median.h"
#include "tests/fuzz/fuzz_image_path.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(len > 0 ? (size_t)len : 1);
    *n = b && fread(b, 1, (size_t)len, f) == (size_t)len ? (size_t)len : 0;
    fclose(f);
    return b;
}

enum { DECODE, PREPROCESS, CV_DECODE, CV_RESIZE, STAGES };

/* One run of the harness's body (tests/fuzz/fuzz_image_path.h, as
 * tests/fuzz/fuzz_image.c runs it); the time of each stage into t. */
static void run_once(const uint8_t *data, size_t size, double *t, vm_preprocess_opts *o, int *w, int *h) {
    fuzz_image_opts(data, o);
    vm_image im;
    char err[512];
    double t0 = now_ms();
    *w = *h = 0;
    if (vm_image_decode(data + 4, size - 4, "bench", &im, err, sizeof err) == 0) {
        *w = im.w;
        *h = im.h;
        double t1 = now_ms();
        fuzz_image_preprocess(&im, o);
        vm_image_free(&im);
        t[DECODE] = t1 - t0;
        t[PREPROCESS] = now_ms() - t1;
    }
    t0 = now_ms();
    if (vm_cv_decode(data + 4, size - 4, "bench", &im, err, sizeof err) == 0) {
        double t1 = now_ms();
        fuzz_image_cv_resize(&im);
        vm_image_free(&im);
        t[CV_DECODE] = t1 - t0;
        t[CV_RESIZE] = now_ms() - t1;
    }
}

int main(int argc, char **argv) {
    int runs = 5, a = 1;
    if (argc > 2 && !strcmp(argv[1], "--runs")) {
        runs = atoi(argv[2]);
        a = 3;
    }
    if (a >= argc || runs < 1) {
        fprintf(stderr, "usage: %s [--runs N] FILE...\n", argv[0]);
        return 2;
    }
    printf("%-40s %13s %5s %6s %9s %9s %9s %9s %9s\n", "input", "image", "size", "crop", "decode", "preproc", "cv_dec",
           "cv_rsz", "total CPU ms");
    for (; a < argc; a++) {
        size_t n;
        uint8_t *b = slurp(argv[a], &n);
        if (!b || n < 4) {
            fprintf(stderr, "%s: cannot read or shorter than 4 bytes\n", argv[a]);
            free(b);
            return 1;
        }
        double *t = calloc((size_t)runs * (STAGES + 1), sizeof *t), med[STAGES + 1];
        vm_preprocess_opts o;
        int w = 0, h = 0;
        for (int r = 0; r < runs; r++) {
            double *tr = t + (size_t)r * (STAGES + 1), t0 = now_ms();
            run_once(b, n, tr, &o, &w, &h);
            tr[STAGES] = now_ms() - t0;
        }
        for (int s = 0; s <= STAGES; s++) {
            double v[runs];
            for (int r = 0; r < runs; r++) v[r] = t[(size_t)r * (STAGES + 1) + s];
            med[s] = median(v, runs);
        }
        const char *name = strrchr(argv[a], '/') ? strrchr(argv[a], '/') + 1 : argv[a];
        char dims[32], crop[16];
        snprintf(dims, sizeof dims, "%dx%d", w, h);
        if (o.no_crop) snprintf(crop, sizeof crop, "none");
        else snprintf(crop, sizeof crop, "%.3g", o.crop_pct);
        printf("%-40s %13s %5d %6s %9.2f %9.2f %9.2f %9.2f %9.2f\n", name, dims, o.size, crop, med[0], med[1], med[2], med[3],
               med[4]);
        fflush(stdout);
        free(t);
        free(b);
    }
    return 0;
}
