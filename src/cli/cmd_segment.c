/* cmd_segment.c - `vmamba segment`: semantic segmentation with an mmseg
 * UPerNet checkpoint (mmseg's test pipeline, see src/net/segmentor.h):
 * label maps as palette PNG / uint8 .npy, mmseg-style overlays, per-class
 * pixel shares. Option handling is self-contained here until the shared
 * option table lands. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "options.h"
#include "image/decode_cv.h"
#include "net/segmentor.h"
#include "post/seg_post.h"
#include "post/seg_write.h"

static void help(FILE *f) {
    fprintf(f,
            "Usage: vmamba segment -m MODEL [options] IMAGE...\n"
            "       vmamba segment -m MODEL [options] --list FILE --output-dir DIR\n"
            "\n"
            "Semantic segmentation (ADE20K, 150 classes) with an mmsegmentation UPerNet\n"
            "checkpoint on the VMamba backbone (e.g. upernet_vssm_4xb4-160k_ade20k-512x512_tiny),\n"
            "exactly as mmseg's test pipeline: OpenCV decode (EXIF orientation applied),\n"
            "keep-ratio resize to fit --scale, whole-image inference, logits resized back\n"
            "to the original size, argmax. Prints each image's largest classes.\n"
            "\n"
            "  -m, --model MODEL   mmseg .pth checkpoint, or the preset upernet-vmamba-tiny\n"
            "                      (random weights, for benchmarks)\n"
            "  --scale W,H         Resize scale (2048,512): the image is resized to fit\n"
            "                      inside it keeping its aspect ratio\n"
            "  -o OUT.png          label map as an indexed PNG with the ADE20K palette\n"
            "  --overlay OUT.png   photo blended with the palette colours (alpha 0.5, as\n"
            "                      mmseg's visualiser)\n"
            "  --raw OUT.npy       label map as uint8 (H, W) NumPy array, original size\n"
            "  --json              JSON Lines on stdout: per-class pixel shares, largest first\n"
            "  --top K             classes printed per image in text mode (5)\n"
            "  --threads N         threads (default: OMP_NUM_THREADS or all cores)\n"
            "  --list FILE         image paths, one per line ('-' = stdin)\n"
            "  --output-dir DIR    for every image write DIR/<name>_label.png,\n"
            "                      DIR/<name>_overlay.png and DIR/<name>_label.npy\n"
            "                      (<name> = file name without its extension)\n"
            "  --shard I/N         with --list: only lines I, I+N, I+2N, ... (0 <= I < N)\n"
            "  --resume            with --output-dir: skip images whose outputs are all there\n"
            "  --device DEV        cpu (default), cuda or cuda:N: backbone and UPerHead on\n"
            "                      GPU N (cuda = cuda:0)\n"
            "                      (FP32), logits resizes and argmax on the CPU\n"
            "-o, --overlay and --raw take one IMAGE; use --output-dir for several.\n"
            "Unreadable images give an error (an error record with --json) and the\n"
            "others go on; the exit status is then 3. Other errors exit 1.\n"
            "Outputs are written atomically: a failed run leaves no partial file.\n");
}

typedef struct {
    const char *out_png, *overlay, *raw, *outdir;
    int json, top, resume;
} seg_opts;

static int parse_scale(const char *v, int *w, int *h) {
    char *e1, *e2;
    if (!v) return cli_fail("--scale needs a value W,H"), -1;
    long a = strtol(v, &e1, 10);
    if (e1 == v || *e1 != ',') return cli_fail("--scale: '%s' is not W,H", v), -1;
    long b = strtol(e1 + 1, &e2, 10);
    if (e2 == e1 + 1 || *e2 || a < 1 || b < 1 || a > 65500 || b > 65500)
        return cli_fail("--scale: '%s' is not W,H with 1 <= W,H <= 65500", v), -1;
    *w = (int)a, *h = (int)b;
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

static void report(const vm_segmentor *sg, const seg_opts *o, const char *path, const vm_image *im, const vm_seg_trace *t,
                   const uint8_t *labels, double ms) {
    share s[256];
    for (int i = 0; i < 256; i++) s[i].id = i, s[i].n = 0;
    size_t np = (size_t)im->w * im->h;
    for (size_t p = 0; p < np; p++) s[labels[p]].n++;
    qsort(s, 256, sizeof *s, by_count);
    if (o->json) {
        json_t *j = json_object(), *cl = json_array();
        json_object_set_new(j, "image", json_string(path));
        json_object_set_new(j, "width", json_integer(im->w));
        json_object_set_new(j, "height", json_integer(im->h));
        json_object_set_new(j, "resized", json_pack("[ii]", t->w1, t->h1));
        for (int i = 0; i < 256 && s[i].n; i++) {
            const char *nm = vm_segmentor_class_name(sg, s[i].id);
            json_t *c = json_pack("{s:i,s:I,s:f}", "id", s[i].id, "pixels", (json_int_t)s[i].n, "share",
                                  (double)s[i].n / (double)np);
            if (nm) json_object_set_new(c, "name", json_string(nm));
            json_array_append_new(cl, c);
        }
        json_object_set_new(j, "classes", cl);
        json_object_set_new(j, "ms", json_real(ms));
        char *txt = json_dumps(j, JSON_COMPACT);
        puts(txt);
        free(txt);
        json_decref(j);
    } else {
        printf("%s (%dx%d, inferred at %dx%d):", path, im->w, im->h, t->w1, t->h1);
        for (int i = 0; i < o->top && i < 256 && s[i].n; i++) {
            const char *nm = vm_segmentor_class_name(sg, s[i].id);
            if (nm) printf("%s %s %.1f%%", i ? "," : "", nm, 100.0 * s[i].n / np);
            else printf("%s class %d %.1f%%", i ? "," : "", s[i].id, 100.0 * s[i].n / np);
        }
        printf("\n");
    }
    fflush(stdout);
}

static int write_outputs(const vm_segmentor *sg, const char *png, const char *overlay, const char *raw,
                         const vm_image *im, const uint8_t *labels) {
    char err[1024];
    int ncls = vm_segmentor_classes(sg);
    const uint8_t *pal = vm_segmentor_palette(sg);
    if (png && vm_write_png_indexed(png, labels, im->w, im->h, pal, ncls, err, sizeof err)) return cli_fail("%s", err);
    if (overlay) {
        uint8_t *ov = malloc((size_t)im->w * im->h * 3);
        if (!ov) return cli_fail("%s: out of memory", overlay);
        vm_seg_overlay(im->rgb, labels, im->w, im->h, pal, ncls, ov);
        int rc = vm_write_png_rgb(overlay, ov, im->w, im->h, err, sizeof err);
        free(ov);
        if (rc) return cli_fail("%s", err);
    }
    if (raw) {
        int64_t shape[2] = {im->h, im->w};
        if (vm_write_npy_u8(raw, labels, 2, shape, err, sizeof err)) return cli_fail("%s", err);
    }
    return 0;
}

/* DIR/<basename without extension><suffix> */
static char *out_name(const char *dir, const char *path, const char *suffix) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    const char *dot = strrchr(b, '.');
    size_t n = dot && dot != b ? (size_t)(dot - b) : strlen(b);
    size_t len = strlen(dir) + n + strlen(suffix) + 2;
    char *r = malloc(len);
    if (r) snprintf(r, len, "%s/%.*s%s", dir, (int)n, b, suffix);
    return r;
}

