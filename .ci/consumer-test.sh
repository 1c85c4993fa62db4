#!/bin/bash
# Consumer checks against an installed tree: `meson install` into a DESTDIR,
# check what the tree holds (library, headers, sgdlab.pc, the CMake package,
# the HTML reference, the guides, the examples, the tool linked to the shared
# library, and the man pages and bash completion), then
#
# - build every example in examples/c and examples/cpp with nothing but
#   `pkg-config --cflags --libs sgdlab`, linked dynamically and statically,
#   run them; install the Python package in a virtual environment and run the
#   Python examples with it against the installed shared library;
# - build the installed examples (share/doc/sgdlab/examples) with CMake through
#   find_package(sgdlab CONFIG), shared and static, and run them; check the
#   package's version rules;
# - build a small meson project that uses libsgdlab as a subproject (a wrap,
#   dependency('sgdlab', fallback: ['sgdlab', 'sgdlab_dep'])) at -O0
#   (buildtype=debug), and run it: only the library is built, without -Werror,
#   and none of libsgdlab's flags reach the parent;
# - with libsgdlab-mpi in the build: the MPI example under mpiexec -n 2.
#
#   .ci/consumer-test.sh BUILDDIR
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$1" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dest=$work/dest

# The man pages (sgdlab(1) and one per command) and the bash completion
# must be installed with the tool.
require_man=1

