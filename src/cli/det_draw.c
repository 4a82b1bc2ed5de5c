/* det_draw.c - see det_draw.h. */
#include "det_draw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 5x7 glyphs, one byte per row, bit 4 = leftmost column: digits, a-z and
 * a little punctuation (class names and scores); capitals use the small
 * letters, anything else a hollow box. */
static const uint8_t digits[10][7] = {
    {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}, {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E},
    {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}, {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E},
    {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}, {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E},
    {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}, {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08},
    {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}, {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}};
static const uint8_t letters[26][7] = {
    {0x00, 0x00, 0x0E, 0x01, 0x0F, 0x11, 0x0F}, {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1E},
    {0x00, 0x00, 0x0E, 0x10, 0x10, 0x11, 0x0E}, {0x01, 0x01, 0x0D, 0x13, 0x11, 0x11, 0x0F},
    {0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E}, {0x06, 0x09, 0x08, 0x1C, 0x08, 0x08, 0x08},
    {0x00, 0x0F, 0x11, 0x11, 0x0F, 0x01, 0x0E}, {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11},
    {0x04, 0x00, 0x0C, 0x04, 0x04, 0x04, 0x0E}, {0x02, 0x00, 0x06, 0x02, 0x02, 0x12, 0x0C},
    {0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12}, {0x0C, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E},
    {0x00, 0x00, 0x1A, 0x15, 0x15, 0x11, 0x11}, {0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11},
    {0x00, 0x00, 0x0E, 0x11, 0x11, 0x11, 0x0E}, {0x00, 0x00, 0x1E, 0x11, 0x1E, 0x10, 0x10},
    {0x00, 0x00, 0x0D, 0x13, 0x0F, 0x01, 0x01}, {0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10},
    {0x00, 0x00, 0x0E, 0x10, 0x0E, 0x01, 0x1E}, {0x08, 0x08, 0x1C, 0x08, 0x08, 0x09, 0x06},
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0D}, {0x00, 0x00, 0x11, 0x11, 0x11, 0x0A, 0x04},
    {0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0A}, {0x00, 0x00, 0x11, 0x0A, 0x04, 0x0A, 0x11},
    {0x00, 0x00, 0x11, 0x11, 0x0F, 0x01, 0x0E}, {0x00, 0x00, 0x1F, 0x02, 0x04, 0x08, 0x1F}};
static const uint8_t dot[7] = {0, 0, 0, 0, 0, 0x0C, 0x0C}, colon[7] = {0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0},
                     dash[7] = {0, 0, 0, 0x1F, 0, 0, 0}, under[7] = {0, 0, 0, 0, 0, 0, 0x1F}, space[7] = {0},
                     unknown[7] = {0x1F, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1F};

static const uint8_t *glyph(char c) {
    if (c >= '0' && c <= '9') return digits[c - '0'];
    if (c >= 'a' && c <= 'z') return letters[c - 'a'];
    if (c >= 'A' && c <= 'Z') return letters[c - 'A'];
    switch (c) {
    case '.': return dot;
    case ':': return colon;
    case '-': return dash;
    case '_': return under;
    case ' ': return space;
    default: return unknown;
    }
}

/* A distinct colour per detection index (golden-angle hue walk). */
static void colour(int i, uint8_t c[3]) {
    float h = (float)i * 0.618034f;
    h -= (float)(int)h;
    float r = h * 6.0f;
    int k = (int)r;
    float f = r - (float)k;
    float v[6][3] = {{1, f, 0}, {1 - f, 1, 0}, {0, 1, f}, {0, 1 - f, 1}, {f, 0, 1}, {1, 0, 1 - f}};
    for (int j = 0; j < 3; j++) c[j] = (uint8_t)(40 + 215 * v[k % 6][j]);
}

static void put(uint8_t *rgb, int W, int H, int x, int y, const uint8_t c[3]) {
    if (x < 0 || y < 0 || x >= W || y >= H) return;
    memcpy(rgb + ((size_t)y * W + x) * 3, c, 3);
}

static void text(uint8_t *rgb, int W, int H, int x0, int y0, const char *s, int scale, const uint8_t fg[3], const uint8_t bg[3]) {
    int n = (int)strlen(s);
    for (int y = -1; y < 8 * scale; y++)
        for (int x = -1; x < n * 6 * scale; x++) put(rgb, W, H, x0 + x, y0 + y, bg);
    for (int i = 0; i < n; i++) {
        const uint8_t *g = glyph(s[i]);
        for (int r = 0; r < 7; r++)
            for (int b = 0; b < 5; b++)
                if (g[r] >> (4 - b) & 1)
                    for (int dy = 0; dy < scale; dy++)
                        for (int dx = 0; dx < scale; dx++) put(rgb, W, H, x0 + (i * 6 + b) * scale + dx, y0 + r * scale + dy, fg);
    }
}

void det_draw(uint8_t *rgb, const vm_detections *r, const vm_detector *d) {
    int W = r->width, H = r->height;
    int scale = W >= 1280 ? 2 : 1, th = W >= 1280 ? 3 : 2;
    /* masks first (half-transparent tints), then boxes and labels on top */
    for (int i = 0; i < r->count; i++) {
        uint8_t c[3];
        colour(i, c);
        const vm_det_mask *m = &r->masks[i];
        for (int y = 0; y < m->h; y++)
            for (int x = 0; x < m->w; x++)
                if (m->bits[(size_t)y * m->w + x]) {
                    uint8_t *p = rgb + ((size_t)(m->y + y) * W + m->x + x) * 3;
                    for (int k = 0; k < 3; k++) p[k] = (uint8_t)((p[k] + c[k]) / 2);
                }
    }
    for (int i = 0; i < r->count; i++) {
        uint8_t c[3], black[3] = {0, 0, 0};
        colour(i, c);
        const float *b = r->boxes + 4 * (size_t)i;
        int x1 = (int)b[0], y1 = (int)b[1], x2 = (int)b[2], y2 = (int)b[3];
        for (int t = 0; t < th; t++) {
            for (int x = x1; x <= x2; x++) { put(rgb, W, H, x, y1 + t, c); put(rgb, W, H, x, y2 - t, c); }
            for (int y = y1; y <= y2; y++) { put(rgb, W, H, x1 + t, y, c); put(rgb, W, H, x2 - t, y, c); }
        }
        char s[96];
        const char *name = vm_detector_class_name(d, r->labels[i]);
        snprintf(s, sizeof s, "%s %.2f", name ? name : "?", (double)r->scores[i]);
        int ty = y1 - 8 * scale - 1;
        text(rgb, W, H, x1, ty < 0 ? y1 + th : ty, s, scale, black, c);
    }
}
