/* cmd_eval.c - `vmamba eval`: top-1 / top-5 accuracy over a labelled
 * folder, with the official preprocessing (or the model's sidecar). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "cli.h"
#include "loaders/npy.h"
#include "options.h"

static void help(FILE *f) {
    fprintf(f,
            "Usage: vmamba eval -m MODEL --images DIR --labels CSV [options]\n"
            "\n"
            "Classify every image of CSV (header 'file,label'; file relative to DIR,\n"
            "label a class index) and print top-1, top-5, count and images/s.\n"
            "\n"
            "  --json              one JSON object: top1, top5 (fractions), n, failed, images_per_s\n"
            "  --save-logits F     write the logits (n, classes) float32 .npy in CSV order\n"
            "  --batch B           images per forward pass (16)\n"
            "  --threads N         threads (default: OMP_NUM_THREADS or all cores)\n"
            "  --key K             checkpoint key holding the weights\n"
            "  --progress / --quiet  force / silence the progress bar\n"
            CLI_DEV_HELP
            "%s",
            cli_pp_help());
}

typedef struct {
    char **files;
    int *labels;
    long n, pos;
    const char *dir;
    long top1, top5, failed;
    float *logits; /* n x classes when saving */
} eval_ctx;

static int next_item(void *vc, char **path, long *index) {
    eval_ctx *c = vc;
    if (c->pos >= c->n) return 0;
    size_t len = strlen(c->dir) + strlen(c->files[c->pos]) + 2;
    *path = malloc(len);
    snprintf(*path, len, "%s/%s", c->dir, c->files[c->pos]);
    *index = c->pos++;
    return 1;
}

static void on_result(void *vc, const cli_item *it, const float *logits, int classes) {
    eval_ctx *c = vc;
    if (!logits) {
        c->failed++;
        fprintf(stderr, "\rvmamba: %s\n", it->err);
        return;
    }
    int y = c->labels[it->index], rank = 0;
    for (int k = 0; k < classes; k++) rank += logits[k] > logits[y] || (logits[k] == logits[y] && k < y);
    c->top1 += rank == 0;
    c->top5 += rank < 5;
    if (c->logits) memcpy(c->logits + (size_t)it->index * classes, logits, (size_t)classes * sizeof(float));
}

static int read_csv(eval_ctx *c, const char *path, int classes) {
    FILE *f = fopen(path, "r");
    if (!f) return cli_fail("%s: %s", path, strerror(errno)), -1;
    char *line = NULL;
    size_t cap = 0, alloc = 0;
    ssize_t len;
    long lineno = 0;
    int rc = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (len == 0 || (lineno == 1 && !strncmp(line, "file,", 5))) continue;
        char *comma = strrchr(line, ',');
        char *end;
        long lab = comma ? strtol(comma + 1, &end, 10) : -1;
        if (!comma || comma == line || *end || comma[1] == 0 || lab < 0 || lab >= classes) {
            cli_fail("%s:%ld: expected 'file,label' with a label in [0, %d)", path, lineno, classes);
            rc = -1;
            break;
        }
        *comma = 0;
        if ((size_t)c->n == alloc) {
            alloc = alloc ? alloc * 2 : 1024;
            c->files = realloc(c->files, alloc * sizeof *c->files);
            c->labels = realloc(c->labels, alloc * sizeof *c->labels);
        }
        c->files[c->n] = strdup(line);
        c->labels[c->n++] = (int)lab;
    }
    free(line);
    fclose(f);
    if (!rc && c->n == 0) rc = (cli_fail("%s: no images listed", path), -1);
    return rc;
}

int cmd_eval(int argc, char **argv) {
    const char *model = NULL, *dir = NULL, *csv = NULL, *key = NULL, *save = NULL;
    int threads = 0, batch = 16, json = 0, progress = -1, rc = 1;
    cli_pp pp;
    cli_pp_init(&pp);
    eval_ctx c = {0};
    cli_dev dev = {0};
    vm_model *m = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int r = cli_pp_parse(&pp, argc, argv, &i);
        if (!r) r = cli_dev_parse(&dev, argc, argv, &i);
        if (r < 0) goto done;
        if (r > 0) continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { help(stdout); rc = 0; goto done; }
        else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--progress")) progress = 1;
        else if (!strcmp(a, "--quiet")) progress = 0;
        else if (!strcmp(a, "-m") || !strcmp(a, "--model") || !strcmp(a, "--images") || !strcmp(a, "--labels") ||
                 !strcmp(a, "--batch") || !strcmp(a, "--threads") || !strcmp(a, "--key") || !strcmp(a, "--save-logits")) {
            if (!v) { cli_fail("eval: %s needs a value", a); goto done; }
            i++;
            if (!strcmp(a, "-m") || !strcmp(a, "--model")) model = v;
            else if (!strcmp(a, "--images")) dir = v;
            else if (!strcmp(a, "--labels")) csv = v;
            else if (!strcmp(a, "--key")) key = v;
            else if (!strcmp(a, "--save-logits")) save = v;
            else if (!strcmp(a, "--batch")) { if (cli_int(a, v, 1, 4096, &batch)) goto done; }
            else if (cli_int(a, v, 1, 4096, &threads)) goto done;
        } else { cli_fail("eval: unknown argument '%s' (try --help)", a); goto done; }
    }
    if (!model || !dir || !csv) { help(stderr); cli_fail("eval: -m, --images and --labels are required"); goto done; }
    cli_threads(threads);
    vm_info I;
    if (!(m = cli_load_classifier(model, key, &dev, &pp, &I))) goto done;
    if (read_csv(&c, csv, I.num_classes)) goto done;
    c.dir = dir;
    if (save) c.logits = calloc((size_t)c.n * I.num_classes, sizeof(float));
    if (progress < 0) progress = isatty(2);
    cli_batch_job job = {.model = m, .pp = &pp.pp, .batch = batch, .next = next_item, .next_ctx = &c,
                         .result = on_result, .result_ctx = &c, .total = c.n, .progress = progress};
    long ok, fail;
    double secs;
    if (cli_batch_run(&job, &ok, &fail, &secs)) goto done;
    double ips = secs > 0 ? ok / secs : 0, n = (double)c.n;
    if (json)
        printf("{\"top1\": %.6f, \"top5\": %.6f, \"n\": %ld, \"failed\": %ld, \"images_per_s\": %.2f}\n", c.top1 / n,
               c.top5 / n, c.n, c.failed, ips);
    else
        printf("top-1 %.4f (%ld/%ld)  top-5 %.4f  n %ld  failed %ld  %.1f images/s\n", c.top1 / n, c.top1, c.n,
               c.top5 / n, c.n, c.failed, ips);
    if (save) {
        char err[512];
        int64_t shape[2] = {c.n, I.num_classes};
        if (vm_npy_write(save, c.logits, 2, shape, err, sizeof err)) { cli_fail("%s", err); goto done; }
    }
    rc = c.failed ? 3 : 0;
done:
    for (long i = 0; i < c.n; i++) free(c.files[i]);
    free(c.files);
    free(c.labels);
    free(c.logits);
    cli_pp_free(&pp);
    vm_model_free(m);
    return rc;
}
