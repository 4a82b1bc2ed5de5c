/* version.c - what the library is: vm_version() (to compare with the
 * header's VM_VERSION_* macros), the kernels in use, oneDNN's version. */
#include "vmamba.h"
#include "core/dnnl_compat.h"
#include "simd/kernels.h"

const char *vm_version(void) { return VM_VERSION_STRING; }
const char *vm_isa(void) { return vm_kernels()->name; }
const char *vm_onednn_version(void) { return vm_dnnl_version(); }
