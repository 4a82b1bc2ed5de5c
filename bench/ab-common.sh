# bench/ab-common.sh - sourced by bench/ab-threads.sh and bench/cpu-ab.sh: the
# configurations both compare and their old/new interleaving, so the two
# scripts measure the same models in the same order.

# ab_configs INT8: one line a configuration, "label|vmamba bench arguments|iterations"
# (INT8: the calibrated s1l8 checkpoint).
ab_configs() {
  printf '%s\n' "s1l8_fp32|--arch vmamba-tiny-s1l8|10" "s1l8_bf16|--arch vmamba-tiny-s1l8 --precision bf16|10" \
    "s1l8_int8|-m $1|10" "vanilla_fp32|--arch vanilla-vmamba-tiny|6"
}

# ab_interleave OLD NEW INT8 OUT FIELDS RUN: one round. For each configuration,
# `RUN BIN ARGS ITERS` with the old build, then with the new; each JSON line it
# prints goes to OUT with "label", "build" and FIELDS (e.g. '"round": 2, ')
# first.
ab_interleave() {
  _old=$1 _new=$2 _int8=$3 _out=$4 _fields=$5 _run=$6 _ifs=$IFS
  IFS='
'
  for _cfg in $(ab_configs "$_int8"); do
    IFS=$_ifs
    _l=${_cfg%%|*} _rest=${_cfg#*|}
    _a=${_rest%|*} _it=${_rest##*|}
    for _b in old new; do
      _bin=$_old; [ $_b = new ] && _bin=$_new
      $_run "$_bin" "$_a" "$_it" | sed "s/^{/{\"label\": \"$_l\", \"build\": \"$_b\", $_fields/" >> "$_out"
    done
  done
  IFS=$_ifs
}
