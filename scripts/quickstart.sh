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
./vmamba run -m tests/data/digits/model.pth -i tests/data/digits/test_input.npy -o digits_logits.npy
python3 - <<'PY' 2>/dev/null || echo "(wrote digits_logits.npy; python3 with numpy shows predictions)"
import csv, numpy as np
l = np.load("digits_logits.npy"); p = l.argmax(1)
rows = [r for r in csv.DictReader(open("tests/data/digits/labels.csv")) if r["file"].startswith("test/")]
y = np.array([int(r["label"]) for r in rows])
for r, pi in list(zip(rows, p))[:10]:
    print(f"  {r['file']}: predicted {pi}, label {r['label']}")
print(f"  top-1 on {len(y)} test images: {(p == y).mean():.3f}")
PY
