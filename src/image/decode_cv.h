/* decode_cv.h - decode JPEG/PNG to 8-bit BGR exactly as OpenCV 4.6's
 * cv2.imdecode(buf, IMREAD_COLOR) does (the mmcv / mmseg / mmdet test
 * pipelines' LoadImageFromFile). Differs from the Pillow-exact decode in
 * image.h (classification): the JPEG's EXIF orientation is applied,
 * Adobe CMYK is converted with OpenCV's integer formula, 16-bit PNG
 * samples keep their high byte (also for gray), alpha is dropped. */
#ifndef VM_DECODE_CV_H
#define VM_DECODE_CV_H

#include <stddef.h>
#include <stdint.h>

#include "image.h"

/* out->rgb holds the pixels in B,G,R order (h * w * 3). */
int vm_cv_decode(const uint8_t *buf, size_t len, const char *what, vm_image *out, char *err, size_t errlen);
int vm_cv_load(const char *path, vm_image *out, char *err, size_t errlen);

/* EXIF orientation (1..8) of a JPEG's APP1 Exif IFD0, or 1 when absent
 * or unreadable (as OpenCV's ExifReader). */
int vm_jpeg_exif_orientation(const uint8_t *buf, size_t len);
/* Apply orientation o (OpenCV's ApplyExifOrientation) to a 3-channel
 * image in place (pixels reallocated; w/h swapped for 5..8). */
void vm_image_orient(vm_image *im, int o);

#endif
