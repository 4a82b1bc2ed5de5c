#!/usr/bin/env python3
"""icount.py - the host-side half of the aarch64 instruction counter.

  icount.py regions BIN SRCDIR -o REGIONS   op table for the qemu plugin (icount.c)
  icount.py report TSV --bin BIN --info INFO.json [--int8] [--json] [--top N]

`regions` maps the engine binary's code to ops without changing the engine:
the DWARF line table (readelf --debug-dump=decodedline) gives each address's
source line; the C sources give the op of each line (the PROF(VM_OP_*, ...)
statements and the `t_x = ...; ... seconds[VM_OP_*] += now_s() - t_x` timed
blocks, the same boundaries as `vmamba bench --profile`). Lines of functions
that contain such statements but are outside them are "glue"; every other
address (kernels, oneDNN, libc, OpenMP, helper functions) inherits the op
that called it. Entry points (vm_forward, vm_forward_features) and the
return addresses after their call sites delimit one forward pass.

`report` turns the plugin's per-block counts into a per-op table with the
instruction classes, the GEMM FLOPs of each op (from `vmamba info --json`)
and instructions per FLOP against the ideal:
  FP32:            128-bit FMLA = 4 lanes x (mul+add) = 8 FLOPs/instruction
  INT8, dotprod:   128-bit SDOT = 16 int8 MACs = 32 ops/instruction
  INT8, no dotprod (Cortex-A72): SMULL + SMLAL2 (8+8 MACs into int16) +
                   SADALP (to int32) = 16 MACs per 3 instructions
                   (the gemmlowp/ruy/XNNPACK 'mlal' kernels' inner step)
The ideal counts only the arithmetic instructions; a real kernel adds loads
of A and B panels (e.g. 5 loads per 24 FMLA in an 8x12 FP32 micro-kernel).
"""
import argparse
import bisect
import collections
import glob
import json
import os
import re
import subprocess
import sys

CLASSES = ["fmla", "dot", "imac", "simd", "ldst", "branch", "int"]


def sh(cmd):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          universal_newlines=True).stdout


def tool(name):
    """aarch64 binutils when present (they read any aarch64 ELF), else the host's."""
    for t in ("aarch64-linux-gnu-" + name, name):
        if subprocess.run(["sh", "-c", "command -v " + t], stdout=subprocess.DEVNULL).returncode == 0:
            return t
    sys.exit("icount: %s not found (apt-get install binutils-aarch64-linux-gnu)" % name)


