#!/bin/bash
# Consumer checks against an installed tree: `meson install` into a DESTDIR,
# then build every example in examples/c and examples/cpp with nothing but
# `pkg-config --cflags --libs sgdlab`, linked dynamically and statically, run
# them, and install the Python package in a virtual environment and run the
# Python examples with it against the installed shared library.
#
#   .ci/consumer-test.sh BUILDDIR
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$1" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dest=$work/dest

DESTDIR=$dest meson install -C "$build" --quiet
prefix=$(meson introspect "$build" --buildoptions | python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="prefix"][0])')
libdir=$(meson introspect "$build" --buildoptions | python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]=="libdir"][0])')
case $libdir in /*) ;; *) libdir=$prefix/$libdir ;; esac

# What the install must contain.
for f in "$libdir/libsgdlab.so.0" "$libdir/libsgdlab.a" "$prefix/include/sgdlab/sgdlab.h" "$libdir/pkgconfig/sgdlab.pc"; do
    [ -e "$dest$f" ] || { echo "consumer: missing from the install: $f"; exit 1; }
done
soname=$(readelf -d "$dest$libdir/libsgdlab.so.0" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[ "$soname" = libsgdlab.so.0 ] || { echo "consumer: SONAME is '$soname'"; exit 1; }

# sgdlab.pc is relocatable (prefix from ${pcfiledir}): finding it is enough.
export PKG_CONFIG_PATH=$dest$libdir/pkgconfig
cflags=$(pkg-config --cflags sgdlab)
libs=$(pkg-config --libs sgdlab)
slibs=$(pkg-config --static --libs sgdlab)
strict="-Wall -Wextra -pedantic -Werror"
echo "consumer: cflags: $cflags"
echo "consumer: libs: $libs"
echo "consumer: static libs: $slibs"

run() { # name, binary
    echo "consumer: running $1"
    (cd "$work" && LD_LIBRARY_PATH=$dest$libdir "$2" > "$work/$1.out" 2>&1) || { cat "$work/$1.out"; echo "consumer: $1 failed"; exit 1; }
}

n=0
for c in "$src"/examples/c/*.c; do
    name=$(basename "$c" .c)
    cc -std=c99 $strict $cflags "$c" -o "$work/$name" $libs
    cc -std=c99 $strict $cflags "$c" -o "$work/$name-static" -static $slibs
    run "$name (dynamic)" "$work/$name"
    run "$name (static)" "$work/$name-static"
    if ldd "$work/$name-static" >/dev/null 2>&1; then echo "consumer: $name-static is not static"; exit 1; fi
    n=$((n + 2))
done
for c in "$src"/examples/cpp/*.cpp; do
    name=$(basename "$c" .cpp)
    c++ -std=c++11 $strict $cflags "$c" -o "$work/$name-cxx" $libs
    c++ -std=c++11 $strict $cflags "$c" -o "$work/$name-cxx-static" -static $slibs
    run "$name (C++, dynamic)" "$work/$name-cxx"
    run "$name (C++, static)" "$work/$name-cxx-static"
    n=$((n + 2))
done

# Python: the package installed by pip in a fresh virtual environment (offline,
# Debian's setuptools), then the examples that use it against the installed library.
python3 -m venv --system-site-packages "$work/venv"
"$work/venv/bin/pip" install --quiet --no-build-isolation --no-index "$src/python"
(cd "$work" && SGDLAB_LIBRARY=$dest$libdir/libsgdlab.so.0 "$work/venv/bin/python" -c \
    'import sgdlab; print("consumer: sgdlab", sgdlab.version(), "from", sgdlab.library_info().path)')
for py in "$src"/examples/python/*demo*.py; do
    echo "consumer: python3 $(basename "$py")"
    (cd "$work" && SGDLAB_LIBRARY=$dest$libdir/libsgdlab.so.0 "$work/venv/bin/python" "$py")
    n=$((n + 1))
done
# libsgdlab-mpi, when the build has it: the MPI example with nothing but
# `pkg-config sgdlab-mpi` (the header needs no mpi.h), run under mpiexec with
# 2 processes. Dynamic only: Debian ships no static MPI library.
if [ -e "$dest$libdir/pkgconfig/sgdlab-mpi.pc" ]; then
    for f in "$libdir/libsgdlab-mpi.so.0" "$libdir/libsgdlab-mpi.a" "$prefix/include/sgdlab/dist.h"; do
        [ -e "$dest$f" ] || { echo "consumer: missing from the install: $f"; exit 1; }
    done
    soname=$(readelf -d "$dest$libdir/libsgdlab-mpi.so.0" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
    [ "$soname" = libsgdlab-mpi.so.0 ] || { echo "consumer: libsgdlab-mpi SONAME is '$soname'"; exit 1; }
    mcflags=$(pkg-config --cflags sgdlab-mpi)
    mlibs=$(pkg-config --libs sgdlab-mpi)
    echo "consumer: sgdlab-mpi: $mcflags $mlibs"
    cc -std=c99 $strict $mcflags "$src/examples/mpi/dist.c" -o "$work/dist" $mlibs
    echo "consumer: running dist (mpiexec -n 2)"
    (cd "$work" && LD_LIBRARY_PATH=$dest$libdir OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
        OMPI_MCA_rmaps_base_oversubscribe=1 mpiexec -n 2 "$work/dist" > "$work/dist.out" 2>&1) ||
        { cat "$work/dist.out"; echo "consumer: dist failed"; exit 1; }
    n=$((n + 1))
fi
echo "consumer: OK ($n programs built against the installed tree and run)"
