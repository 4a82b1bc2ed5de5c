#!/usr/bin/python3
"""Copy what the segmentation tests need from the golden folder
(../shared/golden/seg_upernet, path as argv[1]) into tests/data/seg_upernet,
and reduce the large resized images to FNV-1a 64 hashes of their BGR bytes
(resize_hashes.txt: image scale_w scale_h w1 h1 hash)."""
import json, os, shutil, sys
import numpy as np
import cv2
g = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/golden/seg_upernet"
out = "tests/data/seg_upernet"; os.makedirs(out, exist_ok=True)
m = json.load(open(os.path.join(g, "manifest.json")))
def fnv(b):
    h = 0xcbf29ce484222325
    for x in b:
        h = ((h ^ x) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h
imgpath = {"china.jpg": "preprocess/china.jpg", "flower.jpg": "preprocess/flower.jpg",
           "china_crop.png": "seg_upernet/china_crop.png", "mini.png": "seg_upernet/mini.png"}
rows = []
for c in m["cases"]:
    r = cv2.imread(os.path.join(g, c["name"] + "_resized.png"), cv2.IMREAD_COLOR)  # RGB PNG -> BGR array
    h1, w1 = c["img_shape_hw"]; assert r.shape[:2] == (h1, w1)
    rows.append("%s %d %d %d %d %016x" % (imgpath[c["image_file"]], *c["resize_scale"], w1, h1, fnv(r.tobytes())))
for c in m["resize_checks"]:
    r = cv2.imread(os.path.join(g, c["file"]), cv2.IMREAD_COLOR)
    h1, w1 = c["img_shape_hw"]
    rows.append("%s %d %d %d %d %016x" % (imgpath[c["image"]], *c["scale"], w1, h1, fnv(r.tobytes())))
open(os.path.join(out, "resize_hashes.txt"), "w").write("\n".join(rows) + "\n")
keep = ["manifest.json", "model.pth", "ade20k_classes.txt", "ade20k_palette.txt", "china_crop.png", "mini.png"]
keep += [f for f in os.listdir(g) if f.endswith(".npy")]
keep += ["china_crop_overlay.png", "mini_resized.png"]
for f in keep:
    shutil.copy(os.path.join(g, f), os.path.join(out, f))
print(len(keep), "files")
