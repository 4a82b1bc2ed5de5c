/* cmd_classify.c - `vmamba classify`: images in, top-k labels out; with
 * --list, a streaming batch job (JSON Lines, shards, resume, progress). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "cli.h"
#include "options.h"

static const char usage[] =
    "Usage: vmamba classify -m MODEL [options] IMAGE...\n"
    "       vmamba classify -m MODEL [options] --list FILE [--output OUT.jsonl]\n"
    "\n"
    "Print each image's top classes with softmax probabilities. ImageNet class\n"
    "names are built in for 1000-class models; MODEL.json may carry labels.\n"
    "\n";
static const char footer[] =
    "Unreadable images (and FIFOs, devices: only regular files are read) give an\n"
    "error record and the job goes on; the exit status is then 3. Usage errors\n"
    "exit 2, other errors 1. File names are JSON strings: bytes that are not UTF-8\n"
    "become U+FFFD and the record adds \"file_hex\", the name's bytes in hex.\n";

typedef struct {
    cli_cls cls; /* first: the task's prepare and run use it */
    cli_out out;
    int json, topk;
    char **labels;
    int nlabels;
    int builtin;
    int classes;
    double *probs; /* classes */
} ctx_t;

static const char *label_of(const ctx_t *c, int k) {
    if (c->labels && k < c->nlabels) return c->labels[k];
    if (c->builtin) return vm_imagenet_label(k);
    return NULL;
}

static int write_result(void *vc, const cli_item *it, const float *logits) {
    ctx_t *c = vc;
    FILE *f = c->out.f;
    if (!logits) {
        if (c->json) {
            fprintf(f, "{\"index\": %ld, ", it->index);
            cli_json_path(f, "file", it->path);
            fprintf(f, ", \"error\": ");
            cli_json_str(f, it->err);
            fprintf(f, "}\n");
        } else {
            fprintf(f, "%s: error: %s\n", it->path, it->err);
        }
        fprintf(stderr, "\rvmamba: %s\n", it->err);
        return cli_out_flush(&c->out);
    }
    int best[64];
    int K = vm_topk(logits, c->classes, c->topk, best);
    vm_softmax(logits, c->classes, c->probs);
    if (c->json) {
        fprintf(f, "{\"index\": %ld, ", it->index);
        cli_json_path(f, "file", it->path);
        fprintf(f, ", \"top\": [");
        for (int j = 0; j < K; j++) {
            const char *l = label_of(c, best[j]);
            fprintf(f, "%s{\"class\": %d, \"prob\": %.6f", j ? ", " : "", best[j], c->probs[best[j]]);
            if (l) { fprintf(f, ", \"label\": "); cli_json_str(f, l); }
            fprintf(f, "}");
        }
        fprintf(f, "]}\n");
    } else {
        fprintf(f, "%s:\n", it->path);
        for (int j = 0; j < K; j++) {
            const char *l = label_of(c, best[j]);
            fprintf(f, "  %6.2f%%  %-4d %s\n", 100.0 * c->probs[best[j]], best[j], l ? l : "");
        }
    }
    return cli_out_flush(&c->out);
}

