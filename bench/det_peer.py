#!/usr/bin/python3
"""Peer for `vmamba detect --repeat`: torchvision's Mask R-CNN R50-FPN in
Debian's PyTorch (python3-torch, python3-torchvision; CPU, float32, eval,
no_grad, random weights) on the same photo at the same test scale
(min_size 800, max_size 1333). As in the maskrcnn-vmamba-tiny preset, five
class logits are lifted by +5 so that random weights give ~100 detections
and the mask head runs. Prints the median latency and peak RSS as JSON.
Usage: bench/det_peer.py IMAGE --threads N [--iters N]"""
import argparse, json, resource, statistics, time

import numpy as np
import torch
import torchvision
from PIL import Image

ap = argparse.ArgumentParser()
ap.add_argument("image")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--iters", type=int, default=5)
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
m = torchvision.models.detection.maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, min_size=800, max_size=1333).eval()
with torch.no_grad():
    m.roi_heads.box_predictor.cls_score.bias[1:6] += 5.0
x = torch.from_numpy(np.array(Image.open(a.image).convert("RGB"))).permute(2, 0, 1).float() / 255
t, n = [], 0
with torch.no_grad():
    m([x])  # warm-up
    for _ in range(a.iters):
        t0 = time.perf_counter()
        out = m([x])
        t.append(time.perf_counter() - t0)
        n = len(out[0]["boxes"])
print(json.dumps({"model": "torchvision maskrcnn_resnet50_fpn", "threads": a.threads, "detections": n,
                  "latency_ms_median": round(statistics.median(t) * 1e3, 1),
                  "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                  "torch": torch.__version__}))
