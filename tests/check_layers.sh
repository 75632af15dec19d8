#!/bin/sh
# SPDX-License-Identifier: MIT
#
# check_layers.sh - the library's layers only call down.
#
#   util/ < core/ < spill/ < codec/ < handoff/ < obs/ < src/*.c (pool.c)
#
# (src/internal.h, the handle, counts as core; a folder not listed here,
# e.g. a new one, counts as just below the top until it is added.)
# Two checks, so the rule cannot rot quietly:
#   1. includes: no file of src/<layer>/ includes a header of a higher
#      layer (headers are found by bare name anywhere under src/);
#   2. calls: with the library's object files as arguments, no object of a
#      layer has an undefined mempool* symbol that a higher layer defines
#      (this also catches calls declared in the shared internal.h).
# Usage: check_layers.sh SRC_DIR [OBJECT_FILE...]; exit 0 or 1 with a list.
set -u
src=${1:?usage: check_layers.sh SRC_DIR [OBJECTS...]}
shift

rank() {        # rank of a path below src/ (a file or an object's source)
    case $1 in
    util/*) echo 0 ;;
    core/*) echo 1 ;;
    spill/*) echo 2 ;;
    codec/*) echo 3 ;;
    handoff/*) echo 4 ;;
    obs/*) echo 5 ;;
    */*) echo 8 ;;
    *.h) echo 1 ;;                      # internal.h: the handle
    *) echo 9 ;;                        # pool.c: wires the layers
    esac
}

bad=0
here=$(pwd)
cd "$src" || exit 1
for f in $(find . -name '*.[ch]' -o -name '*.def' | sed 's|^\./||' | sort); do
    r=$(rank "$f")
    for h in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f"); do
        hp=$(find . -name "$(basename "$h")" | sed 's|^\./||' | head -n 1)
        [ -n "$hp" ] || continue
        hr=$(rank "$hp")
        if [ "$hr" -gt "$r" ]; then
            echo "include: $f (layer $r) includes $hp (layer $hr)"
            bad=1
        fi
    done
done

if [ $# -gt 0 ]; then
    defs=$(mktemp)
    trap 'rm -f "$defs"' EXIT
    for o in "$@"; do
        case $o in /*) ;; *) o=$here/$o ;; esac
        s=${o#*/src/}; s=${s%.o}
        nm -g --defined-only "$o" 2>/dev/null |
            awk -v s="$s" '$2 ~ /^[TDRB]$/ && $3 ~ /^mempool/ {print $3, s}'
    done >"$defs"
    for o in "$@"; do
        case $o in /*) ;; *) o=$here/$o ;; esac
        s=${o#*/src/}; s=${s%.o}
        r=$(rank "$s")
        for u in $(nm -u "$o" 2>/dev/null | awk '$2 ~ /^mempool/ {print $2}'); do
            d=$(awk -v u="$u" '$1 == u {print $2; exit}' "$defs")
            [ -n "$d" ] || continue
            dr=$(rank "$d")
            if [ "$dr" -gt "$r" ]; then
                echo "call: $s (layer $r) uses $u of $d (layer $dr)"
                bad=1
            fi
        done
    done
fi
[ $bad -eq 0 ] && echo "layers: every include and call goes down"
exit $bad
