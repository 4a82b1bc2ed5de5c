#!/bin/sh
# cli_test.sh - the vmamba command's contract: outputs, exit codes, errors.
set -u
BIN=${VMAMBA_BIN:-./vmamba}
case $BIN in /*) ;; *) BIN=$(pwd)/$BIN ;; esac
RUN=${VMAMBA_RUNNER:-}   # e.g. "qemu-aarch64 -L /" for a cross build
# A shared build's ./vmamba is libtool's wrapper script: a runner (qemu) needs the ELF itself.
if [ -n "$RUN" ] && [ -x "$(dirname "$BIN")/.libs/vmamba" ] && ! head -c 4 "$BIN" | grep -q ELF; then
    LD_LIBRARY_PATH=$(dirname "$BIN")/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}; export LD_LIBRARY_PATH
    BIN=$(dirname "$BIN")/.libs/vmamba
fi
vm() { $RUN "$BIN" "$@"; }
# The ELF behind $BIN (a shared build's ./vmamba is a wrapper script), for nm.
ELF=$BIN
if ! head -c 4 "$BIN" | grep -q ELF && [ -x "$(dirname "$BIN")/.libs/vmamba" ]; then ELF=$(dirname "$BIN")/.libs/vmamba; fi
DATA=${VMAMBA_TEST_DATA:-tests/data}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
expect_fail() { # expect_fail "needle" cmd...
    needle=$1; shift
    if "$@" >"$T/out" 2>"$T/err"; then bad "$* succeeded"; return; fi
    grep -q -- "$needle" "$T/err" && grep -q "^vmamba: " "$T/err" && ok || bad "$*: stderr lacks '$needle': $(cat "$T/err")"
}

vm --help | grep -q "Usage: vmamba" && ok || bad "--help"
for c in info run; do vm $c --help | grep -q "Usage: vmamba $c" && ok || bad "$c --help"; done
vm info "$DATA/digits/model.pth" --json | grep -q '"params": 1012930' && ok || bad "info --json params"
vm info vmamba-tiny-s1l8 | grep -q "params: *30" && ok || bad "info preset"
VMAMBA_ISA=scalar vm info "$DATA/digits/model.pth" --json | grep -q '"isa": "scalar"' && ok || bad "info --json isa"
vm run -m "$DATA/v2_s2/model.pth" -i "$DATA/v2_s2/input.npy" -o "$T/l.npy" --threads 1 && [ -s "$T/l.npy" ] && ok || bad "run"
vm run -m "$DATA/backbone_v2/model.pth" -i "$DATA/backbone_v2/input.npy" -o "$T/f" --features && [ -s "$T/f/feat3.npy" ] && ok || bad "run --features"
vm run -m "$DATA/digits/model.pth" -i "$DATA/digits/test_input.npy" -o "$T/d.npy" --print > "$T/p.jsonl" && [ "$(wc -l < "$T/p.jsonl")" -eq 200 ] && grep -q "\"class\": " "$T/p.jsonl" && ok || bad "run --print"
expect_fail "unknown command" vm frobnicate
expect_fail "needs --device cuda" vm run -m "$DATA/digits/model.pth" -i "$DATA/digits/test_input.npy" -o "$T/x.npy" --precision tf32
# --precision fp16 on the CPU: runs on ARMv8.2 cores with FP16 arithmetic on the XNNPACK path (same argmax as FP32 on
# digits), a clear error elsewhere
if vm run -m "$DATA/digits/model.pth" -i "$DATA/digits/test_input.npy" -o "$T/h.npy" --print --precision fp16 > "$T/ph.jsonl" 2> "$T/err"; then
    [ "$(grep -o '"class": [0-9]*' "$T/ph.jsonl")" = "$(vm run -m "$DATA/digits/model.pth" -i "$DATA/digits/test_input.npy" -o "$T/h32.npy" --print | grep -o '"class": [0-9]*')" ] && ok || bad "run --precision fp16: argmax differs from fp32"
else
    grep -q "^vmamba: --precision fp16: fp16 on the CPU needs an aarch64 core" "$T/err" && ok || bad "run --precision fp16: $(cat "$T/err")"
fi
# --precision bf16 on the CPU: runs where oneDNN sees avx512_bf16/AMX (same argmax as FP32 on digits), a clear error elsewhere
if vm run -m "$DATA/digits/model.pth" -i "$DATA/digits/test_input.npy" -o "$T/b.npy" --print --precision bf16 > "$T/pb.jsonl" 2> "$T/err"; then
    [ "$(grep -o '"class": [0-9]*' "$T/pb.jsonl")" = "$(grep -o '"class": [0-9]*' "$T/p.jsonl")" ] && ok || bad "run --precision bf16: argmax differs from fp32"
else
    grep -q "avx512_bf16" "$T/err" && ok || bad "run --precision bf16: $(cat "$T/err")"
fi
expect_fail "unknown option '--bogus'" vm run --bogus
expect_fail "not an integer" vm run -m x -i y -o z --threads zero
expect_fail "No such file" vm info /nonexistent.pth
expect_fail "expected shape (N, 3, H, W)" vm run -m "$DATA/v2_s2/model.pth" -i "$DATA/v2_s2/logits.npy" -o "$T/x.npy"
expect_fail "not a .npy" vm run -m "$DATA/v2_s2/model.pth" -i "$DATA/v2_s2/config.json" -o "$T/x.npy"
expect_fail "use --features" vm run -m "$DATA/backbone_v2/model.pth" -i "$DATA/backbone_v2/input.npy" -o "$T/x.npy"
[ ! -e "$T/x.npy" ] && ok || bad "partial output left behind"
expect_fail "cannot create" vm run -m "$DATA/v2_s2/model.pth" -i "$DATA/v2_s2/input.npy" -o /nonexistent/dir/x.npy

# ---- images: preprocess, classify, eval, batch jobs -----------------------
P="$DATA/preprocess"
vm preprocess "$P/china.jpg" -o "$T/china.npy" && [ -s "$T/china.npy" ] && ok || bad "preprocess"
expect_fail "unsupported image format" vm preprocess "$DATA/v2_s1/config.json" -o "$T/x.npy"
expect_fail "must be a number in \[0.01, 1\]" vm preprocess "$P/china.jpg" -o "$T/x.npy" --crop-pct 2
[ ! -e "$T/x.npy" ] && ok || bad "partial output after a failed preprocess"
M="$DATA/digits/model.pth"
grep -e '^file,' -e '^test/' "$DATA/digits/labels.csv" > "$T/test.csv"
vm eval -m "$M" --images "$DATA/digits" --labels "$T/test.csv" --size 32 --no-crop --json > "$T/eval.json" &&
    grep -q '"top1": 0.990000' "$T/eval.json" && grep -q '"n": 200' "$T/eval.json" && ok || bad "eval digits: $(cat "$T/eval.json")"
expect_fail "expected 'file,label'" vm eval -m "$M" --images "$DATA/digits" --labels "$DATA/digits/README.md"
# classify with a sidecar next to the model: no flags needed
cp "$M" "$T/dg.pth"
printf '{"size": 32, "crop": false, "labels": ["zero","one","two","three","four","five","six","seven","eight","nine"]}\n' > "$T/dg.json"
vm classify -m "$T/dg.pth" --topk 1 --json "$DATA/digits/test/000.png" > "$T/c.jsonl" &&
    grep -q '"class": 9, "prob": 0\.[0-9]*, "label": "nine"' "$T/c.jsonl" && ok || bad "classify with sidecar: $(cat "$T/c.jsonl")"
printf '{"size": "big"}\n' > "$T/dg.json"
expect_fail "'size' must be an integer" vm classify -m "$T/dg.pth" "$DATA/digits/test/000.png"
rm "$T/dg.json"
# batch job: list with a missing file, shards, resume
ls "$DATA"/digits/test/*.png | head -20 > "$T/list.txt"
echo "/nonexistent/img.png" >> "$T/list.txt"
vm classify -m "$M" --size 32 --no-crop --list "$T/list.txt" --output "$T/all.jsonl" --batch 4 --quiet 2>"$T/err"
[ $? -eq 3 ] && [ "$(wc -l < "$T/all.jsonl")" -eq 21 ] && grep -q '"index": 20, "file": "/nonexistent/img.png", "error"' "$T/all.jsonl" &&
    ok || bad "batch list with an error record"
sed -n 's/.*"index": \([0-9]*\),.*/\1/p' "$T/all.jsonl" | tr '\n' ' ' | grep -q "^0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 $" && ok || bad "output not in input order"
vm classify -m "$M" --size 32 --no-crop --list "$T/list.txt" --output "$T/s1.jsonl" --shard 1/3 --quiet 2>/dev/null
[ "$(wc -l < "$T/s1.jsonl")" -eq 7 ] && ! grep -q '"index": 0,' "$T/s1.jsonl" && grep -q '"index": 19,' "$T/s1.jsonl" && ok || bad "shard 1/3"
head -5 "$T/all.jsonl" > "$T/res.jsonl"
vm classify -m "$M" --size 32 --no-crop --list "$T/list.txt" --output "$T/res.jsonl" --resume --quiet 2>/dev/null
[ "$(wc -l < "$T/res.jsonl")" -eq 21 ] && [ "$(sed -n 's/.*"index": \([0-9]*\),.*/\1/p' "$T/res.jsonl" | sort -n | uniq | wc -l)" -eq 21 ] && ok || bad "resume"
expect_fail "--resume needs --output" vm classify -m "$M" --list "$T/list.txt" --resume
expect_fail "must be I/N" vm classify -m "$M" --list "$T/list.txt" --shard 3/3
# ---- convert: safetensors with metadata; every command takes it -----------
vm convert "$M" -o "$T/dg.safetensors" --size 32 --no-crop --labels "$DATA/digits/../imagenet_classes.txt" 2>"$T/err" &&
    [ -s "$T/dg.safetensors" ] && ok || bad "convert: $(cat "$T/err")"
