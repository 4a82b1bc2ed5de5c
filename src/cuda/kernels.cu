/* kernels.cu - see kernels.cuh. Simple, correct kernels first: one thread
 * per output element, one warp per LayerNorm row, one thread per
 * (batch, channel) for the scan with its state in registers. */
#include "kernels.cuh"

static inline unsigned blocks_for(size_t n, unsigned t) { return (unsigned)((n + t - 1) / t); }

__device__ __forceinline__ float silu1(float x) { return x / (1.0f + expf(-x)); }
__device__ __forceinline__ float gelu1(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }

__device__ __forceinline__ int scan_token(int k, int l, int H, int W) {
    int L = H * W;
    if (k >= 2) l = L - 1 - l;
    if (k & 1) return (l % H) * W + l / H;
    return l;
}

/* One warp per row; two passes (mean, then squared deviations). */
__global__ void k_layernorm(float *out, const float *in, const float *w, const float *b, size_t T, int C, float eps) {
    size_t row = (size_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (row >= T) return;
    const float *x = in + row * C;
    float s = 0.0f;
    for (int c = lane; c < C; c += 32) s += x[c];
    for (int o = 16; o; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    float mean = s / C, v = 0.0f;
    for (int c = lane; c < C; c += 32) {
        float d = x[c] - mean;
        v += d * d;
    }
    for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    float rstd = rsqrtf(v / C + eps);
    float *y = out + row * C;
    for (int c = lane; c < C; c += 32) y[c] = (x[c] - mean) * rstd * w[c] + b[c];
}

/* Set once per process from VMAMBA_CUDA_REFERENCE_KERNELS=1 (tests): the
 * scalar kernels run instead of the vectorised ones, so that the goldens
 * check both. */
static int use_reference = 0;
void vmc_use_reference_kernels(int on) { use_reference = on; }

static inline bool aligned16(const void *p) { return ((size_t)p & 15) == 0; }

/* LayerNorm with the row in registers: one warp per row, NV float4 per
 * lane (C <= 128 NV, C a multiple of 4), so the row is read once and
 * written once. The row is the sum of nsrc (1 or 4) rows n floats apart:
 * 4 is the scan's cross-merge, summed in the order of the scalar
 * k_merge4_ln. z: the optional gate, out *= SiLU(z) (row stride ldz). */
template <int NV>
__global__ void k_ln_rows4(float *out, const float *in, int nsrc, size_t n, size_t T, int C, const float *w, const float *b,
                           float eps, const float *z, int ldz) {
    const size_t row = (size_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    const int lane = threadIdx.x % 32, C4 = C / 4;
    if (row >= T) return;
    const float4 *x = (const float4 *)(in + row * C);
    const size_t n4 = n / 4;
    float4 v[NV];
    float s = 0.0f;
#pragma unroll
    for (int j = 0; j < NV; j++) {
        const int c = lane + 32 * j;
        v[j] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (c < C4) {
            float4 a = x[c];
            if (nsrc == 4) {
                const float4 a1 = x[n4 + c], a2 = x[2 * n4 + c], a3 = x[3 * n4 + c];
                a = make_float4(a.x + a1.x + a2.x + a3.x, a.y + a1.y + a2.y + a3.y, a.z + a1.z + a2.z + a3.z,
                                a.w + a1.w + a2.w + a3.w);
            }
            v[j] = a;
            s += (a.x + a.y) + (a.z + a.w);
        }
    }
    for (int o = 16; o; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    const float mean = s / C;
    float var = 0.0f;
#pragma unroll
    for (int j = 0; j < NV; j++)
        if (lane + 32 * j < C4) {
            const float dx = v[j].x - mean, dy = v[j].y - mean, dz = v[j].z - mean, dw = v[j].w - mean;
            var += (dx * dx + dy * dy) + (dz * dz + dw * dw);
        }
    for (int o = 16; o; o >>= 1) var += __shfl_xor_sync(0xffffffffu, var, o);
    const float rstd = rsqrtf(var / C + eps);
    float4 *y = (float4 *)(out + row * C);
#pragma unroll
    for (int j = 0; j < NV; j++) {
        const int c = lane + 32 * j;
        if (c >= C4) continue;
        const float4 w4 = __ldg((const float4 *)w + c), b4 = __ldg((const float4 *)b + c);
        float4 o = make_float4((v[j].x - mean) * rstd * w4.x + b4.x, (v[j].y - mean) * rstd * w4.y + b4.y,
                               (v[j].z - mean) * rstd * w4.z + b4.z, (v[j].w - mean) * rstd * w4.w + b4.w);
        if (z) {
            const float4 g = *((const float4 *)(z + row * ldz) + c);
            o = make_float4(o.x * silu1(g.x), o.y * silu1(g.y), o.z * silu1(g.z), o.w * silu1(g.w));
        }
        y[c] = o;
    }
}

/* Launch k_ln_rows4 when the shapes and pointers allow; false if not. */
static bool ln_rows4(float *out, const float *in, int nsrc, size_t T, int C, const float *w, const float *b, float eps,
                     const float *z, int ldz, cudaStream_t s) {
    const int C4 = C / 4;
    if (use_reference || C % 4 || C4 > 32 * 16 || !aligned16(out) || !aligned16(in) || !aligned16(w) || !aligned16(b) ||
        (z && (ldz % 4 || !aligned16(z))))
        return false;
    const size_t n = T * C;
    const unsigned nb = blocks_for(T, 8);
#define VMC_LN4(nv) k_ln_rows4<nv><<<nb, 256, 0, s>>>(out, in, nsrc, n, T, C, w, b, eps, z, ldz)
    if (C4 <= 32) VMC_LN4(1);
    else if (C4 <= 64) VMC_LN4(2);
    else if (C4 <= 128) VMC_LN4(4);
    else if (C4 <= 256) VMC_LN4(8);
    else VMC_LN4(16);
#undef VMC_LN4
    return true;
}

void vmc_layernorm(float *out, const float *in, const float *w, const float *b, size_t T, int C, float eps, cudaStream_t s) {
    if (ln_rows4(out, in, 1, T, C, w, b, eps, NULL, 0, s)) return;
    k_layernorm<<<blocks_for(T, 8), 256, 0, s>>>(out, in, w, b, T, C, eps);
}

__global__ void k_gelu(float *x, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = gelu1(x[i]);
}

/* x = GELU(x + bias[c]) on (T, C) rows: the fc1 epilogue in one pass (a
 * bias pre-fill plus beta = 1 would read and write the hidden twice more). */
__global__ void k_bias_gelu(float *x, const float *bias, size_t n, int C) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    x[i] = gelu1(x[i] + bias[i % C]);
}

/* The same 4 elements per thread (C a multiple of 4; bias may be NULL). */
__global__ void k_bias_gelu4(float4 *x, const float4 *bias, size_t n4, int C4) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n4) return;
    float4 v = x[i];
    if (bias) {
        const float4 b = __ldg(bias + i % C4);
        v = make_float4(v.x + b.x, v.y + b.y, v.z + b.z, v.w + b.w);
    }
    x[i] = make_float4(gelu1(v.x), gelu1(v.y), gelu1(v.z), gelu1(v.w));
}

void vmc_bias_gelu(float *x, const float *bias, size_t T, int C, cudaStream_t s) {
    const size_t n = T * C;
    if (!use_reference && C % 4 == 0 && aligned16(x) && aligned16(bias)) {
        k_bias_gelu4<<<blocks_for(n / 4, 256), 256, 0, s>>>((float4 *)x, (const float4 *)bias, n / 4, C / 4);
        return;
    }
    if (bias) k_bias_gelu<<<blocks_for(n, 256), 256, 0, s>>>(x, bias, n, C);
    else k_gelu<<<blocks_for(n, 256), 256, 0, s>>>(x, n);
}

void vmc_gelu(float *x, size_t n, cudaStream_t s) { vmc_bias_gelu(x, NULL, n % 4 ? n : n / 4, n % 4 ? 1 : 4, s); }

/* Depthwise 3x3 (pad 1) + bias + SiLU, token-major, weights tap-major
 * [9][C] so that neighbouring channels read neighbouring weights. The
 * float4 kernel does 4 channels per thread (C and ld_in multiples of 4);
 * the scalar one is the reference and the fallback. */
__global__ void k_dwconv(float *out, const float *in, int ld_in, const float *w9, const float *bias, int B, int H, int W,
                         int C) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)B * H * W * C) return;
    const int c = (int)(i % C);
    const size_t pix = i / C;
    const int x = (int)(pix % W), h = (int)(pix / W % H);
    const size_t b = pix / ((size_t)W * H);
    float acc = bias ? bias[c] : 0.0f;
    for (int dy = -1; dy <= 1; dy++) {
        const int yy = h + dy;
        if (yy < 0 || yy >= H) continue;
        for (int dx = -1; dx <= 1; dx++) {
            const int xx = x + dx;
            if (xx < 0 || xx >= W) continue;
            acc += w9[((dy + 1) * 3 + dx + 1) * C + c] * in[((b * H + yy) * W + xx) * ld_in + c];
        }
    }
    out[i] = silu1(acc);
}

