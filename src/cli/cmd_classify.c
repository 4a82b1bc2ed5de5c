/* cmd_classify.c - `vmamba classify`: images in, top-k labels out; with
 * --list, a streaming batch job (JSON Lines, shards, resume, progress). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "cli.h"
#include "options.h"

static void help(FILE *f) {
    fprintf(f,
            "Usage: vmamba classify -m MODEL [options] IMAGE...\n"
            "       vmamba classify -m MODEL [options] --list FILE [--output OUT.jsonl]\n"
            "\n"
            "Print each image's top classes with softmax probabilities. ImageNet class\n"
            "names are built in for 1000-class models; MODEL.json may carry labels.\n"
            "\n"
            "  -m, --model MODEL   .pth checkpoint (or a preset name)\n"
            "  --labels FILE       class names, one per line (overrides the others)\n"
            "  --topk K            classes per image (5)\n"
            "  --json              JSON Lines on stdout, one object per image\n"
            "  --batch B           images per forward pass (8)\n"
            "  --threads N         threads (default: OMP_NUM_THREADS or all cores)\n"
            "  --key K             checkpoint key holding the weights\n"
            CLI_DEV_HELP
            "Batch jobs:\n"
            "  --list FILE         image paths, one per line ('-' = stdin)\n"
            "  --output FILE       write JSON Lines there (in input order) instead of stdout\n"
            "  --shard I/N         only items I, I+N, I+2N, ... (0 <= I < N)\n"
            "  --resume            skip items already in --output, append the rest\n"
            "  --progress / --quiet  force / silence the progress bar (default: on a terminal)\n"
            "Unreadable images give an error record and the job goes on; the exit status\n"
            "is then 3. Other errors exit 1.\n"
            "%s",
            cli_pp_help());
}

typedef struct {
    /* source */
    char **argv_items;
    int nargv, pos;
    FILE *list;
    long line;
    int shard_i, shard_n;
    unsigned char *done; /* resume bitmap by item index */
    long ndone_bits;
    /* sink */
    FILE *out;
    int json, topk;
    char **labels;
    int nlabels;
    int builtin;
} ctx_t;

static int is_done(const ctx_t *c, long idx) {
    return c->done && idx < c->ndone_bits && (c->done[idx >> 3] >> (idx & 7) & 1);
}

static int next_item(void *vc, char **path, long *index) {
    ctx_t *c = vc;
    for (;;) {
        const char *p = NULL;
        char *line = NULL;
        size_t cap = 0;
        long idx;
        if (c->list) {
            ssize_t n = getline(&line, &cap, c->list);
            if (n < 0) { free(line); return 0; }
            while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
            idx = c->line++;
            if (n == 0) { free(line); continue; } /* blank lines keep their index */
            p = line;
        } else {
            if (c->pos >= c->nargv) return 0;
            idx = c->pos;
            p = c->argv_items[c->pos++];
        }
        if ((c->shard_n > 1 && idx % c->shard_n != c->shard_i) || is_done(c, idx)) {
            free(line);
            continue;
        }
        *path = line ? line : strdup(p);
        *index = idx;
        return 1;
    }
}

static void json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

static const char *label_of(const ctx_t *c, int k) {
    if (c->labels && k < c->nlabels) return c->labels[k];
    if (c->builtin) return vm_imagenet_label(k);
    return NULL;
}

