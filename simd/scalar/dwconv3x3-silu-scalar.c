/* dwconv3x3-silu-scalar.c - reference depthwise 3x3 conv (pad 1) + SiLU. */
#include <math.h>

#include "scalar.h"

void vm_dwconv3x3_silu_scalar(float *out, const float *in, int ld_in, const float *w, const float *bias, int B, int H,
                              int W, int C) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int x = 0; x < W; x++) {
                float *o = out + (((size_t)b * H + h) * W + x) * C;
                for (int c = 0; c < C; c++) {
                    float acc = bias ? bias[c] : 0.0f;
                    for (int dy = -1; dy <= 1; dy++) {
                        int yy = h + dy;
                        if (yy < 0 || yy >= H) continue;
                        for (int dx = -1; dx <= 1; dx++) {
                            int xx = x + dx;
                            if (xx < 0 || xx >= W) continue;
                            acc += w[c * 9 + (dy + 1) * 3 + (dx + 1)] * in[(((size_t)b * H + yy) * W + xx) * ld_in + c];
                        }
                    }
                    o[c] = acc / (1.0f + expf(-acc));
                }
            }
}
