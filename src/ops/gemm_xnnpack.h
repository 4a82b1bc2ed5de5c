/* gemm_xnnpack.h - linear layers and NHWC convolutions through XNNPACK
 * (issue #15: the aarch64 cores without a tuned oneDNN path).
 *
 * An operator is made once, at load, from the plain weights (XNNPACK packs
 * them into its own layout then) and is shared by every context of the
 * model. The 2022 XNNPACK Debian ships keeps each call's setup (row count,
 * input/output pointers) inside the operator and has no packed-weights
 * cache, so one operator cannot run for two threads at once: each has a
 * mutex held over setup + run. The weights stay packed once whatever the
 * number of contexts; contexts running the same layer at the same moment
 * take turns. Builds without XNNPACK get stubs that say so. XNNPACK may
 * read (never write) up to 16 bytes past the end of its inputs
 * (XNN_EXTRA_BYTES): callers keep that much readable memory after them. */
#ifndef VM_GEMM_XNNPACK_H
#define VM_GEMM_XNNPACK_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

typedef struct vm_xop vm_xop;

/* Whether the GEMMs of a model loaded now go through XNNPACK: the
 * environment's VMAMBA_GEMM=dnnl|xnnpack when set, else XNNPACK on every
 * aarch64 core (oneDNN 2.6's tuned aarch64 kernels are SVE-only; on
 * NEON-only cores it runs reference GEMMs, and on SVE cores XNNPACK's NEON
 * kernels still need fewer instructions, bench/RESULTS.md "ARM"), oneDNN
 * elsewhere. Returns 1 (XNNPACK), 0 (oneDNN) or -1 with a message in err
 * (VMAMBA_GEMM=xnnpack in a build or on a CPU XNNPACK cannot serve, or an
 * unknown value). */
int vm_gemm_use_xnnpack(char *err, size_t errlen);

/* C[M][N] = A[M][K] W^T (+ bias), A rows lda apart, C rows ldc apart; W is
 * [N][K] (copied and packed: the caller's buffer may go afterwards, unless
 * vm_xop_fc_run16 is to be used). */
vm_xop *vm_xop_fc(int N, int K, int lda, int ldc, const float *W, const float *bias, char *err, size_t errlen);
int vm_xop_fc_run(vm_xop *op, int M, const float *A, float *C, void *pool);

/* FP16 arithmetic (--precision fp16 on ARMv8.2 cores with FP16 arithmetic,
 * e.g. Cortex-A55/A76: XNNPACK's f16 GEMM does 8 half-precision lanes per
 * FMLA against 4 for FP32). Whether this build and CPU can: XNNPACK's own
 * answer (it refuses f16 operators on cores without FP16 arithmetic);
 * aarch64 only (the conversions below are NEON). */
int vm_xnn_fp16_supported(void);
/* The same product as vm_xop_fc_run in FP16: A is rounded to half
 * precision, XNNPACK multiplies and accumulates in FP16 (the bias too), C
 * comes back widened to FP32. The f16 operator is made at the first call
 * from the FP32 weights vm_xop_fc was given (so those must stay alive: the
 * model keeps its plain weights) and then kept beside the FP32 one.
 * scratch: vm_xop_fc16_scratch(op, M) bytes of the caller's (a context's),
 * for the half-precision copies of A and C. */
size_t vm_xop_fc16_scratch(const vm_xop *op, int M);
int vm_xop_fc_run16(vm_xop *op, int M, const float *A, float *C, void *scratch, void *pool);

/* INT8: C[M][N] (s8, scale o_scale, zero point o_zp - 128) = the product
 * of A[M][K] (s8: the engine's u8 activations minus 128, scale a_scale,
 * zero point a_zp - 128) and W[N][K] (s8, per-row w_scale) plus the FP32
 * bias, as XNNPACK's per-channel qc8 1x1 convolution (this XNNPACK's
 * fully-connected qs8 has one weight scale per tensor). Zero points are
 * given in the engine's u8 convention. */
vm_xop *vm_xop_qc8(int N, int K, const int8_t *W, const float *w_scale, const float *bias, float a_scale, int a_zp,
                   float o_scale, int o_zp, char *err, size_t errlen);
int vm_xop_qc8_run(vm_xop *op, int M, const int8_t *A, int8_t *C, void *pool);

/* A 2-D convolution, NHWC in and out, weights OIHW (as the checkpoints
 * hold them), symmetric zero padding. */
vm_xop *vm_xop_conv(int cin, int cout, int k, int stride, int pad, const float *w_oihw, const float *bias, char *err,
                    size_t errlen);
int vm_xop_conv_run(vm_xop *op, int B, int H, int W, const float *in, float *out, void *pool);

void vm_xop_free(vm_xop *op);

/* A context's worker threads for XNNPACK (a pthreadpool: XNNPACK does not
 * use OpenMP). NULL for one thread, or when it cannot be made (then the
 * operators run on the calling thread). */
void *vm_xnn_pool_create(int threads);
void vm_xnn_pool_free(void *pool);

#ifdef __cplusplus
}
#endif
#endif
