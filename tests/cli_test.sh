#!/bin/sh
# cli_test.sh - the vmamba command's contract: outputs, exit codes, errors.
set -u
BIN=${VMAMBA_BIN:-./vmamba}
RUN=${VMAMBA_RUNNER:-}   # e.g. "qemu-aarch64 -L /" for a cross build
vm() { $RUN "$BIN" "$@"; }
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
expect_fail "needs --device cuda" vm run -m "$DATA/digits/model.pth" -i "$DATA/digits/test_input.npy" -o "$T/x.npy" --precision fp16
# --precision bf16 on the CPU: runs where oneDNN sees avx512_bf16/AMX (same argmax as FP32 on digits), a clear error elsewhere
if vm run -m "$DATA/digits/model.pth" -i "$DATA/digits/test_input.npy" -o "$T/b.npy" --print --precision bf16 > "$T/pb.jsonl" 2> "$T/err"; then
    [ "$(grep -o '"class": [0-9]*' "$T/pb.jsonl")" = "$(grep -o '"class": [0-9]*' "$T/p.jsonl")" ] && ok || bad "run --precision bf16: argmax differs from fp32"
else
    grep -q "avx512_bf16" "$T/err" && ok || bad "run --precision bf16: $(cat "$T/err")"
fi
expect_fail "unknown argument" vm run --bogus
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
expect_fail "must be a number in (0, 1]" vm preprocess "$P/china.jpg" -o "$T/x.npy" --crop-pct 2
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
# ---- calibrate: deterministic INT8 files, clear errors ---------------------
vm calibrate -m "$M" --images "$DATA/digits/calib" --samples 20 --size 32 --no-crop -o "$T/q1.safetensors" --quiet 2>"$T/err" &&
    vm calibrate -m "$M" --images "$DATA/digits/calib" --samples 20 --size 32 --no-crop -o "$T/q2.safetensors" --quiet 2>>"$T/err" &&
    cmp -s "$T/q1.safetensors" "$T/q2.safetensors" && ok || bad "calibrate not deterministic: $(cat "$T/err")"
[ "$(wc -c < "$T/q1.safetensors")" -lt "$(wc -c < "$M")" ] && ok || bad "INT8 file not smaller"
vm eval -m "$T/q1.safetensors" --images "$DATA/digits" --labels "$T/test.csv" --json | grep -q '"top1": 0.99' && ok || bad "INT8 eval"
# entropy clipping and SmoothQuant: working models (top-1 unchanged on the digits)
for opt in "--method entropy" "--smooth 0.5" "--method percentile --percentile 99.9"; do
    vm calibrate -m "$M" --images "$DATA/digits/calib" --size 32 --no-crop -o "$T/qo.safetensors" --quiet $opt 2>"$T/err" &&
        vm eval -m "$T/qo.safetensors" --images "$DATA/digits" --labels "$T/test.csv" --json | grep -q '"top1": 0.99' &&
        ok || bad "calibrate $opt: $(cat "$T/err")"
done
expect_fail "must be in \[0, 1\]" vm calibrate -m "$M" --images "$DATA/digits/calib" --smooth 2 -o "$T/q3.safetensors"
mkdir -p "$T/empty"
expect_fail "no JPEG or PNG images" vm calibrate -m "$M" --images "$T/empty" -o "$T/q3.safetensors"
expect_fail "not a zip archive" vm calibrate -m "$DATA/digits/labels.csv" --images "$DATA/digits/calib" -o "$T/q3.safetensors"
expect_fail "already an INT8 model" vm calibrate -m "$T/q1.safetensors" --images "$DATA/digits/calib" -o "$T/q3.safetensors"
expect_fail "not minmax, percentile or entropy" vm calibrate -m "$M" --images "$DATA/digits/calib" --method magic -o "$T/q3.safetensors"
[ ! -e "$T/q3.safetensors" ] && ok || bad "partial output after a failed calibrate"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
