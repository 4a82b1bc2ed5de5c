#!/usr/bin/env python3
"""Full-size random UPerNet-on-VMamba-T checkpoint in the mmseg layout
(state_dict: backbone.* with outnorm0..3, decode_head.* UPerHead with
channels 512 and 150 classes), for INT8 vs FP32 timing of `vmamba segment`:
bench/make_seg_checkpoint.py OUT.pth. The backbone is make_checkpoint.py's
vmamba-tiny-s1l8 (same generator). Needs python3-torch;
the command line, backbone and saving are bench/mmlayout.py's."""
import torch

import mmlayout

out = mmlayout.out_path(__doc__)
sd = mmlayout.backbone()
g = torch.Generator().manual_seed(1)
dims, ch, ncls = mmlayout.DIMS, 512, 150
def cm(name, cout, cin, k):
    sd[f"decode_head.{name}.conv.weight"] = torch.randn(cout, cin, k, k, generator=g) / (cin * k * k) ** 0.5
    sd[f"decode_head.{name}.bn.weight"] = 1 + 0.1 * torch.randn(cout, generator=g)
    sd[f"decode_head.{name}.bn.bias"] = 0.1 * torch.randn(cout, generator=g)
    sd[f"decode_head.{name}.bn.running_mean"] = 0.1 * torch.randn(cout, generator=g)
    sd[f"decode_head.{name}.bn.running_var"] = 0.5 + torch.rand(cout, generator=g)
for i in range(4): cm(f"psp_modules.{i}.1", ch, dims[3], 1)
cm("bottleneck", ch, dims[3] + 4 * ch, 3)
for i in range(3): cm(f"lateral_convs.{i}", ch, dims[i], 1); cm(f"fpn_convs.{i}", ch, ch, 3)
cm("fpn_bottleneck", ch, 4 * ch, 3)
sd["decode_head.conv_seg.weight"] = torch.randn(ncls, ch, 1, 1, generator=g) / ch ** 0.5
sd["decode_head.conv_seg.bias"] = 0.01 * torch.randn(ncls, generator=g)
mmlayout.save(sd, out)
