/* weights_ckpt.h - a vm_weights_src over a .pth checkpoint with every key
 * kept (full names such as "decode_head.conv_seg.weight").
 * TEMPORARY GLUE until the ctx branch's model keeps every checkpoint
 * tensor and provides its own vm_weights_src: then this file goes, and
 * src/post/segment.c takes the source from the model instead. */
#ifndef VM_NET_WEIGHTS_CKPT_H
#define VM_NET_WEIGHTS_CKPT_H

#include "head.h"

typedef struct vm_ckpt_src vm_ckpt_src;
/* Opens path (torch zip: the "state_dict" entry when present, else the
 * auto rule; .safetensors too). NULL with a message on error. */
vm_ckpt_src *vm_ckpt_src_open(const char *path, char *err, size_t errlen);
const vm_weights_src *vm_ckpt_src_get(vm_ckpt_src *s);
/* 1 if any key starts with prefix. */
int vm_ckpt_src_has_prefix(const vm_ckpt_src *s, const char *prefix);
void vm_ckpt_src_close(vm_ckpt_src *s);

#endif
