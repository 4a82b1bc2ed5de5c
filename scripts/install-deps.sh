#!/bin/sh
# install-deps.sh - install the Debian 12 packages vmamba.c needs to build
# and test. Idempotent; run as root (or it uses sudo when available).
set -eu
# libxnnpack-dev: the GEMM path of NEON-only ARM cores (optional elsewhere; the
# tests check it on every build that has it)
# clang + libomp-dev (its omp.h): the ThreadSanitizer run, scripts/tsan.sh, and scripts/fuzz.sh
PKGS="build-essential autoconf automake libtool pkg-config libdnnl-dev libturbojpeg0-dev libpng-dev libjansson-dev zlib1g-dev check clang libomp-dev libxnnpack-dev libpthreadpool-dev"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
    echo "install-deps: all packages present"
    exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "install-deps: installing$missing"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