vm classify -m "$T/dg.safetensors" --topk 1 --json "$DATA/digits/test/000.png" > "$T/c2.jsonl" &&
    grep -q '"class": 9, "prob": 0\.[0-9]*, "label": "ostrich"' "$T/c2.jsonl" && ok || bad "classify from safetensors metadata: $(cat "$T/c2.jsonl")"
vm info "$T/dg.safetensors" --json | grep -q '"params": 1012930' && ok || bad "info safetensors"
vm run -m "$T/dg.safetensors" -i "$DATA/digits/test_input.npy" -o "$T/st.npy" && vm run -m "$M" -i "$DATA/digits/test_input.npy" -o "$T/pth.npy" &&
    cmp -s "$T/st.npy" "$T/pth.npy" && ok || bad "run: safetensors and pth logits differ"
expect_fail "is not f32, f16 or bf16" vm convert "$M" -o "$T/x.safetensors" --dtype f8
[ ! -e "$T/x.safetensors" ] && ok || bad "partial output after a failed convert"
# #16.7: a 2^32-1-class head is refused, naming the tensor (before: 'classes: -1', and convert wrote it)
expect_fail "'classifier.head.weight' has a dimension of 4294967295" vm convert "$DATA/hostile/classes_2e32.pth" -o "$T/x.safetensors"
[ ! -e "$T/x.safetensors" ] && ok || bad "convert wrote a model it cannot load"
# ---- calibrate: deterministic INT8 files, clear errors ---------------------
vm calibrate -m "$M" --images "$DATA/digits/calib" --samples 20 --size 32 --no-crop -o "$T/q1.safetensors" --quiet 2>"$T/err" &&
    vm calibrate -m "$M" --images "$DATA/digits/calib" --samples 20 --size 32 --no-crop -o "$T/q2.safetensors" --quiet 2>>"$T/err" &&
    cmp -s "$T/q1.safetensors" "$T/q2.safetensors" && ok || bad "calibrate not deterministic: $(cat "$T/err")"
