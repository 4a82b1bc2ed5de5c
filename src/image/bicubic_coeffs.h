/* bicubic_coeffs.h - Pillow's bicubic filter tables (a = -0.5), shared by
 * the plain reference resize and the fast one so both weigh the same taps. */
#ifndef VM_BICUBIC_COEFFS_H
#define VM_BICUBIC_COEFFS_H

#include <stdint.h>

/* 22-bit fixed-point weights: a pass sums uint8 * weight in int32 from a
 * 2^21 rounding bias. Each |sum| stays below 255 * sum(|weight|) + 2^21 <
 * 2^31 in any order (the negative lobes add at most ~15% to the 2^22 the
 * weights sum to), so the passes may sum their taps in any order. */
#define VM_BICUBIC_PRECISION_BITS (32 - 8 - 2)

typedef struct {
    int ksize;    /* the most taps an output pixel has (zero-padded) */
    int *bounds;  /* [out][2]: first tap, tap count */
    int32_t *k;   /* [out][ksize] fixed-point weights */
} vm_bicubic_coeffs;

/* Coefficients of output pixels [first, first + n) of a resize from
 * in_size to out_size (each depends only on its own index, so any window
 * of the output is computed exactly as the whole would be). Both tap
 * bounds are non-decreasing in the output index. -1 when out of memory. */
int vm_bicubic_coeffs_init(vm_bicubic_coeffs *c, int in_size, int out_size, int first, int n);
void vm_bicubic_coeffs_free(vm_bicubic_coeffs *c);

static inline uint8_t vm_bicubic_clip8(int32_t v) {
    v >>= VM_BICUBIC_PRECISION_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

#endif
