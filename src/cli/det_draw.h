/* det_draw.h - detections drawn on a photo (mask tints, boxes, labels with
 * a built-in 5x7 bitmap font), for `vmamba detect -o` (written with
 * vm_write_png_rgb). */
#ifndef VM_CLI_DET_DRAW_H
#define VM_CLI_DET_DRAW_H

#include <stdint.h>

#include "vmamba.h"

/* Draw r on rgb (r->height x r->width x 3, modified in place); names(label)
 * gives the class name. */
void det_draw(uint8_t *rgb, const vm_detections *r, const vm_detector *d);

#endif
