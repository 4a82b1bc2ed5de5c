/* options.c - see options.h. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

/* %g without a trailing ".0" and without exponent noise for bounds. */
static void fmt_num(char *b, size_t n, double v) {
    if (v == (double)(long long)v && fabs(v) < 1e15) snprintf(b, n, "%lld", (long long)v);
    else snprintf(b, n, "%g", v);
}

/* The whole of v, decimal, no blanks or sign games beyond a leading '-'. */
static int parse_ll(const char *v, long long lo, long long hi, long long *out) {
    char *end;
    if (!*v || !(isdigit((unsigned char)*v) || (*v == '-' && isdigit((unsigned char)v[1])))) return -1;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (*end || errno == ERANGE || x < lo || x > hi) return -1;
    *out = x;
    return 0;
}

int cli_parse_long(const char *opt, const char *v, long long lo, long long hi, long long *out) {
    if (parse_ll(v, lo, hi, out)) {
        cli_fail("%s: '%s' is not an integer in [%lld, %lld]", opt, v, lo, hi);
        return -1;
    }
    return 0;
}

int cli_parse_double(const char *opt, const char *v, double lo, double hi, double *out) {
    char *end = NULL, a[32], b[32];
    double x = (*v && !isspace((unsigned char)*v)) ? strtod(v, &end) : NAN;
    fmt_num(a, sizeof a, lo);
    fmt_num(b, sizeof b, hi);
    if (!end || *end || !isfinite(x) || x < lo || x > hi) {
        cli_fail("%s: '%s' must be a number in [%s, %s]", opt, v, a, b);
        return -1;
    }
    *out = x;
    return 0;
}

static int floats3(void *dest, const char *name, const char *v, int positive) {
    float t[3];
    char *end;
    const char *s = v;
    for (int k = 0; k < 3; k++) {
        t[k] = isspace((unsigned char)*s) ? NAN : strtof(s, &end);
        if (end == s || !isfinite(t[k]) || (k < 2 && *end != ',') || (k == 2 && *end) || (positive && !(t[k] > 0))) {
            cli_fail("%s: '%s' is not three %snumbers separated by commas", name, v, positive ? "positive " : "");
            return -1;
        }
        s = end + 1;
    }
    memcpy(dest, t, sizeof t);
    return 0;
}
int cli_opt_floats3(void *dest, const char *name, const char *value) { return floats3(dest, name, value, 0); }
int cli_opt_floats3_positive(void *dest, const char *name, const char *value) { return floats3(dest, name, value, 1); }

int cli_opt_shard(void *dest, const char *name, const char *value) {
    cli_shard *s = dest;
    const char *slash = strchr(value, '/');
    char ib[32];
    long long i, n;
    if (!slash || (size_t)(slash - value) >= sizeof ib) {
        cli_fail("%s: '%s' must be I/N with 0 <= I < N <= %d", name, value, CLI_SHARD_MAX);
        return -1;
    }
    memcpy(ib, value, (size_t)(slash - value));
    ib[slash - value] = 0;
    if (parse_ll(slash + 1, 1, CLI_SHARD_MAX, &n) || parse_ll(ib, 0, n - 1, &i)) {
        cli_fail("%s: '%s' must be I/N with 0 <= I < N <= %d", name, value, CLI_SHARD_MAX);
        return -1;
    }
    s->i = (long)i;
    s->n = (long)n;
    return 0;
}

static const cli_opt *find(const cli_spec *s, const char *a, size_t len, int is_short) {
    for (int t = 0; s->tables[t]; t++)
        for (const cli_opt *o = s->tables[t]; o->kind != CLI_OPT_END; o++) {
            if (o->kind == CLI_OPT_SECTION) continue;
            if (is_short ? o->short_name == a[0] : (o->name && strlen(o->name) == len && !strncmp(o->name, a, len))) return o;
        }
    return NULL;
}

static int takes_value(const cli_opt *o) { return o->kind != CLI_OPT_FLAG && o->kind != CLI_OPT_CONST; }

