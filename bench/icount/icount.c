/* icount.c - a qemu-user TCG plugin that counts the aarch64 guest
 * instructions one vmamba forward pass executes, per engine op.
 *
 * Written against qemu's public plugin API (QEMU_PLUGIN_VERSION 1, qemu
 * 7.2 as in Debian 12): the few declarations it needs are in
 * qemu-plugin-api.h, so no qemu source tree is needed to build it.
 *
 * How ops are found without touching the engine: bench/icount/regions.py
 * reads the DWARF line table of the vmamba binary and the PROF(VM_OP_*)
 * statements of the C sources, and writes a table of file-offset ranges:
 *   - code on a PROF line of op k         -> "current op = k"
 *   - other code of a function with PROFs -> "current op = glue"
 *   - anything else (kernels, oneDNN, libc, OpenMP, helpers) inherits the
 *     current op, so a GEMM inside oneDNN counts for the op that called it.
 * A translation block takes the mark of its LAST instruction (a call ends a
 * block, so the block that calls a kernel carries the calling line).
 * A forward pass starts when a block starts at vm_forward/vm_forward_features
 * and ends at the return address after a call to them; passes are numbered
 * ("segments") and the per-block counts of one chosen pass are written out.
 *
 * Arguments: regions=FILE (from regions.py), out=FILE (TSV), measure=N
 * (which forward pass to detail, 1-based; default 1).
 * Output: "seg" lines (instructions of each pass, 1-based), "outside" (all
 * instructions outside the passes: loading, packing, printing)
 * and one "tb" line per translated block executed in the measured pass:
 * object path, file offset, instructions, instruction classes, then the
 * executions under each op. Run one guest thread (OMP_NUM_THREADS=1): the
 * counters are not atomic. */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu-plugin-api.h"

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

/* Instruction classes (decoded once per block at translation). */
enum { C_FMLA, C_DOT, C_IMAC, C_SIMD, C_LDST, C_BRANCH, C_INT, NCLS };
static const char *const cls_names[NCLS] = {"fmla", "dot", "imac", "simd", "ldst", "branch", "int"};

static int classify(uint32_t i) {
    /* FMLA/FMLS (vector), single/double: 0 Q U 01110 0 sz 1 Rm 11001 1 Rn Rd (U=0; FMLS has bit 23) */
    if ((i & 0xBF20FC00u) == 0x0E20CC00u) return C_FMLA;
    /* FMLA/FMLS (by element), single/double: 0 Q 0 01111 1 sz L M Rm 0 1 01 H 0 */
    if ((i & 0xBF80B400u) == 0x0F801000u) return C_FMLA;
    /* FMLA/FMLS (vector), half precision: 0 Q 0 01110 a 10 Rm 00 0 0 1 1; (by element): 0 Q 0 01111 00 L M Rm 0 1 01 H 0 */
    if ((i & 0xBF60FC00u) == 0x0E400C00u || (i & 0xBFC0B400u) == 0x0F001000u) return C_FMLA;
    /* SDOT/UDOT (vector): 0 Q U 01110 10 0 Rm 1001 0 1; (by element): 0 Q U 01111 10 L M Rm 1110 H 0 */
    if ((i & 0x9FE0FC00u) == 0x0E809400u || (i & 0x9FC0F400u) == 0x0F80E000u) return C_DOT;
    /* widening integer MAC used by non-dotprod INT8 GEMMs: SMLAL/UMLAL(2),
     * SMULL/UMULL(2) (vector, 0 Q U 01110 size 1 Rm 1x00 00) and SADALP/UADALP */
    if ((i & 0x9F20BC00u) == 0x0E208000u || (i & 0x9F3FFC00u) == 0x0E206800u) return C_IMAC;
    if (((i >> 25) & 7u) == 7u) return C_SIMD;         /* data processing, SIMD and FP */
    if (((i >> 25) & 5u) == 4u) return C_LDST;         /* loads and stores (GPR and SIMD) */
    if (((i >> 26) & 7u) == 5u) return C_BRANCH;       /* branches, exceptions, system */
    return C_INT;
}

/* ---- host mappings: which file (and offset) a block's code came from ---- */
typedef struct { uintptr_t lo, hi, off; int path; } map_t;
static map_t *maps;
static int nmaps;
static char **paths;
static int npaths;

