/* check_cli.c - unit tests of the CLI's machinery: the option parser, the
 * batch-job runner with a task whose input size varies per item, the
 * --resume record reader, JSON strings from non-UTF-8 bytes. Linked
 * against the shared libvmamba: these parts use only include/vmamba.h. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "cli.h"
#include "options.h"

/* ---- option parser ------------------------------------------------------ */

typedef struct {
    int n, flag, quiet, npos;
    double d;
    const char *s, *choice, *pos[4];
    int wh[2];
    cli_shard shard;
} opts_t;

static const char *const colours[] = {"red", "green", "blue", NULL};

static int parse(opts_t *o, int argc, const char **argv) {
    memset(o, 0, sizeof *o);
    o->quiet = -1;
    cli_opt t[] = {
        {CLI_OPT_INT, "--num", 'n', &o->n, "N", "a number", .lo = 1, .hi = 100},
        {CLI_OPT_DOUBLE, "--frac", 0, &o->d, "F", "a fraction", .lo = 0.01, .hi = 1},
        {CLI_OPT_FLAG, "--flag", 0, &o->flag, NULL, "a flag"},
        {CLI_OPT_CONST, "--quiet", 0, &o->quiet, NULL, "quiet", .ival = 0},
        {CLI_OPT_STR, "--name", 's', &o->s, "S", "a string"},
        {CLI_OPT_CHOICE, "--colour", 0, &o->choice, "C", "a colour", .choices = colours},
        {CLI_OPT_WH, "--size", 0, o->wh, "W,H", "a size", .lo = 1, .hi = 4096},
        {CLI_OPT_FN, "--shard", 0, &o->shard, "I/N", "a shard", .fn = cli_opt_shard},
        {CLI_OPT_END},
    };
    cli_spec spec = {"Usage: test\n", {t}, NULL, o->pos, &o->npos, 2, "FILE"};
    FILE *saved = stderr;
    stderr = fopen("/dev/null", "w"); /* the errors are expected */
    int r = cli_parse(&spec, argc, (char **)argv);
    fclose(stderr);
    stderr = saved;
    return r;
}

#define ARGV(...) (const char *[]){"test", __VA_ARGS__}
#define NARGS(...) (int)(sizeof((const char *[]){"test", __VA_ARGS__}) / sizeof(char *))
#define PARSE(o, ...) parse(o, NARGS(__VA_ARGS__), ARGV(__VA_ARGS__))

START_TEST(test_parse_values) {
    opts_t o;
    ck_assert_int_eq(PARSE(&o, "-n", "7", "--frac=0.5", "--flag", "--quiet", "-s", "x", "--colour", "blue", "--size", "640,480",
                           "--shard", "2/5", "a", "--", "-b"),
                     0);
    ck_assert_int_eq(o.n, 7);
    ck_assert(o.d == 0.5);
    ck_assert_int_eq(o.flag, 1);
    ck_assert_int_eq(o.quiet, 0);
    ck_assert_str_eq(o.s, "x");
    ck_assert_str_eq(o.choice, "blue");
    ck_assert_int_eq(o.wh[0], 640);
    ck_assert_int_eq(o.wh[1], 480);
    ck_assert_int_eq(o.shard.i, 2);
    ck_assert_int_eq(o.shard.n, 5);
    ck_assert_int_eq(o.npos, 2);
    ck_assert_str_eq(o.pos[1], "-b");
    ck_assert_int_eq(PARSE(&o, "--size", "32"), 0);
    ck_assert_int_eq(o.wh[0], 32);
    ck_assert_int_eq(o.wh[1], 32);
}
END_TEST

