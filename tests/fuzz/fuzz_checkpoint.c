/* fuzz_checkpoint.c - libFuzzer harness for the checkpoint parser: zip
 * reader, pickle machine, state-dict indexing and tensor validation.
 * Build and run: scripts/fuzz.sh [seconds] (needs clang). */
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_file.h"
#include "fuzz_json.h"
#include "loaders/checkpoint.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_json_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* vm_checkpoint_open maps a path: an in-memory file (fuzz_file.h). */
    const char *path = fuzz_file(NULL, 0, data, size);
    char err[512];
    vm_checkpoint c;
    if (vm_checkpoint_open(&c, path, NULL, err, sizeof err) == 0) {
        for (size_t i = 0; i < c.n; i++) {
            const vm_ckpt_tensor *t = &c.t[i];
            if (vm_ckpt_validate(&c, t, err, sizeof err) == 0) {
                int64_t n = vm_ckpt_numel(t);
                if (n > 0 && n < (1 << 20)) {
                    float *dst = malloc((size_t)n * sizeof *dst);
                    vm_ckpt_read_f32(&c, t, dst, err, sizeof err);
                    free(dst);
                }
            }
        }
        vm_checkpoint_close(&c);
    }
    fuzz_json_end();
    return 0;
}
