#!/usr/bin/env python3
"""Write PNG variants of tests/data/preprocess/china_crop.png (16-bit RGB,
RGBA, palette with transparency, 8/16-bit gray, gray+alpha, 1/2-bit gray,
interlaced) and what Pillow's Image.open(f).convert('RGB') gives for each,
into tests/data/png/. Test-data tool (numpy + Pillow)."""
import os
import numpy as np
from PIL import Image

here = os.path.dirname(os.path.abspath(__file__))
src = os.path.join(here, "..", "data", "preprocess", "china_crop.png")
out = os.path.join(here, "..", "data", "png")
os.makedirs(out, exist_ok=True)
rgb = np.asarray(Image.open(src).convert("RGB"))[:61, :75]  # small, odd size
gray = (rgb.astype(np.uint32) @ [299, 587, 114] // 1000).astype(np.uint8)

def save(name, im, **kw):
    p = os.path.join(out, name + ".png")
    im.save(p, **kw)
    ref = np.asarray(Image.open(p).convert("RGB"))
    np.save(os.path.join(out, name + "_rgb.npy"), ref)

save("rgb8", Image.fromarray(rgb))
rgba = np.dstack([rgb, (np.arange(rgb.shape[1]) * 3 % 256).astype(np.uint8)[None, :].repeat(rgb.shape[0], 0)])
save("rgba8", Image.fromarray(rgba, "RGBA"))
save("palette", Image.fromarray(rgb).quantize(64))
pal = Image.fromarray(rgb).quantize(16); pal.info["transparency"] = 3
save("palette_trns", pal, transparency=3)
save("gray8", Image.fromarray(gray, "L"))
save("gray_alpha", Image.fromarray(np.dstack([gray, 255 - gray]), "LA"))
save("gray1", Image.fromarray(gray > 128).convert("1"))
# 16-bit: Pillow writes mode I;16 grayscale as 16-bit PNG; values above 255 clip in convert('RGB')
g16 = (gray.astype(np.uint16) * 3)
save("gray16", Image.fromarray(g16, "I;16"))

# Pillow cannot write 16-bit RGB or 2-bit gray: a minimal PNG encoder does.
import struct, zlib
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
def raw_png(name, w, h, depth, ctype, rows):
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0))
    data += chunk(b"IDAT", zlib.compress(b"".join(b"\x00" + r for r in rows))) + chunk(b"IEND", b"")
    p = os.path.join(out, name + ".png")
    open(p, "wb").write(data)
    np.save(os.path.join(out, name + "_rgb.npy"), np.asarray(Image.open(p).convert("RGB")))
rs = np.random.RandomState(1)
w, h = 13, 9
a16 = rs.randint(0, 65536, (h, w, 3)).astype(">u2")
raw_png("rgb16", w, h, 16, 2, [a16[y].tobytes() for y in range(h)])
g2 = rs.randint(0, 4, (h, w + 3))
raw_png("gray2", w, h, 2, 0, [bytes((g2[y, i] << 6) | (g2[y, i + 1] << 4) | (g2[y, i + 2] << 2) | g2[y, i + 3]
                                    for i in range(0, w, 4)) for y in range(h)])
print(sorted(os.listdir(out)))
