/* imgjob.h - what `segment` and `detect` share around their batch task
 * (batch.h): the checks of IMAGE... / --list / --list0 / --output-dir,
 * output names, the output directory, the model's context, and the run
 * itself (inputs, shard, progress bar, summary line). Each command keeps
 * its own model loading (segmentor or detector) and outputs. */
#ifndef VM_CLI_IMGJOB_H
#define VM_CLI_IMGJOB_H

#include <stddef.h>

#include "batch.h"

typedef struct {
    const char *cmd;        /* "segment", "detect": starts the messages */
    const char **images;    /* IMAGE arguments */
    int npos;
    const char *list;       /* --list FILE, or --list0's after cli_img_check */
    const char *list0;      /* --list0 FILE */
    const char *outdir;     /* --output-dir DIR */
    cli_shard shard;
    int progress;           /* --progress 1, --quiet 0, -1 until cli_img_run decides */
    int bar_images;         /* also a progress bar for several IMAGE arguments */
    const cli_done *done;   /* records already written (--resume of a JSON Lines output), or NULL */
    const char *verb;       /* the summary line's "N images <verb>", or NULL */
    cli_list L;
} cli_img_job;

/* The usage checks both commands make: --list or --list0 (then j->list is
 * the file either way), -m MODEL, IMAGE... or a list but not both, a list
 * needs --output-dir. 0, or CLI_EXIT_USAGE after printing. */
int cli_img_check(cli_img_job *j, const char *model);

/* The name without directory and extension. */
void cli_img_stem(const char *path, char *out, size_t n);

/* 0 when no two of images[0..n) have the same stem; else -1 after
 * printing that their per-image outputs (named after it) would overwrite
 * each other. */
int cli_img_same_names(const char *cmd, const char **images, int n);

/* DIR is a directory (made if missing): 0, or 1 after printing. */
int cli_img_outdir(const char *dir);

/* A context on m with --threads (0: the default), or NULL after printing. */
vm_ctx *cli_img_ctx(const vm_model *m, int threads);

/* Whether to draw the progress bar: --progress / --quiet, else on a
 * terminal with a list (or several IMAGE arguments with bar_images). Sets
 * j->progress; for the task's messages (a bar's lines start with \r). */
int cli_img_progress(cli_img_job *j);

/* task over the list (opened here) or the IMAGE arguments: decode-ahead,
 * shard, the progress bar (cli_img_progress), then "vmamba: N images[ verb], M failed, ..." with a
 * list or a bar. 0 when every image went through, 3 when some failed
 * (error records), 1 when the job stopped (printed). */
int cli_img_run(cli_img_job *j, cli_task *task);

void cli_img_close(cli_img_job *j);

#endif
