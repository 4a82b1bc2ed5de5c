/* kernels-avx2.c - the generic vector kernels (simd/generic/) compiled
 * for AVX2; vec.h maps the vector API onto its intrinsics. */
#define VM_ISA_AVX2 1
#include "../generic/kernels.inc"
