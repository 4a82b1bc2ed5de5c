/* cmd_info.c - `vmamba info MODEL [--json]`. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "options.h"

static const char usage[] =
    "Usage: vmamba info MODEL [--json] [--verbose] [--key K]\n"
    "       vmamba info --list-presets\n"
    "\n"
    "Print the architecture detected from MODEL (a .pth checkpoint or a\n"
    "preset name): family, stage widths and depths, d_state, ssm ratio,\n"
    "dt rank, MLP, classes, parameters and GFLOPs at 224x224.\n"
    "\n";

/* The heads the checkpoint holds, comma-separated ("none" if none). */
static void heads(FILE *f, unsigned h, int json) {
    static const char *const names[] = {"classifier", "upernet", "auxiliary", "fpn", "rpn", "roi"};
    int n = 0;
    for (int i = 0; i < 6; i++)
        if (h & (1u << i)) fprintf(f, json ? "%s\"%s\"" : "%s%s", n++ ? (json ? ", " : ",") : "", names[i]);
    if (!n && !json) fprintf(f, "none");
}

static void ints(FILE *f, const int *v, int json) {
    for (int i = 0; i < 4; i++) fprintf(f, i ? (json ? ", %d" : ",%d") : "%d", v[i]);
}

int cmd_info(int argc, char **argv) {
    const char *key = NULL, *pos[1];
    int json = 0, list = 0, verbose = 0, npos = 0;
    cli_opt opts[] = {
        {CLI_OPT_FLAG, "--json", 0, &json, NULL, "one JSON object on stdout"},
        {CLI_OPT_FLAG, "--verbose", 0, &verbose, NULL, "also list the checkpoint keys that belong to neither\nthe backbone nor a known head (kept, not used)"},
        {CLI_OPT_STR, "--key", 0, &key, "K", "take the weights from top-level key K (default: model,\nthen state_dict, then a bare state dict)"},
        {CLI_OPT_FLAG, "--list-presets", 0, &list, NULL, "the preset names, one per line"},
        {CLI_OPT_END},
    };
    cli_spec spec = {usage, {opts}, NULL, pos, &npos, 1, "MODEL"};
    int pr = cli_parse(&spec, argc, argv);
    if (pr) return pr < 0 ? 0 : pr;
    if (list) {
        for (const char *const *p = vm_preset_names(); *p; p++) puts(*p);
        return 0;
    }
    if (!npos) return cli_fail("info: MODEL is required (try 'vmamba info --help')"), 2;
    const char *model = pos[0];
    vm_model *m = cli_load_model(model, key);
    if (!m) return 1;
    vm_info I;
    vm_model_info(m, &I);
    FILE *f = stdout;
    if (json) {
        fprintf(f, "{");
        cli_json_path(f, "model", model);
        fprintf(f, ", \"family\": \"%s\", \"dims\": [", vm_family_name(I.family));
        ints(f, I.dims, 1);
        fprintf(f, "], \"depths\": [");
        ints(f, I.depths, 1);
        fprintf(f, "], \"d_inner\": [");
        ints(f, I.d_inner, 1);
        fprintf(f, "], \"dt_rank\": [");
        ints(f, I.dt_rank, 1);
        fprintf(f, "], \"mlp_hidden\": [");
        ints(f, I.mlp_hidden, 1);
        fprintf(f,
                "], \"d_state\": %d, \"ssm_ratio\": %g, \"mlp_ratio\": %g, \"z_gate\": %s, \"conv_bias\": %s, "
                "\"patch_embed_version\": %d, \"downsample_version\": %d, \"patch_size\": %d, \"num_classes\": %d, "
                "\"backbone\": %s, \"params\": %lld, \"gflops_224\": %.3f, \"isa\": \"%s\", \"onednn\": \"%s\", "
                "\"cuda_devices\": %d, \"tensors\": %zu, \"heads\": [",
                I.d_state, I.ssm_ratio, I.mlp_ratio, I.z_gate ? "true" : "false", I.conv_bias ? "true" : "false",
                I.patch_embed_version, I.downsample_version, I.patch_size, I.num_classes,
                I.is_backbone ? "true" : "false", (long long)I.params, I.gflops_224, vm_isa(), vm_onednn_version(),
                vm_cuda_devices(), vm_model_tensor_count(m));
        heads(f, vm_model_heads(m), 1);
        fprintf(f, "]");
        if (verbose) {
            fprintf(f, ", \"unknown_keys\": [");
            for (size_t i = 0; vm_model_unknown_key(m, i); i++) {
                fprintf(f, "%s", i ? ", " : "");
                cli_json_str(f, vm_model_unknown_key(m, i));
            }
            fprintf(f, "]");
        }
        fprintf(f, "}\n");
    } else {
        fprintf(f, "model:        %s\n", model);
        fprintf(f, "family:       %s\n", vm_family_name(I.family));
        fprintf(f, "dims:         "); ints(f, I.dims, 0); fputc('\n', f);
        fprintf(f, "depths:       "); ints(f, I.depths, 0); fputc('\n', f);
        fprintf(f, "d_inner:      "); ints(f, I.d_inner, 0); fputc('\n', f);
        fprintf(f, "dt_rank:      "); ints(f, I.dt_rank, 0); fputc('\n', f);
        fprintf(f, "d_state:      %d\n", I.d_state);
        fprintf(f, "ssm_ratio:    %g\n", I.ssm_ratio);
        fprintf(f, "mlp_ratio:    %g\n", I.mlp_ratio);
        fprintf(f, "z_gate:       %s\n", I.z_gate ? "yes" : "no");
        fprintf(f, "conv_bias:    %s\n", I.conv_bias ? "yes" : "no");
        fprintf(f, "patch_embed:  v%d (stride %d)\n", I.patch_embed_version, I.patch_size);
        fprintf(f, "downsample:   v%d\n", I.downsample_version);
        if (I.num_classes) fprintf(f, "classes:      %d\n", I.num_classes);
        fprintf(f, "backbone:     %s\n", I.is_backbone ? "yes (outnorm0..3)" : "no");
        fprintf(f, "params:       %lld (%.2fM)\n", (long long)I.params, I.params / 1e6);
        fprintf(f, "GFLOPs@224:   %.2f\n", I.gflops_224);
        fprintf(f, "kernels:      %s (oneDNN %s)%s\n", vm_isa(), vm_onednn_version(),
                vm_cuda_devices() > 0 ? ", CUDA available" : "");
        fprintf(f, "heads:        ");
        heads(f, vm_model_heads(m), 0);
        size_t nu = 0;
        while (vm_model_unknown_key(m, nu)) nu++;
        fprintf(f, "\ntensors:      %zu (%zu unknown%s)\n", vm_model_tensor_count(m), nu, nu && !verbose ? ": --verbose lists them" : "");
        for (size_t i = 0; verbose && i < nu; i++) fprintf(f, "  unknown key: %s\n", vm_model_unknown_key(m, i));
    }
    vm_model_free(m);
    return 0;
}
