/* calib_mixed.c - sensitivity-driven mixed precision for dense models
 * (vm_calib_dense_mixed in include/vmamba.h, `vmamba calibrate
 * --target-cosine`): which backbone layers to keep FP32 so that the INT8
 * backbone's four feature maps stay within a stated cosine of FP32's on
 * the calibration photos.
 *
 * Why per layer and measured: on the detection golden model no layer kind
 * or stage dominates the error (bench/RESULTS.md, issue #13), so a fixed
 * rule (convolutions FP32, say) either keeps too much or too little; each
 * unit's own damage is measured instead, by quantising it alone (errors of
 * separate layers add about in their squares, so a unit's damage alone
 * ranks it), and the most damaging units are kept FP32 until the target is
 * met. Trial files go through the ordinary write and load (scratch path),
 * so what is measured is exactly what `detect` / `segment` will run. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "quant.h"
#include "core/util.h"

typedef struct {
    int n;                      /* calibration inputs */
    float **x;                  /* (3, H, W) each */
    int *H, *W;
    float *ref[64][4];          /* FP32 maps, NHWC */
    size_t len[64][4];
} mixed_set;

/* Worst cosine over inputs and levels, and the sum over them of 1 - cosine
 * (the damage used to rank units), of the INT8 file written with units
 * fp32[0..k) kept FP32. */
static int trial(vm_calib *c, const mixed_set *s, char **fp32, int k, const char *scratch, double *worst, double *damage,
                 char *err, size_t errlen) {
    if (vm_calib_set_fp32(c, (const char *const *)fp32, k, NULL)) return vm_errf(err, errlen, "out of memory");
    if (vm_calib_write(c, scratch, NULL, err, errlen)) return -1;
    vm_model *q = vm_model_load(scratch, NULL, err, errlen);
    unlink(scratch);
    if (!q) return -1;
    vm_ctx *x = vm_ctx_new(q, err, errlen);
    int rc = x ? 0 : -1;
    *worst = 1, *damage = 0;
    for (int i = 0; i < s->n && !rc; i++) {
        vm_feats f;
        if (vm_ctx_backbone(x, s->x[i], 1, s->H[i], s->W[i], &f)) {
            rc = vm_errf(err, errlen, "trial INT8 backbone: %s", vm_ctx_error(x));
            break;
        }
        for (int l = 0; l < 4; l++) {
            double ab = 0, aa = 0, bb = 0;
            for (size_t j = 0; j < s->len[i][l]; j++) {
                double a = s->ref[i][l][j], b = f.data[l][j];
                ab += a * b, aa += a * a, bb += b * b;
            }
            double cs = aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : (aa == bb ? 1 : 0);
            if (cs < *worst) *worst = cs;
            *damage += 1 - cs;
        }
    }
    vm_ctx_free(x);
    vm_model_free(q);
    return rc;
}

typedef struct {
    char *name;
    double damage;
} unit;

static int by_damage(const void *a, const void *b) {
    double x = ((const unit *)a)->damage, y = ((const unit *)b)->damage;
    if (x != y) return x < y ? 1 : -1;
    return strcmp(((const unit *)a)->name, ((const unit *)b)->name); /* deterministic */
}

