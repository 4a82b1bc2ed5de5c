/* failshim.c - LD_PRELOAD shim for tests/cli_test.sh: makes library calls
 * fail or stall on request, to test paths a healthy system never takes.
 *   VMAMBA_SHIM_PTHREAD_FAIL=1  pthread_create returns EAGAIN for threads
 *                               the program itself starts (not those of
 *                               shared libraries such as libgomp)
 *   VMAMBA_SHIM_RENAME_STALL=1  rename() waits for a signal first, so the
 *                               test can kill a writer holding a temp file */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg) {
    Dl_info di;
    if (getenv("VMAMBA_SHIM_PTHREAD_FAIL") && dladdr((void *)fn, &di) && di.dli_fname && !strstr(di.dli_fname, ".so"))
        return EAGAIN;
    int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *) =
        (int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *))dlsym(RTLD_NEXT, "pthread_create");
    return real(t, a, fn, arg);
}

int rename(const char *from, const char *to) {
    if (getenv("VMAMBA_SHIM_RENAME_STALL")) {
        /* tell the test the temp file is complete, then wait to be killed */
        fprintf(stderr, "shim: rename stalled\n");
        for (;;) pause();
    }
    int (*real)(const char *, const char *) = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
    return real(from, to);
}
