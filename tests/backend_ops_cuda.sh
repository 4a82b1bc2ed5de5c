#!/bin/sh
# Every backend op on the cuda backend against the scalar references
# (tests/test_backend_ops.c). Exit 77 (SKIP) when the backend is not there.
exec $VMAMBA_RUNNER "$(dirname "$VMAMBA_BIN")/tests/test_backend_ops" cuda
