/* fuzz_file.h - the fuzzer's bytes as a file path for the loaders, which
 * take paths (vm_map_file maps them). An in-memory file (memfd_create):
 * a file on disk cost the harnesses half their time in the kernel (ext4
 * flushes a file truncated to zero when it is closed, every execution).
 * Each harness includes this once and keeps its own file. */
#ifndef FUZZ_FILE_H
#define FUZZ_FILE_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Path of a file holding head (nhead bytes, may be 0) then data; aborts
 * (a harness failure, not a finding) if the file cannot be written. */
static const char *fuzz_file(const uint8_t *head, size_t nhead, const uint8_t *data, size_t size) {
    static char path[64];
    static int fd = -1;
    if (fd < 0) {
        fd = (int)syscall(SYS_memfd_create, "fuzz_input", 0); /* no _GNU_SOURCE needed */
        if (fd < 0) abort();
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0) abort();
    if (nhead && pwrite(fd, head, nhead, 0) != (ssize_t)nhead) abort();
    if (size && pwrite(fd, data, size, (off_t)nhead) != (ssize_t)size) abort();
    return path;
}
#endif
