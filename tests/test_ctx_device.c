/* test_ctx_device.c - the device is chosen per context (vm_ctx_set_device),
 * not per model: contexts of one model on the CPU and on a GPU at the same
 * time, each against the goldens, from two threads at once; the model's
 * setting is only the default of contexts that did not choose.
 *
 * Exit 0: all passed; 1: a failure (printed); 77 (automake's SKIP): no CUDA
 * device here (or a build without --with-cuda). The public API only (and
 * the internal .npy reader, for the uint8 labels), but for two cases on
 * backend.cu's test hooks (model/model.h): the caller's current device
 * kept across every call (two GPUs or more) and each stream / event /
 * cuBLAS handle creation of a context failed in turn.
 *
 * Tolerance: the goldens' own, |ours - golden| <= 1e-4 * max(1, |golden|)
 * (tests/test_golden.c says why: FP32 on both sides, only summation order
 * and libm differ, ~1e-6 through the network; a real mistake is >= 1e-2).
 * Runs of one context are deterministic (same stream, plan and kernels):
 * repeated runs, also while another thread uses the model, must give the
 * same bits. The mini segmentation has no near-tie pixel (test_seg.c), so
 * its labels must equal the golden's exactly on either device. */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include "vmamba.h"
#include "loaders/npy.h"
#include "model/model.h"

#define TOL 1e-4

static int failures;

static void fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    failures++;
}

#define CHECK(cond, ...)                  \
    do {                                  \
        if (!(cond)) fail(__VA_ARGS__);   \
    } while (0)

static const char *tdata(const char *name) {
    static char buf[4][1024];
    static int k;
    const char *d = getenv("VMAMBA_TEST_DATA");
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", d ? d : "tests/data", name);
    return buf[k];
}

static void load_npy(vm_npy *a, const char *name) {
    char err[512];
    if (vm_npy_read_u8_or_f32(tdata(name), a, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        exit(99);
    }
}

/* A model under tests/data, or exit 99 (the test cannot run without it). */
static vm_model *load_model(const char *name) {
    char err[512];
    vm_model *m = vm_model_load(tdata(name), NULL, err, sizeof err);
    if (!m) {
        fprintf(stderr, "%s\n", err);
        exit(99);
    }
    return m;
}

/* The digits model's test inputs and their reference logits. */
static void load_digits_io(vm_npy *in, vm_npy *ref) {
    load_npy(in, "digits/test_input.npy");
    load_npy(ref, "digits/ref_logits.npy");
}

/* Worst |got - ref| / max(1, |ref|); NaN counts as failing. */
static double relerr(const float *got, const float *ref, size_t n) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]) / fmax(1.0, fabs((double)ref[i]));
        if (!(d <= worst)) worst = isnan(d) ? INFINITY : d;
    }
    return worst;
}

static void close_to(const char *what, const float *got, const float *ref, size_t n) {
    double e = relerr(got, ref, n);
    CHECK(e <= TOL, "%s: max relative error %.3g > %g", what, e, TOL);
}

static vm_ctx *ctx(const vm_model *m, const char *device) {
    char err[512];
    vm_ctx *c = vm_ctx_new(m, err, sizeof err);
    if (!c) {
        fprintf(stderr, "vm_ctx_new: %s\n", err);
        exit(99);
    }
    if (device && vm_ctx_set_device(c, device)) {
        fprintf(stderr, "vm_ctx_set_device(%s): %s\n", device, vm_ctx_error(c));
        exit(99);
    }
    return c;
}

/* ---- two threads, two devices, one model -------------------------------- */
typedef struct {
    vm_ctx *c;
    const float *in;
    int B;
    const float *want; /* this context's own single-threaded result */
    size_t n;
    int runs, bad, rc;
} job;

static void *worker(void *arg) {
    job *j = arg;
    float *out = malloc(j->n * sizeof(float));
    for (int r = 0; r < j->runs; r++) {
        if (vm_ctx_forward(j->c, j->in, j->B, 32, 32, out)) {
            j->rc = -1;
            break;
        }
        if (memcmp(out, j->want, j->n * sizeof(float))) j->bad++;
    }
    free(out);
    return NULL;
}