int vm_calib_dense_mixed(vm_calib_dense *d, vm_calib *c, const char *const *images, int nimages, double target,
                         const char *scratch, FILE *log, char *err, size_t errlen) {
    if (!d || !c || !images || nimages < 1 || !scratch || !(target > 0 && target <= 1))
        return vm_errf(err, errlen, "vm_calib_dense_mixed: no runner, calibration, images or scratch path, or a target cosine outside (0, 1]");
    mixed_set s = {0};
    char **names = NULL, **order = NULL;
    unit *u = NULL;
    int nu = 0, rc = -1, kept = 0;
    double w0 = 1, dmg;
    vm_calib_stop(c);
    vm_model *m = vm_calib_model(c);
    vm_ctx *ref = vm_model_ctx(m);
    if (!ref) return vm_errf(err, errlen, "%s", vm_model_error(m));
    s.x = calloc((size_t)nimages, sizeof *s.x);
    s.H = calloc((size_t)nimages, sizeof *s.H);
    s.W = calloc((size_t)nimages, sizeof *s.W);
    if (!s.x || !s.H || !s.W) { vm_errf(err, errlen, "out of memory"); goto done; }
    /* the FP32 reference maps of up to 64 photos (more add time, not information) */
    for (int i = 0; i < nimages && s.n < 64; i++) {
        char e2[512];
        int k = s.n;
        if (!(s.x[k] = vm_calib_dense_input(d, images[i], &s.H[k], &s.W[k], e2, sizeof e2))) {
            if (log) fprintf(log, "vmamba: %s (not used for the mixed-precision search)\n", e2);
            continue;
        }
        vm_feats f;
        if (vm_ctx_backbone(ref, s.x[k], 1, s.H[k], s.W[k], &f)) {
            vm_errf(err, errlen, "%s: %s", images[i], vm_ctx_error(ref));
            free(s.x[k]);
            goto done;
        }
        for (int l = 0; l < 4; l++) {
            s.len[k][l] = (size_t)f.H[l] * f.W[l] * f.C[l];
            if (!(s.ref[k][l] = malloc(s.len[k][l] * sizeof(float)))) {
                s.n = k + 1;
                vm_errf(err, errlen, "out of memory for the reference maps");
                goto done;
            }
            memcpy(s.ref[k][l], f.data[l], s.len[k][l] * sizeof(float));
        }
        s.n++;
    }
    if (!s.n) { vm_errf(err, errlen, "none of the %d calibration images could be used for the mixed-precision search", nimages); goto done; }
    if ((nu = vm_calib_units(c, &names)) < 0) { nu = 0; vm_errf(err, errlen, "out of memory"); goto done; }
    if (trial(c, &s, NULL, 0, scratch, &w0, &dmg, err, errlen)) goto done;
    if (log) fprintf(log, "vmamba: mixed precision: all %d units INT8: worst feature cosine %.7f (target %.7f)\n", nu, w0, target);
    double worst = w0;
    if (w0 < target && nu > 0) {
        /* each unit's damage alone: every other unit FP32 */
        u = calloc((size_t)nu, sizeof *u);
        order = calloc((size_t)nu, sizeof *order);
        if (!u || !order) { vm_errf(err, errlen, "out of memory"); goto done; }
        for (int i = 0; i < nu; i++) {
            int k = 0;
            for (int j = 0; j < nu; j++)
                if (j != i) order[k++] = names[j];
            double w;
            if (trial(c, &s, order, k, scratch, &w, &u[i].damage, err, errlen)) goto done;
            u[i].name = names[i];
            if (log) fprintf(log, "vmamba:   %-44s alone: worst cosine %.7f, damage %.3g\n", names[i], w, u[i].damage);
        }
        qsort(u, (size_t)nu, sizeof *u, by_damage);
        for (int i = 0; i < nu; i++) order[i] = u[i].name;
        /* the fewest most-damaging units kept FP32 that meet the target:
         * bisection on the count (all FP32 meets it: the file's FP32
         * layers are the checkpoint's), then the count checked */
        int lo = 0, hi = nu;
        double whi = 1;
        while (hi - lo > 1) {
            int mid = (lo + hi) / 2;
            double w;
            if (trial(c, &s, order, mid, scratch, &w, &dmg, err, errlen)) goto done;
            if (log) fprintf(log, "vmamba: mixed precision: %d most damaging units FP32: worst cosine %.7f\n", mid, w);
            if (w >= target) hi = mid, whi = w;
            else lo = mid;
        }
        kept = hi, worst = whi;
    }
    /* the record: target, what all-INT8 and the chosen split reach, the units kept FP32 */
    size_t jl = 200;
    for (int i = 0; i < kept; i++) jl += strlen(order[i]) + 4;
    char *json = malloc(jl);
    if (!json) { vm_errf(err, errlen, "out of memory"); goto done; }
    int o = snprintf(json, jl, "{\"target_feature_cosine\": %.9g, \"all_int8_cosine\": %.9g, \"worst_feature_cosine\": %.9g, "
                               "\"calibration_images\": %d, \"fp32_layers\": [", target, w0, worst, s.n);
    for (int i = 0; i < kept; i++) o += snprintf(json + o, jl - (size_t)o, "%s\"%s\"", i ? ", " : "", order[i]);
    snprintf(json + o, jl - (size_t)o, "]}");
    if (vm_calib_set_fp32(c, (const char *const *)order, kept, json)) {
        free(json);
        vm_errf(err, errlen, "out of memory");
        goto done;
    }
    free(json);
    if (log) fprintf(log, "vmamba: mixed precision: %d of %d units kept FP32, worst feature cosine %.7f\n", kept, nu, worst);
    rc = kept;
done:
    if (rc < 0) vm_calib_set_fp32(c, NULL, 0, NULL);
    for (int i = 0; i < s.n; i++) {
        free(s.x[i]);
        for (int l = 0; l < 4; l++) free(s.ref[i][l]);
    }
    free(s.x), free(s.H), free(s.W);
    for (int i = 0; i < nu; i++) free(names[i]);
    free(names), free(order), free(u);
    return rc;
}