static int path_id(const char *p) {
    for (int i = 0; i < npaths; i++)
        if (!strcmp(paths[i], p)) return i;
    paths = realloc(paths, sizeof *paths * (npaths + 1));
    paths[npaths] = strdup(p);
    return npaths++;
}

static void read_maps(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return;
    nmaps = 0;
    char line[4096];
    int cap = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi, off;
        char perm[8], dev[32], path[PATH_MAX] = "";
        unsigned long ino;
        if (sscanf(line, "%lx-%lx %7s %lx %31s %lu %4095[^\n]", &lo, &hi, perm, &off, dev, &ino, path) < 6) continue;
        if (nmaps == cap) maps = realloc(maps, sizeof *maps * (cap = cap ? 2 * cap : 256));
        char *p = path;
        while (*p == ' ') p++;
        maps[nmaps++] = (map_t){lo, hi, off, path_id(*p ? p : "[anon]")};
    }
    fclose(f);
}

static const map_t *find_map(uintptr_t a) {
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < nmaps; i++)
            if (a >= maps[i].lo && a < maps[i].hi) return &maps[i];
        read_maps();
    }
    return NULL;
}

/* ---- the region table ---- */
typedef struct { uint64_t lo, hi; int op; } mark_t;
static mark_t *marks;
static int nmarks, nops; /* ops 0..nops-1, then GLUE, then OUTSIDE */
static uint64_t *entries, *exits;
static int nentries, nexits;
static char bin_path[PATH_MAX];
#define GLUE (nops)
#define OUTSIDE (nops + 1)
#define NOCHANGE (-1)

static int load_regions(const char *file) {
    FILE *f = fopen(file, "r");
    if (!f) return -1;
    char kw[32];
    int cap = 0;
    while (fscanf(f, "%31s", kw) == 1) {
        if (!strcmp(kw, "nops")) {
            if (fscanf(f, "%d", &nops) != 1) break;
        } else if (!strcmp(kw, "mark")) {
            uint64_t lo, hi;
            int op;
            if (fscanf(f, "%" SCNx64 " %" SCNx64 " %d", &lo, &hi, &op) != 3) break;
            if (nmarks == cap) marks = realloc(marks, sizeof *marks * (cap = cap ? 2 * cap : 1024));
            marks[nmarks++] = (mark_t){lo, hi, op < 0 ? -2 : op};
        } else if (!strcmp(kw, "entry") || !strcmp(kw, "exit")) {
            uint64_t a;
            if (fscanf(f, "%" SCNx64, &a) != 1) break;
            if (kw[1] == 'n') { entries = realloc(entries, sizeof *entries * (nentries + 1)); entries[nentries++] = a; }
            else { exits = realloc(exits, sizeof *exits * (nexits + 1)); exits[nexits++] = a; }
        } else {
            int c;
            while ((c = fgetc(f)) != '\n' && c != EOF) {} /* comment or unknown: skip the line */
        }
    }
    fclose(f);
    for (int i = 0; i < nmarks; i++)
        if (marks[i].op == -2) marks[i].op = GLUE;
    return nops > 0 ? 0 : -1;
}

static int mark_of(uint64_t off) { /* marks are sorted and disjoint */
    int lo = 0, hi = nmarks - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (off < marks[mid].lo) hi = mid - 1;
        else if (off >= marks[mid].hi) lo = mid + 1;
        else return marks[mid].op;
    }
    return NOCHANGE;
}

/* ---- per-block records ---- */
typedef struct tb_rec {
    int path;
    uint64_t off;
    uint32_t n;
    uint32_t cls[NCLS];
    int mark;       /* op, GLUE or NOCHANGE */
    int kind;       /* 1 = pass entry, 2 = pass exit */
    uint64_t *ex;   /* executions per op in the measured pass (nops + 2) */
    struct tb_rec *next;
} tb_rec;
static tb_rec *all_tbs;
static int cur_op, seg, measure = 1;
#define MAXSEG 4096
static uint64_t seg_insns[MAXSEG], outside_insns;
static const char *out_file = "icount.tsv";