static void classify_cases(int ndev) {
    vm_model *m = load_model("digits/model.pth");
    vm_npy in, ref;
    load_digits_io(&in, &ref);
    const int B = (int)in.shape[0];
    const size_t n = ref.numel;
    float *lc = malloc(n * sizeof(float)), *lg = malloc(n * sizeof(float)), *t = malloc(n * sizeof(float));

    /* The model stays on the CPU; one context moves to the GPU. */
    vm_ctx *cc = ctx(m, NULL), *cg = ctx(m, "cuda:0");
    CHECK(!strcmp(vm_model_device(m), "cpu"), "model device %s, want cpu", vm_model_device(m));
    CHECK(!strcmp(vm_ctx_device(cc), "cpu"), "default context on %s, want cpu", vm_ctx_device(cc));
    CHECK(!strcmp(vm_ctx_device(cg), "cuda:0"), "context on %s, want cuda:0", vm_ctx_device(cg));
    CHECK(vm_ctx_forward(cc, in.data, B, 32, 32, lc) == 0, "cpu forward: %s", vm_ctx_error(cc));
    CHECK(vm_ctx_forward(cg, in.data, B, 32, 32, lg) == 0, "cuda:0 forward: %s", vm_ctx_error(cg));
    close_to("cpu context logits", lc, ref.data, n);
    close_to("cuda:0 context logits", lg, ref.data, n);

    /* A GPU that does not exist, and a malformed name: refused, and the
     * context stays on (and keeps running on) cuda:0. */
    char name[32];
    snprintf(name, sizeof name, "cuda:%d", ndev);
    CHECK(vm_ctx_set_device(cg, name) == VM_ERR_UNSUPPORTED, "%s accepted", name);
    snprintf(name, sizeof name, "CUDA device %d does not exist", ndev);
    CHECK(strstr(vm_ctx_error(cg), name) != NULL, "message: %s", vm_ctx_error(cg));
    CHECK(vm_ctx_set_device(cg, "cuda:x") == VM_ERR_INPUT, "cuda:x accepted");
    CHECK(strstr(vm_ctx_error(cg), "expected cpu, cuda or cuda:N") != NULL, "message: %s", vm_ctx_error(cg));
    CHECK(!strcmp(vm_ctx_device(cg), "cuda:0"), "after refusals on %s", vm_ctx_device(cg));
    CHECK(vm_ctx_forward(cg, in.data, B, 32, 32, t) == 0 && !memcmp(t, lg, n * sizeof(float)),
          "cuda:0 context changed after refused moves");

    /* Both at once from two threads, 20 runs each: each its own bits. */
    job jc = {cc, in.data, B, lc, n, 20, 0, 0}, jg = {cg, in.data, B, lg, n, 20, 0, 0};
    pthread_t tc, tg;
    pthread_create(&tc, NULL, worker, &jc);
    pthread_create(&tg, NULL, worker, &jg);
    pthread_join(tc, NULL);
    pthread_join(tg, NULL);
    CHECK(jc.rc == 0 && jc.bad == 0, "cpu thread: rc %d, %d of 20 runs differ", jc.rc, jc.bad);
    CHECK(jg.rc == 0 && jg.bad == 0, "cuda:0 thread: rc %d, %d of 20 runs differ (%s)", jg.rc, jg.bad, vm_ctx_error(cg));

    /* The model's default moves to the GPU: new contexts follow it, a
     * context that chose the CPU stays there (the same bits as before). */
    CHECK(vm_model_set_device(m, "cuda:0", VM_PRECISION_FP32) == 0, "%s", vm_model_error(m));
    CHECK(!strcmp(vm_model_device(m), "cuda:0"), "model device %s, want cuda:0", vm_model_device(m));
    vm_ctx *cd = ctx(m, NULL), *cp = ctx(m, "cpu");
    CHECK(!strcmp(vm_ctx_device(cd), "cuda:0"), "default context on %s", vm_ctx_device(cd));
    CHECK(!strcmp(vm_ctx_device(cc), "cuda:0"), "a context following the model is on %s", vm_ctx_device(cc));
    CHECK(vm_ctx_forward(cp, in.data, B, 32, 32, t) == 0 && !memcmp(t, lc, n * sizeof(float)),
          "context on cpu under a cuda model: not the CPU's bits (%s)", vm_ctx_error(cp));
    CHECK(vm_ctx_forward(cd, in.data, B, 32, 32, t) == 0, "%s", vm_ctx_error(cd));
    close_to("default context on cuda:0", t, ref.data, n);
    CHECK(vm_forward(m, in.data, B, 32, 32, t) == 0, "vm_forward: %s", vm_model_error(m));
    close_to("vm_forward on cuda:0", t, ref.data, n);
    CHECK(vm_ctx_forward(cc, in.data, B, 32, 32, t) == 0, "%s", vm_ctx_error(cc));
    close_to("the first context, now following the model to cuda:0", t, ref.data, n);

    /* Back to the CPU: the context that chose cuda:0 keeps its weights
     * there and its bits. */
    CHECK(vm_model_set_device(m, "cpu", VM_PRECISION_FP32) == 0, "%s", vm_model_error(m));
    CHECK(!strcmp(vm_ctx_device(cd), "cpu"), "default context on %s after the model went back", vm_ctx_device(cd));
    CHECK(vm_ctx_forward(cg, in.data, B, 32, 32, t) == 0 && !memcmp(t, lg, n * sizeof(float)),
          "cuda:0 context after the model went back to the CPU: %s", vm_ctx_error(cg));
    CHECK(vm_ctx_forward(cd, in.data, B, 32, 32, t) == 0 && !memcmp(t, lc, n * sizeof(float)),
          "default context back on the CPU: not the CPU's bits");

    /* Every GPU there is, each context on its own. */
    for (int d = 1; d < ndev && d < 8; d++) {
        snprintf(name, sizeof name, "cuda:%d", d);
        vm_ctx *cn = ctx(m, name);
        CHECK(!strcmp(vm_ctx_device(cn), name), "context on %s, want %s", vm_ctx_device(cn), name);
        CHECK(vm_ctx_forward(cn, in.data, B, 32, 32, t) == 0, "%s: %s", name, vm_ctx_error(cn));
        close_to(name, t, ref.data, n);
        vm_ctx_free(cn);
    }
    /* And back from the GPU to the CPU on one context. */
    CHECK(vm_ctx_set_device(cg, "cpu") == 0, "%s", vm_ctx_error(cg));
    CHECK(vm_ctx_forward(cg, in.data, B, 32, 32, t) == 0 && !memcmp(t, lc, n * sizeof(float)),
          "context moved back to the CPU: not the CPU's bits");

    vm_ctx_free(cc), vm_ctx_free(cg), vm_ctx_free(cd), vm_ctx_free(cp);
    free(lc), free(lg), free(t);
    vm_npy_free(&in), vm_npy_free(&ref);
    vm_model_free(m);
}

