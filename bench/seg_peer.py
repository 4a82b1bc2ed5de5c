#!/usr/bin/env python3
"""Peer for bench/seg_bench: a RE-IMPLEMENTATION of mmseg 1.2.2's UPerHead
in plain PyTorch (mmseg itself is not packaged in Debian; the module
structure follows decode_heads/uper_head.py line by line: ConvModule =
Conv2d(bias=False) + BatchNorm2d + ReLU, PPM (1,2,3,6), laterals, top-down
bilinear adds, FPN convs, fpn_bottleneck, conv_seg) plus mmseg's test-mode
postprocessing (two bilinear resizes, argmax), in Debian's python3-torch,
eval + no_grad, random weights, at the feature shapes of VMamba-T on a
512x683 input (channels 96/192/384/768, head channels 512, 150 classes).
With --vmamba-py PATH (the upstream single-file vmamba.py, commit 2ed52ead
of MzeroMiko/VMamba, the one the goldens came from) the OFFICIAL backbone
runs first: Backbone_VSSM with MM_VSSM's tiny config (dims 96, depths
2,2,8,2, d_state 1, ssm_ratio 1, v05_noz, ln2d, downsample v3, patch
embed v2), on CPU through its pure-PyTorch cross-scan and selective scan
(no Triton/CUDA), as in bench/official_cpu.py; its four maps feed the head.
Without it, random feature maps of the same shapes feed the head.
Prints one JSON object: backbone_ms (official only), head_ms, post_ms medians.
Usage: bench/seg_peer.py --threads N [--iters N] [--h 512 --w 683] [--vmamba-py vmamba.py]"""
import argparse, builtins, importlib.util, json, math, statistics, sys, time, types
import torch, torch.nn as nn, torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--iters", type=int, default=5)
ap.add_argument("--h", type=int, default=512)
ap.add_argument("--w", type=int, default=683)
ap.add_argument("--vmamba-py", default=None)
a = ap.parse_args()
torch.set_num_threads(a.threads)

def cm(i, o, k):
    return nn.Sequential(nn.Conv2d(i, o, k, padding=k // 2, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True))

def up(x, size):
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

class UPerHead(nn.Module):
    def __init__(self, inc=(96, 192, 384, 768), ch=512, ncls=150, scales=(1, 2, 3, 6)):
        super().__init__()
        self.psp = nn.ModuleList([nn.Sequential(nn.AdaptiveAvgPool2d(s), cm(inc[-1], ch, 1)) for s in scales])
        self.bottleneck = cm(inc[-1] + len(scales) * ch, ch, 3)
        self.lateral = nn.ModuleList([cm(c, ch, 1) for c in inc[:-1]])
        self.fpn = nn.ModuleList([cm(ch, ch, 3) for _ in inc[:-1]])
        self.fpn_bottleneck = cm(len(inc) * ch, ch, 3)
        self.conv_seg = nn.Conv2d(ch, ncls, 1)
    def forward(self, f):
        x = f[-1]
        psp = self.bottleneck(torch.cat([x] + [up(m(x), x.shape[2:]) for m in self.psp], 1))
        lat = [l(f[i]) for i, l in enumerate(self.lateral)] + [psp]
        for i in range(len(lat) - 1, 0, -1):
            lat[i - 1] = lat[i - 1] + up(lat[i], lat[i - 1].shape[2:])
        outs = [self.fpn[i](lat[i]) for i in range(len(lat) - 1)] + [lat[-1]]
        outs = [outs[0]] + [up(o, outs[0].shape[2:]) for o in outs[1:]]
        return self.conv_seg(self.fpn_bottleneck(torch.cat(outs, 1)))

h, w = a.h, a.w
s = [math.ceil(math.ceil(h / 2) / 2), math.ceil(math.ceil(w / 2) / 2)]
shapes = []
for i in range(4):
    shapes.append(tuple(s))
    s = [math.ceil(s[0] / 2), math.ceil(s[1] / 2)]
feats = [torch.randn(1, c, *hw) for c, hw in zip((96, 192, 384, 768), shapes)]
backbone = None
if a.vmamba_py:
    def stub(name, **attrs):
        mod = types.ModuleType(name)
        mod.__dict__.update(attrs)
        sys.modules[name] = mod
    class DropPath(nn.Identity):
        def __init__(self, *args, **kw):
            super().__init__()
    stub("timm"); stub("timm.models", register_model=lambda f: f)
    stub("timm.models.layers", DropPath=DropPath, trunc_normal_=lambda t, std=1.0, **k: nn.init.normal_(t, std=std))
    stub("fvcore"); stub("fvcore.nn", FlopCountAnalysis=None, flop_count_str=None, flop_count=None, parameter_count=None)
    builtins.triton = types.SimpleNamespace(jit=lambda f: f)
    builtins.tl = types.SimpleNamespace(constexpr=int, tensor=object)
    spec = importlib.util.spec_from_file_location("vmamba_official", a.vmamba_py)
    vmo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(vmo)
    backbone = vmo.Backbone_VSSM(out_indices=(0, 1, 2, 3), norm_layer="ln2d", depths=[2, 2, 8, 2], dims=96,
                                 drop_path_rate=0.2, ssm_d_state=1, ssm_ratio=1.0, ssm_dt_rank="auto", ssm_conv=3,
                                 ssm_conv_bias=False, forward_type="v05_noz", mlp_ratio=4.0, downsample_version="v3",
                                 patchembed_version="v2").eval()
x = torch.randn(1, 3, h, w)
m = UPerHead().eval()
th, tp, tb = [], [], []
with torch.no_grad():
    for it in range(a.iters + 1):
        tb0 = time.perf_counter()
        if backbone is not None:
            feats = backbone(x)
            assert [tuple(f.shape[2:]) for f in feats] == shapes, [f.shape for f in feats]
        t0 = time.perf_counter()
        if it:
            tb.append(t0 - tb0)
        l4 = m(feats)
        t1 = time.perf_counter()
        lg = up(up(l4, (h, w)), (h, w))   # predict_by_feat to img_shape, postprocess_result to ori_shape
        lab = lg.argmax(1)
        t2 = time.perf_counter()
        if it:
            th.append(t1 - t0); tp.append(t2 - t1)
print(json.dumps({"peer": ("official VMamba backbone + " if backbone is not None else "") +
                  "UPerHead re-implementation (plain torch) + mmseg postprocess", "threads": a.threads,
                  "backbone_ms": round(statistics.median(tb) * 1e3, 1) if backbone is not None else None,
                  "input_hw": [h, w], "feature_hw": shapes, "head_ms": round(statistics.median(th) * 1e3, 1),
                  "post_ms": round(statistics.median(tp) * 1e3, 1), "torch": torch.__version__}))
