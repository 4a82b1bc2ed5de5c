/* cmd_eval.c - `vmamba eval`: top-1 / top-5 accuracy over a labelled
 * folder, with the official preprocessing (or the model's sidecar). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "cli.h"
#include "options.h"

static const char usage[] =
    "Usage: vmamba eval -m MODEL --images DIR --labels CSV [options]\n"
    "\n"
    "Classify every image of CSV (header 'file,label'; file relative to DIR,\n"
    "label a class index) and print top-1, top-5, count and images/s.\n"
    "\n";

typedef struct {
    cli_cls cls; /* first: the task's prepare and run use it */
    char **files;
    int *labels;
    long n, pos;
    const char *dir;
    long top1, top5, failed;
    float *logits; /* n x classes when saving */
    int classes;
} eval_ctx;

static int next_item(void *vc, char **path, long *index) {
    eval_ctx *c = vc;
    if (c->pos >= c->n) return 0;
    size_t len = strlen(c->dir) + strlen(c->files[c->pos]) + 2;
    if (!(*path = malloc(len))) return cli_fail("out of memory"), -1;
    snprintf(*path, len, "%s/%s", c->dir, c->files[c->pos]);
    *index = c->pos++;
    return 1;
}

static int on_result(void *vc, const cli_item *it, const float *logits) {
    eval_ctx *c = vc;
    if (!logits) {
        c->failed++;
        fprintf(stderr, "\rvmamba: %s\n", it->err);
        return 0;
    }
    int y = c->labels[it->index], top[5], K = vm_topk(logits, c->classes, 5, top);
    for (int j = 0; j < K; j++)
        if (top[j] == y) {
            c->top1 += j == 0;
            c->top5++;
        }
    if (c->logits) memcpy(c->logits + (size_t)it->index * c->classes, logits, (size_t)c->classes * sizeof(float));
    return 0;
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
            size_t na = alloc ? alloc * 2 : 1024;
            char **nf = realloc(c->files, na * sizeof *c->files);
            if (nf) c->files = nf;
            int *nl = nf ? realloc(c->labels, na * sizeof *c->labels) : NULL;
            if (!nl) {
                cli_fail("%s: out of memory at line %ld", path, lineno);
                rc = -1;
                break;
            }
            c->labels = nl;
            alloc = na;
        }
        if (!(c->files[c->n] = strdup(line))) {
            cli_fail("%s: out of memory at line %ld", path, lineno);
            rc = -1;
            break;
        }
        c->labels[c->n++] = (int)lab;
    }
    free(line);
    fclose(f);
    if (!rc && c->n == 0) rc = (cli_fail("%s: no images listed", path), -1);
    return rc;
}

int cmd_eval(int argc, char **argv) {
    const char *model = NULL, *dir = NULL, *csv = NULL, *key = NULL, *save = NULL;
    int threads = 0, batch = 16, json = 0, progress = -1, rc = 1, npos = 0;
    cli_pp pp;
    cli_pp_init(&pp);
    eval_ctx c = {0};
    cli_dev dev = {0};
    cli_opt opts[] = {
        {CLI_OPT_STR, "--model", 'm', &model, "MODEL", ".pth checkpoint, .safetensors file (or a preset name)"},
        {CLI_OPT_STR, "--images", 0, &dir, "DIR", "the folder CSV's file names are relative to"},
        {CLI_OPT_STR, "--labels", 0, &csv, "CSV", "'file,label' lines (a 'file,...' header is skipped)"},
        {CLI_OPT_FLAG, "--json", 0, &json, NULL, "one JSON object: top1, top5 (fractions), n, failed, images_per_s"},
        {CLI_OPT_STR, "--save-logits", 0, &save, "F", "write the logits (n, classes) float32 .npy in CSV order"},
        {CLI_OPT_INT, "--batch", 0, &batch, "B", "images per forward pass (16)", .lo = 1, .hi = 1024},
        {CLI_OPT_INT, "--threads", 0, &threads, "N", "threads (default: OMP_NUM_THREADS or all cores)", .lo = 1, .hi = 4096},
        {CLI_OPT_STR, "--key", 0, &key, "K", "checkpoint key holding the weights"},
        {CLI_OPT_CONST, "--progress", 0, &progress, NULL, "force the progress bar (default: on a terminal)", .ival = 1},
        {CLI_OPT_CONST, "--quiet", 0, &progress, NULL, "no progress bar", .ival = 0},
        {CLI_OPT_END},
    };
    cli_opt ppo[7], devo[4];
    cli_pp_options(&pp, ppo);
    cli_dev_options(&dev, devo);
    cli_spec spec = {usage, {opts, devo, ppo}, NULL, NULL, &npos, 0, NULL};
    int pr = cli_parse(&spec, argc, argv);
    if (pr) { rc = pr < 0 ? 0 : pr; goto done; }
    if (!model || !dir || !csv) { cli_fail("eval: -m, --images and --labels are required (try 'vmamba eval --help')"); rc = 2; goto done; }
    cli_threads(threads);
    vm_info I;
    if (!(c.cls.m = cli_load_classifier(model, key, &dev, &pp, &I))) goto done;
    c.cls.pp = pp.pp;
    c.classes = I.num_classes;
    if (read_csv(&c, csv, I.num_classes)) goto done;
    c.dir = dir;
    if (save && !(c.logits = calloc((size_t)c.n * I.num_classes, sizeof(float)))) {
        cli_fail("out of memory for %ld x %d logits (--save-logits)", c.n, I.num_classes);
        goto done;
    }
    if (progress < 0) progress = isatty(2);
    cli_task task = {.in_floats = (size_t)3 * pp.pp.size * pp.pp.size, .out_floats = (size_t)I.num_classes,
                     .prepare = cli_cls_prepare, .run = cli_cls_run, .write = on_result, .ctx = &c};
    cli_batch_job job = {.task = &task, .batch = batch, .next = next_item, .next_ctx = &c, .shard = {0, 1},
                         .total = c.n, .progress = progress};
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
    vm_model_free(c.cls.m);
    return rc;
}
