/* cmd_preprocess.c - `vmamba preprocess IMAGE -o OUT.npy`: the model input
 * tensor (1, 3, size, size) exactly as the official evaluation makes it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "options.h"

static const char usage[] =
    "Usage: vmamba preprocess IMAGE -o OUT.npy [options]\n"
    "\n"
    "Decode IMAGE (JPEG or PNG) and write the float32 (1,3,size,size) model input.\n"
    "\n";

int cmd_preprocess(int argc, char **argv) {
    const char *out = NULL, *model = NULL, *pos[1];
    cli_pp pp;
    cli_pp_init(&pp);
    int rc = 1, npos = 0;
    float *t = NULL;
    cli_opt opts[] = {
        {CLI_OPT_STR, "--output", 'o', &out, "OUT.npy", "the tensor to write"},
        {CLI_OPT_STR, "--model", 'm', &model, "MODEL", "take defaults from MODEL's metadata and sidecar MODEL.json"},
        {CLI_OPT_END},
    };
    cli_opt ppo[7];
    cli_pp_options(&pp, ppo);
    cli_spec spec = {usage, {opts, ppo}, NULL, pos, &npos, 1, "IMAGE"};
    int pr = cli_parse(&spec, argc, argv);
    if (pr) { rc = pr < 0 ? 0 : pr; goto done; }
    if (!npos || !out) { cli_fail("preprocess: IMAGE and -o OUT.npy are required (try 'vmamba preprocess --help')"); rc = 2; goto done; }
    const char *in = pos[0];
    if (model) {
        /* the model file's own metadata, then MODEL.json, then flags */
        vm_model *mm = cli_load_model(model, NULL);
        if (!mm) goto done;
        int bad = cli_pp_metadata(&pp, vm_model_metadata(mm), model) || cli_pp_sidecar(&pp, model);
        vm_model_free(mm);
        if (bad) goto done;
    }
    if (cli_pp_check(&pp, model)) goto done;
    int S = pp.pp.size;
    if (!(t = malloc((size_t)3 * S * S * sizeof *t))) {
        cli_fail("out of memory for a %dx%d input (%.1f MB)", S, S, 12.0 * S * S / 1e6);
        goto done;
    }
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
