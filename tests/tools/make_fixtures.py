#!/usr/bin/env python3
"""Make the loader test fixtures in tests/data/loader/ from the golden
v2_s1 and v0_ds4 checkpoints (test-data tool; needs python3-torch, never
used at run time).  Re-run: /usr/bin/python3 tests/tools/make_fixtures.py

Each fixture tests one loader feature or error path; tests/test_loader.c
says what it expects of each."""
import io, os, sys, types, zipfile
import numpy as np
import torch

here = os.path.dirname(os.path.abspath(__file__))
data = os.path.join(here, "..", "data")
out = os.path.join(data, "loader")
os.makedirs(out, exist_ok=True)

# The golden checkpoints pickle a yacs CfgNode; a stand-in class lets torch.load read them.
yacs = types.ModuleType("yacs"); cfg = types.ModuleType("yacs.config")
class CfgNode(dict): pass
cfg.CfgNode = CfgNode; yacs.config = cfg
sys.modules["yacs"] = yacs; sys.modules["yacs.config"] = cfg

def load(name):
    return torch.load(os.path.join(data, name, "model.pth"), map_location="cpu")["model"]

def save(obj, fname):
    torch.save(obj, os.path.join(out, fname))

sd = load("v2_s1")

# 1. bare state dict; 2. weights under model_ema (model holds zeros)
save(sd, "bare.pth")
save({"model": {k: torch.zeros_like(v) for k, v in sd.items()}, "model_ema": sd, "epoch": 3}, "ema.pth")

# 3./4. half and bfloat16 storages, with a float32 twin of the same rounded values
for dt, tag in ((torch.float16, "f16"), (torch.bfloat16, "bf16")):
    low = {k: v.to(dt) for k, v in sd.items()}
    save({"model": low}, f"{tag}.pth")
    save({"model": {k: v.float() for k, v in low.items()}}, f"{tag}_as_f32.pth")

# 5. non-contiguous strides and storage offsets: same values as v2_s1
odd = dict(sd)
w = sd["layers.0.blocks.0.op.in_proj.weight"]
odd["layers.0.blocks.0.op.in_proj.weight"] = w.t().contiguous().t()          # column-major strides
big = torch.cat([torch.full((7,), 9.0), sd["classifier.head.bias"]])
odd["classifier.head.bias"] = big[7:]                                         # storage offset 7
save({"model": odd}, "strided.pth")

# 6. missing key; 7. wrong shape; 8. NaN weight (loads, with a warning)
miss = dict(sd); del miss["layers.2.blocks.1.op.Ds"]; save({"model": miss}, "missing_key.pth")
bad = dict(sd); bad["layers.1.blocks.0.mlp.fc2.weight"] = torch.zeros(32, 100); save({"model": bad}, "wrong_shape.pth")
nan = dict(sd); t = sd["layers.3.blocks.0.mlp.fc1.bias"].clone(); t[0] = float("nan"); nan["layers.3.blocks.0.mlp.fc1.bias"] = t
save({"model": nan}, "nan.pth")

# 9. mmseg-style: state_dict with backbone. prefix plus a decode head
save({"meta": {}, "state_dict": {**{"backbone." + k: v for k, v in sd.items()}, "decode_head.conv_seg.weight": torch.zeros(3, 64, 1, 1)}}, "mmseg_classifier.pth")

# 10. legacy (January 2024) key names for the v0 model
v0 = load("v0_ds4")
def legacy(k):
    k = k.replace("patch_embed.0.", "patch_embed.proj.").replace("patch_embed.2.", "patch_embed.norm.")
    k = k.replace(".norm.", ".ln_1.") if ".blocks." in k and ".op." not in k else k
    k = k.replace(".op.", ".self_attention.")
    k = k.replace("classifier.norm.", "norm.").replace("classifier.head.", "head.")
    return k
save({"model": {legacy(k): v for k, v in v0.items()}}, "legacy_v0.pth")

# 11. storage shorter than its tensor: rewrite one data entry truncated
src = os.path.join(out, "bare.pth")
with zipfile.ZipFile(src) as zin, zipfile.ZipFile(os.path.join(out, "short_storage.pth"), "w", zipfile.ZIP_STORED) as zout:
    for info in zin.infolist():
        b = zin.read(info.filename)
        if info.filename.endswith("/data/0"):
            b = b[:4]
        zout.writestr(info.filename, b)

# 12. a re-zipped (deflated) checkpoint
with zipfile.ZipFile(src) as zin, zipfile.ZipFile(os.path.join(out, "deflated.pth"), "w", zipfile.ZIP_DEFLATED) as zout:
    for info in zin.infolist():
        zout.writestr(info.filename, zin.read(info.filename))
print("fixtures written to", out)
