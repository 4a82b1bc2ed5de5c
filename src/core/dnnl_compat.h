/* dnnl_compat.h - every oneDNN call the engine makes goes through here, so
 * the 2.x / 3.x C API differences live in one file (dnnl_compat.c). */
#ifndef VM_DNNL_COMPAT_H
#define VM_DNNL_COMPAT_H

#include <stddef.h>
#include <stdint.h>

/* C[M][N] = A[M][K] * W[N][K]^T + beta * C (row-major, leading dims). */
int vm_gemm(int M, int N, int K, const float *A, int lda, const float *W, int ldw, float *C, int ldc, float beta);

/* A 2-D convolution primitive for one input shape, weights pre-packed into
 * oneDNN's preferred layout at creation. src and dst are NHWC. */
typedef struct vm_conv_prim vm_conv_prim;
vm_conv_prim *vm_conv_create(int B, int Cin, int H, int W, int Cout, int k, int stride, int pad,
                             const float *weight_oihw, const float *bias, char *err, size_t errlen);
int vm_conv_run(vm_conv_prim *p, const float *src, float *dst);
/* The INT8 variant: src u8 NHWC with one scale and zero point, weights s8
 * OIHW with a scale per output channel, bias and dst f32 (NHWC). */
vm_conv_prim *vm_qconv_create(int B, int Cin, int H, int W, int Cout, int k, int stride, int pad, const int8_t *w8,
                              const float *w_scale, float a_scale, int zp, const float *bias, char *err, size_t errlen);
void vm_conv_free(vm_conv_prim *p);
int vm_conv_out_size(int in, int k, int stride, int pad);

/* INT8 linear layer for one input row count M (a matmul primitive, AMX /
 * VNNI where present): C[M][N] = (A[M][K] - zp) W[N][K]^T a_scale
 * w_scale[n] + bias[n], then GELU if gelu, added to C if accumulate.
 * A is u8 (asymmetric per-tensor), W s8 (symmetric per output channel),
 * packed into oneDNN's layout at creation. */
typedef struct vm_qmatmul vm_qmatmul;
vm_qmatmul *vm_qmatmul_create(int M, int N, int K, int lda, int ldc, const int8_t *W, const float *w_scale,
                              float a_scale, int zp, const float *bias, int gelu, int accumulate, char *err,
                              size_t errlen);
int vm_qmatmul_run(vm_qmatmul *q, const uint8_t *A, float *C);
void vm_qmatmul_free(vm_qmatmul *q);

const char *vm_dnnl_version(void);

#endif
