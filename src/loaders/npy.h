/* npy.h - read and write NumPy .npy files (float32, C order only). */
#ifndef VM_NPY_H
#define VM_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "vmamba.h" /* vm_npy, vm_npy_read, vm_npy_write, vm_npy_free are public */

/* Also accepts uint8 arrays, widened to float (tests of decoded pixels). */
int vm_npy_read_u8_or_f32(const char *path, vm_npy *out, char *err, size_t errlen);
/* Parse from memory (used by the reader and by tests/fuzzers). */
int vm_npy_parse(const uint8_t *buf, size_t len, const char *what, vm_npy *out, char *err, size_t errlen);
/* Also int64 ('<i8', e.g. labels), converted to float (exact below 2^24). */
int vm_npy_read_any(const char *path, vm_npy *out, char *err, size_t errlen);
/* vm_npy_write_typed (any dtype, descr "<i8", "|u1", "<f4") is public. */

#endif
