/* xnn_gemm.c - prototype for issue #15: the linear layers of
 * vmamba-tiny-s1l8 (224x224, batch 1) through oneDNN and through XNNPACK,
 * one GEMM per call of run_one(), so that bench/xnn-gemm.sh can count each
 * call's aarch64 instructions under qemu with the icount plugin.
 *
 *   VMAMBA_GEMM=dnnl|xnnpack|both (default both)  which library runs
 *   VMAMBA_GEMM_INT8=0|1|both (default both)       FP32 and/or INT8
 *
 * FP32: oneDNN dnnl_sgemm (what vm_gemm runs; the engine's matmul
 * primitives run the same reference GEMM on cores without SVE, see
 * bench/RESULTS.md) vs XNNPACK xnn_create_fully_connected_nc_f32 (weights
 * packed at creation, as the engine would do at load).
 * INT8: oneDNN dnnl_gemm_u8s8s32 (u8 activations, s8 weights) vs XNNPACK's
 * per-channel `qc8` convolution used as a 1x1 convolution (the 2022 Debian
 * snapshot has per-channel weights only there; its fully-connected qs8 has
 * one weight scale per tensor).
 * FP16 (VMAMBA_GEMM_FP16=1, on cores with FP16 arithmetic): XNNPACK's
 * xnn_create_fully_connected_nc_f16, to see what --precision fp16 would save.
 * Convolutions (3x3 stride 2, depthwise 3x3) run through XNNPACK's NHWC
 * convolution only. Prints one line per call: index path precision layer M K N count, where
 * count is how many times a forward pass runs that shape. Each shape runs
 * twice (a warm-up call, then the measured one). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dnnl.h>
#include <xnnpack.h>

typedef struct {
    const char *name;
    int M, K, N, count;
    int kind, H, W; /* 0 linear; 1 3x3 stride-2 convolution (M = output pixels, K = 9 Cin); 2 depthwise 3x3 (K = 9) */
} shape_t;

/* stage s: T = (56 >> s)^2 tokens, C = 96 << s, dt_rank C/16, d_state 1,
 * x_proj D -> 4 (R + 2), dt_proj R -> D per direction (4), depths 2,2,8,2 */
static const shape_t shapes[] = {
    {"s0.in_proj", 3136, 96, 96, 2},    {"s0.x_proj", 3136, 96, 32, 2},    {"s0.dt_proj", 3136, 6, 96, 8},
    {"s0.out_proj", 3136, 96, 96, 2},   {"s0.fc1", 3136, 96, 384, 2},      {"s0.fc2", 3136, 384, 96, 2},
    {"s1.in_proj", 784, 192, 192, 2},   {"s1.x_proj", 784, 192, 56, 2},    {"s1.dt_proj", 784, 12, 192, 8},
    {"s1.out_proj", 784, 192, 192, 2},  {"s1.fc1", 784, 192, 768, 2},      {"s1.fc2", 784, 768, 192, 2},
    {"s2.in_proj", 196, 384, 384, 8},   {"s2.x_proj", 196, 384, 104, 8},   {"s2.dt_proj", 196, 24, 384, 32},
    {"s2.out_proj", 196, 384, 384, 8},  {"s2.fc1", 196, 384, 1536, 8},     {"s2.fc2", 196, 1536, 384, 8},
    {"s3.in_proj", 49, 768, 768, 2},    {"s3.x_proj", 49, 768, 200, 2},    {"s3.dt_proj", 49, 48, 768, 8},
    {"s3.out_proj", 49, 768, 768, 2},   {"s3.fc1", 49, 768, 3072, 2},      {"s3.fc2", 49, 3072, 768, 2},
    {"head", 1, 768, 1000, 1},
    /* the convolutions: patch embed (3 -> 48 -> 96), downsample, and the depthwise 3x3 of every block (FP32,
     * XNNPACK only; oneDNN's are counted in the forward pass, bench/RESULTS.md) */
    {"pe.conv1", 112 * 112, 27, 48, 1, 1, 224, 224},       {"pe.conv2", 56 * 56, 432, 96, 1, 1, 112, 112},
    {"ds.conv0", 28 * 28, 864, 192, 1, 1, 56, 56},         {"ds.conv1", 14 * 14, 1728, 384, 1, 1, 28, 28},
    {"ds.conv2", 7 * 7, 3456, 768, 1, 1, 14, 14},          {"s0.dwconv", 3136, 9, 96, 2, 2, 56, 56},
    {"s1.dwconv", 784, 9, 192, 2, 2, 28, 28},              {"s2.dwconv", 196, 9, 384, 8, 2, 14, 14},
    {"s3.dwconv", 49, 9, 768, 2, 2, 7, 7},
};