START_TEST(test_parse_errors) {
    opts_t o;
    /* each is a usage error (2), never a silent misparse */
    ck_assert_int_eq(PARSE(&o, "--num", "2junk"), 2);
    ck_assert_int_eq(PARSE(&o, "--num", ""), 2);
    ck_assert_int_eq(PARSE(&o, "--num", " 3"), 2);
    ck_assert_int_eq(PARSE(&o, "--num", "+3"), 2);
    ck_assert_int_eq(PARSE(&o, "--num", "0"), 2);
    ck_assert_int_eq(PARSE(&o, "--num", "101"), 2);
    ck_assert_int_eq(PARSE(&o, "--num", "99999999999999999999999"), 2);
    ck_assert_int_eq(PARSE(&o, "--num"), 2);
    ck_assert_int_eq(PARSE(&o, "--frac", "0.001"), 2);
    ck_assert_int_eq(PARSE(&o, "--frac", "nan"), 2);
    ck_assert_int_eq(PARSE(&o, "--frac", "inf"), 2);
    ck_assert_int_eq(PARSE(&o, "--frac", "0.5x"), 2);
    ck_assert_int_eq(PARSE(&o, "--flag=1"), 2);
    ck_assert_int_eq(PARSE(&o, "--colour", "Red"), 2);
    ck_assert_int_eq(PARSE(&o, "--size", "640,"), 2);
    ck_assert_int_eq(PARSE(&o, "--size", "640x480"), 2);
    ck_assert_int_eq(PARSE(&o, "--size", "0,4"), 2);
    ck_assert_int_eq(PARSE(&o, "--name", ""), 2);
    ck_assert_int_eq(PARSE(&o, "--nam", "x"), 2); /* no prefix matching */
    ck_assert_int_eq(PARSE(&o, "-x"), 2);
    ck_assert_int_eq(PARSE(&o, "-nn"), 2);
    ck_assert_int_eq(PARSE(&o, "a", "b", "c"), 2); /* max_pos = 2 */
    const char *shards[] = {"1/4294967296", "/2", "0/2junk", "1/0", "-1/2", "2/2", "1/", "0x1/2", " 1/2", "1 /2", "1/2/3", "3"};
    for (size_t k = 0; k < sizeof shards / sizeof *shards; k++)
        ck_assert_msg(PARSE(&o, "--shard", shards[k]) == 2, "--shard %s accepted", shards[k]);
}
END_TEST

START_TEST(test_parse_help) {
    opts_t o;
    FILE *saved = stdout;
    stdout = fopen("/dev/null", "w");
    int r = PARSE(&o, "-n", "3", "--help");
    fclose(stdout);
    stdout = saved;
    ck_assert_int_eq(r, -1);
}
END_TEST

/* ---- batch runner ------------------------------------------------------- */

/* A fake task: item k is "k" (its index as the path); its input is an
 * s x s image filled with k, s = 1, 1, 1, 2, 2, 2, 3, 3, 3, 1, ... (runs of
 * equal sizes, smaller than the per-item bound, so packing is exercised);
 * item 4 fails to decode; run sums each item's input; write checks order
 * and values. */
static int size_of(long k) { return (int)(k / 3 % 3) + 1; }
typedef struct {
    long seen[64];
    int nseen, runs, fails, bad;
    float sums[64];
} fake_t;

typedef struct {
    long n, pos;
} fake_src;

static int fake_next(void *vs, char **path, long *index) {
    fake_src *s = vs;
    if (s->pos >= s->n) return 0;
    char b[32];
    snprintf(b, sizeof b, "%ld", s->pos);
    *path = strdup(b);
    *index = s->pos++;
    return 1;
}

static int fake_prepare(void *ctx, cli_item *it, float *in) {
    long k = it->index;
    if (k == 4) {
        snprintf(it->err, sizeof it->err, "%s: cannot decode", it->path);
        return -1;
    }
    int s = size_of(k);
    it->in_w = it->in_h = s;
    it->orig_w = 10 * s;
    it->orig_h = 20 * s;
    for (int i = 0; i < 3 * s * s; i++) in[i] = (float)k;
    return 0;
}

static int fake_run(void *ctx, const cli_item *items, int n, const float *in, int H, int W, float *out) {
    fake_t *f = ctx;
    f->runs++;
    for (int j = 0; j < n; j++) {
        if (items[j].in_w != W || items[j].in_h != H) f->bad++;
        double s = 0;
        for (int i = 0; i < 3 * H * W; i++) s += in[(size_t)j * 3 * H * W + i]; /* contiguous at the run's size */
        out[(size_t)j * 2] = (float)s;
        out[(size_t)j * 2 + 1] = (float)items[j].index;
    }
    return 0;
}

static int fake_write(void *ctx, const cli_item *it, const float *out) {
    fake_t *f = ctx;
    if (f->nseen > 0 && it->index <= f->seen[f->nseen - 1]) f->bad++; /* input order */
    f->seen[f->nseen++] = it->index;
    if (!out) {
        f->fails++;
        return 0;
    }
    int s = size_of(it->index);
    if (out[1] != (float)it->index || out[0] != (float)(3 * s * s * it->index) || it->orig_w != 10 * s) f->bad++;
    return 0;
}

