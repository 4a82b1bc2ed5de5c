#!/usr/bin/env python3
"""Export the ONNX Runtime peers for bench/ort-peers.sh: torchvision ConvNeXt-T, Swin-T and ResNet-50 with random
weights (timing only), 1x3x224x224, opset 17 (LayerNormalization as one node). Debian's python3-torchvision.
Usage: /usr/bin/python3 bench/ort_export.py OUTDIR"""
import os, sys
import torch, torchvision

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
x = torch.randn(1, 3, 224, 224)
for name in ("convnext_tiny", "swin_t", "resnet50"):
    path = os.path.join(out, name + ".onnx")
    if os.path.exists(path):
        continue
    m = getattr(torchvision.models, name)(weights=None).eval()
    with torch.no_grad():
        torch.onnx.export(m, x, path, opset_version=17, input_names=["input"], output_names=["logits"])
    print("exported", path, file=sys.stderr)
