/* tsan_main.c - the shared-model concurrency check as a plain program, for
 * the ThreadSanitizer build of scripts/tsan.sh (no Check, no fork).
 * Usage: tsan_threads DATA_DIR [iterations] */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "quant.h"
#include "threads_core.h"

/* Calibrate v2_s1 (every layer INT8, head and convolutions too) on a few
 * deterministic inputs; 0 or -1. */
static int make_int8(const char *data, const char *out) {
    char path[4096], e[512];
    snprintf(path, sizeof path, "%s/v2_s1/model.pth", data);
    vm_model *m = vm_model_load(path, NULL, e, sizeof e);
    if (!m) return fprintf(stderr, "%s\n", e), -1;
    vm_calib_opts co = {VM_CALIB_MINMAX, 99.99, NULL, 0, 1, 1, 0};
    vm_calib *c = vm_calib_begin(m, &co);
    static float x[2 * 3 * 48 * 48];
    for (size_t i = 0; i < sizeof x / sizeof *x; i++) x[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    float logits[2 * 1000];
    int rc = c && vm_forward(m, x, 2, 48, 48, logits) == 0 && vm_calib_write(c, out, NULL, e, sizeof e) == 0 ? 0 : -1;
    if (rc) fprintf(stderr, "calibration: %s %s\n", e, vm_model_error(m));
    vm_calib_free(c);
    vm_model_free(m);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s DATA_DIR [iterations]\n", argv[0]);
        return 2;
    }
    int iters = argc > 2 ? atoi(argv[2]) : 100;
    static const struct { const char *model; int features; } cases[] = {
        {"v2_s1/model.pth", 0}, {"v0_ds4/model.pth", 0}, {"backbone_v2/model.pth", 1}};
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char path[4096], msg[512];
        snprintf(path, sizeof path, "%s/%s", argv[1], cases[i].model);
        /* one OpenMP thread per context: see scripts/tsan.sh */
        int rc = vm_threads_check(path, NULL, cases[i].features, 4, iters, 1, msg, sizeof msg);
        printf("%s: %s%s\n", cases[i].model, rc ? "FAIL: " : "ok", rc ? msg : "");
        bad |= rc != 0;
    }
    char q[64], msg[512];
    snprintf(q, sizeof q, "/tmp/vmamba_tsan_q_%d.safetensors", (int)getpid());
    if (make_int8(argv[1], q)) return 1;
    int rc = vm_threads_check(q, NULL, 0, 4, iters, 1, msg, sizeof msg);
    printf("v2_s1 INT8: %s%s\n", rc ? "FAIL: " : "ok", rc ? msg : "");
    unlink(q);
    return bad || rc;
}
