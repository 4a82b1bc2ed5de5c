#!/bin/sh
# quickstart.sh - the README's first command: install dependencies, build,
# and run the bundled digits model (a real trained VMamba) on its sample
# inputs, printing the predicted digits next to the true labels.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
sh scripts/install-deps.sh
[ -x configure ] || autoreconf -fi
[ -f Makefile ] || ./configure
make -j"$(nproc)"
echo
echo "== vmamba info (bundled digits model)"
./vmamba info tests/data/digits/model.pth
echo
echo "== vmamba run: the 200 digits test images (preprocessed .npy) -> logits"
./vmamba run -m tests/data/digits/model.pth -i tests/data/digits/test_input.npy -o digits_logits.npy --print > digits_pred.jsonl
# Predicted digit vs the label, for the first 10 images and overall.
sed -n 's/.*"index": \([0-9]*\), "class": \([0-9]*\).*/\1 \2/p' digits_pred.jsonl > digits_pred.txt
grep '^test/' tests/data/digits/labels.csv | cut -d, -f2 | paste -d' ' digits_pred.txt - |
    awk '{ n++; ok += ($2 == $3); if (n <= 10) printf "  test image %03d: predicted %s, label %s\n", $1, $2, $3 }
         END { printf "  top-1 on %d test images: %d/%d = %.3f\n", n, ok, n, ok / n }'
rm -f digits_pred.txt
