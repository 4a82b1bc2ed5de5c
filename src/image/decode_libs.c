/* decode_libs.c - see decode_libs.h. */
#include "decode_libs.h"

#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "image.h"
#include "../core/util.h"

int vm_jpeg_read(const uint8_t *buf, size_t len, const char *what, int rgb_pf, int gray_pf, uint8_t **pix, int *w,
                 int *h, int *pf, char *err, size_t errlen) {
    *pix = NULL;
    tjhandle tj = tjInitDecompress();
    if (!tj) return vm_errf(err, errlen, "%s: cannot initialise the JPEG decoder", what);
    int subsamp, cs, rc = -1;
    uint8_t *tmp = NULL;
    if (tjDecompressHeader3(tj, buf, (unsigned long)len, w, h, &subsamp, &cs) != 0) {
        vm_errf(err, errlen, "%s: corrupt JPEG: %s", what, tjGetErrorStr2(tj));
        goto done;
    }
    if (*w < 1 || *h < 1 || *w > VM_IMAGE_MAX_SIDE || *h > VM_IMAGE_MAX_SIDE || (uint64_t)*w * *h > VM_IMAGE_MAX_PIXELS) {
        vm_errf(err, errlen, "%s: JPEG dimensions %dx%d are out of range", what, *w, *h);
        goto done;
    }
    *pf = cs == TJCS_CMYK || cs == TJCS_YCCK ? TJPF_CMYK : cs == TJCS_GRAY && gray_pf ? TJPF_GRAY : rgb_pf;
    tmp = malloc((size_t)*w * *h * tjPixelSize[*pf]);
    if (!tmp) { vm_errf(err, errlen, "%s: out of memory for a %dx%d image", what, *w, *h); goto done; }
    /* TJFLAG_STOPONWARNING: a truncated file is an error, not grey pixels
     * (Pillow's default "image file is truncated"; OpenCV would fill grey). */
    if (tjDecompress2(tj, buf, (unsigned long)len, tmp, *w, 0, *h, *pf, TJFLAG_STOPONWARNING) != 0) {
        vm_errf(err, errlen, "%s: corrupt or truncated JPEG: %s", what, tjGetErrorStr2(tj));
        goto done;
    }
    *pix = tmp;
    tmp = NULL;
    rc = 0;
done:
    free(tmp);
    tjDestroy(tj);
    return rc;
}

typedef struct {
    const uint8_t *buf;
    size_t len, pos;
    char *err;
    size_t errlen;
    const char *what;
} png_src;

static void png_read_mem(png_structp png, png_bytep dst, size_t n) {
    png_src *s = png_get_io_ptr(png);
    if (n > s->len - s->pos) png_error(png, "truncated PNG data");
    memcpy(dst, s->buf + s->pos, n);
    s->pos += n;
}

static void png_on_error(png_structp png, png_const_charp msg) {
    png_src *s = png_get_error_ptr(png);
    if (strstr(msg, "memory")) vm_errf(s->err, s->errlen, "%s: cannot decode the PNG: %s", s->what, msg);
    else vm_errf(s->err, s->errlen, "%s: corrupt PNG: %s", s->what, msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

int vm_png_read(const uint8_t *buf, size_t len, const char *what, vm_png_setup_fn setup, void *user, int want_rgb8,
                uint8_t **pixp, size_t *rowbytesp, int *wp, int *hp, int *channels, char *err, size_t errlen) {
    *pixp = NULL;
    png_src src = {buf, len, 0, err, errlen, what};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_on_error, png_on_warning);
    if (!png) return vm_errf(err, errlen, "%s: cannot initialise the PNG decoder", what);
    png_infop info = png_create_info_struct(png);
    /* volatile: they change between setjmp and a longjmp back */
    uint8_t *volatile pix = NULL;
    png_bytep *volatile rows = NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        /* png_destroy_read_struct sets info to NULL: decide first whether
         * png_on_error already wrote libpng's reason into err. */
        const int no_info = !info;
        free(pix);
        free(rows);
        png_destroy_read_struct(&png, info ? &info : NULL, NULL);
        if (no_info) vm_errf(err, errlen, "%s: cannot initialise the PNG decoder", what);
        return -1;
    }
    png_set_user_limits(png, VM_IMAGE_MAX_SIDE, VM_IMAGE_MAX_SIDE);
    png_set_chunk_malloc_max(png, 64u << 20);
    png_set_read_fn(png, &src, png_read_mem);
    png_read_info(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    if ((uint64_t)w * h > VM_IMAGE_MAX_PIXELS) png_error(png, "image dimensions too large");
    setup(png, info, user);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (want_rgb8 && (png_get_channels(png, info) != 3 || png_get_bit_depth(png, info) != 8 || rowbytes != (size_t)w * 3))
        png_error(png, "unexpected pixel layout after conversion");
    pix = malloc(rowbytes * h);
    rows = malloc(sizeof(png_bytep) * h);
    if (!pix || !rows) png_error(png, "out of memory for the decoded rows");
    for (png_uint_32 y = 0; y < h; y++) rows[y] = pix + y * rowbytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    *pixp = pix;
    *rowbytesp = rowbytes;
    *wp = (int)w;
    *hp = (int)h;
    *channels = png_get_channels(png, info);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    return 0;
}
