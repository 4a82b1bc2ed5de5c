#!/usr/bin/env python3
"""Peer for bench/seg_bench: a RE-IMPLEMENTATION of mmseg 1.2.2's UPerHead
in plain PyTorch (mmseg itself is not packaged in Debian; the module
structure follows decode_heads/uper_head.py line by line: ConvModule =
Conv2d(bias=False) + BatchNorm2d + ReLU, PPM (1,2,3,6), laterals, top-down
bilinear adds, FPN convs, fpn_bottleneck, conv_seg) plus mmseg's test-mode
postprocessing (two bilinear resizes, argmax), in Debian's python3-torch,
eval + no_grad, random weights, at the feature shapes of VMamba-T on a
512x683 input (channels 96/192/384/768, head channels 512, 150 classes).
NOT the backbone: the official VMamba code is not available here.
Prints one JSON object: head_ms, post_ms medians.
Usage: bench/seg_peer.py --threads N [--iters N] [--h 512 --w 683]"""
import argparse, json, math, statistics, time
import torch, torch.nn as nn, torch.nn.functional as F

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--iters", type=int, default=5)
ap.add_argument("--h", type=int, default=512)
ap.add_argument("--w", type=int, default=683)
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
m = UPerHead().eval()
th, tp = [], []
with torch.no_grad():
    for it in range(a.iters + 1):
        t0 = time.perf_counter()
        l4 = m(feats)
        t1 = time.perf_counter()
        lg = up(up(l4, (h, w)), (h, w))   # predict_by_feat to img_shape, postprocess_result to ori_shape
        lab = lg.argmax(1)
        t2 = time.perf_counter()
        if it:
            th.append(t1 - t0); tp.append(t2 - t1)
print(json.dumps({"peer": "UPerHead re-implementation (plain torch) + mmseg postprocess", "threads": a.threads,
                  "input_hw": [h, w], "feature_hw": shapes, "head_ms": round(statistics.median(th) * 1e3, 1),
                  "post_ms": round(statistics.median(tp) * 1e3, 1), "torch": torch.__version__}))
