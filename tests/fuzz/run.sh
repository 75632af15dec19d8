#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run.sh SECONDS [TARGET...] - fuzz each TARGET for SECONDS (default 60).
#
# Targets (default: all of them, one after the other):
#   codec      fuzz_codec.c      the built-in codec decoders
#   dref       fuzz_dref.c       DRefs and object operations on a live pool
#   attach     fuzz_attach.c     mutated arena images attached without CREATE
#   spillfile  fuzz_spillfile.c  spill/saved files mapped back
#
# Builds the targets with clang (-fsanitize=fuzzer,address,undefined) in a
# temporary directory, copies the committed corpus there (tests/fuzz/corpus
# for codec, tests/fuzz/corpus-<target> for the others) plus seeds freshly
# written by fuzz_seeds (they match this build's arena layout), and runs
# libFuzzer for the given time per target. Prints the executions of each.
# Exit status: 0 when no target crashed (or when clang's libFuzzer is
# unavailable and cannot be installed: then it says so and skips),
# non-zero on a crash, sanitizer report, leak, timeout (a hang: -timeout=10)
# or build failure. Crashing inputs are copied to tests/fuzz/crashes/ and
# their paths printed: add each one to the target's corpus (codec: to
# test_fuzz_regressions in tests/check_codec.c) once the bug is fixed, so
# ctest (fuzz_<target>_corpus) replays it.
set -uo pipefail

DURATION=${1:-60}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
JOBS=$(nproc 2>/dev/null || echo 1)
((JOBS > 2)) && JOBS=2
ALL_TARGETS=(codec dref attach spillfile)

if ! [[ $DURATION =~ ^[0-9]+$ ]] || ((DURATION < 1)); then
    echo "usage: $0 SECONDS [${ALL_TARGETS[*]}]" >&2
    exit 2
