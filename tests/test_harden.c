/* test_harden.c - regression tests for the defects of issue #16 found by
 * hostile testing: each test failed (crash, abort, wrong result or a
 * misleading message) before its fix. Fixtures: tests/data/hostile/, made
 * by tests/tools/make_hostile.py; other hostile inputs are made here. */
#define _GNU_SOURCE
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <execinfo.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>
#include <omp.h>

#include "testutil.h"
#include "vmamba.h"
#include "image/image.h"
#include "loaders/zipread.h"
#include "loaders/pickle.h"
#include "net/segmentor.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

static vm_model *load(const char *path, char *err, size_t errlen) {
    vm_load_opts o = {.quiet = 1};
    return vm_model_load(path, &o, err, errlen);
}

static const char *tmp_file(const void *data, size_t n) {
    static char path[4][64];
    static int k;
    char *p = path[k++ % 4];
    snprintf(p, 64, "/tmp/vmharden_XXXXXX");
    int fd = mkstemp(p);
    ck_assert(fd >= 0);
    ck_assert(write(fd, data, n) == (ssize_t)n);
    close(fd);
    return p;
}

/* The load must fail with an error that names the file and says `needle`. */
static void expect_load_error(const char *path, const char *needle) {
    char err[1024] = "";
    vm_model *m = load(path, err, sizeof err);
    ck_assert_msg(m == NULL, "%s loaded, expected an error with '%s'", path, needle);
    ck_assert_msg(strstr(err, needle) != NULL, "error '%s' lacks '%s'", err, needle);
    ck_assert_msg(strstr(err, path) != NULL, "error '%s' does not name the file", err);
}

/* Address space in use now, in MiB (the limits below are set on top). */
static size_t vm_mb(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0;
    if (f) {
        if (fscanf(f, "%ld", &pages) != 1) pages = 0;
        fclose(f);
    }
    return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE) >> 20;
}

/* Run fn in a child under an address-space limit of `mb` MiB more than it
 * has mapped already: the child must exit normally with status 0 (fn's checks
 * passed), never abort. On top, because what is mapped at fork is not what
 * the test is about: a --with-cuda build maps libcublas/libcublasLt, over
 * 512 MiB of address space before any work (an absolute 512 MiB failed
 * extreme_aspect on an H200 with "cannot map" for a 100-byte PNG). */
static void under_limit(size_t mb, void (*fn)(void)) {
    fflush(NULL);
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        size_t lim = vm_mb() + mb;
        struct rlimit r = {lim << 20, lim << 20};
        if (setrlimit(RLIMIT_AS, &r) != 0) _exit(90);
        fn();
        _exit(0);
    }
    int st;
    ck_assert(waitpid(pid, &st, 0) == pid);
    ck_assert_msg(!WIFSIGNALED(st), "the child was killed by signal %d (abort on out of memory?)", WTERMSIG(st));
    ck_assert_msg(WEXITSTATUS(st) == 0, "the child exited with %d", WEXITSTATUS(st));
}

