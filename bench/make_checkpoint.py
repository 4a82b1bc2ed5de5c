#!/usr/bin/env python3
"""Write a full-size random-weight checkpoint in the official layout (keys
and shapes of the released VSSM classifiers), to measure loading time and
peak memory on real-sized files: bench/make_checkpoint.py PRESET OUT.pth.
Presets: vmamba-{tiny-s1l8,small-s1l20,base-s1l20,tiny-s2l5,small-s2l15,
base-s2l15}, vanilla-vmamba-{tiny,small,base}. Needs python3-torch."""
import math, sys
import torch

P = {"vanilla-vmamba-tiny": ("v0", 96, [2, 2, 9, 2], 2.0), "vanilla-vmamba-small": ("v0", 96, [2, 2, 27, 2], 2.0),
     "vanilla-vmamba-base": ("v0", 128, [2, 2, 27, 2], 2.0), "vmamba-tiny-s2l5": ("v2", 96, [2, 2, 5, 2], 2.0),
     "vmamba-small-s2l15": ("v2", 96, [2, 2, 15, 2], 2.0), "vmamba-base-s2l15": ("v2", 128, [2, 2, 15, 2], 2.0),
     "vmamba-tiny-s1l8": ("v2", 96, [2, 2, 8, 2], 1.0), "vmamba-small-s1l20": ("v2", 96, [2, 2, 20, 2], 1.0),
     "vmamba-base-s1l20": ("v2", 128, [2, 2, 20, 2], 1.0)}
fam, C, depths, ratio = P[sys.argv[1]]
v0 = fam == "v0"
N = 16 if v0 else 1
g = torch.Generator().manual_seed(0)
sd = {}
def t(name, *shape, fill=None):
    sd[name] = torch.full(shape, fill) if fill is not None else torch.randn(*shape, generator=g) * 0.02
dims = [C << i for i in range(4)]
if v0:
    t("patch_embed.0.weight", C, 3, 4, 4); t("patch_embed.0.bias", C)
    t("patch_embed.2.weight", C, fill=1.0); t("patch_embed.2.bias", C, fill=0.0)
else:
    t("patch_embed.0.weight", C // 2, 3, 3, 3); t("patch_embed.0.bias", C // 2)
    t("patch_embed.2.weight", C // 2, fill=1.0); t("patch_embed.2.bias", C // 2, fill=0.0)
    t("patch_embed.5.weight", C, C // 2, 3, 3); t("patch_embed.5.bias", C)
    t("patch_embed.7.weight", C, fill=1.0); t("patch_embed.7.bias", C, fill=0.0)
for s, (c, d) in enumerate(zip(dims, depths)):
    D, R = int(ratio * c), math.ceil(c / 16)
    for j in range(d):
        p = f"layers.{s}.blocks.{j}."
        t(p + "norm.weight", c, fill=1.0); t(p + "norm.bias", c, fill=0.0)
        t(p + "op.in_proj.weight", D * (2 if v0 else 1), c)
        t(p + "op.conv2d.weight", D, 1, 3, 3)
        if v0: t(p + "op.conv2d.bias", D)
        t(p + "op.x_proj_weight", 4, R + 2 * N, D); t(p + "op.dt_projs_weight", 4, D, R)
        t(p + "op.dt_projs_bias", 4, D, fill=-4.0)
        sd[p + "op.A_logs"] = torch.log(torch.arange(1, N + 1, dtype=torch.float32)).repeat(4 * D, 1)
        t(p + "op.Ds", 4 * D, fill=1.0)
        t(p + "op.out_norm.weight", D, fill=1.0); t(p + "op.out_norm.bias", D, fill=0.0)
        t(p + "op.out_proj.weight", c, D)
        if not v0:
            t(p + "norm2.weight", c, fill=1.0); t(p + "norm2.bias", c, fill=0.0)
            t(p + "mlp.fc1.weight", 4 * c, c); t(p + "mlp.fc1.bias", 4 * c)
            t(p + "mlp.fc2.weight", c, 4 * c); t(p + "mlp.fc2.bias", c)
    if s < 3:
        if v0:
            t(f"layers.{s}.downsample.reduction.weight", dims[s + 1], 4 * c)
            t(f"layers.{s}.downsample.norm.weight", 4 * c, fill=1.0); t(f"layers.{s}.downsample.norm.bias", 4 * c, fill=0.0)
        else:
            t(f"layers.{s}.downsample.1.weight", dims[s + 1], c, 3, 3); t(f"layers.{s}.downsample.1.bias", dims[s + 1])
            t(f"layers.{s}.downsample.3.weight", dims[s + 1], fill=1.0); t(f"layers.{s}.downsample.3.bias", dims[s + 1], fill=0.0)
t("classifier.norm.weight", dims[3], fill=1.0); t("classifier.norm.bias", dims[3], fill=0.0)
t("classifier.head.weight", 1000, dims[3]); t("classifier.head.bias", 1000)
torch.save({"model": sd, "epoch": 0}, sys.argv[2])
print(sys.argv[2], sum(v.numel() for v in sd.values()), "params")