DESTDIR=$dest meson install -C "$build" --quiet
opt() { meson introspect "$build" --buildoptions | python3 -c 'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"]==sys.argv[1]][0])' "$1"; }
prefix=$(opt prefix)
dir() { local d; d=$(opt "$1"); case $d in /*) echo "$d" ;; *) echo "$prefix/$d" ;; esac; }
libdir=$(dir libdir)
bindir=$(dir bindir)
mandir=$(dir mandir)
docdir=$(dir datadir)/doc/sgdlab
cmakedir=$libdir/cmake/sgdlab
completion=$(dir datadir)/bash-completion/completions/sgdlab

missing() { echo "consumer: missing from the install: $1"; exit 1; }
# What the install must contain: the libraries, headers and sgdlab.pc, the
# CMake package, the guides (every docs/*.md), the HTML reference, the
# examples (every file of examples/, with their CMakeLists.txt), the tool.
for f in "$libdir/libsgdlab.so.0" "$libdir/libsgdlab.so" "$libdir/libsgdlab.a" "$prefix/include/sgdlab/sgdlab.h" \
    "$libdir/pkgconfig/sgdlab.pc" "$cmakedir/sgdlabConfig.cmake" "$cmakedir/sgdlabConfigVersion.cmake" \
    "$docdir/html/index.html" "$docdir/README.md" "$docdir/LICENSE" "$bindir/sgdlab"; do
    [ -e "$dest$f" ] || missing "$f"
done
for h in "$src"/include/sgdlab/*.h; do
    [ -e "$dest$prefix/include/sgdlab/$(basename "$h")" ] || missing "$prefix/include/sgdlab/$(basename "$h")"
done
for g in "$src"/docs/*.md; do
    [ -e "$dest$docdir/$(basename "$g")" ] || missing "$docdir/$(basename "$g") (a guide)"
done
(cd "$src/examples" && find c cpp mpi python CMakeLists.txt -type f ! -path '*__pycache__*') | while read -r e; do
    cmp -s "$src/examples/$e" "$dest$docdir/examples/$e" || missing "$docdir/examples/$e (or it differs from examples/$e)"
done
for h in "$src"/include/sgdlab/*.h; do # the reference has a page per public header
    page=$docdir/html/$(basename "$h" .h)_8h.html
    [ -e "$dest$page" ] || missing "$page (the reference of $(basename "$h"))"
done
grep -q 'sgd_trainer_fit' "$dest$docdir/html/trainer_8h.html" || { echo "consumer: trainer_8h.html does not document sgd_trainer_fit"; exit 1; }
soname=$(readelf -d "$dest$libdir/libsgdlab.so.0" | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
[ "$soname" = libsgdlab.so.0 ] || { echo "consumer: SONAME is '$soname'"; exit 1; }
if grep -q '^URL:.*\(example\|invalid\|placeholder\)' "$dest$libdir/pkgconfig/sgdlab.pc"; then
    echo "consumer: sgdlab.pc has a placeholder URL"; exit 1
fi

# The tool: linked to the shared library (none of the library in it), and it
# runs from wherever the tree is (its RUNPATH is relative to itself).
tool=$dest$bindir/sgdlab
readelf -d "$tool" | grep -q 'NEEDED.*\[libsgdlab\.so\.0\]' || { echo "consumer: sgdlab is not linked to libsgdlab.so.0"; exit 1; }
if nm "$tool" | grep -qE ' [TtDdBbRr] sgd_[a-z]'; then
    echo "consumer: the sgdlab tool holds library code:"; nm "$tool" | grep -E ' [TtDdBbRr] sgd_[a-z]' | head; exit 1
fi
(cd "$work" && env -u LD_LIBRARY_PATH "$tool" --version) || { echo "consumer: the installed sgdlab does not run"; exit 1; }
found=$(env -u LD_LIBRARY_PATH ldd "$tool" | sed -n 's/.*libsgdlab\.so\.0 => \(.*\) (0x.*/\1/p')
[ -n "$found" ] && [ "$(readlink -f "$found")" = "$(readlink -f "$dest$libdir/libsgdlab.so.0")" ] ||
    { echo "consumer: the installed sgdlab does not find the installed library:"; ldd "$tool"; exit 1; }

# Man pages (sgdlab(1) and one per command of `sgdlab --help`) and the bash completion.
commands=$(env -u LD_LIBRARY_PATH "$tool" --help | sed -n '/^commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }')
[ -n "$commands" ] || { echo "consumer: no commands in 'sgdlab --help'"; exit 1; }
if [ "$require_man" = 1 ] || [ -n "$(find "$dest$mandir" -name 'sgdlab*' 2>/dev/null)" ]; then
    for page in sgdlab $(for c in $commands; do echo "sgdlab-$c"; done); do
        ls "$dest$mandir/man1/$page.1"* >/dev/null 2>&1 || missing "$mandir/man1/$page.1"
    done
    [ -e "$dest$completion" ] || missing "$completion"
    echo "consumer: man pages for sgdlab and $(echo $commands | wc -w) commands, bash completion"
else
    echo "consumer: NOTE: no man pages or bash completion installed yet (issue 12 part 1); not checked"
fi

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
# CMake: the installed examples through find_package(sgdlab CONFIG), the
# shared library (sgdlab::sgdlab) and the static one (sgdlab::sgdlab_static),
# from the DESTDIR tree: the package finds its paths from its own location.
cmake_prefix=$dest$prefix
for kind in shared static; do
    b=$work/cmake-$kind
    flag=OFF
    [ "$kind" = static ] && flag=ON
    echo "consumer: cmake, find_package(sgdlab CONFIG), $kind"
    cmake -S "$dest$docdir/examples" -B "$b" -DCMAKE_PREFIX_PATH="$cmake_prefix" -DSGDLAB_STATIC=$flag \
        -DCMAKE_C_FLAGS="$strict" -DCMAKE_CXX_FLAGS="$strict" -DCMAKE_BUILD_TYPE=Release > "$b.log" 2>&1 ||
        { cat "$b.log"; echo "consumer: cmake ($kind) failed"; exit 1; }
    cmake --build "$b" -j 2 >> "$b.log" 2>&1 || { cat "$b.log"; echo "consumer: cmake --build ($kind) failed"; exit 1; }
    for c in "$src"/examples/c/*.c; do
        name=$(basename "$c" .c)
        if [ "$kind" = static ]; then
            readelf -d "$b/$name" | grep -q 'NEEDED.*libsgdlab' && { echo "consumer: cmake static $name needs libsgdlab.so"; exit 1; }
        else
            readelf -d "$b/$name" | grep -q 'NEEDED.*\[libsgdlab\.so\.0\]' || { echo "consumer: cmake $name is not linked to libsgdlab.so.0"; exit 1; }
        fi
        run "$name (CMake, $kind)" "$b/$name"
        n=$((n + 1))
    done
    run "version (C++, CMake, $kind)" "$b/version_cxx"
    n=$((n + 1))
done
# The version rules: a request for 0.1 or 0.2 is met, 0.3 and 1.0 are not;
# an unknown component is refused with a message.
mkdir -p "$work/cmake-version"
cat > "$work/cmake-version/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.13)
project(sgdlab_version_rules C)
foreach(v 0.1 0.2 0.3 1.0)
  unset(sgdlab_DIR CACHE)
  unset(sgdlab_VERSION)
  find_package(sgdlab ${v} CONFIG QUIET)
  message(STATUS "request ${v}: ${sgdlab_FOUND} ${sgdlab_VERSION}")
endforeach()
unset(sgdlab_DIR CACHE)
find_package(sgdlab CONFIG QUIET COMPONENTS shared static bogus)
message(STATUS "component bogus: ${sgdlab_FOUND}: ${sgdlab_NOT_FOUND_MESSAGE}")
CMAKE
cmake -S "$work/cmake-version" -B "$work/cmake-version/b" -DCMAKE_PREFIX_PATH="$cmake_prefix" > "$work/cmake-version.log" 2>&1 ||
    { cat "$work/cmake-version.log"; exit 1; }
want="request 0.1: 1 0.2.0|request 0.2: 1 0.2.0|request 0.3: 0|request 1.0: 0|component bogus: 0: libsgdlab: no component 'bogus' (there are shared and static)"
got=$(sed -n 's/^-- \(request\|component\)/\1/p' "$work/cmake-version.log" | sed 's/ *$//' | paste -sd '|')
[ "$got" = "$want" ] || { echo "consumer: cmake version rules: got '$got', want '$want'"; exit 1; }

# A meson project that uses libsgdlab as a subproject, through a wrap (the
# source as a tarball in the package cache), at -O0, without -Werror.
parent=$work/parent
mkdir -p "$parent/subprojects/packagecache"
tarball=$parent/subprojects/packagecache/sgdlab-src.tar.gz
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
    (cd "$src" && git ls-files -z --cached --others --exclude-standard | xargs -0 ls -d 2>/dev/null |
        tar -czf "$tarball" --transform 's,^,sgdlab/,' -T -)
else
    (cd "$src/.." && tar -czf "$tarball" --exclude='build*' --transform "s,^$(basename "$src"),sgdlab," "$(basename "$src")")
fi
cat > "$parent/subprojects/sgdlab.wrap" <<WRAP
[wrap-file]
directory = sgdlab
source_url = file://$tarball
source_filename = sgdlab-src.tar.gz
source_hash = $(sha256sum "$tarball" | cut -d' ' -f1)

[provide]
dependency_names = sgdlab
WRAP
cat > "$parent/meson.build" <<'MESON'
project('parent', 'c', default_options: ['warning_level=1'])
sgdlab = dependency('sgdlab', version: '>=0.2', fallback: ['sgdlab', 'sgdlab_dep'])
# meson.override_dependency: any later dependency('sgdlab') is the same one.
again = dependency('sgdlab')
executable('parent', 'parent.c', dependencies: [sgdlab, again])
MESON
cat > "$parent/parent.c" <<'C'
#include <sgdlab/sgdlab.h>

#include <stdio.h>

int main(void)
{
    sgd_model *m = NULL;
    sgd_param_info info;
    sgd_param_info_init(&info); /* a 0.2 symbol */
    if (sgd_model_from_spec(&m, "4-8-relu-3", NULL, NULL) != SGD_OK || sgd_model_param_info(m, 0, &info) != SGD_OK) {
        fprintf(stderr, "parent: %s\n", sgd_error_last());
        return 1;
    }
    printf("parent: libsgdlab %s, %s holds %zu floats\n", sgd_version_string(), info.name, info.numel);
    sgd_model_free(m);
    return info.numel == 32 ? 0 : 1;
}
C
pb=$work/parent-build
# A library must not make its users' warnings errors: werror is off by default
# (issue 12 part 1, branch harden). Until that default is in this tree, the
# parent turns it off for the subproject, and says so; once it is, nothing is
# passed and a -Werror in the subproject's flags fails below.
sub_args=()
if python3 - "$src/meson.build" <<'PY'
import re, sys
m = re.search(r"project\((.*?)\n\)", open(sys.argv[1]).read(), flags=re.S)
sys.exit(0 if m and re.search(r"'werror=true'", m.group(1)) else 1)
PY
then
    sub_args=(-Dsgdlab:werror=false)
    echo "consumer: NOTE: libsgdlab still defaults to werror=true (the harden branch turns it off); the parent passes -Dsgdlab:werror=false"
