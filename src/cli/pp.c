/* pp.c - see pp.h. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pp.h"

void cli_pp_init(cli_pp *p) {
    memset(p, 0, sizeof *p);
    vm_preprocess_defaults(&p->pp);
}

static int json3(json_t *o, const char *key, float out[3], const char *path, int positive) {
    json_t *a = json_object_get(o, key);
    if (!a) return 0;
    if (!json_is_array(a) || json_array_size(a) != 3) return cli_fail("%s: '%s' must be an array of 3 numbers", path, key), -1;
    for (int k = 0; k < 3; k++) {
        json_t *x = json_array_get(a, (size_t)k);
        if (!json_is_number(x) || (positive && !(json_number_value(x) > 0)))
            return cli_fail("%s: '%s' must be an array of 3 %snumbers", path, key, positive ? "positive " : ""), -1;
        out[k] = (float)json_number_value(x);
    }
    return 1;
}

/* Merge one JSON object (sidecar file or model metadata) under the flags. */
static int apply_json(cli_pp *p, json_t *o, const char *path) {
    float mean[3], std[3];
    if (!json_is_object(o)) return cli_fail("%s: expected a JSON object", path), -1;
    json_t *v;
    if ((v = json_object_get(o, "size"))) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 16384)
            return cli_fail("%s: 'size' must be an integer in [1, 16384]", path), -1;
        if (!p->set_size) p->pp.size = (int)json_integer_value(v);
    }
    if ((v = json_object_get(o, "crop"))) {
        if (!json_is_boolean(v)) return cli_fail("%s: 'crop' must be true or false", path), -1;
        if (!p->set_no_crop) p->pp.no_crop = !json_is_true(v);
    }
    if ((v = json_object_get(o, "crop_pct"))) {
        if (!json_is_number(v) || !(json_number_value(v) > 0 && json_number_value(v) <= 1))
            return cli_fail("%s: 'crop_pct' must be in (0, 1]", path), -1;
        if (!p->set_crop_pct) p->pp.crop_pct = json_number_value(v);
    }
    int r = json3(o, "mean", mean, path, 0);
    if (r < 0) return -1;
    if (r && !p->set_mean) memcpy(p->pp.mean, mean, sizeof mean);
    r = json3(o, "std", std, path, 1);
    if (r < 0) return -1;
    if (r && !p->set_std) memcpy(p->pp.std, std, sizeof std);
    if ((v = json_object_get(o, "labels"))) {
        if (!json_is_array(v)) return cli_fail("%s: 'labels' must be an array of strings", path), -1;
        size_t n = json_array_size(v);
        for (size_t k = 0; k < n; k++)
            if (!json_is_string(json_array_get(v, k))) return cli_fail("%s: 'labels' must be an array of strings", path), -1;
        if (n > 1 << 24) return cli_fail("%s: 'labels' has %zu entries (at most %d)", path, n, 1 << 24), -1;
        cli_free_labels(p->labels, p->nlabels);
        p->nlabels = 0;
        if (!(p->labels = calloc(n ? n : 1, sizeof *p->labels))) return cli_fail("%s: out of memory for the labels", path), -1;
        for (size_t k = 0; k < n; k++, p->nlabels++)
            if (!(p->labels[k] = strdup(json_string_value(json_array_get(v, k)))))
                return cli_fail("%s: out of memory for the labels", path), -1;
    }
    return 0;
}

int cli_pp_metadata(cli_pp *p, const char *json, const char *what) {
    if (!json) return 0;
    json_error_t je;
    json_t *o = json_loads(json, 0, &je);
    if (!o) return cli_fail("%s: invalid vmamba metadata: %s", what, je.text), -1;
    int rc = apply_json(p, o, what);
    json_decref(o);
    return rc;
}

int cli_pp_sidecar(cli_pp *p, const char *model_path) {
    char path[4096];
    snprintf(path, sizeof path, "%s", model_path);
    char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    if (dot && (!slash || dot > slash)) *dot = 0;
    if (strlen(path) + 6 > sizeof path) return 0;
    strcat(path, ".json");
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    json_error_t je;
    json_t *o = json_loadf(f, 0, &je);
    fclose(f);
    if (!o) return cli_fail("%s: invalid JSON at line %d: %s", path, je.line, je.text), -1;
    int rc = apply_json(p, o, path);
    json_decref(o);
    return rc;
}