static float *logits(const char *path, int *n) {
    char err[1024] = "";
    vm_model *m = load(path, err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    vm_info I;
    vm_model_info(m, &I);
    float *in = malloc(3 * 32 * 32 * sizeof *in);
    for (int i = 0; i < 3 * 32 * 32; i++) in[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    *n = I.num_classes;
    float *out = malloc((size_t)*n * sizeof *out);
    ck_assert_msg(vm_forward(m, in, 1, 32, 32, out) == 0, "%s", vm_model_error(m));
    free(in);
    vm_model_free(m);
    return out;
}

/* #16.1: INT8 weights honour the tensor's offset and strides (a
 * column-major fc1 and a head at storage offset 13 give the same logits
 * as the contiguous file; before, the strided one was refused or loaded
 * transposed), and a short int8 storage last in the archive is an error
 * (before, N*K bytes were copied from past the end of the file). */
START_TEST(int8_layout) {
    int n1, n2;
    float *a = logits(tdata("hostile/int8_ref.pth"), &n1);
    float *b = logits(tdata("hostile/int8_strided.pth"), &n2);
    ck_assert_int_eq(n1, 10);
    ck_assert_int_eq(n1, n2);
    ck_assert_msg(memcmp(a, b, (size_t)n1 * sizeof *a) == 0, "strided INT8 weights give other logits");
    free(a);
    free(b);
    expect_load_error(tdata("hostile/int8_short.pth"), "classifier.head.weight");
    expect_load_error(tdata("hostile/int8_short.pth"), "bytes");
}
END_TEST

/* #16.2: broadcast (stride-0) tensors may not make the loader allocate
 * more than the file holds: a 34 KB file with a 10-million-class head
 * (before: 360 MB allocated; under this 1 GiB limit with a larger model,
 * an abort). */
static void broadcast_child(void) {
    expect_load_error(tdata("hostile/broadcast.pth"), "broadcast");
    /* 36 blocks whose tensors all view one 300 KB storage: 26 MB of
     * weights from a 373 KB file (before: loaded; deeper, any amount) */
    expect_load_error(tdata("hostile/shared_storage.pth"), "past 8 times the file's size");
}
START_TEST(broadcast_tensors) {
#ifndef UNDER_ASAN
    under_limit(1024, broadcast_child);
#else
    broadcast_child(); /* ASan needs more address space than any limit */
#endif
}
END_TEST

/* #16.7: a class count that does not fit an int is an error naming the
 * tensor (before: loaded as "classes: -1"). */
START_TEST(shape_fits_int) {
    expect_load_error(tdata("hostile/classes_2e32.pth"), "classifier.head.weight");
}
END_TEST

/* #16.7: a safetensors header length past the file is reported as such
 * (before: "not a zip archive nor a safetensors file"). */
START_TEST(safetensors_header_length) {
    uint8_t b[64] = {0};
    uint64_t hn = 1ull << 31;
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(hn >> (8 * i));
    memcpy(b + 8, "{\"a\":{\"dtype\":\"F32\"}}", 21);
    const char *p = tmp_file(b, sizeof b);
    expect_load_error(p, "header length 2147483648 but the file has only 64 bytes");
    unlink(p);
    /* a 17 MB header is refused before jansson spends ~20x that on it */
    size_t n = (17u << 20) + 64;
    uint8_t *big = calloc(n, 1);
    for (int i = 0; i < 8; i++) big[i] = (uint8_t)((uint64_t)(17u << 20) >> (8 * i));
    memset(big + 8, ' ', 17u << 20);
    big[8] = '{';
    p = tmp_file(big, n);
    free(big);
    expect_load_error(p, "is over the 16777216-byte limit");
    unlink(p);
}
END_TEST

/* #16.7: a broken PNG reports libpng's reason (before: every failure said
 * "cannot initialise the PNG decoder"). */
START_TEST(png_messages) {
    size_t n;
    uint8_t *b = tslurp(tdata("png/gray8.png"), &n);
    char err[512] = "";
    vm_image im;
    /* truncated */
    ck_assert(vm_image_decode(b, n / 2, "half.png", &im, err, sizeof err) != 0);
    ck_assert_msg(strstr(err, "half.png: corrupt PNG: ") && !strstr(err, "initialise"), "%s", err);
    /* a flipped bit in IHDR: libpng's CRC error */
    b[20] ^= 0x10;
    ck_assert(vm_image_decode(b, n, "flip.png", &im, err, sizeof err) != 0);
    ck_assert_msg(strstr(err, "flip.png: corrupt PNG: ") && strstr(err, "CRC"), "%s", err);
    free(b);
}
END_TEST

/* #16.11: a flipped bit anywhere in data.pkl or in a tensor's bytes is
 * caught by the zip CRC-32 (before: flips in tensor data loaded silently,
 * 103 of 300 random flips loaded). */
START_TEST(zip_crc) {
    size_t n;
    uint8_t *b = tslurp(tdata("hostile/tiny.pth"), &n);
    vm_zip z;
    char err[1024];
    ck_assert_msg(vm_zip_open(&z, b, n, "tiny.pth", err, sizeof err) == 0, "%s", err);
    int tried = 0;
    for (size_t i = 0; i < z.n; i++) {
        const vm_zip_entry *e = &z.entries[i];
        if (!e->size || (!strstr(e->name, "/data/") && !strstr(e->name, "data.pkl"))) continue;
        /* three flips per entry: first, middle and last byte */
        size_t at[3] = {0, e->size / 2, e->size - 1};
        for (int k = 0; k < 3; k++) {
            size_t off = (size_t)(e->data - b) + at[k];
            b[off] ^= (uint8_t)(1u << (k + i) % 8);
            const char *p = tmp_file(b, n);
            expect_load_error(p, "CRC");
            unlink(p);
            b[off] ^= (uint8_t)(1u << (k + i) % 8);
            tried++;
        }
    }
    ck_assert_int_gt(tried, 300);
    vm_zip_close(&z);
    /* the unflipped bytes still load */
    const char *p = tmp_file(b, n);
    vm_model *m = load(p, err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    vm_model_free(m);
    unlink(p);
    free(b);
}
END_TEST


static size_t rss_kb(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &res) != 2) res = 0;
        fclose(f);
    }
    return (size_t)res * (size_t)sysconf(_SC_PAGESIZE) / 1024;
}

/* #16.10: the pickle machine's memory is a small multiple of the pickle:
 * 4 MB of EMPTY_TUPLE opcodes is refused within 32x (+1 MiB) of counted
 * memory (before: ~190x, 760 MB of RSS, then "holds a tuple"). The child's
 * peak RSS growth is checked (not under ASan, whose allocator adds its own
 * per-block overhead and quarantine). */
START_TEST(pickle_memory_bound) {
    const size_t n = 4u << 20;
    uint8_t *pk = malloc(n + 3);
    pk[0] = 0x80;
    pk[1] = 2;
    memset(pk + 2, ')', n);
    pk[n + 2] = '.';
    fflush(NULL);
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        size_t before = rss_kb();
        pk_state *st;
        pk_obj *root;
        char err[512] = "";
        int rc = pk_load(pk, n + 3, "tuples.pkl", &st, &root, err, sizeof err);
        pk_free(st);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        size_t grew_mb = ((size_t)ru.ru_maxrss - before) / 1024;
        fprintf(stderr, "  pickle of %zu MB: rc %d, peak RSS +%zu MB: %s\n", n >> 20, rc, grew_mb, err);
        if (rc == 0 || !strstr(err, "tuples.pkl: pickle needs more than")) _exit(1);
#ifndef UNDER_ASAN
        if (grew_mb > 40 * (n >> 20)) _exit(2);
#endif
        _exit(0);
    }
    int stt;
    ck_assert(waitpid(pid, &stt, 0) == pid);
    ck_assert_msg(WIFEXITED(stt) && WEXITSTATUS(stt) == 0, "child status %d (1: not refused, 2: RSS above 40x)", stt);
    /* and the real checkpoints still load (13-16x) */
    char err[512];
    vm_model *m = load(tdata("v2_s1/model.pth"), err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    vm_model_free(m);
    free(pk);
}
END_TEST

