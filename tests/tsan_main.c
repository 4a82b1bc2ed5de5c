/* tsan_main.c - the shared-model concurrency check as a plain program, for
 * the ThreadSanitizer build of scripts/tsan.sh (no Check, no fork).
 * Usage: tsan_threads DATA_DIR [iterations] */
#include <stdio.h>
#include <stdlib.h>

#include "threads_core.h"

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
    return bad;
}
