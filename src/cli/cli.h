/* cli.h - shared pieces of the vmamba command-line tool. */
#ifndef VM_CLI_H
#define VM_CLI_H

#include <stdio.h>

#include "vmamba.h"

/* Print "vmamba: <msg>" to stderr; returns 1 (the exit status). */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* JSON output of byte strings (jsonstr.c): always valid JSON; bytes that are
 * not UTF-8 become U+FFFD. cli_json_path writes "key": "..." and, for a name
 * that is not valid UTF-8, "key_hex": its exact bytes in hex. */
int cli_utf8_valid(const char *s);
void cli_json_str(FILE *f, const char *s);
void cli_json_path(FILE *f, const char *key, const char *path);

/* Load a .pth file, or build a preset by name when no such file exists. */
vm_model *cli_load_model(const char *spec, const char *key);

/* --device cpu|cuda and --precision fp32|tf32|fp16|bf16. */
typedef struct { const char *device, *precision; } cli_dev;
/* Move the model to the device; prints the error and returns -1. */
int cli_dev_apply(const cli_dev *d, vm_model *m);

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
int cmd_segment(int argc, char **argv);
int cmd_detect(int argc, char **argv);

#endif
