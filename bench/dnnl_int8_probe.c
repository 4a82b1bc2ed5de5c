/* dnnl_int8_probe.c - does oneDNN's u8s8 convolution (source zero point, output
 * scales, bias, optional ReLU, user scratchpad) or u8s8 matmul write outside
 * its buffers on this CPU? Every buffer we own gets a guard tail; results
 * are checked against a scalar reference; the kernel name is printed per
 * shape. Found the AMX jit_1x1 overrun of #12 on the H200 host.
 *   gcc -O1 bench/dnnl_int8_probe.c -o probe -ldnnl -lm && ./probe [1: explicit zp padding]
 * DSLACK=bytes adds room after dst (to see how far a write goes). */
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <math.h>
#define CAN 8192
static dnnl_engine_t eng; static dnnl_stream_t st;
static unsigned rs = 1; static int rnd(int m) { rs = rs * 1103515245u + 12345u; return (rs >> 8) % m; }
static void *cbuf(size_t n) { unsigned char *p; if (posix_memalign((void **)&p, 64, n + CAN)) exit(9); memset(p + n, 0xA5, CAN); return p; }
static int ccheck(const void *b, size_t n, const char *what) {
    const unsigned char *p = b; for (size_t i = 0; i < CAN; i++) if (p[n + i] != 0xA5) { printf("  OVERRUN %s at +%zu (size %zu)\n", what, i, n); return 1; }
    return 0;
}
static int probe(int Cin, int H, int W, int Cout, int k, int pad, int zp, int relu, int xpad) {
    size_t dslack = getenv("DSLACK") ? atol(getenv("DSLACK")) : 0;
    int OH = H + 2 * pad - k + 1, OW = W + 2 * pad - k + 1;
    int IH = H + 2 * xpad, IW = W + 2 * xpad; int cpad = pad - xpad;
    dnnl_dims_t sd = {1, Cin, IH, IW}, wd = {Cout, Cin, k, k}, bd = {Cout}, dd = {1, Cout, OH, OW};
    dnnl_dims_t s = {1, 1}, pl = {cpad, cpad}, pr = {cpad, cpad};
    dnnl_memory_desc_t smd, wany, wuser, bmd, dmd;
    dnnl_memory_desc_init_by_tag(&smd, 4, sd, dnnl_u8, dnnl_nhwc);
    dnnl_memory_desc_init_by_tag(&wany, 4, wd, dnnl_s8, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&wuser, 4, wd, dnnl_s8, dnnl_oihw);
    dnnl_memory_desc_init_by_tag(&bmd, 1, bd, dnnl_f32, dnnl_x);
    dnnl_memory_desc_init_by_tag(&dmd, 4, dd, dnnl_f32, dnnl_nhwc);
    dnnl_convolution_desc_t cd;
    if (dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &smd, &wany, &bmd, &dmd, s, pl, pr)) { printf("desc fail\n"); return 1; }
    dnnl_primitive_attr_t at; dnnl_primitive_attr_create(&at);
    dnnl_primitive_attr_set_scratchpad_mode(at, dnnl_scratchpad_mode_user);
    float *sc = malloc(Cout * 4); for (int o = 0; o < Cout; o++) sc[o] = 0.001f * (1 + o % 7);
    dnnl_primitive_attr_set_output_scales(at, Cout, 2, sc);
    int32_t z = zp; if (zp) dnnl_primitive_attr_set_zero_points(at, DNNL_ARG_SRC, 1, 0, &z);
    if (relu) { dnnl_post_ops_t po; dnnl_post_ops_create(&po); dnnl_post_ops_append_eltwise(po, 1.f, dnnl_eltwise_relu, 0, 0); dnnl_primitive_attr_set_post_ops(at, po); }
    dnnl_primitive_desc_t pd; if (dnnl_primitive_desc_create(&pd, &cd, at, eng, NULL)) { printf("pd fail\n"); return 1; }
    const char *impl; dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *spmd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t wb = dnnl_memory_desc_get_size(wmd), sb = spmd ? dnnl_memory_desc_get_size(spmd) : 0;
    size_t srcb = (size_t)IH * IW * Cin, dstb = (size_t)OH * OW * Cout * 4;
    uint8_t *src = cbuf(srcb); int8_t *w = malloc((size_t)Cout * Cin * k * k); float *b = malloc(Cout * 4);
    for (size_t i = 0; i < srcb; i++) src[i] = rnd(256);
    if (xpad) for (int y = 0; y < IH; y++) for (int x = 0; x < IW; x++) if (y < xpad || y >= IH - xpad || x < xpad || x >= IW - xpad) memset(src + ((size_t)y * IW + x) * Cin, zp, Cin);
    for (size_t i = 0; i < (size_t)Cout * Cin * k * k; i++) w[i] = rnd(255) - 127;
    for (int o = 0; o < Cout; o++) b[o] = rnd(1000) - 500;
    void *wp = cbuf(wb), *dst = cbuf(dstb + dslack), *scr = sb ? cbuf(sb) : NULL;
    dnnl_memory_t ms, mw, mwu, mb, md, msc = NULL; dnnl_primitive_t prim, rp; dnnl_primitive_desc_t rpd;
    dnnl_memory_create(&ms, &smd, eng, src); dnnl_memory_create(&mw, wmd, eng, wp); dnnl_memory_create(&mwu, &wuser, eng, w);
    dnnl_memory_create(&mb, &bmd, eng, b); dnnl_memory_create(&md, &dmd, eng, dst);
    if (sb) dnnl_memory_create(&msc, spmd, eng, scr);
    dnnl_reorder_primitive_desc_create(&rpd, &wuser, eng, wmd, eng, NULL); dnnl_primitive_create(&rp, rpd);
    dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, mwu}, {DNNL_ARG_TO, mw}}; dnnl_primitive_execute(rp, st, 2, ra); dnnl_stream_wait(st);
    int bad = ccheck(wp, wb, "weights(reorder)");
    dnnl_primitive_create(&prim, pd);
    dnnl_exec_arg_t a[5] = {{DNNL_ARG_SRC, ms}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_BIAS, mb}, {DNNL_ARG_DST, md}, {DNNL_ARG_SCRATCHPAD, msc}};
    if (dnnl_primitive_execute(prim, st, sb ? 5 : 4, a) || dnnl_stream_wait(st)) { printf("exec fail\n"); bad = 1; }
    bad |= ccheck(wp, wb, "weights") | ccheck(dst, dstb + dslack, "dst") | ccheck(src, srcb, "src") | (sb ? ccheck(scr, sb, "scratchpad") : 0);
    /* reference on a few outputs */
    double maxe = 0; float *D = dst;
    for (int t = 0; t < 200; t++) {
        int oy = rnd(OH), ox = rnd(OW), o = rnd(Cout); long acc = 0;
        for (int c = 0; c < Cin; c++) for (int ky = 0; ky < k; ky++) for (int kx = 0; kx < k; kx++) {
            int iy = oy + ky - cpad, ix = ox + kx - cpad; int v = (iy < 0 || iy >= IH || ix < 0 || ix >= IW) ? zp : src[((size_t)iy * IW + ix) * Cin + c];
            acc += (long)(v - zp) * w[(((size_t)o * Cin + c) * k + ky) * k + kx]; }
        double r = sc[o] * ((double)acc + b[o]); if (relu && r < 0) r = 0;
        double e = fabs(r - D[((size_t)oy * OW + ox) * Cout + o]) / fmax(1, fabs(r)); if (e > maxe) maxe = e;
    }
    printf("Cin %4d %3dx%-3d Cout %4d k%d pad%d xpad%d zp%3d relu%d: %-28s w %zu scr %zu maxrel %.2e%s\n", Cin, H, W, Cout, k, pad, xpad, zp, relu, impl, wb, sb, maxe, bad || maxe > 1e-3 ? "  <-- BAD" : "");
    fflush(stdout);
    return bad || maxe > 1e-3;
}