/* A context that follows the model's default keeps the state it made on
 * the GPU (its stream, arena and the addresses of that upload of the
 * weights) when the model goes back to the CPU, and vm_model_set_device
 * frees that upload (no context chose cuda:0: vm_cuda_release_unpinned).
 * When the model comes back, the context must run on the new upload, not
 * on the freed one (backend.cu's ctx_state compares upload generations).
 * Another model goes up in between, so that the freed device memory is
 * likely reused with other values; compute-sanitizer would flag a stale
 * read for certain. */
static void default_follower_case(void) {
    char err[512];
    vm_model *m = vm_model_load(tdata("digits/model.pth"), NULL, err, sizeof err);
    vm_model *o = m ? vm_model_load(tdata("backbone_v2/model.pth"), NULL, err, sizeof err) : NULL;
    if (!m || !o) {
        fprintf(stderr, "%s\n", err);
        exit(99);
    }
    vm_npy in, ref;
    load_npy(&in, "digits/test_input.npy");
    load_npy(&ref, "digits/ref_logits.npy");
    const int B = (int)in.shape[0];
    float *t = malloc(ref.numel * sizeof(float));
    vm_ctx *c = ctx(m, NULL);
    CHECK(vm_model_set_device(m, "cuda:0", VM_PRECISION_FP32) == 0, "%s", vm_model_error(m));
    CHECK(vm_ctx_forward(c, in.data, B, 32, 32, t) == 0, "%s", vm_ctx_error(c));
    close_to("default context on cuda:0", t, ref.data, ref.numel);
    CHECK(vm_model_set_device(m, "cpu", VM_PRECISION_FP32) == 0, "%s", vm_model_error(m));
    CHECK(vm_ctx_forward(c, in.data, B, 32, 32, t) == 0, "%s", vm_ctx_error(c));
    close_to("default context back on the CPU", t, ref.data, ref.numel);
    CHECK(vm_model_set_device(o, "cuda:0", VM_PRECISION_FP32) == 0, "%s", vm_model_error(o));
    CHECK(vm_model_set_device(m, "cuda:0", VM_PRECISION_FP32) == 0, "%s", vm_model_error(m));
    CHECK(vm_ctx_forward(c, in.data, B, 32, 32, t) == 0, "%s", vm_ctx_error(c));
    close_to("default context on cuda:0 again, after its first upload was freed", t, ref.data, ref.numel);
    vm_ctx_free(c);
    free(t);
    vm_npy_free(&in), vm_npy_free(&ref);
    vm_model_free(o);
    vm_model_free(m);
}

