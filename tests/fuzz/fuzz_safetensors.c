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

#include "fuzz_file.h"
#include "fuzz_json.h"
#include "loaders/checkpoint.h"
#include "model/model.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    setenv("VMAMBA_PACK", "0", 1);
    setenv("OMP_NUM_THREADS", "1", 1);
    fuzz_json_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    size_t h = (size_t)data[0] | ((size_t)data[1] << 8);
    if (h > size - 2) h = size - 2;
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)h >> (8 * i));
    const char *path = fuzz_file(len, 8, data + 2, size - 2);
    char err[1024];
    vm_checkpoint c;
    if (vm_checkpoint_open(&c, path, NULL, err, sizeof err) != 0) {
        fuzz_json_end();
        return 0;
    }
    /* The model from this one parse of the header (a second parse, as
     * vm_model_load(path) makes, doubled the cost and reached nothing new). */
    vm_load_opts o = {.quiet = 1};
    vm_model *m = vm_model_from_checkpoint(&c, &o, err, sizeof err);
    if (m) vm_model_free(m); /* it has read every float and int8 tensor */
    else /* it stopped early: read every tensor, as fuzz_checkpoint does */
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
    fuzz_json_end();
    return 0;
}