fi
shift $(($# ? 1 : 0))
TARGETS=("$@")
((${#TARGETS[@]})) || TARGETS=("${ALL_TARGETS[@]}")
for t in "${TARGETS[@]}"; do
    if [[ " ${ALL_TARGETS[*]} " != *" $t "* ]]; then
        echo "run.sh: unknown target '$t' (${ALL_TARGETS[*]})" >&2
        exit 2
    fi
done

# True if clang can link a libFuzzer program here.
have_libfuzzer() {
    local t
    command -v clang >/dev/null || return 1
    t=$(mktemp -d) || return 1
    printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
        'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
        'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)' \
        '{ (void)d; (void)n; return 0; }' >"$t/p.c"
    clang -fsanitize=fuzzer,address,undefined "$t/p.c" -o "$t/p" >/dev/null 2>&1
    local rc=$?
    rm -rf "$t"
    return $rc
}

if ! have_libfuzzer; then
    if ((EUID == 0)) && command -v apt-get >/dev/null; then
        echo "run.sh: installing clang libclang-rt-14-dev"
        DEBIAN_FRONTEND=noninteractive apt-get install -y clang \
            libclang-rt-14-dev >/dev/null ||
            { DEBIAN_FRONTEND=noninteractive apt-get update >/dev/null &&
              DEBIAN_FRONTEND=noninteractive apt-get install -y clang \
                  libclang-rt-14-dev >/dev/null; }
    fi
    if ! have_libfuzzer; then
        echo "run.sh: SKIP: clang with libFuzzer is not available" \
             "(apt-get install clang libclang-rt-14-dev)"
        exit 0
    fi
fi

WORK=$(mktemp -d /tmp/mempool-fuzz.XXXXXX) || exit 1
BUILD_TARGETS=(fuzz_seeds)
for t in "${TARGETS[@]}"; do BUILD_TARGETS+=("fuzz_$t"); done
echo "run.sh: building ${BUILD_TARGETS[*]} in $WORK/build"
if ! CC=clang cmake -S "$ROOT" -B "$WORK/build" -DMEMPOOL_FUZZ=ON \
        -DMEMPOOL_BUILD_TOOLS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        >"$WORK/configure.log" 2>&1 ||
   ! cmake --build "$WORK/build" --target "${BUILD_TARGETS[@]}" -j "$JOBS" \
        >"$WORK/build.log" 2>&1; then
    echo "run.sh: build failed; logs in $WORK" >&2
    tail -n 30 "$WORK/configure.log" "$WORK/build.log" >&2
    exit 1
fi
BIN="$WORK/build/tests/fuzz"
if ! "$BIN/fuzz_seeds" "$WORK/seeds" >"$WORK/seeds.log" 2>&1; then
    echo "run.sh: fuzz_seeds failed (committed seeds only):" >&2
    cat "$WORK/seeds.log" >&2
fi

# Leftovers of a target process that crashed (no atexit on a crash): its
# pools /dev/shm/mempool.fuzz-<target>-<pid> and dirs /tmp/fuzz-<t>-<pid>.*
sweep() {
    local f pid
    for f in /dev/shm/mempool.fuzz-* /tmp/fuzz-*-*.*; do
        [[ -e $f ]] || continue
        pid=${f%%#*}
        pid=${pid%%.??????}
        pid=${pid##*-}
        [[ $pid =~ ^[0-9]+$ ]] || continue
        kill -0 "$pid" 2>/dev/null && continue
        rm -rf "$f"
    done
}

FAILED=()
SUMMARY=()
mkdir -p "$HERE/crashes"
for t in "${TARGETS[@]}"; do
    corpus="$WORK/corpus-$t"
    mkdir -p "$corpus" "$WORK/artifacts-$t"
    if [[ $t == codec ]]; then
        cp "$HERE"/corpus/* "$corpus/" 2>/dev/null
        maxlen=8192
        extra=()
    else
        cp "$HERE/corpus-$t"/* "$corpus/" 2>/dev/null
        for f in "$WORK/seeds/corpus-$t"/*; do
            [[ -e $f ]] && cp "$f" "$corpus/fresh-$(basename "$f")"
        done
        extra=()
        case $t in
            dref) maxlen=1024 ;;
            # patches past the 4 KiB header need long inputs from the start
            attach) maxlen=8192 extra=(-len_control=0) ;;
            spillfile) maxlen=16384 ;;
        esac
    fi
    echo "run.sh: fuzz_$t for ${DURATION}s over $(ls "$corpus" | wc -l) seeds"
    "$BIN/fuzz_$t" "$corpus" \
        -max_total_time="$DURATION" -max_len=$maxlen -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 "${extra[@]}" \
        -artifact_prefix="$WORK/artifacts-$t/" >"$WORK/fuzz-$t.log" 2>&1
    rc=$?
    grep -E '^(#[0-9]+[[:space:]]+DONE|==[0-9]+==|SUMMARY|Test unit written|fuzz_[a-z_]*: )' \
        "$WORK/fuzz-$t.log" | head -n 40
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' \
        "$WORK/fuzz-$t.log" | tail -n 1)
    sweep
    if ((rc != 0)) || [[ -n $(ls -A "$WORK/artifacts-$t") ]]; then
        FAILED+=("$t")
        SUMMARY+=("fuzz_$t: ${execs:-?} executions, FAILED (status $rc)")
        for a in "$WORK/artifacts-$t"/*; do
            [[ -e $a ]] || continue
            cp "$a" "$HERE/crashes/$t-$(basename "$a")"
            echo "run.sh: fuzz_$t input: $HERE/crashes/$t-$(basename "$a")" >&2
        done
        echo "run.sh: fuzz_$t full log: $WORK/fuzz-$t.log" >&2
    else
        SUMMARY+=("fuzz_$t: ${execs:-?} executions, no crash")
    fi
done
rmdir "$HERE/crashes" 2>/dev/null

printf 'run.sh: %s\n' "${SUMMARY[@]}"
if ((${#FAILED[@]})); then
    echo "run.sh: FAIL: ${FAILED[*]}; work directory kept: $WORK" >&2
    exit 1
fi
echo "run.sh: PASS, no crash"
rm -rf "$WORK"
exit 0
