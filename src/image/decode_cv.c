/* decode_cv.c - OpenCV 4.6 imdecode(IMREAD_COLOR) pixels: see decode_cv.h.
 * JPEG: libjpeg-turbo with OpenCV's settings (islow DCT, fancy
 * upsampling, output JCS_EXT_BGR; CMYK/YCCK out as JCS_CMYK then
 * icvCvt_CMYK2BGR_8u_C4C3R: X = k - ((255 - x) * k >> 8) on the stored
 * (Adobe-inverted) values), then the EXIF orientation. PNG: libpng with
 * the transforms OpenCV's PngDecoder asks for (strip_16 = high byte,
 * strip_alpha, palette_to_rgb, expand gray 1/2/4 bits, gray_to_rgb, bgr). */
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "decode_cv.h"
#include "decode_libs.h"
#include "../core/util.h"

static unsigned rd16e(const uint8_t *p, int be) { return be ? (unsigned)(p[0] << 8 | p[1]) : (unsigned)(p[1] << 8 | p[0]); }
static uint32_t rd32e(const uint8_t *p, int be) {
    return be ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
              : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* Orientation from a TIFF block (the APP1 payload after "Exif\0\0"). */
static int tiff_orientation(const uint8_t *t, size_t n) {
    if (n < 8) return 1;
    int be;
    if (t[0] == 'I' && t[1] == 'I') be = 0;
    else if (t[0] == 'M' && t[1] == 'M') be = 1;
    else return 1;
    if (rd16e(t + 2, be) != 42) return 1;
    uint32_t ifd = rd32e(t + 4, be);
    if (ifd > n - 2 || ifd < 8) return 1;
    unsigned cnt = rd16e(t + ifd, be);
    for (unsigned i = 0; i < cnt; i++) {
        size_t e = (size_t)ifd + 2 + (size_t)i * 12;
        if (e + 12 > n) return 1;
        if (rd16e(t + e, be) != 0x0112) continue;
        if (rd16e(t + e + 2, be) != 3) return 1; /* SHORT */
        unsigned v = rd16e(t + e + 8, be);
        return v >= 1 && v <= 8 ? (int)v : 1;
    }
    return 1;
}

int vm_jpeg_exif_orientation(const uint8_t *buf, size_t len) {
    if (len < 4 || buf[0] != 0xff || buf[1] != 0xd8) return 1;
    size_t p = 2;
    /* Walk the marker segments up to the scan. */
    while (p + 4 <= len) {
        if (buf[p] != 0xff) return 1;
        uint8_t m = buf[p + 1];
        if (m == 0xff) { p++; continue; }               /* fill byte */
        if (m == 0xd8 || (m >= 0xd0 && m <= 0xd7) || m == 0x01) { p += 2; continue; }
        if (m == 0xda || m == 0xd9) return 1;           /* SOS / EOI */
        size_t seg = (size_t)buf[p + 2] << 8 | buf[p + 3];
        if (seg < 2 || p + 2 + seg > len) return 1;
        if (m == 0xe1 && seg >= 8 && memcmp(buf + p + 4, "Exif\0\0", 6) == 0)
            return tiff_orientation(buf + p + 10, seg - 8);
        p += 2 + seg;
    }
    return 1;
}

int vm_image_orient(vm_image *im, int o) {
    if (o < 2 || o > 8) return 0;
    int W = im->w, H = im->h, tr = o >= 5;
    int dw = tr ? H : W, dh = tr ? W : H;
    uint8_t *d = malloc((size_t)W * H * 3);
    if (!d) return -1;
    for (int y = 0; y < dh; y++)
        for (int x = 0; x < dw; x++) {
            int sy, sx;
            switch (o) {
            case 2: sy = y; sx = W - 1 - x; break;              /* flip horizontal */
            case 3: sy = H - 1 - y; sx = W - 1 - x; break;      /* rotate 180 */
            case 4: sy = H - 1 - y; sx = x; break;              /* flip vertical */
            case 5: sy = x; sx = y; break;                      /* transpose */
            case 6: sy = H - 1 - x; sx = y; break;              /* transpose, flip horizontal */
            case 7: sy = H - 1 - x; sx = W - 1 - y; break;      /* transpose, flip both */
            default: sy = x; sx = W - 1 - y; break;             /* 8: transpose, flip vertical */
            }
            memcpy(d + ((size_t)y * dw + x) * 3, im->rgb + ((size_t)sy * W + sx) * 3, 3);
        }
    free(im->rgb);
    im->rgb = d;
    im->w = dw;
    im->h = dh;
    return 0;
}

static int cv_jpeg(const uint8_t *buf, size_t len, const char *what, vm_image *out, char *err, size_t errlen) {
    uint8_t *tmp;
    int w, h, pf;
    if (vm_jpeg_read(buf, len, what, TJPF_BGR, 0, &tmp, &w, &h, &pf, err, errlen)) return -1;
    out->w = w;
    out->h = h;
    if (pf != TJPF_CMYK) {
        out->rgb = tmp;
        tmp = NULL;
    } else {
        if (!(out->rgb = malloc((size_t)w * h * 3))) {
            free(tmp);
            return vm_errf(err, errlen, "%s: out of memory for a %dx%d image", what, w, h);
        }
        size_t n = (size_t)w * h;
        for (size_t i = 0; i < n; i++) {
            const uint8_t *c = tmp + 4 * i;
            int k = c[3];
            uint8_t *o = out->rgb + 3 * i;
            o[2] = (uint8_t)(k - ((255 - c[0]) * k >> 8));
            o[1] = (uint8_t)(k - ((255 - c[1]) * k >> 8));
            o[0] = (uint8_t)(k - ((255 - c[2]) * k >> 8));
        }
        free(tmp);
    }
    if (vm_image_orient(out, vm_jpeg_exif_orientation(buf, len))) {
        free(out->rgb);
        out->rgb = NULL;
        return vm_errf(err, errlen, "%s: out of memory rotating a %dx%d image", what, w, h);
    }
    return 0;
}

/* OpenCV's PngDecoder::readData for an 8-bit 3-channel result. */
static void cv_setup(png_structp png, png_infop info, void *user) {
    (void)user;
    int depth = png_get_bit_depth(png, info), ct = png_get_color_type(png, info);
    if (depth > 8) png_set_strip_16(png);
    png_set_strip_alpha(png);
    if (ct == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if ((ct & PNG_COLOR_MASK_COLOR) == 0 && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (ct & PNG_COLOR_MASK_COLOR) png_set_bgr(png);
    else png_set_gray_to_rgb(png);
}

static int cv_png(const uint8_t *buf, size_t len, const char *what, vm_image *out, char *err, size_t errlen) {
    size_t rowbytes;
    int ch;
    if (vm_png_read(buf, len, what, cv_setup, NULL, 1, &out->rgb, &rowbytes, &out->w, &out->h, &ch, err, errlen)) {
        vm_image_free(out);
        return -1;
    }
    return 0;
}

int vm_cv_decode(const uint8_t *buf, size_t len, const char *what, vm_image *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (len >= 3 && buf[0] == 0xff && buf[1] == 0xd8 && buf[2] == 0xff) return cv_jpeg(buf, len, what, out, err, errlen);
    if (len >= 8 && memcmp(buf, "\x89PNG\r\n\x1a\n", 8) == 0) return cv_png(buf, len, what, out, err, errlen);
    if (len == 0) return vm_errf(err, errlen, "%s: empty file", what);
    return vm_errf(err, errlen, "%s: unsupported image format (only JPEG and PNG are read)", what);
}

int vm_cv_load(const char *path, vm_image *out, char *err, size_t errlen) {
    vm_file_map m;
    memset(out, 0, sizeof *out);
    if (vm_map_file(path, &m, err, errlen)) return -1;
    int rc = vm_cv_decode(m.data, m.size, path, out, err, errlen);
    vm_unmap_file(&m);
    return rc;
}

int vm_image_load_bgr(const char *path, uint8_t **bgr, int *w, int *h, char *err, size_t errlen) {
    vm_image im;
    if (!path || !bgr || !w || !h) return vm_errf(err, errlen, "vm_image_load_bgr: bad arguments");
    *bgr = NULL;
    *w = *h = 0;
    if (vm_cv_load(path, &im, err, errlen)) return -1;
    *bgr = im.rgb; /* B,G,R order despite the field's name */
    *w = im.w;
    *h = im.h;
    return 0;
}
