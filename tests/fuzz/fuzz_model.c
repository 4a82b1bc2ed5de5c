/* fuzz_model.c - libFuzzer harness for loading a whole model from a file's
 * bytes (.pth or .safetensors): zip + CRC, pickle, state-dict indexing,
 * architecture detection and the binding of every parameter in
 * src/model/load.c (INT8 weights with their offsets and strides, broadcast
 * tensors, shapes that do not fit an int, the memory bound). Seeds:
 * tests/data/hostile/ (scripts/fuzz.sh). Built with
 * -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION, which skips the CRC-32
 * comparisons so mutations reach the parsers behind them. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_file.h"
#include "fuzz_json.h"
#include "vmamba.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    setenv("VMAMBA_PACK", "0", 1); /* no oneDNN weight packing: the loader is the target */
    setenv("OMP_NUM_THREADS", "1", 1);
    fuzz_json_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(NULL, 0, data, size);
    char err[1024];
    vm_load_opts o = {.quiet = 1};
    vm_model *m = vm_model_load(path, &o, err, sizeof err);
    if (m) {
        vm_info I;
        vm_model_info(m, &I);
        vm_model_free(m);
    }
    fuzz_json_end();
    return 0;
}
