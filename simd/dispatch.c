/* dispatch.c - the one place that picks a kernel table.
 * Default: the widest ISA the CPU (and OS) supports: avx512 > avx2 >
 * scalar on x86-64, neon on aarch64. VMAMBA_ISA=scalar|avx2|avx512|neon
 * forces one (tests, bug reports); naming one this CPU or build lacks is
 * reported once on stderr and the default is used. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "scalar/scalar.h"

static const vm_kernel_table scalar_table = {
    .name = "scalar",
    .layernorm = vm_layernorm_scalar,
    .gelu = vm_gelu_scalar,
    .silu = vm_silu_scalar,
    .mul_silu = vm_mul_silu_scalar,
    .layernorm_mul_silu = vm_layernorm_mul_silu_scalar,
    .dt_proj = vm_dt_proj_scalar,
    .dwconv3x3_silu = vm_dwconv3x3_silu_scalar,
    .scan_cross = vm_scan_cross_scalar,
    .quantize_u8 = vm_quantize_u8_scalar,
    .layernorm_u8 = vm_layernorm_u8_scalar,
    .quantize_rows_u8 = vm_quantize_rows_u8_scalar,
    .dequant_rows = vm_dequant_rows_scalar,
};

#ifdef VM_HAVE_AVX512
extern const vm_kernel_table vm_kernel_table_avx512;
#endif
#ifdef VM_HAVE_AVX2
extern const vm_kernel_table vm_kernel_table_avx2;
#endif
#ifdef VM_HAVE_NEON
extern const vm_kernel_table vm_kernel_table_neon;
#endif

const vm_kernel_table *vm_kernels_scalar(void) { return &scalar_table; }

/* Tables this build has and this CPU can run, best first; NULL-ended.
 * Filled once (pthread_once: forward passes on several threads ask). */
static const vm_kernel_table *list[5];
static pthread_once_t list_once = PTHREAD_ONCE_INIT;

static void fill_list(void) {
    {
        int n = 0;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_cpu_init();
#ifdef VM_HAVE_AVX512
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
            list[n++] = &vm_kernel_table_avx512;
#endif
#ifdef VM_HAVE_AVX2
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) list[n++] = &vm_kernel_table_avx2;
#endif
#endif
#ifdef VM_HAVE_NEON
        list[n++] = &vm_kernel_table_neon; /* NEON is baseline on aarch64 */
#endif
        list[n++] = &scalar_table;
        list[n] = NULL;
    }
}

const vm_kernel_table *const *vm_kernels_available(void) {
    pthread_once(&list_once, fill_list);
    return list;
}

/* Read on every kernel call from any thread: atomic. */
static const vm_kernel_table *chosen;

void vm_kernels_set(const vm_kernel_table *t) { __atomic_store_n(&chosen, t, __ATOMIC_RELEASE); }

const vm_kernel_table *vm_kernels(void) {
    const vm_kernel_table *c = __atomic_load_n(&chosen, __ATOMIC_ACQUIRE);
    if (c) return c;
    const vm_kernel_table *const *avail = vm_kernels_available();
    const char *isa = getenv("VMAMBA_ISA");
    const vm_kernel_table *pick = avail[0];
    if (isa && *isa) {
        const vm_kernel_table *found = NULL;
        for (int i = 0; avail[i]; i++)
            if (strcmp(avail[i]->name, isa) == 0) found = avail[i];
        if (found) pick = found;
        else fprintf(stderr, "vmamba: VMAMBA_ISA=%s is not available on this CPU/build; using %s\n", isa, pick->name);
    }
    /* Two first callers may both pick: they pick the same table. The
     * warning above may then show twice, which is harmless. */
    __atomic_store_n(&chosen, pick, __ATOMIC_RELEASE);
    return pick;
}
