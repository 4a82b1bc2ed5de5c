/* dispatch.c - the one place that picks a kernel table.
 * VMAMBA_ISA=scalar|avx2|avx512|neon forces a variant (tests, bug
 * reports); otherwise the best one the CPU supports. Only the scalar
 * reference exists so far; forcing an ISA this build lacks is an error
 * reported once and falls back to scalar. */
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
    .dwconv3x3_silu = vm_dwconv3x3_silu_scalar,
    .scan_cross = vm_scan_cross_scalar,
};

const vm_kernel_table *vm_kernels_scalar(void) { return &scalar_table; }

const vm_kernel_table *vm_kernels(void) {
    static const vm_kernel_table *chosen;
    if (chosen) return chosen;
    const char *isa = getenv("VMAMBA_ISA");
    if (isa && *isa && strcmp(isa, "scalar") != 0)
        fprintf(stderr, "vmamba: VMAMBA_ISA=%s is not available in this build; using scalar\n", isa);
    chosen = &scalar_table;
    return chosen;
}