/* A w x h 1-bit grayscale PNG, all black, built with zlib (a 65500x1 one
 * is 89 bytes). */
static uint8_t *make_png(uint32_t w, uint32_t h, size_t *len) {
    size_t row = 1 + (w + 7) / 8, raw_n = row * h;
    uint8_t *raw = calloc(raw_n, 1);
    uLongf zn = compressBound((uLong)raw_n);
    uint8_t *z = malloc(zn);
    ck_assert(compress2(z, &zn, raw, (uLong)raw_n, 9) == Z_OK);
    free(raw);
    uint8_t *b = malloc(zn + 64), *p = b;
    memcpy(p, "\x89PNG\r\n\x1a\n", 8);
    p += 8;
#define BE32(v) (*p++ = (uint8_t)((v) >> 24), *p++ = (uint8_t)((v) >> 16), *p++ = (uint8_t)((v) >> 8), *p++ = (uint8_t)(v))
    uint8_t ihdr[13] = {(uint8_t)(w >> 24), (uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w,
                        (uint8_t)(h >> 24), (uint8_t)(h >> 16), (uint8_t)(h >> 8), (uint8_t)h, 1, 0, 0, 0, 0};
    const struct { const char *type; const uint8_t *d; uint32_t n; } chunks[3] = {
        {"IHDR", ihdr, 13}, {"IDAT", z, (uint32_t)zn}, {"IEND", NULL, 0}};
    for (int i = 0; i < 3; i++) {
        BE32(chunks[i].n);
        uint8_t *crc_from = p;
        memcpy(p, chunks[i].type, 4);
        p += 4;
        if (chunks[i].n) memcpy(p, chunks[i].d, chunks[i].n);
        p += chunks[i].n;
        uint32_t crc = (uint32_t)crc32(0L, crc_from, (uInt)(p - crc_from));
        BE32(crc);
    }
#undef BE32
    free(z);
    *len = (size_t)(p - b);
    return b;
}

/* #16.4: the resized window is bit for bit the same part of the whole
 * resize, for up- and downsampling, odd sizes and one-pass cases. */
START_TEST(resize_window_exact) {
    vm_image in = {37, 23, malloc(37 * 23 * 3)};
    for (int i = 0; i < 37 * 23 * 3; i++) in.rgb[i] = (uint8_t)((i * 7919u) >> 3);
    static const int sizes[][2] = {{37, 23}, {37, 50}, {80, 23}, {13, 9}, {101, 7}, {5, 64}, {1, 1}, {200, 150}};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        int W = sizes[k][0], H = sizes[k][1];
        vm_image full, win;
        ck_assert(vm_resize_bicubic(&in, &full, W, H) == 0);
        for (int t = 0; t < 20; t++) {
            int x0 = (t * 17) % W, y0 = (t * 11) % H;
            int cw = 1 + (t * 13) % (W - x0), ch = 1 + (t * 5) % (H - y0);
            ck_assert(vm_resize_bicubic_window(&in, W, H, x0, y0, cw, ch, &win) == 0);
            for (int y = 0; y < ch; y++)
                ck_assert_msg(memcmp(win.rgb + (size_t)y * cw * 3, full.rgb + ((size_t)(y + y0) * W + x0) * 3, (size_t)cw * 3) == 0,
                              "%dx%d window (%d,%d)+%dx%d row %d differs", W, H, x0, y0, cw, ch, y);
            vm_image_free(&win);
        }
        vm_image_free(&full);
    }
    vm_image_free(&in);
}
END_TEST

static char wide_png[64], big_png[64];

static void wide_child(void) {
    vm_preprocess_opts o;
    vm_preprocess_defaults(&o);
    float *t = malloc(3 * 224 * 224 * sizeof *t);
    char err[512] = "";
    /* the official 224 crop of a 65500x1 image: a 16768000x256 resize */
    if (vm_preprocess_file(wide_png, &o, t, err, sizeof err) != 0) { fprintf(stderr, "%s\n", err); _exit(3); }
    /* black in, so every value is (0 - mean) / std */
    for (int i = 0; i < 3 * 224 * 224; i++)
        if (t[i] != (0.0f - o.mean[i / (224 * 224)]) / o.std[i / (224 * 224)]) _exit(4);
    /* crop_pct 0.001 on a small image: a 224000-pixel resize, 224 kept */
    o.crop_pct = 0.001;
    if (vm_preprocess_file(tdata("png/rgb8.png"), &o, t, err, sizeof err) != 0) { fprintf(stderr, "%s\n", err); _exit(5); }
    /* an absurd one is a clear error */
    o.crop_pct = 1e-9;
    if (vm_preprocess_file(wide_png, &o, t, err, sizeof err) == 0 || !strstr(err, "would be resized past")) _exit(6);
    free(t);
}

/* #16.4: memory follows the output, not the input's shape: under a 512 MiB
 * address-space limit on top of what is mapped (before: the 65500x1 PNG allocated the 12.9 GB
 * resized image and aborted). Decoded sizes are bounded like Pillow's
 * decompression-bomb check: a 16384x16384 PNG (before: accepted, 1 GB) is
 * refused before its pixels are allocated. */
