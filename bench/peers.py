#!/usr/bin/env python3
"""Peer models on the same machine and run: torchvision ConvNeXt-T and
ResNet-50 in Debian's PyTorch (python3-torch, python3-torchvision; CPU,
float32, eval, no_grad, random weights), at a given thread count and batch.
Prints one JSON object per model: latency_ms_median, images_per_s.
Usage: bench/peers.py --threads N --batch B [--iters N] [--warmup N]"""
import argparse, json, statistics, time
import torch, torchvision

ap = argparse.ArgumentParser()
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--batch", type=int, default=1)
ap.add_argument("--size", type=int, default=224)
ap.add_argument("--iters", type=int, default=10)
ap.add_argument("--warmup", type=int, default=2)
a = ap.parse_args()
torch.set_num_threads(a.threads)
x = torch.randn(a.batch, 3, a.size, a.size)
for name in ("convnext_tiny", "resnet50"):
    m = getattr(torchvision.models, name)(weights=None).eval()
    with torch.no_grad():
        for _ in range(a.warmup):
            m(x)
        t = []
        for _ in range(a.iters):
            t0 = time.perf_counter()
            m(x)
            t.append(time.perf_counter() - t0)
    med = statistics.median(t)
    print(json.dumps({"model": name, "threads": a.threads, "batch": a.batch, "latency_ms_median": round(med * 1e3, 2),
                      "images_per_s": round(a.batch / med, 2), "torch": torch.__version__}))
