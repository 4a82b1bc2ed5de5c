/* version.c - vm_version(): the library's version, to compare with the
 * header's VM_VERSION_* macros. */
#include "vmamba.h"

const char *vm_version(void) { return VM_VERSION_STRING; }
