# devbundle-env.sh - sourced by cuda-device-check.sh and cuda-device-suites.sh: the build environment for
# Debian's libraries unpacked from the device bundle (.devprefix, scripts/make-devbundle.sh) and the CUDA toolkit
# in /usr/local/cuda. Explicit module flags: the device machine may have no pkg-config.
P=$PWD/.devprefix/usr; L=$P/lib/x86_64-linux-gnu
export PATH=/usr/local/cuda/bin:$PATH
export CPPFLAGS="-I$P/include" LDFLAGS="-L$L" LD_LIBRARY_PATH="$L:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PKG_CONFIG_PATH=$L/pkgconfig
export TURBOJPEG_CFLAGS="-I$P/include" TURBOJPEG_LIBS="-L$L -lturbojpeg"
export PNG_CFLAGS="-I$P/include/libpng16" PNG_LIBS="-L$L -lpng16"
export JANSSON_CFLAGS="-I$P/include" JANSSON_LIBS="-L$L -ljansson"
export ZLIB_CFLAGS="-I$P/include" ZLIB_LIBS="-lz"
export CHECK_CFLAGS="-I$P/include" CHECK_LIBS="-L$L -lcheck_pic -pthread -lrt -lm -lsubunit"
