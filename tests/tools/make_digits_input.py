#!/usr/bin/env python3
"""Build tests/data/digits/test_input.npy: the 200 test PNGs as the model
input (size 32, no resize, no crop), as the digits README defines it:
x[c][h][w] = (png[h][w][c] / 255 - mean[c]) / std[c], float32 NCHW.
Test-data tool (numpy + Pillow); the engine never runs Python."""
import csv, os
import numpy as np
from PIL import Image

d = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "digits")
mean = np.array([0.485, 0.456, 0.406], np.float32)
std = np.array([0.229, 0.224, 0.225], np.float32)
rows = [r for r in csv.DictReader(open(os.path.join(d, "labels.csv"))) if r["file"].startswith("test/")]
x = np.stack([((np.asarray(Image.open(os.path.join(d, r["file"])).convert("RGB"), np.float32) / 255 - mean) / std)
              .transpose(2, 0, 1) for r in rows]).astype(np.float32)
np.save(os.path.join(d, "test_input.npy"), x)
print(x.shape)
