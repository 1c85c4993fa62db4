#!/bin/sh
# Runs every libFuzzer harness for a bounded time and fails on any crash,
# leak, timeout or out-of-memory. CI calls it (.ci/run); so can you.
#
#   tests/fuzz/run-fuzzers.sh [BUILD_DIR] [SECONDS_PER_FUZZER]
#
# BUILD_DIR (default: build-fuzz in the source tree) is configured with clang
# and -Dfuzzers=true if it is not already, and built. SECONDS_PER_FUZZER
# defaults to $FUZZ_SECONDS, else 60 (two harnesses: two minutes). Each fuzzer
# starts from its committed seed corpus (tests/fuzz/corpus/<name>/, never
# modified: new inputs go to a scratch directory) and its dictionary
# (tests/fuzz/<name>.dict) if there is one. FUZZ_JOBS=N runs N processes per
# fuzzer (default 1). Inputs that fail are kept in
# BUILD_DIR/fuzz-artifacts/<name>/ (crash-*, leak-*, timeout-*, oom-*): fix
# the bug, then add the input to the seed corpus.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${1:-$src/build-fuzz}
secs=${2:-${FUZZ_SECONDS:-60}}
jobs=${FUZZ_JOBS:-1}

if [ ! -f "$build/build.ninja" ]; then
    CC=${CC:-clang} CXX=${CXX:-clang++} meson setup "$build" "$src" -Dfuzzers=true -Dbuildtype=debugoptimized
fi
ninja -C "$build"

status=0
found=0
for fuzzer in "$build"/tests/fuzz/fuzz_*; do
    [ -f "$fuzzer" ] && [ -x "$fuzzer" ] || continue
    found=$((found + 1))
    name=$(basename "$fuzzer")
    name=${name#fuzz_}
    seeds=$here/corpus/$name
    artifacts=$build/fuzz-artifacts/$name
    scratch=$(mktemp -d)
    mkdir -p "$artifacts"
    set -- -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 \
        -detect_leaks=1 -print_final_stats=1 -artifact_prefix="$artifacts/"
    [ -f "$here/$name.dict" ] && set -- "$@" -dict="$here/$name.dict"
    [ "$jobs" -gt 1 ] && set -- "$@" -fork="$jobs"
    [ -d "$seeds" ] || seeds=
    echo "== $name: $secs s, $jobs process(es), seeds ${seeds:-none}"
    if ASAN_OPTIONS=detect_leaks=1 \
       UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
       "$fuzzer" "$@" "$scratch" $seeds; then
        echo "== $name: clean"
    else
        echo "== $name: FAILED; reproducer(s) in $artifacts:" >&2
        ls -l "$artifacts" >&2 || true
        status=1
    fi
    rm -rf "$scratch"
done
if [ "$found" -eq 0 ]; then
    echo "no fuzzers in $build/tests/fuzz (configure with -Dfuzzers=true and clang)" >&2
    exit 1
fi
exit $status
