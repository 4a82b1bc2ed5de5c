/* batch.c - see batch.h. Two batch buffers: while the model runs batch A
 * on the OpenMP threads, one helper thread decodes batch B. Memory is
 * two batches, however long the input list. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "cli.h"
#include "image/image.h"

typedef struct {
    const cli_batch_job *job;
    cli_item *items;
    int n;
    float *data;      /* n x 3 x S x S */
    int eof;
} batch_buf;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

/* Read up to job->batch items and decode them. */
static void *fill(void *arg) {
    batch_buf *b = arg;
    const cli_batch_job *job = b->job;
    const size_t per = (size_t)3 * job->pp->size * job->pp->size;
    b->n = 0;
    while (b->n < job->batch) {
        cli_item *it = &b->items[b->n];
        if (job->next(job->next_ctx, &it->path, &it->index) != 1) {
            b->eof = 1;
            break;
        }
        it->err[0] = 0;
        it->ok = vm_preprocess_file(it->path, job->pp, b->data + (size_t)b->n * per, it->err, sizeof it->err) == 0;
        if (!it->ok) memset(b->data + (size_t)b->n * per, 0, per * sizeof(float));
        b->n++;
    }
    return NULL;
}

static void draw_progress(long done, long total, double t0) {
    double el = now() - t0, rate = el > 0 ? done / el : 0;
    if (total > 0) {
        int w = 30, k = (int)(w * (double)done / total);
        double eta = rate > 0 ? (total - done) / rate : 0;
        fprintf(stderr, "\r[%.*s%s%*s] %ld/%ld  %.1f img/s  ETA %02d:%02d ", k, "==============================",
                k < w ? ">" : "", k < w ? w - k - 1 : 0, "", done, total, rate, (int)(eta / 60), (int)eta % 60);
    } else {
        fprintf(stderr, "\r%ld images  %.1f img/s ", done, rate);
    }
    fflush(stderr);
}

int cli_batch_run(const cli_batch_job *job, long *n_ok, long *n_fail, double *seconds) {
    vm_info I;
    vm_model_info(job->model, &I);
    const int S = job->pp->size, B = job->batch;
    const size_t per = (size_t)3 * S * S;
    batch_buf bufs[2];
    for (int k = 0; k < 2; k++) {
        bufs[k].job = job;
        bufs[k].items = calloc((size_t)B, sizeof(cli_item));
        bufs[k].data = vm_host_alloc((size_t)B * per * sizeof(float)); /* page-locked when a GPU is present */
        bufs[k].eof = 0;
        bufs[k].n = 0;
    }
    float *logits = malloc((size_t)B * I.num_classes * sizeof(float));
    if (!logits || !bufs[0].data || !bufs[1].data || !bufs[0].items || !bufs[1].items) {
        for (int k = 0; k < 2; k++) {
            free(bufs[k].items);
            vm_host_free(bufs[k].data);
        }
        free(logits);
        fprintf(stderr, "vmamba: out of memory for batches of %d images\n", B);
        return -1;
    }
    double t0 = now(), last_draw = 0;
    long done = 0;
    *n_ok = *n_fail = 0;
    int rc = 0, cur = 0;
    fill(&bufs[cur]);
    while (bufs[cur].n > 0) {
        batch_buf *a = &bufs[cur], *nb = &bufs[!cur];
        pthread_t th;
        int threaded = !a->eof && pthread_create(&th, NULL, fill, nb) == 0;
        if (!threaded) {
            nb->n = 0;
            nb->eof = 1;
        }
        int any_ok = 0;
        for (int i = 0; i < a->n; i++) any_ok |= a->items[i].ok;
        if (any_ok && vm_forward(job->model, a->data, a->n, S, S, logits)) {
            cli_fail("%s", vm_model_error(job->model));
            rc = -1;
        }
        for (int i = 0; rc == 0 && i < a->n; i++) {
            cli_item *it = &a->items[i];
            job->result(job->result_ctx, it, it->ok ? logits + (size_t)i * I.num_classes : NULL, I.num_classes);
            if (it->ok) (*n_ok)++;
            else (*n_fail)++;
        }
        done += a->n;
        for (int i = 0; i < a->n; i++) free(a->items[i].path);
        if (threaded) pthread_join(th, NULL);
        if (rc) {
            for (int i = 0; i < nb->n; i++) free(nb->items[i].path);
            break;
        }
        if (job->progress && (now() - last_draw > 0.2 || nb->n == 0)) {
            draw_progress(done, job->total, t0);
            last_draw = now();
        }
        cur = !cur;
    }
    if (job->progress) fputc('\n', stderr);
    *seconds = now() - t0;
    for (int k = 0; k < 2; k++) {
        free(bufs[k].items);
        vm_host_free(bufs[k].data);
    }
    free(logits);
    return rc;
}
