/* pp.h - preprocessing options shared by preprocess / classify /
 * eval, the model's sidecar file (MODEL.json), and label lists. */
#ifndef VM_CLI_PP_H
#define VM_CLI_PP_H

#include "vmamba.h"
#include "cli.h"

typedef struct {
    vm_preprocess_opts pp;
    int set_size, set_crop_pct, set_no_crop, set_mean, set_std; /* given on the command line */
    char **labels;  /* from the sidecar, or NULL */
    int nlabels;
} cli_pp;

void cli_pp_init(cli_pp *p);
/* Merge MODEL.json (MODEL with its extension replaced) under the explicit
 * flags. A missing sidecar is fine; a malformed one is an error. */
int cli_pp_sidecar(cli_pp *p, const char *model_path);
/* Merge a model file's own metadata (JSON text, may be NULL) likewise. */
int cli_pp_metadata(cli_pp *p, const char *json, const char *what);
/* The options and labels as the metadata JSON (malloc'd). */
char *cli_pp_to_json(const cli_pp *p);
void cli_pp_free(cli_pp *p);
/* After flags and sidecars are merged: the sizes they imply are bounded
 * (prints and returns -1; what names the model, or NULL). */
#define CLI_PP_MAX_SIDE 16384
int cli_pp_check(const cli_pp *p, const char *what);

/* Load MODEL for image classification: move it to the device, merge its
 * sidecar into pp, and check it has a classifier head. NULL on error
 * (printed). */
vm_model *cli_load_classifier(const char *model, const char *key, const cli_dev *dev, cli_pp *pp, vm_info *info);

/* One label per line; returns NULL and prints on error. */
char **cli_read_labels(const char *path, int *n);
void cli_free_labels(char **l, int n);

#endif
