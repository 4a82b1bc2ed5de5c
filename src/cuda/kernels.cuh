/* kernels.cuh - CUDA kernels of the forward pass. Same layouts and maths
 * as the CPU kernels (simd/kernels.h): activations token-major (B,H,W,C). */
#ifndef VM_CUDA_KERNELS_CUH
#define VM_CUDA_KERNELS_CUH

#include <cuda_runtime.h>
#include <stddef.h>

/* The largest d_state the CUDA scan keeps in registers. */
#define VM_CUDA_MAX_STATE 64

/* on: the scalar reference kernels instead of the vectorised ones
 * (LayerNorm, cross-merge, GELU, depthwise conv), for tests. */
void vmc_use_reference_kernels(int on);
void vmc_layernorm(float *out, const float *in, const float *w, const float *b, size_t T, int C, float eps, cudaStream_t s);
void vmc_gelu(float *x, size_t n, cudaStream_t s);
void vmc_bias_gelu(float *x, const float *bias, size_t T, int C, cudaStream_t s);
/* Depthwise 3x3 + bias + SiLU; w9 is tap-major [9][C]. Four channels per
 * thread where C, ld_in and the pointers allow. */
void vmc_dwconv3x3_silu(float *out, const float *in, int ld_in, const float *w9, const float *bias, int B, int H, int W,
                        int C, cudaStream_t s);
/* The selective scan with the cross-scan fused, each sequence cut into
 * nchunk chunks run in parallel (see kernels.cu), with the dt projection
 * fused in: dt_w [4][D][R] (R <= 64) applied to x_proj's first R outputs.
 * Leaves the 4 directions' outputs, each (B, L, D), at the start of
 * scratch, which needs vmc_scan_chunked_scratch() floats (enough for any
 * chunk count); vmc_merge4_layernorm then merges them. vmc_scan_chunks
 * picks the count that fills this GPU (force > 0: that many, for tests). */
#define VM_CUDA_MAX_DT_RANK 64
int vmc_scan_chunks(int B, int H, int W, int D, int force);
size_t vmc_scan_chunked_scratch(int B, int H, int W, int D, int N);
void vmc_scan_cross_chunked(float *scratch, const float *u, const float *dt_w, const float *dbl, const float *A,
                            const float *Ds, const float *dt_bias, int B, int H, int W, int D, int N, int R, int nchunk,
                            cudaStream_t s);
/* y = LN(ys[0] + ys[1] + ys[2] + ys[3]) over D channels per token, then
 * times SiLU(z) when z is given (row stride ldz): the cross-merge, the
 * out_norm and the gate in one pass. */
void vmc_merge4_layernorm(float *y, const float *ys, size_t T, int D, const float *w, const float *b, float eps,
                          const float *z, int ldz, cudaStream_t s);
/* col[(b,oy,ox)][(ky,kx,ci)] for a k x k, stride st, pad p convolution. */
void vmc_im2col(float *col, const float *in, int B, int H, int W, int C, int k, int st, int p, int OH, int OW,
                cudaStream_t s);
/* The patch-embed convolution straight from the NCHW input, with bias and
 * optionally LayerNorm (lnw != NULL) and GELU fused: out (B, OH, OW, Cout).
 * Returns -1 (nothing launched) for a shape it has no kernel for;
 * vmc_stem_conv_ok says beforehand. */
int vmc_stem_conv_ok(int Cin, int Cout, int k);
int vmc_stem_conv(float *out, const float *in_nchw, const float *w, const float *bias, const float *lnw, const float *lnb,
                  int gelu, int B, int Cin, int H, int W, int Cout, int k, int st, int p, int OH, int OW, float eps,
                  cudaStream_t s);
void vmc_patch_merge(float *out, const float *in, int B, int h, int w, int C, cudaStream_t s);
void vmc_nchw_to_nhwc(float *out, const float *in, int B, int C, int H, int W, cudaStream_t s);
void vmc_nhwc_to_nchw(float *out, const float *in, int B, int H, int W, int C, cudaStream_t s);
void vmc_fill_rows(float *x, const float *bias, size_t T, int C, cudaStream_t s);
void vmc_add_rows(float *x, const float *bias, size_t T, int C, cudaStream_t s);
void vmc_mean_tokens(float *out, const float *in, int B, int L, int C, cudaStream_t s);

#endif
