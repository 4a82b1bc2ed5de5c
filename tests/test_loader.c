/* test_loader.c - the checkpoint loader: every feature and error path.
 * Fixtures come from tests/tools/make_fixtures.py; damaged and hostile
 * files are made here, in memory, from the golden checkpoints. */
#define _GNU_SOURCE /* memmem */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "testutil.h"
#include "loaders/checkpoint.h"
#include "loaders/pickle.h"
#include "loaders/safetensors.h"
#include "vmamba.h"

static vm_model *try_load(const char *path, const char *key, char *err, size_t errlen) {
    vm_load_opts o = {.key = key, .quiet = 1};
    return vm_model_load(path, &o, err, errlen);
}

static float *logits_of(const char *path, const char *key, const char *input, size_t *n) {
    char err[512];
    vm_model *m = try_load(path, key, err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    vm_npy in;
    tload(&in, input);
    vm_info I;
    vm_model_info(m, &I);
    *n = (size_t)in.shape[0] * I.num_classes;
    float *out = malloc(*n * sizeof *out);
    ck_assert(vm_forward(m, in.data, (int)in.shape[0], (int)in.shape[2], (int)in.shape[3], out) == 0);
    vm_npy_free(&in);
    vm_model_free(m);
    return out;
}

static void expect_error(const char *path, const char *key, const char *needle) {
    char err[1024] = "";
    vm_model *m = try_load(path, key, err, sizeof err);
    ck_assert_msg(m == NULL, "%s loaded, expected an error with '%s'", path, needle);
    ck_assert_msg(strstr(err, needle) != NULL, "error '%s' lacks '%s'", err, needle);
    ck_assert_msg(strstr(err, path) != NULL, "error '%s' does not name the file", err);
}

static void expect_golden(const char *fixture, const char *key, const char *cfg) {
    size_t n;
    float *got = logits_of(tdata("loader/%s", fixture), key, tdata("%s/input.npy", cfg), &n);
    vm_npy g;
    tload(&g, tdata("%s/logits.npy", cfg));
    ck_assert_int_eq(g.numel, n);
    tclose(fixture, got, g.data, n, 1e-4);
    vm_npy_free(&g);
    free(got);
}

START_TEST(weight_selection) {
    expect_golden("bare.pth", NULL, "v2_s1");                 /* bare state dict */
    expect_golden("ema.pth", "model_ema", "v2_s1");           /* --key model_ema */
    expect_golden("mmseg_classifier.pth", NULL, "v2_s1");     /* state_dict + backbone. stripped */
    expect_golden("strided.pth", NULL, "v2_s1");              /* strides and storage offset */
    expect_golden("legacy_v0.pth", NULL, "v0_ds4");           /* January-2024 key names */
    expect_error(tdata("loader/ema.pth"), "nope", "no key 'nope'");
    expect_error(tdata("loader/bare.pth"), "model", "no key 'model'");
}
END_TEST

/* f16/bf16 storages are converted exactly: same logits, bit for bit, as a
 * float32 checkpoint of the same rounded values. */
START_TEST(half_storages) {
    const char *pairs[2][2] = {{"f16.pth", "f16_as_f32.pth"}, {"bf16.pth", "bf16_as_f32.pth"}};
    for (int i = 0; i < 2; i++) {
        size_t n1, n2;
        float *a = logits_of(tdata("loader/%s", pairs[i][0]), NULL, tdata("v2_s1/input.npy"), &n1);
        float *b = logits_of(tdata("loader/%s", pairs[i][1]), NULL, tdata("v2_s1/input.npy"), &n2);
        ck_assert_int_eq(n1, n2);
        ck_assert_mem_eq(a, b, n1 * sizeof(float));
        free(a);
        free(b);
    }
    ck_assert_float_eq(vm_half_to_float(0x3c00), 1.0f);
    ck_assert_float_eq(vm_half_to_float(0xc000), -2.0f);
    ck_assert_float_eq(vm_half_to_float(0x0001), 5.9604644775390625e-08f); /* smallest subnormal */
    ck_assert_float_eq(vm_bf16_to_float(0x3f80), 1.0f);
}
END_TEST

START_TEST(bad_weights) {
    expect_error(tdata("loader/missing_key.pth"), NULL, "missing key 'layers.2.blocks.1.op.Ds'");
    expect_error(tdata("loader/wrong_shape.pth"), NULL, "'layers.1.blocks.0.mlp.fc2.weight' has shape (32, 100), expected (32, 128)");
    expect_error(tdata("loader/short_storage.pth"), NULL, "storage claims 432 elements but holds 4 bytes");
    expect_error(tdata("loader/deflated.pth"), NULL, "compressed");
}
END_TEST

/* NaN weights load, with a warning naming the tensor on stderr. */
START_TEST(nan_weights_warn) {
    char log[] = "/tmp/vmtest_stderr_XXXXXX";
    int fd = mkstemp(log), saved = dup(2);
    dup2(fd, 2);
    char err[512];
    vm_load_opts o = {0};
    vm_model *m = vm_model_load(tdata("loader/nan.pth"), &o, err, sizeof err);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    ck_assert_msg(m != NULL, "%s", err);
    vm_model_free(m);
    char buf[1024] = "";
    lseek(fd, 0, SEEK_SET);
    ssize_t r = read(fd, buf, sizeof buf - 1);
    close(fd);
    unlink(log);
    ck_assert(r > 0);
    ck_assert_msg(strstr(buf, "warning") && strstr(buf, "layers.3.blocks.0.mlp.fc1.bias") && strstr(buf, "NaN"), "stderr: %s", buf);
}
END_TEST

/* ---- damaged files, made here ---------------------------------------- */


static const char *write_tmp(const void *data, size_t n) {
    static char path[64];
    snprintf(path, sizeof path, "/tmp/vmtest_ckpt_XXXXXX");
    int fd = mkstemp(path);
    ck_assert(fd >= 0);
    ck_assert(write(fd, data, n) == (ssize_t)n);
    close(fd);
    return path;
}

START_TEST(truncated_everywhere) {
    size_t n;
    uint8_t *b = tslurp(tdata("v2_s1/model.pth"), &n);
    /* Every cut must give an error (never a crash): cut at 64 points. */
    for (int i = 0; i < 64; i++) {
        size_t cut = n * (size_t)i / 64;
        const char *p = write_tmp(b, cut);
        char err[512] = "";
        vm_model *m = try_load(p, NULL, err, sizeof err);
        ck_assert_msg(m == NULL, "cut at %zu loaded", cut);
        ck_assert_msg(strstr(err, p) != NULL, "cut %zu: error '%s' does not name the file", cut, err);
        unlink(p);
    }
    const char *p = write_tmp(b, n / 2);
    expect_error(p, NULL, "truncated");
    unlink(p);
    free(b);
}
END_TEST

START_TEST(not_a_checkpoint) {
    const char *p = write_tmp("this is not a checkpoint\n", 25);
    expect_error(p, NULL, "not a zip archive");
    unlink(p);
    p = write_tmp("", 0);
    expect_error(p, NULL, "too short");
    unlink(p);
    expect_error("/nonexistent/model.pth", NULL, "No such file");
    expect_error("/tmp", NULL, "directory");
}
END_TEST

/* A one-entry stored zip holding `pkl` as archive/data.pkl. */
static size_t make_zip(uint8_t *out, const uint8_t *pkl, size_t n) {
    static const char name[] = "archive/data.pkl";
    const size_t nl = sizeof name - 1;
    uint8_t *p = out;
#define W16(v) (*p++ = (uint8_t)((v) & 0xff), *p++ = (uint8_t)(((v) >> 8) & 0xff))
#define W32(v) (W16((v) & 0xffff), W16(((uint32_t)(v) >> 16) & 0xffff))
    const uint32_t crc = (uint32_t)crc32(0L, pkl, (uInt)n); /* checked by the loader */
    W32(0x04034b50u); W16(20); W16(0); W16(0); W16(0); W16(0); W32(crc); W32(n); W32(n); W16(nl); W16(0);
    memcpy(p, name, nl); p += nl;
    memcpy(p, pkl, n); p += n;
    size_t cd = (size_t)(p - out);
    W32(0x02014b50u); W16(20); W16(20); W16(0); W16(0); W16(0); W16(0); W32(crc); W32(n); W32(n); W16(nl); W16(0); W16(0);
    W16(0); W16(0); W32(0); W32(0);
    memcpy(p, name, nl); p += nl;
    size_t cdlen = (size_t)(p - out) - cd;
    W32(0x06054b50u); W16(0); W16(0); W16(1); W16(1); W32(cdlen); W32(cd); W16(0);
    return (size_t)(p - out);
#undef W16
#undef W32
}

static void expect_pickle_error(const void *pkl, size_t n, const char *needle) {
    uint8_t *zip = malloc(n + 256);
    size_t zn = make_zip(zip, pkl, n);
    const char *p = write_tmp(zip, zn);
    expect_error(p, NULL, needle);
    unlink(p);
    free(zip);
}

START_TEST(hostile_pickles) {
    /* os.system("touch /tmp/vmamba_pwned"): must never run. */
    unlink("/tmp/vmamba_pwned");
    static const char sys_pkl[] = "\x80\x02" "cos\nsystem\n" "X\x17\x00\x00\x00touch /tmp/vmamba_pwned" "\x85" "R" ".";
    expect_pickle_error(sys_pkl, sizeof sys_pkl - 1, "not a dict of weights");
    ck_assert_msg(!tfile_exists("/tmp/vmamba_pwned"), "the pickle executed a command");
    /* Unsupported opcode (INST, text-mode protocol 0). */
    static const char inst[] = "\x80\x02(ios\nsystem\n.";
    expect_pickle_error(inst, sizeof inst - 1, "unsupported pickle opcode 0x69");
    /* Memo index far past the pickle: no huge allocation. */
    static const char memo[] = "\x80\x02}r\xff\xff\xff\x7f.";
    expect_pickle_error(memo, sizeof memo - 1, "memo index");
    static const char get[] = "\x80\x02h\x05.";
    expect_pickle_error(get, sizeof get - 1, "memo key 5 not found");
    /* Stack underflow, string past the end, no STOP. */
    static const char under[] = "\x80\x02s.";
    expect_pickle_error(under, sizeof under - 1, "stack underflow");
    static const char longstr[] = "\x80\x02X\xff\xff\xff\x0f" "abc";
    expect_pickle_error(longstr, sizeof longstr - 1, "truncated pickle");
    static const char nostop[] = "\x80\x02}";
    expect_pickle_error(nostop, sizeof nostop - 1, "no STOP");
    /* A tensor whose storage is missing from the archive. */
    static const char tens[] = "\x80\x02}X\x01\x00\x00\x00w" "ctorch._utils\n_rebuild_tensor_v2\n("
                               "(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x04tQ"
                               "K\x00K\x04\x85K\x01\x85\x89}tRs.";
    expect_pickle_error(tens, sizeof tens - 1, "missing key 'patch_embed.0.weight'");
}
END_TEST

/* The pickle machine itself on a well-formed torch-like pickle. */
START_TEST(pickle_basics) {
    static const char pk[] = "\x80\x02}(X\x01\x00\x00\x00" "aK\x07X\x01\x00\x00\x00" "bG\x3f\xf8\x00\x00\x00\x00\x00\x00"
                             "X\x01\x00\x00\x00" "c]q\x00(\x88\x89NeX\x01\x00\x00\x00" "d\x8a\x02\x00\x80u.";
    pk_state *st;
    pk_obj *root;
    char err[256];
    ck_assert_int_eq(pk_load((const uint8_t *)pk, sizeof pk - 1, "t", &st, &root, err, sizeof err), 0);
    ck_assert_int_eq(root->t, PK_DICT);
    ck_assert_int_eq(pk_dict_get(root, "a")->u.i, 7);
    ck_assert(pk_dict_get(root, "b")->u.f == 1.5);
    pk_obj *c = pk_dict_get(root, "c");
    ck_assert_int_eq(c->t, PK_LIST);
    ck_assert_int_eq(c->u.seq.n, 3);
    ck_assert_int_eq(pk_dict_get(root, "d")->u.i, -32768);
    pk_free(st);
}
END_TEST


/* ---- architecture detection and presets ------------------------------ */

/* Expected values are the constructor arguments in each config.json. */
START_TEST(detects_architecture) {
    static const struct {
        const char *cfg;
        vm_family fam;
        int dims0, dims3, d_inner0, d_state, z, conv_bias, pe, ds, mlp0, classes, backbone;
    } want[] = {
        {"v0_ds4", VM_FAMILY_V0, 32, 64, 64, 4, 1, 1, 1, 1, 0, 10, 0},
        {"v0_ds16", VM_FAMILY_V0, 32, 64, 64, 16, 1, 1, 1, 1, 0, 10, 0},
        {"v2_s2", VM_FAMILY_V2, 32, 64, 64, 1, 0, 0, 2, 3, 128, 10, 0},
        {"v2_s1", VM_FAMILY_V2, 32, 64, 32, 1, 0, 0, 2, 3, 128, 10, 0},
        {"v2z_ds16", VM_FAMILY_V2Z, 32, 64, 64, 16, 1, 1, 2, 3, 128, 10, 0},
        {"backbone_v2", VM_FAMILY_V2, 32, 64, 64, 1, 0, 0, 2, 3, 128, 0, 1},
        {"digits", VM_FAMILY_V2, 24, 192, 48, 1, 0, 0, 2, 3, 96, 10, 0},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        char err[512];
        vm_model *m = try_load(tdata("%s/model.pth", want[i].cfg), NULL, err, sizeof err);
        ck_assert_msg(m != NULL, "%s", err);
        vm_info I;
        vm_model_info(m, &I);
        ck_assert_int_eq(I.family, want[i].fam);
        ck_assert_int_eq(I.dims[0], want[i].dims0);
        ck_assert_int_eq(I.dims[1], want[i].dims0 == 24 ? 48 : 32); /* golden widths do not double */
        ck_assert_int_eq(I.dims[3], want[i].dims3);
        ck_assert_int_eq(I.depths[0], 1);
        ck_assert_int_eq(I.depths[2], 2);
        ck_assert_int_eq(I.d_inner[0], want[i].d_inner0);
        ck_assert_int_eq(I.dt_rank[0], (want[i].dims0 + 15) / 16);
        ck_assert_int_eq(I.d_state, want[i].d_state);
        ck_assert_int_eq(I.z_gate, want[i].z);
        ck_assert_int_eq(I.conv_bias, want[i].conv_bias);
        ck_assert_int_eq(I.patch_embed_version, want[i].pe);
        ck_assert_int_eq(I.downsample_version, want[i].ds);
        ck_assert_int_eq(I.mlp_hidden[0], want[i].mlp0);
        ck_assert_int_eq(I.num_classes, want[i].classes);
        ck_assert_int_eq(I.is_backbone, want[i].backbone);
        vm_model_free(m);
    }
}
END_TEST

/* Published parameter counts (1000-class head), within 1%. */
START_TEST(preset_params) {
    static const struct { const char *name; double params_m, gflops; } pub[] = {
        {"vanilla-vmamba-tiny", 23, 5.6}, {"vanilla-vmamba-small", 44, 11.2}, {"vanilla-vmamba-base", 76, 18.0},
        {"vmamba-tiny-s2l5", 31, 4.9},    {"vmamba-small-s2l15", 50, 8.7},    {"vmamba-base-s2l15", 89, 15.4},
        {"vmamba-tiny-s1l8", 30, 4.9},    {"vmamba-small-s1l20", 49, 8.6},    {"vmamba-base-s1l20", 87, 15.2},
    };
    int n = 0;
    for (const char *const *p = vm_preset_names(); *p; p++) n++;
    ck_assert_int_eq(n, 9);
    for (size_t i = 0; i < sizeof pub / sizeof *pub; i++) {
        char err[256];
        vm_model *m = vm_model_from_preset(pub[i].name, 1000, 1, err, sizeof err);
        ck_assert_msg(m != NULL, "%s", err);
        vm_info I;
        vm_model_info(m, &I);
        double rel = fabs(I.params / 1e6 - pub[i].params_m) / pub[i].params_m;
        ck_assert_msg(rel <= 0.01, "%s: %lld params vs published %gM", pub[i].name, (long long)I.params, pub[i].params_m);
        /* FLOPs as published are rounded to 0.1G; ours must agree to 3%. */
        ck_assert_msg(fabs(I.gflops_224 - pub[i].gflops) / pub[i].gflops <= 0.03, "%s: %.2f GFLOPs vs %g",
                      pub[i].name, I.gflops_224, pub[i].gflops);
        vm_model_free(m);
    }
    char err[256];
    ck_assert(vm_model_from_preset("vmamba-huge", 1000, 1, err, sizeof err) == NULL);
    ck_assert(strstr(err, "unknown preset") != NULL);
}
END_TEST

Suite *suite_arch(void) {
    Suite *s = suite_create("arch");
    TCase *tc = tcase_create("arch");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, detects_architecture);
    tcase_add_test(tc, preset_params);
    suite_add_tcase(s, tc);
    return s;
}

