/* common.c - pieces every command uses: error messages, loading a model
 * (file or preset), the device, threads. Only include/vmamba.h is used. */
#include <errno.h>
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

int cli_dev_apply(const cli_dev *d, vm_model *m) {
    if (!d->device || !strcmp(d->device, "cpu")) {
        if (d->precision && strcmp(d->precision, "fp32") && strcmp(d->precision, "bf16") && strcmp(d->precision, "fp16"))
            return cli_fail("--precision %s needs --device cuda (the CPU does fp32, bf16 or fp16)", d->precision), -1;
        if (d->precision && !strcmp(d->precision, "bf16") && vm_model_set_device(m, "cpu", VM_PRECISION_BF16))
            return cli_fail("--precision bf16: %s", vm_model_error(m)), -1;
        if (d->precision && !strcmp(d->precision, "fp16") && vm_model_set_device(m, "cpu", VM_PRECISION_FP16))
            return cli_fail("--precision fp16: %s", vm_model_error(m)), -1;
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

