/* cmd_detect.c - `vmamba detect -m MODEL IMAGE...`: Mask R-CNN boxes,
 * labels and masks; raw arrays, COCO results JSON, a drawn picture; with
 * --list, a batch job (JSON Lines, shards, resume, error records). Images
 * go through the batch machinery (batch.c) as payload items: the next one
 * is decoded on a helper thread while the current one runs. Only the
 * public API (vmamba.h). */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "cli.h"
#include "imgjob.h"
#include "options.h"
#include "det_draw.h"

static const char usage[] =
    "Usage: vmamba detect -m MODEL [options] IMAGE...\n"
    "       vmamba detect -m MODEL [options] --list FILE --output-dir DIR\n"
    "\n"
    "Instance segmentation with Mask R-CNN (mmdetection 3.x checkpoints such\n"
    "as mask_rcnn_vssm_fpn_coco_tiny): boxes, class labels, scores and masks\n"
    "per image, exactly as mmdet's test pipeline computes them. Prints one\n"
    "line per detection: index, class, score, box x1,y1,x2,y2 (pixels).\n"
    "\n";
static const char footer[] =
    "image_id is the image name's number when it is one (COCO's\n"
    "000000397133.jpg -> 397133), else the image's position (0, 1, ...; the\n"
    "line number with --list).\n"
    "With --list, DIR/detections.jsonl gets one record per image, in input\n"
    "order: {\"index\", \"file\", \"image_id\", \"width\", \"height\", \"detections\":\n"
    "[{\"label\", \"name\", \"category_id\", \"score\", \"bbox\" [x,y,w,h],\n"
    "\"segmentation\" (COCO RLE)}], \"ms\"}, and DIR/<index>_<name>.png the drawn\n"
    "picture (<name> = file name without its extension). Unreadable images\n"
    "give an error record and the job goes on; the exit status is then 3.\n"
    "The next image is decoded on a helper thread while the current one runs.\n"
    "Usage errors exit 2, other errors 1. Outputs are written atomically.\n";

