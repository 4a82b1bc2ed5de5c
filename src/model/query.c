/* query.c - public questions about a loaded model that vm_info (a struct
 * whose size is fixed by the ABI) does not answer. */
#include "vmamba.h"
#include "model/model.h"

double vm_model_gmacs(const vm_model *m, int H, int W) { return m && H > 0 && W > 0 ? vm_arch_gmacs(m, H, W) : 0; }
int vm_model_is_int8(const vm_model *m) { return m && m->quantized; }
const char *vm_model_gemm(const vm_model *m) { return m && m->xnn ? "xnnpack" : "onednn"; }