START_TEST(extreme_aspect) {
    size_t n;
    uint8_t *b = make_png(65500, 1, &n);
    ck_assert_uint_lt(n, 200);
    snprintf(wide_png, sizeof wide_png, "%s", tmp_file(b, n));
    free(b);
#ifndef UNDER_ASAN
    under_limit(512, wide_child);
#else
    wide_child();
#endif
    unlink(wide_png);
    b = make_png(16384, 16384, &n);
    snprintf(big_png, sizeof big_png, "%s", tmp_file(b, n));
    free(b);
    vm_image im;
    char err[512] = "";
    ck_assert(vm_image_load(big_png, &im, err, sizeof err) != 0);
    ck_assert_msg(strstr(err, "too large"), "%s", err);
    unlink(big_png);
}
END_TEST

/* A forked child that dies of a signal prints where (the address and a
 * backtrace) before it dies: the parent only sees the signal number. Set up
 * before the limit: backtrace() loads libgcc on first use, and the handler
 * runs on its own stack. */
static void crash_report(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    char m[128];
    int n = snprintf(m, sizeof m, "child %d: signal %d at address %p, backtrace:\n", (int)getpid(), sig, si->si_addr);
    if (write(2, m, (size_t)n) < 0) _exit(99);
    void *b[64];
    backtrace_symbols_fd(b, backtrace(b, 64), 2);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void arm_crash_report(void) {
    static char alt[1 << 16];
    stack_t ss = {.ss_sp = alt, .ss_size = sizeof alt};
    sigaltstack(&ss, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = crash_report;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    sigaction(SIGABRT, &sa, NULL);
    void *b[4];
    backtrace(b, 4);
}

static void limit_extra_kb(size_t extra_kb) {
    size_t kb = (vm_mb() << 10) + extra_kb;
    struct rlimit r = {kb << 10, kb << 10};
    if (setrlimit(RLIMIT_AS, &r) != 0) _exit(90);
}

static void limit_extra(size_t extra_mb) {
    size_t mb = vm_mb() + extra_mb;
    struct rlimit r = {mb << 20, mb << 20};
    if (setrlimit(RLIMIT_AS, &r) != 0) _exit(90);
}

/* Run fn(arg) in a child; it must exit 0 and never die of a signal. */
static void in_child(void (*fn)(int), int arg) {
    fflush(NULL);
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        arm_crash_report();
        fn(arg);
        _exit(0);
    }
    int st;
    ck_assert(waitpid(pid, &st, 0) == pid);
    ck_assert_msg(!WIFSIGNALED(st), "arg %d: killed by signal %d (abort on out of memory?)", arg, WTERMSIG(st));
    ck_assert_msg(WEXITSTATUS(st) == 0, "arg %d: the child exited with %d", arg, WEXITSTATUS(st));
}

static int is_oom(const char *err) { return strstr(err, "out of memory") != NULL; }

/* A 86M-parameter preset under 128 MiB more address space. */
static void preset_oom(int arg) {
    (void)arg;
    setenv("VMAMBA_PACK", "0", 1);
    limit_extra(128);
    char err[512] = "";
    vm_model *m = vm_model_from_preset("vmamba-base-s1l20", 1000, 1, err, sizeof err);
    if (m || !is_oom(err) || !strstr(err, "vmamba-base-s1l20")) { fprintf(stderr, "preset: %s\n", err); _exit(1); }
}

/* Loading a checkpoint with the limit at every 32 KiB step up to 1.5 MiB
 * more: each load either works or fails with an error, never aborts. */
static void load_oom(int step) {
    setenv("VMAMBA_PACK", "0", 1);
    limit_extra_kb((size_t)step * 32);
    char err[512] = "";
    vm_model *m = load(tdata("hostile/int8_ref.pth"), err, sizeof err);
    if (!m && !is_oom(err) && !strstr(err, "Cannot allocate memory")) { fprintf(stderr, "load: %s\n", err); _exit(1); }
    vm_model_free(m);
}

static void decode_oom(int arg) {
    (void)arg;
    /* Everything the test itself needs is made before the first limit: the
     * 201 MB output tensor was allocated (unchecked) under the 128 MiB limit
     * and the child died of SIGSEGV in memset where it did not fit (layout
     * dependent: seen in a --with-cuda build and here with a different
     * allocation history). */
    size_t n, n2;
    uint8_t *b = make_png(8000, 8000, &n); /* 64 MB of decoded rows, then 192 MB of RGB */
    uint8_t *b2 = make_png(2000, 2000, &n2);
    const char *p = tmp_file(b2, n2);
    float *t = malloc((size_t)3 * 4096 * 4096 * sizeof *t);
    if (!b || !b2 || !t) _exit(3);
    memset(t, 0, (size_t)3 * 4096 * 4096 * sizeof *t);
    limit_extra(128);
    vm_image im;
    char err[512] = "";
    if (vm_image_decode(b, n, "big.png", &im, err, sizeof err) == 0 || !strstr(err, "memory")) {
        fprintf(stderr, "decode: %s\n", err);
        unlink(p);
        _exit(1);
    }
    /* 1x3x4096x4096 preprocessing of a 2000x2000 image: the output exists,
     * the 4096x4096 resize does not fit in 48 MiB more */
    vm_preprocess_opts o;
    vm_preprocess_defaults(&o);
    o.size = 4096;
    limit_extra(48);
    int rc = vm_preprocess_file(p, &o, t, err, sizeof err);
    unlink(p);
    if (rc == 0 || !is_oom(err)) { fprintf(stderr, "preprocess: %s\n", err); _exit(2); }
}

/* A segmentor or a detector loaded with the limit at `step` 8 KiB steps
 * above what the process has: each load works or fails with an "out of
 * memory" error naming the file, never aborts. The steps reach past the
 * backbone into the heads' allocations (UPerHead weights, palette, class
 * names; the Mask R-CNN heads and the class list). */
static int head_kind; /* 0: segmentor, 1: detector; +2: the full-size preset, steps of 8 MiB */
/* Checkpoints in steps of two pages (was 16 KiB; which limit meets a
 * failing small allocation depends on the heap's layout, so the sweep
 * alone caught the pickle crash in some builds only: the deterministic
 * allocation-failure sweep below is what finds such crashes); the presets
 * in 8 MiB steps. */
static int head_kib(int step) { return step * (head_kind < 2 ? 8 : 8192); }
static void head_load_oom(int step) {
    setenv("VMAMBA_PACK", "0", 1);
    const char *path = head_kind == 0 ? tdata("seg_upernet/model.pth") : head_kind == 1 ? tdata("det_maskrcnn/model.pth")
                       : head_kind == 2 ? "upernet-vmamba-tiny" : "maskrcnn-vmamba-tiny";
    limit_extra_kb((size_t)head_kib(step));
    char err[512] = "";
    int ok;
    if (head_kind & 1) {
        vm_detector *d = head_kind == 1 ? vm_detector_load(path, NULL, err, sizeof err)
                                        : vm_detector_from_preset(path, 1, err, sizeof err);
        ok = d != NULL;
        vm_detector_free(d);
    } else {
        vm_segmentor *sg = head_kind == 0 ? vm_segmentor_load(path, err, sizeof err)
                                          : vm_segmentor_from_preset(path, 1, err, sizeof err);
        ok = sg != NULL;
        vm_segmentor_free(sg);
    }
    if (!ok && !is_oom(err) && !strstr(err, "Cannot allocate memory")) {
        fprintf(stderr, "%s at step %d: %s\n", path, step, err);
        _exit(1);
    }
    _exit(ok ? 3 : 0); /* 3: loaded (the caller stops the sweep there) */
}

static const char *head_what(void) {
    static const char *w[4] = {"segmentor checkpoint", "detector checkpoint", "segmentor preset", "detector preset"};
    return w[head_kind];
}

/* Like in_child, but returns 1 when the child says it loaded (exit 3). */
static int head_child(int step) {
    fflush(NULL);
    pid_t pid = fork();
    ck_assert(pid >= 0);
    if (pid == 0) {
        arm_crash_report();
        head_load_oom(step);
    }
    int st;
    ck_assert(waitpid(pid, &st, 0) == pid);
    ck_assert_msg(!WIFSIGNALED(st), "%s load at +%d KiB: killed by signal %d (abort on out of memory?)", head_what(),
                  head_kib(step), WTERMSIG(st));
    ck_assert_msg(WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 3, "%s load at +%d KiB: the child exited with %d",
                  head_what(), head_kib(step), WEXITSTATUS(st));
    return WEXITSTATUS(st) == 3;
}

/* ---- allocation failure injection ------------------------------------------
 * RLIMIT_AS makes an allocation fail only where the heap happens to need
 * more address space, so which call fails depends on the layout (a sweep
 * passed in one build and crashed in make distcheck's). Here the allocator
 * of this test program (the library is linked into it statically) fails the
 * fi_at-th call made from the program's own code after arming, in a forked
 * child: every allocation of a load is made to fail in turn. Calls from
 * shared libraries (libc internals, libgomp, oneDNN) are not counted. Not
 * under ASan, whose allocator this would bypass. */
#ifndef UNDER_ASAN
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern char __executable_start, etext;
static long fi_at, fi_count;
static int fi_fired, fi_nbt;
static void *fi_bt[32]; /* where the failed allocation was made */
static int fi_fail(void *caller) {
    if (!fi_at || (char *)caller < &__executable_start || (char *)caller >= &etext) return 0;
    if (__atomic_add_fetch(&fi_count, 1, __ATOMIC_RELAXED) != fi_at) return 0;
    fi_fired = 1;
    fi_nbt = backtrace(fi_bt, 32);
    errno = ENOMEM;
    return 1;
}
void *malloc(size_t n) { return fi_fail(__builtin_return_address(0)) ? NULL : __libc_malloc(n); }
void *calloc(size_t a, size_t b) { return fi_fail(__builtin_return_address(0)) ? NULL : __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { return fi_fail(__builtin_return_address(0)) ? NULL : __libc_realloc(p, n); }
void *aligned_alloc(size_t a, size_t n) { return fi_fail(__builtin_return_address(0)) ? NULL : __libc_memalign(a, n); }
int posix_memalign(void **p, size_t a, size_t n) {
    if (fi_fail(__builtin_return_address(0))) return ENOMEM;
    *p = __libc_memalign(a, n);
    return *p ? 0 : ENOMEM;
}
char *strdup(const char *str) {
    if (fi_fail(__builtin_return_address(0))) return NULL;
    size_t n = strlen(str) + 1;
    char *d = __libc_malloc(n);
    if (d) memcpy(d, str, n);
    return d;
}

/* Child: load kind k (0 segmentor checkpoint, 1 detector checkpoint, 2 and 3
 * the tiny checkpoint as a plain model) with the n-th allocation failing.
 * Exit 0: it failed with an out-of-memory error naming the file; 3: the load
 * made fewer than n allocations (the sweep is over); 4: an allocation failed
 * and the load still succeeded (a failure was swallowed). */
static void fi_child(int k, long n) {
    arm_crash_report();
    setenv("VMAMBA_PACK", "0", 1);
    const char *path = k == 0 ? tdata("seg_upernet/model.pth") : k == 1 ? tdata("det_maskrcnn/model.pth")
                                                                   : tdata("hostile/int8_ref.pth");
    char err[512] = "";
    int ok;
    fi_count = 0;
    fi_at = n;
    if (k == 0) {
        vm_segmentor *sg = vm_segmentor_load(path, err, sizeof err);
        ok = sg != NULL;
        vm_segmentor_free(sg);
    } else if (k == 1) {
        vm_detector *d = vm_detector_load(path, NULL, err, sizeof err);
        ok = d != NULL;
        vm_detector_free(d);
    } else {
        vm_model *m = load(path, err, sizeof err);
        ok = m != NULL;
        vm_model_free(m);
    }
    fi_at = 0;
    if (!fi_fired) _exit(3);
    if (ok) {
        fprintf(stderr, "allocation %ld failed, the load succeeded; the allocation:\n", n);
        backtrace_symbols_fd(fi_bt, fi_nbt, 2);
        _exit(4);
    }
    if (!strstr(err, "memory") || !strstr(err, path)) {
        fprintf(stderr, "allocation %ld failing: %s\n", n, err);
        _exit(1);
    }
    _exit(0);
}

/* Child: a detection of flower_crop.png (decode, resize, backbone, heads,
 * paste) with the n-th allocation of the second run failing (the first
 * run plans the context). Exit codes as fi_child; the error must say what
 * ran out, not "failed (out of memory or oneDNN)". */
static vm_detector *fi_d; /* loaded and run once by the parent: the children inherit them */
static vm_ctx *fi_c;
static void fi_detect_child(long n) {
    arm_crash_report();
    /* one thread: a forked child cannot use the parent's OpenMP pool (libgomp
     * waits forever for its threads, which fork did not copy) */
    omp_set_num_threads(1);
    vm_ctx *c = fi_c;
    char png[1024];
    snprintf(png, sizeof png, "%s", tdata("det_maskrcnn/flower_crop.png"));
    fi_count = 0;
    fi_at = n;
    vm_detections *r = vm_ctx_detect_file(c, fi_d, png, NULL);
    fi_at = 0;
    if (!fi_fired) _exit(3);
    if (r) {
        fprintf(stderr, "allocation %ld failed, the detection succeeded; the allocation:\n", n);
        backtrace_symbols_fd(fi_bt, fi_nbt, 2);
        _exit(4);
    }
    const char *e = vm_ctx_error(c);
    if (!strstr(e, "memory") || strstr(e, "out of memory or")) {
        fprintf(stderr, "detection with allocation %ld failing: %s\n", n, e);
        _exit(1);
    }
    _exit(0);
}

/* Fails every stride-th allocation of the load in turn (VMAMBA_FI_STRIDE,
 * default 11: ~3100 forked loads, ~20 s on 2 idle cores; .ci/run uses 1,
 * every allocation). */
static void fi_sweep(int k, long stride) {
    static const char *what[4] = {"segmentor checkpoint", "detector checkpoint", "int8 checkpoint", "detection"};
    long n = 1, swallowed = 0, first = 0;
    int threads = omp_get_max_threads();
    if (k == 3) {
        omp_set_num_threads(1); /* no OpenMP pool before the forks (see fi_detect_child) */
        char err[512] = "";
        fi_d = vm_detector_load(tdata("det_maskrcnn/model.pth"), NULL, err, sizeof err);
        ck_assert_msg(fi_d != NULL, "%s", err);
        fi_c = vm_ctx_new(vm_detector_model(fi_d), err, sizeof err);
        ck_assert_msg(fi_c != NULL, "%s", err);
        vm_ctx_set_threads(fi_c, 1);
        vm_detections *r = vm_ctx_detect_file(fi_c, fi_d, tdata("det_maskrcnn/flower_crop.png"), NULL);
        ck_assert_msg(r != NULL, "%s", vm_ctx_error(fi_c));
        vm_detections_free(r);
    }
    for (;; n += stride) {
        fflush(NULL);
        pid_t pid = fork();
        ck_assert(pid >= 0);
        if (pid == 0) {
            if (k == 3) fi_detect_child(n);
            fi_child(k, n);
        }
        int st;
        ck_assert(waitpid(pid, &st, 0) == pid);
        ck_assert_msg(!WIFSIGNALED(st), "%s with allocation %ld failing: killed by signal %d", what[k], n, WTERMSIG(st));
        ck_assert_msg(WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 3 || WEXITSTATUS(st) == 4,
                      "%s with allocation %ld failing: the child exited with %d", what[k], n, WEXITSTATUS(st));
        if (WEXITSTATUS(st) == 3) break;
        if (WEXITSTATUS(st) == 4 && !swallowed++) first = n;
    }
    if (k == 3) {
        vm_ctx_free(fi_c);
        vm_detector_free(fi_d);
    }
    omp_set_num_threads(threads);
    ck_assert_msg(swallowed == 0, "%s: %ld failed allocations were ignored and it succeeded (the first: allocation %ld)",
                  what[k], swallowed, first);
    fprintf(stderr, "  %s: %ld allocations, each failing gives an out-of-memory error\n", what[k], n - 1);
}
#endif

/* #16.3, the crash behind the RLIMIT_AS sweep's SIGSEGV: every allocation
 * made while loading the segmentor and detector checkpoints (and an INT8
 * model) fails in turn; each load must fail with an error naming the file,
 * never crash and never succeed on a swallowed failure. Before: the pickle
 * interpreter doubled a container's capacity before allocating, so after a
 * failed allocation (or on the placeholder object handed out after one) the
 * next push wrote through NULL: SIGSEGV at 246 of the segmentor's 17529
 * allocations; and class names/palettes read after an out-of-memory
 * failure were silently dropped (8249 swallowed failures). */
START_TEST(every_allocation_fails_cleanly) {
#ifdef UNDER_ASAN
    fprintf(stderr, "  every_allocation_fails_cleanly: not run under ASan (it replaces the allocator)\n");
#else
    const char *e = getenv("VMAMBA_FI_STRIDE");
    /* under qemu-user a forked load takes ~50x longer: a sample there */
    long stride = e && atol(e) > 0 ? atol(e) : getenv("VMAMBA_RUNNER") && *getenv("VMAMBA_RUNNER") ? 211 : 11;
    /* (a detection per child is too slow under qemu-user: the loads only) */
    int emulated = getenv("VMAMBA_RUNNER") && *getenv("VMAMBA_RUNNER");
    for (int k = 0; k < (emulated ? 3 : 4); k++) fi_sweep(k, stride);
    if (emulated) fprintf(stderr, "  every_allocation_fails_cleanly: detection part not run under an emulator (too slow)\n");
#endif
}
END_TEST

/* #16.3 for the dense heads: vm_segmentor_load / vm_detector_load of the
 * golden checkpoints (8 KiB steps) and the full-size presets
 * upernet-vmamba-tiny / maskrcnn-vmamba-tiny (8 MiB steps: their heads
 * take 10s of MB, so some limits fail inside the head allocations) under
 * every address-space limit from 0 up to the first one that loads.
 * Before: the UPerHead, segmentor, detector, dataset-meta and random-head
 * allocations went through the aborting vm_x* wrappers (the presets died
 * of SIGABRT). */
START_TEST(head_load_out_of_memory) {
    if (getenv("VMAMBA_RUNNER") && *getenv("VMAMBA_RUNNER")) {
        /* qemu-user: RLIMIT_AS bounds the emulator's own reservations, not the target's heap */
        fprintf(stderr, "  head_load_out_of_memory: not run under an emulator (RLIMIT_AS)\n");
        return;
    }
#ifdef UNDER_ASAN
    fprintf(stderr, "  head_load_out_of_memory: not run under ASan (RLIMIT_AS)\n");
#else
    for (head_kind = 0; head_kind < 4; head_kind++) {
        int step = 0, loaded = 0;
        for (; step <= 4096 && !loaded; step++) loaded = head_child(step);
        ck_assert_msg(loaded, "%s never loaded", head_what());
        fprintf(stderr, "  %s: loads from +%d KiB, out-of-memory errors below\n", head_what(), head_kib(step - 1));
    }
#endif
}
END_TEST

/* #16.3: out of memory is an error, never an abort, in model loads (a
 * preset, and a checkpoint at every limit from 0 to 1.5 MiB more), image
 * decoding and preprocessing. Before: vm_x* allocators abort()ed (SIGABRT
 * in every case). Not under ASan (its allocator reserves terabytes of
 * address space, so RLIMIT_AS cannot be used). */
START_TEST(out_of_memory_is_an_error) {
    if (getenv("VMAMBA_RUNNER") && *getenv("VMAMBA_RUNNER")) {
        /* qemu-user: RLIMIT_AS bounds the emulator's own reservations, not the target's heap */
        fprintf(stderr, "  out_of_memory_is_an_error: not run under an emulator (RLIMIT_AS)\n");
        return;
    }
#ifdef UNDER_ASAN
    fprintf(stderr, "  out_of_memory_is_an_error: not run under ASan (RLIMIT_AS)\n");
#else
    in_child(preset_oom, 0);
    for (int step = 0; step <= 48; step++) in_child(load_oom, step);
    in_child(decode_oom, 0);
#endif
}
END_TEST

/* Leftover of #16: NULL arguments are errors, not crashes. Before:
 * vm_model_save(NULL, ...) and vm_model_metadata(NULL) dereferenced NULL. */
START_TEST(null_model_arguments) {
    ck_assert_int_eq(vm_model_save(NULL, "/tmp/vmharden_never.safetensors", NULL, NULL), -1);
    ck_assert(access("/tmp/vmharden_never.safetensors", F_OK) != 0);
    ck_assert_str_eq(vm_model_error(NULL), "no model");
    ck_assert(vm_model_metadata(NULL) == NULL);
    char err[256] = "";
    vm_model *m = vm_model_from_preset("vmamba-tiny-s1l8", 10, 1, err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    ck_assert_int_eq(vm_model_save(m, NULL, NULL, NULL), -1);
    ck_assert_msg(strstr(vm_model_error(m), "no output path"), "%s", vm_model_error(m));
    vm_model_free(m);
}
END_TEST

/* Device names: "cuda:N" picks GPU N; a malformed name, a GPU that does
 * not exist, or a build/machine without CUDA is an error naming the
 * problem, and the model stays where it was (still runs on the CPU). */
START_TEST(device_names) {
    char err[256];
    vm_model *m = load(tdata("digits/model.pth"), err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    const char *bad[] = {"gpu", "cuda:", "cuda:x", "cuda:-1", "cuda:1x", "cuda0", "CUDA", "cuda:12345", "cpu:0"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_int_eq(vm_model_set_device(m, bad[i], VM_PRECISION_FP32), -1);
        ck_assert_msg(strstr(vm_model_error(m), "expected cpu, cuda or cuda:N") != NULL, "%s: %s", bad[i],
                      vm_model_error(m));
        ck_assert_str_eq(vm_model_device(m), "cpu");
    }
    int n = vm_cuda_devices();
    char name[32];
    snprintf(name, sizeof name, "cuda:%d", n); /* one past the last GPU */
    ck_assert_int_eq(vm_model_set_device(m, name, VM_PRECISION_FP32), -1);
    const char *e = vm_model_error(m);
    if (n > 0) {
        char want[64];
        snprintf(want, sizeof want, "CUDA device %d does not exist", n);
        ck_assert_msg(strstr(e, want) != NULL, "%s", e);
    } else {
        ck_assert_msg(strstr(e, "no CUDA backend") || strstr(e, "no CUDA device found"), "%s", e);
        ck_assert_int_eq(vm_model_set_device(m, "cuda:0", VM_PRECISION_FP32), -1);
        ck_assert_int_eq(vm_model_set_device(m, "cuda", VM_PRECISION_FP32), -1);
    }
    ck_assert_str_eq(vm_model_device(m), "cpu");
    /* still runs on the CPU */
    float in[3 * 32 * 32] = {0}, logits[10];
    ck_assert_msg(vm_forward(m, in, 1, 32, 32, logits) == 0, "%s", vm_model_error(m));
    ck_assert_int_eq(vm_model_set_device(m, "cpu", VM_PRECISION_FP32), 0);

    /* The same names per context (vm_ctx_set_device): malformed is
     * VM_ERR_INPUT, a GPU that is not there VM_ERR_UNSUPPORTED, and the
     * context stays on the CPU and runs. (The GPU side: test_ctx_device.) */
    vm_ctx *c = vm_ctx_new(m, err, sizeof err);
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_str_eq(vm_ctx_device(c), "cpu");
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ck_assert_int_eq(vm_ctx_set_device(c, bad[i]), VM_ERR_INPUT);
        ck_assert_int_eq(vm_ctx_error_code(c), VM_ERR_INPUT);
        ck_assert_msg(strstr(vm_ctx_error(c), "expected cpu, cuda or cuda:N") != NULL, "%s: %s", bad[i], vm_ctx_error(c));
        ck_assert_str_eq(vm_ctx_device(c), "cpu");
    }
    ck_assert_int_eq(vm_ctx_set_device(c, name), VM_ERR_UNSUPPORTED);
    if (n > 0) {
        char want[64];
        snprintf(want, sizeof want, "CUDA device %d does not exist", n);
        ck_assert_msg(strstr(vm_ctx_error(c), want) != NULL, "%s", vm_ctx_error(c));
    } else {
        ck_assert_msg(strstr(vm_ctx_error(c), "no CUDA backend") || strstr(vm_ctx_error(c), "no CUDA device found"), "%s",
                      vm_ctx_error(c));
        ck_assert_int_eq(vm_ctx_set_device(c, "cuda:0"), VM_ERR_UNSUPPORTED);
        ck_assert_int_eq(vm_ctx_set_device(c, "cuda"), VM_ERR_UNSUPPORTED);
    }
    ck_assert_str_eq(vm_ctx_device(c), "cpu");
    ck_assert_int_eq(vm_ctx_set_device(c, "cpu"), 0);
    ck_assert_int_eq(vm_ctx_set_device(c, NULL), 0); /* follow the model */
    ck_assert_int_eq(vm_ctx_set_device(NULL, "cpu"), VM_ERR_INPUT);
    ck_assert_msg(vm_ctx_forward(c, in, 1, 32, 32, logits) == 0, "%s", vm_ctx_error(c));
    vm_ctx_free(c);
    vm_model_free(m);
}
END_TEST

Suite *suite_harden(void) {
    Suite *s = suite_create("harden");
    TCase *tc = tcase_create("harden");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, int8_layout);
    tcase_add_test(tc, broadcast_tensors);
    tcase_add_test(tc, shape_fits_int);
    tcase_add_test(tc, safetensors_header_length);
    tcase_add_test(tc, png_messages);
    tcase_add_test(tc, zip_crc);
    tcase_add_test(tc, pickle_memory_bound);
    tcase_add_test(tc, resize_window_exact);
    tcase_add_test(tc, extreme_aspect);
    tcase_add_test(tc, null_model_arguments);
    tcase_add_test(tc, device_names);
    suite_add_tcase(s, tc);
    /* thousands of forked loads each: minutes on a loaded 2-core machine */
    TCase *oom = tcase_create("oom");
    tcase_set_timeout(oom, 1200);
    tcase_add_test(oom, out_of_memory_is_an_error);
    tcase_add_test(oom, head_load_out_of_memory);
    tcase_add_test(oom, every_allocation_fails_cleanly);
    suite_add_tcase(s, oom);
    return s;
}
