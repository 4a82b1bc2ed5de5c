/* fuzz_json.h - jansson's allocations in a poisoned bump arena for the
 * loader harnesses. Parsing a safetensors header makes ~20 jansson
 * allocations per tensor (2 300 for the tiny seed model), and under ASan
 * each malloc/free (stack unwinding, quarantine, libFuzzer's hooks) cost
 * more than the parse itself. The arena keeps what ASan checks in OUR code:
 *   - a block is unpoisoned only while live, with a poisoned 16-byte
 *     redzone after it: our reads of jansson's strings past their end or
 *     after json_decref are reported as before (use-after-free even better:
 *     freed blocks are not reused within an execution);
 *   - a jansson value still live at the end of an execution (a missing
 *     json_decref, which LeakSanitizer found before) aborts the run with
 *     "fuzz_json: N jansson blocks leaked".
 * jansson itself is not instrumented either way. FUZZ_JSON_MALLOC=1 keeps
 * plain malloc (to get LeakSanitizer's stack of a leak). */
#ifndef FUZZ_JSON_H
#define FUZZ_JSON_H
#include <jansson.h>
#include <sanitizer/asan_interface.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define FUZZ_JSON_ARENA (64u << 20) /* reserved, touched only as used; then malloc */
#define FUZZ_JSON_HDR 16
#define FUZZ_JSON_RZ 16

/* Not instrumented for coverage either: the arena's branches are not the
 * target's, and as features they would only grow the corpus. */
#define FUZZ_JSON_PLAIN __attribute__((no_sanitize("address", "coverage")))

static uint8_t *fuzz_json_arena;
static size_t fuzz_json_top, fuzz_json_live;

/* Block: [size_t n | pad][n bytes][redzone]; header and redzone poisoned. */
FUZZ_JSON_PLAIN static void *fuzz_json_malloc(size_t n) {
    size_t body = (n + 15) & ~(size_t)15, need = FUZZ_JSON_HDR + body + FUZZ_JSON_RZ;
    if (n > FUZZ_JSON_ARENA || need > FUZZ_JSON_ARENA - fuzz_json_top) return malloc(n); /* full: the heap */
    uint8_t *h = fuzz_json_arena + fuzz_json_top;
    fuzz_json_top += need;
    memcpy(h, &n, sizeof n);
    fuzz_json_live++;
    ASAN_UNPOISON_MEMORY_REGION(h + FUZZ_JSON_HDR, n);
    return h + FUZZ_JSON_HDR;
}

FUZZ_JSON_PLAIN static void fuzz_json_free(void *p) {
    uint8_t *b = p;
    if (!b) return;
    if (b < fuzz_json_arena || b >= fuzz_json_arena + FUZZ_JSON_ARENA) {
        free(p);
        return;
    }
    size_t n;
    memcpy(&n, b - FUZZ_JSON_HDR, sizeof n);
    ASAN_POISON_MEMORY_REGION(b, n);
    fuzz_json_live--;
}

/* In LLVMFuzzerInitialize, before anything uses jansson. */
static void fuzz_json_init(void) {
    const char *e = getenv("FUZZ_JSON_MALLOC");
    if (e && *e == '1') return;
    void *a = mmap(NULL, FUZZ_JSON_ARENA, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (a == MAP_FAILED) return; /* plain malloc */
    fuzz_json_arena = a;
    ASAN_POISON_MEMORY_REGION(fuzz_json_arena, FUZZ_JSON_ARENA);
    json_set_alloc_funcs(fuzz_json_malloc, fuzz_json_free);
}

/* At the end of every execution: no live block, then the arena is reset. */
__attribute__((no_sanitize("coverage"))) static void fuzz_json_end(void) {
    if (!fuzz_json_arena) return;
    if (fuzz_json_live) {
        fprintf(stderr, "fuzz_json: %zu jansson blocks leaked (a missing json_decref); FUZZ_JSON_MALLOC=1 for the stacks\n",
                fuzz_json_live);
        abort();
    }
    ASAN_POISON_MEMORY_REGION(fuzz_json_arena, fuzz_json_top);
    fuzz_json_top = 0;
}
#endif
