#!/usr/bin/env python3
"""official_cpu.py - CPU latency of the official PyTorch VMamba (the
upstream single-file vmamba.py, e.g. commit 2ed52ead of MzeroMiko/VMamba, the
one the golden files came from) in Debian's python3-torch: CPU, float32,
eval, no_grad, random weights, batch 1. Without Triton and the CUDA scan the
official code runs its pure-PyTorch cross-scan and selective scan, as the
goldens did. timm, fvcore and triton are not needed: the few names the file
imports from them are stubbed here (DropPath is the identity in eval).

Usage: /usr/bin/python3 bench/official_cpu.py VMAMBA_PY [--arch vmamba_tiny_s1l8]
           [--threads N] [--iters N] [--size 224]
Prints one JSON object (latency_ms_median)."""
import argparse, builtins, importlib.util, json, statistics, sys, time, types

ap = argparse.ArgumentParser()
ap.add_argument("vmamba_py")
ap.add_argument("--arch", default="vmamba_tiny_s1l8")
ap.add_argument("--threads", type=int, default=1)
ap.add_argument("--iters", type=int, default=3)
ap.add_argument("--size", type=int, default=224)
a = ap.parse_args()

import torch
import torch.nn as nn


def stub(name, **attrs):
    m = types.ModuleType(name)
    m.__dict__.update(attrs)
    sys.modules[name] = m
    return m


class DropPath(nn.Identity):
    def __init__(self, *args, **kw):
        super().__init__()


stub("timm")
stub("timm.models", register_model=lambda f: f)
stub("timm.models.layers", DropPath=DropPath, trunc_normal_=lambda t, std=1.0, **k: nn.init.normal_(t, std=std))
stub("fvcore")
stub("fvcore.nn", FlopCountAnalysis=None, flop_count_str=None, flop_count=None, parameter_count=None)
# The file decorates its Triton kernels at import time even when `import triton` fails (then it uses PyTorch).
builtins.triton = types.SimpleNamespace(jit=lambda f: f)
builtins.tl = types.SimpleNamespace(constexpr=int, tensor=object)

spec = importlib.util.spec_from_file_location("vmamba_official", a.vmamba_py)
vm = importlib.util.module_from_spec(spec)
spec.loader.exec_module(vm)
torch.set_num_threads(a.threads)
model = getattr(vm, a.arch)(channel_first=True).eval()
x = torch.randn(1, 3, a.size, a.size)
with torch.no_grad():
    model(x)
    t = []
    for _ in range(a.iters):
        t0 = time.perf_counter()
        model(x)
        t.append(time.perf_counter() - t0)
print(json.dumps({"model": "official " + a.arch, "torch": torch.__version__, "threads": a.threads, "size": a.size,
                  "latency_ms_median": round(1e3 * statistics.median(t), 1), "iters": a.iters}))
