/* dataset_meta.c - see dataset_meta.h. */
#include <stdlib.h>
#include <string.h>

#include "dataset_meta.h"
#include "../core/util.h"
#include "../loaders/pickle.h"
#include "../loaders/zipread.h"

static int is_seq(const pk_obj *o) { return o && (o->t == PK_TUPLE || o->t == PK_LIST); }

static void from_root(const pk_obj *root, vm_dataset_meta *m) {
    if (!root || root->t != PK_DICT) return;
    const pk_obj *meta = pk_dict_get(root, "meta"), *dm = meta && meta->t == PK_DICT ? pk_dict_get(meta, "dataset_meta") : NULL;
    const pk_obj *cls = dm && dm->t == PK_DICT ? pk_dict_get(dm, "classes") : NULL;
    if (!is_seq(cls) || cls->u.seq.n == 0 || cls->u.seq.n > 256) return;
    size_t n = cls->u.seq.n;
    for (size_t i = 0; i < n; i++)
        if (cls->u.seq.items[i]->t != PK_STR) return;
    m->names = vm_xcalloc(n, sizeof *m->names);
    for (size_t i = 0; i < n; i++) m->names[i] = vm_xstrdup(cls->u.seq.items[i]->u.str.s);
    m->n = (int)n;
    const pk_obj *pal = pk_dict_get(dm, "palette");
    if (!is_seq(pal) || pal->u.seq.n != n) return;
    uint8_t *p = vm_xmalloc(n * 3);
    for (size_t i = 0; i < n; i++) {
        const pk_obj *c = pal->u.seq.items[i];
        if (!is_seq(c) || c->u.seq.n != 3) { free(p); return; }
        for (int k = 0; k < 3; k++) {
            const pk_obj *v = c->u.seq.items[k];
            if (v->t != PK_INT || v->u.i < 0 || v->u.i > 255) { free(p); return; }
            p[3 * i + k] = (uint8_t)v->u.i;
        }
    }
    m->palette = p;
}

void vm_dataset_meta_read(const char *path, vm_dataset_meta *m) {
    memset(m, 0, sizeof *m);
    char err[256];
    vm_file_map map;
    if (vm_map_file(path, &map, err, sizeof err)) return;
    vm_zip z;
    if (vm_zip_open(&z, map.data, map.size, path, err, sizeof err) == 0) {
        for (size_t i = 0; i < z.n; i++) {
            const char *nm = z.entries[i].name, *slash = strrchr(nm, '/');
            if (!slash || strchr(nm, '/') != slash || strcmp(slash + 1, "data.pkl") || z.entries[i].method != 0) continue;
            pk_state *ps = NULL;
            pk_obj *root = NULL;
            if (pk_load(z.entries[i].data, (size_t)z.entries[i].size, path, &ps, &root, err, sizeof err) == 0) from_root(root, m);
            pk_free(ps);
            break;
        }
        vm_zip_close(&z);
    }
    vm_unmap_file(&map);
}

void vm_dataset_meta_free(vm_dataset_meta *m) {
    for (int i = 0; i < m->n; i++) free(m->names[i]);
    free(m->names);
    free(m->palette);
    memset(m, 0, sizeof *m);
}
