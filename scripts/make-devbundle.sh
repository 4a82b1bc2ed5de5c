#!/bin/sh
# make-devbundle.sh - pack Debian 12's runtime and -dev packages that a GPU machine without them needs to build
# and test vmamba.c (oneDNN, libjpeg-turbo, libpng, jansson, Check, subunit, OpenCL loader, zlib, libgomp) into
# .devbundle.txz at the top of the tree (~7.6 MB: the tree that travels to the device is limited to 64 MiB, so
# xz, and libdnnl's symbols stripped). scripts/cuda-device-suites.sh unpacks it there.
# usage: sh scripts/make-devbundle.sh   (run at the top of the source tree; needs apt-get download and dpkg-deb)
set -e
top=$PWD; t=$(mktemp -d); trap 'rm -rf "$t"' EXIT
cd "$t"
apt-get download libdnnl2 libdnnl-dev libturbojpeg0 libturbojpeg0-dev libpng16-16 libpng-dev libjansson4 \
    libjansson-dev check libsubunit0 libsubunit-dev ocl-icd-libopencl1 ocl-icd-opencl-dev zlib1g-dev \
    libjpeg62-turbo libgomp1 >/dev/null
for d in *.deb; do dpkg -x "$d" .devprefix; done
rm -rf .devprefix/usr/share/doc .devprefix/usr/share/man
strip --strip-unneeded .devprefix/usr/lib/x86_64-linux-gnu/libdnnl.so.* 2>/dev/null || true
tar cJf "$top/.devbundle.txz" .devprefix
ls -l "$top/.devbundle.txz"
