/* kernels-avx512.c - the generic vector kernels (simd/generic/) compiled
 * for AVX512; vec.h maps the vector API onto its intrinsics. */
#define VM_ISA_AVX512 1
#include "../generic/kernels.inc"
