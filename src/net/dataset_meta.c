/* dataset_meta.c - see dataset_meta.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dataset_meta.h"
#include "../core/util.h"
#include "../loaders/pickle.h"
#include "../loaders/zipread.h"

static int is_seq(const pk_obj *o) { return o && (o->t == PK_TUPLE || o->t == PK_LIST); }

/* 0 (with or without meta), or -1 when memory runs out. */
static int from_root(const pk_obj *root, vm_dataset_meta *m) {
    if (!root || root->t != PK_DICT) return 0;
    const pk_obj *meta = pk_dict_get(root, "meta"), *dm = meta && meta->t == PK_DICT ? pk_dict_get(meta, "dataset_meta") : NULL;
    const pk_obj *cls = dm && dm->t == PK_DICT ? pk_dict_get(dm, "classes") : NULL;
    if (!is_seq(cls) || cls->u.seq.n == 0 || cls->u.seq.n > 256) return 0;
    size_t n = cls->u.seq.n;
    for (size_t i = 0; i < n; i++)
        if (cls->u.seq.items[i]->t != PK_STR) return 0;
    if (!(m->names = calloc(n, sizeof *m->names))) return -1;
    m->n = (int)n; /* set first so that vm_dataset_meta_free frees a partial list */
    for (size_t i = 0; i < n; i++)
        if (!(m->names[i] = strdup(cls->u.seq.items[i]->u.str.s))) return -1;
    const pk_obj *pal = pk_dict_get(dm, "palette");
    if (!is_seq(pal) || pal->u.seq.n != n) return 0;
    uint8_t *p = malloc(n * 3);
    if (!p) return -1;
    for (size_t i = 0; i < n; i++) {
        const pk_obj *c = pal->u.seq.items[i];
        if (!is_seq(c) || c->u.seq.n != 3) { free(p); return 0; }
        for (int k = 0; k < 3; k++) {
            const pk_obj *v = c->u.seq.items[k];
            if (v->t != PK_INT || v->u.i < 0 || v->u.i > 255) { free(p); return 0; }
            p[3 * i + k] = (uint8_t)v->u.i;
        }
    }
    m->palette = p;
    return 0;
}

/* Whether a failure to map, open or interpret the file is a lack of memory:
 * the model was just loaded from this same file, so that is the only way
 * these can fail now (a file that is not a zip, safetensors, has no meta).
 * Before, such a failure was ignored and the built-in names were used. */
static int nomem(const char *e) { return strstr(e, "out of memory") || strstr(e, strerror(ENOMEM)); }

int vm_dataset_meta_read(const char *path, vm_dataset_meta *m, char *errout, size_t errlen) {
    memset(m, 0, sizeof *m);
    int oom = 0;
    char err[512] = "";
    vm_file_map map;
    if (vm_map_file(path, &map, err, sizeof err)) return nomem(err) ? vm_errf(errout, errlen, "%s", err) : 0;
    vm_zip z;
    if (vm_zip_open(&z, map.data, map.size, path, err, sizeof err)) {
        vm_unmap_file(&map);
        return nomem(err) ? vm_errf(errout, errlen, "%s", err) : 0;
    }
    {
        for (size_t i = 0; i < z.n; i++) {
            const char *nm = z.entries[i].name, *slash = strrchr(nm, '/');
            if (!slash || strchr(nm, '/') != slash || strcmp(slash + 1, "data.pkl") || z.entries[i].method != 0) continue;
            pk_state *ps = NULL;
            pk_obj *root = NULL;
            if (pk_load(z.entries[i].data, (size_t)z.entries[i].size, path, &ps, &root, err, sizeof err) == 0)
                oom = from_root(root, m);
            else if (nomem(err))
                oom = 2;
            pk_free(ps);
            break;
        }
        vm_zip_close(&z);
    }
    vm_unmap_file(&map);
    if (oom == 2) return vm_errf(errout, errlen, "%s", err);
    if (!oom) return 0;
    vm_dataset_meta_free(m);
    return vm_errf(errout, errlen, "%s: out of memory reading the class names and palette", path);
}

void vm_dataset_meta_free(vm_dataset_meta *m) {
    for (int i = 0; i < m->n; i++) free(m->names[i]);
    free(m->names);
    free(m->palette);
    memset(m, 0, sizeof *m);
}
