/* cmd_bench.c - `vmamba bench`: latency, throughput, GFLOP/s, peak RSS,
 * and with --profile the time per op kind. Median of --iters runs after
 * --warmup runs, all at one input shape (so planning is excluded). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli.h"
#include "model/model.h"
#include "simd/kernels.h"

static void help(FILE *f) {
    fprintf(f,
            "Usage: vmamba bench (-m MODEL | --arch PRESET) [options]\n"
            "\n"
            "Time forward passes on random input (presets get random weights).\n"
            "  --size N        input H = W (224)\n"
            "  --batch B       images per pass (1)\n"
            "  --threads N     threads (default: OMP_NUM_THREADS or all cores)\n"
            "  --iters N       timed passes (20); --warmup N untimed passes first (3)\n"
            "  --profile       time per op kind (adds a little overhead; on a GPU it\n"
            "                  synchronises after every op, so totals run higher)\n"
            "  --json          one JSON object: latency_ms_median, latency_ms_min, images_per_s,\n"
            "                  gflops, peak_rss_mb, and the profile when asked\n" CLI_DEV_HELP);
}

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
    int size = 224, batch = 1, threads = 0, iters = 20, warmup = 3, json = 0, profile = 0;
    cli_dev dev = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int r = cli_dev_parse(&dev, argc, argv, &i);
        if (r < 0) return 1;
        if (r > 0) continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { help(stdout); return 0; }
        else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--profile")) profile = 1;
        else if (!strcmp(a, "-m") || !strcmp(a, "--model") || !strcmp(a, "--arch") || !strcmp(a, "--size") ||
                 !strcmp(a, "--batch") || !strcmp(a, "--threads") || !strcmp(a, "--iters") || !strcmp(a, "--warmup")) {
            if (!v) return cli_fail("bench: %s needs a value", a);
            i++;
            if (!strcmp(a, "-m") || !strcmp(a, "--model")) model = v;
            else if (!strcmp(a, "--arch")) arch = v;
            else if (!strcmp(a, "--size")) { if (cli_int(a, v, 8, 8192, &size)) return 1; }
            else if (!strcmp(a, "--batch")) { if (cli_int(a, v, 1, 4096, &batch)) return 1; }
            else if (!strcmp(a, "--threads")) { if (cli_int(a, v, 1, 4096, &threads)) return 1; }
            else if (!strcmp(a, "--iters")) { if (cli_int(a, v, 1, 100000, &iters)) return 1; }
            else if (cli_int(a, v, 0, 100000, &warmup)) return 1;
        } else return cli_fail("bench: unknown argument '%s' (try --help)", a);
    }
    if (!model == !arch) { help(stderr); return cli_fail("bench: give -m MODEL or --arch PRESET"); }
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
        fprintf(stderr, "vmamba bench: out of memory for a %d-image batch\n", batch);
        vm_model_free(m);
        return 1;
    }
    uint64_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((s >> 40) * (1.0 / 16777216.0)) * 4.0f - 2.0f;
    }
    if (I.num_classes) out = malloc((size_t)batch * I.num_classes * sizeof *out);
    else
        for (int k = 0; k < 4; k++) {
            int C, h, w;
            vm_feature_shape(m, size, size, k, &C, &h, &w);
            feats[k] = malloc((size_t)batch * C * h * w * sizeof(float));
        }
    double *t = malloc((size_t)iters * sizeof *t);
    int rc = 0;
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
        double gmacs = vm_arch_gmacs(m, size, size) * batch;
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        double rss = ru.ru_maxrss / 1024.0, total = 0;
        for (int k = 0; k < nops; k++) total += vm_ctx_profile_seconds(c, k);
        const char *name = arch ? arch : model;
        if (json) {
            printf("{\"model\": \"%s\", \"device\": \"%s\", \"precision\": \"%s\", \"size\": %d, \"batch\": %d, \"threads\": %d, \"isa\": \"%s\", "
                   "\"latency_ms_median\": %.3f, \"latency_ms_min\": %.3f, \"images_per_s\": %.2f, \"gflops\": %.2f, "
                   "\"gmacs_per_image\": %.3f, \"peak_rss_mb\": %.1f",
                   name, vm_model_device(m), dev.precision ? dev.precision : "fp32", size, batch, vm_get_threads(), vm_kernels()->name, med * 1e3, t[0] * 1e3, batch / med,
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
            printf("input        %d x 3 x %d x %d, device %s, %s, %d threads, kernels %s\n", batch, size, size, vm_model_device(m),
                   dev.precision ? dev.precision : "fp32", vm_get_threads(), vm_kernels()->name);
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