__device__ __forceinline__ void fma4(float4 &a, float4 w, float4 v) {
    a.x = fmaf(w.x, v.x, a.x);
    a.y = fmaf(w.y, v.y, a.y);
    a.z = fmaf(w.z, v.z, a.z);
    a.w = fmaf(w.w, v.w, a.w);
}

__global__ void k_dwconv4(float *out, const float *in, int ld_in, const float *w9, const float *bias, int B, int H, int W,
                          int C) {
    const int C4 = C / 4;
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)B * H * W * C4) return;
    const int c = (int)(i % C4) * 4;
    const size_t pix = i / C4;
    const int x = (int)(pix % W), h = (int)(pix / W % H);
    const size_t b = pix / ((size_t)W * H);
    float4 acc = bias ? __ldg((const float4 *)(bias + c)) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    /* same taps in the same order as k_dwconv: fmaf(w, v, acc) there is
     * acc + w * v contracted the same way by nvcc */
    for (int dy = -1; dy <= 1; dy++) {
        const int yy = h + dy;
        if (yy < 0 || yy >= H) continue;
        for (int dx = -1; dx <= 1; dx++) {
            const int xx = x + dx;
            if (xx < 0 || xx >= W) continue;
            fma4(acc, __ldg((const float4 *)(w9 + ((dy + 1) * 3 + dx + 1) * C + c)),
                 __ldg((const float4 *)(in + ((b * H + yy) * W + xx) * ld_in + c)));
        }
    }
    *(float4 *)(out + pix * C + c) = make_float4(silu1(acc.x), silu1(acc.y), silu1(acc.z), silu1(acc.w));
}

