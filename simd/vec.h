/* vec.h - the one place where ISA differences live. Kernels in
 * simd/generic/ are written once against this small vector API and
 * compiled once per ISA (simd/avx512/, simd/avx2/, simd/neon/), which
 * define VM_ISA_* before including them. VM_SFX(name) gives each copy its
 * own symbol names (name_avx512, ...). */
#ifndef VM_VEC_H
#define VM_VEC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(VM_ISA_AVX512)
#include <immintrin.h>
#define VL 16
#define VM_SFX(n) n##_avx512
typedef __m512 vf;
typedef __m512i vi;
typedef __mmask16 vmask;
static inline vf vf_load(const float *p) { return _mm512_loadu_ps(p); }
static inline void vf_store(float *p, vf v) { _mm512_storeu_ps(p, v); }
static inline vf vf_set1(float x) { return _mm512_set1_ps(x); }
static inline vf vf_zero(void) { return _mm512_setzero_ps(); }
static inline vf vf_add(vf a, vf b) { return _mm512_add_ps(a, b); }
static inline vf vf_sub(vf a, vf b) { return _mm512_sub_ps(a, b); }
static inline vf vf_mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
static inline vf vf_div(vf a, vf b) { return _mm512_div_ps(a, b); }
static inline vf vf_fma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); } /* a*b + c */
static inline vf vf_fnma(vf a, vf b, vf c) { return _mm512_fnmadd_ps(a, b, c); } /* c - a*b */
static inline vf vf_max(vf a, vf b) { return _mm512_max_ps(a, b); }
static inline vf vf_min(vf a, vf b) { return _mm512_min_ps(a, b); }
static inline vf vf_abs(vf a) { return _mm512_abs_ps(a); }
static inline vf vf_neg(vf a) { return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a), _mm512_set1_epi32((int)0x80000000))); }
static inline vmask vf_gt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
static inline vmask vf_eq(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
static inline vf vf_select(vmask m, vf if_true, vf if_false) { return _mm512_mask_blend_ps(m, if_false, if_true); }
static inline vf vf_copysign(vf mag, vf sgn) {
    return _mm512_castsi512_ps(_mm512_ternarylogic_epi32(_mm512_castps_si512(mag), _mm512_castps_si512(sgn),
                                                         _mm512_set1_epi32((int)0x80000000), 0xd8));
}
static inline vi vf_round_to_int(vf a) { return _mm512_cvtps_epi32(a); } /* nearest-even */
static inline vf vi_to_vf(vi a) { return _mm512_cvtepi32_ps(a); }
static inline vf vf_pow2i(vi n) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n, _mm512_set1_epi32(127)), 23)); }
static inline vi vf_bits(vf a) { return _mm512_castps_si512(a); }
static inline vf vi_as_vf(vi a) { return _mm512_castsi512_ps(a); }
static inline vi vi_and(vi a, int m) { return _mm512_and_si512(a, _mm512_set1_epi32(m)); }
static inline vi vi_or(vi a, int m) { return _mm512_or_si512(a, _mm512_set1_epi32(m)); }
static inline vi vi_srl(vi a, int s) { return _mm512_srli_epi32(a, s); }
static inline vi vi_sub(vi a, int s) { return _mm512_sub_epi32(a, _mm512_set1_epi32(s)); }
static inline vi vi_load(const int32_t *p) { return _mm512_loadu_si512((const void *)p); }
static inline vi vi_subv(vi a, vi b) { return _mm512_sub_epi32(a, b); }
static inline vi vi_mulc(vi a, int m) { return _mm512_mullo_epi32(a, _mm512_set1_epi32(m)); }
static inline float vf_hsum(vf a) { return _mm512_reduce_add_ps(a); }
/* Truncate to int and store as u8 (values already in [0, 255]). */
static inline void vf_store_u8(uint8_t *p, vf v) { _mm_storeu_si128((__m128i *)p, _mm512_cvtusepi32_epi8(_mm512_cvttps_epi32(v))); }