static long image_id(const char *path, int index) {
    char s[256];
    cli_img_stem(path, s, sizeof s);
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

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
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
static void bench(vm_ctx *c, const vm_detector *d, const uint8_t *rgb, int w, int h, const vm_detect_opts *o, int n,
                  const vm_detections *first) {
    double *t = calloc((size_t)n * 6, sizeof *t);
    if (!t) return;
    int done = 0;
    for (int i = 0; i < n; i++) {
        double t0 = now_ms();
        vm_detections *r = vm_ctx_detect_rgb(c, d, rgb, h, w, o);
        double t1 = now_ms();
        if (!r) break;
        t[0 * n + i] = t1 - t0;
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

typedef struct {
    const vm_detector *d;
    vm_ctx *ctx;
    vm_detect_opts o;
    const char *raw, *vis, *outdir;
    int repeat, many, list, progress;
    json_t *arr; /* --json OUT.json: COCO results of every image */
    cli_out out; /* --list: DIR/detections.jsonl */
} det_job;

/* A payload item: the decoded photo (RGB), then its detections. */
typedef struct {
    uint8_t *rgb;
    int w, h;
    vm_detections *r;
    double ms; /* decode + detection */
} det_item;

/* --scale W,H, both in [32, 16384]. */
static int opt_scale(void *dest, const char *name, const char *v) {
    vm_detect_opts *o = dest;
    int w, h, n = 0;
    if (sscanf(v, "%d,%d%n", &w, &h, &n) != 2 || v[n] || w < 32 || h < 32 || w > 16384 || h > 16384)
        return cli_fail("%s: '%s' is not W,H with both in [32, 16384]", name, v), -1;
    o->scale_w = w;
    o->scale_h = h;
    return 0;
}

/* Decode thread: the photo as cv2.imdecode gives it, turned to RGB. */
static int det_prepare(void *vc, cli_item *it, float *in) {
    (void)vc, (void)in;
    det_item *p = calloc(1, sizeof *p);
    if (!p) return snprintf(it->err, sizeof it->err, "%s: out of memory", it->path), -1;
    double t0 = now_ms();
    if (vm_image_load_bgr(it->path, &p->rgb, &p->w, &p->h, it->err, sizeof it->err)) {
        free(p);
        return -1;
    }
    for (size_t q = 0; q < (size_t)p->w * p->h; q++) { /* BGR -> RGB */
        uint8_t t = p->rgb[3 * q];
        p->rgb[3 * q] = p->rgb[3 * q + 2];
        p->rgb[3 * q + 2] = t;
    }
    p->ms = now_ms() - t0;
    it->orig_w = p->w, it->orig_h = p->h;
    it->data = p;
    return 0;
}

static int det_run(void *vc, const cli_item *items, int n, const float *in, int H, int W, float *out) {
    det_job *j = vc;
    det_item *p = items->data;
    double t0 = now_ms();
    if (!(p->r = vm_ctx_detect_rgb(j->ctx, j->d, p->rgb, p->h, p->w, &j->o)))
        return cli_fail("%s: %s", items->path, vm_ctx_error(j->ctx)), -1;
    p->ms += now_ms() - t0;
    if (j->repeat) bench(j->ctx, j->d, p->rgb, p->w, p->h, &j->o, j->repeat, p->r);
    return 0;
}

/* --list: one JSON Lines record, {"index": N, first (resume reads it). */
static int write_record(det_job *j, const cli_item *it, const det_item *p) {
    FILE *f = j->out.f;
    fprintf(f, "{\"index\": %ld, ", it->index);
    cli_json_path(f, "file", it->path);
    if (!p) {
        fprintf(f, ", \"error\": ");
        cli_json_str(f, it->err);
        fprintf(f, "}\n");
        return cli_out_flush(&j->out);
    }
    const vm_detections *r = p->r;
    int coco = vm_detector_num_classes(j->d) == 80;
    json_t *o = json_pack("{s:I, s:i, s:i, s:[], s:f}", "image_id", (json_int_t)image_id(it->path, (int)it->index), "width",
                          r->width, "height", r->height, "detections", "ms", p->ms);
    json_t *dets = o ? json_object_get(o, "detections") : NULL;
    for (int i = 0; dets && i < r->count; i++) {
        const float *b = r->boxes + 4 * (size_t)i;
        const char *name = vm_detector_class_name(j->d, r->labels[i]);
        char *rle = vm_rle_encode(&r->masks[i], r->height, r->width);
        json_t *e = rle ? json_pack("{s:i, s:s?, s:i, s:f, s:[f,f,f,f], s:{s:[i,i], s:s}}", "label", r->labels[i], "name", name,
                                    "category_id", coco ? vm_coco_category_id(r->labels[i]) : r->labels[i] + 1, "score",
                                    (double)r->scores[i], "bbox", (double)b[0], (double)b[1], (double)(b[2] - b[0]),
                                    (double)(b[3] - b[1]), "segmentation", "size", r->height, r->width, "counts", rle)
                        : NULL;
        free(rle);
        if (!e || json_array_append_new(dets, e)) dets = NULL;
    }
    char *txt = dets ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(9) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (!txt) return cli_fail("out of memory building JSON"), -1;
    fprintf(f, ", %s\n", txt + 1); /* the object's fields after "file" */
    free(txt);
    return cli_out_flush(&j->out);
}

static int det_write(void *vc, const cli_item *it, const float *out) {
    det_job *j = vc;
    char err[1024], nm[256], path[4400];
    (void)out;
    if (!it->ok) {
        if (!j->list) return cli_fail("%s", it->err), -1; /* IMAGE arguments: as before, the job stops */
        fprintf(stderr, "%svmamba: %s\n", j->progress ? "\r" : "", it->err);
        return write_record(j, it, NULL);
    }
    det_item *p = it->data;
    const vm_detections *r = p->r;
    cli_img_stem(it->path, nm, sizeof nm);
    if (j->list) {
        snprintf(path, sizeof path, "%s/%ld_%s.png", j->outdir, it->index, nm);
        det_draw(p->rgb, r, j->d);
        if (vm_write_png_rgb(path, p->rgb, p->w, p->h, err, sizeof err)) return cli_fail("%s", err), -1;
        return write_record(j, it, p); /* last: the record marks the picture done */
    }
    printf("%s: %d detections (%dx%d)\n", it->path, r->count, p->w, p->h);
    for (int i = 0; i < r->count; i++) {
        const float *b = r->boxes + 4 * (size_t)i;
        const char *name = vm_detector_class_name(j->d, r->labels[i]);
        printf("  %d %s %.4f %.1f %.1f %.1f %.1f\n", i, name ? name : "?", (double)r->scores[i], (double)b[0],
               (double)b[1], (double)b[2], (double)b[3]);
    }
    fflush(stdout);
    if (j->raw) {
        if (j->many) snprintf(path, sizeof path, "%s/%s", j->raw, nm);
        else snprintf(path, sizeof path, "%s", j->raw);
        if (write_raw(path, r)) return -1;
    }
    if (j->arr && add_json(j->arr, r, j->d, image_id(it->path, (int)it->index))) return -1;
    if (j->vis) {
        if (j->many) snprintf(path, sizeof path, "%s/%s.png", j->vis, nm);
        else snprintf(path, sizeof path, "%s", j->vis);
        det_draw(p->rgb, r, j->d);
        if (vm_write_png_rgb(path, p->rgb, p->w, p->h, err, sizeof err)) return cli_fail("%s", err), -1;
    }
    return 0;
}

static void det_release(void *vc, cli_item *it) {
    det_item *p = it->data;
    (void)vc;
    if (!p) return;
    free(p->rgb);
    vm_detections_free(p->r);
    free(p);
}

int cmd_detect(int argc, char **argv) {
    det_job j = {0};
    const char *model = NULL, *json = NULL, *key = NULL, *device = NULL;
    int threads = 0, resume = 0, rc = 1;
    double thr;
    char jl[4200];
    cli_img_job ij = {.cmd = "detect", .shard = {0, 1}, .progress = -1, .bar_images = 1};
    vm_detect_defaults(&j.o);
    thr = j.o.score_thr;
    const char **images = calloc((size_t)argc + 1, sizeof *images);
    vm_detector *d = NULL;
    if (!images) return cli_fail("out of memory");
    ij.images = images;
    cli_opt opts[] = {
        {CLI_OPT_STR, "--model", 'm', &model, "MODEL", "mmdet checkpoint (.pth), or maskrcnn-vmamba-tiny\n(random weights, for benchmarks)"},
        {CLI_OPT_FN, "--scale", 0, &j.o, "W,H", "keep-ratio test scale (default 1333,800)", .fn = opt_scale},
        {CLI_OPT_DOUBLE, "--score-thr", 0, &thr, "T", "keep detections scoring above T (default 0.05)", .lo = 0, .hi = 1},
        {CLI_OPT_STR, "--raw", 0, &j.raw, "DIR", "write DIR/boxes.npy (N,4) float32 x1,y1,x2,y2,\nscores.npy (N,) float32, labels.npy (N,) int64,\nmasks.npy (N,H,W) uint8 0/1 (original image size);\nwith several images DIR/<image name>/..."},
        {CLI_OPT_STR, "--json", 0, &json, "OUT.json", "COCO results: image_id, category_id (COCO ids),\nbbox [x,y,w,h], score, segmentation (compressed RLE)"},
        {CLI_OPT_STR, "--output", 'o', &j.vis, "VIS.png", "draw masks, boxes, names and scores on the photo;\nwith several images a directory of <name>.png"},
        {CLI_OPT_STR, "--key", 0, &key, "K", "checkpoint key holding the weights (state_dict)"},
        {CLI_OPT_INT, "--threads", 0, &threads, "N", "threads (default: OMP_NUM_THREADS or all cores)", .lo = 1, .hi = 4096},
        {CLI_OPT_FN, "--device", 0, &device, "D", "cpu (default), cuda or cuda:N (GPU N; cuda = cuda:0):\nbackbone, FPN, RPN and the heads' convolutions and FCs\non the GPU (FP32); NMS, RoIAlign and mask pasting on the CPU", .fn = cli_opt_device},
        {CLI_OPT_INT, "--repeat", 0, &j.repeat, "N", "run each image N times and print the median time of\neach stage and the peak memory (benchmarks)", .lo = 1, .hi = 100000},
        {CLI_OPT_SECTION, .help = "Batch jobs:"},
        {CLI_OPT_STR, "--list", 0, &ij.list, "FILE", "image paths, one per line ('-' = stdin)"},
        {CLI_OPT_STR, "--list0", 0, &ij.list0, "FILE", "image paths separated by NUL bytes (find -print0)"},
        {CLI_OPT_STR, "--output-dir", 0, &j.outdir, "DIR", "with --list: DIR/detections.jsonl and DIR/<index>_<name>.png"},
        {CLI_OPT_FN, "--shard", 0, &ij.shard, "I/N", "with --list: only lines I, I+N, I+2N, ... (0 <= I < N)", .fn = cli_opt_shard},
        {CLI_OPT_FLAG, "--resume", 0, &resume, NULL, "skip images already in DIR/detections.jsonl, append the\nrest (a torn last line from a killed job is cut and redone)"},
        {CLI_OPT_CONST, "--progress", 0, &ij.progress, NULL, "force the progress bar (default: on a terminal)", .ival = 1},
        {CLI_OPT_CONST, "--quiet", 0, &ij.progress, NULL, "no progress bar", .ival = 0},
        {CLI_OPT_END},
    };
    cli_spec spec = {usage, {opts}, footer, images, &ij.npos, -1, "IMAGE"};
    int pr = cli_parse(&spec, argc, argv);
    if (pr) { rc = pr < 0 ? 0 : pr; goto out; }
    j.o.score_thr = (float)thr;
    ij.outdir = j.outdir;
    if ((rc = cli_img_check(&ij, model))) goto out;
    rc = CLI_EXIT_USAGE;
    const char *list = ij.list;
    int npos = ij.npos;
    j.list = list != NULL;
    if (list && (j.raw || json || j.vis || j.repeat)) { cli_fail("detect: --raw, --json, -o and --repeat are for IMAGE arguments; --list writes into --output-dir"); goto out; }
    if (!list && (j.outdir || resume || ij.shard.n > 1)) { cli_fail("detect: --output-dir, --resume and --shard need --list FILE"); goto out; }
    rc = 1;
    j.many = npos > 1;
    if (j.many && (j.raw || j.vis) && cli_img_same_names("detect", images, npos)) { rc = CLI_EXIT_USAGE; goto out; }
    if (j.raw && strlen(j.raw) > 4000) { cli_fail("%.40s...: path too long", j.raw); goto out; }
    if (j.vis && strlen(j.vis) > 4000) { cli_fail("%.40s...: path too long", j.vis); goto out; }
    if (j.outdir && strlen(j.outdir) > 4000) { cli_fail("%.40s...: path too long", j.outdir); goto out; }
    if (j.many && j.vis && ensure_dir(j.vis)) goto out;
    if (j.many && j.raw && ensure_dir(j.raw)) goto out;
    if (j.outdir && cli_img_outdir(j.outdir)) goto out;
    cli_threads(threads);
    char err[1024];
    struct stat st;
    if (stat(model, &st) != 0 && !strcmp(model, "maskrcnn-vmamba-tiny")) d = vm_detector_from_preset(model, 0, err, sizeof err);
    else {
        vm_load_opts lo = {.key = key, .quiet = 1};
        d = vm_detector_load(model, &lo, err, sizeof err);
    }
    if (!d) { cli_fail("%s", err); goto out; }
    if (device && strcmp(device, "cpu") && vm_detector_set_device(d, device, err, sizeof err)) {
        cli_fail("--device %s: %s", device, err);
        goto out;
    }
    j.d = d;
    if (!(j.ctx = cli_img_ctx(vm_detector_model(d), threads))) goto out;
    if (json && !(j.arr = json_array())) { cli_fail("out of memory"); goto out; }
    if (list) {
        snprintf(jl, sizeof jl, "%s/detections.jsonl", j.outdir); /* cli_out keeps the pointer */
        if (cli_out_open(&j.out, jl, resume, list)) goto out;
    }
    j.progress = cli_img_progress(&ij);
    ij.done = resume ? &j.out.done : NULL;
    cli_task task = {.in_floats = 0, .prepare = det_prepare, .run = det_run, .write = det_write, .ctx = &j,
                     .release = det_release};
    if ((rc = cli_img_run(&ij, &task)) == 1) goto out;
    if (j.arr) {
        char *s = json_dumps(j.arr, JSON_COMPACT | JSON_REAL_PRECISION(9));
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
out:
    if (cli_out_close(&j.out) && rc != CLI_EXIT_USAGE) rc = 1;
    cli_img_close(&ij);
    json_decref(j.arr);
    vm_ctx_free(j.ctx);
    vm_detector_free(d);
    free(images);
    return rc;
}
