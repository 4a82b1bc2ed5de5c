/* zipread.c - see zipread.h. Format: PKWARE APPNOTE 6.3 (EOCD, central
 * directory, local headers, ZIP64 end record and extra field 0x0001). */
#include "zipread.h"
#include "../core/util.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define EOCD_SIG 0x06054b50u
#define EOCD64_SIG 0x06064b50u
#define EOCD64_LOC_SIG 0x07064b50u
#define CDIR_SIG 0x02014b50u
#define LOCAL_SIG 0x04034b50u

/* Pull 64-bit sizes from a ZIP64 extra field where the 32-bit ones are
 * saturated. Order of fields: usize, csize, local header offset. */
static void zip64_extra(const uint8_t *ex, size_t exlen, uint64_t *usize, uint64_t *csize, uint64_t *off) {
    size_t p = 0;
    while (p + 4 <= exlen) {
        uint16_t id = vm_rd16(ex + p), sz = vm_rd16(ex + p + 2);
        if (p + 4 + sz > exlen) return;
        if (id == 0x0001) {
            const uint8_t *q = ex + p + 4, *end = q + sz;
            if (*usize == 0xffffffffu && q + 8 <= end) { *usize = vm_rd64(q); q += 8; }
            if (*csize == 0xffffffffu && q + 8 <= end) { *csize = vm_rd64(q); q += 8; }
            if (*off == 0xffffffffu && q + 8 <= end) { *off = vm_rd64(q); }
            return;
        }
        p += 4 + (size_t)sz;
    }
}