void vmc_dwconv3x3_silu(float *out, const float *in, int ld_in, const float *w9, const float *bias, int B, int H, int W,
                        int C, cudaStream_t s) {
    const size_t n = (size_t)B * H * W * C;
    const bool vec = !use_reference && C % 4 == 0 && ld_in % 4 == 0 && aligned16(in) && aligned16(out) && aligned16(w9) &&
                     aligned16(bias);
    if (vec) k_dwconv4<<<blocks_for(n / 4, 256), 256, 0, s>>>(out, in, ld_in, w9, bias, B, H, W, C);
    else k_dwconv<<<blocks_for(n, 256), 256, 0, s>>>(out, in, ld_in, w9, bias, B, H, W, C);
}

/* ---- chunked scan: parallel over (b, k, chunk, d) ----------------------
 * The recurrence h_l = exp(delta_l A) h_{l-1} + delta_l B_l u_l is linear,
 * so a chunk of S steps maps its start state h0 to
 *   h_end = exp(A sum(delta)) h0 + h_end|h0=0.
 * With one chunk per sequence (large batches already fill the GPU) a single
 * pass runs the scan and writes y. With several, pass 1 runs every chunk
 * from h0 = 0 and keeps (sum delta, h_end); a short sequential pass per
 * (b, k, d) turns those into each chunk's true start state; pass 2 reruns
 * every chunk from it and writes y. Each direction writes ys[k];
 * k_merge4_ln sums the 4 (a fixed order, so results are reproducible). */
struct scan_args {
    const float *u, *dtw, *dbl, *A, *Ds, *dt_bias;
    int B, H, W, D, N, R, S, nchunk;
};

/* softplus(x) with fast exp/log: |error| < 1e-6 absolute, far inside
 * the 1e-4 golden tolerance; torch's threshold 20 kept. */
__device__ __forceinline__ float softplus_fast(float x) { return x > 20.0f ? x : __logf(1.0f + __expf(x)); }

/* Steps per tile: the block stages a tile's x_proj rows and inputs in
 * shared memory, then runs the recurrence without waiting on a global
 * load at each step. Tiles are double-buffered: tile t+1 is copied in
 * (cp.async on sm_80+) while tile t is computed, so the load latency is
 * hidden even at the low occupancy of a batch-128 stage (one thread per
 * sequence, ~12 warps per SM). */
#define SCAN_TS 32

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
#define VMC_CP_ASYNC 1
#endif

/* One float global -> shared, asynchronous where the GPU can. */
__device__ __forceinline__ void cp_f32(float *dst_smem, const float *src) {
#ifdef VMC_CP_ASYNC
    unsigned d = (unsigned)__cvta_generic_to_shared(dst_smem);
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(d), "l"(src));
#else
    *dst_smem = __ldg(src);
#endif
}
__device__ __forceinline__ void cp_commit() {
#ifdef VMC_CP_ASYNC
    asm volatile("cp.async.commit_group;\n" ::);
#endif
}
/* This thread's copies have landed (a __syncthreads then makes every
 * thread's visible to all). */
__device__ __forceinline__ void cp_wait_all() {
#ifdef VMC_CP_ASYNC
    asm volatile("cp.async.wait_all;\n" ::: "memory");
#endif
}

/* Shared memory of k_scan_chunk: two tiles of rows and inputs, three of
 * token indices. */
static size_t scan_smem(int P, int DT) { return (size_t)2 * SCAN_TS * (P + DT) * sizeof(float) + 3 * SCAN_TS * sizeof(int); }

/* One block per (b, k, chunk, channel tile), one thread per channel.
 * NMAX and RP (dt rank rounded up to 8) are compile-time so that the state
 * and the dt_proj row live in registers: fully unrolled loops with the
 * runtime N and R as guards (a runtime-indexed array would go to local
 * memory and cost a load per multiply-add). */
