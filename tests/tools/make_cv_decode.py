#!/usr/bin/python3
"""Build tests/data/cv_decode/: small JPEG/PNG variants and what
cv2.imdecode(buf, IMREAD_COLOR) (OpenCV 4.6, Debian's python3-opencv)
makes of them, as uint8 BGR (H,W,3) .npy files <name>.bgr.npy.
Variants: EXIF orientation 1..8 (JPEG, non-square so a missed transpose
shows), Adobe CMYK JPEG (Pillow writes inverted CMYK), grayscale JPEG,
and PNG colour types / bit depths / alpha / palette+tRNS.
Run with Debian's python (/usr/bin/python3) from the repository root."""
import io, os
import numpy as np
import cv2
from PIL import Image

out = "tests/data/cv_decode"
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(7)
W, H = 23, 14
yy, xx = np.mgrid[0:H, 0:W]
rgb = np.stack([xx * 11 % 256, yy * 17 % 256, (xx * yy * 3 + 40) % 256], -1).astype(np.uint8)
rgb = np.clip(rgb.astype(int) + rng.integers(-20, 20, rgb.shape), 0, 255).astype(np.uint8)

def save(name, data):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)
    dec = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert dec is not None, name
    np.save(os.path.join(out, name + ".bgr.npy"), dec)

im = Image.fromarray(rgb)
for o in range(1, 9):
    ex = Image.Exif()
    ex[0x0112] = o
    b = io.BytesIO()
    im.save(b, "JPEG", quality=90, exif=ex.tobytes())
    save("exif%d.jpg" % o, b.getvalue())
# big-endian ("MM") EXIF written by hand: APP1 with a 1-entry IFD0.
b = io.BytesIO(); im.save(b, "JPEG", quality=90); j = b.getvalue()
tiff = b"MM\x00\x2a\x00\x00\x00\x08" + b"\x00\x01" + b"\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00" + b"\x00\x00\x00\x00"
app1 = b"Exif\x00\x00" + tiff
save("exif6_be.jpg", j[:2] + b"\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1 + j[2:])
b = io.BytesIO(); im.convert("CMYK").save(b, "JPEG", quality=92); save("cmyk.jpg", b.getvalue())
# CMYK with real K: random CMYK values
cm = Image.fromarray(rng.integers(0, 256, (H, W, 4)).astype(np.uint8), "CMYK")
b = io.BytesIO(); cm.save(b, "JPEG", quality=95); save("cmyk_rand.jpg", b.getvalue())
b = io.BytesIO(); im.convert("L").save(b, "JPEG", quality=90); save("gray.jpg", b.getvalue())
b = io.BytesIO(); im.save(b, "JPEG", quality=90, subsampling=0); save("rgb444.jpg", b.getvalue())

def png(name, arr, mode=None, **kw):
    b = io.BytesIO(); Image.fromarray(arr, mode).save(b, "PNG", **kw) if mode else Image.fromarray(arr).save(b, "PNG", **kw)
    save(name, b.getvalue())

png("rgb8.png", rgb)
rgba = np.concatenate([rgb, rng.integers(0, 256, (H, W, 1)).astype(np.uint8)], -1)
png("rgba8.png", rgba)
png("gray8.png", rgb[..., 0])
png("graya8.png", np.stack([rgb[..., 0], rgb[..., 1]], -1), "LA")
g16 = (rng.integers(0, 65536, (H, W))).astype(np.uint16)
png("gray16.png", g16)
# 16-bit RGB through cv2's own encoder (Pillow cannot write it)
rgb16 = rng.integers(0, 65536, (H, W, 3)).astype(np.uint16)
ok, enc = cv2.imencode(".png", rgb16); save("rgb16.png", enc.tobytes())
rgba16 = rng.integers(0, 65536, (H, W, 4)).astype(np.uint16)
ok, enc = cv2.imencode(".png", rgba16); save("rgba16.png", enc.tobytes())
pal = im.convert("P", palette=Image.ADAPTIVE, colors=16)
b = io.BytesIO(); pal.save(b, "PNG"); save("palette.png", b.getvalue())
b = io.BytesIO(); pal.save(b, "PNG", transparency=3); save("palette_trns.png", b.getvalue())
b = io.BytesIO(); im.convert("1").save(b, "PNG"); save("gray1.png", b.getvalue())
b = io.BytesIO(); im.save(b, "PNG", transparency=(rgb[0,0,0], rgb[0,0,1], rgb[0,0,2])); save("rgb_trns.png", b.getvalue())
print("ok")

# Real photos (tests/data/preprocess): OpenCV's pixels as an FNV-1a 64 hash
# of the BGR bytes (the decoded arrays would be ~1 MB), plus a phone-style
# copy of china_420.jpg tagged orientation 6 (little-endian EXIF).
def fnv(b):
    h = 0xcbf29ce484222325
    for x in b:
        h = ((h ^ x) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h
j = open("tests/data/preprocess/china_420.jpg", "rb").read()
tiff = b"II\x2a\x00\x08\x00\x00\x00" + b"\x01\x00" + b"\x12\x01\x03\x00\x01\x00\x00\x00\x06\x00\x00\x00" + b"\x00\x00\x00\x00"
app1 = b"Exif\x00\x00" + tiff
open(os.path.join(out, "china_420_exif6.jpg"), "wb").write(j[:2] + b"\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1 + j[2:])
with open(os.path.join(out, "real_hashes.txt"), "w") as f:
    for p in ["preprocess/china.jpg", "preprocess/flower_cmyk.jpg", "preprocess/flower_gray.jpg",
              "preprocess/china_420_progressive.jpg", "preprocess/china_crop.png", "cv_decode/china_420_exif6.jpg"]:
        d = cv2.imdecode(np.fromfile("tests/data/" + p, np.uint8), cv2.IMREAD_COLOR)
        f.write("%s %d %d %016x\n" % (p, d.shape[1], d.shape[0], fnv(np.ascontiguousarray(d).tobytes())))
print("hashes ok")