static int store(const cli_opt *o, const char *name, const char *v) {
    long long x;
    double d;
    switch (o->kind) {
    case CLI_OPT_FLAG: *(int *)o->dest = 1; break;
    case CLI_OPT_CONST: *(int *)o->dest = o->ival; break;
    case CLI_OPT_INT:
        if (cli_parse_long(name, v, (long long)o->lo, (long long)o->hi, &x)) return -1;
        *(int *)o->dest = (int)x;
        break;
    case CLI_OPT_DOUBLE:
        if (cli_parse_double(name, v, o->lo, o->hi, &d)) return -1;
        *(double *)o->dest = d;
        break;
    case CLI_OPT_STR:
        if (!*v) return cli_fail("%s: the value is empty", name), -1;
        *(const char **)o->dest = v;
        break;
    case CLI_OPT_CHOICE: {
        for (const char *const *c = o->choices; *c; c++)
            if (!strcmp(*c, v)) {
                *(const char **)o->dest = *c;
                goto stored;
            }
        char list[256] = "";
        for (const char *const *c = o->choices; *c; c++) {
            size_t l = strlen(list);
            snprintf(list + l, sizeof list - l, "%s%s", c == o->choices ? "" : c[1] ? ", " : " or ", *c);
        }
        return cli_fail("%s: '%s' is not %s", name, v, list), -1;
    }
    case CLI_OPT_WH: {
        int *wh = o->dest;
        const char *comma = strchr(v, ',');
        char wb[32];
        long long w, h;
        if (!comma) {
            if (cli_parse_long(name, v, (long long)o->lo, (long long)o->hi, &w)) return -1;
            h = w;
        } else {
            if ((size_t)(comma - v) >= sizeof wb) return cli_fail("%s: '%s' is not N or W,H", name, v), -1;
            memcpy(wb, v, (size_t)(comma - v));
            wb[comma - v] = 0;
            if (cli_parse_long(name, wb, (long long)o->lo, (long long)o->hi, &w) ||
                cli_parse_long(name, comma + 1, (long long)o->lo, (long long)o->hi, &h))
                return -1;
        }
        wh[0] = (int)w;
        wh[1] = (int)h;
        break;
    }
    case CLI_OPT_FN:
        if (o->fn(o->dest, name, v)) return -1;
        break;
    default: return -1;
    }
stored:
    if (o->seen) *o->seen = 1;
    return 0;
}

int cli_parse(const cli_spec *s, int argc, char **argv) {
    const char *cmd = argv[0];
    int only_pos = 0;
    *s->npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || !a[1]) {
            if (s->max_pos >= 0 && *s->npos >= s->max_pos) {
                if (s->max_pos == 0) cli_fail("%s: unexpected argument '%s' (try 'vmamba %s --help')", cmd, a, cmd);
                else cli_fail("%s: more than %d %s given ('%s')", cmd, s->max_pos, s->pos_name ? s->pos_name : "argument", a);
                return CLI_EXIT_USAGE;
            }
            s->pos[(*s->npos)++] = a;
            continue;
        }
        if (!strcmp(a, "--")) { only_pos = 1; continue; }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            cli_help(s, stdout);
            return -1;
        }
        const cli_opt *o;
        const char *eq = NULL, *v = NULL;
        char name[64];
        if (a[1] == '-') {
            eq = strchr(a, '=');
            size_t len = eq ? (size_t)(eq - a) : strlen(a);
            o = find(s, a, len, 0);
            snprintf(name, sizeof name, "%.*s", (int)(len < 60 ? len : 60), a);
        } else {
            o = a[2] ? NULL : find(s, a + 1, 1, 1);
            snprintf(name, sizeof name, "%s", a);
        }
        if (!o) {
            cli_fail("%s: unknown option '%s' (try 'vmamba %s --help')", cmd, a, cmd);
            return CLI_EXIT_USAGE;
        }
        if (takes_value(o)) {
            if (eq) v = eq + 1;
            else if (i + 1 < argc) v = argv[++i];
            else {
                cli_fail("%s: %s needs a value (%s)", cmd, name, o->metavar ? o->metavar : "an argument");
                return CLI_EXIT_USAGE;
            }
        } else if (eq) {
            cli_fail("%s: %s takes no value", cmd, name);
            return CLI_EXIT_USAGE;
        }
        if (store(o, o->name ? o->name : name, v)) return CLI_EXIT_USAGE;
    }
    return 0;
}

