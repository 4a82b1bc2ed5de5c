/* cmd_calibrate.c - `vmamba calibrate`: run the FP32 model over the user's
 * images, collect the input ranges of every linear layer, and write the
 * INT8 model (quant/). Deterministic: images are taken in sorted order.
 * Classifiers see the classification preprocessing; segmentation,
 * detection and backbone-only models their task's test pipeline
 * (vm_calib_dense_*), and a UPerNet head's convolutions are observed too
 * (INT8 head convolutions). Only the public API (vmamba.h). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "batch.h"
#include "cli.h"
#include "options.h"

static const char usage[] =
    "Usage: vmamba calibrate -m MODEL --images DIR -o OUT.safetensors [options]\n"
    "       vmamba calibrate -m MODEL --inputs X.npy -o OUT.safetensors [options]\n"
    "\n"
    "Quantize MODEL to INT8 after observing it on calibration data: s8 weights\n"
    "per output channel, u8 activations per tensor. in_proj, out_proj, the MLP\n"
    "and the v1 downsample run as INT8 matmuls; the classifier head and the\n"
    "convolutions are stored as s8 (options below make them INT8 too); the\n"
    "scan, norms, x_proj and residuals stay FP32.\n"
    "\n"
    "MODEL may be a classifier, an mmseg UPerNet segmentation checkpoint, an\n"
    "mmdet Mask R-CNN detection checkpoint or a backbone-only one (--task\n"
    "says which pipeline the images go through; by default the model's own).\n"
    "Segmentation: the backbone's linears and the UPerHead convolutions run in\n"
    "INT8 (--fp32-head keeps the head FP32; --skip keeps single convolutions,\n"
    "e.g. --skip decode_head.conv_seg). Detection: the backbone in INT8, FPN,\n"
    "RPN and RoI heads FP32. The images are decoded as OpenCV does (EXIF\n"
    "orientation applied) and resized keeping their aspect ratio to fit\n"
    "--scale, as `vmamba segment` / `vmamba detect` do; --inputs gives\n"
    "already normalised (N,3,H,W) tensors instead. The INT8 file keeps the\n"
    "heads and is loaded by classify, segment or detect like the FP32 one.\n"
    "\n";

typedef struct {
    const char **v;
    int n;
} str_list;

static int add_skip(void *dest, const char *name, const char *value) {
    str_list *l = dest;
    if (!*value) return cli_fail("%s: the pattern is empty", name), -1;
    l->v[l->n++] = value; /* capacity argc: never more values than arguments */
    return 0;
}

typedef struct {
    cli_cls cls; /* first: the task's prepare and run use it */
    char **files;
    long n, pos;
} dir_ctx;

static int next_file(void *vc, char **path, long *index) {
    dir_ctx *c = vc;
    if (c->pos >= c->n) return 0;
    if (!(*path = strdup(c->files[c->pos]))) return cli_fail("out of memory"), -1;
    *index = c->pos++;
    return 1;
}