fi
echo "consumer: meson subproject (wrap, buildtype=debug)"
env -u PKG_CONFIG_PATH meson setup "$pb" "$parent" --buildtype=debug --force-fallback-for=sgdlab "${sub_args[@]}" > "$work/parent.log" 2>&1 ||
    { cat "$work/parent.log"; echo "consumer: meson setup of the parent failed"; exit 1; }
ninja -C "$pb" >> "$work/parent.log" 2>&1 || { cat "$work/parent.log"; echo "consumer: the parent did not build"; exit 1; }
run "parent (meson subproject)" "$pb/parent"
n=$((n + 1))
python3 - "$pb" <<'PY'
import json, os, subprocess, sys
pb = sys.argv[1]
targets = json.loads(subprocess.run(['meson', 'introspect', pb, '--targets'], check=True, capture_output=True, text=True).stdout)
ours = [t for t in targets if t.get('subproject') == 'sgdlab']
# The library (shared and static) and the pieces it is made of (the SIMD
# kernels' static libraries, not installed); no program, docs or tests.
extra = sorted(t['name'] for t in ours if t['name'] != 'sgdlab' and not (t['type'] == 'static library' and not t['installed']))
if sorted(t['name'] for t in ours if t['name'] == 'sgdlab') != ['sgdlab', 'sgdlab'] or extra:
    sys.exit('consumer: the subproject built more than the library: %s' % sorted(t['name'] for t in ours))
flags = {}
for c in json.load(open(os.path.join(pb, 'compile_commands.json'))):
    flags[c['file']] = c['command'].split()
parent = [f for f in flags if f.endswith('parent.c')]
lib = [f for f in flags if '/subprojects/sgdlab/lib/' in f]
if len(parent) != 1 or not lib:
    sys.exit('consumer: compile_commands.json lacks the parent or the library')
ours_only = {'-Werror', '-Wshadow', '-Wstrict-prototypes', '-Wmissing-prototypes', '-Wvla', '-Wformat=2',
             '-fno-math-errno', '-Wpedantic', '-Wextra'}
leaked = sorted(ours_only & set(flags[parent[0]]))
if leaked:
    sys.exit('consumer: libsgdlab flags reached the parent: %s' % leaked)
for f in lib:
    if '-Werror' in flags[f] or '-O0' not in flags[f]:
        sys.exit('consumer: %s was built with %s' % (f, ' '.join(flags[f])))
print('consumer: the subproject built only the library, at -O0 without -Werror (%d files); '
      'nothing of its flags reached the parent' % len(lib))
PY

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
