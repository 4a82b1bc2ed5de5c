/* decode_libs.h - the libjpeg-turbo and libpng set-up shared by the
 * Pillow-exact decoders (decode_jpeg.c, decode_png.c) and the OpenCV-exact
 * one (decode_cv.c): bounded dimensions, a truncated or corrupt stream is
 * an error naming `what`, libpng's own message is kept. Each decoder then
 * converts the pixels its way. */
#ifndef VM_DECODE_LIBS_H
#define VM_DECODE_LIBS_H

#include <png.h>
#include <stddef.h>
#include <stdint.h>

/* A JPEG decoded by TurboJPEG (islow DCT, fancy upsampling: Pillow's and
 * OpenCV's settings) into *pix (malloc'd, w x h pixels of
 * tjPixelSize[*pf] bytes): CMYK/YCCK files as TJPF_CMYK (stored values),
 * grayscale as TJPF_GRAY when gray_pf, every other file as rgb_pf
 * (TJPF_RGB or TJPF_BGR). 0, or -1 with err set. */
int vm_jpeg_read(const uint8_t *buf, size_t len, const char *what, int rgb_pf, int gray_pf, uint8_t **pix, int *w,
                 int *h, int *pf, char *err, size_t errlen);

/* Sets a decoder's libpng transforms after png_read_info (its user
 * pointer is vm_png_read's). */
typedef void (*vm_png_setup_fn)(png_structp png, png_infop info, void *user);

/* A PNG decoded by libpng with setup's transforms (interlacing handled
 * here) into *pix (malloc'd, h rows of *rowbytes, *channels per pixel);
 * with want_rgb8 anything but 8-bit 3-channel rows is an error. 0, or -1
 * with err set ("corrupt PNG: <libpng's reason>"). */
int vm_png_read(const uint8_t *buf, size_t len, const char *what, vm_png_setup_fn setup, void *user, int want_rgb8,
                uint8_t **pix, size_t *rowbytes, int *w, int *h, int *channels, char *err, size_t errlen);

#endif