static void help_line(FILE *f, const cli_opt *o) {
    char left[96];
    const char *mv = takes_value(o) ? (o->metavar ? o->metavar : "X") : NULL;
    if (o->short_name && o->name) snprintf(left, sizeof left, "-%c, %s%s%s", o->short_name, o->name, mv ? " " : "", mv ? mv : "");
    else if (o->short_name) snprintf(left, sizeof left, "-%c%s%s", o->short_name, mv ? " " : "", mv ? mv : "");
    else snprintf(left, sizeof left, "%s%s%s", o->name, mv ? " " : "", mv ? mv : "");
    const char *h = o->help ? o->help : "";
    int pad = strlen(left) < 20 ? 20 - (int)strlen(left) : 1;
    if (strlen(left) >= 20) {
        fprintf(f, "  %s\n", left);
        pad = 22;
        left[0] = 0;
        fprintf(f, "%*s", pad, "");
    } else {
        fprintf(f, "  %s%*s", left, pad, "");
    }
    for (const char *p = h; *p; p++) {
        fputc(*p, f);
        if (*p == '\n' && p[1]) fprintf(f, "%22s", "");
    }
    fputc('\n', f);
}

void cli_help(const cli_spec *s, FILE *f) {
    fputs(s->usage, f);
    for (int t = 0; s->tables[t]; t++)
        for (const cli_opt *o = s->tables[t]; o->kind != CLI_OPT_END; o++) {
            if (o->kind == CLI_OPT_SECTION) fprintf(f, "%s\n", o->help);
            else help_line(f, o);
        }
    fputs("  -h, --help          this help\n", f);
    if (s->footer) fputs(s->footer, f);
}

void cli_pp_options(cli_pp *p, cli_opt o[7]) {
    cli_opt t[7] = {
        {CLI_OPT_SECTION, .help = "Preprocessing (defaults: the official ImageNet evaluation, or the model's sidecar MODEL.json):"},
        {CLI_OPT_INT, "--size", 0, &p->pp.size, "N", "model input size (224)", .lo = 1, .hi = 16384, .seen = &p->set_size},
        {CLI_OPT_DOUBLE, "--crop-pct", 0, &p->pp.crop_pct, "P",
         "resize the shorter side to int(size / P), then center crop (0.875);\nint(size / P) is at most 16384",
         .lo = 0.01, .hi = 1, .seen = &p->set_crop_pct},
        {CLI_OPT_FLAG, "--no-crop", 0, &p->pp.no_crop, NULL, "resize straight to size x size instead", .seen = &p->set_no_crop},
        {CLI_OPT_FN, "--mean", 0, p->pp.mean, "R,G,B", "normalisation mean (0.485,0.456,0.406)", .fn = cli_opt_floats3, .seen = &p->set_mean},
        {CLI_OPT_FN, "--std", 0, p->pp.std, "R,G,B", "normalisation std (0.229,0.224,0.225)", .fn = cli_opt_floats3_positive,
         .seen = &p->set_std},
        {CLI_OPT_END},
    };
    memcpy(o, t, sizeof t);
}

static const char *const prec_choices[] = {"fp32", "tf32", "fp16", "bf16", NULL};

int cli_device_syntax(const char *v) {
    if (!strcmp(v, "cpu") || !strcmp(v, "cuda")) return 1;
    if (strncmp(v, "cuda:", 5)) return 0;
    size_t n = strlen(v + 5);
    return n >= 1 && n <= 4 && strspn(v + 5, "0123456789") == n;
}

int cli_opt_device(void *dest, const char *name, const char *value) {
    if (!cli_device_syntax(value))
        return cli_fail("%s: '%s' is not cpu, cuda or cuda:N (N: the GPU's number, from 0)", name, value), -1;
    *(const char **)dest = value;
    return 0;
}

void cli_dev_options(cli_dev *d, cli_opt o[4]) {
    cli_opt t[4] = {
        {CLI_OPT_SECTION, .help = "Device:"},
        {CLI_OPT_FN, "--device", 0, &d->device, "D", "cpu (default), cuda or cuda:N (GPU N, cuda = cuda:0;\nbuilds with --with-cuda)", .fn = cli_opt_device},
        {CLI_OPT_CHOICE, "--precision", 0, &d->precision, "P", "fp32 (default); bf16 (CPU: avx512_bf16/AMX; GPU); fp16 (GPU; CPU: ARMv8.2 FP16 cores); tf32 (GPU)", .choices = prec_choices},
        {CLI_OPT_END},
    };
    memcpy(o, t, sizeof t);
}