static void on_result(void *vc, const cli_item *it, const float *logits, int classes) {
    ctx_t *c = vc;
    FILE *f = c->out;
    if (!logits) {
        if (c->json) {
            fprintf(f, "{\"index\": %ld, \"file\": ", it->index);
            json_str(f, it->path);
            fprintf(f, ", \"error\": ");
            json_str(f, it->err);
            fprintf(f, "}\n");
        } else {
            fprintf(f, "%s: error: %s\n", it->path, it->err);
        }
        fprintf(stderr, "\rvmamba: %s\n", it->err);
        return;
    }
    /* softmax, then the top k by selection */
    float mx = logits[0];
    for (int k = 1; k < classes; k++) mx = logits[k] > mx ? logits[k] : mx;
    double sum = 0;
    for (int k = 0; k < classes; k++) sum += exp((double)logits[k] - mx);
    int K = c->topk < classes ? c->topk : classes, best[64];
    for (int j = 0; j < K; j++) {
        int b = -1;
        for (int k = 0; k < classes; k++) {
            int used = 0;
            for (int q = 0; q < j; q++) used |= best[q] == k;
            if (!used && (b < 0 || logits[k] > logits[b])) b = k;
        }
        best[j] = b;
    }
    if (c->json) {
        fprintf(f, "{\"index\": %ld, \"file\": ", it->index);
        json_str(f, it->path);
        fprintf(f, ", \"top\": [");
        for (int j = 0; j < K; j++) {
            const char *l = label_of(c, best[j]);
            fprintf(f, "%s{\"class\": %d, \"prob\": %.6f", j ? ", " : "", best[j], exp((double)logits[best[j]] - mx) / sum);
            if (l) { fprintf(f, ", \"label\": "); json_str(f, l); }
            fprintf(f, "}");
        }
        fprintf(f, "]}\n");
    } else {
        fprintf(f, "%s:\n", it->path);
        for (int j = 0; j < K; j++) {
            const char *l = label_of(c, best[j]);
            fprintf(f, "  %6.2f%%  %-4d %s\n", 100.0 * exp((double)logits[best[j]] - mx) / sum, best[j], l ? l : "");
        }
    }
    fflush(f);
}

/* Mark the "index" of every complete line already in the output. */
static int load_resume(ctx_t *c, const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return errno == ENOENT ? 0 : (cli_fail("%s: %s", path, strerror(errno)), -1);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] != '\n') break; /* a torn last line is redone */
        const char *p = strstr(line, "\"index\": ");
        if (!p) continue;
        long idx = strtol(p + 9, NULL, 10);
        if (idx < 0 || idx > (1L << 40)) continue;
        if (idx >= c->ndone_bits) {
            long nb = c->ndone_bits ? c->ndone_bits : 1024;
            while (nb <= idx) nb *= 2;
            c->done = realloc(c->done, (size_t)nb / 8);
            memset(c->done + c->ndone_bits / 8, 0, (size_t)(nb - c->ndone_bits) / 8);
            c->ndone_bits = nb;
        }
        c->done[idx >> 3] |= (unsigned char)(1u << (idx & 7));
    }
    free(line);
    fclose(f);
    return 0;
}

static long count_lines(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long n = 0;
    int ch, last = '\n';
    while ((ch = getc(f)) != EOF) {
        if (ch == '\n') n++;
        last = ch;
    }
    if (last != '\n') n++;
    fclose(f);
    return n;
}

