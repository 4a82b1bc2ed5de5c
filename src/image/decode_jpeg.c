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

#include "image.h"
#include "../core/util.h"

static uint8_t muldiv255(unsigned a, unsigned b) {
    unsigned t = a * b + 128;
    return (uint8_t)((t + (t >> 8)) >> 8);
}

int vm_decode_jpeg(const uint8_t *buf, size_t len, const char *what, vm_image *out, char *err, size_t errlen) {
    tjhandle tj = tjInitDecompress();
    if (!tj) return vm_errf(err, errlen, "%s: cannot initialise the JPEG decoder", what);
    int w, h, subsamp, cs, rc = -1;
    uint8_t *tmp = NULL;
    if (tjDecompressHeader3(tj, buf, (unsigned long)len, &w, &h, &subsamp, &cs) != 0) {
        vm_errf(err, errlen, "%s: corrupt JPEG: %s", what, tjGetErrorStr2(tj));
        goto done;
    }
    if (w < 1 || h < 1 || w > VM_IMAGE_MAX_SIDE || h > VM_IMAGE_MAX_SIDE || (uint64_t)w * h > VM_IMAGE_MAX_PIXELS) {
        vm_errf(err, errlen, "%s: JPEG dimensions %dx%d are out of range", what, w, h);
        goto done;
    }
    int cmyk = cs == TJCS_CMYK || cs == TJCS_YCCK, gray = cs == TJCS_GRAY;
    int pf = cmyk ? TJPF_CMYK : gray ? TJPF_GRAY : TJPF_RGB, ps = tjPixelSize[pf];
    tmp = malloc((size_t)w * h * ps);
    if (!tmp) { vm_errf(err, errlen, "%s: out of memory for a %dx%d image", what, w, h); goto done; }
    /* TJFLAG_STOPONWARNING: a truncated file is an error, not grey pixels. */
    if (tjDecompress2(tj, buf, (unsigned long)len, tmp, w, 0, h, pf, TJFLAG_STOPONWARNING) != 0) {
        vm_errf(err, errlen, "%s: corrupt or truncated JPEG: %s", what, tjGetErrorStr2(tj));
        goto done;
    }
    out->w = w;
    out->h = h;
    if (pf == TJPF_RGB) {
        out->rgb = tmp;
        tmp = NULL;
    } else {
        out->rgb = malloc((size_t)w * h * 3);
        if (!out->rgb) {
            vm_errf(err, errlen, "%s: out of memory (%zu bytes) for a %dx%d image", what, (size_t)w * h * 3, w, h);
            goto done;
        }
        size_t n = (size_t)w * h;
        for (size_t i = 0; i < n; i++) {
            uint8_t *o = out->rgb + 3 * i;
            if (gray) {
                o[0] = o[1] = o[2] = tmp[i];
            } else {
                const uint8_t *c = tmp + 4 * i;
                o[0] = muldiv255(c[0], c[3]);
                o[1] = muldiv255(c[1], c[3]);
                o[2] = muldiv255(c[2], c[3]);
            }
        }
    }
    rc = 0;
done:
    free(tmp);
    tjDestroy(tj);
    return rc;
}