static int on_result(void *vc, const cli_item *it, const float *logits) {
    (void)vc; (void)logits;
    if (!it->ok) fprintf(stderr, "\rvmamba: %s (skipped)\n", it->err);
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int is_image(const char *n) {
    const char *e = strrchr(n, '.');
    return e && (!strcasecmp(e, ".jpg") || !strcasecmp(e, ".jpeg") || !strcasecmp(e, ".png"));
}

static int list_images(const char *dir, long limit, dir_ctx *c) {
    DIR *d = opendir(dir);
    if (!d) return cli_fail("%s: %s", dir, strerror(errno)), -1;
    struct dirent *e;
    long cap = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !is_image(e->d_name)) continue;
        if (c->n == cap) {
            long nc = cap ? 2 * cap : 256;
            char **nf = realloc(c->files, (size_t)nc * sizeof *c->files);
            if (!nf) break;
            c->files = nf;
            cap = nc;
        }
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        if (!(c->files[c->n] = malloc(len))) break;
        snprintf(c->files[c->n++], len, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    if (e) return cli_fail("%s: out of memory listing the images", dir), -1;
    if (c->n == 0) return cli_fail("%s: no JPEG or PNG images to calibrate on", dir), -1;
    qsort(c->files, (size_t)c->n, sizeof *c->files, cmp_str);
    if (limit > 0 && c->n > limit) {
        for (long i = limit; i < c->n; i++) free(c->files[i]);
        c->n = limit;
    }
    return 0;
}

/* One pass of the model over the calibration data (images or a tensor). */
static int run_pass(vm_model *m, cli_pp *pp, dir_ctx *dc, const vm_npy *x, int samples, int batch, int progress, int classes) {
    if (dc->n) {
        dc->pos = 0;
        dc->cls.m = m;
        dc->cls.pp = pp->pp;
        cli_task task = {.in_floats = (size_t)3 * pp->pp.size * pp->pp.size, .out_floats = (size_t)classes,
                         .prepare = cli_cls_prepare, .run = cli_cls_run, .write = on_result, .ctx = dc};
        cli_batch_job job = {.task = &task, .batch = batch, .next = next_file, .next_ctx = dc, .shard = {0, 1},
                             .total = dc->n, .progress = progress};
        long ok, fail;
        double secs;
        if (cli_batch_run(&job, &ok, &fail, &secs)) return -1;
        if (ok == 0) return cli_fail("none of the %ld calibration images could be read", dc->n), -1;
        fprintf(stderr, "vmamba: observed %ld images (%ld unreadable) in %.1f s\n", ok, fail, secs);
        return 0;
    }
    int N = (int)x->shape[0], H = (int)x->shape[2], W = (int)x->shape[3];
    if (samples > 0 && samples < N) N = samples;
    float *logits = malloc((size_t)batch * classes * sizeof(float));
    if (!logits) return cli_fail("out of memory"), -1;
    int rc = 0;
    for (int b = 0; b < N && !rc; b += batch) {
        int nb = N - b < batch ? N - b : batch;
        if (vm_forward(m, x->data + (size_t)b * 3 * H * W, nb, H, W, logits)) {
            cli_fail("%s", vm_model_error(m));
            rc = -1;
        }
    }
    free(logits);
    return rc;
}

static const char *const methods[] = {"minmax", "percentile", "entropy", NULL};
static const char *const tasks[] = {"auto", "classify", "segment", "detect", NULL};

/* The dense tasks' calibration passes: every image (or tensor) through the
 * backbone, and the UPerHead when the runner has it (its convolutions'
 * inputs go to cal; NULL: a SmoothQuant pass). */
static int run_dense(vm_calib_dense *d, vm_calib *cal, dir_ctx *dc, const vm_npy *x, int samples, int progress) {
    char err[512];
    if (dc->n) {
        long ok = 0;
        for (long i = 0; i < dc->n; i++) {
            if (progress) fprintf(stderr, "\rvmamba: calibrating %ld/%ld", i + 1, dc->n);
            if (vm_calib_dense_image(d, cal, dc->files[i], err, sizeof err))
                fprintf(stderr, "\rvmamba: %s (skipped)\n", err);
            else ok++;
        }
        if (progress) fprintf(stderr, "\n");
        if (ok == 0) return cli_fail("none of the %ld calibration images could be used", dc->n), -1;
        fprintf(stderr, "vmamba: observed %ld images (%ld skipped)\n", ok, dc->n - ok);
        return 0;
    }
    int N = (int)x->shape[0], H = (int)x->shape[2], W = (int)x->shape[3];
    if (samples > 0 && samples < N) N = samples;
    for (int b = 0; b < N; b++)
        if (vm_calib_dense_tensor(d, cal, x->data + (size_t)b * 3 * H * W, H, W, err, sizeof err))
            return cli_fail("%s: sample %d: %s", "--inputs", b, err), -1;
    return 0;
}

int cmd_calibrate(int argc, char **argv) {
    const char *model = NULL, *dir = NULL, *inputs = NULL, *out = NULL, *key = NULL, *method = "minmax", *task = "auto";
    int threads = 0, batch = 8, report = 0, progress = -1, samples = 0, rc = 1, int8_head = 0, int8_pe = 0, npos = 0;
    int scale[2] = {0, 0}, fp32_head = 0, dynamic = 0;
    vm_calib_dense *dense = NULL;
    double pct = 99.99, smooth = -1, target = 0;
    str_list skip = {calloc((size_t)argc + 1, sizeof(char *)), 0};
    const char **skipv = skip.v;
    cli_pp pp;
    cli_pp_init(&pp);
    dir_ctx dc = {0};
    vm_model *m = NULL;
    vm_calib *cal = NULL;
    char *meta = NULL;
    if (!skip.v) return cli_fail("out of memory");
    cli_opt opts[] = {
        {CLI_OPT_STR, "--model", 'm', &model, "MODEL", "the FP32 model (.pth or .safetensors)"},
        {CLI_OPT_STR, "--output", 'o', &out, "OUT", "the INT8 model to write (.safetensors)"},
        {CLI_OPT_STR, "--images", 0, &dir, "DIR", "JPEG/PNG files of DIR (sorted; not recursive; regular\nfiles only: FIFOs and devices are skipped)"},
        {CLI_OPT_STR, "--inputs", 0, &inputs, "X.npy", "already preprocessed float32 (N,3,H,W) inputs instead"},
        {CLI_OPT_INT, "--samples", 0, &samples, "N", "use the first N images (default: all)", .lo = 1, .hi = 1 << 30},
        {CLI_OPT_CHOICE, "--method", 0, &method, "M", "minmax (default), percentile, or entropy (KL-divergence\nclipping threshold, as TensorRT)", .choices = methods},
        {CLI_OPT_DOUBLE, "--percentile", 0, &pct, "P", "for percentile: clip at the P-th percentile (99.99)", .lo = 50, .hi = 100},
        {CLI_OPT_DOUBLE, "--smooth", 0, &smooth, "ALPHA", "SmoothQuant: migrate activation outliers into the weights\nof in_proj and fc1 (folded into the LayerNorms), 0..1", .lo = 0, .hi = 1},
        {CLI_OPT_FN, "--skip", 0, &skip, "PATTERN", "keep layers matching PATTERN (fnmatch or substring of the\nweight's name) FP32, weights too; repeatable, e.g.\n--skip classifier.head, --skip decode_head.conv_seg", .fn = add_skip},
        {CLI_OPT_FLAG, "--int8-head", 0, &int8_head, NULL, "run the classifier head in INT8 too (default: s8 storage,\nFP32 compute: its error goes straight into the logits)"},
        {CLI_OPT_FLAG, "--int8-convs", 0, &int8_pe, NULL, "run the patch-embed and downsample convolutions in INT8\ntoo (default: s8 storage, FP32 compute; check --report)"},
        {CLI_OPT_FLAG, "--dynamic", 0, &dynamic, NULL, "INT8 linear layers quantize their inputs per token at run\ntime (a scale and zero point per row) instead of with one\ncalibrated range: closer to FP32, a little slower"},
        {CLI_OPT_DOUBLE, "--target-cosine", 0, &target, "C", "segment/detect: keep the backbone layers whose INT8\nerror moves the features most in FP32 until every\ncalibration photo's four feature maps have a cosine >= C\nagainst FP32's (e.g. 0.9999; recorded in the file)", .lo = 0.5, .hi = 1},
        {CLI_OPT_CHOICE, "--task", 0, &task, "T", "auto (default: from the model's heads), classify, segment\nor detect: the preprocessing the images go through\n(segment/detect: OpenCV decode, keep-ratio resize to fit\n--scale; a backbone-only model defaults to segment)", .choices = tasks},
        {CLI_OPT_WH, "--scale", 0, scale, "W,H", "segment/detect: resize to fit W,H (2048,512 segment;\n1333,800 detect, padded to multiples of 32)", .lo = 32, .hi = 16384},
        {CLI_OPT_FLAG, "--fp32-head", 0, &fp32_head, NULL, "segment: keep the UPerHead FP32 (default: its\nconvolutions INT8)"},
        {CLI_OPT_FLAG, "--report", 0, &report, NULL, "print each layer's INT8 error (cosine, relative L2)"},
        {CLI_OPT_INT, "--batch", 0, &batch, "B", "images per forward pass (8)", .lo = 1, .hi = 1024},
        {CLI_OPT_INT, "--threads", 0, &threads, "N", "threads (default: OMP_NUM_THREADS or all cores)", .lo = 1, .hi = 4096},
        {CLI_OPT_STR, "--key", 0, &key, "K", "checkpoint key holding the weights"},
        {CLI_OPT_CONST, "--progress", 0, &progress, NULL, "force the progress bar (default: on a terminal)", .ival = 1},
        {CLI_OPT_CONST, "--quiet", 0, &progress, NULL, "no progress bar", .ival = 0},
        {CLI_OPT_END},
    };
    cli_opt ppo[7];
    cli_pp_options(&pp, ppo);
    cli_spec spec = {usage, {opts, ppo}, NULL, NULL, &npos, 0, NULL};
    int pr = cli_parse(&spec, argc, argv);
    if (pr) { rc = pr < 0 ? 0 : pr; goto done; }
    if (!model || !out || !dir == !inputs) {
        cli_fail("calibrate: -m MODEL, -o OUT and one of --images DIR / --inputs X.npy are required (try 'vmamba calibrate --help')");
        rc = 2;
        goto done;
    }
    vm_calib_opts co = {VM_CALIB_MINMAX, pct, skip.v, skip.n, int8_head, int8_pe, dynamic};
    if (!strcmp(method, "percentile")) co.method = VM_CALIB_PERCENTILE;
    else if (!strcmp(method, "entropy")) co.method = VM_CALIB_ENTROPY;
    cli_threads(threads);
    cli_dev dev = {0};
    vm_info I;
    if (!(m = cli_load_model(model, key))) goto done;
    if (vm_model_is_int8(m)) { cli_fail("%s: already an INT8 model; calibrate the FP32 model", model); goto done; }
    vm_model_info(m, &I);
    unsigned heads = vm_model_heads(m);
    int is_seg = !!(heads & VM_HEAD_UPERNET), is_det = !!(heads & (VM_HEAD_FPN | VM_HEAD_RPN | VM_HEAD_ROI));
    if (!strcmp(task, "auto")) {
        task = is_seg ? "segment" : is_det ? "detect" : I.num_classes > 0 ? "classify" : "segment";
        if (!is_seg && !is_det && I.num_classes == 0)
            fprintf(stderr, "vmamba: %s is a backbone-only model: calibrating with the segmentation pipeline (--task "
                            "detect for detection's)\n", model);
    }
    int classify = !strcmp(task, "classify"), pad32 = !strcmp(task, "detect");
    if (classify && I.num_classes == 0) {
        cli_fail("%s: --task classify needs a classifier head and this %s checkpoint has none (use --task segment or "
                 "detect)", model, is_seg ? "segmentation" : is_det ? "detection" : "backbone-only");
        goto done;
    }
    if (!classify && !I.is_backbone && I.num_classes == 0) {
        cli_fail("%s: no classifier head and no outnorm0..3 layers: not a model calibrate can run", model);
        goto done;
    }
    if (classify && (scale[0] || fp32_head || target > 0)) {
        cli_fail("%s: --scale, --fp32-head and --target-cosine are for segmentation and detection models", model);
        goto done;
    }
    if (target > 0 && !dir) {
        cli_fail("%s: --target-cosine needs --images (the photos it measures the features on)", model);
        goto done;
    }
    if (!scale[0]) scale[0] = pad32 ? 1333 : 2048, scale[1] = pad32 ? 800 : 512;
    if (classify &&
        (cli_dev_apply(&dev, m) || cli_pp_metadata(&pp, vm_model_metadata(m), model) || cli_pp_sidecar(&pp, model) ||
         cli_pp_check(&pp, model)))
        goto done;
    vm_npy x = {0};
    if (dir && list_images(dir, samples, &dc)) goto done;
    if (inputs) {
        char e2[512];
        if (vm_npy_read(inputs, &x, e2, sizeof e2)) { cli_fail("%s", e2); goto done; }
        if (x.ndim != 4 || x.shape[1] != 3 || x.shape[0] < 1 || x.shape[0] > INT32_MAX || x.shape[2] < 1 || x.shape[2] > 65536 ||
            x.shape[3] < 1 || x.shape[3] > 65536) { cli_fail("%s: expected shape (N, 3, H, W)", inputs); vm_npy_free(&x); goto done; }
    }
    if (progress < 0) progress = isatty(2);
    if (!classify) { /* the task's pipeline; a segmentor's head runs too (its convs are observed) unless --fp32-head */
        char e2[512];
        int with_head = is_seg && !pad32 && !fp32_head;
        if (!(dense = vm_calib_dense_new(m, pad32 ? VM_CALIB_TASK_DETECT : VM_CALIB_TASK_SEGMENT, scale[0], scale[1],
                                         with_head, e2, sizeof e2))) { cli_fail("%s", e2); vm_npy_free(&x); goto done; }
    }
    if (smooth >= 0) { /* pass 1: per-channel maxima, then fold the scales */
        vm_smooth *sm = vm_smooth_begin(m);
        if (!sm) { cli_fail("%s: %s", model, vm_model_error(m)); vm_npy_free(&x); goto done; }
        int bad = classify ? run_pass(m, &pp, &dc, &x, samples, batch, progress, I.num_classes)
                           : run_dense(dense, NULL, &dc, &x, samples, progress);
        int nl = vm_smooth_apply(sm, smooth);
        vm_smooth_free(sm);
        if (!bad && nl < 0) { cli_fail("%s: %s", model, vm_model_error(m)); bad = 1; }
        if (bad) { vm_npy_free(&x); goto done; }
        fprintf(stderr, "vmamba: SmoothQuant (alpha %.2f) folded into %d layers\n", smooth, nl);
    }
    cal = vm_calib_begin(m, &co);
    if (!cal) { cli_fail("%s: %s", model, vm_model_error(m)); vm_npy_free(&x); goto done; }
    int bad = classify ? run_pass(m, &pp, &dc, &x, samples, batch, progress, I.num_classes)
                       : run_dense(dense, cal, &dc, &x, samples, progress);
    vm_npy_free(&x);
    if (bad) goto done;
    if (classify) {
        if (!(meta = cli_pp_to_json(&pp))) { cli_fail("out of memory"); goto done; }
    } else { /* the task, and the checkpoint's class names and palette (segment/detect read them back) */
        char e2[512];
        if (!(meta = vm_calib_dense_metadata(dense, model, e2, sizeof e2))) { cli_fail("%s", e2); goto done; }
    }
    char err[512];
    if (target > 0) { /* trial files next to the output: same file system, removed after each trial */
        size_t sl = strlen(out) + 16;
        char *scratch = malloc(sl);
        if (!scratch) { cli_fail("out of memory"); goto done; }
        snprintf(scratch, sl, "%s.trial", out);
        int kept = vm_calib_dense_mixed(dense, cal, (const char *const *)dc.files, (int)dc.n, target, scratch,
                                        progress ? stderr : NULL, err, sizeof err);
        free(scratch);
        if (kept < 0) { cli_fail("%s", err); goto done; }
        fprintf(stderr, "vmamba: --target-cosine %g: %d backbone layers kept FP32\n", target, kept);
    }
    if (report) vm_calib_report(cal, stderr);
    if (vm_calib_write(cal, out, meta, err, sizeof err)) { cli_fail("%s", err); goto done; }
    fprintf(stderr, "vmamba: wrote %s (%d layer inputs observed%s)\n", out, vm_calib_layers(cal),
            vm_calib_dense_head_convs(dense) ? ", UPerHead convolutions included" : "");
    rc = 0;
done:
    vm_calib_dense_free(dense);
    vm_calib_free(cal);
    free(meta);
    for (long i = 0; i < dc.n; i++) free(dc.files[i]);
    free(dc.files);
    free(skipv);
    cli_pp_free(&pp);
    vm_model_free(m);
    return rc;
}
