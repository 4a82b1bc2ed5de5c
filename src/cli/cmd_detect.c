/* cmd_detect.c - `vmamba detect -m MODEL IMAGE...`: Mask R-CNN boxes,
 * labels and masks; raw arrays, COCO results JSON, a drawn picture. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <omp.h>

#include "cli.h"
#include "options.h"
#include "det_draw.h"
#include "core/util.h"
#include "image/decode_cv.h"
#include "loaders/npy.h"
#include "post/det_post.h"

static void help(FILE *f) {
    fprintf(f,
            "Usage: vmamba detect -m MODEL IMAGE... [options]\n"
            "\n"
            "Instance segmentation with Mask R-CNN (mmdetection 3.x checkpoints such\n"
            "as mask_rcnn_vssm_fpn_coco_tiny): boxes, class labels, scores and masks\n"
            "per image, exactly as mmdet's test pipeline computes them. Prints one\n"
            "line per detection: index, class, score, box x1,y1,x2,y2 (pixels).\n"
            "\n"
            "  -m, --model MODEL   mmdet checkpoint (.pth), or maskrcnn-vmamba-tiny\n"
            "                      (random weights, for benchmarks)\n"
            "  --scale W,H         keep-ratio test scale (default 1333,800)\n"
            "  --score-thr T       keep detections scoring above T (default 0.05)\n"
            "  --raw DIR           write DIR/boxes.npy (N,4) float32 x1,y1,x2,y2,\n"
            "                      scores.npy (N,) float32, labels.npy (N,) int64,\n"
            "                      masks.npy (N,H,W) uint8 0/1 (original image size);\n"
            "                      with several images DIR/<image name>/...\n"
            "  --json OUT.json     COCO results: image_id, category_id (COCO ids),\n"
            "                      bbox [x,y,w,h], score, segmentation (compressed RLE)\n"
            "  -o VIS.png          draw masks, boxes, names and scores on the photo;\n"
            "                      with several images a directory of <name>.png\n"
            "  --key K             checkpoint key holding the weights (state_dict)\n"
            "  --threads N         threads (default: OMP_NUM_THREADS or all cores)\n"
            "  --device DEV        cpu (default), cuda or cuda:N (GPU N; cuda = cuda:0):\n"
            "                      backbone, FPN, RPN and the heads'\n"
            "                      convolutions and FCs on the GPU (FP32); NMS, RoIAlign\n"
            "                      and mask pasting on the CPU\n"
            "  --repeat N          run each image N times and print the median time of\n"
            "                      each stage and the peak memory (benchmarks)\n"
            "\n"
            "image_id is the image name's number when it is one (COCO's\n"
            "000000397133.jpg -> 397133), else the image's position (0, 1, ...).\n");
}

/* Name without directory and extension. */
static void stem(const char *path, char *out, size_t n) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(out, n, "%s", b);
    char *dot = strrchr(out, '.');
    if (dot && dot != out) *dot = 0;
}

static long image_id(const char *path, int index) {
    char s[256];
    stem(path, s, sizeof s);
    char *end;
    long v = strtol(s, &end, 10);
    return (*s && !*end && v >= 0) ? v : index;
}

static int ensure_dir(const char *d) {
    if (mkdir(d, 0755) != 0 && errno != EEXIST) return cli_fail("%s: cannot create directory: %s", d, strerror(errno));
    return 0;
}

/* masks.npy (N, H, W) uint8, streamed through one atomic file (the whole
 * stack can be large; each mask is expanded one at a time). */
