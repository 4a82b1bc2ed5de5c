/* kernels.cu - see kernels.cuh. Simple, correct kernels first: one thread
 * per output element, one warp per LayerNorm row, one thread per
 * (batch, channel) for the scan with its state in registers. */
#include "kernels.cuh"

static inline unsigned blocks_for(size_t n, unsigned t) { return (unsigned)((n + t - 1) / t); }

__device__ __forceinline__ float silu1(float x) { return x / (1.0f + expf(-x)); }
__device__ __forceinline__ float softplus1(float x) { return x > 20.0f ? x : log1pf(expf(x)); }

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

void vmc_layernorm(float *out, const float *in, const float *w, const float *b, size_t T, int C, float eps, cudaStream_t s) {
    k_layernorm<<<blocks_for(T, 8), 256, 0, s>>>(out, in, w, b, T, C, eps);
}

__global__ void k_gelu(float *x, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}
void vmc_gelu(float *x, size_t n, cudaStream_t s) { k_gelu<<<blocks_for(n, 256), 256, 0, s>>>(x, n); }

__global__ void k_mul_silu(float *out, const float *in, const float *z, size_t T, int C, int ldz) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= T * C) return;
    size_t t = i / C;
    int c = (int)(i % C);
    out[i] = in[i] * silu1(z[t * ldz + c]);
}
void vmc_mul_silu(float *out, const float *in, const float *z, size_t T, int C, int ldz, cudaStream_t s) {
    k_mul_silu<<<blocks_for(T * C, 256), 256, 0, s>>>(out, in, z, T, C, ldz);
}

__global__ void k_dwconv(float *out, const float *in, int ld_in, const float *w, const float *bias, int B, int H, int W, int C) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)B * H * W * C) return;
    int c = (int)(i % C);
    size_t r = i / C;
    int x = (int)(r % W), h = (int)(r / W % H), b = (int)(r / ((size_t)W * H));
    float acc = bias ? bias[c] : 0.0f;
    for (int dy = -1; dy <= 1; dy++) {
        int yy = h + dy;
        if (yy < 0 || yy >= H) continue;
        for (int dx = -1; dx <= 1; dx++) {
            int xx = x + dx;
            if (xx < 0 || xx >= W) continue;
            acc += w[c * 9 + (dy + 1) * 3 + dx + 1] * in[(((size_t)b * H + yy) * W + xx) * ld_in + c];
        }
    }
    out[i] = silu1(acc);
}
void vmc_dwconv3x3_silu(float *out, const float *in, int ld_in, const float *w, const float *bias, int B, int H, int W,
                        int C, cudaStream_t s) {
    k_dwconv<<<blocks_for((size_t)B * H * W * C, 256), 256, 0, s>>>(out, in, ld_in, w, bias, B, H, W, C);
}

/* ---- chunked scan: parallel over (b, k, chunk, d) ----------------------
 * The recurrence h_l = exp(delta_l A) h_{l-1} + delta_l B_l u_l is linear,
 * so a chunk of S steps maps its start state h0 to
 *   h_end = exp(A sum(delta)) h0 + h_end|h0=0.
 * Pass 1 runs every chunk from h0 = 0 and keeps (sum delta, h_end); a
 * short sequential pass per (b, k, d) turns those into each chunk's true
 * start state; pass 2 reruns every chunk from it and writes y for its
 * direction into ys[k]; a last kernel sums the 4 directions. Work is 2x the
 * sequential scan, parallelism nchunk x 4 x higher. */
struct scan_args {
    const float *u, *dtw, *dbl, *A, *Ds, *dt_bias;
    int B, H, W, D, N, R, S, nchunk;
};

/* softplus(x) with fast exp/log: |error| < 1e-6 absolute, far inside
 * the 1e-4 golden tolerance; torch's threshold 20 kept. */
__device__ __forceinline__ float softplus_fast(float x) { return x > 20.0f ? x : __logf(1.0f + __expf(x)); }