/* 0 done, 1 fatal error, 3 this image could not be read. */
static int one(const vm_segmentor *s, vm_ctx *ctx, const seg_opts *o, const char *path, int sw, int sh) {
    char err[1024];
    vm_image im;
    struct timespec t0, t1;
    if (o->outdir && o->resume) { /* the .npy is written last (atomically): it marks a done image */
        char *n = out_name(o->outdir, path, "_label.npy");
        struct stat st;
        int done = n && stat(n, &st) == 0;
        free(n);
        if (done) return 0;
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (vm_cv_load(path, &im, err, sizeof err)) {
        if (o->json) {
            json_t *j = json_pack("{s:s,s:s}", "image", path, "error", err);
            char *txt = json_dumps(j, JSON_COMPACT);
            puts(txt);
            fflush(stdout);
            free(txt);
            json_decref(j);
        }
        fprintf(stderr, "vmamba: %s\n", err);
        return 3;
    }
    uint8_t *labels = malloc((size_t)im.w * im.h);
    vm_seg_trace t = {0};
    int rc = 1;
    if (!labels) { cli_fail("%s: out of memory", path); goto done; }
    if (vm_ctx_segment_image(ctx, s, &im, sw, sh, labels, NULL, NULL, &t)) { cli_fail("%s: %s", path, vm_ctx_error(ctx)); goto done; }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (o->outdir) {
        char *a = out_name(o->outdir, path, "_label.png"), *b = out_name(o->outdir, path, "_overlay.png"),
             *c = out_name(o->outdir, path, "_label.npy");
        int w = a && b && c ? write_outputs(s, a, b, c, &im, labels) : cli_fail("out of memory");
        free(a), free(b), free(c);
        if (w) goto done;
    } else if (write_outputs(s, o->out_png, o->overlay, o->raw, &im, labels)) {
        goto done;
    }
    report(s, o, path, &im, &t, labels, (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
    rc = 0;
done:
    free(labels);
    vm_image_free(&im);
    return rc;
}

int cmd_segment(int argc, char **argv) {
    seg_opts o = {.top = 5};
    const char *model = NULL, *list = NULL, *device = "cpu";
    int sw = 2048, sh = 512, threads = 0, nimg = 0, shard_i = 0, shard_n = 1;
    char **imgs = calloc((size_t)argc, sizeof *imgs);
    if (!imgs) return cli_fail("out of memory");
    int rc = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define VAL() do { if (!v) { cli_fail("%s needs a value", a); goto out; } i++; } while (0)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { help(stdout); rc = 0; goto out; }
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) { VAL(); model = v; }
        else if (!strcmp(a, "--scale")) { VAL(); if (parse_scale(v, &sw, &sh)) goto out; }
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) { VAL(); o.out_png = v; }
        else if (!strcmp(a, "--overlay")) { VAL(); o.overlay = v; }
        else if (!strcmp(a, "--raw")) { VAL(); o.raw = v; }
        else if (!strcmp(a, "--json")) o.json = 1;
        else if (!strcmp(a, "--top")) { VAL(); if (cli_int(a, v, 1, 256, &o.top)) goto out; }
        else if (!strcmp(a, "--threads")) { VAL(); if (cli_int(a, v, 1, 4096, &threads)) goto out; }
        else if (!strcmp(a, "--list")) { VAL(); list = v; }
        else if (!strcmp(a, "--output-dir")) { VAL(); o.outdir = v; }
        else if (!strcmp(a, "--resume")) o.resume = 1;
        else if (!strcmp(a, "--shard")) {
            VAL();
            char *sl;
            long si = strtol(v, &sl, 10), sn = *sl == '/' ? strtol(sl + 1, NULL, 10) : 0;
            if (*sl != '/' || sn < 1 || si < 0 || si >= sn) { cli_fail("--shard: '%s' must be I/N with 0 <= I < N", v); goto out; }
            shard_i = (int)si, shard_n = (int)sn;
        }
        else if (!strcmp(a, "--device")) {
            VAL();
            if (!cli_device_ok(v)) goto out;
            device = v;
        }
        else if (a[0] == '-' && a[1]) { cli_fail("segment: unknown option '%s' (see 'vmamba segment --help')", a); goto out; }
        else imgs[nimg++] = argv[i];
#undef VAL
    }
    if (!model) { cli_fail("segment: -m MODEL is required (see 'vmamba segment --help')"); goto out; }
    if (!nimg && !list) { cli_fail("segment: no images (give IMAGE... or --list FILE)"); goto out; }
    if (list && nimg) { cli_fail("segment: give IMAGE... or --list FILE, not both"); goto out; }
    if ((o.out_png || o.overlay || o.raw) && (nimg != 1 || list || o.outdir)) {
        cli_fail("segment: -o, --overlay and --raw take exactly one IMAGE; use --output-dir DIR for several");
        goto out;
    }
    if (list && !o.outdir) { cli_fail("segment: --list needs --output-dir DIR"); goto out; }
    if (o.resume && !o.outdir) { cli_fail("segment: --resume needs --output-dir DIR"); goto out; }
    if (shard_n > 1 && !list) { cli_fail("segment: --shard needs --list FILE"); goto out; }
    if (o.outdir) {
        struct stat st;
        if (stat(o.outdir, &st) != 0 && mkdir(o.outdir, 0755) != 0) { cli_fail("%s: cannot create the directory", o.outdir); goto out; }
        if (stat(o.outdir, &st) != 0 || !S_ISDIR(st.st_mode)) { cli_fail("%s: not a directory", o.outdir); goto out; }
    }
    cli_threads(threads);
    char err[1024];
    struct stat st;
    vm_segmentor *s = stat(model, &st) != 0 && !strcmp(model, "upernet-vmamba-tiny")
                          ? vm_segmentor_from_preset(model, 0, err, sizeof err)
                          : vm_segmentor_load(model, err, sizeof err);
    if (!s) { cli_fail("%s", err); goto out; }
    if (strcmp(device, "cpu") && vm_segmentor_set_device(s, device, err, sizeof err)) {
        cli_fail("--device %s: %s", device, err);
        vm_segmentor_free(s);
        goto out;
    }
    vm_ctx *ctx = vm_ctx_new(vm_segmentor_model(s), err, sizeof err);
    if (!ctx) { cli_fail("%s", err); vm_segmentor_free(s); goto out; }
    if (threads > 0) vm_ctx_set_threads(ctx, threads);
    int bad = 0, fatal = 0;
    if (list) {
        FILE *f = strcmp(list, "-") ? fopen(list, "r") : stdin;
        if (!f) { cli_fail("%s: cannot open", list); vm_ctx_free(ctx); vm_segmentor_free(s); goto out; }
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        long k = 0, idx = -1;
        int tty = isatty(2);
        while (!fatal && (n = getline(&line, &cap, f)) >= 0) {
            idx++; /* blank lines keep their index, as in classify */
            while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
            if (!n || idx % shard_n != shard_i) continue;
            int r = one(s, ctx, &o, line, sw, sh);
            if (r == 3) bad = 1;
            else if (r) fatal = 1;
            if (tty) fprintf(stderr, "\rsegment: %ld images", ++k);
        }
        if (tty) fputc('\n', stderr);
        free(line);
        if (f != stdin) fclose(f);
    } else {
        for (int i = 0; i < nimg && !fatal; i++) {
            int r = one(s, ctx, &o, imgs[i], sw, sh);
            if (r == 3) bad = 1;
            else if (r) fatal = 1;
        }
    }
    vm_ctx_free(ctx);
    vm_segmentor_free(s);
    rc = fatal ? 1 : bad ? 3 : 0;
out:
    free(imgs);
    return rc;
}
