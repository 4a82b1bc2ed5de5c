#!/usr/bin/python3
"""exp2_fit.py - the coefficients of vf_exp2_poly (simd/generic/vec-math.h): 2^f ~ 1 + f q(f) on [-1/2, 1/2],
q of degree 3-5 fitted for least maximum relative error (Lawson's iteratively reweighted least squares), then
evaluated the way the kernel does (FP32 Horner, one rounding per FMA) against float64 to give the ulp error.
usage: /usr/bin/python3 bench/exp2_fit.py"""
import numpy as np


def fit(deg, iters=60):
    x = np.linspace(-0.5, 0.5, 20001)
    y = np.exp2(x)
    w = np.ones_like(x)
    V = np.stack([x ** k for k in range(1, deg + 1)], 1) / y[:, None]
    b = (y - 1) / y
    for _ in range(iters):
        c, *_ = np.linalg.lstsq(V * w[:, None], b * w, rcond=None)
        w = w * (np.abs(V @ c - b) + 1e-30) ** 0.5
        w /= w.max()
    return c


def horner32(c, f):
    p = np.full_like(f, np.float32(c[-1]))
    for k in range(len(c) - 2, -1, -1):
        p = (p.astype(np.float64) * f + np.float32(c[k])).astype(np.float32)  # FMA: one rounding
    return (p.astype(np.float64) * f + 1.0).astype(np.float32)


f = np.linspace(-0.5, 0.5, 2000001).astype(np.float32)
ex = np.exp2(f.astype(np.float64))
for deg in (4, 5, 6):
    c = fit(deg).astype(np.float32)
    r = horner32(c, f)
    ulp = np.abs(r - ex) / np.spacing(ex.astype(np.float32)).astype(np.float64)
    print(f"q degree {deg - 1}: {deg} FMAs, max {ulp.max():.2f} ulp, max relative {(np.abs(r - ex) / ex).max():.3g};",
          "coefficients f^1..f^%d:" % deg, ", ".join(repr(float(v)) for v in c))
