/* decode.c - pick the decoder from the file's magic bytes. */
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "../core/util.h"

int vm_image_decode(const uint8_t *buf, size_t len, const char *what, vm_image *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (len >= 3 && buf[0] == 0xff && buf[1] == 0xd8 && buf[2] == 0xff) return vm_decode_jpeg(buf, len, what, out, err, errlen);
    if (len >= 8 && memcmp(buf, "\x89PNG\r\n\x1a\n", 8) == 0) return vm_decode_png(buf, len, what, out, err, errlen);
    if (len == 0) return vm_errf(err, errlen, "%s: empty file", what);
    return vm_errf(err, errlen, "%s: unsupported image format (only JPEG and PNG are read)", what);
}

int vm_image_load(const char *path, vm_image *out, char *err, size_t errlen) {
    vm_file_map m;
    memset(out, 0, sizeof *out);
    if (vm_map_file(path, &m, err, errlen)) return -1;
    int rc = vm_image_decode(m.data, m.size, path, out, err, errlen);
    vm_unmap_file(&m);
    return rc;
}

void vm_image_free(vm_image *im) {
    free(im->rgb);
    memset(im, 0, sizeof *im);
}