int cmd_classify(int argc, char **argv) {
    const char *model = NULL, *labels_path = NULL, *list = NULL, *output = NULL, *key = NULL;
    int threads = 0, batch = 8, resume = 0, progress = -1;
    ctx_t c = {.topk = 5, .shard_n = 1};
    cli_dev dev = {0};
    cli_pp pp;
    cli_pp_init(&pp);
    char **items = calloc((size_t)argc, sizeof *items);
    int nitems = 0, rc = 1;
    vm_model *m = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int r = cli_pp_parse(&pp, argc, argv, &i);
        if (!r) r = cli_dev_parse(&dev, argc, argv, &i);
        if (r < 0) goto done;
        if (r > 0) continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { help(stdout); rc = 0; goto done; }
        else if (!strcmp(a, "--json")) c.json = 1;
        else if (!strcmp(a, "--resume")) resume = 1;
        else if (!strcmp(a, "--progress")) progress = 1;
        else if (!strcmp(a, "--quiet")) progress = 0;
        else if (!strcmp(a, "-m") || !strcmp(a, "--model") || !strcmp(a, "--labels") || !strcmp(a, "--topk") ||
                 !strcmp(a, "--batch") || !strcmp(a, "--threads") || !strcmp(a, "--list") || !strcmp(a, "--output") ||
                 !strcmp(a, "--shard") || !strcmp(a, "--key")) {
            if (!v) { cli_fail("classify: %s needs a value", a); goto done; }
            i++;
            if (!strcmp(a, "-m") || !strcmp(a, "--model")) model = v;
            else if (!strcmp(a, "--labels")) labels_path = v;
            else if (!strcmp(a, "--list")) list = v;
            else if (!strcmp(a, "--output")) output = v;
            else if (!strcmp(a, "--key")) key = v;
            else if (!strcmp(a, "--topk")) { if (cli_int(a, v, 1, 64, &c.topk)) goto done; }
            else if (!strcmp(a, "--batch")) { if (cli_int(a, v, 1, 4096, &batch)) goto done; }
            else if (!strcmp(a, "--threads")) { if (cli_int(a, v, 1, 4096, &threads)) goto done; }
            else {
                char *slash;
                long si = strtol(v, &slash, 10), sn = *slash == '/' ? strtol(slash + 1, NULL, 10) : 0;
                if (*slash != '/' || sn < 1 || si < 0 || si >= sn) { cli_fail("--shard: '%s' must be I/N with 0 <= I < N", v); goto done; }
                c.shard_i = (int)si;
                c.shard_n = (int)sn;
            }
        } else if (a[0] == '-' && a[1]) { cli_fail("classify: unknown option '%s' (try --help)", a); goto done; }
        else items[nitems++] = argv[i];
    }
    if (!model) { help(stderr); cli_fail("classify: -m MODEL is required"); goto done; }
    if (!list == !nitems) { cli_fail("classify: give IMAGE arguments or --list FILE (one of the two)"); goto done; }
    if (resume && !output) { cli_fail("classify: --resume needs --output"); goto done; }
    cli_threads(threads);
    vm_info I;
    if (!(m = cli_load_classifier(model, key, &dev, &pp, &I))) goto done;
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
    if (list) {
        c.list = strcmp(list, "-") ? fopen(list, "r") : stdin;
        if (!c.list) { cli_fail("%s: %s", list, strerror(errno)); goto done; }
    }
    c.argv_items = items;
    c.nargv = nitems;
    if (output) {
        if (resume && load_resume(&c, output)) goto done;
        c.out = fopen(output, resume ? "a" : "w");
        if (!c.out) { cli_fail("%s: cannot open for writing: %s", output, strerror(errno)); goto done; }
        c.json = 1;
    } else {
        c.out = stdout;
    }
    if (progress < 0) progress = isatty(2) && (list || nitems > batch);
    long total = list ? (strcmp(list, "-") && progress ? count_lines(list) : -1) : nitems;
    if (total > 0 && c.shard_n > 1) total = (total + c.shard_n - 1 - c.shard_i) / c.shard_n;
    cli_batch_job job = {.model = m, .pp = &pp.pp, .batch = batch, .next = next_item, .next_ctx = &c,
                         .result = on_result, .result_ctx = &c, .total = total, .progress = progress};
    long ok, fail;
    double secs;
    if (cli_batch_run(&job, &ok, &fail, &secs)) goto done;
    if (progress || list)
        fprintf(stderr, "vmamba: %ld images classified, %ld failed, %.1f images/s\n", ok, fail, secs > 0 ? ok / secs : 0.0);
    rc = fail ? 3 : 0;
done:
    if (c.out && c.out != stdout && fclose(c.out) != 0) { cli_fail("%s: write failed", output); rc = 1; }
    if (c.list && c.list != stdin) fclose(c.list);
    free(c.done);
    cli_free_labels(c.labels, c.nlabels);
    cli_pp_free(&pp);
    vm_model_free(m);
    free(items);
    return rc;
}