static int write_masks(const char *path, const vm_detections *r) {
    char hdr[160], err[512];
    int n = snprintf(hdr, sizeof hdr, "{'descr': '|u1', 'fortran_order': False, 'shape': (%d, %d, %d), }", r->count,
                     r->height, r->width);
    size_t total = 10 + (size_t)n + 1, pad = (64 - total % 64) % 64, hlen = (size_t)n + pad + 1;
    uint8_t pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (uint8_t)(hlen & 0xff), (uint8_t)(hlen >> 8)};
    vm_atomic_file *f = vm_atomic_open(path, err, sizeof err);
    if (!f) return cli_fail("%s", err);
    uint8_t *full = malloc((size_t)r->height * r->width);
    if (!full) { vm_atomic_abort(f); return cli_fail("%s: out of memory", path); }
    char spaces[64];
    memset(spaces, ' ', sizeof spaces);
    vm_atomic_write(f, pre, 10);
    vm_atomic_write(f, hdr, (size_t)n);
    vm_atomic_write(f, spaces, pad);
    vm_atomic_write(f, "\n", 1);
    for (int i = 0; i < r->count; i++) {
        vm_detection_mask_full(r, i, full);
        vm_atomic_write(f, full, (size_t)r->height * r->width);
    }
    free(full);
    if (vm_atomic_commit(f, err, sizeof err)) return cli_fail("%s", err);
    return 0;
}

static int write_raw(const char *dir, const vm_detections *r) {
    char p[4200], err[512];
    if (strlen(dir) > 4000) return cli_fail("%.40s...: path too long", dir);
    if (ensure_dir(dir)) return -1;
    int64_t s2[2] = {r->count, 4}, s1[1] = {r->count};
    int64_t *lab = malloc((size_t)(r->count ? r->count : 1) * sizeof *lab);
    if (!lab) return cli_fail("out of memory");
    for (int i = 0; i < r->count; i++) lab[i] = r->labels[i];
    int rc = 0;
    snprintf(p, sizeof p, "%s/boxes.npy", dir);
    if (!rc && vm_npy_write_typed(p, r->boxes, "<f4", 4, 2, s2, err, sizeof err)) rc = cli_fail("%s", err);
    snprintf(p, sizeof p, "%s/scores.npy", dir);
    if (!rc && vm_npy_write_typed(p, r->scores, "<f4", 4, 1, s1, err, sizeof err)) rc = cli_fail("%s", err);
    snprintf(p, sizeof p, "%s/labels.npy", dir);
    if (!rc && vm_npy_write_typed(p, lab, "<i8", 8, 1, s1, err, sizeof err)) rc = cli_fail("%s", err);
    free(lab);
    snprintf(p, sizeof p, "%s/masks.npy", dir);
    if (!rc && write_masks(p, r)) rc = 1;
    return rc ? -1 : 0;
}

