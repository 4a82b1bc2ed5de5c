/* batch.h - the image pipeline of classify and eval: read items, decode
 * and preprocess the next batch on a helper thread while the model runs
 * the current one, hand results back in input order, show progress. */
#ifndef VM_CLI_BATCH_H
#define VM_CLI_BATCH_H

#include "vmamba.h"

typedef struct {
    char *path;
    long index;       /* position in the input list */
    int ok;
    char err[512];
} cli_item;

/* Next item: set *path (malloc'd) and *index, return 1; 0 at the end. */
typedef int (*cli_next_fn)(void *ctx, char **path, long *index);
/* One result, in input order: logits (classes floats) or NULL on error. */
typedef void (*cli_result_fn)(void *ctx, const cli_item *it, const float *logits, int classes);

typedef struct {
    vm_model *model;
    const vm_preprocess_opts *pp;
    int batch;
    cli_next_fn next;
    void *next_ctx;
    cli_result_fn result;
    void *result_ctx;
    long total;       /* items expected, for the ETA; <= 0 unknown */
    int progress;     /* draw a progress bar on stderr */
} cli_batch_job;

/* Returns 0, or -1 on a model error (printed). Counts successes/failures. */
int cli_batch_run(const cli_batch_job *job, long *n_ok, long *n_fail, double *seconds);

#endif
