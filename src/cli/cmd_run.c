/* cmd_run.c - `vmamba run -m MODEL -i IN.npy -o OUT.npy [--features]`. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "loaders/npy.h"

static void help(FILE *f) {
    fprintf(f,
            "Usage: vmamba run -m MODEL -i IN.npy -o OUT.npy [options]\n"
            "\n"
            "Forward a float32 (N,3,H,W) .npy tensor (already normalised) through\n"
            "MODEL and write float32 logits (N,classes) to OUT.npy.\n"
            "\n"
            "  -m, --model MODEL   .pth checkpoint or preset name\n"
            "  -i, --input IN.npy  float32, C order, shape (N,3,H,W)\n"
            "  -o, --output OUT    logits .npy, or with --features a directory\n"
            "  --features          write the 4 backbone feature maps (NCHW) as\n"
            "                      OUT/feat0.npy .. OUT/feat3.npy\n"
            "  --key K             top-level checkpoint key holding the weights\n"
            "  --print             also print each row's top class as JSON Lines:\n"
            "                      {\"index\": i, \"class\": k, \"logit\": v}\n"
            "  --threads N         threads (default: OMP_NUM_THREADS or all cores)\n" CLI_DEV_HELP);
}

int cmd_run(int argc, char **argv) {
    const char *model = NULL, *in = NULL, *out = NULL, *key = NULL;
    int features = 0, threads = 0, print = 0;
    cli_dev dev = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int r = cli_dev_parse(&dev, argc, argv, &i);
        if (r < 0) return 1;
        if (r > 0) continue;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { help(stdout); return 0; }
        else if (!strcmp(a, "--features")) features = 1;
        else if (!strcmp(a, "--print")) print = 1;
        else if (!strcmp(a, "-m") || !strcmp(a, "--model") || !strcmp(a, "-i") || !strcmp(a, "--input") ||
                 !strcmp(a, "-o") || !strcmp(a, "--output") || !strcmp(a, "--key") || !strcmp(a, "--threads")) {
            if (!v) return cli_fail("run: %s needs a value", a);
            i++;
            if (a[1] == 'm' || !strcmp(a, "--model")) model = v;
            else if (a[1] == 'i' || !strcmp(a, "--input")) in = v;
            else if (a[1] == 'o' || !strcmp(a, "--output")) out = v;
            else if (!strcmp(a, "--key")) key = v;
            else if (cli_int("--threads", v, 1, 4096, &threads)) return 1;
        } else return cli_fail("run: unknown argument '%s' (try --help)", a);
    }
    if (!model || !in || !out) {
        help(stderr);
        return cli_fail("run: -m, -i and -o are required");
    }
    cli_threads(threads);
    char err[1024];
    vm_npy x;
    if (vm_npy_read(in, &x, err, sizeof err)) return cli_fail("%s", err);
    int rc = 1;
    vm_model *m = NULL;
    float *buf = NULL;
    float *feats[4] = {0};
    if (x.ndim != 4 || x.shape[1] != 3) {
        cli_fail("%s: expected shape (N, 3, H, W), got %d dimensions%s", in, x.ndim,
                 x.ndim == 4 ? " with C != 3" : "");
        goto done;
    }
    if (x.shape[0] < 1 || x.shape[2] < 1 || x.shape[3] < 1 || x.shape[0] > 1 << 20 || x.shape[2] > 1 << 16 ||
        x.shape[3] > 1 << 16) {
        cli_fail("%s: unsupported shape (%lld, 3, %lld, %lld)", in, (long long)x.shape[0], (long long)x.shape[2],
                 (long long)x.shape[3]);
        goto done;
    }
    int B = (int)x.shape[0], H = (int)x.shape[2], W = (int)x.shape[3];
    if (!(m = cli_load_model(model, key))) goto done;
    if (cli_dev_apply(&dev, m)) goto done;
    vm_info I;
    vm_model_info(m, &I);
    if (!features) {
        if (!I.num_classes) {
            cli_fail("%s: a backbone checkpoint has no classifier; use --features", model);
            goto done;
        }
        buf = malloc((size_t)B * I.num_classes * sizeof *buf);
        if (vm_forward(m, x.data, B, H, W, buf)) {
            cli_fail("%s: %s", model, vm_model_error(m));
            goto done;
        }
        int64_t shape[2] = {B, I.num_classes};
        for (int b = 0; print && b < B; b++) {
            const float *row = buf + (size_t)b * I.num_classes;
            int best = 0;
            for (int k = 1; k < I.num_classes; k++)
                if (row[k] > row[best]) best = k;
            printf("{\"index\": %d, \"class\": %d, \"logit\": %.6g}\n", b, best, row[best]);
        }
        if (vm_npy_write(out, buf, 2, shape, err, sizeof err)) {
            cli_fail("%s", err);
            goto done;
        }
    } else {
        if (!I.is_backbone) {
            cli_fail("%s: --features needs a backbone checkpoint (with outnorm0..3)", model);
            goto done;
        }
        int C[4], h[4], w[4];
        for (int i = 0; i < 4; i++) {
            vm_feature_shape(m, H, W, i, &C[i], &h[i], &w[i]);
            feats[i] = malloc((size_t)B * C[i] * h[i] * w[i] * sizeof(float));
        }
        if (vm_forward_features(m, x.data, B, H, W, feats)) {
            cli_fail("%s: %s", model, vm_model_error(m));
            goto done;
        }
        if (mkdir(out, 0755) != 0 && errno != EEXIST) {
            cli_fail("%s: cannot create directory: %s", out, strerror(errno));
            goto done;
        }
        for (int i = 0; i < 4; i++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/feat%d.npy", out, i);
            int64_t shape[4] = {B, C[i], h[i], w[i]};
            if (vm_npy_write(path, feats[i], 4, shape, err, sizeof err)) {
                cli_fail("%s", err);
                goto done;
            }
        }
    }
    rc = 0;
done:
    for (int i = 0; i < 4; i++) free(feats[i]);
    free(buf);
    vm_model_free(m);
    vm_npy_free(&x);
    return rc;
}
