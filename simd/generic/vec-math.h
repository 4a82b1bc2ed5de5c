/* vec-math.h - exp, 2^x, the scan's softplus, GELU and SiLU on vectors,
 * written once on top of vec.h. Errors against double-precision libm,
 * measured by tests/test_kernels.c over wide ranges: exp <= 2 ulp,
 * GELU/SiLU within 4e-7 of max(1, |value|). log2(1 + 2^w): the fit is
 * within 4.8e-8 relative, but as the scan's softplus(v) = ln 2 *
 * log2(1 + 2^(v log2 e)) the rounding of w = v log2 e adds about
 * |v| 2^-24 relative where v < 0 (delta ~ e^v there, so the absolute error
 * stays tiny); it is checked inside the scan's test only
 * (scan_cross_matches_composition, 1e-5 of max(1, |ref|)).
 * NaN: clamps take the constant first: x86's max/min return their
 * second operand when one is NaN, so a NaN input stays NaN, as on NEON. */
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
    x = vf_min(vf_set1(88.0f), vf_max(vf_set1(-87.33654f), x)); /* 2^n stays finite (constant first: NaN passes, see the top) */
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

/* 2^x for the selective scan's state decay exp(delta * A) = 2^(s2 * A),
 * s2 = log2(1 + 2^w) = delta / ln 2 (vf_log2_1p_exp2): x = n + f, n the
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
    x = vf_min(vf_set1(127.0f), vf_max(vf_set1(-126.0f), x)); /* constant first: NaN passes, see the top */
    vi n = vf_round_to_int(x);
    return vf_mul(vf_exp2_poly(vf_sub(x, vi_to_vf(n))), vf_pow2i(n));
}
#endif

/* 2^x for x <= 0 (the scan's decays and softplus term): no upper clamp. */
#if defined(VM_ISA_AVX512)
static inline vf vf_exp2_nonpos(vf x) { return vf_exp2(x); }
#else
static inline vf vf_exp2_nonpos(vf x) {
    x = vf_max(vf_set1(-126.0f), x); /* constant first: NaN passes, see the top */
    vi n = vf_round_to_int(x);
    return vf_mul(vf_exp2_poly(vf_sub(x, vi_to_vf(n))), vf_pow2i(n));
}
#endif

/* log2(1 + 2^w) for the selective scan's softplus, in base 2 so that one
 * result gives both delta = ln 2 * it and the state decay exp(delta * A) =
 * 2^(it * A) (no log2 e product, no second range reduction):
 *   log2(1 + 2^w) = max(w, 0) + log2(1 + y),  y = 2^-|w| in (0, 1],
 *   log2(1 + y) = y q(y),  q a degree-8 fit of log2(1 + y) / y on [0, 1]
 * (Chebyshev, |error| 4.8e-8 against q's 1..1.44: relative, also for tiny
 * y, where ln(1 + y) would need log1p's care). 19 vector operations with
 * vf_exp2; the exp + log (with a division for atanh, another for log1p's
 * correction) it replaces took ~55 (bench/RESULTS.md, ARM session 7). */
static inline vf vf_log2_1p_exp2(vf w) {
    vf y = vf_exp2_nonpos(vf_neg(vf_abs(w)));
    vf q = vf_set1(0.007395402137863264f);
    q = vf_fma(q, y, vf_set1(-0.041945008928705863f));
    q = vf_fma(q, y, vf_set1(0.11183207392944968f));
    q = vf_fma(q, y, vf_set1(-0.1962389518989473f));
    q = vf_fma(q, y, vf_set1(0.27522121233093542f));
    q = vf_fma(q, y, vf_set1(-0.35829906959230153f));
    q = vf_fma(q, y, vf_set1(0.48067888959193056f));
    q = vf_fma(q, y, vf_set1(-0.72133951314566449f));
    q = vf_fma(q, y, vf_set1(1.4426949917298651f));
    return vf_fma(y, q, vf_max(vf_zero(), w)); /* constant first: NaN passes, see the top */
}

/* SiLU x / (1 + e^-x), e^-x as 2^(-x log2 e) (vf_exp2: 4 operations fewer
 * than vf_exp; the product's rounding moves e^-x by at most |x| 6e-8
 * relative, which the quotient carries at most as much: within the test's
 * 4e-7 for |x| <= 30, and where |x| is larger SiLU is x or 0 to float). */
static inline vf vf_silu(vf x) {
    return vf_div(x, vf_add(vf_set1(1.0f), vf_exp2(vf_mul(x, vf_set1(-1.44269504088896341f)))));
}

/* GELU, exact form 0.5 x (1 + erf(x / sqrt 2)), through erfc, which keeps
 * its relative accuracy in both tails: with z = |x| / sqrt 2,
 * erfc(z) = t exp(P(t) - z^2), t = 1 / (1 + z / 2) (Numerical Recipes'
 * Chebyshev fit, relative error < 1.2e-7 for all z >= 0), and
 *   h = erfc(z) / 2 = t 2^(log2e P(t) - 1 - log2e x^2 / 2),
 *   GELU = x (1 - h) for x > 0, x h otherwise.
 * P's coefficients come scaled by log2 e (the constant term less 1 for
 * the halving), so the exponential is one vf_exp2 with no product ahead
 * of it: ~31 operations a vector against ~50 for 0.5 x (1 + erf) with
 * erf = 1 - erfc by vf_exp (bench/RESULTS.md, ARM session 7). */
static inline vf vf_gelu(vf x) {
    vf t = vf_div(vf_set1(1.0f), vf_fma(vf_abs(x), vf_set1(0.35355339059327376f), vf_set1(1.0f)));
    vf p = vf_set1(0.17087277f * 1.44269504088896341f);
    p = vf_fma(p, t, vf_set1(-0.82215223f * 1.44269504088896341f));
    p = vf_fma(p, t, vf_set1(1.48851587f * 1.44269504088896341f));
    p = vf_fma(p, t, vf_set1(-1.13520398f * 1.44269504088896341f));
    p = vf_fma(p, t, vf_set1(0.27886807f * 1.44269504088896341f));
    p = vf_fma(p, t, vf_set1(-0.18628806f * 1.44269504088896341f));
    p = vf_fma(p, t, vf_set1(0.09678418f * 1.44269504088896341f));
    p = vf_fma(p, t, vf_set1(0.37409196f * 1.44269504088896341f));
    p = vf_fma(p, t, vf_set1(1.00002368f * 1.44269504088896341f));
    p = vf_fma(p, t, vf_set1(-1.26551223f * 1.44269504088896341f - 1.0f));
    vf h = vf_mul(t, vf_exp2(vf_fnma(vf_mul(x, x), vf_set1(0.72134752044448170f), p)));
    return vf_mul(x, vf_select(vf_gt(x, vf_zero()), vf_sub(vf_set1(1.0f), h), h));
}

#endif
