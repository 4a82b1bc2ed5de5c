"""mmlayout.py - what bench/make_seg_checkpoint.py and make_det_checkpoint.py
share: the command line (one argument, OUT.pth), the random VMamba backbone
of make_checkpoint.py in the mmseg/mmdet layout (backbone.* without the
classifier, with outnorm0..3) and the saving ({"state_dict", "meta"})."""
import os
import runpy
import sys
import tempfile

import torch

DIMS = [96, 192, 384, 768]  # vmamba-tiny-s1l8


def out_path(doc):
    """OUT.pth from the command line, or the usage and exit 2."""
    if len(sys.argv) != 2 or sys.argv[1].startswith("-"):
        sys.stderr.write(f"usage: {os.path.basename(sys.argv[0])} OUT.pth\n\n{doc}\n")
        sys.exit(2)
    return sys.argv[1]


def backbone(preset="vmamba-tiny-s1l8"):
    """make_checkpoint.py PRESET's weights as backbone.*, plus outnorm0..3."""
    tmp = tempfile.NamedTemporaryFile(suffix=".pth", delete=False).name
    argv = sys.argv
    sys.argv = [argv[0], preset, tmp]
    try:
        runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "make_checkpoint.py"), run_name="__main__")
        sd = {"backbone." + k: v for k, v in torch.load(tmp)["model"].items() if not k.startswith("classifier.")}
    finally:
        sys.argv = argv
        os.unlink(tmp)
    for i, c in enumerate(DIMS):
        sd[f"backbone.outnorm{i}.weight"] = torch.ones(c)
        sd[f"backbone.outnorm{i}.bias"] = torch.zeros(c)
    return sd


def save(sd, out):
    torch.save({"state_dict": sd, "meta": {}}, out)
    print(out, sum(v.numel() for v in sd.values()), "params")
