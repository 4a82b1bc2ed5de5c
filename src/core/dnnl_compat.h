/* dnnl_compat.h - every oneDNN call the engine makes goes through here, so
 * the 2.x / 3.x C API differences live in one file (dnnl_compat.c). */
#ifndef VM_DNNL_COMPAT_H
#define VM_DNNL_COMPAT_H

#include <stddef.h>

/* C[M][N] = A[M][K] * W[N][K]^T + beta * C (row-major, leading dims). */
int vm_gemm(int M, int N, int K, const float *A, int lda, const float *W, int ldw, float *C, int ldc, float beta);

/* A 2-D convolution primitive for one input shape, weights pre-packed into
 * oneDNN's preferred layout at creation. src is NCHW (src_nchw=1) or NHWC;
 * dst is always NHWC. */
typedef struct vm_conv_prim vm_conv_prim;
vm_conv_prim *vm_conv_create(int B, int Cin, int H, int W, int Cout, int k, int stride, int pad, int src_nchw,
                             const float *weight_oihw, const float *bias, char *err, size_t errlen);
int vm_conv_run(vm_conv_prim *p, const float *src, float *dst);
void vm_conv_free(vm_conv_prim *p);
int vm_conv_out_size(int in, int k, int stride, int pad);

const char *vm_dnnl_version(void);

#endif
