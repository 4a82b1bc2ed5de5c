/* decode_jpeg.c - JPEG through libjpeg-turbo's TurboJPEG API.
 * TurboJPEG's defaults (islow DCT, fancy upsampling) are Pillow's, so
 * decoded pixels are identical with the same libjpeg-turbo. Colour:
 * YCbCr/RGB -> RGB; grayscale -> R=G=B; CMYK/YCCK -> as Pillow: the Adobe
 * file stores inverted CMYK, Pillow un-inverts it to C', then convert('RGB')
 * computes R = round((255-C')(255-K')/255), i.e. round(C*K/255) on the
 * stored values. A truncated or corrupt stream is an error, like Pillow's
 * default "image file is truncated". */
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "decode_libs.h"
#include "image.h"
#include "../core/util.h"

static uint8_t muldiv255(unsigned a, unsigned b) {
    unsigned t = a * b + 128;
    return (uint8_t)((t + (t >> 8)) >> 8);
}

int vm_decode_jpeg(const uint8_t *buf, size_t len, const char *what, vm_image *out, char *err, size_t errlen) {
    uint8_t *tmp;
    int w, h, pf;
    if (vm_jpeg_read(buf, len, what, TJPF_RGB, 1, &tmp, &w, &h, &pf, err, errlen)) return -1;
    out->w = w;
    out->h = h;
    if (pf == TJPF_RGB) {
        out->rgb = tmp;
        return 0;
    }
    out->rgb = malloc((size_t)w * h * 3);
    if (!out->rgb) {
        free(tmp);
        return vm_errf(err, errlen, "%s: out of memory (%zu bytes) for a %dx%d image", what, (size_t)w * h * 3, w, h);
    }
    size_t n = (size_t)w * h;
    for (size_t i = 0; i < n; i++) {
        uint8_t *o = out->rgb + 3 * i;
        if (pf == TJPF_GRAY) {
            o[0] = o[1] = o[2] = tmp[i];
        } else {
            const uint8_t *c = tmp + 4 * i;
            o[0] = muldiv255(c[0], c[3]);
            o[1] = muldiv255(c[1], c[3]);
            o[2] = muldiv255(c[2], c[3]);
        }
    }
    free(tmp);
    return 0;
}