#elif defined(VM_ISA_AVX2)
#include <immintrin.h>
#define VL 8
#define VM_SFX(n) n##_avx2
typedef __m256 vf;
typedef __m256i vi;
typedef __m256 vmask;
static inline vf vf_load(const float *p) { return _mm256_loadu_ps(p); }
static inline void vf_store(float *p, vf v) { _mm256_storeu_ps(p, v); }
static inline vf vf_set1(float x) { return _mm256_set1_ps(x); }
static inline vf vf_zero(void) { return _mm256_setzero_ps(); }
static inline vf vf_add(vf a, vf b) { return _mm256_add_ps(a, b); }
static inline vf vf_sub(vf a, vf b) { return _mm256_sub_ps(a, b); }
static inline vf vf_mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
static inline vf vf_div(vf a, vf b) { return _mm256_div_ps(a, b); }
static inline vf vf_fma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
static inline vf vf_fnma(vf a, vf b, vf c) { return _mm256_fnmadd_ps(a, b, c); }
static inline vf vf_max(vf a, vf b) { return _mm256_max_ps(a, b); }
static inline vf vf_min(vf a, vf b) { return _mm256_min_ps(a, b); }
static inline vf vf_abs(vf a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
static inline vf vf_neg(vf a) { return _mm256_xor_ps(a, _mm256_set1_ps(-0.0f)); }
static inline vmask vf_gt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
static inline vmask vf_eq(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
static inline vf vf_select(vmask m, vf if_true, vf if_false) { return _mm256_blendv_ps(if_false, if_true, m); }
static inline vf vf_copysign(vf mag, vf sgn) {
    const vf s = _mm256_set1_ps(-0.0f);
    return _mm256_or_ps(_mm256_andnot_ps(s, mag), _mm256_and_ps(s, sgn));
}
static inline vi vf_round_to_int(vf a) { return _mm256_cvtps_epi32(a); }
static inline vf vi_to_vf(vi a) { return _mm256_cvtepi32_ps(a); }
static inline vf vf_pow2i(vi n) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n, _mm256_set1_epi32(127)), 23)); }
static inline vi vf_bits(vf a) { return _mm256_castps_si256(a); }
static inline vf vi_as_vf(vi a) { return _mm256_castsi256_ps(a); }
static inline vi vi_and(vi a, int m) { return _mm256_and_si256(a, _mm256_set1_epi32(m)); }
static inline vi vi_or(vi a, int m) { return _mm256_or_si256(a, _mm256_set1_epi32(m)); }
static inline vi vi_srl(vi a, int s) { return _mm256_srli_epi32(a, s); }
static inline vi vi_sub(vi a, int s) { return _mm256_sub_epi32(a, _mm256_set1_epi32(s)); }
static inline vi vi_load(const int32_t *p) { return _mm256_loadu_si256((const __m256i *)p); }
static inline vi vi_subv(vi a, vi b) { return _mm256_sub_epi32(a, b); }
static inline vi vi_mulc(vi a, int m) { return _mm256_mullo_epi32(a, _mm256_set1_epi32(m)); }
static inline float vf_hsum(vf a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
static inline void vf_store_u8(uint8_t *p, vf v) {
    __m256i i = _mm256_cvttps_epi32(v);
    __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
    _mm_storel_epi64((__m128i *)p, _mm_packus_epi16(w, w));
}

#elif defined(VM_ISA_NEON)
#include <arm_neon.h>
#define VL 4
#define VM_SFX(n) n##_neon
typedef float32x4_t vf;
typedef int32x4_t vi;
typedef uint32x4_t vmask;
static inline vf vf_load(const float *p) { return vld1q_f32(p); }
static inline void vf_store(float *p, vf v) { vst1q_f32(p, v); }
static inline vf vf_set1(float x) { return vdupq_n_f32(x); }
static inline vf vf_zero(void) { return vdupq_n_f32(0.0f); }
static inline vf vf_add(vf a, vf b) { return vaddq_f32(a, b); }
static inline vf vf_sub(vf a, vf b) { return vsubq_f32(a, b); }
static inline vf vf_mul(vf a, vf b) { return vmulq_f32(a, b); }
static inline vf vf_div(vf a, vf b) { return vdivq_f32(a, b); }
static inline vf vf_fma(vf a, vf b, vf c) { return vfmaq_f32(c, a, b); }
static inline vf vf_fnma(vf a, vf b, vf c) { return vfmsq_f32(c, a, b); }
static inline vf vf_max(vf a, vf b) { return vmaxq_f32(a, b); }
static inline vf vf_min(vf a, vf b) { return vminq_f32(a, b); }
static inline vf vf_abs(vf a) { return vabsq_f32(a); }
static inline vf vf_neg(vf a) { return vnegq_f32(a); }
static inline vmask vf_gt(vf a, vf b) { return vcgtq_f32(a, b); }
static inline vmask vf_eq(vf a, vf b) { return vceqq_f32(a, b); }
static inline vf vf_select(vmask m, vf if_true, vf if_false) { return vbslq_f32(m, if_true, if_false); }
static inline vf vf_copysign(vf mag, vf sgn) { return vbslq_f32(vdupq_n_u32(0x80000000u), sgn, mag); }
static inline vi vf_round_to_int(vf a) { return vcvtnq_s32_f32(a); }
static inline vf vi_to_vf(vi a) { return vcvtq_f32_s32(a); }
static inline vf vf_pow2i(vi n) { return vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n, vdupq_n_s32(127)), 23)); }
static inline vi vf_bits(vf a) { return vreinterpretq_s32_f32(a); }
static inline vf vi_as_vf(vi a) { return vreinterpretq_f32_s32(a); }
static inline vi vi_and(vi a, int m) { return vandq_s32(a, vdupq_n_s32(m)); }
static inline vi vi_or(vi a, int m) { return vorrq_s32(a, vdupq_n_s32(m)); }
static inline vi vi_srl(vi a, int s) { return vreinterpretq_s32_u32(vshlq_u32(vreinterpretq_u32_s32(a), vdupq_n_s32(-s))); }
static inline vi vi_sub(vi a, int s) { return vsubq_s32(a, vdupq_n_s32(s)); }
static inline vi vi_load(const int32_t *p) { return vld1q_s32(p); }
static inline vi vi_subv(vi a, vi b) { return vsubq_s32(a, b); }
static inline vi vi_mulc(vi a, int m) { return vmulq_n_s32(a, m); }
static inline float vf_hsum(vf a) { return vaddvq_f32(a); }
static inline void vf_store_u8(uint8_t *p, vf v) {
    uint16x4_t h = vqmovn_u32(vcvtq_u32_f32(v));
    uint8x8_t b = vqmovn_u16(vcombine_u16(h, h));
    memcpy(p, &b, 4);
}
#else
#error "define VM_ISA_AVX512, VM_ISA_AVX2 or VM_ISA_NEON before including vec.h"
#endif

/* Partial loads/stores for the last n < VL elements, the same way on every
 * ISA: through a small buffer (only tails take this path). */
static inline vf vf_loadn(const float *p, int n) {
    float t[VL] = {0};
    memcpy(t, p, (size_t)n * sizeof(float));
    return vf_load(t);
}
static inline void vf_storen(float *p, vf v, int n) {
    float t[VL];
    vf_store(t, v);
    memcpy(p, t, (size_t)n * sizeof(float));
}

#endif
