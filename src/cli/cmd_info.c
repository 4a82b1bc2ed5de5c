/* cmd_info.c - `vmamba info MODEL [--json]`. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "core/dnnl_compat.h"
#include "simd/kernels.h"

static void help(FILE *f) {
    fprintf(f,
            "Usage: vmamba info MODEL [--json] [--verbose] [--key K]\n"
            "       vmamba info --list-presets\n"
            "\n"
            "Print the architecture detected from MODEL (a .pth checkpoint or a\n"
            "preset name): family, stage widths and depths, d_state, ssm ratio,\n"
            "dt rank, MLP, classes, parameters and GFLOPs at 224x224.\n"
            "\n"
            "  --json    one JSON object on stdout\n"
            "  --verbose also list the checkpoint keys that belong to neither\n"
            "            the backbone nor a known head (kept, not used)\n"
            "  --key K   take the weights from top-level key K (default: model,\n"
            "            then state_dict, then a bare state dict)\n");
}

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
    const char *model = NULL, *key = NULL;
    int json = 0, verbose = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { help(stdout); return 0; }
        else if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--verbose") || !strcmp(argv[i], "-v")) verbose = 1;
        else if (!strcmp(argv[i], "--key")) {
            if (++i >= argc) return cli_fail("--key needs a value");
            key = argv[i];
        } else if (!strcmp(argv[i], "--list-presets")) {
            for (const char *const *p = vm_preset_names(); *p; p++) puts(*p);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1]) return cli_fail("info: unknown option '%s' (try --help)", argv[i]);
        else if (!model) model = argv[i];
        else return cli_fail("info: more than one MODEL given ('%s')", argv[i]);
    }
    if (!model) { help(stderr); return 2; }
    vm_model *m = cli_load_model(model, key);
    if (!m) return 1;
    vm_info I;
    vm_model_info(m, &I);
    FILE *f = stdout;
    if (json) {
        fprintf(f, "{\"model\": \"");
        for (const char *c = model; *c; c++) {
            if (*c == '"' || *c == '\\') fputc('\\', f);
            if ((unsigned char)*c >= 0x20) fputc(*c, f);
        }
        fprintf(f, "\", \"family\": \"%s\", \"dims\": [", vm_family_name(I.family));
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
                I.is_backbone ? "true" : "false", (long long)I.params, I.gflops_224, vm_kernels()->name, vm_dnnl_version(),
                vm_cuda_devices(), vm_model_tensor_count(m));
        heads(f, vm_model_heads(m), 1);
        fprintf(f, "]");
        if (verbose) {
            fprintf(f, ", \"unknown_keys\": [");
            for (size_t i = 0; vm_model_unknown_key(m, i); i++) {
                fprintf(f, "%s\"", i ? ", " : "");
                for (const char *c = vm_model_unknown_key(m, i); *c; c++)
                    fprintf(f, *c == '"' || *c == '\\' ? "\\%c" : (unsigned char)*c < 0x20 ? "?" : "%c", *c);
                fprintf(f, "\"");
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
        fprintf(f, "kernels:      %s (oneDNN %s)%s\n", vm_kernels()->name, vm_dnnl_version(),
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
