/* batch.c - see batch.h. Two batch buffers: while the model runs batch A
 * on the OpenMP threads, one helper thread decodes batch B. Memory is
 * two batches, however long the input list. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "cli.h"

typedef struct {
    const cli_batch_job *job;
    cli_item *items;
    int n;
    float *data;      /* n x in_floats */
    int eof;          /* the input ended */
    int failed;       /* the input could not be read (printed) */
    double prep_s;    /* time fill took */
} batch_buf;

static int mul_ok(size_t a, size_t b, size_t *out) {
    if (a && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

/* Read up to job->batch items (after shard and resume) and prepare them. */
static void *fill(void *arg) {
    batch_buf *b = arg;
    const cli_batch_job *job = b->job;
    const cli_task *t = job->task;
    double t0 = now();
    b->n = 0;
    while (b->n < job->batch) {
        cli_item *it = &b->items[b->n];
        memset(it, 0, sizeof *it);
        int r = job->next(job->next_ctx, &it->path, &it->index);
        if (r != 1) {
            b->eof = 1;
            b->failed = r < 0;
            break;
        }
        if ((job->shard.n > 1 && it->index % job->shard.n != job->shard.i) || (job->done && cli_done_has(job->done, it->index)) ||
            (t->skip && t->skip(t->ctx, it))) {
            free(it->path);
            it->path = NULL;
            continue;
        }
        float *in = t->in_floats ? b->data + (size_t)b->n * t->in_floats : NULL;
        it->ok = t->prepare(t->ctx, it, in) == 0;
        if (it->ok && t->in_floats && (it->in_w < 1 || it->in_h < 1 || (size_t)3 * it->in_w * it->in_h > t->in_floats)) {
            snprintf(it->err, sizeof it->err, "%s: internal error: input tensor %dx%d too large", it->path, it->in_w, it->in_h);
            it->ok = 0;
        }
        b->n++;
    }
    b->prep_s = now() - t0;
    return NULL;
}

static void draw_progress(long done, long total, double t0) {
    double el = now() - t0, rate = el > 0 ? done / el : 0;
    if (total > 0) {
        int w = 30, k = (int)(w * (double)(done < total ? done : total) / total);
        double eta = rate > 0 && total > done ? (total - done) / rate : 0;
        fprintf(stderr, "\r[%.*s%s%*s] %ld/%ld  %.1f img/s  ETA %02d:%02d ", k, "==============================",
                k < w ? ">" : "", k < w ? w - k - 1 : 0, "", done, total, rate, (int)(eta / 60), (int)eta % 60);
    } else {
        fprintf(stderr, "\r%ld images  %.1f img/s ", done, rate);
    }
    fflush(stderr);
}

static void release_items(const cli_task *t, batch_buf *b) {
    for (int i = 0; i < b->n; i++) {
        if (t->release && b->items[i].data) t->release(t->ctx, &b->items[i]);
        b->items[i].data = NULL;
        free(b->items[i].path);
        b->items[i].path = NULL;
    }
    b->n = 0;
}

/* Run the model on each maximal run of consecutive good items that share
 * an input size; the runs' inputs are packed to be contiguous first. */
static int run_batch(const cli_task *t, batch_buf *a, float *out) {
    if (!t->in_floats) { /* payload items, one at a time */
        for (int i = 0; i < a->n; i++)
            if (a->items[i].ok && t->run(t->ctx, a->items + i, 1, NULL, 0, 0, NULL)) return -1;
        return 0;
    }
    for (int i = 0; i < a->n;) {
        if (!a->items[i].ok) { i++; continue; }
        int W = a->items[i].in_w, H = a->items[i].in_h, j = i + 1;
        while (j < a->n && a->items[j].ok && a->items[j].in_w == W && a->items[j].in_h == H) j++;
        size_t per = (size_t)3 * H * W;
        float *base = a->data + (size_t)i * t->in_floats;
        for (int k = i + 1; k < j; k++) /* per <= in_floats: the destination never passes the source */
            memmove(base + (size_t)(k - i) * per, a->data + (size_t)k * t->in_floats, per * sizeof(float));
        if (t->run(t->ctx, a->items + i, j - i, base, H, W, out + (size_t)i * t->out_floats)) return -1;
        i = j;
    }
    return 0;
}

int cli_batch_run(const cli_batch_job *job, long *n_ok, long *n_fail, double *seconds) {
    const cli_task *t = job->task;
    const int B = job->batch;
    size_t in_bytes, out_bytes;
    batch_buf bufs[2];
    memset(bufs, 0, sizeof bufs);
    float *out = NULL;
    *n_ok = *n_fail = 0;
    *seconds = 0;
    if (!mul_ok((size_t)B, t->in_floats * sizeof(float), &in_bytes) ||
        !mul_ok((size_t)B, t->out_floats * sizeof(float) + 1, &out_bytes)) {
        cli_fail("batches of %d items of %zu floats are too large", B, t->in_floats);
        return -1;
    }
    for (int k = 0; k < 2; k++) {
        bufs[k].job = job;
        bufs[k].items = calloc((size_t)B, sizeof(cli_item));
        bufs[k].data = t->in_floats ? vm_host_alloc(in_bytes) : NULL; /* page-locked when a GPU is present */
    }
    out = t->in_floats ? malloc(out_bytes) : NULL;
    if ((t->in_floats && (!out || !bufs[0].data || !bufs[1].data)) || !bufs[0].items || !bufs[1].items) {
        for (int k = 0; k < 2; k++) {
            free(bufs[k].items);
            vm_host_free(bufs[k].data);
        }
        free(out);
        cli_fail("out of memory for two batches of %d items (%.1f MB each)", B, in_bytes / 1e6);
        return -1;
    }
    double t0 = now(), last_draw = 0;
    long done = 0;
    int rc = 0, cur = 0, warned = 0;
    fill(&bufs[cur]);
    if (job->stats) job->stats->prepare_s = job->stats->waited_s = bufs[cur].prep_s;
    while (bufs[cur].n > 0 || bufs[cur].failed) {
        batch_buf *a = &bufs[cur], *nb = &bufs[!cur];
        pthread_t th;
        int threaded = 0;
        nb->n = 0;
        nb->eof = nb->failed = 0;
        if (a->eof) {
            nb->eof = 1;
        } else {
            int e = pthread_create(&th, NULL, fill, nb);
            threaded = e == 0;
            if (!threaded && !warned) {
                /* go on without decode-ahead rather than end the job early */
                fprintf(stderr, "\rvmamba: warning: cannot start the decode thread (%s): decoding in the main thread\n", strerror(e));
                warned = 1;
            }
        }
        if (run_batch(t, a, out)) rc = -1;
        for (int i = 0; rc == 0 && i < a->n; i++) {
            cli_item *it = &a->items[i];
            if (t->write(t->ctx, it, it->ok && t->in_floats ? out + (size_t)i * t->out_floats : NULL)) rc = -1;
            else if (it->ok) (*n_ok)++;
            else (*n_fail)++;
        }
        done += a->n;
        release_items(t, a);
        a->n = 0;
        if (a->failed) rc = -1; /* the input broke off (printed): its items so far are written */
        double tw = now();
        if (threaded) pthread_join(th, NULL);
        else if (!a->eof && rc == 0) fill(nb);
        if (job->stats && (threaded || (!a->eof && rc == 0))) {
            job->stats->waited_s += now() - tw;
            job->stats->prepare_s += nb->prep_s;
        }
        if (rc) {
            release_items(t, nb);
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
    free(out);
    return rc;
}

/* ---- the image classifier as a task ------------------------------------- */

int cli_cls_prepare(void *ctx, cli_item *it, float *in) {
    const cli_cls *c = ctx;
    it->in_w = it->in_h = c->pp.size;
    return vm_preprocess_file(it->path, &c->pp, in, it->err, sizeof it->err);
}

int cli_cls_run(void *ctx, const cli_item *items, int n, const float *in, int H, int W, float *out) {
    cli_cls *c = ctx;
    if (vm_forward(c->m, in, n, H, W, out)) return cli_fail("%s", vm_model_error(c->m)), -1;
    return 0;
}

/* ---- IMAGE arguments ---------------------------------------------------- */

int cli_argv_next(void *vc, char **path, long *index) {
    cli_argv_src *c = vc;
    if (c->pos >= c->n) return 0;
    if (!(*path = strdup(c->items[c->pos]))) return cli_fail("out of memory"), -1;
    *index = c->pos++;
    return 1;
}

/* ---- list files ---------------------------------------------------------- */

int cli_list_open(cli_list *l, const char *path, int nul) {
    memset(l, 0, sizeof *l);
    l->nul = nul;
    l->name = path;
    l->f = strcmp(path, "-") ? fopen(path, "r") : stdin;
    if (!l->f) return cli_fail("%s: %s", path, strerror(errno)), -1;
    return 0;
}

int cli_list_next(void *vl, char **path, long *index) {
    cli_list *l = vl;
    for (;;) {
        char *line = NULL;
        size_t cap = 0;
        errno = 0;
        ssize_t n = getdelim(&line, &cap, l->nul ? '\0' : '\n', l->f);
        if (n < 0) {
            free(line);
            if (ferror(l->f)) return cli_fail("%s: read error: %s", l->name, strerror(errno ? errno : EIO)), -1;
            return 0;
        }
        if (l->nul) {
            if (n > 0 && line[n - 1] == 0) n--;
        } else {
            while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        }
        long idx = l->pos++;
        if (n == 0) { free(line); continue; } /* empty entries keep their index */
        *path = line;
        *index = idx;
        return 1;
    }
}

void cli_list_close(cli_list *l) {
    if (l->f && l->f != stdin) fclose(l->f);
    l->f = NULL;
}

long cli_list_count(const char *path, int nul) {
    if (!strcmp(path, "-")) return -1;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0) return -1;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) { /* a pipe can be read once only */
        close(fd);
        return -1;
    }
    FILE *f = fdopen(fd, "r");
    if (!f) {
        close(fd);
        return -1;
    }
    long n = 0;
    int ch, last = nul ? 0 : '\n', sep = nul ? 0 : '\n';
    while ((ch = getc(f)) != EOF) {
        if (ch == sep) n++;
        last = ch;
    }
    if (last != sep) n++;
    fclose(f);
    return n;
}

/* ---- JSON Lines output with resume -------------------------------------- */

static int cmp_long(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

int cli_done_parse(cli_done *d, const char *buf, size_t len) {
    size_t cap = 0;
    memset(d, 0, sizeof *d);
    for (size_t s = 0; s < len;) {
        const char *nl = memchr(buf + s, '\n', len - s);
        if (!nl) break; /* a torn last line is redone */
        size_t e = (size_t)(nl - buf);
        /* the records this program writes start {"index": N, */
        static const char key[] = "{\"index\": ";
        if (e - s > sizeof key - 1 && !memcmp(buf + s, key, sizeof key - 1)) {
            long v = 0;
            size_t p = s + sizeof key - 1;
            int digits = 0, big = 0;
            for (; p < e && buf[p] >= '0' && buf[p] <= '9'; p++, digits++) {
                if (v > (LONG_MAX - 9) / 10) big = 1;
                else v = v * 10 + (buf[p] - '0');
            }
            if (digits && !big && p < e && buf[p] == ',') {
                if (d->n == cap) {
                    size_t nc = cap ? 2 * cap : 1024;
                    long *ni = realloc(d->idx, nc * sizeof *ni);
                    if (!ni) {
                        cli_done_free(d);
                        return -1;
                    }
                    d->idx = ni;
                    cap = nc;
                }
                d->idx[d->n++] = v;
            }
        }
        s = e + 1;
    }
    if (d->n) qsort(d->idx, d->n, sizeof *d->idx, cmp_long);
    return 0;
}

int cli_done_has(const cli_done *d, long idx) {
    return d->n && bsearch(&idx, d->idx, d->n, sizeof *d->idx, cmp_long) != NULL;
}

void cli_done_free(cli_done *d) {
    free(d->idx);
    memset(d, 0, sizeof *d);
}

int cli_out_open(cli_out *o, const char *path, int resume, const char *list_path) {
    memset(o, 0, sizeof *o);
    o->path = path;
    struct stat so, sl;
    if (list_path && stat(path, &so) == 0 && (strcmp(list_path, "-") ? stat(list_path, &sl) : fstat(0, &sl)) == 0 &&
        so.st_dev == sl.st_dev && so.st_ino == sl.st_ino)
        return cli_fail("--output %s is the --list file %s: refusing to overwrite the input", path, list_path), -1;
    if (!resume) {
        o->f = fopen(path, "w");
        if (!o->f) return cli_fail("%s: cannot open for writing: %s", path, strerror(errno)), -1;
        return 0;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return cli_fail("%s: cannot open for writing: %s", path, strerror(errno)), -1;
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        return cli_fail("%s: --resume needs a regular file", path), -1;
    }
    size_t len = (size_t)st.st_size, keep = 0;
    char *buf = len ? malloc(len) : NULL;
    if (len && !buf) {
        close(fd);
        return cli_fail("%s: out of memory reading %zu bytes to resume", path, len), -1;
    }
    for (size_t got = 0; got < len;) {
        ssize_t r = pread(fd, buf + got, len - got, (off_t)got);
        if (r <= 0) {
            int e = r < 0 ? errno : EIO;
            free(buf);
            close(fd);
            return cli_fail("%s: read error: %s", path, strerror(e)), -1;
        }
        got += (size_t)r;
    }
    for (size_t k = len; k > 0; k--)
        if (buf[k - 1] == '\n') {
            keep = k;
            break;
        }
    if (cli_done_parse(&o->done, buf, keep)) {
        free(buf);
        close(fd);
        return cli_fail("%s: out of memory reading the records to resume", path), -1;
    }
    free(buf);
    if (keep < len) { /* a killed job's torn last line: cut it, its item is redone */
        if (ftruncate(fd, (off_t)keep) != 0) {
            int e = errno;
            close(fd);
            cli_done_free(&o->done);
            return cli_fail("%s: cannot cut the torn last line: %s", path, strerror(e)), -1;
        }
        fprintf(stderr, "vmamba: %s: dropped a torn last line (%zu bytes); its item is redone\n", path, len - keep);
    }
    if (lseek(fd, 0, SEEK_END) < 0 || !(o->f = fdopen(fd, "a"))) {
        int e = errno;
        close(fd);
        cli_done_free(&o->done);
        return cli_fail("%s: %s", path, strerror(e)), -1;
    }
    return 0;
}

int cli_out_flush(cli_out *o) {
    if (fflush(o->f) != 0 || ferror(o->f)) return cli_fail("%s: write failed: %s", o->path ? o->path : "stdout", strerror(errno)), -1;
    return 0;
}

int cli_out_close(cli_out *o) {
    int rc = 0;
    if (o->f && o->f != stdout) {
        if (ferror(o->f) | fclose(o->f)) {
            cli_fail("%s: write failed: %s", o->path, strerror(errno));
            rc = -1;
        }
    } else if (o->f && fflush(o->f)) {
        cli_fail("stdout: write failed: %s", strerror(errno));
        rc = -1;
    }
    o->f = NULL;
    cli_done_free(&o->done);
    return rc;
}
