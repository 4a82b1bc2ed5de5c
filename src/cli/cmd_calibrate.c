/* cmd_calibrate.c - `vmamba calibrate`: run the FP32 model over the user's
 * images, collect the input ranges of every linear layer, and write the
 * INT8 model (quant/). Deterministic: images are taken in sorted order. */
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
#include "loaders/npy.h"
#include "options.h"
#include "quant.h"

static void help(FILE *f) {
    fprintf(f,
            "Usage: vmamba calibrate -m MODEL --images DIR -o OUT.safetensors [options]\n"
            "       vmamba calibrate -m MODEL --inputs X.npy -o OUT.safetensors [options]\n"
            "\n"
            "Quantize MODEL to INT8 after observing it on calibration data: s8 weights\n"
            "per output channel, u8 activations per tensor. in_proj, out_proj, the MLP\n"
            "and the v1 downsample run as INT8 matmuls; the head and the convolutions\n"
            "are stored as s8 (options below make them INT8 too); the scan, norms,\n"
            "x_proj and residuals stay FP32.\n"
            "\n"
            "  --images DIR        JPEG/PNG files of DIR (sorted; not recursive)\n"
            "  --inputs X.npy      already preprocessed float32 (N,3,H,W) inputs instead\n"
            "  --samples N         use the first N images (default: all)\n"
            "  --method M          minmax (default), percentile, or entropy (KL-divergence\n"
            "                      clipping threshold, as TensorRT)\n"
            "  --percentile P      for percentile: clip at the P-th percentile (99.99)\n"
            "  --smooth ALPHA      SmoothQuant: migrate activation outliers into the weights\n"
            "                      of in_proj and fc1 (folded into the LayerNorms), 0..1\n"
            "  --skip PATTERN      keep layers matching PATTERN (fnmatch or substring) in\n"
            "                      FP32; repeatable, e.g. --skip classifier.head\n"
            "  --int8-head         run the classifier head in INT8 too (default: s8 storage,\n"
            "                      FP32 compute: its error goes straight into the logits)\n"
            "  --int8-convs        run the patch-embed and downsample convolutions in INT8\n"
            "                      too (default: s8 storage, FP32 compute; check --report)\n"
            "  --report            print each layer's INT8 error (cosine, relative L2)\n"
            "  --batch B           images per forward pass (8)\n"
            "  --threads N, --key K, --progress / --quiet\n"
            "%s",
            cli_pp_help());
}

typedef struct {
    char **files;
    long n, pos;
} dir_ctx;

static int next_file(void *vc, char **path, long *index) {
    dir_ctx *c = vc;
    if (c->pos >= c->n) return 0;
    *path = strdup(c->files[c->pos]);
    *index = c->pos++;
    return 1;
}

static void on_result(void *vc, const cli_item *it, const float *logits, int classes) {
    (void)vc; (void)logits; (void)classes;
    if (!it->ok) fprintf(stderr, "\rvmamba: %s (skipped)\n", it->err);
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
        if (c->n == cap) c->files = realloc(c->files, (size_t)(cap = cap ? 2 * cap : 256) * sizeof *c->files);
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        c->files[c->n] = malloc(len);
        snprintf(c->files[c->n++], len, "%s/%s", dir, e->d_name);
    }
    closedir(d);
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
        cli_batch_job job = {.model = m, .pp = &pp->pp, .batch = batch, .next = next_file, .next_ctx = dc,
                             .result = on_result, .result_ctx = NULL, .total = dc->n, .progress = progress};
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

