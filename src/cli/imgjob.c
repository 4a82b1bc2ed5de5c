/* imgjob.c - see imgjob.h. */
#include "imgjob.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

int cli_img_check(cli_img_job *j, const char *model) {
    if (j->list && j->list0) return cli_fail("%s: give --list or --list0, not both", j->cmd), CLI_EXIT_USAGE;
    if (j->list0) j->list = j->list0;
    if (!model) return cli_fail("%s: -m MODEL is required (see 'vmamba %s --help')", j->cmd, j->cmd), CLI_EXIT_USAGE;
    if (!j->npos && !j->list)
        return cli_fail("%s: IMAGE... (or --list FILE) is required (see 'vmamba %s --help')", j->cmd, j->cmd), CLI_EXIT_USAGE;
    if (j->list && j->npos) return cli_fail("%s: give IMAGE... or --list FILE, not both", j->cmd), CLI_EXIT_USAGE;
    if (j->list && !j->outdir) return cli_fail("%s: --list needs --output-dir DIR", j->cmd), CLI_EXIT_USAGE;
    return 0;
}

void cli_img_stem(const char *path, char *out, size_t n) {
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    snprintf(out, n, "%s", b);
    char *dot = strrchr(out, '.');
    if (dot && dot != out) *dot = 0;
}

int cli_img_same_names(const char *cmd, const char **images, int n) {
    for (int i = 1; i < n; i++)
        for (int k = 0; k < i; k++) {
            char a[256], b[256];
            cli_img_stem(images[i], a, sizeof a);
            cli_img_stem(images[k], b, sizeof b);
            if (!strcmp(a, b))
                return cli_fail("%s: %s and %s have the same name '%s': their outputs would overwrite each other "
                                "(rename one, or run them separately)", cmd, images[k], images[i], a);
        }
    return 0;
}

int cli_img_outdir(const char *dir) {
    struct stat st;
    if (stat(dir, &st) != 0 && mkdir(dir, 0755) != 0 && errno != EEXIST)
        return cli_fail("%s: cannot create the directory: %s", dir, strerror(errno)), 1;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return cli_fail("%s: not a directory", dir), 1;
    return 0;
}

vm_ctx *cli_img_ctx(const vm_model *m, int threads) {
    char err[1024];
    vm_ctx *c = vm_ctx_new(m, err, sizeof err);
    if (!c) return cli_fail("%s", err), NULL;
    if (threads > 0) vm_ctx_set_threads(c, threads);
    return c;
}

int cli_img_progress(cli_img_job *j) {
    if (j->progress < 0) j->progress = isatty(2) && (j->list || (j->bar_images && j->npos > 1));
    return j->progress;
}

int cli_img_run(cli_img_job *j, cli_task *task) {
    int nul = j->list0 != NULL;
    if (j->list && cli_list_open(&j->L, j->list, nul)) return 1;
    cli_argv_src as = {j->images, j->npos, 0};
    cli_img_progress(j);
    long total = j->list ? (j->progress ? cli_list_count(j->list, nul) : -1) : j->npos;
    if (total > 0 && j->shard.n > 1) total = (total + j->shard.n - 1 - j->shard.i) / j->shard.n;
    if (total > 0 && j->done && j->done->n) total = total > (long)j->done->n ? total - (long)j->done->n : 0;
    struct cli_batch_stats bs = {0};
    cli_batch_job job = {.task = task, .batch = 1, .next = j->list ? cli_list_next : cli_argv_next,
                         .next_ctx = j->list ? (void *)&j->L : (void *)&as, .shard = j->shard, .done = j->done,
                         .total = total, .progress = j->progress, .stats = &bs};
    long ok, fail;
    double secs;
    if (cli_batch_run(&job, &ok, &fail, &secs)) return 1;
    if (j->list || j->progress)
        fprintf(stderr, "vmamba: %ld images%s%s, %ld failed, %.2f images/s (decoding %.2f s, %.2f s of it not hidden by decode-ahead)\n",
                ok, j->verb ? " " : "", j->verb ? j->verb : "", fail, secs > 0 ? ok / secs : 0.0, bs.prepare_s, bs.waited_s);
    return fail ? 3 : 0;
}

void cli_img_close(cli_img_job *j) { cli_list_close(&j->L); }