static int probe_mm(int M, int K, int N, int zp, int sum) {
    dnnl_dims_t ad = {M, K}, bd = {K, N}, cd = {M, N};
    dnnl_memory_desc_t amd, bany, buser, cmd;
    dnnl_memory_desc_init_by_tag(&amd, 2, ad, dnnl_u8, dnnl_ab);
    dnnl_memory_desc_init_by_tag(&bany, 2, bd, dnnl_s8, dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&buser, 2, bd, dnnl_s8, dnnl_ab);
    dnnl_memory_desc_init_by_tag(&cmd, 2, cd, dnnl_f32, dnnl_ab);
    dnnl_matmul_desc_t md; dnnl_matmul_desc_init(&md, &amd, &bany, NULL, &cmd);
    dnnl_primitive_attr_t at; dnnl_primitive_attr_create(&at);
    dnnl_primitive_attr_set_scratchpad_mode(at, dnnl_scratchpad_mode_user);
    float *sc = malloc(N * 4); for (int o = 0; o < N; o++) sc[o] = 0.001f;
    dnnl_primitive_attr_set_output_scales(at, N, 2, sc);
    int32_t z = zp; if (zp) dnnl_primitive_attr_set_zero_points(at, DNNL_ARG_SRC, 1, 0, &z);
    if (sum) { dnnl_post_ops_t po; dnnl_post_ops_create(&po); dnnl_post_ops_append_sum(po, 1.f); dnnl_primitive_attr_set_post_ops(at, po); }
    dnnl_primitive_desc_t pd; if (dnnl_primitive_desc_create(&pd, &md, at, eng, NULL)) { printf("mm pd fail\n"); return 1; }
    const char *impl; dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *spmd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t wb = dnnl_memory_desc_get_size(wmd), sb = spmd ? dnnl_memory_desc_get_size(spmd) : 0;
    size_t ab = (size_t)M * K, cb = (size_t)M * N * 4;
    uint8_t *a = cbuf(ab); int8_t *b = malloc((size_t)K * N); float *c = cbuf(cb);
    for (size_t i = 0; i < ab; i++) a[i] = rnd(256);
    for (size_t i = 0; i < (size_t)K * N; i++) b[i] = rnd(255) - 127;
    for (size_t i = 0; i < (size_t)M * N; i++) c[i] = 1.0f;
    void *wp = cbuf(wb), *scr = sb ? cbuf(sb) : NULL;
    dnnl_memory_t ma, mw, mwu, mc, msc = NULL; dnnl_primitive_t prim, rp; dnnl_primitive_desc_t rpd;
    dnnl_memory_create(&ma, &amd, eng, a); dnnl_memory_create(&mw, wmd, eng, wp); dnnl_memory_create(&mwu, &buser, eng, b);
    dnnl_memory_create(&mc, &cmd, eng, c); if (sb) dnnl_memory_create(&msc, spmd, eng, scr);
    dnnl_reorder_primitive_desc_create(&rpd, &buser, eng, wmd, eng, NULL); dnnl_primitive_create(&rp, rpd);
    dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, mwu}, {DNNL_ARG_TO, mw}}; dnnl_primitive_execute(rp, st, 2, ra); dnnl_stream_wait(st);
    int bad = ccheck(wp, wb, "mm weights(reorder)");
    dnnl_primitive_create(&prim, pd);
    dnnl_exec_arg_t x[4] = {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mw}, {DNNL_ARG_DST, mc}, {DNNL_ARG_SCRATCHPAD, msc}};
    if (dnnl_primitive_execute(prim, st, sb ? 4 : 3, x) || dnnl_stream_wait(st)) { printf("exec fail\n"); bad = 1; }
    bad |= ccheck(wp, wb, "mm weights") | ccheck(c, cb, "mm dst") | ccheck(a, ab, "mm src") | (sb ? ccheck(scr, sb, "mm scratch") : 0);
    double maxe = 0;
    for (int t = 0; t < 100; t++) { int i = rnd(M), j = rnd(N); long acc = 0; for (int k = 0; k < K; k++) acc += (long)(a[(size_t)i * K + k] - zp) * b[(size_t)k * N + j];
        double r = 0.001 * acc + (sum ? 1.0 : 0.0); double e = fabs(r - c[(size_t)i * N + j]) / fmax(1, fabs(r)); if (e > maxe) maxe = e; }
    printf("MM %4dx%4dx%4d zp%3d sum%d: %-26s w %zu scr %zu maxrel %.2e%s\n", M, K, N, zp, sum, impl, wb, sb, maxe, bad || maxe > 1e-3 ? "  <-- BAD" : "");
    fflush(stdout);
    return bad || maxe > 1e-3;
}
int main(int argc, char **argv) {
    dnnl_engine_create(&eng, dnnl_cpu, 0); dnnl_stream_create(&st, eng, 0);
    int cins[] = {64, 192, 768, 32}, couts[] = {32, 512, 150}, hw[][2] = {{1, 1}, {2, 2}, {3, 3}, {6, 6}, {1, 5}, {2, 7}, {5, 1}};
    int nbad = 0, xp = argc > 1 ? atoi(argv[1]) : 0;
    int Ms[] = {1, 3, 12, 48, 150, 192}, Ks[] = {32, 64, 192}, Ns[] = {20, 32, 64, 256};
    for (int a = 0; a < 6; a++) for (int b = 0; b < 3; b++) for (int c = 0; c < 4; c++) { nbad += probe_mm(Ms[a], Ks[b], Ns[c], 5 + rnd(200), c & 1); nbad += probe_mm(Ms[a], Ks[b], Ns[c], 0, 0); }
    for (int a = 0; a < 4; a++) for (int b = 0; b < 3; b++) for (int h = 0; h < 7; h++) for (int k = 1; k <= 3; k += 2) {
        if ((size_t)cins[a] * couts[b] * hw[h][0] * hw[h][1] * k * k > 3e8) continue;
        int pad = k / 2;
        nbad += probe(cins[a], hw[h][0], hw[h][1], couts[b], k, pad, 3 + rnd(250), k == 3, xp && pad ? pad : 0);
        nbad += probe(cins[a], hw[h][0], hw[h][1], couts[b], k, pad, 0, 0, 0);
    }
    printf("TOTAL BAD %d\n", nbad);
    return nbad != 0;
}
