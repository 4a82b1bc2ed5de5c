#!/usr/bin/env python3
"""Make the hardening fixtures in tests/data/hostile/ (issue #16; test-data
tool, needs python3-torch, never used at run time).
Re-run: /usr/bin/python3 tests/tools/make_hostile.py

All are built on a tiny random VMamba v2 (dims 8, one block per stage, 10
classes, ~7k parameters) so each file stays a few tens of KB; the
architecture is the v2_s1 golden's with every width shrunk to 8.
tests/test_harden.c says what it expects of each file."""
import os, sys, types, zipfile
import torch

here = os.path.dirname(os.path.abspath(__file__))
data = os.path.join(here, "..", "data")
out = os.path.join(data, "hostile")
os.makedirs(out, exist_ok=True)

yacs = types.ModuleType("yacs"); cfg = types.ModuleType("yacs.config")
class CfgNode(dict): pass
cfg.CfgNode = CfgNode; yacs.config = cfg
sys.modules["yacs"] = yacs; sys.modules["yacs.config"] = cfg

ref = torch.load(os.path.join(data, "v2_s1", "model.pth"), map_location="cpu")["model"]
shrink = {16: 4, 32: 8, 48: 8, 64: 8, 128: 32, 192: 32, 256: 32}
g = torch.Generator().manual_seed(16)
tiny = {}
for k, v in ref.items():
    shape = tuple(shrink.get(d, d) for d in v.shape)
    tiny[k] = (torch.rand(shape, generator=g) * 0.4 - 0.2) if "norm" not in k else torch.ones(shape)
tiny["layers.0.blocks.0.op.A_logs"] = torch.zeros(32, 1)

def save(obj, fname):
    torch.save(obj, os.path.join(out, fname))

save({"model": tiny}, "tiny.pth")

# INT8 storage of the classifier head and of stage 0's fc1 (with per-row
# scales): contiguous, then the same values column-major (strides (1, N)),
# which torch writes for w.t().contiguous().t().
def q(w):
    s = w.abs().amax(dim=1) / 127.0
    return torch.round(w / s[:, None]).to(torch.int8), s

i8 = dict(tiny)
for name in ("classifier.head", "layers.0.blocks.0.mlp.fc1"):
    w8, s = q(tiny[name + ".weight"])
    i8[name + ".weight"] = w8
    i8[name + ".weight_scale"] = s
save({"model": i8}, "int8_ref.pth")
strided = dict(i8)
for name in ("classifier.head", "layers.0.blocks.0.mlp.fc1"):
    strided[name + ".weight"] = i8[name + ".weight"].t().contiguous().t()
    assert strided[name + ".weight"].stride() == (1, strided[name + ".weight"].shape[0])
# and an int8 view at a storage offset into a bigger storage
big = torch.cat([torch.full((13,), 77, dtype=torch.int8), i8["classifier.head.weight"].flatten()])
strided["classifier.head.weight"] = big[13:].view(10, 8)
save({"model": strided}, "int8_strided.pth")

# The int8 head's storage cut to 3 bytes and moved to the end of the
# archive: a read of all 80 bytes runs off the end of the file.
def rewrite(src, dst, edit):
    with zipfile.ZipFile(os.path.join(out, src)) as zin:
        items = [(i.filename, zin.read(i.filename)) for i in zin.infolist()]
    items = edit(items)
    with zipfile.ZipFile(os.path.join(out, dst), "w", zipfile.ZIP_STORED) as zout:
        for n, b in items:
            zout.writestr(n, b)

def head_key(fname):
    """The storage key of classifier.head.weight (the 80-byte int8 one)."""
    with zipfile.ZipFile(os.path.join(out, fname)) as z:
        hits = [i.filename for i in z.infolist() if "/data/" in i.filename and i.file_size == 80]
    assert len(hits) == 1, hits
    return hits[0]

k = head_key("int8_ref.pth")
def cut_last(items):
    hit = [(n, b[:3]) for n, b in items if n == k]
    return [(n, b) for n, b in items if n != k] + hit
rewrite("int8_ref.pth", "int8_short.pth", cut_last)

# Broadcast (stride 0) tensors: every tensor a view of a 1-element
# storage, and a head of 10 million classes: a 33 KB file asking for GBs.
def bcast(shape):
    return torch.zeros(1).expand(*shape)
b = {k: bcast(v.shape) for k, v in tiny.items()}
b["classifier.head.weight"] = bcast((10_000_000, 8))
b["classifier.head.bias"] = bcast((10_000_000,))
save({"model": b}, "broadcast.pth")

# A class count that does not fit an int: 2^32 - 1 rows, broadcast.
c = dict(tiny)
c["classifier.head.weight"] = bcast((2**32 - 1, 8))
c["classifier.head.bias"] = bcast((2**32 - 1,))
save({"model": c}, "classes_2e32.pth")
print("fixtures written to", out)

# Every tensor a view of one shared 150000-element float16 storage (legal:
# none has more elements than the storage), for a 36-block model whose
# float32 weights (26 MB) are far more than the 300 KB file can justify.
wide = {16: 64, 32: 128, 48: 128, 64: 128, 128: 512, 192: 512, 256: 512}
base = torch.linspace(-0.1, 0.1, 150000).half()
shared, depths = {}, (2, 2, 30, 2)
for k, v in ref.items():
    shape = tuple(wide.get(d, d) for d in v.shape)
    n = 1
    for d in shape: n *= d
    assert n <= base.numel(), (k, shape)
    parts = k.split(".")
    if parts[0] == "layers" and parts[2] == "blocks":
        if parts[3] != "0": continue
        for j in range(depths[int(parts[1])]):
            shared[".".join(parts[:3] + [str(j)] + parts[4:])] = base[:n].view(shape)
    else:
        shared[k] = base[:n].view(shape)
save({"model": shared}, "shared_storage.pth")

# Seeds for tests/fuzz/fuzz_safetensors.c: a 2-byte header length, the
# JSON header, the data (the harness adds the 8-byte length itself).
import json, struct
corpus = os.path.join(here, "..", "fuzz", "corpus")
def st_seed(sd, fname, meta):
    hdr, blobs, off = {"__metadata__": meta}, [], 0
    names = {torch.float32: "F32", torch.int8: "I8", torch.float16: "F16"}
    for k, v in sd.items():
        b = v.contiguous().numpy().tobytes()
        hdr[k] = {"dtype": names[v.dtype], "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b); off += len(b)
    h = json.dumps(hdr, separators=(",", ":")).encode()
    assert len(h) < 65536
    with open(os.path.join(corpus, fname), "wb") as f:
        f.write(struct.pack("<H", len(h)) + h + b"".join(blobs))
st_seed(tiny, "st_tiny.bin", {"format": "pt", "vmamba": '{"size": 32, "labels": ["a", "b"]}'})
st_seed(i8, "st_int8.bin", {"format": "pt"})

# Checkpoint-harness seeds for the other cases: a pickle of 60000
# EMPTY_TUPLE opcodes (the memory bound) and a safetensors header length
# of 2^31 (the message).
with zipfile.ZipFile(os.path.join(corpus, "tuples.pth"), "w", zipfile.ZIP_STORED) as z:
    z.writestr("tuples/data.pkl", b"\x80\x02" + b")" * 60000 + b".")
with open(os.path.join(corpus, "hdrlen.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", 2**31) + b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}' + b"\0" * 4)