template <int NMAX>
__global__ void k_scan_chunk(scan_args g, float *sumd, float *hbuf, int pass, float *ys) {
    size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int D = g.D, N = g.N, H = g.H, W = g.W, L = H * W, R = g.R, P = R + 2 * N;
    if (idx >= (size_t)g.B * 4 * g.nchunk * D) return;
    int d = (int)(idx % D);
    size_t r = idx / D;
    int c = (int)(r % g.nchunk), k = (int)(r / g.nchunk % 4), b = (int)(r / g.nchunk / 4);
    size_t sidx = (((size_t)b * 4 + k) * g.nchunk + c); /* chunk id */
    float h[NMAX], a[NMAX], wdt[VM_CUDA_MAX_DT_RANK];
    for (int n = 0; n < N; n++) {
        a[n] = g.A[((size_t)k * D + d) * N + n] * 1.44269504f; /* exp(x) = exp2(x log2 e) */
        h[n] = pass ? hbuf[(sidx * N + n) * D + d] : 0.0f;
    }
    /* dt_proj fused: delta = softplus(dt_w[k][d] . x_dbl[tok][k][0:R] + bias) */
    const float *dtw = g.dtw + ((size_t)k * D + d) * R;
    for (int q = 0; q < R; q++) wdt[q] = dtw[q];
    const float bk = g.dt_bias[k * D + d], Dk = g.Ds[k * D + d];
    float sd = 0.0f;
    const int l0 = c * g.S, l1 = min(L, l0 + g.S);
    /* Walk the direction's token order incrementally (no division per step). */
    int ll = k >= 2 ? L - 1 - l0 : l0, step = k >= 2 ? -1 : 1;
    int hh = ll % H, ww = ll / H; /* column-major position, for k odd */
    for (int l = l0; l < l1; l++) {
        int t = (k & 1) ? hh * W + ww : ll;
        size_t tok = (size_t)b * L + t;
        const float *row = g.dbl + tok * 4 * P + (size_t)k * P;
        float dt = bk;
        for (int q = 0; q < R; q++) dt = fmaf(wdt[q], row[q], dt);
        float uu = g.u[tok * D + d];
        float dl = softplus_fast(dt);
        const float *Bv = row + R, *Cv = Bv + N;
        float acc = 0.0f, du = dl * uu;
        sd += dl;
        for (int n = 0; n < N; n++) {
            h[n] = exp2f(dl * a[n]) * h[n] + du * Bv[n];
            acc += h[n] * Cv[n];
        }
        if (pass) ys[((size_t)k * g.B * L + tok) * D + d] = acc + Dk * uu;
        ll += step;
        hh += step;
        if (hh == H) { hh = 0; ww++; }
        else if (hh < 0) { hh = H - 1; ww--; }
    }
    if (!pass) {
        sumd[sidx * D + d] = sd;
        for (int n = 0; n < N; n++) hbuf[(sidx * N + n) * D + d] = h[n];
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

__global__ void k_merge4(float *y, const float *ys, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = ys[i] + ys[n + i] + ys[2 * n + i] + ys[3 * n + i];
}

size_t vmc_scan_chunked_scratch(int B, int H, int W, int D, int N, int S) {
    size_t L = (size_t)H * W, nchunk = (L + S - 1) / S;
    return 4 * (size_t)B * L * D + (size_t)B * 4 * nchunk * D * (1 + (size_t)N);
}

void vmc_scan_cross_chunked(float *y, float *scratch, const float *u, const float *dt_w, const float *dbl, const float *A,
                            const float *Ds, const float *dt_bias, int B, int H, int W, int D, int N, int R, int S,
                            cudaStream_t s) {
    int L = H * W;
    scan_args g = {u, dt_w, dbl, A, Ds, dt_bias, B, H, W, D, N, R, S, (L + S - 1) / S};
    float *ys = scratch, *sumd = ys + 4 * (size_t)B * L * D, *hbuf = sumd + (size_t)B * 4 * g.nchunk * D;
    size_t nt = (size_t)B * 4 * g.nchunk * D;
    unsigned nb = blocks_for(nt, 128);
    for (int pass = 0; pass < 2; pass++) {
        if (N <= 1) k_scan_chunk<1><<<nb, 128, 0, s>>>(g, sumd, hbuf, pass, ys);
        else if (N <= 16) k_scan_chunk<16><<<nb, 128, 0, s>>>(g, sumd, hbuf, pass, ys);
        else k_scan_chunk<VM_CUDA_MAX_STATE><<<nb, 128, 0, s>>>(g, sumd, hbuf, pass, ys);
        if (!pass) k_scan_carry<<<blocks_for((size_t)B * 4 * D, 128), 128, 0, s>>>(g, sumd, hbuf);
    }
    size_t n = (size_t)B * L * D;
    k_merge4<<<blocks_for(n, 256), 256, 0, s>>>(y, ys, n);
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
void vmc_im2col(float *col, const float *in, int B, int H, int W, int C, int k, int st, int p, int OH, int OW, cudaStream_t s) {
    size_t n = (size_t)B * OH * OW * k * k * C;
    k_im2col<<<blocks_for(n, 256), 256, 0, s>>>(col, in, B, H, W, C, k, st, p, OH, OW);
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
