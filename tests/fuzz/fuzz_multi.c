/* fuzz_multi.c - every harness in one libFuzzer binary, for long runs on
 * machines without clang (scripts/fuzz.sh multi builds it, renaming each
 * harness's LLVMFuzzerTestOneInput / LLVMFuzzerInitialize to
 * fuzz_NAME_one / fuzz_NAME_init; scripts/fuzz-parallel.sh runs it).
 * FUZZ_HARNESS=checkpoint|model|safetensors|image|resume picks one. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HARNESS(n)                                                        \
    int fuzz_##n##_one(const uint8_t *data, size_t size);                 \
    __attribute__((weak)) int fuzz_##n##_init(int *argc, char ***argv);
HARNESS(checkpoint)
HARNESS(model)
HARNESS(safetensors)
HARNESS(image)
HARNESS(resume)

static const struct {
    const char *name;
    int (*one)(const uint8_t *, size_t);
    int (*init)(int *, char ***);
} harnesses[] = {
#define ENTRY(n) {#n, fuzz_##n##_one, fuzz_##n##_init}
    ENTRY(checkpoint), ENTRY(model), ENTRY(safetensors), ENTRY(image), ENTRY(resume),
};

static int (*chosen)(const uint8_t *, size_t);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const char *h = getenv("FUZZ_HARNESS");
    for (size_t i = 0; h && i < sizeof harnesses / sizeof harnesses[0]; i++)
        if (!strcmp(h, harnesses[i].name)) {
            chosen = harnesses[i].one;
            return harnesses[i].init ? harnesses[i].init(argc, argv) : 0;
        }
    fprintf(stderr, "fuzz_multi: set FUZZ_HARNESS to checkpoint, model, safetensors, image or resume\n");
    exit(2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return chosen(data, size); }