template <int NMAX, int RP>
__global__ void __launch_bounds__(128) k_scan_chunk(scan_args g, float *sumd, float *hbuf, int load_h0, int write_y, float *ys) {
    extern __shared__ float sm[];
    const int D = g.D, N = g.N, H = g.H, L = H * g.W, R = g.R, P = R + 2 * N, DT = blockDim.x;
    const int nct = (D + DT - 1) / DT;
    size_t r = blockIdx.x / nct;
    const int d = (int)(blockIdx.x % nct) * DT + threadIdx.x;
    const bool live = d < D;
    const int dd = live ? d : D - 1; /* idle lanes read a valid channel, write nothing */
    const int c = (int)(r % g.nchunk), k = (int)(r / g.nchunk % 4), b = (int)(r / g.nchunk / 4);
    const size_t sidx = (((size_t)b * 4 + k) * g.nchunk + c); /* chunk id */
    /* tile buffer t & 1: rows at sm + (t & 1) * SCAN_TS * P, inputs at
     * su0 + (t & 1) * SCAN_TS * DT (offsets, not a pointer array: a
     * runtime-indexed local array would live in local memory) */
    float *su0 = sm + 2 * SCAN_TS * P;
    int *stok = (int *)(sm + 2 * SCAN_TS * (P + DT)); /* [3][SCAN_TS] */
    float h[NMAX], a[NMAX], wdt[RP];
#pragma unroll
    for (int n = 0; n < NMAX; n++) {
        a[n] = n < N ? g.A[((size_t)k * D + dd) * N + n] * 1.44269504f : 0.0f; /* exp(x) = exp2(x log2 e) */
        h[n] = n < N && load_h0 ? hbuf[(sidx * N + n) * D + dd] : 0.0f;
    }
    /* dt_proj fused: delta = softplus(dt_w[k][d] . x_dbl[tok][k][0:R] + bias) */
    const float *dtw = g.dtw + ((size_t)k * D + dd) * R;
#pragma unroll
    for (int q = 0; q < RP; q++) wdt[q] = q < R ? dtw[q] : 0.0f;
    const float bk = g.dt_bias[k * D + dd], Dk = g.Ds[k * D + dd];
    float sd = 0.0f;
    const int l0 = c * g.S, l1 = min(L, l0 + g.S), ntl = (l1 - l0 + SCAN_TS - 1) / SCAN_TS;
    const size_t base = (size_t)b * L;
    float *yk = ys + (size_t)k * g.B * L * D;
    /* token index of step j of tile t, into stok[t % 3] */
    auto tokens = [=](int t) {
        const int l = l0 + t * SCAN_TS + (int)threadIdx.x;
        if (threadIdx.x < SCAN_TS && t < ntl) stok[(t % 3) * SCAN_TS + threadIdx.x] = l < l1 ? scan_token(k, l, H, g.W) : 0;
    };
    /* start the copies of tile t into buffer t & 1 */
    auto issue = [=](int t) {
        const int ns = min(SCAN_TS, l1 - (l0 + t * SCAN_TS));
        const int *tk = stok + (t % 3) * SCAN_TS;
        float *rw = sm + (t & 1) * SCAN_TS * P, *uw = su0 + (t & 1) * SCAN_TS * DT;
        for (int i = threadIdx.x; i < ns * P; i += DT) {
            const int j = i / P, q = i - j * P;
            cp_f32(rw + i, g.dbl + (base + tk[j]) * 4 * P + (size_t)k * P + q);
        }
        for (int j = 0; j < ns; j++) cp_f32(uw + j * DT + threadIdx.x, g.u + (base + tk[j]) * D + dd);
        cp_commit();
    };
    tokens(0);
    tokens(1);
    __syncthreads();
    issue(0);
    for (int t = 0; t < ntl; t++) {
        cp_wait_all();
        __syncthreads(); /* tile t landed for all; tile t-1 consumed by all */
        tokens(t + 2);   /* into tile t-1's slot */
        if (t + 1 < ntl) issue(t + 1); /* into tile t-1's buffer, in flight during tile t */
        const int ns = min(SCAN_TS, l1 - (l0 + t * SCAN_TS));
        const float *rows = sm + (t & 1) * SCAN_TS * P, *us = su0 + (t & 1) * SCAN_TS * DT;
        const int *tk = stok + (t % 3) * SCAN_TS;
#pragma unroll 4
        for (int j = 0; j < ns; j++) {
            const float *row = rows + j * P;
            float dt = bk;
#pragma unroll
            for (int q = 0; q < RP; q++)
                if (q < R) dt = fmaf(wdt[q], row[q], dt);
            const float uu = us[j * DT + threadIdx.x];
            float dl = softplus_fast(dt);
            const float *Bv = row + R, *Cv = Bv + N;
            float acc = 0.0f, du = dl * uu;
            sd += dl;
#pragma unroll
            for (int n = 0; n < NMAX; n++)
                if (n < N) {
                    h[n] = exp2f(dl * a[n]) * h[n] + du * Bv[n];
                    acc += h[n] * Cv[n];
                }
            if (write_y && live) yk[(base + tk[j]) * D + d] = acc + Dk * uu;
        }
    }
    if (!write_y && live) {
        sumd[sidx * D + d] = sd;
#pragma unroll
        for (int n = 0; n < NMAX; n++)
            if (n < N) hbuf[(sidx * N + n) * D + d] = h[n];
    }
}