[ "$(wc -c < "$T/q1.safetensors")" -lt "$(wc -c < "$M")" ] && ok || bad "INT8 file not smaller"
# #13: --report says what runs: the convolutions are s8 in the file and computed in FP32 by default
vm calibrate -m "$M" --images "$DATA/digits/calib" --samples 8 --size 32 --no-crop --report -o "$T/qr.safetensors" --quiet 2>"$T/err" &&
    grep -q "^patch_embed.0 .*(s8 storage, FP32 compute; INT8 with --int8-convs)" "$T/err" && ok ||
    bad "calibrate --report: patch_embed.0 not labelled s8 storage, FP32 compute: $(grep patch_embed "$T/err")"
vm eval -m "$T/q1.safetensors" --images "$DATA/digits" --labels "$T/test.csv" --json | grep -q '"top1": 0.99' && ok || bad "INT8 eval"
# entropy clipping and SmoothQuant: working models (top-1 unchanged on the digits)
for opt in "--method entropy" "--smooth 0.5" "--method percentile --percentile 99.9" "--dynamic"; do
    vm calibrate -m "$M" --images "$DATA/digits/calib" --size 32 --no-crop -o "$T/qo.safetensors" --quiet $opt 2>"$T/err" &&
        vm eval -m "$T/qo.safetensors" --images "$DATA/digits" --labels "$T/test.csv" --json | grep -q '"top1": 0.99' &&
        ok || bad "calibrate $opt: $(cat "$T/err")"
done
expect_fail "must be a number in \[0, 1\]" vm calibrate -m "$M" --images "$DATA/digits/calib" --smooth 2 -o "$T/q3.safetensors"
mkdir -p "$T/empty"
expect_fail "no JPEG or PNG images" vm calibrate -m "$M" --images "$T/empty" -o "$T/q3.safetensors"
expect_fail "not a zip archive" vm calibrate -m "$DATA/digits/labels.csv" --images "$DATA/digits/calib" -o "$T/q3.safetensors"
expect_fail "already an INT8 model" vm calibrate -m "$T/q1.safetensors" --images "$DATA/digits/calib" -o "$T/q3.safetensors"
expect_fail "not minmax, percentile or entropy" vm calibrate -m "$M" --images "$DATA/digits/calib" --method magic -o "$T/q3.safetensors"
expect_fail "are for segmentation and detection models" vm calibrate -m "$M" --images "$DATA/digits/calib" --target-cosine 0.9999 -o "$T/q3.safetensors"
expect_fail "needs --images" vm calibrate -m "$DATA/det_maskrcnn/model.pth" --inputs "$T/none.npy" --target-cosine 0.9999 -o "$T/q3.safetensors"
expect_fail "must be a number in \[0.5, 1\]" vm calibrate -m "$M" --images "$DATA/digits/calib" --target-cosine 2 -o "$T/q3.safetensors"
[ ! -e "$T/q3.safetensors" ] && ok || bad "partial output after a failed calibrate"

# ---- the option parser: every command, strict values, exit 2 on usage errors --
expect_usage() { # expect_usage "needle" cmd...: exit status 2 and the needle on stderr
    needle=$1; shift
    "$@" >"$T/out" 2>"$T/err"; r=$?
    [ $r -eq 2 ] && grep -q -- "$needle" "$T/err" && ok || bad "$* (exit $r, want 2): $(cat "$T/err")"
}
for c in info run preprocess classify eval bench convert calibrate; do
    vm $c --help > "$T/h" && grep -q "Usage: vmamba $c" "$T/h" && grep -q -- "--help" "$T/h" && ok || bad "$c --help"
    expect_usage "unknown option '--frob'" vm $c --frob
done
vm classify --help | grep -q -- "--list0 FILE" && vm classify --help | grep -q -- "--crop-pct P" && vm classify --help | grep -q -- "--device D" &&
    ok || bad "classify --help lacks shared options"
expect_usage "not an integer in \[1, 1024\]" vm classify -m "$M" --batch 2junk x.png
expect_usage "not an integer in \[1, 1024\]" vm classify -m "$M" --batch "" x.png
expect_usage "not an integer in \[1, 1024\]" vm classify -m "$M" --batch " 4" x.png
expect_usage "not an integer in \[1, 1024\]" vm classify -m "$M" --batch 99999999999999999999 x.png
expect_usage "not an integer in \[8, 8192\]" vm bench --arch vmamba-tiny-s1l8 --size 4
expect_usage "needs a value" vm classify -m "$M" x.png --topk
expect_usage "must be a number in \[0.01, 1\]" vm classify -m "$M" --crop-pct nan x.png
expect_usage "must be a number in \[0.01, 1\]" vm classify -m "$M" --crop-pct 0.5x x.png
expect_usage "is not cpu, cuda or cuda:N" vm run -m x -i y -o z --device tpu
expect_usage "is not cpu, cuda or cuda:N" vm classify -m x --device cuda:x y.jpg
expect_usage "is not cpu, cuda or cuda:N" vm bench --device cuda:
expect_usage "three numbers" vm preprocess "$P/china.jpg" -o "$T/x.npy" --mean 1,2
expect_usage "three positive numbers" vm preprocess "$P/china.jpg" -o "$T/x.npy" --std 1,0,1
expect_usage "takes no value" vm classify -m "$M" --json=1 x.png
expect_usage "more than 1 MODEL" vm info a b
expect_usage "unexpected argument" vm run -m x -i y -o z extra
expect_usage "-m MODEL is required" vm classify x.png
expect_fail "resizes the shorter side to 22400 pixels" vm classify -m "$M" --crop-pct 0.01 "$DATA/digits/test/000.png"
# --name=value and "--" before a positional that starts with a dash
cp "$DATA/digits/test/000.png" "$T/-dash.png"
MA=$(cd "$(dirname "$M")" && pwd)/model.pth
(cd "$T" && $RUN "$BIN" classify -m "$MA" --size=32 --no-crop --topk=1 --json -- -dash.png) | grep -q '"file": "-dash.png", "top": \[{"class": 9' &&
    ok || bad "--name=value and --"
