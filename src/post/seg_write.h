/* seg_write.h - picture and array outputs of the dense tasks, written
 * atomically (no partial file is ever left): indexed PNG with a palette,
 * RGB PNG, uint8 .npy. */
#ifndef VM_POST_SEG_WRITE_H
#define VM_POST_SEG_WRITE_H

#include <stddef.h>
#include <stdint.h>

/* vm_write_png_indexed, vm_write_png_rgb, vm_write_npy_u8 are public
 * (vmamba.h). */
#include "vmamba.h"

#endif