static void run_fake(fake_t *f, long n, int batch, cli_shard shard, const cli_done *done) {
    memset(f, 0, sizeof *f);
    fake_src src = {n, 0};
    cli_task t = {.in_floats = 27, .out_floats = 2, .prepare = fake_prepare, .run = fake_run, .write = fake_write, .ctx = f};
    cli_batch_job job = {.task = &t, .batch = batch, .next = fake_next, .next_ctx = &src, .shard = shard, .done = done};
    long ok, fail;
    double secs;
    ck_assert_int_eq(cli_batch_run(&job, &ok, &fail, &secs), 0);
    ck_assert_int_eq(ok + fail, f->nseen);
    ck_assert_int_eq(fail, f->fails);
}

START_TEST(test_batch_varying_sizes) {
    fake_t f;
    for (int batch = 1; batch <= 7; batch++) {
        run_fake(&f, 20, batch, (cli_shard){0, 1}, NULL);
        ck_assert_int_eq(f.nseen, 20);
        ck_assert_int_eq(f.fails, 1);
        ck_assert_int_eq(f.bad, 0);
        if (batch >= 6) ck_assert_int_lt(f.runs, 19); /* items of one size run together */
    }
}
END_TEST

/* Payload tasks (segment, detect): items of any size live in it->data from
 * prepare (decode thread) through run and write, and release frees every
 * one of them, also those a stopped job drops; skip drops items before
 * prepare. Item 4 fails to decode, items divisible by 5 are "done". */
typedef struct {
    int prepared, released, runs, bad, nseen, fails, stop_at;
    long seen[64];
} pay_t;

static int pay_prepare(void *ctx, cli_item *it, float *in) {
    pay_t *f = ctx;
    if (in) f->bad++;
    if (it->index == 4) return snprintf(it->err, sizeof it->err, "%s: cannot decode", it->path), -1;
    long *p = malloc(2 * sizeof *p); /* ASan: a leak if release is missed */
    p[0] = it->index, p[1] = -1;
    it->data = p;
    __atomic_add_fetch(&f->prepared, 1, __ATOMIC_SEQ_CST);
    return 0;
}

static int pay_run(void *ctx, const cli_item *items, int n, const float *in, int H, int W, float *out) {
    pay_t *f = ctx;
    long *p = items->data;
    if (n != 1 || in || out || !p || p[0] != items->index) f->bad++;
    else p[1] = 10 * p[0];
    f->runs++;
    return 0;
}

static int pay_write(void *ctx, const cli_item *it, const float *out) {
    pay_t *f = ctx;
    const long *p = it->data;
    if (out || (it->ok && (!p || p[1] != 10 * it->index)) || (!it->ok && p)) f->bad++;
    if (f->nseen > 0 && it->index <= f->seen[f->nseen - 1]) f->bad++;
    f->seen[f->nseen++] = it->index;
    f->fails += !it->ok;
    return it->index == f->stop_at ? -1 : 0;
}

static int pay_skip(void *ctx, const cli_item *it) { return it->index % 5 == 0; }

static void pay_release(void *ctx, cli_item *it) {
    pay_t *f = ctx;
    __atomic_add_fetch(&f->released, 1, __ATOMIC_SEQ_CST);
    free(it->data);
}

START_TEST(test_batch_payload) {
    for (int batch = 1; batch <= 3; batch++)
        for (int stop = 0; stop < 2; stop++) {
            pay_t f = {.stop_at = stop ? 7 : -1};
            fake_src src = {20, 0};
            cli_task t = {.in_floats = 0, .prepare = pay_prepare, .run = pay_run, .write = pay_write, .ctx = &f,
                          .skip = pay_skip, .release = pay_release};
            cli_batch_job job = {.task = &t, .batch = batch, .next = fake_next, .next_ctx = &src, .shard = {0, 1}};
            long ok, fail;
            double secs;
            ck_assert_int_eq(cli_batch_run(&job, &ok, &fail, &secs), stop ? -1 : 0);
            ck_assert_int_eq(f.bad, 0);
            ck_assert_int_eq(f.prepared, f.released);
            if (!stop) {
                ck_assert_int_eq(f.nseen, 16); /* 20 less 0, 5, 10, 15 */
                ck_assert_int_eq(f.fails, 1);
                ck_assert_int_eq(ok, 15);
                ck_assert_int_eq(f.runs, 15);
            } else {
                ck_assert_int_eq(f.seen[f.nseen - 1], 7); /* stopped there; what was decoded ahead is freed */
            }
        }
}
END_TEST

