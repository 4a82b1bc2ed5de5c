/* cmd_preprocess.c - `vmamba preprocess IMAGE -o OUT.npy`: the model input
 * tensor (1, 3, size, size) exactly as the official evaluation makes it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "loaders/npy.h"
#include "options.h"

static void help(FILE *f) {
    fprintf(f,
            "Usage: vmamba preprocess IMAGE -o OUT.npy [options]\n"
            "\n"
            "Decode IMAGE (JPEG or PNG) and write the float32 (1,3,size,size) model input.\n"
            "  -m, --model MODEL   take defaults from MODEL's sidecar MODEL.json\n"
            "%s",
            cli_pp_help());
}

int cmd_preprocess(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *model = NULL;
    cli_pp pp;
    cli_pp_init(&pp);
    int rc = 1;
    float *t = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = cli_pp_parse(&pp, argc, argv, &i);
        if (r < 0) goto done;
        if (r > 0) continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { help(stdout); rc = 0; goto done; }
        if (!strcmp(a, "-o") || !strcmp(a, "--output") || !strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (i + 1 >= argc) { cli_fail("preprocess: %s needs a value", a); goto done; }
            if (a[1] == 'o' || !strcmp(a, "--output")) out = argv[++i];
            else model = argv[++i];
        } else if (a[0] == '-' && a[1]) { cli_fail("preprocess: unknown option '%s' (try --help)", a); goto done; }
        else if (!in) in = a;
        else { cli_fail("preprocess: more than one IMAGE given"); goto done; }
    }
    if (!in || !out) { help(stderr); cli_fail("preprocess: IMAGE and -o OUT.npy are required"); goto done; }
    if (model) {
        /* the model file's own metadata, then MODEL.json, then flags */
        vm_model *mm = cli_load_model(model, NULL);
        if (!mm) goto done;
        int bad = cli_pp_metadata(&pp, vm_model_metadata(mm), model) || cli_pp_sidecar(&pp, model);
        vm_model_free(mm);
        if (bad) goto done;
    }
    int S = pp.pp.size;
    t = malloc((size_t)3 * S * S * sizeof *t);
    if (!t) { cli_fail("preprocess: out of memory (%zu bytes) for a %dx%d input", (size_t)3 * S * S * sizeof *t, S, S); goto done; }
    char err[1024];
    if (vm_preprocess_file(in, &pp.pp, t, err, sizeof err)) { cli_fail("%s", err); goto done; }
    int64_t shape[4] = {1, 3, S, S};
    if (vm_npy_write(out, t, 4, shape, err, sizeof err)) { cli_fail("%s", err); goto done; }
    rc = 0;
done:
    free(t);
    cli_pp_free(&pp);
    return rc;
}
