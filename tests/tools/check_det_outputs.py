#!/usr/bin/python3
"""Check `vmamba detect --raw DIR --json OUT.json` against the Mask R-CNN
golden (tests/data/det_maskrcnn) with an independent reader.

The COCO compressed-RLE decoder below is written from the format's
description (pycocotools maskApi.c rleFrString / rleDecode; Debian 12 does
not package pycocotools): counts alternate 0/1 runs over the mask in
column-major order starting with zeros; each count is a sequence of
characters c - 48, 5 data bits each (low groups first), bit 0x20 = more
groups follow, bit 0x10 of the last group = negative; from the third count
on, the value is added to the count two before. The JSON must also be what
pycocotools' loadRes accepts: a list of dicts with image_id, category_id,
bbox [x,y,w,h], score, segmentation {size: [h, w], counts: str}.

usage: check_det_outputs.py RAW_DIR OUT.json GOLDEN_DIR PREFIX
exit 0 = pass, 1 = fail."""
import json
import sys

import numpy as np

COCO_IDS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31, 32,
            33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59,
            60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90]


def rle_decode(s, h, w):
    cnts, p = [], 0
    while p < len(s):
        x, k, more = 0, 0, True
        while more:
            c = ord(s[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(cnts) > 2:
            x += cnts[-2]
        cnts.append(x)
    flat = np.zeros(h * w, np.uint8)
    pos, val = 0, 0
    for c in cnts:
        assert c >= 0, "negative run"
        flat[pos:pos + c] = val
        pos += c
        val ^= 1
    assert pos == h * w, f"runs cover {pos} of {h * w} pixels"
    return flat.reshape(w, h).T  # column-major


def main():
    raw, js, gold, pre = sys.argv[1:5]
    boxes = np.load(f"{raw}/boxes.npy")
    scores = np.load(f"{raw}/scores.npy")
    labels = np.load(f"{raw}/labels.npy")
    masks = np.load(f"{raw}/masks.npy")
    gb = np.load(f"{gold}/{pre}_det_boxes.npy")
    gs = np.load(f"{gold}/{pre}_det_scores.npy")
    gl = np.load(f"{gold}/{pre}_det_labels.npy")
    gm = np.load(f"{gold}/{pre}_det_masks_packed.npy")
    n = len(gb)
    assert boxes.dtype == np.float32 and boxes.shape == (n, 4), boxes.shape
    assert scores.dtype == np.float32 and labels.dtype == np.int64 and masks.dtype == np.uint8
    H, W = masks.shape[1:]
    assert np.all(np.abs(boxes - gb) <= 1e-4 * np.maximum(1, np.abs(gb))), np.abs(boxes - gb).max()
    assert np.all(np.abs(scores - gs) <= 1e-4), np.abs(scores - gs).max()
    assert np.array_equal(labels, gl), (labels, gl)
    gfull = np.unpackbits(gm, axis=-1)[..., :W]
    for i in range(n):
        inter = np.logical_and(masks[i], gfull[i]).sum()
        union = np.logical_or(masks[i], gfull[i]).sum()
        assert union == 0 or inter / union >= 0.995, f"mask {i}: IoU {inter / union}"
    res = json.load(open(js))
    assert isinstance(res, list) and len(res) == n
    for i, r in enumerate(res):
        assert set(r) == {"image_id", "category_id", "bbox", "score", "segmentation"}, r.keys()
        assert isinstance(r["image_id"], int)
        assert r["category_id"] == COCO_IDS[labels[i]]
        x, y, w, h = r["bbox"]
        b = boxes[i].astype(np.float64)
        assert abs(x - b[0]) < 1e-4 and abs(y - b[1]) < 1e-4 and abs(w - (b[2] - b[0])) < 1e-3 and abs(h - (b[3] - b[1])) < 1e-3
        assert abs(r["score"] - scores[i]) < 1e-6
        seg = r["segmentation"]
        assert seg["size"] == [H, W] and isinstance(seg["counts"], str)
        m = rle_decode(seg["counts"], H, W)
        assert np.array_equal(m, masks[i]), f"RLE of detection {i} differs from masks.npy"
    print(f"{pre}: {n} detections, boxes/scores/labels/masks and COCO JSON check out")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssertionError as e:
        print("FAIL:", e)
        sys.exit(1)
