/* cmd_bench.c - `vmamba bench`: latency, throughput, GFLOP/s, peak RSS,
 * and with --profile the time per op kind. Median of --iters runs after
 * --warmup runs, all at one input shape (so planning is excluded). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli.h"
#include "options.h"

static const char usage[] =
    "Usage: vmamba bench (-m MODEL | --arch PRESET) [options]\n"
    "\n"
    "Time forward passes on random input (presets get random weights).\n"
    "\n";

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * t.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int cmd_bench(int argc, char **argv) {
    const char *model = NULL, *arch = NULL;
    int size = 224, batch = 1, threads = 0, iters = 20, warmup = 3, json = 0, profile = 0, npos = 0;
    cli_dev dev = {0};
    cli_opt opts[] = {
        {CLI_OPT_STR, "--model", 'm', &model, "MODEL", ".pth checkpoint or .safetensors file"},
        {CLI_OPT_STR, "--arch", 0, &arch, "PRESET", "a preset architecture with random weights"},
        {CLI_OPT_INT, "--size", 0, &size, "N", "input H = W (224)", .lo = 8, .hi = 8192},
        {CLI_OPT_INT, "--batch", 0, &batch, "B", "images per pass (1)", .lo = 1, .hi = 1024},
        {CLI_OPT_INT, "--threads", 0, &threads, "N", "threads (default: OMP_NUM_THREADS or all cores)", .lo = 1, .hi = 4096},
        {CLI_OPT_INT, "--iters", 0, &iters, "N", "timed passes (20)", .lo = 1, .hi = 100000},
        {CLI_OPT_INT, "--warmup", 0, &warmup, "N", "untimed passes first (3)", .lo = 0, .hi = 100000},
        {CLI_OPT_FLAG, "--profile", 0, &profile, NULL, "time per op kind (adds a little overhead; on a GPU it\nsynchronises after every op, so totals run higher)"},
        {CLI_OPT_FLAG, "--json", 0, &json, NULL, "one JSON object: latency_ms_median, latency_ms_min, images_per_s,\ngflops, peak_rss_mb, and the profile when asked"},
        {CLI_OPT_END},
    };
    cli_opt devo[4];
    cli_dev_options(&dev, devo);
    cli_spec spec = {usage, {opts, devo}, NULL, NULL, &npos, 0, NULL};
    int pr = cli_parse(&spec, argc, argv);
    if (pr) return pr < 0 ? 0 : pr;
    if (!model == !arch) return cli_fail("bench: give -m MODEL or --arch PRESET (try 'vmamba bench --help')"), 2;
    cli_threads(threads);
    char err[512];
    vm_model *m;
    if (arch) {
        m = vm_model_from_preset(arch, 1000, 1, err, sizeof err);
        if (!m) return cli_fail("%s", err);
    } else if (!(m = cli_load_model(model, NULL))) return 1;
    if (cli_dev_apply(&dev, m)) {
        vm_model_free(m);
        return 1;
    }
    vm_info I;
    vm_model_info(m, &I);
    size_t n = (size_t)batch * 3 * size * size;
    float *x = vm_host_alloc(n * sizeof *x), *out = NULL, *feats[4] = {0};
    if (!x) {
        cli_fail("bench: out of memory for a %d-image batch", batch);
        vm_model_free(m);
        return 1;
    }
    uint64_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((s >> 40) * (1.0 / 16777216.0)) * 4.0f - 2.0f;
    }
    int rc = 0;
    if (I.num_classes) rc |= !(out = malloc((size_t)batch * I.num_classes * sizeof *out));
    else
        for (int k = 0; k < 4; k++) {
            int C, h, w;
            vm_feature_shape(m, size, size, k, &C, &h, &w);
            rc |= !(feats[k] = malloc((size_t)batch * C * h * w * sizeof(float)));
        }
    double *t = malloc((size_t)iters * sizeof *t);
    if (rc || !t) {
        free(t);
        vm_host_free(x);
        free(out);
        for (int k = 0; k < 4; k++) free(feats[k]);
        vm_model_free(m);
        return cli_fail("bench: out of memory for the outputs of a %d-image batch", batch);
    }
    vm_ctx *c = vm_ctx_new(m, err, sizeof err);
    if (!c) rc = cli_fail("%s", err);
    for (int it = -warmup; it < iters && !rc; it++) {
        if (it == 0) vm_ctx_profile_enable(c, profile);
        double t0 = now();
        rc = I.num_classes ? vm_ctx_forward(c, x, batch, size, size, out) : vm_ctx_forward_features(c, x, batch, size, size, feats);
        if (it >= 0) t[it] = now() - t0;
        if (rc) cli_fail("%s", vm_ctx_error(c));
    }
    const int nops = vm_profile_op_count();
    if (!rc) {
        qsort(t, (size_t)iters, sizeof *t, cmp_d);
        double med = iters % 2 ? t[iters / 2] : 0.5 * (t[iters / 2 - 1] + t[iters / 2]);
        double gmacs = vm_model_gmacs(m, size, size) * batch;
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        double rss = ru.ru_maxrss / 1024.0, total = 0;
        for (int k = 0; k < nops; k++) total += vm_ctx_profile_seconds(c, k);
        const char *name = arch ? arch : model;
        if (json) {
            printf("{\"model\": \"%s\", \"device\": \"%s\", \"precision\": \"%s\", \"size\": %d, \"batch\": %d, \"threads\": %d, \"isa\": \"%s\", \"gemm\": \"%s\", "
                   "\"latency_ms_median\": %.3f, \"latency_ms_min\": %.3f, \"images_per_s\": %.2f, \"gflops\": %.2f, "
                   "\"gmacs_per_image\": %.3f, \"peak_rss_mb\": %.1f",
                   name, vm_model_device(m), dev.precision ? dev.precision : "fp32", size, batch, vm_get_threads(), vm_isa(), vm_model_gemm(m), med * 1e3, t[0] * 1e3, batch / med,
                   2 * gmacs / med, gmacs / batch, rss);
            if (profile) {
                printf(", \"profile_ms\": {");
                for (int k = 0; k < nops; k++)
                    printf("%s\"%s\": %.3f", k ? ", " : "", vm_profile_op_name(k), 1e3 * vm_ctx_profile_seconds(c, k) / iters);
                printf("}");
            }
            printf("}\n");
        } else {
            printf("model        %s (%s, %.2fM params)\n", name, vm_family_name(I.family), I.params / 1e6);
            printf("input        %d x 3 x %d x %d, device %s, %s, %d threads, kernels %s, GEMMs %s\n", batch, size, size,
                   vm_model_device(m), dev.precision ? dev.precision : "fp32", vm_get_threads(), vm_isa(), vm_model_gemm(m));
            printf("latency      median %.2f ms, min %.2f ms (%d iters)\n", med * 1e3, t[0] * 1e3, iters);
            printf("throughput   %.2f images/s, %.1f GFLOP/s (%.2f GMACs/image)\n", batch / med, 2 * gmacs / med, gmacs / batch);
            printf("peak RSS     %.1f MB\n", rss);
            if (profile) {
                printf("profile (ms per pass, share of timed ops):\n");
                for (int k = 0; k < nops; k++)
                    if (vm_ctx_profile_seconds(c, k) > 0)
                        printf("  %-16s %8.2f  %5.1f%%\n", vm_profile_op_name(k), 1e3 * vm_ctx_profile_seconds(c, k) / iters,
                               100 * vm_ctx_profile_seconds(c, k) / total);
            }
        }
    }
    free(t);
    vm_host_free(x);
    free(out);
    for (int k = 0; k < 4; k++) free(feats[k]);
    vm_ctx_free(c);
    vm_model_free(m);
    return rc ? 1 : 0;
}