/* ---- safetensors ------------------------------------------------------- */

static const char *tmp_path(const char *suffix) {
    static char p[4][64];
    static int k;
    char *s = p[k++ % 4];
    snprintf(s, 64, "/tmp/vmtest_%d_%d%s", (int)getpid(), k, suffix);
    return s;
}

/* Saving and loading gives the same model, bit for bit; f16/bf16 storage
 * equals torch's .half()/.bfloat16() rounding (the loader fixtures). */
START_TEST(safetensors_roundtrip) {
    char err[512];
    vm_model *m = try_load(tdata("v2_s1/model.pth"), NULL, err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    const char *dts[3] = {"f32", "f16", "bf16"};
    const char *twin[3] = {"v2_s1/model.pth", "loader/f16.pth", "loader/bf16.pth"};
    for (int i = 0; i < 3; i++) {
        const char *p = tmp_path(".safetensors");
        ck_assert_msg(vm_model_save(m, p, dts[i], "{\"size\": 64}") == 0, "%s", vm_model_error(m));
        size_t n1, n2;
        float *a = logits_of(p, NULL, tdata("v2_s1/input.npy"), &n1);
        float *b = logits_of(tdata("%s", twin[i]), NULL, tdata("v2_s1/input.npy"), &n2);
        ck_assert_int_eq(n1, n2);
        ck_assert_msg(memcmp(a, b, n1 * sizeof(float)) == 0, "%s storage differs from its torch twin", dts[i]);
        vm_model *r = try_load(p, NULL, err, sizeof err);
        ck_assert_msg(r != NULL, "%s", err);
        ck_assert_str_eq(vm_model_metadata(r), "{\"size\": 64}");
        vm_info A, B;
        vm_model_info(m, &A);
        vm_model_info(r, &B);
        ck_assert_int_eq(A.params, B.params);
        vm_model_free(r);
        /* the same model always gives the same bytes */
        const char *p2 = tmp_path(".safetensors");
        ck_assert(vm_model_save(m, p2, dts[i], "{\"size\": 64}") == 0);
        size_t s1, s2;
        uint8_t *f1 = tslurp(p, &s1), *f2 = tslurp(p2, &s2);
        ck_assert_int_eq(s1, s2);
        ck_assert(memcmp(f1, f2, s1) == 0);
        free(f1); free(f2); free(a); free(b);
        unlink(p);
        unlink(p2);
    }
    ck_assert_int_ne(vm_model_save(m, tmp_path(".st"), "f8", NULL), 0);
    ck_assert(strstr(vm_model_error(m), "unknown storage dtype") != NULL);
    vm_model_free(m);
    ck_assert_uint_eq(vm_float_to_half(1.0f), 0x3c00);
    ck_assert_uint_eq(vm_float_to_half(65520.0f), 0x7c00); /* rounds to inf */
    ck_assert_uint_eq(vm_float_to_bf16(1.00390625f), 0x3f80); /* tie -> even */
}
END_TEST

/* Damaged safetensors files: each gives a clear error naming the file. */
START_TEST(safetensors_errors) {
    char err[512];
    vm_model *m = try_load(tdata("v2_s1/model.pth"), NULL, err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    const char *p = tmp_path(".safetensors");
    ck_assert(vm_model_save(m, p, "f32", NULL) == 0);
    vm_model_free(m);
    size_t n;
    uint8_t *b = tslurp(p, &n);
    uint64_t hn = 0;
    for (int i = 0; i < 8; i++) hn |= (uint64_t)b[i] << (8 * i);
    /* header that is not JSON */
    uint8_t *c = malloc(n);
    memcpy(c, b, n);
    c[9] = '#';
    const char *q = write_tmp(c, n);
    expect_error(q, NULL, "corrupted safetensors header");
    unlink(q);
    /* data truncated: offsets beyond the data */
    q = write_tmp(b, 8 + hn + 100);
    expect_error(q, NULL, "outside the");
    unlink(q);
    /* an offset that no longer matches the byte count */
    memcpy(c, b, n);
    char *hdr = (char *)c + 8, *o = memmem(hdr, hn, "\"data_offsets\":[0,", 18);
    ck_assert(o != NULL);
    o[16] = '4'; /* [0,end] -> [4,end] */
    q = write_tmp(c, n);
    expect_error(q, NULL, "bytes for");
    unlink(q);
    /* dtype the model cannot use */
    memcpy(c, b, n);
    o = memmem(hdr, hn, "\"F32\"", 5);
    memcpy(o, "\"I32\"", 5);
    q = write_tmp(c, n);
    expect_error(q, NULL, "int32");
    unlink(q);
    free(c);
    free(b);
    unlink(p);
}
END_TEST

Suite *suite_loader(void) {
    Suite *s = suite_create("loader");
    TCase *tc = tcase_create("loader");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, weight_selection);
    tcase_add_test(tc, half_storages);
    tcase_add_test(tc, bad_weights);
    tcase_add_test(tc, nan_weights_warn);
    tcase_add_test(tc, truncated_everywhere);
    tcase_add_test(tc, not_a_checkpoint);
    tcase_add_test(tc, hostile_pickles);
    tcase_add_test(tc, pickle_basics);
    tcase_add_test(tc, safetensors_roundtrip);
    tcase_add_test(tc, safetensors_errors);
    suite_add_tcase(s, tc);
    return s;
}
