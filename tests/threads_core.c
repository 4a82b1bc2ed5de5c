/* threads_core.c - see threads_core.h. */
#include "threads_core.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmamba.h"

#define MAX_THREADS 8

typedef struct {
    int B, H, W;
    float *in;
    float *ref;               /* logits, or the four feature maps back to back */
    size_t out_n;
} shape_case;

typedef struct {
    const vm_model *m;
    int features, iters, omp_threads;
    shape_case *sc[2];
    float *out;
    int mismatches, failures;
    char err[320];
} worker;

static void fill(float *x, size_t n, uint64_t seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((seed >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
    }
}

static size_t out_size(const vm_model *m, int features, const shape_case *s, size_t off[4]) {
    if (!features) {
        vm_info I;
        vm_model_info(m, &I);
        return (size_t)s->B * I.num_classes;
    }
    size_t n = 0;
    for (int i = 0; i < 4; i++) {
        int C, h, w;
        vm_feature_shape(m, s->H, s->W, i, &C, &h, &w);
        off[i] = n;
        n += (size_t)s->B * C * h * w;
    }
    return n;
}

static int run_one(vm_ctx *c, const vm_model *m, int features, const shape_case *s, float *out) {
    if (!features) return vm_ctx_forward(c, s->in, s->B, s->H, s->W, out);
    size_t off[4];
    out_size(m, features, s, off);
    float *f[4] = {out + off[0], out + off[1], out + off[2], out + off[3]};
    return vm_ctx_forward_features(c, s->in, s->B, s->H, s->W, f);
}

static void *work(void *arg) {
    worker *w = arg;
    char e[256];
    vm_ctx *c = vm_ctx_new(w->m, e, sizeof e);
    if (!c) {
        snprintf(w->err, sizeof w->err, "vm_ctx_new: %s", e);
        w->failures++;
        return NULL;
    }
    vm_ctx_set_threads(c, w->omp_threads);
    for (int it = 0; it < w->iters; it++) {
        /* switch shapes every few calls: re-planning is exercised too */
        const shape_case *s = w->sc[(it / 7) % 2];
        if (run_one(c, w->m, w->features, s, w->out)) {
            snprintf(w->err, sizeof w->err, "forward %d: %s", it, vm_ctx_error(c));
            w->failures++;
            break;
        }
        if (memcmp(w->out, s->ref, s->out_n * sizeof(float)) != 0) w->mismatches++;
    }
    vm_ctx_free(c);
    return NULL;
}

int vm_threads_check(const char *path, const char *device, int features, int nthreads, int iters, int omp_threads, char *msg,
                     size_t len) {
    char e[256];
    int rc = -1;
    if (nthreads < 1 || nthreads > MAX_THREADS) {
        snprintf(msg, len, "thread count %d out of range", nthreads);
        return -1;
    }
    vm_model *m = vm_model_load(path, NULL, e, sizeof e);
    if (!m) {
        snprintf(msg, len, "%s", e);
        return -1;
    }
    if (device && vm_model_set_device(m, device, VM_PRECISION_FP32)) {
        snprintf(msg, len, "%s", vm_model_error(m));
        vm_model_free(m);
        return -1;
    }
    /* Two shapes per thread, all different (odd sizes included). */
    shape_case sc[2 * MAX_THREADS];
    memset(sc, 0, sizeof sc);
    worker wk[MAX_THREADS];
    memset(wk, 0, sizeof wk);
    pthread_t tid[MAX_THREADS];
    int started = 0;
    vm_ctx *ref = vm_ctx_new(m, e, sizeof e);
    if (!ref) {
        snprintf(msg, len, "vm_ctx_new: %s", e);
        goto done;
    }
    vm_ctx_set_threads(ref, omp_threads);
    for (int i = 0; i < 2 * nthreads; i++) {
        shape_case *s = &sc[i];
        s->B = 1 + i % 2;
        s->H = 32 + 8 * (i / 2) + (i % 3 == 2);
        s->W = 32 + 4 * i;
        size_t off[4];
        s->out_n = out_size(m, features, s, off);
        s->in = malloc((size_t)s->B * 3 * s->H * s->W * sizeof(float));
        s->ref = malloc(s->out_n * sizeof(float));
        if (!s->in || !s->ref) {
            snprintf(msg, len, "out of memory");
            goto done;
        }
        fill(s->in, (size_t)s->B * 3 * s->H * s->W, 1234 + i);
        if (run_one(ref, m, features, s, s->ref)) {
            snprintf(msg, len, "reference forward %dx%dx%d: %s", s->B, s->H, s->W, vm_ctx_error(ref));
            goto done;
        }
    }
    for (int t = 0; t < nthreads; t++) {
        worker *w = &wk[t];
        w->m = m;
        w->features = features;
        w->iters = iters;
        w->omp_threads = omp_threads;
        w->sc[0] = &sc[2 * t];
        w->sc[1] = &sc[2 * t + 1];
        size_t mx = sc[2 * t].out_n > sc[2 * t + 1].out_n ? sc[2 * t].out_n : sc[2 * t + 1].out_n;
        w->out = malloc(mx * sizeof(float));
        if (!w->out) {
            snprintf(msg, len, "out of memory");
            goto done;
        }
    }
    for (; started < nthreads; started++)
        if (pthread_create(&tid[started], NULL, work, &wk[started]) != 0) {
            snprintf(msg, len, "pthread_create failed for thread %d", started);
            goto done;
        }
    rc = 0;
done:
    for (int t = 0; t < started; t++) pthread_join(tid[t], NULL);
    for (int t = 0; rc == 0 && t < nthreads; t++) {
        if (wk[t].failures) {
            snprintf(msg, len, "thread %d: %s", t, wk[t].err);
            rc = -1;
        } else if (wk[t].mismatches) {
            snprintf(msg, len, "thread %d: %d of %d outputs differ from the single-context run", t, wk[t].mismatches, iters);
            rc = -1;
        }
    }
    for (int t = 0; t < MAX_THREADS; t++) free(wk[t].out);
    for (int i = 0; i < 2 * MAX_THREADS; i++) {
        free(sc[i].in);
        free(sc[i].ref);
    }
    vm_ctx_free(ref);
    vm_model_free(m);
    return rc;
}