vm --version | grep -q "^vmamba 0\.2\.0$" && ok || bad "--version"
# the man page documents every option of every command's --help
MAN="$DATA/../../vmamba.1"
if [ -f "$MAN" ]; then
    for c in info run preprocess classify eval bench convert calibrate segment detect; do
        grep -q "^\.SS $c" "$MAN" || bad "vmamba.1 lacks the command $c"
        for o in $(vm $c --help | grep -o -- '--[a-z0-9][a-z0-9-]*' | sort -u); do
            grep -q -F -- "$(printf '%s' "$o" | sed 's/-/\\-/g')" "$MAN" && ok || bad "vmamba.1 lacks $c $o"
        done
    done
fi

# ---- hardening (#16): devices, torn resume files, odd names, signals ------
SHIM=${VMAMBA_SHIM:-}
[ -n "$RUN" ] && SHIM=""   # LD_PRELOAD would apply to the emulator, not the target
# ASan wants its runtime first: let a preloaded shim come before it
ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0"; export ASAN_OPTIONS
valid_jsonl() { # every line of $1 parses as JSON
    if command -v jq >/dev/null 2>&1; then jq -e . "$1" >/dev/null 2>&1
    elif command -v python3 >/dev/null 2>&1; then python3 -c 'import json,sys
for l in open(sys.argv[1], "rb"): json.loads(l.decode("utf-8"))' "$1" 2>/dev/null
    else return 0; fi
}
CL="vm classify -m $M --size 32 --no-crop --quiet"
TCL="timeout 60 $RUN $BIN classify -m $M --size 32 --no-crop --quiet"
# 5: a FIFO or a device in a list is an error record, never a hang or an unbounded read
mkfifo "$T/fifo.png"
printf '%s\n' "$T/fifo.png" /dev/zero "$DATA/digits/test/000.png" > "$T/dev.txt"
$TCL --list "$T/dev.txt" --output "$T/dev.jsonl" 2>"$T/err"; r=$?
[ $r -eq 3 ] && [ "$(grep -c '"error": .*not a regular file' "$T/dev.jsonl")" -eq 2 ] && grep -q '"index": 2, .*"top"' "$T/dev.jsonl" &&
    ok || bad "FIFO/device in --list (exit $r): $(cat "$T/dev.jsonl" "$T/err" 2>/dev/null | head -5)"
mkdir -p "$T/cal"; cp "$DATA"/digits/calib/00[0-7].png "$T/cal/"; mkfifo "$T/cal/zz.png"
timeout 60 $RUN "$BIN" calibrate -m "$M" --images "$T/cal" --size 32 --no-crop -o "$T/qf.safetensors" --quiet 2>"$T/err"; r=$?
[ $r -eq 0 ] && grep -q "zz.png: not a regular file" "$T/err" && ok || bad "FIFO in calibrate --images (exit $r): $(head -3 "$T/err")"
# 6: --resume after a torn last line: no invalid line, no lost record
{ head -5 "$T/all.jsonl"; printf '{"index": 5, "file": "/tmp/x'; } > "$T/torn.jsonl"
$CL --list "$T/list.txt" --output "$T/torn.jsonl" --resume 2>/dev/null
[ "$(wc -l < "$T/torn.jsonl")" -eq 21 ] && valid_jsonl "$T/torn.jsonl" &&
    [ "$(sed -n 's/.*"index": \([0-9]*\),.*/\1/p' "$T/torn.jsonl" | sort -n | uniq | wc -l)" -eq 21 ] && ok || bad "resume after a torn line: $(head -c 600 "$T/torn.jsonl")"
# 6: error records are flushed as they are written (the job is still running here)
mkfifo "$T/feed"
$CL --list - --output "$T/flush.jsonl" --batch 1 < "$T/feed" 2>/dev/null &
pid=$!
exec 7>"$T/feed"
echo /nonexistent/a.png >&7
i=0; while [ $i -lt 100 ] && ! grep -q '"error"' "$T/flush.jsonl" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
grep -q '"index": 0, .*"error"' "$T/flush.jsonl" 2>/dev/null && ok || bad "error record not flushed while the job runs"
exec 7>&-
wait $pid
# resume index beyond any bitmap: no huge allocation, no crash
printf '{"index": 1099511627776, "file": "x", "top": []}\n{"index": 99999999999999999999, "file": "y"}\n' > "$T/huge.jsonl"
$CL --list "$T/list.txt" --output "$T/huge.jsonl" --resume 2>"$T/err"; r=$?
[ $r -eq 3 ] && [ "$(wc -l < "$T/huge.jsonl")" -eq 23 ] && ok || bad "resume with index 2^40 (exit $r): $(head -3 "$T/err")"
# 8: non-UTF-8 names and names with newlines; --list0
bn=$(printf 'bad\377\376name.png'); nl=$(printf 'new\nline.png')
cp "$DATA/digits/test/000.png" "$T/$bn"; cp "$DATA/digits/test/001.png" "$T/$nl"
printf '%s\n' "$T/$bn" > "$T/utf.txt"
$CL --list "$T/utf.txt" --output "$T/utf.jsonl" 2>/dev/null && valid_jsonl "$T/utf.jsonl" && grep -q 'bad\\ufffd\\ufffdname.png' "$T/utf.jsonl" &&
    grep -q '"file_hex": "' "$T/utf.jsonl" && ok || bad "non-UTF-8 name in JSON: $(cat "$T/utf.jsonl")"