enum { DNNL_F32, XNN_F32, DNNL_S8, XNN_QC8, XNN_F16, NPATH };
static const char *const path_names[] = {"dnnl", "xnnpack", "dnnl", "xnnpack", "xnnpack"};
static const char *const prec_names[] = {"fp32", "fp32", "int8", "int8", "fp16"};

typedef struct {
    int path, M, N, K;
    const float *a;
    const float *w;
    float *c;
    const uint8_t *a8;
    const int8_t *w8;
    int32_t *c32;
    xnn_operator_t op;
} job_t;

/* One GEMM: the function whose calls the icount plugin counts. */
__attribute__((noinline)) int run_one(job_t *j) {
    switch (j->path) {
    case DNNL_F32:
        return dnnl_sgemm('N', 'T', j->M, j->N, j->K, 1.0f, j->a, j->K, j->w, j->K, 0.0f, j->c, j->N) != dnnl_success;
    case DNNL_S8: {
        int32_t co = 0;
        return dnnl_gemm_u8s8s32('N', 'T', 'F', j->M, j->N, j->K, 1.0f, j->a8, j->K, 128, j->w8, j->K, 0, 0.0f, j->c32, j->N,
                                 &co) != dnnl_success;
    }
    default:
        return xnn_run_operator(j->op, NULL) != xnn_status_success;
    }
}

static void fill(float *x, size_t n, unsigned s) {
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)((s >> 9) & 0xffff) / 32768.0f - 1.0f;
    }
}

static int want(const char *env, const char *v) {
    const char *e = getenv(env);
    return !e || !*e || !strcmp(e, "both") || !strcmp(e, v);
}

