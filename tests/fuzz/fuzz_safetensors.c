/* fuzz_safetensors.c - libFuzzer harness for the safetensors header (the
 * JSON tensor table and its "__metadata__") and what load.c makes of it.
 * Input: a 2-byte little-endian header length H, H bytes of header, then
 * the tensor data; the harness writes the 8-byte length itself, so the
 * fuzzer spends its mutations on the JSON rather than on the length
 * (which fuzz_checkpoint and fuzz_model mutate). Seeds: tiny models saved
 * by `vmamba convert` (scripts/fuzz.sh makes them). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loaders/checkpoint.h"
#include "vmamba.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    setenv("VMAMBA_PACK", "0", 1);
    setenv("OMP_NUM_THREADS", "1", 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char path[64];
    static int fd = -1;
    if (fd < 0) {
        char tmpl[] = "/tmp/fuzz_st_XXXXXX";
        fd = mkstemp(tmpl);
        if (fd < 0) abort();
        unlink(tmpl);
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (size < 2) return 0;
    size_t h = (size_t)data[0] | ((size_t)data[1] << 8);
    if (h > size - 2) h = size - 2;
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)h >> (8 * i));
    if (ftruncate(fd, 0) != 0 || pwrite(fd, len, 8, 0) != 8 || pwrite(fd, data + 2, size - 2, 8) != (ssize_t)(size - 2))
        abort();
    char err[1024];
    vm_checkpoint c;
    if (vm_checkpoint_open(&c, path, NULL, err, sizeof err) == 0) {
        for (size_t i = 0; i < c.n; i++) {
            const vm_ckpt_tensor *t = &c.t[i];
            int64_t n = vm_ckpt_numel(t);
            if (vm_ckpt_validate(&c, t, err, sizeof err) == 0 && n > 0 && n < (1 << 20)) {
                float *dst = malloc((size_t)n * sizeof *dst);
                vm_ckpt_read_f32(&c, t, dst, err, sizeof err);
                free(dst);
            }
        }
        vm_checkpoint_close(&c);
        vm_load_opts o = {.quiet = 1};
        vm_model *m = vm_model_load(path, &o, err, sizeof err);
        vm_model_free(m);
    }
    return 0;
}
