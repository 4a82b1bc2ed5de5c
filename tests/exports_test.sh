#!/bin/sh
# exports_test.sh - libvmamba.so exports exactly what include/vmamba.h
# declares (the library is built with -fvisibility=hidden; the header's
# visibility pragma exports its declarations), and vm_version matches the
# header's VM_VERSION_STRING.
set -u
LIB=${VMAMBA_LIB:-.libs/libvmamba.so}
HDR=${VMAMBA_HEADER:-include/vmamba.h}
NM=${NM:-nm}
[ -e "$LIB" ] || { echo "SKIP: no shared library $LIB (--disable-shared?)"; exit 77; }
syms=$($NM -D --defined-only "$LIB" 2>/dev/null | awk 'NF >= 3 && $2 ~ /^[TDBRVW]$/ {print $3}' | sed 's/@.*//')
[ -n "$syms" ] || { echo "SKIP: $NM cannot read $LIB"; exit 77; }
fail=0 n=0
for s in $syms; do
    n=$((n + 1))
    # a declared name: "name(" somewhere in the header
    grep -q "[^A-Za-z0-9_]$s *(" "$HDR" || { echo "FAIL: $s is exported but not declared in $HDR"; fail=1; }
done
for s in vm_model_load vm_forward vm_version vm_softmax vm_topk; do
    echo "$syms" | grep -qx "$s" || { echo "FAIL: $s is declared but not exported"; fail=1; }
done
v=$(sed -n 's/^#define VM_VERSION_STRING "\(.*\)"/\1/p' "$HDR")
strings "$LIB" 2>/dev/null | grep -qx "$v" || { echo "FAIL: $LIB does not carry version $v"; fail=1; }
echo "$n exported symbols checked"
exit $fail