# ---------------------------------------------------------------- sources
def strip_c(text):
    """Blank out comments and string/char literals, keeping line structure."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + " " * (j - i - 1) + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def op_table(srcdir):
    """VM_OP_* names in enum order and their display names (vm_op_names)."""
    enum, names = None, None
    for f in glob.glob(os.path.join(srcdir, "src", "**", "*.[ch]"), recursive=True):
        t = strip_c(open(f, errors="replace").read())
        m = re.search(r"enum\s*\w*\s*\{([^}]*VM_OP_COUNT[^}]*)\}", t)
        if m and enum is None:
            enum = [x.strip().split("=")[0].strip() for x in m.group(1).split(",")]
            enum = [x for x in enum if x and x != "VM_OP_COUNT"]
        raw = open(f, errors="replace").read()
        m = re.search(r"vm_op_names\s*\[[^\]]*\]\s*=\s*\{([^}]*)\}", raw)
        if m and names is None:
            names = re.findall(r'"([^"]*)"', m.group(1))
    if not enum:
        sys.exit("icount: no enum ending in VM_OP_COUNT under %s/src" % srcdir)
    if not names or len(names) < len(enum):
        names = [e[6:].lower() for e in enum]
    return enum, names[:len(enum)]


def close_paren(t, i):
    """Index just past the parenthesis matching t[i] == '('."""
    d = 0
    for j in range(i, len(t)):
        if t[j] == "(":
            d += 1
        elif t[j] == ")":
            d -= 1
            if d == 0:
                return j + 1
    return len(t)


def functions(t):
    """(first line, last line) of every top-level brace block that follows ')'."""
    res, depth, start = [], 0, None
    for i, c in enumerate(t):
        if c == "{":
            if depth == 0:
                k = i - 1
                while k >= 0 and t[k] in " \t\n":
                    k -= 1
                start = i if k >= 0 and t[k] == ")" else None
                if start is not None:  # a function: begin at its signature's first line
                    s = t.rfind("\n\n", 0, i)
                    start = s + 2 if s >= 0 else 0
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0 and start is not None:
                res.append((t.count("\n", 0, start) + 1, t.count("\n", 0, i) + 1))
                start = None
    return res


def line_ops(path, enum):
    """{line: op index} for the op statements of one file, and the lines of
    functions holding them (glue)."""
    t = strip_c(open(path, errors="replace").read())
    raw = open(path, errors="replace").read()
    ranges = []  # (first, last, op)
    lineno = lambda pos: t.count("\n", 0, pos) + 1
    for m in re.finditer(r"\bPROF\s*\(", t):
        end = close_paren(t, m.end() - 1)
        ops = re.findall(r"\bVM_OP_\w+", raw[m.start():end])
        if ops and ops[0] in enum:
            ranges.append((lineno(m.start()), lineno(end - 1), enum.index(ops[0])))
    # the clock call may be now_s() or through the ops table, o->now(bb)
    for m in re.finditer(r"seconds\s*\[\s*(VM_OP_\w+)\s*\]\s*\+=\s*[\w.>-]+\s*\([^()]*\)\s*-\s*(\w+)", raw):
        op, var = m.group(1), m.group(2)
        if op not in enum:
            continue
        decl = None
        for d in re.finditer(r"\b%s\s*=" % re.escape(var), t[:m.start()]):
            decl = d
        if decl:
            ranges.append((lineno(decl.start()), lineno(m.end()), enum.index(op)))
    if not ranges:
        return {}, set()
    ops = {}
    # widest first, so nested statements (innermost) win
    for a, b, op in sorted(ranges, key=lambda r: r[0] - r[1]):
        for ln in range(a, b + 1):
            ops[ln] = op
    glue = set()
    for a, b in functions(t):
        if any(a <= r[0] <= b for r in ranges):
            glue.update(range(a, b + 1))
    return ops, glue


# ---------------------------------------------------------------- ELF
def load_segments(path):
    segs = []
    for ln in sh([tool("readelf"), "-lW", path]).splitlines():
        f = ln.split()
        if f and f[0] == "LOAD":
            off, va, filesz = int(f[1], 16), int(f[2], 16), int(f[4], 16)
            segs.append((off, va, filesz))
    return segs


def va_to_off(segs, va):
    for off, v, sz in segs:
        if v <= va < v + sz:
            return va - v + off
    return None


def off_to_va(segs, off):
    for o, v, sz in segs:
        if o <= off < o + sz:
            return off - o + v
    return off


def cmd_regions(a):
    if a.srcdir == "-":  # no op table: only the passes (each call of an --entry function)
        enum, names, per_file, merged, segs = ["pass"], ["pass"], {}, [], load_segments(a.bin)
    else:
        enum, names = op_table(a.srcdir)
        per_file, merged, segs = regions_from_lines(a, enum)
    write_regions(a, enum, names, per_file, merged, segs)


def regions_from_lines(a, enum):
    per_file = {}
    for f in sorted(glob.glob(os.path.join(a.srcdir, "**", "*.c"), recursive=True)):
        if "/tests/" in f or "/bench/" in f:
            continue
        ops, glue = line_ops(f, enum)
        if ops:
            per_file[os.path.basename(f)] = (ops, glue)
    if not per_file:
        sys.exit("icount: no PROF(VM_OP_*) statements found under " + a.srcdir)
    GLUE = -1
    segs = load_segments(a.bin)
    rows = []  # (va, file, line or None)
    for ln in sh([tool("readelf"), "--debug-dump=decodedline", a.bin]).splitlines():
        m = re.match(r"^(\S+)\s+(\d+|-)\s+(0x[0-9a-f]+)", ln)
        if m:
            rows.append((int(m.group(3), 16), os.path.basename(m.group(1)),
                         None if m.group(2) == "-" else int(m.group(2))))
    marks = []
    for i, (va, fname, line) in enumerate(rows):
        if line is None or fname not in per_file or i + 1 == len(rows):
            continue
        end = rows[i + 1][0]
        if end <= va:
            continue
        ops, glue = per_file[fname]
        if line in ops:
            op = ops[line]
        elif line in glue:
            op = GLUE
        else:
            continue
        lo, hi = va_to_off(segs, va), va_to_off(segs, end - 1)
        if lo is None or hi is None:
            continue
        marks.append([lo, hi + 1, op])
    marks.sort()
    merged = []
    for m in marks:
        if merged and merged[-1][1] >= m[0] and merged[-1][2] == m[2]:
            merged[-1][1] = max(merged[-1][1], m[1])
        elif merged and merged[-1][1] > m[0]:  # overlapping rows: the later row owns its start
            merged[-1][1] = m[0]
            merged.append(m)
        else:
            merged.append(m)
    if not any(m[2] >= 0 for m in merged):
        sys.exit("icount: %s has no line table for the PROF statements: build it with -g (the default CFLAGS)" % a.bin)
    return per_file, merged, segs


def write_regions(a, enum, names, per_file, merged, segs):
    syms = {}
    for ln in sh([tool("nm"), "--defined-only", a.bin]).splitlines():
        f = ln.split()
        if len(f) == 3:
            syms[f[2]] = int(f[0], 16)
    entry_names = a.entry.split(",")
    entries = [syms[s] for s in entry_names if s in syms]
    if not entries:
        sys.exit("icount: none of the entry symbols %s in %s" % (a.entry, a.bin))
    exits = []
    pat = re.compile(r"^\s*([0-9a-f]+):\s+bl\s+[0-9a-f]+ <(%s)>" % "|".join(map(re.escape, entry_names)))
    for ln in sh([tool("objdump"), "-d", "--no-show-raw-insn", a.bin]).splitlines():
        m = pat.match(ln)
        if m:
            exits.append(int(m.group(1), 16) + 4)
    with open(a.o, "w") as o:
        o.write("# icount regions for %s (ops from %s)\n" % (a.bin, ", ".join(sorted(per_file))))
        o.write("nops %d\n" % len(enum))
        for i, n in enumerate(names):
            o.write("# op %d %s\n" % (i, n))
        for lo, hi, op in merged:
            o.write("mark %x %x %d\n" % (lo, hi, op))
        for e in entries:
            o.write("entry %x\n" % va_to_off(segs, e))
        for e in exits:
            o.write("exit %x\n" % va_to_off(segs, e))
    json.dump({"ops": names}, open(a.o + ".json", "w"))
    print("icount: %d ops, %d marked ranges in %s, %d entries, %d call sites" %
          (len(enum), len(merged), ", ".join(sorted(per_file)), len(entries), len(exits)), file=sys.stderr)


# ---------------------------------------------------------------- FLOPs
def gemm_macs(info, size, batch):
    """MACs of each GEMM-like op at size x size (v2/v2v/v0 classifier shapes,
    as forward.c runs them). Keys are the profile op names."""
    macs = collections.Counter()
    C0 = info["dims"][0]
    H = W = size
    if info.get("patch_embed_version", 1) == 1:
        p = info.get("patch_size", 4)
        h, w = (H + p - 1) // p, (W + p - 1) // p
        macs["patch_embed"] += h * w * C0 * 3 * p * p
    else:
        h1, w1 = (H + 1) // 2, (W + 1) // 2
        macs["patch_embed"] += h1 * w1 * (C0 // 2) * 3 * 9
        h, w = (h1 + 1) // 2, (w1 + 1) // 2
        macs["patch_embed"] += h * w * C0 * (C0 // 2) * 9
    N = info["d_state"]
    for s in range(4):
        C, D, R, Hd = info["dims"][s], info["d_inner"][s], info["dt_rank"][s], info["mlp_hidden"][s]
        T = h * w
        Din = D * (2 if info.get("z_gate") else 1)
        for _ in range(info["depths"][s]):
            macs["in_proj"] += T * C * Din
            macs["x_proj+dt_proj"] += T * D * 4 * (R + 2 * N) + 4 * T * R * D
            macs["out_proj"] += T * D * C
            if Hd:
                macs["mlp_gemm"] += 2 * T * C * Hd
        if s < 3:
            h2, w2 = (h + 1) // 2, (w + 1) // 2
            Cn = info["dims"][s + 1]
            if info.get("downsample_version", 1) == 1:
                macs["downsample"] += h2 * w2 * 4 * C * Cn
            else:
                macs["downsample"] += h2 * w2 * Cn * C * 9
            h, w = h2, w2
    if info.get("num_classes"):
        macs["head"] += info["dims"][3] * info["num_classes"]
    return {k: v * batch for k, v in macs.items()}


# ---------------------------------------------------------------- report
class Symbols:
    def __init__(self):
        self.cache = {}

    def lookup(self, path, off):
        if path.startswith("["):
            return "[jit code]" if path == "[anon]" else path
        if path not in self.cache:
            syms = []
            try:
                segs = load_segments(path)
                out = sh([tool("nm"), "-nSC", "--defined-only", path])
                if not re.search(r" [tTwW] ", out):
                    out = sh([tool("nm"), "-nSDC", "--defined-only", path])
                for ln in out.splitlines():
                    m = re.match(r"([0-9a-f]+) (?:([0-9a-f]+) )?([tTwWiI]) (.*)", ln)  # no size column when 0
                    if m:
                        syms.append((int(m.group(1), 16), int(m.group(2) or "0", 16), m.group(4)))
            except (subprocess.CalledProcessError, OSError):
                segs = []
            self.cache[path] = (segs, [x[0] for x in syms], syms)
        segs, addrs, syms = self.cache[path]
        va = off_to_va(segs, off)
        i = bisect.bisect_right(addrs, va) - 1
        # a library without its symbol table (Debian strips them) only names
        # its exported functions: code elsewhere is "(internal)"
        # (hand-written assembly kernels often have size 0: they extend to the next symbol)
        end = syms[i][0] + syms[i][1] if i >= 0 and syms[i][1] else (syms[i + 1][0] if 0 <= i < len(syms) - 1 else 0)
        name = syms[i][2] if i >= 0 and va < end else "(internal code%s)" % (", after " + syms[i][2] if i >= 0 else "")
        if len(name) > 90:
            name = name[:87] + "..."
        return "%s:%s" % (os.path.basename(path), name)


def obj_kind(path):
    b = os.path.basename(path)
    if path == "[anon]":
        return "jit"
    for k in ("libdnnl", "libgomp", "libc.", "libm.", "libstdc++", "ld-linux", "libjpeg", "libpng", "libjansson"):
        if b.startswith(k):
            return k.rstrip(".")
    return "vmamba" if b in ("vmamba", "lt-vmamba") or b.startswith("vm_") or b.startswith("gemm") else b


def is_int8_file(path):
    """An INT8 model file: a safetensors header with s8 tensors."""
    try:
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if n <= 0 or n > 1 << 28:
                return False
            return '"I8"' in f.read(n).decode("utf-8", "replace").replace(" ", "")
    except OSError:
        return False


def cmd_report(a):
    info = json.load(open(a.info)) if a.info else None
    if os.path.exists(a.model) and is_int8_file(a.model):
        a.int8 = True
    ops = json.load(open(a.regions + ".json"))["ops"] if a.regions else None
    segs_ins, tbs, outside = {}, [], 0
    nops = None
    for ln in open(a.tsv):
        if ln.startswith("#"):
            m = re.search(r"nops (\d+) measure (\d+)", ln)
            nops, measure = int(m.group(1)), int(m.group(2))
            continue
        f = ln.rstrip("\n").split("\t")
        if f[0] == "seg":
            segs_ins[int(f[1])] = int(f[2])
        elif f[0] == "outside":
            outside = int(f[1])
        elif f[0] == "tb":
            tbs.append((f[1], int(f[2], 16), int(f[3]), [int(x) for x in f[4:4 + len(CLASSES)]],
                        [int(x) for x in f[4 + len(CLASSES):]]))
    if ops is None:
        ops = ["op%d" % i for i in range(nops)]
    names = ops + ["(glue)"]
    per_op = [collections.Counter() for _ in names]
    per_obj = collections.defaultdict(collections.Counter)
    per_sym = collections.defaultdict(collections.Counter)
    symbols = Symbols()
    for path, off, n, cls, ex in tbs:
        for o, e in enumerate(ex[:len(names)]):
            if not e:
                continue
            per_op[o]["total"] += n * e
            for c, k in zip(CLASSES, cls):
                per_op[o][c] += k * e
            per_obj[names[o]][obj_kind(path)] += n * e
            if a.top:
                per_sym[names[o]][symbols.lookup(path, off)] += n * e
    total = sum(p["total"] for p in per_op)
    macs = gemm_macs(info, a.size, a.batch) if info else {}
    int8_ops = set(a.int8_ops.split(",")) if a.int8 else set()
    rows = []
    for o, nm in enumerate(names):
        p = per_op[o]
        if not p["total"]:
            continue
        r = {"op": nm, "instructions": p["total"], "share": p["total"] / total if total else 0}
        r.update({c: p[c] for c in CLASSES})
        if nm in macs:
            flops = 2 * macs[nm]
            r["gflop"] = flops / 1e9
            r["instructions_per_flop"] = p["total"] / flops
            if nm in int8_ops:
                ideal = macs[nm] / 16 if a.dotprod else macs[nm] * 3 / 16
                r["ideal_kind"] = "sdot" if a.dotprod else "smull+smlal2+sadalp"
            else:
                ideal = flops / 8
                r["ideal_kind"] = "fmla128"
            r["ideal_instructions"] = ideal
            r["x_ideal"] = p["total"] / ideal
        r["by_object"] = dict(per_obj[nm].most_common())
        if a.top:
            r["top_functions"] = [[s, c] for s, c in per_sym[nm].most_common(a.top)]
        rows.append(r)
    out = {"cpu": a.cpu, "model": a.model, "size": a.size, "batch": a.batch, "pass": measure,
           "instructions_per_forward": total, "passes": [segs_ins[i] for i in sorted(segs_ins)],
           "outside_passes": outside,
           "ops": rows}
    if info:
        out["gmacs"] = sum(macs.values()) / 1e9
    if a.json:
        json.dump(out, sys.stdout, indent=1)
        print()
        return
    print("instructions per forward: %s=%s  size %d, batch %d, pass %d  (qemu-aarch64 -cpu %s)" %
          ("model", a.model, a.size, a.batch, measure, a.cpu))
    hdr = "%-16s %10s %6s %7s %7s %7s %7s %7s %7s  %8s %8s %7s" % (
        "op", "Minsn", "share", "fmla%", "dot%", "imac%", "simd%", "ldst%", "other%", "GFLOP", "insn/FL", "xideal")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        t = r["instructions"]
        pc = lambda k: 100.0 * r[k] / t
        print("%-16s %10.1f %5.1f%% %7.1f %7.1f %7.1f %7.1f %7.1f %7.1f  %8s %8s %7s" % (
            r["op"], t / 1e6, 100 * r["share"], pc("fmla"), pc("dot"), pc("imac"), pc("simd"), pc("ldst"),
            100.0 * (r["branch"] + r["int"]) / t,
            "%.3f" % r["gflop"] if "gflop" in r else "", "%.3f" % r["instructions_per_flop"] if "gflop" in r else "",
            "%.1f" % r["x_ideal"] if "gflop" in r else ""))
    print("-" * len(hdr))
    print("%-16s %10.1f   (every pass: %s Minsn; outside them: %.0f Minsn)" % (
        "total", total / 1e6, ", ".join("%.0f" % (x / 1e6) for x in out["passes"]), outside / 1e6))
    gm = [r for r in rows if "gflop" in r]
    if gm:
        gi = sum(r["instructions"] for r in gm)
        gf = sum(r["gflop"] for r in gm) * 1e9
        print("GEMM/conv ops: %.1f Minsn for %.2f GFLOP = %.3f insn/FLOP; ideal %s (FP32 FMLA 0.125 insn/FLOP%s)" % (
            gi / 1e6, gf / 1e9, gi / gf, "%.1f Minsn" % (sum(r["ideal_instructions"] for r in gm) / 1e6),
            ", INT8 %s" % ("SDOT 0.031" if a.dotprod else "SMULL/SMLAL2/SADALP 0.094") if int8_ops else ""))
    if a.top:
        for r in rows:
            print("\n%s: %s" % (r["op"], ", ".join("%s %.0f%%" % (k, 100.0 * v / r["instructions"])
                                                   for k, v in r["by_object"].items())))
            for s, c in r["top_functions"]:
                print("   %5.1f%%  %s" % (100.0 * c / r["instructions"], s))


def cmd_calls(a):
    """Per-call counts of a program whose calls of one function are the
    passes (bench/xnn_gemm.c prints 'call I path precision layer M K N count')."""
    seg = {}
    for ln in open(a.tsv):
        f = ln.split()
        if f and f[0] == "seg":
            seg[int(f[1])] = int(f[2])
    rows = {}
    for ln in open(a.calls):
        f = ln.split()
        if len(f) < 9 or f[0] != "call" or (len(f) > 9 and f[9] == "warmup"):
            continue
        i, path, prec, layer = int(f[1]), f[2], f[3], f[4]
        M, K, N, count = map(int, f[5:9])
        macs = M * K * N
        ins = seg.get(i, 0)
        if prec == "fp32":
            ideal, kind = macs / 4, "fmla128"
        elif prec == "fp16":
            ideal, kind = macs / 8, "fmla128.8h"
        elif a.dotprod:
            ideal, kind = macs / 16, "sdot"
        else:
            ideal, kind = macs * 3 / 16, "smull+smlal2+sadalp"
        rows.setdefault(layer, {"layer": layer, "M": M, "K": K, "N": N, "count": count})[path + "_" + prec] = {
            "instructions": ins, "instructions_per_flop": ins / (2 * macs), "ideal": ideal, "ideal_kind": kind,
            "x_ideal": ins / ideal}
    rows = list(rows.values())
    cols = [c for c in ("dnnl_fp32", "xnnpack_fp32", "dnnl_int8", "xnnpack_int8", "xnnpack_fp16") if any(c in r for r in rows)]
    # forward totals: an INT8 model runs in_proj/out_proj/fc1/fc2 in INT8, the rest in FP32
    tot = collections.Counter()
    for r in rows:
        if r["layer"].startswith(("pe.", "ds.")) or "dwconv" in r["layer"]:
            for k, v in r.items():
                if isinstance(v, dict):
                    key = "xnnpack_dwconv" if "dwconv" in r["layer"] else "xnnpack_conv"
                    tot[key] += v["instructions"] * r["count"]
                    tot[key + "_ideal"] += v["ideal"] * r["count"]
            continue
        q = any(k in r["layer"] for k in ("in_proj", "out_proj", "fc1", "fc2"))
        for lib in ("dnnl", "xnnpack"):
            for prec in ("fp32", "int8", "fp16"):
                src = r.get(lib + "_" + (prec if prec != "int8" or q else "fp32"))
                if src:
                    tot[lib + "_" + prec] += src["instructions"] * r["count"]
                    tot[lib + "_" + prec + "_ideal"] += src["ideal"] * r["count"]
    if a.json:
        json.dump({"cpu": a.cpu, "layers": rows, "per_forward": dict(tot)}, sys.stdout, indent=1)
        print()
        return
    print("instructions per call, qemu-aarch64 -cpu %s; x = multiple of the ideal (%s)" % (
        a.cpu, "FP32 FMLA 8 FLOP/insn, INT8 " + ("SDOT 16 MAC/insn" if a.dotprod else "SMULL+SMLAL2+SADALP 16 MAC/3 insn")))
    hdr = "%-12s %5s %5s %5s %3s" % ("layer", "M", "K", "N", "n") + "".join(" %20s" % c for c in cols)
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        line = "%-12s %5d %5d %5d %3d" % (r["layer"], r["M"], r["K"], r["N"], r["count"])
        for c in cols:
            v = r.get(c)
            line += " %20s" % ("%.2fM %5.3f/F %5.1fx" % (v["instructions"] / 1e6, v["instructions_per_flop"], v["x_ideal"])
                                if v else "")
        print(line)
    print("-" * len(hdr))
    print("per forward (x n; INT8 = in_proj/out_proj/fc1/fc2 INT8, x_proj/dt_proj/head FP32):")
    for k in ("dnnl_fp32", "xnnpack_fp32", "dnnl_int8", "xnnpack_int8", "xnnpack_fp16", "xnnpack_conv", "xnnpack_dwconv"):
        if tot[k] and (k.endswith("fp32") or k.endswith("conv") or any(k in r for r in rows)):
            print("  %-13s %9.1f Minsn  (ideal %.1f, %.2fx)" % (k, tot[k] / 1e6, tot[k + "_ideal"] / 1e6,
                                                              tot[k] / tot[k + "_ideal"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd")
    r = sub.add_parser("regions")
    r.add_argument("bin")
    r.add_argument("srcdir", help="source tree with the PROF statements, or - for passes only")
    r.add_argument("-o", required=True)
    r.add_argument("--entry", default="vm_forward,vm_forward_features,vm_ctx_forward,vm_ctx_forward_features")
    p = sub.add_parser("report")
    p.add_argument("tsv")
    p.add_argument("--regions")
    p.add_argument("--info")
    p.add_argument("--model", default="?")
    p.add_argument("--cpu", default="?")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--int8", action="store_true", help="the model's linear layers are INT8")
    p.add_argument("--int8-ops", default="in_proj,out_proj,mlp_gemm")
    p.add_argument("--dotprod", action="store_true", help="the CPU has SDOT (ideal for INT8)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--top", type=int, default=0, help="list the N hottest functions of each op")
    c = sub.add_parser("calls")
    c.add_argument("tsv")
    c.add_argument("calls")
    c.add_argument("--cpu", default="?")
    c.add_argument("--dotprod", action="store_true")
    c.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if a.cmd == "calls":
        cmd_calls(a)
    elif a.cmd == "regions":
        cmd_regions(a)
    elif a.cmd == "report":
        cmd_report(a)
    else:
        ap.print_help()


if __name__ == "__main__":
    main()
