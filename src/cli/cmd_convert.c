/* cmd_convert.c - `vmamba convert MODEL -o OUT.safetensors`: the native
 * format, loaded by mmap without a pickle, carrying its preprocessing
 * defaults and labels in its metadata. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "options.h"

static void help(FILE *f) {
    fprintf(f,
            "Usage: vmamba convert MODEL -o OUT.safetensors [options]\n"
            "\n"
            "Write MODEL's weights as safetensors; run, classify, eval, bench and info\n"
            "accept it like a .pth. Preprocessing defaults and labels (from MODEL.json,\n"
            "MODEL's own metadata, or the options below) go into its metadata.\n"
            "  --dtype D           storage: f32 (default), f16 or bf16\n"
            "  --key K             checkpoint key holding the weights\n"
            "  --labels FILE       class names, one per line\n"
            "%s",
            cli_pp_help());
}

int cmd_convert(int argc, char **argv) {
    const char *model = NULL, *out = NULL, *dtype = "f32", *key = NULL, *labels = NULL;
    cli_pp pp;
    cli_pp_init(&pp);
    int rc = 1;
    vm_model *m = NULL;
    char *meta = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int r = cli_pp_parse(&pp, argc, argv, &i);
        if (r < 0) goto done;
        if (r > 0) continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { help(stdout); rc = 0; goto done; }
        if (!strcmp(a, "-o") || !strcmp(a, "--output") || !strcmp(a, "--dtype") || !strcmp(a, "--key") || !strcmp(a, "--labels")) {
            if (!v) { cli_fail("convert: %s needs a value", a); goto done; }
            i++;
            if (a[1] == 'o' || !strcmp(a, "--output")) out = v;
            else if (!strcmp(a, "--dtype")) dtype = v;
            else if (!strcmp(a, "--key")) key = v;
            else labels = v;
        } else if (a[0] == '-' && a[1]) { cli_fail("convert: unknown option '%s' (try --help)", a); goto done; }
        else if (!model) model = a;
        else { cli_fail("convert: more than one MODEL given"); goto done; }
    }
    if (!model || !out) { help(stderr); cli_fail("convert: MODEL and -o OUT.safetensors are required"); goto done; }
    if (strcmp(dtype, "f32") && strcmp(dtype, "f16") && strcmp(dtype, "bf16")) {
        cli_fail("--dtype: '%s' is not f32, f16 or bf16", dtype);
        goto done;
    }
    if (!(m = cli_load_model(model, key))) goto done;
    if (cli_pp_metadata(&pp, vm_model_metadata(m), model) || cli_pp_sidecar(&pp, model)) goto done;
    if (labels) {
        int n;
        char **l = cli_read_labels(labels, &n);
        if (!l) goto done;
        cli_free_labels(pp.labels, pp.nlabels);
        pp.labels = l;
        pp.nlabels = n;
    }
    meta = cli_pp_to_json(&pp);
    if (vm_model_save(m, out, dtype, meta)) { cli_fail("%s", vm_model_error(m)); goto done; }
    rc = 0;
done:
    free(meta);
    cli_pp_free(&pp);
    vm_model_free(m);
    return rc;
}
