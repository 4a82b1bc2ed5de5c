/* scalar.h - the scalar reference kernels (see ../kernels.h). */
#ifndef VM_SCALAR_H
#define VM_SCALAR_H
#include "../kernels.h"

void vm_layernorm_scalar(float *out, const float *in, const float *w, const float *b, size_t T, int C, float eps);
void vm_gelu_scalar(float *out, const float *in, size_t n);
void vm_silu_scalar(float *out, const float *in, size_t n);
void vm_mul_silu_scalar(float *out, const float *in, const float *z, size_t T, int C, int ldz);
void vm_layernorm_mul_silu_scalar(float *out, const float *in, const float *w, const float *b, const float *z, int ldz,
                                  size_t T, int C, float eps);
void vm_dt_proj_scalar(float *dts, const float *dbl, const float *wt, size_t T, int D, int R, int P);
void vm_dwconv3x3_silu_scalar(float *out, const float *in, int ld_in, const float *w, const float *bias, int B, int H,
                              int W, int C);
void vm_scan_cross_scalar(float *y, const float *u, const float *dts, const float *dt_w, const float *dbl, const float *A,
                          const float *Ds, const float *dt_bias, const vm_scan_dims *d);
void vm_quantize_u8_scalar(uint8_t *q, const float *x, size_t M, int K, int ld, float inv, float zp);
void vm_layernorm_u8_scalar(uint8_t *q, const float *in, const float *w, const float *b, size_t T, int C, float eps,
                            float inv, float zp);
void vm_quantize_rows_u8_scalar(uint8_t *q, float *scale, int32_t *zp, const float *x, size_t M, int K, int ld);
void vm_dequant_rows_scalar(float *C, int ldc, const int32_t *acc, size_t M, int N, const float *scale, const int32_t *zp,
                            const float *w_scale, const int32_t *wsum, const float *bias, int accumulate);
#endif