int vm_zip_open(vm_zip *z, const uint8_t *buf, size_t len, const char *what, char *err, size_t errlen) {
    memset(z, 0, sizeof *z);
    if (len < 22) return vm_errf(err, errlen, "%s: not a checkpoint (too short to be a zip archive: %zu bytes)", what, len);
    if (vm_rd32(buf) != LOCAL_SIG) {
        if (len >= 2 && buf[0] == 0x80)
            return vm_errf(err, errlen, "%s: legacy (pre-1.6, non-zip) torch.save format is not supported; re-save it with a current PyTorch", what);
        return vm_errf(err, errlen, "%s: not a zip archive (torch.save checkpoints are zip files) nor a safetensors file", what);
    }
    /* The EOCD is in the last 22 + 65535 bytes. */
    size_t lo = len > 22 + 65535 ? len - 22 - 65535 : 0, eocd = SIZE_MAX;
    for (size_t p = len - 22 + 1; p-- > lo;) {
        if (vm_rd32(buf + p) == EOCD_SIG) { eocd = p; break; }
    }
    if (eocd == SIZE_MAX) return vm_errf(err, errlen, "%s: truncated or corrupt zip archive (no end-of-central-directory record)", what);
    uint64_t count = vm_rd16(buf + eocd + 10);
    uint64_t cd_size = vm_rd32(buf + eocd + 12), cd_off = vm_rd32(buf + eocd + 16);
    if ((count == 0xffff || cd_off == 0xffffffffu || cd_size == 0xffffffffu) && eocd >= 20 &&
        vm_rd32(buf + eocd - 20) == EOCD64_LOC_SIG) {
        uint64_t e64 = vm_rd64(buf + eocd - 20 + 8);
        if (e64 > len || len - e64 < 56 || vm_rd32(buf + e64) != EOCD64_SIG)
            return vm_errf(err, errlen, "%s: corrupt zip64 end record", what);
        count = vm_rd64(buf + e64 + 32);
        cd_size = vm_rd64(buf + e64 + 40);
        cd_off = vm_rd64(buf + e64 + 48);
    }
    if (cd_off > len || cd_size > len - cd_off)
        return vm_errf(err, errlen, "%s: truncated zip archive (central directory at %llu+%llu beyond file size %zu)", what,
                       (unsigned long long)cd_off, (unsigned long long)cd_size, len);
    /* Each central record is >= 46 bytes, which bounds the count. */
    if (count > cd_size / 46) return vm_errf(err, errlen, "%s: corrupt zip archive (entry count %llu too large)", what, (unsigned long long)count);
    z->entries = calloc(count ? count : 1, sizeof *z->entries);
    if (!z->entries)
        return vm_errf(err, errlen, "%s: out of memory (%llu bytes) for the zip directory", what,
                       (unsigned long long)(count * sizeof *z->entries));
    const uint8_t *p = buf + cd_off, *end = buf + cd_off + cd_size;
    for (uint64_t i = 0; i < count; i++) {
        if (end - p < 46 || vm_rd32(p) != CDIR_SIG) {
            vm_zip_close(z);
            return vm_errf(err, errlen, "%s: corrupt zip central directory (entry %llu)", what, (unsigned long long)i);
        }
        int method = vm_rd16(p + 10);
        uint64_t csize = vm_rd32(p + 20), usize = vm_rd32(p + 24);
        size_t nlen = vm_rd16(p + 28), xlen = vm_rd16(p + 30), clen = vm_rd16(p + 32);
        uint64_t loff = vm_rd32(p + 42);
        if ((size_t)(end - p) < 46 + nlen + xlen + clen) {
            vm_zip_close(z);
            return vm_errf(err, errlen, "%s: corrupt zip central directory (entry %llu overruns)", what, (unsigned long long)i);
        }
        zip64_extra(p + 46 + nlen, xlen, &usize, &csize, &loff);
        vm_zip_entry *e = &z->entries[z->n];
        e->name = malloc(nlen + 1);
        if (!e->name) {
            vm_zip_close(z);
            return vm_errf(err, errlen, "%s: out of memory (%zu bytes) for a zip entry name", what, nlen + 1);
        }
        memcpy(e->name, p + 46, nlen);
        e->name[nlen] = 0;
        e->method = method;
        e->crc = vm_rd32(p + 16);
        e->size = usize;
        z->n++;
        p += 46 + nlen + xlen + clen;
        /* Locate the data through the local header (its extra field may
         * differ from the central one: torch pads it for alignment). */
        if (loff > len || len - loff < 30 || vm_rd32(buf + loff) != LOCAL_SIG) {
            vm_errf(err, errlen, "%s: truncated or corrupt zip archive (local header of '%s')", what, e->name);
            vm_zip_close(z); /* after formatting: it frees e->name */
            return -1;
        }
        uint64_t doff = loff + 30 + vm_rd16(buf + loff + 26) + vm_rd16(buf + loff + 28);
        if (doff > len || csize > len - doff) {
            vm_errf(err, errlen, "%s: truncated file: entry '%s' needs %llu bytes at offset %llu, file has %zu", what,
                    e->name, (unsigned long long)csize, (unsigned long long)doff, len);
            vm_zip_close(z);
            return -1;
        }
        if (method == 0 && csize != usize) {
            vm_errf(err, errlen, "%s: corrupt zip archive (stored entry '%s' has mismatched sizes)", what, e->name);
            vm_zip_close(z);
            return -1;
        }
        e->data = buf + doff;
    }
    return 0;
}

void vm_zip_close(vm_zip *z) {
    for (size_t i = 0; i < z->n; i++) free(z->entries[i].name);
    free(z->entries);
    memset(z, 0, sizeof *z);
}

const vm_zip_entry *vm_zip_find(const vm_zip *z, const char *name) {
    for (size_t i = 0; i < z->n; i++)
        if (strcmp(z->entries[i].name, name) == 0) return &z->entries[i];
    return NULL;
}

int vm_zip_crc_ok(const vm_zip_entry *e) {
    /* zlib's crc32 takes a uInt length: feed large entries in pieces. */
    uLong crc = crc32(0L, Z_NULL, 0);
    const uint8_t *p = e->data;
    for (uint64_t left = e->size; left;) {
        uInt n = left > (1u << 30) ? (1u << 30) : (uInt)left;
        crc = crc32(crc, p, n);
        p += n;
        left -= n;
    }
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    (void)crc; /* fuzzers: computed, but mutated data may pass on to the parsers */
    return 1;
#else
    return (uint32_t)crc == e->crc;
#endif
}
