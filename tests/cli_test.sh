#!/bin/sh
# cli_test.sh - the vmamba command's contract: outputs, exit codes, errors.
set -u
BIN=${VMAMBA_BIN:-./vmamba}
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

"$BIN" --help | grep -q "Usage: vmamba" && ok || bad "--help"
for c in info run; do "$BIN" $c --help | grep -q "Usage: vmamba $c" && ok || bad "$c --help"; done
"$BIN" info "$DATA/digits/model.pth" --json | grep -q '"params": 1012930' && ok || bad "info --json params"
"$BIN" info vmamba-tiny-s1l8 | grep -q "params: *30" && ok || bad "info preset"
"$BIN" run -m "$DATA/v2_s2/model.pth" -i "$DATA/v2_s2/input.npy" -o "$T/l.npy" --threads 1 && [ -s "$T/l.npy" ] && ok || bad "run"
"$BIN" run -m "$DATA/backbone_v2/model.pth" -i "$DATA/backbone_v2/input.npy" -o "$T/f" --features && [ -s "$T/f/feat3.npy" ] && ok || bad "run --features"
"$BIN" run -m "$DATA/digits/model.pth" -i "$DATA/digits/test_input.npy" -o "$T/d.npy" --print > "$T/p.jsonl" && [ "$(wc -l < "$T/p.jsonl")" -eq 200 ] && grep -q "\"class\": " "$T/p.jsonl" && ok || bad "run --print"
expect_fail "unknown command" "$BIN" frobnicate
expect_fail "unknown argument" "$BIN" run --bogus
expect_fail "not an integer" "$BIN" run -m x -i y -o z --threads zero
expect_fail "No such file" "$BIN" info /nonexistent.pth
expect_fail "expected shape (N, 3, H, W)" "$BIN" run -m "$DATA/v2_s2/model.pth" -i "$DATA/v2_s2/logits.npy" -o "$T/x.npy"
expect_fail "not a .npy" "$BIN" run -m "$DATA/v2_s2/model.pth" -i "$DATA/v2_s2/config.json" -o "$T/x.npy"
expect_fail "use --features" "$BIN" run -m "$DATA/backbone_v2/model.pth" -i "$DATA/backbone_v2/input.npy" -o "$T/x.npy"
[ ! -e "$T/x.npy" ] && ok || bad "partial output left behind"
expect_fail "cannot create" "$BIN" run -m "$DATA/v2_s2/model.pth" -i "$DATA/v2_s2/input.npy" -o /nonexistent/dir/x.npy
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
