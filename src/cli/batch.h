/* batch.h - the batch-job machinery of classify, eval and calibrate, and of
 * any task that maps files to results (segmentation, detection): read items,
 * decode and preprocess the next batch on a helper thread while the model
 * runs the current one, hand results back in input order, take every N-th
 * item (--shard), skip items already done (--resume), show progress.
 *
 * A task supplies three functions: prepare (decode one item into its input
 * tensor, whose size may vary per image up to a bound), run (the model on
 * consecutive items of one input size) and write (one result, in input
 * order). Memory is two batches, however long the input list. */
#ifndef VM_CLI_BATCH_H
#define VM_CLI_BATCH_H

#include <stdio.h>

#include "vmamba.h"
#include "options.h"

typedef struct {
    char *path;
    long index;        /* position in the input list */
    int orig_w, orig_h; /* the image as decoded (0 when the task does not say) */
    int in_w, in_h;    /* the input tensor prepare made: 3 x in_h x in_w floats */
    int ok;
    char err[512];
    void *data;        /* a payload task's prepared item (see cli_task.in_floats) */
} cli_item;

/* Payload tasks (in_floats = 0: segmentation, detection) prepare items of
 * any size: prepare gets in = NULL and leaves what it made (a decoded
 * image) in it->data; run is called once per good item with n = 1,
 * in = NULL, H = W = 0, out = NULL and keeps its result in *it->data;
 * write gets out = NULL and reads it->ok and it->data; release frees
 * it->data after write (also for items a stopped job drops). The
 * decode-ahead queue is two batches, so batch = 1 keeps at most one image
 * decoded ahead of the one running. */
typedef struct {
    size_t in_floats;  /* per item, an upper bound of 3 * in_h * in_w; 0: a payload task */
    size_t out_floats; /* per item, the stride of run's output */
    /* Decode and preprocess it->path into in (in_floats floats); set in_w,
     * in_h (and orig_w, orig_h). 0, or -1 with it->err set (an error record;
     * the job goes on). Runs on the decode thread: touch only read-only state. */
    int (*prepare)(void *ctx, cli_item *it, float *in);
    /* The model on n items of one input size: in holds n x 3 x H x W floats,
     * out receives n results at a stride of out_floats. 0, or -1 (printed):
     * the job stops. */
    int (*run)(void *ctx, const cli_item *items, int n, const float *in, int H, int W, float *out);
    /* One result in input order; out is NULL for a failed item. 0, or -1
     * (printed, e.g. a write error): the job stops. */
    int (*write)(void *ctx, const cli_item *it, const float *out);
    void *ctx;
    /* Optional: 1 when the item is already done (a file-based --resume);
     * it is then dropped before prepare, with no record. Decode thread. */
    int (*skip)(void *ctx, const cli_item *it);
    /* Payload tasks: free it->data (NULL-safe). */
    void (*release)(void *ctx, cli_item *it);
} cli_task;

/* Next item of the input: set *path (malloc'd) and *index, return 1; 0 at
 * the end; -1 on a read error (printed). */
typedef int (*cli_next_fn)(void *ctx, char **path, long *index);

/* Indices already done (--resume), sorted. */
typedef struct {
    long *idx;
    size_t n;
} cli_done;

typedef struct {
    const cli_task *task;
    int batch;
    cli_next_fn next;
    void *next_ctx;
    cli_shard shard;      /* n <= 1: every item */
    const cli_done *done; /* skip these, or NULL */
    long total;           /* items expected, for the ETA; <= 0 unknown */
    int progress;         /* draw a progress bar on stderr */
    /* Optional: where the decode time went. prepare_s is the time spent
     * reading and preparing items (on the helper thread, or inline when it
     * could not start); waited_s the part of it the main thread waited for
     * (joining the helper, or preparing inline). prepare_s - waited_s is
     * what decode-ahead hid behind the model. */
    struct cli_batch_stats { double prepare_s, waited_s; } *stats;
} cli_batch_job;

/* Returns 0, or -1 on an error that stops the job (printed). Counts
 * successes and failed items. */
int cli_batch_run(const cli_batch_job *job, long *n_ok, long *n_fail, double *seconds);

/* ---- the image classifier as a task -------------------------------------
 * prepare and run for a task whose ctx starts with a cli_cls (classify,
 * eval, calibrate): the official preprocessing at pp.size, vm_forward. */
typedef struct {
    vm_model *m;
    vm_preprocess_opts pp;
} cli_cls;
int cli_cls_prepare(void *ctx, cli_item *it, float *in);
int cli_cls_run(void *ctx, const cli_item *items, int n, const float *in, int H, int W, float *out);

/* ---- inputs: IMAGE arguments ------------------------------------------ */
typedef struct {
    const char **items;
    int n, pos;
} cli_argv_src;
int cli_argv_next(void *src, char **path, long *index); /* a cli_next_fn */

/* ---- inputs: a list file of paths --------------------------------------
 * One path per line ('\n', a trailing '\r' dropped), or NUL-separated
 * (--list0, as find -print0 writes, for names holding newlines). Empty
 * entries are skipped but keep their index. "-" is stdin. */
typedef struct {
    FILE *f;
    int nul;
    long pos;
    const char *name;
} cli_list;
int cli_list_open(cli_list *l, const char *path, int nul);
int cli_list_next(void *l, char **path, long *index); /* a cli_next_fn */
void cli_list_close(cli_list *l);
/* Entries of a list file (-1 if unknown: stdin, unreadable). */
long cli_list_count(const char *path, int nul);

/* ---- outputs: JSON Lines with --resume ---------------------------------
 * Refuses an output that is the list file itself (same inode). With
 * resume, reads the indices of the complete records already there, cuts
 * a torn last line (a killed job), and appends. */
typedef struct {
    FILE *f;
    const char *path;
    cli_done done;
} cli_out;
int cli_out_open(cli_out *o, const char *path, int resume, const char *list_path);
/* Flush a finished record; -1 (printed) on a write error. */
int cli_out_flush(cli_out *o);
int cli_out_close(cli_out *o); /* -1 (printed) on a write error */

/* Parse the "index" of every complete record of a JSON Lines buffer into
 * a sorted set (for tests and the fuzzer). -1 when out of memory. */
int cli_done_parse(cli_done *d, const char *buf, size_t len);
int cli_done_has(const cli_done *d, long idx);
void cli_done_free(cli_done *d);

#endif
