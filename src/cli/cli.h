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

/* Apply --threads (0 = leave OMP_NUM_THREADS / all cores). */
void cli_threads(int n);

int cmd_info(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_preprocess(int argc, char **argv);
int cmd_classify(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_bench(int argc, char **argv);

#endif
