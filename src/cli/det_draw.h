/* det_draw.h - detections drawn on a photo (mask tints, boxes, labels with
 * a built-in 5x7 bitmap font) and written as PNG, for `vmamba detect -o`. */
#ifndef VM_CLI_DET_DRAW_H
#define VM_CLI_DET_DRAW_H

#include <stdint.h>

#include "vmamba.h"

/* Draw r on rgb (r->height x r->width x 3, modified in place); names(label)
 * gives the class name. */
void det_draw(uint8_t *rgb, const vm_detections *r, const vm_detector *d);
/* Write rgb (h x w x 3) as an 8-bit RGB PNG, atomically. */
int det_write_png(const char *path, const uint8_t *rgb, int w, int h, char *err, size_t errlen);

#endif