$CL --json "$T/$bn" > "$T/utf2.jsonl" 2>/dev/null && valid_jsonl "$T/utf2.jsonl" && ok || bad "non-UTF-8 name, --json: $(cat "$T/utf2.jsonl")"
printf '%s\0%s\0' "$T/$nl" "$T/$bn" > "$T/l0.txt"
$CL --list0 "$T/l0.txt" --output "$T/l0.jsonl" 2>"$T/err" && [ "$(wc -l < "$T/l0.jsonl")" -eq 2 ] && valid_jsonl "$T/l0.jsonl" &&
    grep -q 'new\\nline.png", "top"' "$T/l0.jsonl" && ok || bad "--list0: $(cat "$T/l0.jsonl" "$T/err")"
cp "$T/list.txt" "$T/same.txt"; ln "$T/same.txt" "$T/same-link.txt"
expect_fail "is the --list file" $CL --list "$T/same.txt" --output "$T/same-link.txt"
cmp -s "$T/list.txt" "$T/same.txt" && ok || bad "--output over --list destroyed the list"
expect_fail "is the --list file" $CL --list - --output "$T/same.txt" < "$T/same.txt"
cmp -s "$T/list.txt" "$T/same.txt" && ok || bad "--output over --list - destroyed the list"
for s in 1/4294967296 /2 0/2junk 1/0 -1/2 2/2 1/ 0x1/2 " 1/2"; do
    expect_fail "--shard" $CL --list "$T/list.txt" --shard "$s"
done
# 9: a killed writer leaves no temporary file
if [ -n "$SHIM" ] && [ -e "$SHIM" ]; then
    for w in "convert $M -o $T/k.safetensors" "calibrate -m $M --images $T/cal --size 32 --no-crop -o $T/k.safetensors --quiet"; do
        for sig in TERM HUP; do  # (a background job of sh ignores SIGINT)
            rm -f "$T"/k.safetensors* "$T/err"
            LD_PRELOAD=$SHIM VMAMBA_SHIM_RENAME_STALL=1 timeout -s KILL 60 "$BIN" $w 2>"$T/err" & pid=$!
            i=0; while [ $i -lt 300 ] && ! grep -q "rename stalled" "$T/err" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
            ls "$T"/k.safetensors.tmp.* >/dev/null 2>&1 || bad "$w: no temp file seen while stalled"
            kill -$sig $pid; wait $pid; r=$?
            [ $r -gt 128 ] && ! ls "$T"/k.safetensors* >/dev/null 2>&1 && ok || bad "SIG$sig during '$w' (exit $r) left: $(ls "$T"/k.safetensors* 2>&1)"
        done
    done
    # B: a failed pthread_create is reported and the job still completes
    LD_PRELOAD=$SHIM VMAMBA_SHIM_PTHREAD_FAIL=1 "$BIN" classify -m "$M" --size 32 --no-crop --quiet --list "$T/list.txt" --output "$T/nt.jsonl" --batch 4 2>"$T/err"; r=$?
    [ $r -eq 3 ] && [ "$(wc -l < "$T/nt.jsonl")" -eq 21 ] && grep -q "decoding in the main thread" "$T/err" && ok || bad "pthread_create failure (exit $r): $(cat "$T/err")"
else
    echo "SKIP: no failure shim (VMAMBA_SHIM) for the signal and pthread tests"
fi
# 3 (CLI part): option values that drive allocation are bounded; no unchecked malloc
expect_fail "--crop-pct" vm preprocess "$P/china.jpg" -o "$T/x.npy" --crop-pct 0.001
if ! nm "$ELF" 2>/dev/null | grep -q __asan_init; then  # ASan needs its large address space
    (ulimit -v 1500000; vm preprocess "$P/china.jpg" -o "$T/x.npy" --size 16384 --no-crop) >/dev/null 2>"$T/err"; r=$?
    [ $r -eq 1 ] && grep -q "out of memory" "$T/err" && ok || bad "--size 16384 under a 1.5 GB limit (exit $r): $(head -3 "$T/err")"
fi
# ---- segment (mmseg UPerNet) ------------------------------------------------
S="$DATA/seg_upernet"
vm segment --help | grep -q "Usage: vmamba segment" && ok || bad "segment --help"
# mini has no near-tie pixel (top1-top2 margin >= 3.7e-4): the label map is the golden's byte for byte
vm segment -m "$S/model.pth" "$S/mini.png" --scale 2048,36 --raw "$T/m.npy" -o "$T/m.png" --overlay "$T/mo.png" --threads 2 >"$T/out" &&
    cmp -s "$T/m.npy" "$S/mini_label.npy" && ok || bad "segment --raw equals the golden label map"
