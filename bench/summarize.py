#!/usr/bin/env python3
"""Markdown tables from bench/run-matrix.sh output (JSON Lines on stdin):
the vmamba preset matrix, then each preset against the peers at the same
batch and threads (ratio = peer latency / vmamba latency; > 1 means
vmamba is faster)."""
import json, sys

rows = [json.loads(l) for l in sys.stdin if l.strip().startswith("{")]
vm = [r for r in rows if "isa" in r]
peers = {(r["model"], r["batch"], r["threads"]): r for r in rows if "isa" not in r}
print("| preset | batch | threads | median ms | images/s | GFLOP/s | peak RSS MB |")
print("|---|---|---|---|---|---|---|")
for r in vm:
    print(f"| {r['model']} | {r['batch']} | {r['threads']} | {r['latency_ms_median']:.1f} | {r['images_per_s']:.2f} | "
          f"{r['gflops']:.0f} | {r['peak_rss_mb']:.0f} |")
if peers:
    print()
    print("| preset | batch | threads | vmamba ms | ConvNeXt-T ms (ratio) | ResNet-50 ms (ratio) |")
    print("|---|---|---|---|---|---|")
    for r in vm:
        if not r["model"].endswith(("tiny", "tiny-s2l5", "tiny-s1l8")):
            continue
        k = (r["batch"], r["threads"])
        c, s = peers.get(("convnext_tiny",) + k), peers.get(("resnet50",) + k)
        if not c or not s:
            continue
        m = r["latency_ms_median"]
        print(f"| {r['model']} | {k[0]} | {k[1]} | {m:.1f} | {c['latency_ms_median']:.1f} ({c['latency_ms_median'] / m:.2f}x) | "
              f"{s['latency_ms_median']:.1f} ({s['latency_ms_median'] / m:.2f}x) |")