/* Per (b, k, d): chunk end states (from h0 = 0) -> chunk start states. */
__global__ void k_scan_carry(scan_args g, const float *sumd, float *hbuf) {
    size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int D = g.D, N = g.N;
    if (idx >= (size_t)g.B * 4 * D) return;
    int d = (int)(idx % D);
    size_t bk = idx / D; /* b * 4 + k */
    int k = (int)(bk % 4);
    float h[VM_CUDA_MAX_STATE];
    for (int n = 0; n < N; n++) h[n] = 0.0f;
    for (int c = 0; c < g.nchunk; c++) {
        size_t sidx = bk * g.nchunk + c;
        float sd = sumd[sidx * D + d];
        for (int n = 0; n < N; n++) {
            float *e = &hbuf[(sidx * N + n) * D + d];
            float end0 = *e;
            *e = h[n]; /* this chunk's start state */
            h[n] = expf(sd * g.A[((size_t)k * D + d) * N + n]) * h[n] + end0;
        }
    }
}

/* Cross-merge and the out_norm in one pass, one warp per token: the sum
 * of the 4 directions (fixed order, reproducible) goes to y, then the
 * LayerNorm of the scalar k_layernorm over it (the row is re-read from
 * L2), then optionally the z gate (times SiLU(z)). Bit for bit the maths
 * of the three separate passes it replaced, without writing and
 * re-reading the merged y. The reference for k_ln_rows4 with nsrc = 4. */