head -c 8 "$T/m.png" | od -An -c | grep -q "P   N   G" && head -c 8 "$T/mo.png" | od -An -c | grep -q "P   N   G" && ok || bad "segment -o / --overlay write PNGs"
grep -q "mini.png (37x25, inferred at 53x36): tree 15.9%" "$T/out" && ok || bad "segment text summary: $(cat "$T/out")"
vm segment -m "$S/model.pth" "$S/mini.png" --scale 2048,36 --json | grep -q '"classes":\[{"id":4,"pixels":147,"share":0.158918918918918[0-9]*,"name":"tree"}' && ok || bad "segment --json"
printf '%s\n%s\n%s\n' "$S/mini.png" "$DATA/v2_s1/config.json" "$S/mini.png" > "$T/seg.list"
vm segment -m "$S/model.pth" --scale 2048,36 --list "$T/seg.list" --output-dir "$T/segout" --json > "$T/seg.jsonl" 2>"$T/err"
[ $? -eq 3 ] && [ "$(grep -c '"error"' "$T/seg.jsonl")" -eq 1 ] && [ "$(grep -c '"classes"' "$T/seg.jsonl")" -eq 2 ] &&
    cmp -s "$T/segout/0_mini_label.npy" "$S/mini_label.npy" && [ -s "$T/segout/2_mini_overlay.png" ] && ok || bad "segment --list: bad image is an error record, the job goes on, exit 3"
# --list outputs are named DIR/<index>_<name>_*, like detect's: two images of one name in different folders
mkdir -p "$T/sa" "$T/sb" && cp "$S/mini.png" "$T/sa/mini.png" && cp "$DATA/png/rgb8.png" "$T/sb/mini.png"
printf '%s\n%s\n' "$T/sa/mini.png" "$T/sb/mini.png" > "$T/same.list"
vm segment -m "$S/model.pth" --scale 2048,36 --list "$T/same.list" --output-dir "$T/segsame" >/dev/null 2>&1 &&
    cmp -s "$T/segsame/0_mini_label.npy" "$S/mini_label.npy" && [ -s "$T/segsame/1_mini_label.npy" ] &&
    ! cmp -s "$T/segsame/0_mini_label.npy" "$T/segsame/1_mini_label.npy" && ok ||
    bad "segment --list: equal file names from two folders overwrite each other: $(ls "$T/segsame" | tr '\n' ' ')"
expect_fail "same name 'mini'" vm segment -m "$S/model.pth" "$T/sa/mini.png" "$T/sb/mini.png" --output-dir "$T/segsame2"
# --shard 1/2 takes line 1 only (the bad one); --resume then skips what is done
rm -rf "$T/segout2"
vm segment -m "$S/model.pth" --scale 2048,36 --list "$T/seg.list" --output-dir "$T/segout2" --shard 0/2 --json > "$T/s0.jsonl" &&
    [ "$(grep -c '"classes"' "$T/s0.jsonl")" -eq 2 ] && ok || bad "segment --shard 0/2"
vm segment -m "$S/model.pth" --scale 2048,36 --list "$T/seg.list" --output-dir "$T/segout2" --shard 1/2 --json > "$T/s1.jsonl" 2>"$T/err"
[ $? -eq 3 ] && [ "$(grep -c '"error"' "$T/s1.jsonl")" -eq 1 ] && ok || bad "segment --shard 1/2"
vm segment -m "$S/model.pth" --scale 2048,36 --list "$T/seg.list" --output-dir "$T/segout2" --shard 0/2 --resume --json > "$T/s2.jsonl" &&
    [ ! -s "$T/s2.jsonl" ] && ok || bad "segment --resume skips done images"
expect_fail "decode_head" vm segment -m "$DATA/v2_s1/model.pth" "$S/mini.png" -o "$T/x.png"
expect_fail "decode_head" vm segment -m "$DATA/backbone_v2/model.pth" "$S/mini.png" -o "$T/x.png"
expect_fail "corrupt PNG" sh -c "head -c 300 '$S/mini.png' > '$T/trunc.png'; exec $RUN '$BIN' segment -m '$S/model.pth' '$T/trunc.png' -o '$T/x.png'"
[ ! -e "$T/x.png" ] && ok || bad "segment left a partial output"
expect_fail "is not W,H" vm segment -m "$S/model.pth" "$S/mini.png" --scale 512
expect_fail "exactly one IMAGE" vm segment -m "$S/model.pth" "$S/mini.png" "$S/mini.png" -o "$T/x.png"
expect_fail "unknown option" vm segment -m "$S/model.pth" "$S/mini.png" --bogus
expect_fail "cannot create" vm segment -m "$S/model.pth" "$S/mini.png" --scale 2048,36 -o /nonexistent/dir/x.png
# ---- detect: Mask R-CNN on the golden photos -------------------------------
DM="$DATA/det_maskrcnn/model.pth"
vm detect --help | grep -q "Usage: vmamba detect" && ok || bad "detect --help"
vm detect -m "$DM" "$DATA/det_maskrcnn/flower_crop.png" --scale 400,240 --raw "$T/dr" --json "$T/d.json" -o "$T/d.png" --threads 2 > "$T/d.txt" &&
    grep -q "8 detections (501x333)" "$T/d.txt" && [ "$(grep -c "potted plant" "$T/d.txt")" -eq 4 ] && grep -q "  0 cat " "$T/d.txt" &&
    [ -s "$T/d.png" ] && [ "$(wc -c < "$T/dr/masks.npy")" -eq $((128 + 8 * 333 * 501)) ] && ok || bad "detect flower_crop: $(cat "$T/d.txt")"
