/* cmd_convert.c - `vmamba convert MODEL -o OUT.safetensors`: the native
 * format, loaded by mmap without a pickle, carrying its preprocessing
 * defaults and labels in its metadata. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "options.h"

static const char usage[] =
    "Usage: vmamba convert MODEL -o OUT.safetensors [options]\n"
    "\n"
    "Write MODEL's weights as safetensors; run, classify, eval, bench and info\n"
    "accept it like a .pth. Preprocessing defaults and labels (from MODEL.json,\n"
    "MODEL's own metadata, or the options below) go into its metadata.\n"
    "\n";

static const char *const dtypes[] = {"f32", "f16", "bf16", NULL};

int cmd_convert(int argc, char **argv) {
    const char *out = NULL, *dtype = "f32", *key = NULL, *labels = NULL, *pos[1];
    cli_pp pp;
    cli_pp_init(&pp);
    int rc = 1, npos = 0;
    vm_model *m = NULL;
    char *meta = NULL;
    cli_opt opts[] = {
        {CLI_OPT_STR, "--output", 'o', &out, "OUT", "the .safetensors file to write (atomically)"},
        {CLI_OPT_CHOICE, "--dtype", 0, &dtype, "D", "storage: f32 (default), f16 or bf16", .choices = dtypes},
        {CLI_OPT_STR, "--key", 0, &key, "K", "checkpoint key holding the weights"},
        {CLI_OPT_STR, "--labels", 0, &labels, "FILE", "class names, one per line"},
        {CLI_OPT_END},
    };
    cli_opt ppo[7];
    cli_pp_options(&pp, ppo);
    cli_spec spec = {usage, {opts, ppo}, NULL, pos, &npos, 1, "MODEL"};
    int pr = cli_parse(&spec, argc, argv);
    if (pr) { rc = pr < 0 ? 0 : pr; goto done; }
    if (!npos || !out) { cli_fail("convert: MODEL and -o OUT.safetensors are required (try 'vmamba convert --help')"); rc = 2; goto done; }
    const char *model = pos[0];
    if (!(m = cli_load_model(model, key))) goto done;
    if (cli_pp_metadata(&pp, vm_model_metadata(m), model) || cli_pp_sidecar(&pp, model) || cli_pp_check(&pp, model)) goto done;
    if (labels) {
        int n;
        char **l = cli_read_labels(labels, &n);
        if (!l) goto done;
        cli_free_labels(pp.labels, pp.nlabels);
        pp.labels = l;
        pp.nlabels = n;
    }
    if (!(meta = cli_pp_to_json(&pp))) { cli_fail("out of memory"); goto done; }
    if (vm_model_save(m, out, dtype, meta)) { cli_fail("%s", vm_model_error(m)); goto done; }
    rc = 0;
done:
    free(meta);
    cli_pp_free(&pp);
    vm_model_free(m);
    return rc;
}