__global__ void k_merge4_ln(float *y, const float *ys, size_t T, int D, const float *w, const float *b, float eps,
                            const float *z, int ldz) {
    const size_t row = (size_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, n = T * D;
    const int lane = threadIdx.x % 32;
    if (row >= T) return;
    const float *s0 = ys + row * D;
    float *yr = y + row * D;
    float s = 0.0f;
    for (int c = lane; c < D; c += 32) {
        const float v = s0[c] + s0[n + c] + s0[2 * n + c] + s0[3 * n + c];
        yr[c] = v;
        s += v;
    }
    for (int o = 16; o; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    const float mean = s / D;
    float v = 0.0f;
    for (int c = lane; c < D; c += 32) {
        const float dv = yr[c] - mean;
        v += dv * dv;
    }
    for (int o = 16; o; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const float rstd = rsqrtf(v / D + eps);
    for (int c = lane; c < D; c += 32) {
        float o = (yr[c] - mean) * rstd * w[c] + b[c];
        if (z) o *= silu1(z[row * ldz + c]);
        yr[c] = o;
    }
}

void vmc_merge4_layernorm(float *y, const float *ys, size_t T, int D, const float *w, const float *b, float eps,
                          const float *z, int ldz, cudaStream_t s) {
    if (ln_rows4(y, ys, 4, T, D, w, b, eps, z, ldz, s)) return;
    k_merge4_ln<<<blocks_for(T, 8), 256, 0, s>>>(y, ys, T, D, w, b, eps, z, ldz);
}

/* Shortest chunk: below this the carry pass and the second pass cost more
 * than the parallelism gives back. */
static const int MIN_CHUNK = 16;

int vmc_scan_chunks(int B, int H, int W, int D, int force) {
    int L = H * W, most = (L + MIN_CHUNK - 1) / MIN_CHUNK;
    if (force > 0) return force < most ? force : most;
    /* Chunks cost a second pass, so only split when the sequences alone
     * give under ~256 threads per SM (measured on an H100 at batch 128:
     * one chunk beat 2-8 at every stage, with 49k+ sequences). */
    static int threads = 0;
    if (!threads) {
        int dev = 0, sms = 0;
        cudaGetDevice(&dev);
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
        threads = sms > 0 ? 256 * sms : 1 << 15;
    }
    double seqs = 4.0 * B * D;
    int n = (int)((threads + seqs - 1) / seqs);
    return n < 1 ? 1 : n > most ? most : n;
}

size_t vmc_scan_chunked_scratch(int B, int H, int W, int D, int N) {
    size_t L = (size_t)H * W, nchunk = (L + MIN_CHUNK - 1) / MIN_CHUNK; /* the most vmc_scan_chunks gives */
    return 4 * (size_t)B * L * D + (size_t)B * 4 * nchunk * D * (1 + (size_t)N);
}

/* Launch one instance, first raising its shared-memory limit when the
 * tiles need more than the default 48 KB (large dt rank and d_state). */
template <int NMAX, int RP>
static void launch_scan(unsigned nb, unsigned nt, size_t smem, cudaStream_t s, scan_args g, float *sumd, float *hbuf,
                        int load_h0, int write_y, float *ys) {
    if (smem > 48 * 1024) cudaFuncSetAttribute(k_scan_chunk<NMAX, RP>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    k_scan_chunk<NMAX, RP><<<nb, nt, smem, s>>>(g, sumd, hbuf, load_h0, write_y, ys);
}

template <int NMAX>
static void launch_rp(int RP, unsigned nb, unsigned nt, size_t smem, cudaStream_t s, scan_args g, float *sumd, float *hbuf,
                      int load_h0, int write_y, float *ys) {
#define VMC_RP(v) case v: launch_scan<NMAX, v>(nb, nt, smem, s, g, sumd, hbuf, load_h0, write_y, ys); break
    switch (RP) { VMC_RP(8); VMC_RP(16); VMC_RP(24); VMC_RP(32); VMC_RP(40); VMC_RP(48); VMC_RP(56); default: VMC_RP(64); }
#undef VMC_RP
}

void vmc_scan_cross_chunked(float *scratch, const float *u, const float *dt_w, const float *dbl, const float *A,
                            const float *Ds, const float *dt_bias, int B, int H, int W, int D, int N, int R, int nchunk,
                            cudaStream_t s) {
    int L = H * W;
    if (nchunk < 1) nchunk = 1;
    if (nchunk > (L + MIN_CHUNK - 1) / MIN_CHUNK) nchunk = (L + MIN_CHUNK - 1) / MIN_CHUNK;
    int S = (L + nchunk - 1) / nchunk;
    nchunk = (L + S - 1) / S;
    scan_args g = {u, dt_w, dbl, A, Ds, dt_bias, B, H, W, D, N, R, S, nchunk};
    float *ys = scratch, *sumd = ys + 4 * (size_t)B * L * D, *hbuf = sumd + (size_t)B * 4 * g.nchunk * D;
    /* Channel tile: all of D up to 128 threads, else 128 (or 96 when that
     * divides D evenly and 128 does not). */
    int DT = D <= 128 ? (D + 31) / 32 * 32 : (D % 128 == 0 || D % 96 != 0 ? 128 : 96);
    unsigned nb = (unsigned)((size_t)B * 4 * g.nchunk * ((D + DT - 1) / DT));
    size_t smem = scan_smem(R + 2 * N, DT);
    int RP = (R + 7) / 8 * 8;
    for (int pass = nchunk > 1 ? 0 : 1; pass < 2; pass++) {
        int load_h0 = pass && nchunk > 1, write_y = pass;
        if (N <= 1) launch_rp<1>(RP, nb, DT, smem, s, g, sumd, hbuf, load_h0, write_y, ys);
        else if (N <= 16) launch_rp<16>(RP, nb, DT, smem, s, g, sumd, hbuf, load_h0, write_y, ys);
        else launch_scan<VM_CUDA_MAX_STATE, VM_CUDA_MAX_DT_RANK>(nb, DT, smem, s, g, sumd, hbuf, load_h0, write_y, ys);
        if (!pass) k_scan_carry<<<blocks_for((size_t)B * 4 * D, 128), 128, 0, s>>>(g, sumd, hbuf);
    }
}

__global__ void k_im2col(float *col, const float *in, int B, int H, int W, int C, int k, int st, int p, int OH, int OW) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    size_t K = (size_t)k * k * C;
    if (i >= (size_t)B * OH * OW * K) return;
    size_t r = i / K;
    int q = (int)(i % K), ci = q % C, kx = q / C % k, ky = q / C / k;
    int ox = (int)(r % OW), oy = (int)(r / OW % OH), b = (int)(r / ((size_t)OW * OH));
    int yy = oy * st - p + ky, xx = ox * st - p + kx;
    col[i] = (yy >= 0 && yy < H && xx >= 0 && xx < W) ? in[(((size_t)b * H + yy) * W + xx) * C + ci] : 0.0f;
}
/* The same, 4 channels per thread (C a multiple of 4): col's layout
 * [(b,oy,ox)][(ky,kx)][ci] makes thread i's float4 exactly col4[i]. I is
 * the index type: 32-bit division whenever the element count fits. */
template <typename I>
__global__ void k_im2col4(float4 *col, const float *in, I n4, int B, int H, int W, int C4, int k, int st, int p, int OH,
                          int OW) {
    const I i = (I)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n4) return;
    const I rest = i / C4, r = rest / (k * k);
    const int c4 = (int)(i - rest * C4), tap = (int)(rest - r * (k * k)), ky = tap / k, kx = tap - ky * k;
    const I pr = r / OW, b = pr / OH;
    const int ox = (int)(r - pr * OW), oy = (int)(pr - b * OH);
    const int yy = oy * st - p + ky, xx = ox * st - p + kx;
    col[i] = (yy >= 0 && yy < H && xx >= 0 && xx < W)
                 ? __ldg((const float4 *)in + (((size_t)b * H + yy) * W + xx) * C4 + c4)
                 : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
}

void vmc_im2col(float *col, const float *in, int B, int H, int W, int C, int k, int st, int p, int OH, int OW, cudaStream_t s) {
    size_t n = (size_t)B * OH * OW * k * k * C;
    if (!use_reference && C % 4 == 0 && aligned16(col) && aligned16(in)) {
        const size_t n4 = n / 4;
        if (n4 < 0xffffffffu)
            k_im2col4<unsigned><<<blocks_for(n4, 256), 256, 0, s>>>((float4 *)col, in, (unsigned)n4, B, H, W, C / 4, k, st, p, OH, OW);
        else k_im2col4<size_t><<<blocks_for(n4, 256), 256, 0, s>>>((float4 *)col, in, n4, B, H, W, C / 4, k, st, p, OH, OW);
        return;
    }
    k_im2col<<<blocks_for(n, 256), 256, 0, s>>>(col, in, B, H, W, C, k, st, p, OH, OW);
}

/* ---- direct stem convolution ---------------------------------------------
 * The patch-embed convolution has 3 input channels, so im2col + GEMM moves
 * far more bytes than it computes (a K = 27 or 48 GEMM). Here one thread
 * computes one output pixel with all COUT accumulators in registers,
 * reading the NCHW input directly (no layout pass), weights in shared
 * memory as [tap][COUT] (every thread of a warp reads the same float4: a
 * broadcast), and optionally the LayerNorm over the channels and GELU
 * fused. The block's outputs are staged in shared memory (rows padded by
 * one float against bank conflicts) and written out contiguously: a
 * thread's own COUT-float row would be a strided store per channel. */
#define STEM_THREADS 128

static size_t stem_smem(int Cout, int KK) { return ((size_t)Cout * KK + (size_t)STEM_THREADS * (Cout + 1)) * sizeof(float); }

template <int COUT>
__global__ void __launch_bounds__(STEM_THREADS) k_stem_conv(float *out, const float *in, const float *w, const float *bias,
                                                            const float *lnw, const float *lnb, int gelu, int B, int Cin,
                                                            int H, int W, int k, int st, int p, int OH, int OW, float eps) {
    extern __shared__ float4 sm4[];
    float *sw = (float *)sm4, *so = sw + COUT * k * k * Cin;
    const int KK = k * k * Cin;
    for (int i = threadIdx.x; i < COUT * KK; i += blockDim.x) {
        const int c = i / KK, q = i - c * KK;
        sw[q * COUT + c] = w[i];
    }
    __syncthreads();
    const size_t npix = (size_t)B * OH * OW, p0 = (size_t)blockIdx.x * STEM_THREADS, pix = p0 + threadIdx.x;
    if (pix < npix) {
        const int ox = (int)(pix % OW), oy = (int)(pix / OW % OH), b = (int)(pix / ((size_t)OW * OH));
        float acc[COUT];
#pragma unroll
        for (int c = 0; c < COUT; c++) acc[c] = bias ? bias[c] : 0.0f;
        for (int ky = 0; ky < k; ky++) {
            const int yy = oy * st - p + ky;
            if (yy < 0 || yy >= H) continue;
            for (int kx = 0; kx < k; kx++) {
                const int xx = ox * st - p + kx;
                if (xx < 0 || xx >= W) continue;
                for (int ci = 0; ci < Cin; ci++) {
                    const float v = __ldg(in + (((size_t)b * Cin + ci) * H + yy) * W + xx);
                    const float4 *wq = (const float4 *)(sw + ((ky * k + kx) * Cin + ci) * COUT);
#pragma unroll
                    for (int c = 0; c < COUT / 4; c++) {
                        const float4 w4 = wq[c];
                        acc[4 * c] = fmaf(w4.x, v, acc[4 * c]);
                        acc[4 * c + 1] = fmaf(w4.y, v, acc[4 * c + 1]);
                        acc[4 * c + 2] = fmaf(w4.z, v, acc[4 * c + 2]);
                        acc[4 * c + 3] = fmaf(w4.w, v, acc[4 * c + 3]);
                    }
                }
            }
        }
        if (lnw) { /* two passes, as vmc_layernorm */
            float mean = 0.0f, var = 0.0f;
#pragma unroll
            for (int c = 0; c < COUT; c++) mean += acc[c];
            mean /= COUT;
#pragma unroll
            for (int c = 0; c < COUT; c++) var += (acc[c] - mean) * (acc[c] - mean);
            const float rstd = rsqrtf(var / COUT + eps);
#pragma unroll
            for (int c = 0; c < COUT; c++) acc[c] = (acc[c] - mean) * rstd * lnw[c] + lnb[c];
        }
        float *o = so + threadIdx.x * (COUT + 1);
#pragma unroll
        for (int c = 0; c < COUT; c++) o[c] = gelu ? gelu1(acc[c]) : acc[c];
    }
    __syncthreads();
    const size_t nout = (npix - p0 < STEM_THREADS ? npix - p0 : STEM_THREADS) * COUT;
    for (size_t i = threadIdx.x; i < nout; i += STEM_THREADS) {
        const size_t r = i / COUT;
        out[p0 * COUT + i] = so[r * (COUT + 1) + (i - r * COUT)];
    }
}

int vmc_stem_conv_ok(int Cin, int Cout, int k) {
    if (stem_smem(Cout, k * k * Cin) > 160 * 1024) return 0;
    return Cout == 32 || Cout == 48 || Cout == 64 || Cout == 96 || Cout == 128;
}

template <int COUT>
static void launch_stem(unsigned nb, size_t smem, cudaStream_t s, float *out, const float *in, const float *w,
                        const float *bias, const float *lnw, const float *lnb, int gelu, int B, int Cin, int H, int W, int k,
                        int st, int p, int OH, int OW, float eps) {
    if (smem > 48 * 1024) cudaFuncSetAttribute(k_stem_conv<COUT>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    k_stem_conv<COUT><<<nb, STEM_THREADS, smem, s>>>(out, in, w, bias, lnw, lnb, gelu, B, Cin, H, W, k, st, p, OH, OW, eps);
}

int vmc_stem_conv(float *out, const float *in_nchw, const float *w, const float *bias, const float *lnw, const float *lnb,
                  int gelu, int B, int Cin, int H, int W, int Cout, int k, int st, int p, int OH, int OW, float eps,
                  cudaStream_t s) {
    if (!vmc_stem_conv_ok(Cin, Cout, k)) return -1;
    const size_t n = (size_t)B * OH * OW, smem = stem_smem(Cout, k * k * Cin);
    const unsigned nb = blocks_for(n, STEM_THREADS);
#define VMC_STEM(c) case c: launch_stem<c>(nb, smem, s, out, in_nchw, w, bias, lnw, lnb, gelu, B, Cin, H, W, k, st, p, OH, OW, eps); return 0
    switch (Cout) { VMC_STEM(32); VMC_STEM(48); VMC_STEM(64); VMC_STEM(96); VMC_STEM(128); default: return -1; }
#undef VMC_STEM
}

/* v1 patch merging: channels (0,0),(1,0),(0,1),(1,1), zero padding. */
__global__ void k_patch_merge(float *out, const float *in, int B, int h, int w, int C) {
    int h2 = (h + 1) / 2, w2 = (w + 1) / 2;
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)B * h2 * w2 * 4 * C) return;
    int c4 = (int)(i % (4 * C)), q = c4 / C, c = c4 % C;
    size_t r = i / (4 * C);
    int x = (int)(r % w2), y = (int)(r / w2 % h2), b = (int)(r / ((size_t)w2 * h2));
    int yy = 2 * y + (q & 1), xx = 2 * x + (q >> 1);
    out[i] = (yy < h && xx < w) ? in[(((size_t)b * h + yy) * w + xx) * C + c] : 0.0f;
}
void vmc_patch_merge(float *out, const float *in, int B, int h, int w, int C, cudaStream_t s) {
    size_t n = (size_t)B * ((h + 1) / 2) * ((w + 1) / 2) * 4 * C;
    k_patch_merge<<<blocks_for(n, 256), 256, 0, s>>>(out, in, B, h, w, C);
}

__global__ void k_nchw_to_nhwc(float *out, const float *in, int B, int C, int H, int W) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)B * C * H * W) return;
    int c = (int)(i % C);
    size_t r = i / C;
    int x = (int)(r % W), y = (int)(r / W % H), b = (int)(r / ((size_t)W * H));
    out[i] = in[(((size_t)b * C + c) * H + y) * W + x];
}
void vmc_nchw_to_nhwc(float *out, const float *in, int B, int C, int H, int W, cudaStream_t s) {
    k_nchw_to_nhwc<<<blocks_for((size_t)B * C * H * W, 256), 256, 0, s>>>(out, in, B, C, H, W);
}

