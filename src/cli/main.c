/* main.c - the vmamba command: dispatch to subcommands. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

int cli_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("vmamba: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

int cli_int(const char *opt, const char *val, int lo, int hi, int *out) {
    if (!val) return cli_fail("%s needs a value", opt), -1;
    char *end;
    long v = strtol(val, &end, 10);
    if (*val == 0 || *end != 0 || v < lo || v > hi)
        return cli_fail("%s: '%s' is not an integer in [%d, %d]", opt, val, lo, hi), -1;
    *out = (int)v;
    return 0;
}

vm_model *cli_load_model(const char *spec, const char *key) {
    char err[1024];
    struct stat st;
    vm_model *m;
    if (stat(spec, &st) != 0) {
        for (const char *const *p = vm_preset_names(); *p; p++)
            if (strcmp(*p, spec) == 0) {
                m = vm_model_from_preset(spec, 1000, 0, err, sizeof err);
                if (!m) cli_fail("%s", err);
                return m;
            }
    }
    vm_load_opts o = {.key = key};
    m = vm_model_load(spec, &o, err, sizeof err);
    if (!m) cli_fail("%s", err);
    return m;
}

int cli_dev_parse(cli_dev *d, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    if (strcmp(a, "--device") && strcmp(a, "--precision")) return 0;
    if (*i + 1 >= argc) return cli_fail("%s needs a value", a), -1;
    const char *v = argv[++*i];
    if (!strcmp(a, "--device")) {
        if (strcmp(v, "cpu") && strcmp(v, "cuda")) return cli_fail("--device: '%s' is not cpu or cuda", v), -1;
        d->device = v;
    } else {
        if (strcmp(v, "fp32") && strcmp(v, "tf32") && strcmp(v, "fp16") && strcmp(v, "bf16"))
            return cli_fail("--precision: '%s' is not fp32, tf32, fp16 or bf16", v), -1;
        d->precision = v;
    }
    return 1;
}

int cli_dev_apply(const cli_dev *d, vm_model *m) {
    if (!d->device || !strcmp(d->device, "cpu")) {
        if (d->precision && strcmp(d->precision, "fp32") && strcmp(d->precision, "bf16"))
            return cli_fail("--precision %s needs --device cuda (the CPU does fp32 or bf16)", d->precision), -1;
        if (d->precision && !strcmp(d->precision, "bf16") && vm_model_set_device(m, "cpu", VM_PRECISION_BF16))
            return cli_fail("--precision bf16: %s", vm_model_error(m)), -1;
        return 0;
    }
    vm_precision p = VM_PRECISION_FP32;
    if (d->precision) p = !strcmp(d->precision, "tf32") ? VM_PRECISION_TF32 : !strcmp(d->precision, "fp16") ? VM_PRECISION_FP16
                          : !strcmp(d->precision, "bf16") ? VM_PRECISION_BF16 : VM_PRECISION_FP32;
    if (vm_model_set_device(m, d->device, p)) return cli_fail("--device %s: %s", d->device, vm_model_error(m)), -1;
    return 0;
}

void cli_threads(int n) {
    if (n > 0) vm_set_threads(n);
}

static void usage(FILE *f) {
    fprintf(f,
            "Usage: vmamba <command> [options]\n"
            "\n"
            "VMamba inference on the CPU, from the official .pth checkpoints.\n"
            "\n"
            "Commands:\n"
            "  info       MODEL [--json]                 architecture, parameters, FLOPs\n"
            "  run        -m MODEL -i IN.npy -o OUT.npy  forward a float32 (N,3,H,W) tensor\n"
            "  preprocess IMAGE -o OUT.npy               the model input for one image\n"
            "  classify   -m MODEL IMAGE... | --list F   top-k labels per image (batch jobs)\n"
            "  eval       -m MODEL --images DIR --labels CSV   top-1 / top-5 accuracy\n"
            "  bench      -m MODEL | --arch PRESET       latency, throughput, memory, profile\n"
            "  convert    MODEL -o OUT.safetensors       native format (mmap, metadata, f16/bf16)\n"
            "  calibrate  -m MODEL --images DIR -o OUT   INT8 model from calibration images\n"
            "\n"
            "MODEL is a .pth checkpoint, a .safetensors file from 'convert', or a\n"
            "preset name (random weights, for\n"
            "benchmarks): run 'vmamba info --list-presets'.\n"
            "Run 'vmamba <command> --help' for a command's options.\n"
            "Threads: --threads N, else OMP_NUM_THREADS, else all cores.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("vmamba %s\n", VM_VERSION_STRING);
        return 0;
    }
    if (!strcmp(cmd, "info")) return cmd_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "run")) return cmd_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "preprocess")) return cmd_preprocess(argc - 1, argv + 1);
    if (!strcmp(cmd, "classify")) return cmd_classify(argc - 1, argv + 1);
    if (!strcmp(cmd, "eval")) return cmd_eval(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench")) return cmd_bench(argc - 1, argv + 1);
    if (!strcmp(cmd, "convert")) return cmd_convert(argc - 1, argv + 1);
    if (!strcmp(cmd, "calibrate")) return cmd_calibrate(argc - 1, argv + 1);
    cli_fail("unknown command '%s' (try 'vmamba --help')", cmd);
    return 2;
}
