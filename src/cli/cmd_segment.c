/* cmd_segment.c - `vmamba segment`: semantic segmentation with an mmseg
 * UPerNet checkpoint (mmseg's test pipeline, vm_ctx_segment): label maps
 * as palette PNG / uint8 .npy, mmseg-style overlays, per-class pixel
 * shares. Images go through the batch machinery (batch.c) as payload
 * items: the next image is decoded on a helper thread while the current
 * one runs. Only the public API (vmamba.h). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "cli.h"
#include "imgjob.h"
#include "options.h"

static const char usage[] =
    "Usage: vmamba segment -m MODEL [options] IMAGE...\n"
    "       vmamba segment -m MODEL [options] --list FILE --output-dir DIR\n"
    "\n"
    "Semantic segmentation (ADE20K, 150 classes) with an mmsegmentation UPerNet\n"
    "checkpoint on the VMamba backbone (e.g. upernet_vssm_4xb4-160k_ade20k-512x512_tiny),\n"
    "exactly as mmseg's test pipeline: OpenCV decode (EXIF orientation applied),\n"
    "keep-ratio resize to fit --scale, whole-image inference, logits resized back\n"
    "to the original size, argmax. Prints each image's largest classes.\n"
    "\n";
static const char footer[] =
    "-o, --overlay and --raw take one IMAGE; use --output-dir for several.\n"
    "The next image is decoded on a helper thread while the current one runs.\n"
    "Unreadable images give an error (an error record with --json) and the\n"
    "others go on; the exit status is then 3. Usage errors exit 2, other\n"
    "errors 1. Outputs are written atomically: a failed run leaves no partial file.\n";

typedef struct {
    const vm_segmentor *s;
    vm_ctx *ctx;
    const char *out_png, *overlay, *raw, *outdir;
    int json, top, resume, scale[2];
    int list;     /* --list: output names start with the line's index */
    int progress; /* a bar on stderr: messages start with \r */
} seg_job;

