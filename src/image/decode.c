/* decode.c - pick the decoder from the file's magic bytes. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image.h"
#include "../core/util.h"

int vm_image_decode(const uint8_t *buf, size_t len, const char *what, vm_image *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (len >= 3 && buf[0] == 0xff && buf[1] == 0xd8 && buf[2] == 0xff) return vm_decode_jpeg(buf, len, what, out, err, errlen);
    if (len >= 8 && memcmp(buf, "\x89PNG\r\n\x1a\n", 8) == 0) return vm_decode_png(buf, len, what, out, err, errlen);
    if (len == 0) return vm_errf(err, errlen, "%s: empty file", what);
    return vm_errf(err, errlen, "%s: unsupported image format (only JPEG and PNG are read)", what);
}

/* Only regular files are read: a FIFO in a list of images would block
 * forever and /dev/zero would be read without end. The file is opened
 * non-blocking (opening a FIFO never waits for a writer) and checked with
 * fstat on the descriptor itself, so it cannot be swapped in between. */
int vm_image_load(const char *path, vm_image *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return vm_errf(err, errlen, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return vm_errf(err, errlen, "%s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return vm_errf(err, errlen, "%s: not a regular file (%s); only image files are read", path,
                       S_ISDIR(st.st_mode) ? "a directory" : S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISSOCK(st.st_mode) ? "a socket" : "a device");
    }
    if (st.st_size == 0) {
        close(fd);
        return vm_errf(err, errlen, "%s: empty file", path);
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return vm_errf(err, errlen, "%s: cannot map: %s", path, strerror(errno));
    int rc = vm_image_decode(p, (size_t)st.st_size, path, out, err, errlen);
    munmap(p, (size_t)st.st_size);
    return rc;
}

void vm_image_free(vm_image *im) {
    free(im->rgb);
    memset(im, 0, sizeof *im);
}
