#!/usr/bin/python3
"""Build tests/data/cv_resize/: a random uint8 BGR image and what
cv2.resize(..., INTER_LINEAR) (OpenCV 4.6, Debian's python3-opencv) makes
of it at several sizes (up, down, mixed, exact 2x = INTER_AREA path,
integer 3x, 1-pixel), for the bit-exact resize test. Files: src.npy,
out_<W>x<H>.npy and sizes.txt."""
import numpy as np, cv2, os
out = "tests/data/cv_resize"; os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(11)
src = rng.integers(0, 256, (30, 42, 3)).astype(np.uint8)
src[5:12, 7:30] = 255; src[15:20] = 0  # flat areas and hard edges
np.save(os.path.join(out, "src.npy"), src)
sizes = [(97, 61), (21, 15), (50, 20), (14, 10), (43, 31), (41, 29), (1, 1), (5, 77), (126, 90), (64, 45), (84, 60), (42, 30)]
with open(os.path.join(out, "sizes.txt"), "w") as f:
    for w, h in sizes:
        np.save(os.path.join(out, "out_%dx%d.npy" % (w, h)), cv2.resize(src, (w, h), interpolation=cv2.INTER_LINEAR))
        f.write("%d %d\n" % (w, h))
print("ok")