int cmd_classify(int argc, char **argv) {
    const char *model = NULL, *labels_path = NULL, *list = NULL, *list0 = NULL, *output = NULL, *key = NULL;
    int threads = 0, batch = 8, resume = 0, progress = -1, npos = 0, rc = 1;
    ctx_t c = {.topk = 5};
    cli_shard shard = {0, 1};
    cli_dev dev = {0};
    cli_pp pp;
    cli_pp_init(&pp);
    const char **items = calloc((size_t)argc + 1, sizeof *items);
    cli_list L = {0};
    if (!items) return cli_fail("out of memory");
    cli_opt opts[] = {
        {CLI_OPT_STR, "--model", 'm', &model, "MODEL", ".pth checkpoint, .safetensors file (or a preset name)"},
        {CLI_OPT_STR, "--labels", 0, &labels_path, "FILE", "class names, one per line (overrides the others)"},
        {CLI_OPT_INT, "--topk", 0, &c.topk, "K", "classes per image (5)", .lo = 1, .hi = 64},
        {CLI_OPT_FLAG, "--json", 0, &c.json, NULL, "JSON Lines on stdout, one object per image"},
        {CLI_OPT_INT, "--batch", 0, &batch, "B", "images per forward pass (8)", .lo = 1, .hi = 1024},
        {CLI_OPT_INT, "--threads", 0, &threads, "N", "threads (default: OMP_NUM_THREADS or all cores)", .lo = 1, .hi = 4096},
        {CLI_OPT_STR, "--key", 0, &key, "K", "checkpoint key holding the weights"},
        {CLI_OPT_SECTION, .help = "Batch jobs:"},
        {CLI_OPT_STR, "--list", 0, &list, "FILE", "image paths, one per line ('-' = stdin)"},
        {CLI_OPT_STR, "--list0", 0, &list0, "FILE", "image paths separated by NUL bytes (find -print0),\nfor names holding newlines"},
        {CLI_OPT_STR, "--output", 0, &output, "FILE", "write JSON Lines there (in input order) instead of stdout"},
        {CLI_OPT_FN, "--shard", 0, &shard, "I/N", "only items I, I+N, I+2N, ... (0 <= I < N <= 1000000)", .fn = cli_opt_shard},
        {CLI_OPT_FLAG, "--resume", 0, &resume, NULL, "skip items already in --output, append the rest\n(a torn last line from a killed job is cut and redone)"},
        {CLI_OPT_CONST, "--progress", 0, &progress, NULL, "force the progress bar (default: on a terminal)", .ival = 1},
        {CLI_OPT_CONST, "--quiet", 0, &progress, NULL, "no progress bar", .ival = 0},
        {CLI_OPT_END},
    };
    cli_opt ppo[7], devo[4];
    cli_pp_options(&pp, ppo);
    cli_dev_options(&dev, devo);
    cli_spec spec = {usage, {opts, devo, ppo}, footer, items, &npos, -1, "IMAGE"};
    int pr = cli_parse(&spec, argc, argv);
    if (pr) { rc = pr < 0 ? 0 : pr; goto done; }
    if (!model) { cli_fail("classify: -m MODEL is required (try 'vmamba classify --help')"); rc = 2; goto done; }
    if (list && list0) { cli_fail("classify: give --list or --list0, not both"); rc = 2; goto done; }
    if (list0) list = list0;
    if (!list == !npos) { cli_fail("classify: give IMAGE arguments or --list FILE (one of the two)"); rc = 2; goto done; }
    if (resume && !output) { cli_fail("classify: --resume needs --output"); rc = 2; goto done; }
    cli_threads(threads);
    vm_info I;
    if (!(c.cls.m = cli_load_classifier(model, key, &dev, &pp, &I))) goto done;
    if (labels_path) {
        if (!(c.labels = cli_read_labels(labels_path, &c.nlabels))) goto done;
        if (c.nlabels != I.num_classes)
            fprintf(stderr, "vmamba: warning: %s has %d labels, the model has %d classes\n", labels_path, c.nlabels, I.num_classes);
    } else if (pp.labels) {
        c.labels = pp.labels;
        c.nlabels = pp.nlabels;
        pp.labels = NULL;
        pp.nlabels = 0;
    }
    c.builtin = I.num_classes == 1000;
    c.classes = I.num_classes;
    c.cls.pp = pp.pp;
    if (!(c.probs = malloc((size_t)c.classes * sizeof *c.probs))) { cli_fail("out of memory"); goto done; }
    if (output) {
        if (cli_out_open(&c.out, output, resume, list)) goto done;
        c.json = 1;
    } else {
        c.out.f = stdout;
    }
    if (list && cli_list_open(&L, list, list0 != NULL)) goto done;
    cli_argv_src as = {items, npos, 0};
    if (progress < 0) progress = isatty(2) && (list || npos > batch);
    long total = list ? (progress ? cli_list_count(list, list0 != NULL) : -1) : npos;
    if (total > 0 && shard.n > 1) total = (total + shard.n - 1 - shard.i) / shard.n;
    if (total > 0 && c.out.done.n) total = total > (long)c.out.done.n ? total - (long)c.out.done.n : 0;
    cli_task task = {.in_floats = (size_t)3 * pp.pp.size * pp.pp.size, .out_floats = (size_t)I.num_classes,
                     .prepare = cli_cls_prepare, .run = cli_cls_run, .write = write_result, .ctx = &c};
    cli_batch_job job = {.task = &task, .batch = batch, .next = list ? cli_list_next : cli_argv_next,
                         .next_ctx = list ? (void *)&L : (void *)&as, .shard = shard, .done = resume ? &c.out.done : NULL,
                         .total = total, .progress = progress};
    long ok, fail;
    double secs;
    if (cli_batch_run(&job, &ok, &fail, &secs)) goto done;
    if (progress || list)
        fprintf(stderr, "vmamba: %ld images classified, %ld failed, %.1f images/s\n", ok, fail, secs > 0 ? ok / secs : 0.0);
    rc = fail ? 3 : 0;
done:
    if (cli_out_close(&c.out)) rc = 1;
    cli_list_close(&L);
    cli_free_labels(c.labels, c.nlabels);
    cli_pp_free(&pp);
    free(c.probs);
    vm_model_free(c.cls.m);
    free(items);
    return rc;
}
