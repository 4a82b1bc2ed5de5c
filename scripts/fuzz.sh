#!/bin/sh
# fuzz.sh [SECONDS] [HARNESS...] - build the libFuzzer harnesses with clang,
# ASan and UBSan, and run each for SECONDS over its seed corpus:
#   checkpoint   zip reader, pickle machine, state-dict indexing, tensor reads
#   model        a whole model load from a file's bytes (src/model/load.c:
#                INT8 weights, broadcast tensors, shapes, memory bounds)
#   safetensors  the JSON header and its __metadata__ (length written for it)
#   image        JPEG/PNG decoders + preprocessing at fuzzer-chosen sizes/crops
#   resume       the batch jobs' --resume JSON Lines reader and JSON string
#                writer (tests/fuzz/fuzz_resume.c; CLI files linked in)
# Exits non-zero on any crash, leak, timeout (10 s an input; image: 120 s,
# harness_timeout says why), out-of-memory or sanitizer report. Prints each
# harness's execution count. Seeds: tests/fuzz/corpus,
# tests/data/hostile, tests/data/png. The library is compiled with
# -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION -DVM_NO_XNNPACK (zip CRC-32 mismatches do not
# stop the parse) and only the scalar kernels.
# Inputs reach the loaders as in-memory files (tests/fuzz/fuzz_file.h) and
# jansson allocates from a poisoned arena (tests/fuzz/fuzz_json.h): the
# throughput and what was checked are in bench/RESULTS.md ("Fuzzing
# throughput").
#
# Long runs on many cores (the >= 10 M executions per harness):
#   sh scripts/fuzz.sh multi      builds $FUZZ_OUT/fuzz_multi, ONE binary
#        holding every harness (FUZZ_HARNESS=name picks one), so a machine
#        without clang needs one file plus the shared libraries;
#   sh scripts/fuzz.sh seed DIR   writes the seed corpora only (DIR/corpus_*);
#   sh scripts/fuzz.sh timeout H  prints harness H's -timeout (see below);
#   sh scripts/fuzz-parallel.sh   runs fuzz_multi with libFuzzer's -jobs.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
out=${FUZZ_OUT:-$top/fuzz-out}
all="checkpoint model safetensors image resume"