int main(void) {
    if (xnn_initialize(NULL) != xnn_status_success) {
        fprintf(stderr, "xnn_gemm: xnn_initialize failed (no NEON, or cpuinfo could not read this CPU)\n");
        return 1;
    }
    int calls = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const shape_t *s = &shapes[i];
        size_t na = (size_t)s->M * s->K, nw = (size_t)s->N * s->K, nc = (size_t)s->M * s->N;
        if (s->kind) na = (size_t)s->H * s->W * (s->kind == 1 ? s->K / 9 : s->N); /* the NHWC input */
        float *a = malloc(na * 4), *w = malloc(nw * 4), *c = malloc(nc * 4);
        uint8_t *a8 = malloc(na);
        int8_t *w8 = malloc(nw), *c8 = malloc(nc);
        __fp16 *a16 = malloc(na * 2), *w16 = malloc(nw * 2), *c16 = malloc(nc * 2);
        int32_t *c32 = malloc(nc * 4);
        float *wscale = malloc(s->N * 4);
        if (!a || !w || !c || !a8 || !w8 || !c8 || !c32 || !wscale || !a16 || !w16 || !c16) return 1;
        fill(a, na, 1 + i);
        fill(w, nw, 100 + i);
        for (size_t k = 0; k < na; k++) a8[k] = (uint8_t)(128 + (int)(a[k] * 100));
        for (size_t k = 0; k < nw; k++) w8[k] = (int8_t)(w[k] * 127);
        for (int k = 0; k < s->N; k++) wscale[k] = 1.0f / 127;
        for (size_t k = 0; k < na; k++) a16[k] = (__fp16)a[k];
        for (size_t k = 0; k < nw; k++) w16[k] = (__fp16)w[k];
        for (int path = DNNL_F32; path < NPATH; path++) {
            int int8 = path == DNNL_S8 || path == XNN_QC8;
            if (!want("VMAMBA_GEMM", path_names[path]) || !want("VMAMBA_GEMM_INT8", int8 ? "1" : "0")) continue;
            if (path == XNN_F16 && !(getenv("VMAMBA_GEMM_FP16") && !strcmp(getenv("VMAMBA_GEMM_FP16"), "1"))) continue;
            if (s->kind && path != XNN_F32) continue;
            job_t j = {path, s->M, s->N, s->K, a, w, c, a8, w8, c32, NULL};
            enum xnn_status st = xnn_status_success;
            if (path == XNN_F32 && s->kind == 1) {
                st = xnn_create_convolution2d_nhwc_f32(1, 1, 1, 1, 3, 3, 2, 2, 1, 1, 1, s->K / 9, s->N, s->K / 9, s->N, w, NULL,
                                                       -INFINITY, INFINITY, 0, &j.op);
                if (st == xnn_status_success) st = xnn_setup_convolution2d_nhwc_f32(j.op, 1, s->H, s->W, a, c, NULL);
            } else if (path == XNN_F32 && s->kind == 2) {
                st = xnn_create_convolution2d_nhwc_f32(1, 1, 1, 1, 3, 3, 1, 1, 1, 1, s->N, 1, 1, s->N, s->N, w, NULL, -INFINITY,
                                                       INFINITY, 0, &j.op);
                if (st == xnn_status_success) st = xnn_setup_convolution2d_nhwc_f32(j.op, 1, s->H, s->W, a, c, NULL);
            } else if (path == XNN_F32) {
                st = xnn_create_fully_connected_nc_f32(s->K, s->N, s->K, s->N, w, NULL, -INFINITY, INFINITY, 0, &j.op);
                if (st == xnn_status_success) st = xnn_setup_fully_connected_nc_f32(j.op, s->M, a, c, NULL);
            } else if (path == XNN_F16) {
                st = xnn_create_fully_connected_nc_f16(s->K, s->N, s->K, s->N, w16, NULL, -INFINITY, INFINITY, 0, &j.op);
                if (st == xnn_status_unsupported_hardware) {
                    static int told;
                    if (!told++) fprintf(stderr, "xnn_gemm: no FP16 arithmetic on this CPU: FP16 skipped\n");
                    continue;
                }
                if (st == xnn_status_success) st = xnn_setup_fully_connected_nc_f16(j.op, s->M, a16, c16, NULL);
            } else if (path == XNN_QC8) {
                st = xnn_create_convolution2d_nhwc_qc8(0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, s->K, s->N, s->K, s->N, 0, 1.0f / 100,
                                                       wscale, w8, NULL, 0, 0.05f, -128, 127, 0, &j.op);
                if (st == xnn_status_success)
                    st = xnn_setup_convolution2d_nhwc_qc8(j.op, 1, 1, s->M, (const int8_t *)a8, c8, NULL);
            }
            if (st != xnn_status_success) {
                fprintf(stderr, "xnn_gemm: %s: XNNPACK operator creation failed (status %d)\n", s->name, (int)st);
                return 1;
            }
            for (int r = 0; r < 2; r++) {
                if (run_one(&j)) {
                    fprintf(stderr, "xnn_gemm: %s: %s GEMM failed\n", s->name, path_names[path]);
                    return 1;
                }
                printf("call %d %s %s %s %d %d %d %d%s\n", ++calls, path_names[path], prec_names[path], s->name, s->M,
                       s->K, s->N, s->count, r ? "" : " warmup");
            }
            if (j.op) xnn_delete_operator(j.op);
        }
        free(a), free(w), free(c), free(a8), free(w8), free(c8), free(c32), free(wscale), free(a16), free(w16), free(c16);
    }
    return 0;
}
