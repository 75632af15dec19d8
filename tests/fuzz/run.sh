#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# run.sh SECONDS - fuzz the codec decoders for SECONDS (default 60).
#
# Builds tests/fuzz/fuzz_codec with clang (-fsanitize=fuzzer,address,
# undefined) in a temporary directory, copies the seed corpus there and runs
# libFuzzer for the given time. Exit status: 0 when no crash was found (or
# when clang's libFuzzer is unavailable and cannot be installed: then it
# says so and skips), non-zero on a crash, leak, timeout or build failure.
# Crashing inputs are kept and their paths printed; add each one to
# test_fuzz_regressions in tests/check_codec.c.
set -uo pipefail

DURATION=${1:-60}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
JOBS=$(nproc 2>/dev/null || echo 1)
((JOBS > 2)) && JOBS=2

if ! [[ $DURATION =~ ^[0-9]+$ ]] || ((DURATION < 1)); then
    echo "usage: $0 SECONDS" >&2
    exit 2
fi

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
echo "run.sh: building fuzz_codec in $WORK/build"
if ! CC=clang cmake -S "$ROOT" -B "$WORK/build" -DMEMPOOL_FUZZ=ON \
        -DMEMPOOL_BUILD_TOOLS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        >"$WORK/configure.log" 2>&1 ||
   ! cmake --build "$WORK/build" --target fuzz_codec -j "$JOBS" \
        >"$WORK/build.log" 2>&1; then
    echo "run.sh: build failed; logs in $WORK" >&2
    tail -n 30 "$WORK/configure.log" "$WORK/build.log" >&2
    exit 1
fi

mkdir -p "$WORK/corpus" "$WORK/artifacts"
cp "$HERE"/corpus/* "$WORK/corpus/" 2>/dev/null
echo "run.sh: fuzzing for ${DURATION}s over $(ls "$WORK/corpus" | wc -l) seeds"
"$WORK/build/tests/fuzz/fuzz_codec" "$WORK/corpus" \
    -max_total_time="$DURATION" -max_len=8192 -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$WORK/artifacts/" 2>&1 | tee "$WORK/fuzz.log" |
    grep -E '^(#[0-9]+[[:space:]]+DONE|stat::|==[0-9]+==|SUMMARY|artifact_prefix|Test unit written)' 
rc=${PIPESTATUS[0]}

if ((rc != 0)) || [[ -n $(ls -A "$WORK/artifacts") ]]; then
    echo "run.sh: FAIL (status $rc); inputs:" >&2
    ls -1 "$WORK/artifacts"/* >&2 2>/dev/null
    echo "run.sh: full log: $WORK/fuzz.log" >&2
    exit $((rc ? rc : 1))
fi
echo "run.sh: PASS, no crash"
rm -rf "$WORK"
exit 0