static int add_json(json_t *arr, const vm_detections *r, const vm_detector *d, long id) {
    int coco = vm_detector_num_classes(d) == 80;
    for (int i = 0; i < r->count; i++) {
        const float *b = r->boxes + 4 * (size_t)i;
        char *rle = vm_rle_encode(&r->masks[i], r->height, r->width);
        if (!rle) return cli_fail("out of memory encoding masks");
        json_t *o = json_pack("{s:I, s:i, s:[f,f,f,f], s:f, s:{s:[i,i], s:s}}", "image_id", (json_int_t)id, "category_id",
                              coco ? vm_coco_category_id(r->labels[i]) : r->labels[i] + 1, "bbox", (double)b[0],
                              (double)b[1], (double)(b[2] - b[0]), (double)(b[3] - b[1]), "score", (double)r->scores[i],
                              "segmentation", "size", r->height, r->width, "counts", rle);
        free(rle);
        if (!o || json_array_append_new(arr, o)) return cli_fail("out of memory building JSON");
    }
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* --repeat: n more runs of one image (the first, already done, warms up). */
static void bench(vm_ctx *c, const vm_detector *d, const vm_image *im, const vm_detect_opts *o, int n,
                  const vm_detections *first) {
    double *t = calloc((size_t)n * 6, sizeof *t);
    if (!t) return;
    int done = 0;
    for (int i = 0; i < n; i++) {
        double t0 = omp_get_wtime();
        vm_detections *r = vm_ctx_detect_rgb(c, d, im->rgb, im->h, im->w, o);
        double t1 = omp_get_wtime();
        if (!r) break;
        t[0 * n + i] = (t1 - t0) * 1e3;
        t[1 * n + i] = r->ms_preprocess;
        t[2 * n + i] = r->ms_backbone;
        t[3 * n + i] = r->ms_fpn_rpn;
        t[4 * n + i] = r->ms_roi_heads;
        t[5 * n + i] = r->ms_mask_paste;
        vm_detections_free(r);
        done++;
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    if (done == n) {
        const char *names[6] = {"total", "preprocess", "backbone", "fpn+rpn", "roi heads", "mask paste"};
        printf("median of %d runs (%d threads), %d detections:\n", n, vm_get_threads(), first->count);
        for (int k = 0; k < 6; k++) printf("  %-11s %9.1f ms\n", names[k], median(t + (size_t)k * n, n));
        printf("  peak RSS    %9.1f MiB\n", ru.ru_maxrss / 1024.0);
    }
    free(t);
}

int cmd_detect(int argc, char **argv) {
    const char *model = NULL, *raw = NULL, *json = NULL, *vis = NULL, *key = NULL, *device = "cpu";
    int threads = 0, repeat = 0;
    vm_detect_opts o;
    vm_detect_defaults(&o);
    const char **images = calloc((size_t)argc, sizeof *images);
    int nimg = 0;
    if (!images) return cli_fail("out of memory");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { help(stdout); free(images); return 0; }
        if (!strcmp(a, "-m") || !strcmp(a, "--model") || !strcmp(a, "--scale") || !strcmp(a, "--score-thr") ||
            !strcmp(a, "--raw") || !strcmp(a, "--json") || !strcmp(a, "-o") || !strcmp(a, "--output") ||
            !strcmp(a, "--key") || !strcmp(a, "--threads") || !strcmp(a, "--repeat") || !strcmp(a, "--device")) {
            if (!v) { free(images); return cli_fail("detect: %s needs a value", a); }
            i++;
            if (!strcmp(a, "-m") || !strcmp(a, "--model")) model = v;
            else if (!strcmp(a, "--raw")) raw = v;
            else if (!strcmp(a, "--json")) json = v;
            else if (!strcmp(a, "-o") || !strcmp(a, "--output")) vis = v;
            else if (!strcmp(a, "--key")) key = v;
            else if (!strcmp(a, "--device")) {
                if (!cli_device_ok(v)) { free(images); return 1; }
                device = v;
            }
            else if (!strcmp(a, "--threads")) {
                if (cli_int("--threads", v, 1, 4096, &threads)) { free(images); return 1; }
            } else if (!strcmp(a, "--repeat")) {
                if (cli_int("--repeat", v, 1, 100000, &repeat)) { free(images); return 1; }
            } else if (!strcmp(a, "--scale")) {
                int w, h, n = 0;
                if (sscanf(v, "%d,%d%n", &w, &h, &n) != 2 || v[n] || w < 32 || h < 32 || w > 16384 || h > 16384) {
                    free(images);
                    return cli_fail("--scale: '%s' is not W,H with both in [32, 16384]", v);
                }
                o.scale_w = w;
                o.scale_h = h;
            } else {
                char *end;
                double t = strtod(v, &end);
                if (!*v || *end || !(t >= 0.0 && t <= 1.0)) { free(images); return cli_fail("--score-thr: '%s' is not a number in [0, 1]", v); }
                o.score_thr = (float)t;
            }
        } else if (a[0] == '-' && a[1]) {
            free(images);
            return cli_fail("detect: unknown argument '%s' (try --help)", a);
        } else images[nimg++] = a;
    }
    if (!model || !nimg) {
        help(stderr);
        free(images);
        return cli_fail("detect: -m MODEL and at least one IMAGE are required");
    }
    cli_threads(threads);
    char err[1024];
    struct stat st;
    vm_detector *d;
    if (stat(model, &st) != 0 && !strcmp(model, "maskrcnn-vmamba-tiny")) d = vm_detector_from_preset(model, 0, err, sizeof err);
    else {
        vm_load_opts lo = {.key = key, .quiet = 1};
        d = vm_detector_load(model, &lo, err, sizeof err);
    }
    if (!d) { free(images); return cli_fail("%s", err); }
    if (strcmp(device, "cpu") && vm_detector_set_device(d, device, err, sizeof err)) {
        vm_detector_free(d);
        free(images);
        return cli_fail("--device %s: %s", device, err);
    }
    vm_ctx *c = vm_ctx_new(vm_detector_model(d), err, sizeof err);
    if (!c) { vm_detector_free(d); free(images); return cli_fail("%s", err); }
    if (threads > 0) vm_ctx_set_threads(c, threads);
    int rc = 0, many = nimg > 1;
    json_t *arr = json ? json_array() : NULL;
    if (many && vis && ensure_dir(vis)) rc = 1;
    if (many && raw && ensure_dir(raw)) rc = 1;
    for (int k = 0; k < nimg && !rc; k++) {
        vm_image im;
        if (vm_cv_load(images[k], &im, err, sizeof err)) { rc = cli_fail("%s", err); break; }
        for (size_t p = 0; p < (size_t)im.w * im.h; p++) { /* BGR -> RGB */
            uint8_t t = im.rgb[3 * p];
            im.rgb[3 * p] = im.rgb[3 * p + 2];
            im.rgb[3 * p + 2] = t;
        }
        vm_detections *r = vm_ctx_detect_rgb(c, d, im.rgb, im.h, im.w, &o);
        if (!r) {
            rc = cli_fail("%s: %s", images[k], vm_ctx_error(c));
            vm_image_free(&im);
            break;
        }
        if (repeat) bench(c, d, &im, &o, repeat, r);
        printf("%s: %d detections (%dx%d)\n", images[k], r->count, im.w, im.h);
        for (int i = 0; i < r->count; i++) {
            const float *b = r->boxes + 4 * (size_t)i;
            const char *name = vm_detector_class_name(d, r->labels[i]);
            printf("  %d %s %.4f %.1f %.1f %.1f %.1f\n", i, name ? name : "?", (double)r->scores[i], (double)b[0],
                   (double)b[1], (double)b[2], (double)b[3]);
        }
        char nm[256], path[4400];
        stem(images[k], nm, sizeof nm);
        if (raw) {
            if (strlen(raw) > 4000) { rc = cli_fail("%.40s...: path too long", raw); break; }
            if (many) snprintf(path, sizeof path, "%s/%s", raw, nm);
            else snprintf(path, sizeof path, "%s", raw);
            if (write_raw(path, r)) rc = 1;
        }
        if (!rc && arr && add_json(arr, r, d, image_id(images[k], k))) rc = 1;
        if (!rc && vis) {
            if (strlen(vis) > 4000) { rc = cli_fail("%.40s...: path too long", vis); break; }
            if (many) snprintf(path, sizeof path, "%s/%s.png", vis, nm);
            else snprintf(path, sizeof path, "%s", vis);
            det_draw(im.rgb, r, d);
            if (det_write_png(path, im.rgb, im.w, im.h, err, sizeof err)) rc = cli_fail("%s", err);
        }
        if (many) fprintf(stderr, "[%d/%d] %s\n", k + 1, nimg, images[k]);
        vm_detections_free(r);
        vm_image_free(&im);
    }
    if (!rc && arr) {
        char *s = json_dumps(arr, JSON_COMPACT | JSON_REAL_PRECISION(9));
        vm_atomic_file *f = s ? vm_atomic_open(json, err, sizeof err) : NULL;
        if (!s) rc = cli_fail("out of memory writing JSON");
        else if (!f) rc = cli_fail("%s", err);
        else {
            vm_atomic_write(f, s, strlen(s));
            vm_atomic_write(f, "\n", 1);
            if (vm_atomic_commit(f, err, sizeof err)) rc = cli_fail("%s", err);
        }
        free(s);
    }
    json_decref(arr);
    vm_ctx_free(c);
    vm_detector_free(d);
    free(images);
    return rc;
}
