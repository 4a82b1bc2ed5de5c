/* options.h - the one option parser of every subcommand. Each command
 * declares its options once, in tables (name, short name, kind of value
 * with bounds, help text); cli_parse checks every value completely
 * ("2junk", "", " 2", out of range, a missing value, an unknown option are
 * errors naming the option) and --help is generated from the same tables,
 * so an option cannot be parsed as another or be missing from the help. */
#ifndef VM_CLI_OPTIONS_H
#define VM_CLI_OPTIONS_H

#include "cli.h"
#include "pp.h"

typedef enum {
    CLI_OPT_END = 0,  /* terminates a table */
    CLI_OPT_SECTION,  /* a heading in --help (help = the heading) */
    CLI_OPT_FLAG,     /* no value: *(int *)dest = 1 */
    CLI_OPT_CONST,    /* no value: *(int *)dest = ival (e.g. --quiet sets progress = 0) */
    CLI_OPT_INT,      /* *(int *)dest, in [lo, hi] */
    CLI_OPT_DOUBLE,   /* *(double *)dest, finite, in [lo, hi] */
    CLI_OPT_STR,      /* *(const char **)dest = the argument */
    CLI_OPT_CHOICE,   /* *(const char **)dest = one of choices[] */
    CLI_OPT_WH,       /* int[2] {W, H} from "W,H" or "N" (square), each in [lo, hi] */
    CLI_OPT_FN,       /* fn(dest, name, value) parses and stores; prints and returns -1 on error */
} cli_opt_kind;

typedef struct cli_opt {
    cli_opt_kind kind;
    const char *name;       /* long name with its dashes, "--batch" */
    char short_name;        /* 'm' for -m, or 0 */
    void *dest;
    const char *metavar;    /* value's name in --help, "N" */
    const char *help;       /* may hold '\n' for continuation lines */
    double lo, hi;          /* INT, DOUBLE, WH bounds (inclusive) */
    int ival;               /* CONST */
    const char *const *choices; /* CHOICE, NULL-terminated */
    int (*fn)(void *dest, const char *name, const char *value); /* FN */
    int *seen;              /* when non-NULL: set to 1 once given */
} cli_opt;

/* A command's command line: its options (several tables, e.g. its own,
 * the preprocessing ones, the device ones) and its positional arguments. */
typedef struct {
    const char *usage;      /* "Usage: ..." and the description, printed first */
    const cli_opt *tables[6]; /* NULL-terminated list of tables */
    const char *footer;     /* printed after the options, or NULL */
    const char **pos;       /* receives the positional arguments (capacity argc) */
    int *npos;
    int max_pos;            /* -1: any number */
    const char *pos_name;   /* "IMAGE", for the error on too many */
} cli_spec;

/* Exit status of usage errors (unknown option, bad value, missing argument). */
#define CLI_EXIT_USAGE 2

/* Parse argv[1..argc-1] (argv[0] is the command name). Returns 0 to go on,
 * -1 after printing --help to stdout (exit 0), or CLI_EXIT_USAGE after
 * printing an error. "--name=value" works for any option taking a value;
 * "--" ends the options; "-" alone is a positional argument. */
int cli_parse(const cli_spec *s, int argc, char **argv);

/* --help text on f. */
void cli_help(const cli_spec *s, FILE *f);

/* Strict number parsing shared with other checks: the whole string, no
 * blanks, in [lo, hi]. Print "OPT: ..." and return -1 on error. */
int cli_parse_long(const char *opt, const char *v, long long lo, long long hi, long long *out);
int cli_parse_double(const char *opt, const char *v, double lo, double hi, double *out);

/* --device's syntax: cpu, cuda or cuda:N (N: up to 4 digits). Whether
 * the device exists is the library's to say. */
int cli_device_syntax(const char *v);

/* CLI_OPT_FN parsers. */
int cli_opt_device(void *dest, const char *name, const char *value);           /* const char *, cli_device_syntax */
int cli_opt_floats3(void *dest, const char *name, const char *value);          /* float[3] "R,G,B" */
int cli_opt_floats3_positive(void *dest, const char *name, const char *value); /* same, each > 0 */
typedef struct { long i, n; } cli_shard;
int cli_opt_shard(void *dest, const char *name, const char *value);            /* cli_shard "I/N" */

/* Common tables, bound to the caller's variables. Each is a table of its own
 * (terminated), to list in cli_spec.tables. */
#define CLI_SHARD_MAX 1000000
void cli_pp_options(cli_pp *p, cli_opt out[7]);
void cli_dev_options(cli_dev *d, cli_opt out[4]);

#endif