head -c 8 "$T/d.png" | od -An -tx1 | grep -q "89 50 4e 47 0d 0a 1a 0a" && ok || bad "detect -o is not a PNG"
vm detect -m "$DM" "$P/china.jpg" --raw "$T/cr" --json "$T/c.json" > "$T/c.txt" && grep -q "23 detections (640x427)" "$T/c.txt" && ok || bad "detect china"
# independent check of the arrays and the COCO JSON (own RLE reader; Debian 12 has no pycocotools)
if /usr/bin/python3 -c "import numpy" 2>/dev/null; then
    /usr/bin/python3 "$(dirname "$0")/tools/check_det_outputs.py" "$T/dr" "$T/d.json" "$DATA/det_maskrcnn" flower_crop > "$T/chk" &&
        /usr/bin/python3 "$(dirname "$0")/tools/check_det_outputs.py" "$T/cr" "$T/c.json" "$DATA/det_maskrcnn" china >> "$T/chk" &&
        ok || bad "detect outputs vs golden: $(cat "$T/chk")"
else
    echo "SKIP: detect output check (needs /usr/bin/python3 with numpy)"
fi
# several images: one directory entry per image, one JSON list, numeric names as image_id
cp "$DATA/det_maskrcnn/flower_crop.png" "$T/000000000042.png"
vm detect -m "$DM" "$T/000000000042.png" "$P/china.jpg" --raw "$T/many" --json "$T/m.json" -o "$T/vis" 2>/dev/null >/dev/null &&
    [ -s "$T/many/china/masks.npy" ] && [ -s "$T/many/000000000042/boxes.npy" ] && [ -s "$T/vis/china.png" ] &&
    grep -q '"image_id":42,' "$T/m.json" && grep -q '"image_id":1,' "$T/m.json" && ok || bad "detect several images"
# two images of one name would write the same --raw/-o outputs: refused (exit 2) before anything is written
mkdir -p "$T/dupdir" && cp "$P/china.jpg" "$T/dupdir/china.png"
expect_fail "same name 'china'" vm detect -m "$DM" "$P/china.jpg" "$T/dupdir/china.png" --raw "$T/dupraw"
expect_fail "same name 'china'" vm detect -m "$DM" "$P/china.jpg" "$T/dupdir/china.png" -o "$T/dupvis"
[ ! -e "$T/dupraw" ] && [ ! -e "$T/dupvis" ] && ok || bad "detect with two images of one name wrote outputs"
vm detect -m "$DM" "$P/china.jpg" "$T/dupdir/china.png" --score-thr 1 > /dev/null 2>&1; [ $? -eq 0 ] && ok || bad "detect of two same-named images without per-image outputs"
# empty result: valid, empty outputs
vm detect -m "$DM" "$P/china.jpg" --score-thr 1 --raw "$T/e" --json "$T/e.json" > "$T/e.txt" && grep -q "0 detections" "$T/e.txt" &&
    [ "$(cat "$T/e.json")" = "[]" ] && [ -s "$T/e/masks.npy" ] && ok || bad "detect with no detections"
vm detect -m maskrcnn-vmamba-tiny "$DATA/det_maskrcnn/flower_crop.png" --scale 320,192 --threads 2 > "$T/p.txt" && grep -q "detections" "$T/p.txt" && ok || bad "detect preset"
expect_fail "is not W,H" vm detect -m "$DM" "$P/china.jpg" --scale 100
expect_fail "must be a number in \[0, 1\]" vm detect -m "$DM" "$P/china.jpg" --score-thr x
expect_fail "required" vm detect -m "$DM"
expect_fail "unknown option" vm detect -m "$DM" --bogus "$P/china.jpg"
expect_fail "missing tensor 'neck.lateral_convs.0.conv.weight'" vm detect -m "$DATA/backbone_v2/model.pth" "$P/china.jpg"
# ---- calibrate on dense-prediction models (#12, #13) -------------------------
mkdir -p "$T/dcal" && cp "$DATA/seg_upernet/mini.png" "$DATA/det_maskrcnn/flower_crop.png" "$T/dcal/"
vm calibrate -m "$DATA/seg_upernet/model.pth" --images "$T/dcal" -o "$T/segq.safetensors" --quiet 2>"$T/err" &&
    vm segment -m "$T/segq.safetensors" "$DATA/seg_upernet/mini.png" --raw "$T/segq.npy" >/dev/null 2>>"$T/err" &&
    grep -q "UPerHead convolutions included" "$T/err" && [ -s "$T/segq.npy" ] && ok || bad "calibrate + segment INT8: $(cat "$T/err")"
vm calibrate -m "$DM" --images "$T/dcal" --scale 400,240 -o "$T/detq.safetensors" --quiet 2>"$T/err" &&
    vm detect -m "$T/detq.safetensors" "$DATA/det_maskrcnn/flower_crop.png" --scale 400,240 --json "$T/detq.json" >/dev/null 2>>"$T/err" &&
    [ -s "$T/detq.json" ] && ok || bad "calibrate + detect INT8: $(cat "$T/err")"
vm calibrate -m "$DM" --images "$T/dcal" --scale 400,240 --dynamic -o "$T/detqd.safetensors" --quiet 2>"$T/err" &&
    grep -q "input_dynamic" "$T/detqd.safetensors" &&
    vm detect -m "$T/detqd.safetensors" "$DATA/det_maskrcnn/flower_crop.png" --scale 400,240 --json "$T/detqd.json" >/dev/null 2>>"$T/err" &&
    [ -s "$T/detqd.json" ] && ok || bad "calibrate --dynamic + detect INT8: $(cat "$T/err")"
vm calibrate -m "$DATA/backbone_v2/model.pth" --images "$T/dcal" --task detect -o "$T/bbq.safetensors" --quiet 2>"$T/err" &&
    vm info "$T/bbq.safetensors" >/dev/null 2>>"$T/err" && ok || bad "calibrate a backbone-only model: $(cat "$T/err")"
