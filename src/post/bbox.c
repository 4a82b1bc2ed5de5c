/* bbox.c - anchors and box-delta decoding (mmdet AnchorGenerator and
 * DeltaXYWHBBoxCoder.decode), float32 step by step as torch computes them. */
#include "det_post.h"

#include <math.h>

void vm_delta2bbox(const float roi[4], const float d[4], const float stds[4], float max_w, float max_h, float out[4]) {
    /* np.abs(np.log(16 / 1000)) is a Python float; clamp casts it to float32. */
    const float max_ratio = (float)4.135166556742356;
    float dx = d[0] * stds[0], dy = d[1] * stds[1], dw = d[2] * stds[2], dh = d[3] * stds[3];
    float px = (roi[0] + roi[2]) * 0.5f, py = (roi[1] + roi[3]) * 0.5f;
    float pw = roi[2] - roi[0], ph = roi[3] - roi[1];
    float dxw = pw * dx, dyh = ph * dy;
    dw = fminf(fmaxf(dw, -max_ratio), max_ratio);
    dh = fminf(fmaxf(dh, -max_ratio), max_ratio);
    float gx = px + dxw, gy = py + dyh;
    float gw = pw * expf(dw), gh = ph * expf(dh);
    float x1 = gx - gw * 0.5f, y1 = gy - gh * 0.5f, x2 = gx + gw * 0.5f, y2 = gy + gh * 0.5f;
    out[0] = fminf(fmaxf(x1, 0.0f), max_w);
    out[1] = fminf(fmaxf(y1, 0.0f), max_h);
    out[2] = fminf(fmaxf(x2, 0.0f), max_w);
    out[3] = fminf(fmaxf(y2, 0.0f), max_h);
}

void vm_anchors(int H, int W, int stride, float scale, const float *ratios, int nr, float *out) {
    float base[16][4];
    for (int a = 0; a < nr && a < 16; a++) {
        float hr = sqrtf(ratios[a]), wr = 1.0f / hr;
        float ws = (float)stride * wr * scale, hs = (float)stride * hr * scale;
        base[a][0] = -0.5f * ws; base[a][1] = -0.5f * hs;
        base[a][2] = 0.5f * ws; base[a][3] = 0.5f * hs;
    }
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int a = 0; a < nr && a < 16; a++) {
                float *o = out + 4 * (((size_t)y * W + x) * nr + a);
                float sx = (float)(x * stride), sy = (float)(y * stride);
                o[0] = base[a][0] + sx; o[1] = base[a][1] + sy;
                o[2] = base[a][2] + sx; o[3] = base[a][3] + sy;
            }
}
