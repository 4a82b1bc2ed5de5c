#!/usr/bin/python3
"""make_image_cases.py DIR - the image fuzz harness's worst cases, in its input
format (4 option bytes, then the PNG; tests/fuzz/fuzz_image.c), for
bench/image_path and for timing the fuzz build (bench/RESULTS.md "Image fuzz
harness: worst cases"). Python's standard library only: zlib writes the PNGs,
whose rows are mostly constant so they compress like a hostile file would."""
import os
import struct
import sys
import zlib


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(w, h, depth, color, interlace=0, row=None):
    """color 0 gray, 2 RGB, 3 palette (two entries: a green and white);
    row(y, nbytes) gives a row's bytes (default zeros)."""
    ch = {0: 1, 2: 3, 3: 1}[color]
    nbytes = lambda width: (width * ch * depth + 7) // 8
    z = zlib.compressobj(9)
    idat = bytearray()
    # Adam7 passes as (x0, y0, dx, dy); one pass covering all without interlace
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    for x0, y0, dx, dy in passes if interlace else [(0, 0, 1, 1)]:
        pw, ph = max(0, (w - x0 + dx - 1) // dx), max(0, (h - y0 + dy - 1) // dy)
        for y in range(ph if pw else 0):
            idat += z.compress(b"\0" + (row(y, nbytes(pw)) if row else bytes(nbytes(pw))))
    idat += z.flush()
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, interlace))
    if color == 3:
        out += chunk(b"PLTE", bytes([10, 200, 30, 255, 255, 255]))
    return out + chunk(b"IDAT", bytes(idat)) + chunk(b"IEND", b"")


def opts(size, no_crop, crop_byte=0xDF):
    """size 1..512 (byte 3 bit 2), crop_pct (crop_byte + 1) / 256 unless no_crop."""
    v = size - 1
    return bytes([v & 255, v >> 8, crop_byte, 4 | (1 if no_crop else 0)])


stripes = lambda y, n: bytes([0x55 if y % 2 else 0xAA] * n)
pattern = lambda y, n: bytes(((y % 16) * 37 + i * 101) & 255 for i in range(n))

CASES = {
    # the input a 32-core run reported as a timeout
    "tall1bit_511_nocrop": (opts(511, True), png(1, 40000, 1, 0, row=stripes)),
    "tall1bit_65500_511_nocrop": (opts(511, True), png(1, 65500, 1, 0, row=stripes)),
    "tall_rgb_3x65500_512_nocrop": (opts(512, True), png(3, 65500, 8, 2, row=pattern)),
    "tall8_4x65500_512_nocrop": (opts(512, True), png(4, 65500, 8, 0, row=pattern)),
    "wide1bit_65500_511_nocrop": (opts(511, True), png(65500, 1, 1, 0, row=lambda y, n: bytes(i * 7 & 255 for i in range(n)))),
    "small_up_2x2_512": (opts(512, True), png(2, 2, 8, 2, row=pattern)),
    "big1bit_13000sq_512": (opts(512, False), png(13000, 13000, 1, 0, row=stripes)),
    # Pillow's pixel limit in a 1-bit colour palette, interlaced: the worst found
    "max_pal1_interlaced_512_nocrop": (opts(512, True), png(13377, 13377, 1, 3, interlace=1)),
}

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_image_cases.py DIR")
    os.makedirs(sys.argv[1], exist_ok=True)
    for name, (o, p) in CASES.items():
        with open(os.path.join(sys.argv[1], name + ".bin"), "wb") as f:
            f.write(o + p)
        print(f"{name}.bin: {len(o) + len(p)} bytes")
