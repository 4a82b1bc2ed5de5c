/* cli.h - shared pieces of the vmamba command-line tool. */
#ifndef VM_CLI_H
#define VM_CLI_H

#include "vmamba.h"

/* Print "vmamba: <msg>" to stderr; returns 1 (the exit status). */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Parse a positive int option value; on error prints and returns -1. */
int cli_int(const char *opt, const char *val, int lo, int hi, int *out);

/* Load a .pth file, or build a preset by name when no such file exists. */
vm_model *cli_load_model(const char *spec, const char *key);

/* --device cpu|cuda and --precision fp32|tf32|fp16|bf16. */
typedef struct { const char *device, *precision; } cli_dev;
/* If argv[*i] is --device/--precision, consume it; 1 taken, 0 not, -1 error. */
int cli_dev_parse(cli_dev *d, int argc, char **argv, int *i);
/* Move the model to the device; prints the error and returns -1. */
int cli_dev_apply(const cli_dev *d, vm_model *m);
#define CLI_DEV_HELP "  --device D          cpu (default) or cuda (builds with --with-cuda)\n" \
                     "  --precision P       fp32 (default); bf16: linear layers and convolutions in\n" \
                     "                      bf16, FP32 accumulation (CPUs with avx512_bf16 or AMX,\n" \
                     "                      or GPUs); tf32, fp16: GPU GEMMs only\n"

/* Apply --threads (0 = leave OMP_NUM_THREADS / all cores). */
void cli_threads(int n);

int cmd_info(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_preprocess(int argc, char **argv);
int cmd_classify(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_calibrate(int argc, char **argv);

#endif