START_TEST(test_batch_shard_and_done) {
    fake_t f;
    cli_done d;
    const char recs[] = "{\"index\": 3, \"file\": \"3\"}\n{\"index\": 9, \"file\": \"9\"}\n{\"index\": 15, \"fi";
    ck_assert_int_eq(cli_done_parse(&d, recs, sizeof recs - 1), 0);
    run_fake(&f, 20, 4, (cli_shard){1, 2}, &d); /* odd items, but 3 and 9 are done; 15 is torn: redone */
    ck_assert_int_eq(f.nseen, 8);
    for (int k = 0; k < f.nseen; k++) ck_assert(f.seen[k] % 2 == 1 && f.seen[k] != 3 && f.seen[k] != 9);
    ck_assert_int_eq(f.bad, 0);
    cli_done_free(&d);
}
END_TEST

START_TEST(test_done_parse_bounds) {
    cli_done d;
    const char recs[] = "{\"index\": 1099511627776, \"file\": \"x\"}\n"
                        "{\"index\": 99999999999999999999999, \"file\": \"y\"}\n"
                        "{\"index\": -5, \"file\": \"z\"}\n"
                        "not json\n"
                        "{\"index\": 7, \"file\": \"w\"}\n";
    ck_assert_int_eq(cli_done_parse(&d, recs, sizeof recs - 1), 0);
    ck_assert_int_eq((int)d.n, 2); /* memory follows the records, not the indices */
    ck_assert(cli_done_has(&d, 1099511627776L));
    ck_assert(cli_done_has(&d, 7));
    ck_assert(!cli_done_has(&d, 8));
    cli_done_free(&d);
}
END_TEST

/* ---- JSON strings --------------------------------------------------------- */

static char *json_of(const char *s, int path) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (path) cli_json_path(f, "file", s);
    else cli_json_str(f, s);
    fclose(f);
    return buf;
}

START_TEST(test_json_strings) {
    struct { const char *in, *out; } c[] = {
        {"plain.png", "\"plain.png\""},
        {"a\"b\\c", "\"a\\\"b\\\\c\""},
        {"new\nline\t\x01", "\"new\\nline\\t\\u0001\""},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""}, /* valid UTF-8 kept */
        {"bad\xff\xfe", "\"bad\\ufffd\\ufffd\""},
        {"\xc0\xaf", "\"\\ufffd\\ufffd\""},           /* overlong '/' */
        {"\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""}, /* a surrogate */
        {"\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\""}, /* above U+10FFFF */
        {"trunc\xe2\x82", "\"trunc\\ufffd\\ufffd\""},
    };
    for (size_t k = 0; k < sizeof c / sizeof *c; k++) {
        char *j = json_of(c[k].in, 0);
        ck_assert_str_eq(j, c[k].out);
        free(j);
    }
    char *j = json_of("x\xff.png", 1);
    ck_assert_str_eq(j, "\"file\": \"x\\ufffd.png\", \"file_hex\": \"78ff2e706e67\"");
    free(j);
    j = json_of("ok.png", 1);
    ck_assert_str_eq(j, "\"file\": \"ok.png\"");
    free(j);
}
END_TEST

/* ---- library postprocessing ---------------------------------------------- */

START_TEST(test_softmax_topk) {
    float v[6] = {1, 3, 3, -2, 0.5f, 3};
    double p[6];
    int idx[6];
    ck_assert_int_eq(vm_topk(v, 6, 4, idx), 4);
    ck_assert_int_eq(idx[0], 1); /* ties in index order */
    ck_assert_int_eq(idx[1], 2);
    ck_assert_int_eq(idx[2], 5);
    ck_assert_int_eq(idx[3], 0);
    ck_assert_int_eq(vm_topk(v, 6, 10, idx), 6);
    ck_assert_int_eq(idx[5], 3);
    vm_softmax(v, 6, p);
    double s = 0;
    for (int k = 0; k < 6; k++) s += p[k];
    ck_assert(s > 1 - 1e-6 && s < 1 + 1e-6);
    ck_assert(p[1] == p[2] && p[1] > p[0]);
    float big[2] = {1000, 0}; /* max-subtracted: no overflow */
    vm_softmax(big, 2, p);
    ck_assert(p[0] == 1.0 && p[1] < 1e-300);
    ck_assert_str_eq(vm_version(), VM_VERSION_STRING);
}
END_TEST

int main(void) {
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("cli");
    tcase_add_test(tc, test_parse_values);
    tcase_add_test(tc, test_parse_errors);
    tcase_add_test(tc, test_parse_help);
    tcase_add_test(tc, test_batch_varying_sizes);
    tcase_add_test(tc, test_batch_shard_and_done);
    tcase_add_test(tc, test_batch_payload);
    tcase_add_test(tc, test_done_parse_bounds);
    tcase_add_test(tc, test_json_strings);
    tcase_add_test(tc, test_softmax_topk);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