/* Contexts moving to the GPU from four threads at once, on a model that
 * is not there yet: one upload (under the model's lock), all run. */
typedef struct {
    const vm_model *m;
    const float *in;
    const float *ref;
    size_t n;
    int ok;
    char err[256];
} mover;

static void *move_and_run(void *arg) {
    mover *j = arg;
    vm_ctx *c = vm_ctx_new(j->m, j->err, sizeof j->err);
    float *out = malloc(j->n * sizeof(float));
    if (c && vm_ctx_set_device(c, "cuda:0") == 0 && vm_ctx_forward(c, j->in, 4, 32, 32, out) == 0)
        j->ok = relerr(out, j->ref, j->n) <= TOL;
    else if (c)
        snprintf(j->err, sizeof j->err, "%s", vm_ctx_error(c));
    free(out);
    vm_ctx_free(c);
    return NULL;
}

static void concurrent_moves(void) {
    vm_model *m = load_model("digits/model.pth");
    vm_npy in, ref;
    load_digits_io(&in, &ref);
    mover j[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        j[i] = (mover){m, in.data, ref.data, 4 * 10, 0, ""};
        pthread_create(&t[i], NULL, move_and_run, &j[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK(j[i].ok, "thread %d moving its context to cuda:0: %s", i, j[i].err);
    }
    CHECK(!strcmp(vm_model_device(m), "cpu"), "the model's default moved to %s", vm_model_device(m));
    vm_npy_free(&in), vm_npy_free(&ref);
    vm_model_free(m);
}

/* Backbone features on a context on the GPU, the model on the CPU. */
static void feature_case(void) {
    vm_model *m = load_model("backbone_v2/model.pth");
    vm_npy in, ref[4];
    load_npy(&in, "backbone_v2/input.npy");
    float *f[4];
    for (int i = 0; i < 4; i++) {
        char nm[64];
        snprintf(nm, sizeof nm, "backbone_v2/feat%d.npy", i);
        load_npy(&ref[i], nm);
        f[i] = malloc(ref[i].numel * sizeof(float));
    }
    vm_ctx *c = ctx(m, "cuda");
    CHECK(!strcmp(vm_ctx_device(c), "cuda:0"), "\"cuda\" gave %s", vm_ctx_device(c));
    int rc = vm_ctx_forward_features(c, in.data, (int)in.shape[0], (int)in.shape[2], (int)in.shape[3], f);
    CHECK(rc == 0, "features on cuda:0: %s", vm_ctx_error(c));
    for (int i = 0; i < 4 && rc == 0; i++) {
        char nm[64];
        snprintf(nm, sizeof nm, "feature map %d on cuda:0", i);
        close_to(nm, f[i], ref[i].data, ref[i].numel);
    }
    vm_ctx_free(c);
    for (int i = 0; i < 4; i++) free(f[i]), vm_npy_free(&ref[i]);
    vm_npy_free(&in);
    vm_model_free(m);
}

/* Segmentation (backbone + UPerHead through the context's CUDA op backend)
 * on a context on the GPU and one on the CPU of one segmentor. */
static void seg_case(void) {
    char err[512];
    vm_segmentor *s = vm_segmentor_load(tdata("seg_upernet/model.pth"), err, sizeof err);
    if (!s) {
        fprintf(stderr, "%s\n", err);
        exit(99);
    }
    vm_npy lab;
    load_npy(&lab, "seg_upernet/mini_label.npy");
    const char *dev[2] = {"cuda:0", "cpu"};
    for (int k = 0; k < 2; k++) {
        vm_ctx *c = ctx(vm_segmentor_model(s), dev[k]);
        uint8_t *labels = NULL;
        int w = 0, h = 0;
        for (int rep = 0; rep < 2; rep++) { /* again: plans and maps reused */
            if (vm_ctx_segment_file(c, s, tdata("seg_upernet/mini.png"), 2048, 36, &labels, &w, &h)) {
                fail("segment on %s: %s", dev[k], vm_ctx_error(c));
                break;
            }
            size_t bad = 0;
            CHECK((size_t)w * h == lab.numel, "segment on %s: %dx%d", dev[k], w, h);
            for (size_t p = 0; p < lab.numel && (size_t)w * h == lab.numel; p++) bad += labels[p] != (int)lab.data[p];
            CHECK(bad == 0, "segment on %s: %zu labels differ from the golden", dev[k], bad);
            free(labels);
        }
        vm_ctx_free(c);
    }
    vm_npy_free(&lab);
    vm_segmentor_free(s);
}

#ifdef VM_HAVE_CUDA
/* The library selects a context's (or the weights') device for its own
 * calls and puts the caller's back (src/cuda/keep_device.cuh): the
 * application's thread, here on the last GPU, stays there across
 * uploads, forwards on cuda:0 (classifier, features, the heads' op
 * backend), frees and failures. With one GPU every thread is on cuda:0
 * whatever the library does: not run. */
static int on_mine;
#define KEPT(what)                                                                                          \
    CHECK(vm_cuda_test_current_device() == on_mine, "%s left the calling thread on cuda:%d (it was on cuda:%d)", \
          what, vm_cuda_test_current_device(), on_mine)

static void device_kept_case(int ndev) {
    if (ndev < 2) {
        printf("device_kept_case: one GPU, no other device to be on: not run\n");
        return;
    }
    on_mine = ndev - 1;
    if (vm_cuda_test_select_device(on_mine)) {
        fail("cannot select cuda:%d", on_mine);
        return;
    }
    vm_model *m = load_model("digits/model.pth");
    vm_npy in, ref;
    load_digits_io(&in, &ref);
    const int B = (int)in.shape[0];
    float *t = malloc(ref.numel * sizeof(float));
    KEPT("vm_model_load");
    vm_ctx *c = ctx(m, "cuda:0"); /* the upload to cuda:0 */
    KEPT("vm_ctx_set_device(cuda:0)");
    CHECK(vm_ctx_forward(c, in.data, B, 32, 32, t) == 0, "%s", vm_ctx_error(c));
    KEPT("vm_ctx_forward on cuda:0 (its first: stream, handle, arena)");
    close_to("cuda:0 logits, the caller on another GPU", t, ref.data, ref.numel);
    CHECK(vm_ctx_forward(c, in.data, B, 32, 32, t) == 0, "%s", vm_ctx_error(c));
    KEPT("vm_ctx_forward on cuda:0");
    vm_ctx *c2 = ctx(m, "cuda:0");
    vm_cuda_test_fail_create(1); /* its first forward fails on cuda:0, making its stream */
    CHECK(vm_ctx_forward(c2, in.data, B, 32, 32, t) != 0, "a forward with a failed stream creation ran");
    vm_cuda_test_fail_create(0);
    KEPT("a failed vm_ctx_forward on cuda:0");
    vm_ctx_free(c2);
    CHECK(vm_model_set_device(m, "cuda:0", VM_PRECISION_FP32) == 0, "%s", vm_model_error(m));
    KEPT("vm_model_set_device(cuda:0)");
    CHECK(vm_forward(m, in.data, B, 32, 32, t) == 0, "%s", vm_model_error(m));
    KEPT("vm_forward on cuda:0");
    CHECK(vm_ctx_set_device(c, "cpu") == 0, "%s", vm_ctx_error(c));
    KEPT("vm_ctx_set_device(cpu) from cuda:0");
    vm_ctx_free(c);
    KEPT("vm_ctx_free");
    CHECK(vm_model_set_device(m, "cpu", VM_PRECISION_FP32) == 0, "%s", vm_model_error(m));
    KEPT("vm_model_set_device(cpu), freeing cuda:0's copy");
    CHECK(vm_model_set_device(m, "cuda:0", VM_PRECISION_FP32) == 0, "%s", vm_model_error(m));
    vm_model_free(m);
    KEPT("vm_model_free of a model on cuda:0");
    free(t);
    vm_npy_free(&in), vm_npy_free(&ref);

    /* features, then the heads' CUDA op backend (segmentation) */
    m = load_model("backbone_v2/model.pth");
    vm_npy fin, fref[4];
    load_npy(&fin, "backbone_v2/input.npy");
    float *f[4];
    for (int i = 0; i < 4; i++) {
        char nm[64];
        snprintf(nm, sizeof nm, "backbone_v2/feat%d.npy", i);
        load_npy(&fref[i], nm);
        f[i] = malloc(fref[i].numel * sizeof(float));
    }
    c = ctx(m, "cuda:0");
    CHECK(vm_ctx_forward_features(c, fin.data, (int)fin.shape[0], (int)fin.shape[2], (int)fin.shape[3], f) == 0, "%s",
          vm_ctx_error(c));
    KEPT("vm_ctx_forward_features on cuda:0");
    close_to("feature map 3 on cuda:0, the caller on another GPU", f[3], fref[3].data, fref[3].numel);
    vm_ctx_free(c);
    for (int i = 0; i < 4; i++) free(f[i]), vm_npy_free(&fref[i]);
    vm_npy_free(&fin);
    vm_model_free(m);
    char err[512];
    vm_segmentor *s = vm_segmentor_load(tdata("seg_upernet/model.pth"), err, sizeof err);
    if (!s) {
        fprintf(stderr, "%s\n", err);
        exit(99);
    }
    c = ctx(vm_segmentor_model(s), "cuda:0");
    uint8_t *labels = NULL;
    int w = 0, h = 0;
    CHECK(vm_ctx_segment_file(c, s, tdata("seg_upernet/mini.png"), 2048, 36, &labels, &w, &h) == 0, "segment: %s",
          vm_ctx_error(c));
    KEPT("vm_ctx_segment_file on cuda:0 (the heads' CUDA op backend)");
    free(labels);
    vm_ctx_free(c);
    KEPT("vm_ctx_free of a context with a CUDA op backend");
    vm_segmentor_free(s);
    KEPT("vm_segmentor_free");
    vm_cuda_test_select_device(0);
}

/* make_streams (backend.cu) checks each creation of a context's stream,
 * cuBLAS handle and events: failing each in turn (vm_cuda_test_fail_create)
 * gives the forward an error (VM_ERR_BACKEND and the reason), not an
 * abort, leaves none of them alive, and the same context runs right on
 * its next forward; vm_ctx_free then leaves none either. */
static void streams_fail_case(void) {
    vm_model *m = load_model("digits/model.pth");
    vm_npy in, ref;
    load_digits_io(&in, &ref);
    const int B = (int)in.shape[0];
    float *t = malloc(ref.numel * sizeof(float));
    const long base = vm_cuda_test_live_handles();
    int failed = 0, done = 0;
    for (int k = 1; k <= 64 && !done; k++) {
        vm_ctx *c = ctx(m, "cuda:0");
        vm_cuda_test_fail_create(k);
        const int rc = vm_ctx_forward(c, in.data, B, 32, 32, t);
        if (vm_cuda_test_fail_create(0) > 0) { /* fewer than k creations: none failed */
            done = 1;
            CHECK(rc == 0, "forward with every creation succeeding: %s", vm_ctx_error(c));
            close_to("logits, no creation failed", t, ref.data, ref.numel);
        } else {
            failed++;
            CHECK(rc == VM_ERR_BACKEND, "creation %d failed: forward returned %d, want VM_ERR_BACKEND (%d)", k, rc,
                  VM_ERR_BACKEND);
            CHECK(strstr(vm_ctx_error(c), "CUDA: cannot create") != NULL, "creation %d failed: message '%s'", k,
                  vm_ctx_error(c));
            CHECK(vm_cuda_test_live_handles() == base, "creation %d failed: %ld handles left alive", k,
                  vm_cuda_test_live_handles() - base);
            CHECK(vm_ctx_forward(c, in.data, B, 32, 32, t) == 0, "the forward after creation %d failed: %s", k,
                  vm_ctx_error(c));
            close_to("logits after a failed creation", t, ref.data, ref.numel);
        }
        vm_ctx_free(c);
        CHECK(vm_cuda_test_live_handles() == base, "vm_ctx_free (k = %d) left %ld handles alive", k,
              vm_cuda_test_live_handles() - base);
    }
    /* a stream, the cuBLAS handle, 2 profile events, the upload stream
     * and its 4 events */
    CHECK(done && failed >= 9, "%d creations failed in turn, want 9 or more (done %d)", failed, done);
    free(t);
    vm_npy_free(&in), vm_npy_free(&ref);
    vm_model_free(m);
}
#endif

int main(void) {
    int ndev = vm_cuda_devices();
    if (ndev < 1) {
        printf("SKIP: no CUDA device (or a build without --with-cuda): contexts on a GPU not tested\n");
        return 77;
    }
    classify_cases(ndev);
    default_follower_case();
    concurrent_moves();
    feature_case();
    seg_case();
#ifdef VM_HAVE_CUDA
    device_kept_case(ndev);
    streams_fail_case();
#endif
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("PASS: contexts on cpu and cuda:0..%d of one model\n", ndev - 1);
    return 0;
}
