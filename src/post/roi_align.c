/* roi_align.c - RoIAlign as mmcv / torchvision compute it on the CPU
 * (bilinear samples averaged per bin), on NHWC maps so each sample is a
 * contiguous run of channels. */
#include "det_post.h"

#include <math.h>
#include <string.h>

typedef struct {
    int p1, p2, p3, p4;     /* pixel indices y*W+x */
    float w1, w2, w3, w4;
} sample;

/* torchvision's pre_calc_for_bilinear_interpolate for one sample point. */
static sample bilinear_at(float y, float x, int H, int W) {
    sample s = {0, 0, 0, 0, 0.0f, 0.0f, 0.0f, 0.0f};
    if (y < -1.0f || y > (float)H || x < -1.0f || x > (float)W) return s;
    if (y <= 0) y = 0;
    if (x <= 0) x = 0;
    int yl = (int)y, xl = (int)x, yh, xh;
    if (yl >= H - 1) { yh = yl = H - 1; y = (float)yl; } else yh = yl + 1;
    if (xl >= W - 1) { xh = xl = W - 1; x = (float)xl; } else xh = xl + 1;
    float ly = y - (float)yl, lx = x - (float)xl, hy = 1.0f - ly, hx = 1.0f - lx;
    s.w1 = hy * hx; s.w2 = hy * lx; s.w3 = ly * hx; s.w4 = ly * lx;
    s.p1 = yl * W + xl; s.p2 = yl * W + xh; s.p3 = yh * W + xl; s.p4 = yh * W + xh;
    return s;
}

typedef struct {
    float start_h, start_w, bin_h, bin_w;
    int grid_h, grid_w;
    float count;
} roi_geom;

static roi_geom geometry(const float box[4], float scale, int out_h, int out_w, int sampling_ratio) {
    roi_geom g;
    const float offset = 0.5f; /* aligned=True */
    g.start_w = box[0] * scale - offset;
    g.start_h = box[1] * scale - offset;
    float end_w = box[2] * scale - offset, end_h = box[3] * scale - offset;
    float rw = end_w - g.start_w, rh = end_h - g.start_h;
    g.bin_h = rh / (float)out_h;
    g.bin_w = rw / (float)out_w;
    float gh = ceilf(rh / (float)out_h), gw = ceilf(rw / (float)out_w);
    /* (a NaN or absurd box gets no samples instead of an undefined cast) */
    g.grid_h = sampling_ratio > 0 ? sampling_ratio : (gh >= 0.0f && gh < 65536.0f) ? (int)gh : 0;
    g.grid_w = sampling_ratio > 0 ? sampling_ratio : (gw >= 0.0f && gw < 65536.0f) ? (int)gw : 0;
    int c = g.grid_h * g.grid_w;
    g.count = (float)(c > 1 ? c : 1);
    return g;
}

static float sample_y(const roi_geom *g, int ph, int iy) {
    return g->start_h + (float)ph * g->bin_h + ((float)iy + 0.5f) * g->bin_h / (float)g->grid_h;
}
static float sample_x(const roi_geom *g, int pw, int ix) {
    return g->start_w + (float)pw * g->bin_w + ((float)ix + 0.5f) * g->bin_w / (float)g->grid_w;
}

int vm_roi_level(const float box[4], float finest_scale, int nlevels) {
    float s = sqrtf((box[2] - box[0]) * (box[3] - box[1]));
    float l = floorf(log2f(s / finest_scale + 1e-6f));
    if (!(l > 0)) return 0; /* also NaN */
    if (l > (float)(nlevels - 1)) return nlevels - 1;
    return (int)l;
}

void vm_roi_align_ref(const float *feat, int H, int W, int C, const float box[4], float spatial_scale, int out_h,
                      int out_w, int sampling_ratio, float *out) {
    roi_geom g = geometry(box, spatial_scale, out_h, out_w, sampling_ratio);
    for (int c = 0; c < C; c++) {
        const float *f = feat + (size_t)c * H * W;
        for (int ph = 0; ph < out_h; ph++)
            for (int pw = 0; pw < out_w; pw++) {
                float v = 0.0f;
                for (int iy = 0; iy < g.grid_h; iy++)
                    for (int ix = 0; ix < g.grid_w; ix++) {
                        sample s = bilinear_at(sample_y(&g, ph, iy), sample_x(&g, pw, ix), H, W);
                        v += s.w1 * f[s.p1] + s.w2 * f[s.p2] + s.w3 * f[s.p3] + s.w4 * f[s.p4];
                    }
                out[((size_t)c * out_h + ph) * out_w + pw] = v / g.count;
            }
    }
}

void vm_roi_align(const float *feat, int H, int W, int C, const float box[4], float spatial_scale, int out_h,
                  int out_w, int sampling_ratio, float *out) {
    roi_geom g = geometry(box, spatial_scale, out_h, out_w, sampling_ratio);
    for (int ph = 0; ph < out_h; ph++)
        for (int pw = 0; pw < out_w; pw++) {
            float *o = out + ((size_t)ph * out_w + pw) * C;
            memset(o, 0, (size_t)C * sizeof *o);
            for (int iy = 0; iy < g.grid_h; iy++) {
                float y = sample_y(&g, ph, iy);
                for (int ix = 0; ix < g.grid_w; ix++) {
                    sample s = bilinear_at(y, sample_x(&g, pw, ix), H, W);
                    if (s.w1 == 0.0f && s.w2 == 0.0f && s.w3 == 0.0f && s.w4 == 0.0f) continue;
                    const float *f1 = feat + (size_t)s.p1 * C, *f2 = feat + (size_t)s.p2 * C;
                    const float *f3 = feat + (size_t)s.p3 * C, *f4 = feat + (size_t)s.p4 * C;
                    for (int c = 0; c < C; c++) o[c] += s.w1 * f1[c] + s.w2 * f2[c] + s.w3 * f3[c] + s.w4 * f4[c];
                }
            }
            for (int c = 0; c < C; c++) o[c] /= g.count;
        }
}