/* A payload item: the decoded photo, then its label map. */
typedef struct {
    uint8_t *bgr, *labels;
    int w, h, w1, h1;
    double ms; /* decode + segmentation */
} seg_item;

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* --scale W,H (both required, unlike the classifier's --size N). */
static int opt_scale(void *dest, const char *name, const char *v) {
    int *wh = dest;
    const char *comma = strchr(v, ',');
    long long w, h;
    char wb[32];
    if (!comma || (size_t)(comma - v) >= sizeof wb) return cli_fail("%s: '%s' is not W,H with 1 <= W,H <= 65500", name, v), -1;
    memcpy(wb, v, (size_t)(comma - v));
    wb[comma - v] = 0;
    if (cli_parse_long(name, wb, 1, 65500, &w) || cli_parse_long(name, comma + 1, 1, 65500, &h)) return -1;
    wh[0] = (int)w, wh[1] = (int)h;
    return 0;
}

typedef struct {
    int id;
    long n;
} share;

static int by_count(const void *a, const void *b) {
    const share *x = a, *y = b;
    return x->n != y->n ? (y->n > x->n ? 1 : -1) : x->id - y->id;
}

static void report(const seg_job *o, const char *path, const seg_item *p) {
    share s[256];
    for (int i = 0; i < 256; i++) s[i].id = i, s[i].n = 0;
    size_t np = (size_t)p->w * p->h;
    for (size_t q = 0; q < np; q++) s[p->labels[q]].n++;
    qsort(s, 256, sizeof *s, by_count);
    if (o->json) {
        json_t *j = json_object(), *cl = json_array();
        json_object_set_new(j, "image", json_string(path));
        json_object_set_new(j, "width", json_integer(p->w));
        json_object_set_new(j, "height", json_integer(p->h));
        json_object_set_new(j, "resized", json_pack("[ii]", p->w1, p->h1));
        for (int i = 0; i < 256 && s[i].n; i++) {
            const char *nm = vm_segmentor_class_name(o->s, s[i].id);
            json_t *c = json_pack("{s:i,s:I,s:f}", "id", s[i].id, "pixels", (json_int_t)s[i].n, "share",
                                  (double)s[i].n / (double)np);
            if (nm) json_object_set_new(c, "name", json_string(nm));
            json_array_append_new(cl, c);
        }
        json_object_set_new(j, "classes", cl);
        json_object_set_new(j, "ms", json_real(p->ms));
        char *txt = json_dumps(j, JSON_COMPACT);
        if (txt) puts(txt);
        free(txt);
        json_decref(j);
    } else {
        printf("%s (%dx%d, inferred at %dx%d):", path, p->w, p->h, p->w1, p->h1);
        for (int i = 0; i < o->top && i < 256 && s[i].n; i++) {
            const char *nm = vm_segmentor_class_name(o->s, s[i].id);
            if (nm) printf("%s %s %.1f%%", i ? "," : "", nm, 100.0 * s[i].n / np);
            else printf("%s class %d %.1f%%", i ? "," : "", s[i].id, 100.0 * s[i].n / np);
        }
        printf("\n");
    }
    fflush(stdout);
}

static int write_outputs(const seg_job *o, const char *png, const char *overlay, const char *raw, const seg_item *p) {
    char err[1024];
    int ncls = vm_segmentor_classes(o->s);
    const uint8_t *pal = vm_segmentor_palette(o->s);
    if (png && vm_write_png_indexed(png, p->labels, p->w, p->h, pal, ncls, err, sizeof err)) return cli_fail("%s", err);
    if (overlay) {
        uint8_t *ov = malloc((size_t)p->w * p->h * 3);
        if (!ov) return cli_fail("%s: out of memory", overlay);
        vm_seg_overlay(p->bgr, p->labels, p->w, p->h, pal, ncls, ov);
        int rc = vm_write_png_rgb(overlay, ov, p->w, p->h, err, sizeof err);
        free(ov);
        if (rc) return cli_fail("%s", err);
    }
    if (raw) { /* last: with --output-dir it marks a done image for --resume */
        int64_t shape[2] = {p->h, p->w};
        if (vm_write_npy_u8(raw, p->labels, 2, shape, err, sizeof err)) return cli_fail("%s", err);
    }
    return 0;
}

/* DIR/<name><suffix>, <name> = the file name without its extension; with
 * --list DIR/<index>_<name><suffix>, as detect names its pictures: two
 * list entries of one name (a/x.jpg, b/x.png) must not overwrite each
 * other's outputs. */
static char *out_name(const seg_job *o, const cli_item *it, const char *suffix) {
    const char *b = strrchr(it->path, '/');
    b = b ? b + 1 : it->path;
    const char *dot = strrchr(b, '.');
    size_t n = dot && dot != b ? (size_t)(dot - b) : strlen(b);
    char idx[32] = "";
    if (o->list) snprintf(idx, sizeof idx, "%ld_", it->index);
    size_t len = strlen(o->outdir) + strlen(idx) + n + strlen(suffix) + 2;
    char *r = malloc(len);
    if (r) snprintf(r, len, "%s/%s%.*s%s", o->outdir, idx, (int)n, b, suffix);
    return r;
}

/* --resume: the .npy is written last (atomically), so it marks a done image. */
static int seg_skip(void *vc, const cli_item *it) {
    const seg_job *o = vc;
    if (!o->outdir || !o->resume) return 0;
    char *n = out_name(o, it, "_label.npy");
    struct stat st;
    int done = n && stat(n, &st) == 0;
    free(n);
    return done;
}

/* Decode thread: the photo as cv2.imdecode gives it. */
static int seg_prepare(void *vc, cli_item *it, float *in) {
    (void)vc, (void)in;
    seg_item *p = calloc(1, sizeof *p);
    if (!p) return snprintf(it->err, sizeof it->err, "%s: out of memory", it->path), -1;
    double t0 = now_ms();
    if (vm_image_load_bgr(it->path, &p->bgr, &p->w, &p->h, it->err, sizeof it->err)) {
        free(p);
        return -1;
    }
    p->ms = now_ms() - t0;
    it->orig_w = p->w, it->orig_h = p->h;
    it->data = p;
    return 0;
}

static int seg_run(void *vc, const cli_item *items, int n, const float *in, int H, int W, float *out) {
    seg_job *o = vc;
    seg_item *p = items->data;
    double t0 = now_ms();
    if (!(p->labels = malloc((size_t)p->w * p->h))) return cli_fail("%s: out of memory", items->path), -1;
    if (vm_ctx_segment(o->ctx, o->s, p->bgr, p->w, p->h, o->scale[0], o->scale[1], p->labels))
        return cli_fail("%s: %s", items->path, vm_ctx_error(o->ctx)), -1;
    vm_segment_resized_size(p->w, p->h, o->scale[0], o->scale[1], &p->w1, &p->h1);
    p->ms += now_ms() - t0;
    return 0;
}

static int seg_write(void *vc, const cli_item *it, const float *out) {
    seg_job *o = vc;
    (void)out;
    if (!it->ok) {
        if (o->json) {
            json_t *j = json_pack("{s:s,s:s}", "image", it->path, "error", it->err);
            char *txt = j ? json_dumps(j, JSON_COMPACT) : NULL;
            if (txt) puts(txt);
            fflush(stdout);
            free(txt);
            json_decref(j);
        }
        fprintf(stderr, "%svmamba: %s\n", o->progress ? "\r" : "", it->err);
        return 0;
    }
    const seg_item *p = it->data;
    if (o->outdir) {
        char *a = out_name(o, it, "_label.png"), *b = out_name(o, it, "_overlay.png"), *c = out_name(o, it, "_label.npy");
        int w = a && b && c ? write_outputs(o, a, b, c, p) : cli_fail("out of memory");
        free(a), free(b), free(c);
        if (w) return -1;
    } else if (write_outputs(o, o->out_png, o->overlay, o->raw, p)) {
        return -1;
    }
    report(o, it->path, p);
    return 0;
}

static void seg_release(void *vc, cli_item *it) {
    seg_item *p = it->data;
    (void)vc;
    if (!p) return;
    free(p->bgr);
    free(p->labels);
    free(p);
}

int cmd_segment(int argc, char **argv) {
    seg_job o = {.top = 5, .scale = {2048, 512}};
    const char *model = NULL, *device = NULL;
    int threads = 0, rc = 1;
    cli_img_job ij = {.cmd = "segment", .shard = {0, 1}, .progress = -1, .verb = "segmented"};
    const char **imgs = calloc((size_t)argc + 1, sizeof *imgs);
    vm_segmentor *s = NULL;
    if (!imgs) return cli_fail("out of memory");
    ij.images = imgs;
    cli_opt opts[] = {
        {CLI_OPT_STR, "--model", 'm', &model, "MODEL", "mmseg .pth checkpoint, or the preset upernet-vmamba-tiny\n(random weights, for benchmarks)"},
        {CLI_OPT_FN, "--scale", 0, o.scale, "W,H", "resize scale (2048,512): the image is resized to fit\ninside it keeping its aspect ratio", .fn = opt_scale},
        {CLI_OPT_STR, "--output", 'o', &o.out_png, "OUT.png", "label map as an indexed PNG with the ADE20K palette"},
        {CLI_OPT_STR, "--overlay", 0, &o.overlay, "OUT.png", "photo blended with the palette colours (alpha 0.5, as\nmmseg's visualiser)"},
        {CLI_OPT_STR, "--raw", 0, &o.raw, "OUT.npy", "label map as uint8 (H, W) NumPy array, original size"},
        {CLI_OPT_FLAG, "--json", 0, &o.json, NULL, "JSON Lines on stdout: per-class pixel shares, largest first"},
        {CLI_OPT_INT, "--top", 0, &o.top, "K", "classes printed per image in text mode (5)", .lo = 1, .hi = 256},
        {CLI_OPT_INT, "--threads", 0, &threads, "N", "threads (default: OMP_NUM_THREADS or all cores)", .lo = 1, .hi = 4096},
        {CLI_OPT_FN, "--device", 0, &device, "D", "cpu (default), cuda or cuda:N (GPU N; cuda = cuda:0):\nbackbone and UPerHead on the GPU (FP32), logits resizes\nand argmax on the CPU", .fn = cli_opt_device},
        {CLI_OPT_SECTION, .help = "Batch jobs:"},
        {CLI_OPT_STR, "--list", 0, &ij.list, "FILE", "image paths, one per line ('-' = stdin)"},
        {CLI_OPT_STR, "--list0", 0, &ij.list0, "FILE", "image paths separated by NUL bytes (find -print0)"},
        {CLI_OPT_STR, "--output-dir", 0, &o.outdir, "DIR", "for every image write DIR/<name>_label.png,\nDIR/<name>_overlay.png and DIR/<name>_label.npy\n(<name> = file name without its extension; with\n--list <index>_<name>, index = the line's, from 0)"},
        {CLI_OPT_FN, "--shard", 0, &ij.shard, "I/N", "with --list: only lines I, I+N, I+2N, ... (0 <= I < N)", .fn = cli_opt_shard},
        {CLI_OPT_FLAG, "--resume", 0, &o.resume, NULL, "with --output-dir: skip images whose outputs are all there"},
        {CLI_OPT_CONST, "--progress", 0, &ij.progress, NULL, "force the progress bar (default: on a terminal)", .ival = 1},
        {CLI_OPT_CONST, "--quiet", 0, &ij.progress, NULL, "no progress bar", .ival = 0},
        {CLI_OPT_END},
    };
    cli_spec spec = {usage, {opts}, footer, imgs, &ij.npos, -1, "IMAGE"};
    int pr = cli_parse(&spec, argc, argv);
    if (pr) { rc = pr < 0 ? 0 : pr; goto out; }
    ij.outdir = o.outdir;
    if ((rc = cli_img_check(&ij, model))) goto out;
    rc = CLI_EXIT_USAGE;
    o.list = ij.list != NULL;
    if ((o.out_png || o.overlay || o.raw) && (ij.npos != 1 || ij.list || o.outdir)) {
        cli_fail("segment: -o, --overlay and --raw take exactly one IMAGE; use --output-dir DIR for several");
        goto out;
    }
    if (o.resume && !o.outdir) { cli_fail("segment: --resume needs --output-dir DIR"); goto out; }
    if (ij.shard.n > 1 && !ij.list) { cli_fail("segment: --shard needs --list FILE"); goto out; }
    /* several IMAGE arguments write DIR/<name>_*: one name twice would overwrite */
    if (o.outdir && !ij.list && cli_img_same_names("segment", imgs, ij.npos)) goto out;
    rc = 1;
    if (o.outdir && cli_img_outdir(o.outdir)) goto out;
    cli_threads(threads);
    char err[1024];
    struct stat st;
    s = stat(model, &st) != 0 && !strcmp(model, "upernet-vmamba-tiny") ? vm_segmentor_from_preset(model, 0, err, sizeof err)
                                                                          : vm_segmentor_load(model, err, sizeof err);
    if (!s) { cli_fail("%s", err); goto out; }
    if (device && strcmp(device, "cpu") && vm_segmentor_set_device(s, device, err, sizeof err)) {
        cli_fail("--device %s: %s", device, err);
        goto out;
    }
    o.s = s;
    if (!(o.ctx = cli_img_ctx(vm_segmentor_model(s), threads))) goto out;
    cli_task task = {.in_floats = 0, .prepare = seg_prepare, .run = seg_run, .write = seg_write, .ctx = &o,
                     .skip = seg_skip, .release = seg_release};
    o.progress = cli_img_progress(&ij);
    rc = cli_img_run(&ij, &task);
out:
    cli_img_close(&ij);
    vm_ctx_free(o.ctx);
    vm_segmentor_free(s);
    free(imgs);
    return rc;
}
