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
./vmamba info models/digits.pth
echo
echo "== vmamba classify: the bundled sample digits (models/digits.json gives size 32, no crop, labels)"
./vmamba classify -m models/digits.pth --topk 1 samples/digits/*.png
echo
echo "== vmamba eval: the 200 labelled test digits"
grep -e '^file,' -e '^test/' tests/data/digits/labels.csv > digits_test.csv
./vmamba eval -m models/digits.pth --images tests/data/digits --labels digits_test.csv