__global__ void k_nhwc_to_nchw(float *out, const float *in, int B, int H, int W, int C) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)B * C * H * W) return;
    int t = (int)(i % ((size_t)H * W));
    size_t r = i / ((size_t)H * W);
    int c = (int)(r % C), b = (int)(r / C);
    out[i] = in[((size_t)b * H * W + t) * C + c];
}
void vmc_nhwc_to_nchw(float *out, const float *in, int B, int H, int W, int C, cudaStream_t s) {
    k_nhwc_to_nchw<<<blocks_for((size_t)B * C * H * W, 256), 256, 0, s>>>(out, in, B, H, W, C);
}

__global__ void k_rows(float *x, const float *bias, size_t T, int C, int add) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= T * C) return;
    x[i] = add ? x[i] + bias[i % C] : bias[i % C];
}
void vmc_fill_rows(float *x, const float *bias, size_t T, int C, cudaStream_t s) {
    k_rows<<<blocks_for(T * C, 256), 256, 0, s>>>(x, bias, T, C, 0);
}
void vmc_add_rows(float *x, const float *bias, size_t T, int C, cudaStream_t s) {
    k_rows<<<blocks_for(T * C, 256), 256, 0, s>>>(x, bias, T, C, 1);
}

__global__ void k_mean_tokens(float *out, const float *in, int B, int L, int C) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= B * C) return;
    int b = i / C, c = i % C;
    float acc = 0.0f;
    for (int t = 0; t < L; t++) acc += in[((size_t)b * L + t) * C + c];
    out[i] = acc / L;
}
void vmc_mean_tokens(float *out, const float *in, int B, int L, int C, cudaStream_t s) {
    k_mean_tokens<<<blocks_for((size_t)B * C, 128), 128, 0, s>>>(out, in, B, L, C);
}
