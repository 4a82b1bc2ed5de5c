#!/bin/sh
# fuzz.sh [SECONDS] - build the libFuzzer harnesses (checkpoint parser;
# image decoders + preprocessing) with clang, ASan and UBSan, and run each
# for SECONDS over its seed corpus. Exits non-zero on any crash, leak or
# sanitizer report. Prints each harness's execution count.
set -eu
secs=${1:-60}
top=$(cd "$(dirname "$0")/.." && pwd)
out=${FUZZ_OUT:-$top/fuzz-out}
command -v clang >/dev/null || { echo "fuzz.sh: clang not found (Debian package 'clang')" >&2; exit 1; }
CFLAGS="-std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I$top/src -I$top/include"
src="$top/src"
mkdir -p "$out/ckpt" "$out/image"
clang $CFLAGS "$top/tests/fuzz/fuzz_checkpoint.c" "$src/loaders/checkpoint.c" "$src/loaders/pickle.c" "$src/loaders/safetensors.c" \
    "$src/loaders/zipread.c" "$src/core/util.c" $(pkg-config --cflags --libs jansson) -o "$out/fuzz_checkpoint"
clang $CFLAGS $(pkg-config --cflags libturbojpeg libpng) "$top/tests/fuzz/fuzz_image.c" "$src/image/decode.c" \
    "$src/image/decode_jpeg.c" "$src/image/decode_png.c" "$src/image/resize_bicubic.c" "$src/image/preprocess.c" \
    "$src/image/decode_cv.c" "$src/image/resize_cv.c" \
    "$src/core/util.c" $(pkg-config --libs libturbojpeg libpng) -lm -o "$out/fuzz_image"
# Seeds: tiny real checkpoints; small real images of each kind.
cp "$top"/tests/fuzz/corpus/*.pth "$top"/tests/fuzz/corpus/*.safetensors "$out/ckpt/"
cp "$top"/tests/data/png/*.png "$top"/tests/fuzz/corpus/*.jpg "$out/image/" 2>/dev/null || true
cp "$top"/tests/data/cv_decode/exif6_be.jpg "$top"/tests/data/cv_decode/cmyk.jpg "$out/image/" 2>/dev/null || true
status=0
for h in checkpoint image; do
    dir=$([ $h = checkpoint ] && echo ckpt || echo image)
    (cd "$out" && ./fuzz_$h -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 "$dir" > "fuzz_$h.log" 2>&1) || status=1
    n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/fuzz_$h.log")
    echo "fuzz_$h: ${n:-0} executions in ${secs}s"
    if [ $status -ne 0 ] || [ -z "$n" ]; then
        echo "fuzz.sh: fuzz_$h failed:" >&2
        grep -A30 -E "==[0-9]+==ERROR|runtime error|SUMMARY" "$out/fuzz_$h.log" | head -60 >&2 || tail -30 "$out/fuzz_$h.log" >&2
        exit 1
    fi
done
