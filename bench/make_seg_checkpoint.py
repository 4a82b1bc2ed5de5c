#!/usr/bin/env python3
"""Full-size random UPerNet-on-VMamba-T checkpoint in the mmseg layout
(state_dict: backbone.* with outnorm0..3, decode_head.* UPerHead with
channels 512 and 150 classes), for INT8 vs FP32 timing of `vmamba segment`:
bench/make_seg_checkpoint.py OUT.pth. The backbone is make_checkpoint.py's
vmamba-tiny-s1l8 (same generator). Needs python3-torch."""
import runpy, sys, tempfile, os
import torch

tmp = tempfile.NamedTemporaryFile(suffix=".pth", delete=False).name
sys.argv = [sys.argv[0], "vmamba-tiny-s1l8", tmp] + [sys.argv[1]]
runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "make_checkpoint.py"), run_name="__main__")
out = sys.argv[3]
sd = {"backbone." + k: v for k, v in torch.load(tmp)["model"].items() if not k.startswith("classifier.")}
os.unlink(tmp)
g = torch.Generator().manual_seed(1)
dims, ch, ncls = [96, 192, 384, 768], 512, 150
for i, c in enumerate(dims):
    sd[f"backbone.outnorm{i}.weight"] = torch.ones(c); sd[f"backbone.outnorm{i}.bias"] = torch.zeros(c)
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
torch.save({"state_dict": sd, "meta": {}}, out)
print(out, sum(v.numel() for v in sd.values()), "params")