char *cli_pp_to_json(const cli_pp *p) {
    json_t *o = json_object(), *mean = json_array(), *std = json_array();
    json_object_set_new(o, "size", json_integer(p->pp.size));
    json_object_set_new(o, "crop", json_boolean(!p->pp.no_crop));
    json_object_set_new(o, "crop_pct", json_real(p->pp.crop_pct));
    for (int k = 0; k < 3; k++) {
        json_array_append_new(mean, json_real(p->pp.mean[k]));
        json_array_append_new(std, json_real(p->pp.std[k]));
    }
    json_object_set_new(o, "mean", mean);
    json_object_set_new(o, "std", std);
    if (p->labels) {
        json_t *l = json_array();
        for (int k = 0; k < p->nlabels; k++) json_array_append_new(l, json_string(p->labels[k]));
        json_object_set_new(o, "labels", l);
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(9));
    json_decref(o);
    return s;
}

int cli_pp_check(const cli_pp *p, const char *what) {
    const vm_preprocess_opts *o = &p->pp;
    /* the resize before the crop is (size / crop_pct) on the shorter side:
     * bound it, so a tiny crop_pct cannot ask for a huge intermediate image */
    double side = o->no_crop ? o->size : o->size / o->crop_pct;
    if (!(side <= CLI_PP_MAX_SIDE))
        return cli_fail("--crop-pct %g with --size %d%s%s resizes the shorter side to %.0f pixels (at most %d)", o->crop_pct,
                        o->size, what ? " from " : "", what ? what : "", side, CLI_PP_MAX_SIDE), -1;
    return 0;
}

void cli_pp_free(cli_pp *p) {
    cli_free_labels(p->labels, p->nlabels);
    p->labels = NULL;
    p->nlabels = 0;
}

char **cli_read_labels(const char *path, int *n) {
    FILE *f = fopen(path, "r");
    if (!f) {
        cli_fail("%s: cannot open labels file", path);
        return NULL;
    }
    char **l = NULL, *line = NULL;
    size_t cap = 0, lcap = 0;
    ssize_t len;
    *n = 0;
    while ((len = getline(&line, &lcap, f)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if ((size_t)*n == cap) {
            size_t nc = cap ? cap * 2 : 256;
            char **nl = *n < (1 << 24) ? realloc(l, nc * sizeof *l) : NULL;
            if (!nl) break;
            l = nl;
            cap = nc;
        }
        if (!(l[*n] = strdup(line))) break;
        (*n)++;
    }
    int short_read = !feof(f);
    free(line);
    fclose(f);
    if (short_read) {
        cli_fail("%s: out of memory or read error after %d labels", path, *n);
        cli_free_labels(l, *n);
        return NULL;
    }
    if (*n == 0) {
        cli_fail("%s: labels file is empty", path);
        free(l);
        return NULL;
    }
    return l;
}

void cli_free_labels(char **l, int n) {
    for (int i = 0; i < n; i++) free(l[i]);
    free(l);
}

vm_model *cli_load_classifier(const char *model, const char *key, const cli_dev *dev, cli_pp *pp, vm_info *info) {
    vm_model *m = cli_load_model(model, key);
    if (!m) return NULL;
    /* defaults < the model file's own metadata < MODEL.json < flags */
    if (cli_dev_apply(dev, m) || cli_pp_metadata(pp, vm_model_metadata(m), model) || cli_pp_sidecar(pp, model)) {
        vm_model_free(m);
        return NULL;
    }
    if (cli_pp_check(pp, model)) {
        vm_model_free(m);
        return NULL;
    }
    vm_model_info(m, info);
    if (!info->num_classes) {
        cli_fail("%s: a backbone checkpoint has no classifier head", model);
        vm_model_free(m);
        return NULL;
    }
    return m;
}
