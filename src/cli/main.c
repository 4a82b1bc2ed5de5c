/* main.c - the vmamba command: dispatch to subcommands. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

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
            "  segment    -m MODEL IMAGE... [-o OUT.png] semantic segmentation (mmseg UPerNet)\n"
            "  detect     -m MODEL IMAGE...              Mask R-CNN boxes, labels, masks\n"
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
    if (!strcmp(cmd, "segment")) return cmd_segment(argc - 1, argv + 1);
    if (!strcmp(cmd, "detect")) return cmd_detect(argc - 1, argv + 1);
    cli_fail("unknown command '%s' (try 'vmamba --help')", cmd);
    return 2;
}