# seed_corpus HARNESS DIR: the seeds of one harness into DIR.
seed_corpus() {
    h=$1 d=$2
    mkdir -p "$d"
    seed() { for f in "$@"; do [ -f "$f" ] && cp "$f" "$d/$(basename "$(dirname "$f")")_$(basename "$f")"; done; return 0; }
    case $h in
    checkpoint) seed "$top"/tests/fuzz/corpus/*.pth "$top"/tests/fuzz/corpus/*.safetensors "$top"/tests/data/hostile/*.pth ;;
    model) seed "$top"/tests/data/hostile/*.pth "$top"/tests/fuzz/corpus/*.pth "$top"/tests/fuzz/corpus/*.safetensors ;;
    safetensors) seed "$top"/tests/fuzz/corpus/st_*.bin ;;
    resume) # records as classify writes them, a torn last line, an index of 2^40
        printf '{"index": 0, "path": "a.jpg", "class": 3}\n{"index": 2, "path": "b\\u00e9.png", "error": "x"}\n{"ind' > "$d/r1"
        printf '{"index": 1099511627776, "path": "c.png", "class": 1}\n' > "$d/r2" ;;
    image) # 4 option bytes (size 56, crop 0.875 / size 32, no_crop / size 44, crop 1e-6) + each image,
        # and the official size 224, crop 0.875 once (tests/fuzz/fuzz_image.c: sizes over 64 need
        # byte 3 bit 2; their resize and normalisation cost size^2)
        i=0
        for f in "$top"/tests/data/png/*.png "$top"/tests/fuzz/corpus/*.jpg "$top"/tests/fuzz/corpus/*.png \
                 "$top"/tests/data/cv_decode/exif6_be.jpg "$top"/tests/data/cv_decode/cmyk.jpg; do
            [ -f "$f" ] || continue
            i=$((i + 1))
            printf '\067\000\337\000' | cat - "$f" > "$d/a$i.bin"
            printf '\037\000\000\001' | cat - "$f" > "$d/b$i.bin"
            printf '\053\000\000\002' | cat - "$f" > "$d/c$i.bin"
        done
        printf '\337\000\337\004' | cat - "$top"/tests/data/png/rgb8.png > "$d/official.bin"
        # the input a 32-core run reported as a timeout: 1x40000 1-bit PNG, size 511, no crop
        printf '\376\001\337\005' | cat - "$top"/tests/fuzz/corpus/tall_1x40000.png > "$d/tall.bin" ;;
    *) echo "fuzz.sh: no harness '$h' (have: $all)" >&2; return 1 ;;
    esac
}

# harness_timeout HARNESS: libFuzzer's -timeout (wall seconds of one input).
# 10 s for the others (none of their >= 10 M executions came near it). The
# image harness's worst case is bounded and legitimate: a 64 KiB input can
# hold a 1-bit PNG of Pillow's pixel limit (179 M pixels), decoded twice and
# resized at ~4 multiply-adds per source pixel and channel. The worst found,
# a 13377x13377 1-bit colour-palette PNG, interlaced (21 875 bytes), took
# 13.5-18.4 s of CPU under ASan+UBSan here (30-46 s wall at load 14-17 on
# 2 cores); a 32-core run, a job on every hardware thread, stretched a 2.8 s
# input past 10 s (3.5x), which would put it near 65 s. 120 s is ~2x that,
# and still catches a real hang. tests/fuzz/fuzz_image.c and bench/RESULTS.md
# "Image fuzz harness: worst cases" have the numbers.
harness_timeout() { if [ "$1" = image ]; then echo 120; else echo 10; fi; }

if [ "${1:-}" = timeout ]; then
    [ $# -ge 2 ] || { echo "usage: fuzz.sh timeout HARNESS" >&2; exit 2; }
    harness_timeout "$2"
    exit 0
fi

if [ "${1:-}" = seed ]; then
    [ $# -ge 2 ] || { echo "usage: fuzz.sh seed DIR" >&2; exit 2; }
    for h in $all; do seed_corpus $h "$2/corpus_$h"; done
    exit 0
fi

command -v clang >/dev/null || { echo "fuzz.sh: clang not found (Debian package 'clang')" >&2; exit 1; }
# The library's OpenMP code needs clang's OpenMP (Debian package 'libomp-dev').
# Pixel loops give no coverage feedback (tests/fuzz/coverage-ignore.txt says why).
SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
  -fsanitize-coverage-ignorelist=$top/tests/fuzz/coverage-ignore.txt"
# FUZZ_COV=1: source-based coverage instead of the sanitizers, to see what
# a corpus reaches: FUZZ_COV=1 FUZZ_OUT=DIR sh scripts/fuzz.sh multi, then
# LLVM_PROFILE_FILE=p.profraw FUZZ_HARNESS=h DIR/fuzz_multi -runs=0 CORPUS,
# llvm-profdata merge -o p.profdata p.profraw, llvm-cov report DIR/fuzz_multi
# -instr-profile=p.profdata src/loaders (bench/RESULTS.md "Fuzzing throughput").
[ "${FUZZ_COV:-0}" = 1 ] && SAN="-fsanitize=fuzzer-no-link -fprofile-instr-generate -fcoverage-mapping"
FLAGS="-std=gnu11 -g -O1 $SAN \
  -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION -I$top/src -I$top/include -I$top -I$top/quant \
  $(pkg-config --cflags libturbojpeg libpng jansson zlib)"
LIBS="$(pkg-config --libs libturbojpeg libpng jansson zlib) -ldnnl -lm -fopenmp"
CLI_FILES="$top/src/cli/batch.c $top/src/cli/jsonstr.c $top/src/cli/common.c"
mkdir -p "$out/obj"
# The library (no CLI), instrumented; scalar kernels only: the C files of
# libvmamba_core in Makefile.am (the ISA kernels are separate libraries).
lib=$(sed -n '/^libvmamba_core_la_SOURCES/,/_CFLAGS/p' "$top/Makefile.am" | tr ' \t\\' '\n\n\n' | grep '\.c$')
objs=""
for f in $lib; do
    o="$out/obj/$(echo "$f" | tr / _).o"
    clang $FLAGS -fopenmp -c "$top/$f" -o "$o"
    objs="$objs $o"
done

if [ "${1:-}" = multi ]; then
    # Each harness's entry points renamed (fuzz_NAME_one / fuzz_NAME_init),
    # tests/fuzz/fuzz_multi.c dispatches on $FUZZ_HARNESS.
    mobjs=""
    for h in $all; do
        inc=""; [ $h = resume ] && inc="-I$top/src/cli"
        clang $FLAGS $inc -DLLVMFuzzerTestOneInput=fuzz_${h}_one -DLLVMFuzzerInitialize=fuzz_${h}_init \
            -c "$top/tests/fuzz/fuzz_$h.c" -o "$out/obj/multi_$h.o"
        mobjs="$mobjs $out/obj/multi_$h.o"
    done
    for f in $CLI_FILES; do clang $FLAGS -c "$f" -o "$out/obj/cli_$(basename "$f" .c).o"; mobjs="$mobjs $out/obj/cli_$(basename "$f" .c).o"; done
    clang $FLAGS -fsanitize=fuzzer "$top/tests/fuzz/fuzz_multi.c" $mobjs $objs $LIBS -lpthread -o "$out/fuzz_multi"
    echo "fuzz.sh: built $out/fuzz_multi"
    exit 0
fi

secs=${1:-60}
[ $# -gt 0 ] && shift
harnesses=${*:-$all}
status=0
for h in $harnesses; do
    extra=""
    [ $h = resume ] && extra="-I$top/src/cli $CLI_FILES -lpthread"
    clang $FLAGS -fsanitize=fuzzer "$top/tests/fuzz/fuzz_$h.c" $extra $objs $LIBS -o "$out/fuzz_$h"
    seed_corpus $h "$out/corpus_$h"
    (cd "$out" && ASAN_OPTIONS=detect_leaks=1 ./fuzz_$h -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 \
        -malloc_limit_mb=2048 -timeout="$(harness_timeout $h)" -print_final_stats=1 "corpus_$h" > "fuzz_$h.log" 2>&1) || status=1
    n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/fuzz_$h.log")
    echo "fuzz_$h: ${n:-0} executions in ${secs}s"
    if [ $status -ne 0 ] || [ -z "$n" ]; then
        echo "fuzz.sh: fuzz_$h failed:" >&2
        grep -A30 -E "==[0-9]+==ERROR|runtime error|SUMMARY|out-of-memory|timeout" "$out/fuzz_$h.log" | head -60 >&2 || tail -30 "$out/fuzz_$h.log" >&2
        exit 1
    fi
done
