/* vec-math.h - exp, softplus, erf and SiLU on vectors, written once on
 * top of vec.h. Errors against double-precision libm, measured by
 * tests/test_kernels.c over wide ranges: exp <= 2 ulp, softplus and
 * GELU/SiLU within 2e-7 relative (see that test for the bounds asserted). */
#ifndef VM_VEC_MATH_H
#define VM_VEC_MATH_H

#include "../vec.h"

/* e^x: x = n*ln2 + r, |r| <= ln2/2 (Cody-Waite split ln2), e^r by a
 * degree-7 Taylor polynomial (truncation < 1e-9 relative), times 2^n.
 * Inputs are clamped to [-87.3, 88]: below, the result is flushed
 * towards 0 (2^-126), as no kernel needs denormals. */
static inline vf vf_exp(vf x) {
    x = vf_min(vf_max(x, vf_set1(-87.33654f)), vf_set1(88.0f)); /* 2^n stays finite */
    vf n = vi_to_vf(vf_round_to_int(vf_mul(x, vf_set1(1.44269504088896341f))));
    vf r = vf_fnma(n, vf_set1(0.693359375f), x);
    r = vf_fnma(n, vf_set1(-2.12194440e-4f), r);
    vf p = vf_set1(1.0f / 5040.0f);
    p = vf_fma(p, r, vf_set1(1.0f / 720.0f));
    p = vf_fma(p, r, vf_set1(1.0f / 120.0f));
    p = vf_fma(p, r, vf_set1(1.0f / 24.0f));
    p = vf_fma(p, r, vf_set1(1.0f / 6.0f));
    p = vf_fma(p, r, vf_set1(0.5f));
    p = vf_fma(p, r, vf_set1(1.0f));
    p = vf_fma(p, r, vf_set1(1.0f));
    return vf_mul(p, vf_pow2i(vf_round_to_int(n)));
}

/* log1p(y) for y in [0, 1]: 2 atanh(s), s = y / (2 + y) in [0, 1/3], as
 * 2s (1 + s^2/3 + ... + s^12/13) (truncation < 2e-8 relative). One
 * division, no exponent split and no correction step: full relative
 * accuracy down to tiny y (s ~ y/2). */
static inline vf vf_log1p_0to1(vf y) {
    vf s = vf_div(y, vf_add(vf_set1(2.0f), y));
    vf s2 = vf_mul(s, s);
    vf p = vf_set1(1.0f / 13.0f);
    p = vf_fma(p, s2, vf_set1(1.0f / 11.0f));
    p = vf_fma(p, s2, vf_set1(1.0f / 9.0f));
    p = vf_fma(p, s2, vf_set1(1.0f / 7.0f));
    p = vf_fma(p, s2, vf_set1(1.0f / 5.0f));
    p = vf_fma(p, s2, vf_set1(1.0f / 3.0f));
    p = vf_fma(p, s2, vf_set1(1.0f));
    return vf_mul(vf_add(s, s), p);
}

/* softplus(x) = max(x, 0) + log1p(e^-|x|), and x itself above 20 as in
 * torch. (Was ln(1+y) by exponent split plus Goldberg's correction: two
 * divisions and ~40 cycles a vector; this is ~half, same accuracy.) */
static inline vf vf_softplus(vf x) {
    vf r = vf_add(vf_max(x, vf_zero()), vf_log1p_0to1(vf_exp(vf_neg(vf_abs(x)))));
    return vf_select(vf_gt(x, vf_set1(20.0f)), x, r);
}

static inline vf vf_silu(vf x) { return vf_div(x, vf_add(vf_set1(1.0f), vf_exp(vf_neg(x)))); }

/* erf via erfc(z) = t exp(-z^2 + P(t)), t = 1/(1 + z/2) (Numerical
 * Recipes' Chebyshev fit, relative error < 1.2e-7 for all z >= 0). */
static inline vf vf_erf(vf x) {
    vf z = vf_abs(x);
    vf t = vf_div(vf_set1(1.0f), vf_fma(vf_set1(0.5f), z, vf_set1(1.0f)));
    vf p = vf_set1(0.17087277f);
    p = vf_fma(p, t, vf_set1(-0.82215223f));
    p = vf_fma(p, t, vf_set1(1.48851587f));
    p = vf_fma(p, t, vf_set1(-1.13520398f));
    p = vf_fma(p, t, vf_set1(0.27886807f));
    p = vf_fma(p, t, vf_set1(-0.18628806f));
    p = vf_fma(p, t, vf_set1(0.09678418f));
    p = vf_fma(p, t, vf_set1(0.37409196f));
    p = vf_fma(p, t, vf_set1(1.00002368f));
    p = vf_fma(p, t, vf_set1(-1.26551223f));
    vf erfc = vf_mul(t, vf_exp(vf_sub(p, vf_mul(z, z))));
    return vf_copysign(vf_sub(vf_set1(1.0f), erfc), x);
}

/* GELU, exact form 0.5 x (1 + erf(x / sqrt 2)). */
static inline vf vf_gelu(vf x) {
    vf e = vf_erf(vf_mul(x, vf_set1(0.70710678118654752f)));
    return vf_mul(vf_mul(vf_set1(0.5f), x), vf_add(vf_set1(1.0f), e));
}

#endif