expect_fail "needs a classifier head" vm calibrate -m "$DM" --images "$T/dcal" --task classify -o "$T/q4.safetensors"
expect_fail "are for segmentation and detection models" vm calibrate -m "$M" --images "$DATA/digits/calib" --scale 64,64 -o "$T/q4.safetensors"
[ ! -e "$T/q4.safetensors" ] && ok || bad "partial output after a failed calibrate"
expect_fail "nonexistent.jpg" vm detect -m "$DM" /nonexistent.jpg --json "$T/x.json"
[ ! -e "$T/x.json" ] && ok || bad "partial output after a failed detect"
# ---- detect --list: batch jobs (JSON Lines, error records, shard, resume) ----
head -c 300 "$DATA/det_maskrcnn/flower_crop.png" > "$T/broken.png"
printf '%s\n%s\n%s\n' "$DATA/det_maskrcnn/flower_crop.png" "$T/broken.png" "$T/000000000042.png" > "$T/det.list"
vm detect -m "$DM" --scale 400,240 --threads 2 --list "$T/det.list" --output-dir "$T/dl" 2>"$T/err"; r=$?
[ $r -eq 3 ] && [ "$(wc -l < "$T/dl/detections.jsonl")" -eq 3 ] && valid_jsonl "$T/dl/detections.jsonl" &&
    [ "$(sed -n 's/^{"index": \([0-9]*\),.*/\1/p' "$T/dl/detections.jsonl" | tr '\n' ' ')" = "0 1 2 " ] &&
    sed -n 2p "$T/dl/detections.jsonl" | grep -q '"error": ".*broken.png' && grep -q "broken.png" "$T/err" &&
    sed -n 3p "$T/dl/detections.jsonl" | grep -q '"image_id":42,"width":501,"height":333' &&
    [ "$(sed -n 1p "$T/dl/detections.jsonl" | grep -o '"label":' | wc -l)" -eq 8 ] &&
    [ -s "$T/dl/0_flower_crop.png" ] && [ -s "$T/dl/2_000000000042.png" ] && [ ! -e "$T/dl/1_broken.png" ] &&
    ok || bad "detect --list (exit $r): $(head -c 400 "$T/dl/detections.jsonl") $(cat "$T/err")"
# the batch record carries the same masks as the IMAGE run's COCO JSON (flower_crop at 400,240 above)
[ "$(grep -o '"counts":"[^"]*"' "$T/d.json" | head -3)" = "$(sed -n 1p "$T/dl/detections.jsonl" | grep -o '"counts":"[^"]*"' | head -3)" ] &&
    ok || bad "detect --list record differs from detect --json"
vm detect -m "$DM" --scale 400,240 --list "$T/det.list" --output-dir "$T/ds" --shard 1/2 2>/dev/null; r=$?
[ $r -eq 3 ] && [ "$(wc -l < "$T/ds/detections.jsonl")" -eq 1 ] && grep -q '^{"index": 1, ' "$T/ds/detections.jsonl" && ok || bad "detect --shard 1/2 (exit $r)"
vm detect -m "$DM" --scale 400,240 --list "$T/det.list" --output-dir "$T/dr2" --shard 0/2 2>/dev/null &&
    printf '{"index": 1, "file": "torn' >> "$T/dr2/detections.jsonl" &&
    vm detect -m "$DM" --scale 400,240 --list "$T/det.list" --output-dir "$T/dr2" --resume 2>"$T/err"; r=$?
[ $r -eq 3 ] && [ "$(wc -l < "$T/dr2/detections.jsonl")" -eq 3 ] && valid_jsonl "$T/dr2/detections.jsonl" &&
    [ "$(sed -n 's/^{"index": \([0-9]*\),.*/\1/p' "$T/dr2/detections.jsonl" | sort -n | tr '\n' ' ')" = "0 1 2 " ] &&
    grep -q "torn last line" "$T/err" && ok || bad "detect --resume after a torn line (exit $r): $(cat "$T/dr2/detections.jsonl" "$T/err")"
vm detect -m "$DM" --scale 400,240 --list "$T/det.list" --output-dir "$T/dr2" --resume --quiet 2>/dev/null &&
    [ "$(wc -l < "$T/dr2/detections.jsonl")" -eq 3 ] && ok || bad "detect --resume with everything done"
expect_fail "needs --output-dir" vm detect -m "$DM" --list "$T/det.list"
expect_fail "for IMAGE arguments" vm detect -m "$DM" --list "$T/det.list" --output-dir "$T/dx" --json "$T/x.json"
expect_fail "need --list" vm detect -m "$DM" "$P/china.jpg" --resume
vm detect --help | grep -q -- "--list FILE" && vm detect --help | grep -q -- "--shard I/N" && ok || bad "detect --help lists the batch options"
# without the decode thread (pthread_create failing): the same records, decoded in the main thread
if [ -n "$SHIM" ] && [ -e "$SHIM" ]; then
    LD_PRELOAD=$SHIM VMAMBA_SHIM_PTHREAD_FAIL=1 "$BIN" detect -m "$DM" --scale 400,240 --threads 2 --list "$T/det.list" --output-dir "$T/dnt" 2>"$T/err"; r=$?
    [ $r -eq 3 ] && grep -q "decoding in the main thread" "$T/err" &&
        [ "$(sed 's/,"ms":[0-9.e+-]*//' "$T/dnt/detections.jsonl")" = "$(sed 's/,"ms":[0-9.e+-]*//' "$T/dl/detections.jsonl")" ] &&
        ok || bad "detect --list without the decode thread (exit $r): $(cat "$T/err")"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
