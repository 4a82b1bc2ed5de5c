/* dnnl_compat.h - every oneDNN call the engine makes goes through here, so
 * the 2.x / 3.x C API differences live in one file (dnnl_compat.c). */
#ifndef VM_DNNL_COMPAT_H
#define VM_DNNL_COMPAT_H

#include <stddef.h>
#include <stdint.h>

/* Where primitives run: a oneDNN stream and a scratchpad. Every primitive
 * below is created with a user-managed scratchpad, so it may run on any
 * thread (one at a time). The *_create_x forms run on exec x, shared by
 * all primitives of one context (vm_ctx: one scratchpad, the largest any
 * of them needs); the plain *_create forms give the primitive an exec of
 * its own. x must outlive the primitives made on it. */
typedef struct vm_dnnl_exec vm_dnnl_exec;
vm_dnnl_exec *vm_dnnl_exec_new(char *err, size_t errlen);
void vm_dnnl_exec_free(vm_dnnl_exec *x);

/* C[M][N] = A[M][K] * W[N][K]^T + beta * C (row-major, leading dims).
 * Thread-safe (no state). */
int vm_gemm(int M, int N, int K, const float *A, int lda, const float *W, int ldw, float *C, int ldc, float beta);

/* A 2-D convolution primitive for one input shape, weights pre-packed into
 * oneDNN's preferred layout at creation. src and dst are NHWC. */
typedef struct vm_conv_prim vm_conv_prim;
vm_conv_prim *vm_conv_create(int B, int Cin, int H, int W, int Cout, int k, int stride, int pad,
                             const float *weight_oihw, const float *bias, char *err, size_t errlen);
vm_conv_prim *vm_conv_create_x(vm_dnnl_exec *x, int B, int Cin, int H, int W, int Cout, int k, int stride, int pad,
                               const float *weight_oihw, const float *bias, char *err, size_t errlen);
int vm_conv_run(vm_conv_prim *p, const float *src, float *dst);
/* An INT8 convolution (vm_qconv_create*) on an f32 input: quantised as
 * vm_qconv2d_ref says straight into the convolution's zero-point-padded
 * buffer. (vm_conv_run on an INT8 convolution takes the u8 input instead.) */
int vm_qconv_run(vm_conv_prim *p, const float *src, float *dst);
/* The same with a ReLU fused after the bias when relu != 0 (conv + folded
 * BatchNorm + ReLU of mmcv's ConvModule). bias stays referenced: keep it alive. */
vm_conv_prim *vm_conv_create_relu(int B, int Cin, int H, int W, int Cout, int k, int stride, int pad,
                                  const float *weight_oihw, const float *bias, int relu, char *err, size_t errlen);
vm_conv_prim *vm_conv_create_relu_x(vm_dnnl_exec *x, int B, int Cin, int H, int W, int Cout, int k, int stride, int pad,
                                    const float *weight_oihw, const float *bias, int relu, char *err, size_t errlen);
/* The INT8 variant: src u8 NHWC with one scale and zero point, weights s8
 * OIHW with a scale per output channel, bias and dst f32 (NHWC). */
vm_conv_prim *vm_qconv_create(int B, int Cin, int H, int W, int Cout, int k, int stride, int pad, const int8_t *w8,
                              const float *w_scale, float a_scale, int zp, const float *bias, char *err, size_t errlen);
vm_conv_prim *vm_qconv_create_x(vm_dnnl_exec *x, int B, int Cin, int H, int W, int Cout, int k, int stride, int pad, const int8_t *w8,
                              const float *w_scale, float a_scale, int zp, const float *bias, char *err, size_t errlen);
/* With a ReLU fused after the scales and bias when relu != 0 (a head's
 * ConvModule with BatchNorm folded into the scales and bias). */
vm_conv_prim *vm_qconv_create_relu_x(vm_dnnl_exec *x, int B, int Cin, int H, int W, int Cout, int k, int stride, int pad,
                                     const int8_t *w8, const float *w_scale, float a_scale, int zp, const float *bias,
                                     int relu, char *err, size_t errlen);
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
vm_qmatmul *vm_qmatmul_create_x(vm_dnnl_exec *x, int M, int N, int K, int lda, int ldc, const int8_t *W, const float *w_scale,
                              float a_scale, int zp, const float *bias, int gelu, int accumulate, char *err,
                              size_t errlen);
int vm_qmatmul_run(vm_qmatmul *q, const uint8_t *A, float *C);
void vm_qmatmul_free(vm_qmatmul *q);

/* FP32 weights W[N][K] packed once (at model load) into the layout
 * oneDNN's matmul wants (blocked for its brgemm kernels); read-only
 * afterwards and shared by every context. vm_wpack_unpack writes the plain
 * matrix into a caller's buffer (saving, CUDA upload). */
typedef struct vm_wpack vm_wpack;
vm_wpack *vm_wpack_create(int N, int K, const float *W, char *err, size_t errlen);
int vm_wpack_unpack(const vm_wpack *p, float *W);
void vm_wpack_free(vm_wpack *p);

/* FP32 linear layer for one row count M, a matmul primitive on packed
 * weights: C[M][N] = A[M][K] W^T + bias, then GELU (erf) if gelu, added to
 * C if accumulate, all in one pass. The pack is only read: if this M wants
 * another weight layout the primitive keeps its own re-laid copy. */
typedef struct vm_matmul vm_matmul;
vm_matmul *vm_matmul_create(int M, int N, int K, int lda, int ldc, const vm_wpack *w, const float *bias, int gelu,
                            int accumulate, char *err, size_t errlen);
vm_matmul *vm_matmul_create_x(vm_dnnl_exec *x, int M, int N, int K, int lda, int ldc, const vm_wpack *w, const float *bias,
                              int gelu, int accumulate, char *err, size_t errlen);
int vm_matmul_run(vm_matmul *mm, const float *A, float *C);
/* How many matmuls so far needed their own re-laid weights (tests). */
int vm_matmul_relaid_count(void);
void vm_matmul_free(vm_matmul *mm);

/* BF16: the same primitives with bf16 src and weights (rounded to nearest
 * even; the weights once, at creation: a matmul makes its own bf16 copy of
 * the shared FP32 pack) and f32 accumulation, bias, post-ops and dst. The
 * f32 input is rounded to bf16 at each run (into the exec's buffer). Only
 * where vm_dnnl_bf16_supported(): oneDNN sees avx512_bf16 or AMX (capped by
 * ONEDNN_MAX_CPU_ISA); otherwise creation fails with a message saying so. */
int vm_dnnl_bf16_supported(void);
/* The input rounding itself, for tests: simd 0 = the scalar reference,
 * 1 = the avx512_bf16 kernel (-1 where there is none). */
int vm_bf16_round(const float *x, int n, uint16_t *out, int simd);
vm_conv_prim *vm_conv_create_bf16_x(vm_dnnl_exec *x, int B, int Cin, int H, int W, int Cout, int k, int stride, int pad,
                                    const float *weight_oihw, const float *bias, char *err, size_t errlen);
vm_matmul *vm_matmul_create_bf16_x(vm_dnnl_exec *x, int M, int N, int K, int lda, int ldc, const vm_wpack *w,
                                   const float *bias, int gelu, int accumulate, char *err, size_t errlen);

const char *vm_dnnl_version(void);

#endif
