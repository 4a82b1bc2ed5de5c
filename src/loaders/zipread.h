/* zipread.h - a minimal read-only ZIP reader for torch.save archives.
 *
 * Why our own and not libzip: torch.save writes every entry STORED
 * (uncompressed) and 64-byte aligned so tensors can be used in place; a
 * reader for stored entries is ~150 lines, works on the mmapped file with
 * zero copies, and every offset is bounds-checked here against the mapping.
 * Compressed entries (a re-zipped checkpoint) get a clear error. */
#ifndef VM_ZIPREAD_H
#define VM_ZIPREAD_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *name;           /* NUL-terminated copy                        */
    const uint8_t *data;  /* points into the mapping                    */
    uint64_t size;
    int method;           /* 0 = stored                                 */
    uint32_t crc;         /* CRC-32 of the data, from the central record */
} vm_zip_entry;

typedef struct {
    vm_zip_entry *entries;
    size_t n;
} vm_zip;

/* Parse the central directory of buf. `what` names the file in errors. */
int vm_zip_open(vm_zip *z, const uint8_t *buf, size_t len, const char *what,
                char *err, size_t errlen);
void vm_zip_close(vm_zip *z);

/* Does the entry's data match its CRC-32? (zlib's crc32, ~GB/s.) */
int vm_zip_crc_ok(const vm_zip_entry *e);
const vm_zip_entry *vm_zip_find(const vm_zip *z, const char *name);

#endif
