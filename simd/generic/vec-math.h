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
#if defined(VM_ISA_AVX512)
/* AVX-512: the same split and polynomial, n rounded in float (vrndscaleps)
 * and the result scaled by 2^n with vscalefps: bit-identical to the
 * generic version below for x in [-87.3, 88] (both scale by an exact power
 * of two), and without its clamps (vscalefps saturates to 0 / inf, with
 * denormals between): 4 fewer instructions a vector, which the scan's
 * exp-bound loops feel. */
static inline vf vf_exp(vf x) {
    vf n = _mm512_roundscale_ps(vf_mul(x, vf_set1(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
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
    return _mm512_scalef_ps(p, n);
}
#else
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
#endif

/* 2^x for the selective scan's d_state > 1 state decay exp(delta * A) =
 * 2^(delta * A log2 e), A log2 e formed once per block: x = n + f, n the
 * nearest integer (f = x - n exact, |f| <= 1/2), 2^f = 1 + f q(f) with q a
 * degree-4 minimax fit (relative error 1.7e-7, at most 2.0 ulp in this FP32
 * Horner form, like vf_exp's 2 ulp), scaled by 2^n. 9 vector operations
 * with the product against vf_exp's 13 (no log2 e product, no Cody-Waite
 * pair, two polynomial terms less): the d_state-16 scan is bound by them
 * (a degree-5 q, 0.94 ulp, ran 7 % slower; bench/RESULTS.md). */
static inline vf vf_exp2_poly(vf f) {
    vf p = vf_set1(0.0013264631852507591f);
    p = vf_fma(p, f, vf_set1(0.009671486914157867f));
    p = vf_fma(p, f, vf_set1(0.05550733581185341f));
    p = vf_fma(p, f, vf_set1(0.24022242426872253f));
    p = vf_fma(p, f, vf_set1(0.6931470036506653f));
    return vf_fma(p, f, vf_set1(1.0f));
}
#if defined(VM_ISA_AVX512)
static inline vf vf_exp2(vf x) {
    vf n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    return _mm512_scalef_ps(vf_exp2_poly(vf_sub(x, n)), n);
}
#else
/* Clamped so 2^n stays a normal float (below: flushed towards 2^-126 like
 * vf_exp); the same value as the AVX-512 form in between. */
static inline vf vf_exp2(vf x) {
    x = vf_min(vf_max(x, vf_set1(-126.0f)), vf_set1(127.0f));
    vi n = vf_round_to_int(x);
    return vf_mul(vf_exp2_poly(vf_sub(x, vi_to_vf(n))), vf_pow2i(n));
}
#endif

/* ln(z) for z in [1, 2]: z = m * 2^e with m in [sqrt(1/2), sqrt(2)),
 * ln m = 2 atanh(s), s = (m-1)/(m+1), |s| <= 0.1716, series to s^11. */
static inline vf vf_log_1to2(vf z) {
    vi bits = vf_bits(z);
    vi e = vi_sub(vi_srl(bits, 23), 127);
    vf m = vi_as_vf(vi_or(vi_and(bits, 0x007fffff), 0x3f800000)); /* [1, 2) */
    vmask big = vf_gt(m, vf_set1(1.41421356f));
    m = vf_select(big, vf_mul(m, vf_set1(0.5f)), m);
    vf ef = vf_add(vi_to_vf(e), vf_select(big, vf_set1(1.0f), vf_zero()));
    vf s = vf_div(vf_sub(m, vf_set1(1.0f)), vf_add(m, vf_set1(1.0f)));
    vf s2 = vf_mul(s, s);
    vf p = vf_set1(2.0f / 11.0f);
    p = vf_fma(p, s2, vf_set1(2.0f / 9.0f));
    p = vf_fma(p, s2, vf_set1(2.0f / 7.0f));
    p = vf_fma(p, s2, vf_set1(2.0f / 5.0f));
    p = vf_fma(p, s2, vf_set1(2.0f / 3.0f));
    p = vf_fma(p, s2, vf_set1(2.0f));
    return vf_fma(ef, vf_set1(0.693147180559945f), vf_mul(p, s));
}

/* softplus(x) = max(x, 0) + log1p(e^-|x|), and x itself above 20 as in
 * torch. log1p(y) = ln(1+y) * y / ((1+y) - 1) keeps full relative
 * accuracy for tiny y (Goldberg); where 1+y rounds to 1 it returns y. */
static inline vf vf_softplus(vf x) {
    vf y = vf_exp(vf_neg(vf_abs(x)));
    vf z = vf_add(vf_set1(1.0f), y);
    vf zm1 = vf_sub(z, vf_set1(1.0f));
    vmask one = vf_eq(zm1, vf_zero());
    vf l = vf_mul(vf_log_1to2(z), vf_div(y, vf_select(one, vf_set1(1.0f), zm1)));
    l = vf_select(one, y, l);
    vf r = vf_add(vf_max(x, vf_zero()), l);
    return vf_select(vf_gt(x, vf_set1(20.0f)), x, r);
}

/* softplus for the d_state > 1 scans, without divisions: log1p(y), y =
 * e^-|x| in (0, 1], as y p(y) with p a degree-8 fit of log1p(y) / y on
 * [0, 1] (Lawson's weighted least squares, relative error 3e-8; 1.8e-7 in
 * this FP32 Horner form, vf_softplus's 2e-7 class). vf_softplus's log and
 * its two divisions made the per-step softplus a third of the d_state-16
 * scan (bench/RESULTS.md). The d_state-1 scans keep vf_softplus: their
 * results stay bit-identical (the Mask R-CNN golden's exact score tie). */
static inline vf vf_softplus_poly(vf x) {
    const vf y = vf_exp(vf_neg(vf_abs(x)));
    vf p = vf_set1(0.005232302006334066f);
    p = vf_fma(p, y, vf_set1(-0.02950320392847061f));
    p = vf_fma(p, y, vf_set1(0.07822176069021225f));
    p = vf_fma(p, y, vf_set1(-0.13662798702716827f));
    p = vf_fma(p, y, vf_set1(0.19105741381645203f));
    p = vf_fma(p, y, vf_set1(-0.24842894077301025f));
    p = vf_fma(p, y, vf_set1(0.33319082856178284f));
    p = vf_fma(p, y, vf_set1(-0.4999949336051941f));
    p = vf_fma(p, y, vf_set1(0.9999999403953552f));
    const vf r = vf_fma(y, p, vf_max(x, vf_zero()));
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
