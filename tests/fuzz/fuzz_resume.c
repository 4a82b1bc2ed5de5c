/* fuzz_resume.c - libFuzzer harness of the batch jobs' JSON Lines pieces:
 * the --resume record reader (cli_done_parse: any bytes, any index) and
 * the JSON string writer (cli_json_str / cli_json_path: any bytes must give
 * valid UTF-8 JSON with no raw control character). Build and run:
 * scripts/fuzz.sh [seconds] resume (needs clang; links the CLI's files). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cli_done d;
    if (cli_done_parse(&d, (const char *)data, size) == 0) {
        for (size_t k = 1; k < d.n; k++)
            if (d.idx[k - 1] > d.idx[k]) abort(); /* sorted */
        for (size_t k = 0; k < d.n; k++)
            if (d.idx[k] < 0 || !cli_done_has(&d, d.idx[k])) abort();
        cli_done_free(&d);
    }
    /* the bytes as a file name */
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = 0;
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    if (f) {
        cli_json_path(f, "file", s);
        fclose(f);
        if (!cli_utf8_valid(out)) abort();
        for (size_t k = 0; k < len; k++)
            if ((unsigned char)out[k] < 0x20) abort();
        free(out);
    }
    free(s);
    return 0;
}
