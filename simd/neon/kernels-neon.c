/* kernels-neon.c - the generic vector kernels (simd/generic/) compiled
 * for NEON; vec.h maps the vector API onto its intrinsics. */
#define VM_ISA_NEON 1
#include "../generic/kernels.inc"