int cmd_calibrate(int argc, char **argv) {
    const char *model = NULL, *dir = NULL, *inputs = NULL, *out = NULL, *key = NULL, *method = "minmax";
    int threads = 0, batch = 8, report = 0, progress = -1, samples = 0, rc = 1, int8_head = 0, int8_pe = 0;
    double pct = 99.99, smooth = -1;
    const char **skip = calloc((size_t)argc, sizeof *skip);
    int nskip = 0;
    cli_pp pp;
    cli_pp_init(&pp);
    dir_ctx dc = {0};
    vm_model *m = NULL;
    vm_calib *cal = NULL;
    char *meta = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int r = cli_pp_parse(&pp, argc, argv, &i);
        if (r < 0) goto done;
        if (r > 0) continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { help(stdout); rc = 0; goto done; }
        else if (!strcmp(a, "--report")) report = 1;
        else if (!strcmp(a, "--int8-head")) int8_head = 1;
        else if (!strcmp(a, "--int8-convs")) int8_pe = 1;
        else if (!strcmp(a, "--progress")) progress = 1;
        else if (!strcmp(a, "--quiet")) progress = 0;

        else if (!strcmp(a, "-m") || !strcmp(a, "--model") || !strcmp(a, "--images") || !strcmp(a, "--inputs") ||
                 !strcmp(a, "-o") || !strcmp(a, "--output") || !strcmp(a, "--key") || !strcmp(a, "--method") ||
                 !strcmp(a, "--percentile") || !strcmp(a, "--skip") || !strcmp(a, "--batch") || !strcmp(a, "--threads") ||
                 !strcmp(a, "--samples") || !strcmp(a, "--smooth")) {
            if (!v) { cli_fail("calibrate: %s needs a value", a); goto done; }
            i++;
            if (!strcmp(a, "-m") || !strcmp(a, "--model")) model = v;
            else if (!strcmp(a, "--images")) dir = v;
            else if (!strcmp(a, "--inputs")) inputs = v;
            else if (!strcmp(a, "-o") || !strcmp(a, "--output")) out = v;
            else if (!strcmp(a, "--key")) key = v;
            else if (!strcmp(a, "--method")) method = v;
            else if (!strcmp(a, "--skip")) skip[nskip++] = v;
            else if (!strcmp(a, "--smooth")) {
                char *e;
                smooth = strtod(v, &e);
                if (*e || !(smooth >= 0 && smooth <= 1)) { cli_fail("--smooth: '%s' must be in [0, 1]", v); goto done; }
            }
            else if (!strcmp(a, "--percentile")) {
                char *e;
                pct = strtod(v, &e);
                if (*e || !(pct > 50 && pct <= 100)) { cli_fail("--percentile: '%s' must be in (50, 100]", v); goto done; }
            } else if (!strcmp(a, "--batch")) { if (cli_int(a, v, 1, 4096, &batch)) goto done; }
            else if (!strcmp(a, "--samples")) { if (cli_int(a, v, 1, 1 << 30, &samples)) goto done; }
            else if (cli_int(a, v, 1, 4096, &threads)) goto done;
        } else { cli_fail("calibrate: unknown argument '%s' (try --help)", a); goto done; }
    }
    if (!model || !out || !dir == !inputs) {
        help(stderr);
        cli_fail("calibrate: -m MODEL, -o OUT and one of --images DIR / --inputs X.npy are required");
        goto done;
    }
    vm_calib_opts co = {VM_CALIB_MINMAX, pct, skip, nskip, int8_head, int8_pe};
    if (!strcmp(method, "percentile")) co.method = VM_CALIB_PERCENTILE;
    else if (!strcmp(method, "entropy")) co.method = VM_CALIB_ENTROPY;
    else if (strcmp(method, "minmax")) { cli_fail("--method: '%s' is not minmax, percentile or entropy", method); goto done; }
    cli_threads(threads);
    cli_dev dev = {0};
    vm_info I;
    if (!(m = cli_load_classifier(model, key, &dev, &pp, &I))) goto done;
    if (m->quantized) { cli_fail("%s: already an INT8 model; calibrate the FP32 model", model); goto done; }
    vm_npy x = {0};
    if (dir && list_images(dir, samples, &dc)) goto done;
    if (inputs) {
        char e2[512];
        if (vm_npy_read(inputs, &x, e2, sizeof e2)) { cli_fail("%s", e2); goto done; }
        if (x.ndim != 4 || x.shape[1] != 3 || x.shape[0] < 1) { cli_fail("%s: expected shape (N, 3, H, W)", inputs); vm_npy_free(&x); goto done; }
    }
    if (progress < 0) progress = isatty(2);
    if (smooth >= 0) { /* pass 1: per-channel maxima, then fold the scales */
        vm_smooth *sm = vm_smooth_begin(m);
        int bad = run_pass(m, &pp, &dc, &x, samples, batch, progress, I.num_classes);
        int nl = vm_smooth_apply(sm, smooth);
        vm_smooth_free(sm);
        if (bad) { vm_npy_free(&x); goto done; }
        fprintf(stderr, "vmamba: SmoothQuant (alpha %.2f) folded into %d layers\n", smooth, nl);
    }
    cal = vm_calib_begin(m, &co);
    int bad = run_pass(m, &pp, &dc, &x, samples, batch, progress, I.num_classes);
    vm_npy_free(&x);
    if (bad) goto done;
    meta = cli_pp_to_json(&pp);
    char err[512];
    if (report) vm_calib_report(cal, stderr);
    if (vm_calib_write(cal, out, meta, err, sizeof err)) { cli_fail("%s", err); goto done; }
    fprintf(stderr, "vmamba: wrote %s (%d INT8 linear layers observed)\n", out, vm_calib_layers(cal));
    rc = 0;
done:
    vm_calib_free(cal);
    free(meta);
    for (long i = 0; i < dc.n; i++) free(dc.files[i]);
    free(dc.files);
    free(skip);
    cli_pp_free(&pp);
    vm_model_free(m);
    return rc;
}