static void tb_exec(unsigned int vcpu, void *ud) {
    tb_rec *t = ud;
    if (t->kind == 1) {
        if (cur_op == OUTSIDE) { /* not already in a pass: a loop back to the entry or a nested call is not a new pass */
            if (seg < MAXSEG - 1) seg++;
            cur_op = GLUE;
        }
    } else if (t->kind == 2) {
        cur_op = OUTSIDE;
    }
    if (t->mark != NOCHANGE && cur_op != OUTSIDE) cur_op = t->mark;
    if (cur_op == OUTSIDE) {
        outside_insns += t->n;
        return;
    }
    seg_insns[seg] += t->n;
    if (seg == measure) {
        if (!t->ex) t->ex = calloc(nops + 2, sizeof *t->ex);
        t->ex[cur_op]++;
    }
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    size_t n = qemu_plugin_tb_n_insns(tb);
    if (!n) return;
    if (!bin_path[0]) { /* the guest binary is known once it is loaded, not at install time */
        const char *b = qemu_plugin_path_to_binary();
        if (!b || !realpath(b, bin_path)) snprintf(bin_path, sizeof bin_path, "%s", b ? b : "?");
    }
    tb_rec *t = calloc(1, sizeof *t);
    t->n = (uint32_t)n;
    t->mark = NOCHANGE;
    for (size_t k = 0; k < n; k++) {
        struct qemu_plugin_insn *in = qemu_plugin_tb_get_insn(tb, k);
        uint32_t w = 0;
        memcpy(&w, qemu_plugin_insn_data(in), qemu_plugin_insn_size(in) < 4 ? qemu_plugin_insn_size(in) : 4);
        t->cls[classify(w)]++;
    }
    uintptr_t h0 = (uintptr_t)qemu_plugin_insn_haddr(qemu_plugin_tb_get_insn(tb, 0));
    uintptr_t hl = (uintptr_t)qemu_plugin_insn_haddr(qemu_plugin_tb_get_insn(tb, n - 1));
    const map_t *mp = find_map(h0);
    if (mp) {
        t->path = mp->path;
        t->off = h0 - mp->lo + mp->off;
        if (!strcmp(paths[mp->path], bin_path)) {
            const map_t *ml = find_map(hl);
            if (ml) t->mark = mark_of(hl - ml->lo + ml->off);
            for (int i = 0; i < nentries; i++)
                if (entries[i] == t->off) t->kind = 1;
            for (int i = 0; i < nexits; i++)
                if (exits[i] == t->off) t->kind = 2;
        }
    } else {
        t->path = path_id("[unknown]");
        t->off = qemu_plugin_tb_vaddr(tb);
    }
    t->next = all_tbs;
    all_tbs = t;
    qemu_plugin_register_vcpu_tb_exec_cb(tb, tb_exec, QEMU_PLUGIN_CB_NO_REGS, t);
}

static void at_exit(qemu_plugin_id_t id, void *p) {
    FILE *f = fopen(out_file, "w");
    if (!f) {
        qemu_plugin_outs("icount: cannot write the output file\n");
        return;
    }
    fprintf(f, "# icount: nops %d measure %d classes", nops, measure);
    for (int c = 0; c < NCLS; c++) fprintf(f, " %s", cls_names[c]);
    fprintf(f, "\n");
    fprintf(f, "outside\t%" PRIu64 "\n", outside_insns);
    for (int s = 1; s <= seg; s++) fprintf(f, "seg\t%d\t%" PRIu64 "\n", s, seg_insns[s]);
    for (tb_rec *t = all_tbs; t; t = t->next) {
        if (!t->ex) continue;
        fprintf(f, "tb\t%s\t%" PRIx64 "\t%u", paths[t->path], t->off, t->n);
        for (int c = 0; c < NCLS; c++) fprintf(f, "\t%u", t->cls[c]);
        for (int o = 0; o < nops + 2; o++) fprintf(f, "\t%" PRIu64, t->ex[o]);
        fprintf(f, "\n");
    }
    fclose(f);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv) {
    const char *regions = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strncmp(argv[i], "regions=", 8)) regions = argv[i] + 8;
        else if (!strncmp(argv[i], "out=", 4)) out_file = argv[i] + 4;
        else if (!strncmp(argv[i], "measure=", 8)) measure = atoi(argv[i] + 8);
        else {
            fprintf(stderr, "icount: unknown argument '%s' (regions=FILE out=FILE measure=N)\n", argv[i]);
            return -1;
        }
    }
    if (!regions || load_regions(regions)) {
        fprintf(stderr, "icount: need regions=FILE with an op table (bench/icount/regions.py)\n");
        return -1;
    }
    cur_op = OUTSIDE;
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_atexit_cb(id, at_exit, NULL);
    return 0;
}
