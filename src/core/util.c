/* util.c - checked allocation, error strings, file mapping, atomic writes. */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static void oom(size_t n, const char *file, int line) {
    fprintf(stderr, "vmamba: out of memory allocating %zu bytes at %s:%d\n", n, file, line);
    abort();
}

void *vm_xmalloc_impl(size_t n, const char *file, int line) {
    void *p = malloc(n ? n : 1);
    if (!p) oom(n, file, line);
    return p;
}

void *vm_xcalloc_impl(size_t n, size_t sz, const char *file, int line) {
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (!p) oom(n * sz, file, line);
    return p;
}

void *vm_xrealloc_impl(void *p, size_t n, const char *file, int line) {
    void *q = realloc(p, n ? n : 1);
    if (!q) oom(n, file, line);
    return q;
}

char *vm_xstrdup_impl(const char *s, const char *file, int line) {
    size_t n = strlen(s) + 1;
    char *p = vm_xmalloc_impl(n, file, line);
    memcpy(p, s, n);
    return p;
}

void *vm_aligned_alloc_impl(size_t n, const char *file, int line) {
    void *p = NULL;
    size_t r = (n + 63) & ~(size_t)63;
    if (r < n || posix_memalign(&p, 64, r ? r : 64) != 0) oom(n, file, line);
    memset(p, 0, r ? r : 64);
    return p;
}

void *vm_aligned_alloc_try(size_t n) {
    void *p = NULL;
    size_t r = (n + 63) & ~(size_t)63;
    if (r < n || posix_memalign(&p, 64, r ? r : 64) != 0) return NULL;
    memset(p, 0, r ? r : 64);
    return p;
}

