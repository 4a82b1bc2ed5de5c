/* cmd_run.c - `vmamba run -m MODEL -i IN.npy -o OUT.npy [--features]`. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "options.h"

static const char usage[] =
    "Usage: vmamba run -m MODEL -i IN.npy -o OUT.npy [options]\n"
    "\n"
    "Forward a float32 (N,3,H,W) .npy tensor (already normalised) through\n"
    "MODEL and write float32 logits (N,classes) to OUT.npy.\n"
    "\n";

int cmd_run(int argc, char **argv) {
    const char *model = NULL, *in = NULL, *out = NULL, *key = NULL;
    int features = 0, threads = 0, print = 0, npos = 0;
    cli_dev dev = {0};
    cli_opt opts[] = {
        {CLI_OPT_STR, "--model", 'm', &model, "MODEL", ".pth checkpoint, .safetensors file or preset name"},
        {CLI_OPT_STR, "--input", 'i', &in, "IN.npy", "float32, C order, shape (N,3,H,W)"},
        {CLI_OPT_STR, "--output", 'o', &out, "OUT", "logits .npy, or with --features a directory"},
        {CLI_OPT_FLAG, "--features", 0, &features, NULL, "write the 4 backbone feature maps (NCHW) as\nOUT/feat0.npy .. OUT/feat3.npy"},
        {CLI_OPT_STR, "--key", 0, &key, "K", "top-level checkpoint key holding the weights"},
        {CLI_OPT_FLAG, "--print", 0, &print, NULL, "also print each row's top class as JSON Lines:\n{\"index\": i, \"class\": k, \"logit\": v}"},
        {CLI_OPT_INT, "--threads", 0, &threads, "N", "threads (default: OMP_NUM_THREADS or all cores)", .lo = 1, .hi = 4096},
        {CLI_OPT_END},
    };
    cli_opt devo[4];
    cli_dev_options(&dev, devo);
    cli_spec spec = {usage, {opts, devo}, NULL, NULL, &npos, 0, NULL};
    int pr = cli_parse(&spec, argc, argv);
    if (pr) return pr < 0 ? 0 : pr;
    if (!model || !in || !out) return cli_fail("run: -m, -i and -o are required (try 'vmamba run --help')"), 2;
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
        if (!(buf = malloc((size_t)B * I.num_classes * sizeof *buf))) {
            cli_fail("out of memory for %d x %d logits", B, I.num_classes);
            goto done;
        }
        if (vm_forward(m, x.data, B, H, W, buf)) {
            cli_fail("%s: %s", model, vm_model_error(m));
            goto done;
        }
        int64_t shape[2] = {B, I.num_classes};
        for (int b = 0; print && b < B; b++) {
            const float *row = buf + (size_t)b * I.num_classes;
            int best = 0;
            vm_topk(row, I.num_classes, 1, &best);
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
            if (!(feats[i] = malloc((size_t)B * C[i] * h[i] * w[i] * sizeof(float)))) {
                cli_fail("out of memory for feature map %d (%d x %d x %d x %d)", i, B, C[i], h[i], w[i]);
                goto done;
            }
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
