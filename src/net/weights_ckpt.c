/* weights_ckpt.c - see weights_ckpt.h. Tensors are converted to
 * contiguous float32 on first use and kept until close. */
#include <stdlib.h>
#include <string.h>

#include "weights_ckpt.h"
#include "../loaders/checkpoint.h"
#include "../core/util.h"

struct vm_ckpt_src {
    vm_checkpoint ck;
    float **copies;          /* one per checkpoint tensor, lazily */
    vm_weights_src src;
    char err[512];
};

static int ck_get(void *user, const char *name, vm_tensor_view *out) {
    vm_ckpt_src *s = user;
    const vm_ckpt_tensor *t = vm_checkpoint_find(&s->ck, name);
    if (!t || t->ndim > 4) return -1;
    size_t i = (size_t)(t - s->ck.t);
    if (!s->copies[i]) {
        if (vm_ckpt_validate(&s->ck, t, s->err, sizeof s->err)) return -1;
        int64_t n = vm_ckpt_numel(t);
        float *d = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
        if (!d) return -1;
        if (vm_ckpt_read_f32(&s->ck, t, d, s->err, sizeof s->err)) { free(d); return -1; }
        s->copies[i] = d;
    }
    out->data = s->copies[i];
    out->ndim = t->ndim;
    for (int k = 0; k < 4; k++) out->shape[k] = k < t->ndim ? t->shape[k] : 1;
    return 0;
}

vm_ckpt_src *vm_ckpt_src_open(const char *path, char *err, size_t errlen) {
    vm_ckpt_src *s = vm_xcalloc(1, sizeof *s);
    /* mmseg/mmdet files hold "state_dict"; fall back to the auto rule. */
    if (vm_checkpoint_open_all(&s->ck, path, "state_dict", s->err, sizeof s->err) &&
        vm_checkpoint_open_all(&s->ck, path, NULL, err, errlen)) {
        free(s);
        return NULL;
    }
    s->copies = vm_xcalloc(s->ck.n ? s->ck.n : 1, sizeof *s->copies);
    s->src.user = s;
    s->src.get = ck_get;
    s->src.path = s->ck.path;
    return s;
}

const vm_weights_src *vm_ckpt_src_get(vm_ckpt_src *s) { return &s->src; }

int vm_ckpt_src_has_prefix(const vm_ckpt_src *s, const char *prefix) {
    size_t n = strlen(prefix);
    for (size_t i = 0; i < s->ck.n; i++)
        if (strncmp(s->ck.t[i].name, prefix, n) == 0) return 1;
    return 0;
}

void vm_ckpt_src_close(vm_ckpt_src *s) {
    if (!s) return;
    for (size_t i = 0; i < s->ck.n; i++) free(s->copies[i]);
    free(s->copies);
    vm_checkpoint_close(&s->ck);
    free(s);
}