int vm_errf(char *buf, size_t len, const char *fmt, ...) {
    if (buf && len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, len, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int vm_mul_ok(size_t a, size_t b, size_t *out) {
    if (a && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}

int vm_map_file(const char *path, vm_file_map *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return vm_errf(err, errlen, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return vm_errf(err, errlen, "%s: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return vm_errf(err, errlen, "%s: is a directory, not a file", path);
    }
    if (S_ISREG(st.st_mode)) {
        if (st.st_size == 0) {
            close(fd);
            out->data = (const uint8_t *)"";
            return 0;
        }
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        close(fd);
        if (p == MAP_FAILED) return vm_errf(err, errlen, "%s: cannot map: %s", path, strerror(errno));
        out->data = p;
        out->size = (size_t)st.st_size;
        out->mapped = 1;
        return 0;
    }
    /* A pipe or device: read it all. */
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (buf && n == cap) {
            uint8_t *nb = cap <= SIZE_MAX / 2 ? realloc(buf, cap * 2) : NULL;
            if (!nb) free(buf);
            buf = nb;
            cap *= 2;
        }
        if (!buf) {
            close(fd);
            return vm_errf(err, errlen, "%s: out of memory (%zu bytes) reading it", path, cap);
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0) {
            int e = errno;
            free(buf);
            close(fd);
            return vm_errf(err, errlen, "%s: read error: %s", path, strerror(e));
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    out->data = buf;
    out->size = n;
    return 0;
}

void vm_unmap_file(vm_file_map *f) {
    if (!f || !f->data) return;
    if (f->mapped)
        munmap((void *)f->data, f->size);
    else if (f->size)
        free((void *)f->data);
    memset(f, 0, sizeof *f);
}

struct vm_atomic_file {
    FILE *fp;
    char *path;
    char *tmp;
    int failed, err; /* err: errno of the failed write */
    int slot; /* in tmp_used, or -1 */
};

/* Temporary files of writes in progress, removed when SIGINT, SIGTERM or
 * SIGHUP ends the process (a killed convert must not leave a 67 MB
 * *.tmp.XXXXXX). The handler only reads these static buffers and calls
 * unlink and raise, which are async-signal-safe. It is installed only for
 * signals whose action is the default: an application's own handler (or an
 * ignored SIGINT in a background job) is left alone. SIGKILL cannot be
 * caught: such leftovers are named PATH.tmp.XXXXXX next to PATH. */
#define VM_ATOMIC_SLOTS 16
static char tmp_paths[VM_ATOMIC_SLOTS][4096];
static volatile sig_atomic_t tmp_used[VM_ATOMIC_SLOTS];
static pthread_mutex_t tmp_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t tmp_once = PTHREAD_ONCE_INIT;
static const int tmp_signals[] = {SIGINT, SIGTERM, SIGHUP};

static void tmp_on_signal(int sig) {
    int e = errno;
    for (int i = 0; i < VM_ATOMIC_SLOTS; i++)
        if (tmp_used[i]) unlink(tmp_paths[i]);
    errno = e;
    raise(sig); /* SA_RESETHAND: delivered with the default action on return */
}

static void tmp_install(void) {
    for (size_t k = 0; k < sizeof tmp_signals / sizeof *tmp_signals; k++) {
        struct sigaction old, sa;
        if (sigaction(tmp_signals[k], NULL, &old) != 0) continue;
        if ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL) continue;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = tmp_on_signal;
        sa.sa_flags = SA_RESETHAND;
        sigemptyset(&sa.sa_mask);
        sigaction(tmp_signals[k], &sa, NULL);
    }
}

static int tmp_register(const char *tmp) {
    if (strlen(tmp) >= sizeof tmp_paths[0]) return -1;
    pthread_once(&tmp_once, tmp_install);
    int slot = -1;
    pthread_mutex_lock(&tmp_lock);
    for (int i = 0; i < VM_ATOMIC_SLOTS && slot < 0; i++)
        if (!tmp_used[i]) {
            strcpy(tmp_paths[i], tmp);
            __atomic_signal_fence(__ATOMIC_SEQ_CST); /* the path is complete before the handler may read it */
            tmp_used[i] = 1;
            slot = i;
        }
    pthread_mutex_unlock(&tmp_lock);
    return slot;
}

static void tmp_unregister(int slot) {
    if (slot < 0) return;
    pthread_mutex_lock(&tmp_lock);
    tmp_used[slot] = 0;
    pthread_mutex_unlock(&tmp_lock);
}

vm_atomic_file *vm_atomic_open(const char *path, char *err, size_t errlen) {
    size_t n = strlen(path);
    vm_atomic_file *f = calloc(1, sizeof *f);
    char *tmp = malloc(n + 16), *dup = strdup(path);
    if (!f || !tmp || !dup) {
        free(f);
        free(tmp);
        free(dup);
        vm_errf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    snprintf(tmp, n + 16, "%s.tmp.XXXXXX", path);
    /* block the cleanup signals while the file exists but is not yet
     * registered, so a kill in between cannot leave it behind */
    sigset_t block, old;
    sigemptyset(&block);
    for (size_t k = 0; k < sizeof tmp_signals / sizeof *tmp_signals; k++) sigaddset(&block, tmp_signals[k]);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int fd = mkstemp(tmp);
    if (fd >= 0) f->slot = tmp_register(tmp);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (fd < 0) {
        vm_errf(err, errlen, "%s: cannot create: %s", path, strerror(errno));
        free(f);
        free(tmp);
        free(dup);
        return NULL;
    }
    fchmod(fd, 0644);
    f->fp = fdopen(fd, "wb");
    f->path = dup;
    f->tmp = tmp;
    if (!f->fp) {
        vm_errf(err, errlen, "%s: %s", path, strerror(errno));
        close(fd);
        unlink(tmp);
        tmp_unregister(f->slot);
        free(f->path);
        free(f->tmp);
        free(f);
        return NULL;
    }
    return f;
}

int vm_atomic_write(vm_atomic_file *f, const void *p, size_t n) {
    if (f->failed) return -1;
    if (n && fwrite(p, 1, n, f->fp) != n) f->failed = 1, f->err = errno;
    return f->failed ? -1 : 0;
}

static void atomic_free(vm_atomic_file *f) {
    tmp_unregister(f->slot);
    free(f->path);
    free(f->tmp);
    free(f);
}

/* The directory entry of a rename is durable once the directory is synced. */
static void sync_dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else if ((size_t)(slash - path) < sizeof dir) snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    else return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    fsync(fd); /* best effort: some file systems refuse (EINVAL) */
    close(fd);
}

int vm_atomic_commit(vm_atomic_file *f, char *err, size_t errlen) {
    int bad = f->failed, e = f->err;
    if (!bad && fflush(f->fp) != 0) bad = 1, e = errno;
    /* the data reaches the disk before the name does: a crash leaves the
     * old file or the new one, never a new name on missing data */
    if (!bad && fsync(fileno(f->fp)) != 0 && errno != EINVAL && errno != EROFS) bad = 1, e = errno;
    if (fclose(f->fp) != 0 && !bad) bad = 1, e = errno;
    int rc = 0;
    if (bad) {
        rc = vm_errf(err, errlen, "%s: write failed: %s", f->path, strerror(e ? e : EIO));
        unlink(f->tmp);
    } else if (rename(f->tmp, f->path) != 0) {
        rc = vm_errf(err, errlen, "%s: cannot rename into place: %s", f->path, strerror(errno));
        unlink(f->tmp);
    } else {
        sync_dir_of(f->path);
    }
    atomic_free(f);
    return rc;
}

void vm_atomic_abort(vm_atomic_file *f) {
    if (!f) return;
    fclose(f->fp);
    unlink(f->tmp);
    atomic_free(f);
}

float vm_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) {
                man <<= 1;
                exp--;
            }
            man &= 0x3ff;
            bits = sign | (exp << 23) | (man << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp - 15 + 127) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float vm_bf16_to_float(uint16_t b) {
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}
