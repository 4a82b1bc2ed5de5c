#!/bin/sh
# Every backend op on the cpu backend against the scalar references
# (tests/test_backend_ops.c), then on the off-host test backend (the CPU
# claiming device memory: weight copies through the cache as on CUDA).
# Exit 77 (SKIP) when the backend is not there.
bin="$(dirname "$VMAMBA_BIN")/tests/test_backend_ops"
$VMAMBA_RUNNER "$bin" cpu || exit $?
exec $VMAMBA_RUNNER "$bin" offhost
