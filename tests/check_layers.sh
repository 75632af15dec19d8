#!/bin/sh
# SPDX-License-Identifier: MIT
#
# check_layers.sh - the library's layers only call down.
#
#   util/ < core/ < spill/ < codec/ < handoff/ < obs/ < src/*.c (pool.c)
#   < compat/ (the deprecated names, forwarding to the public API)
#
# (src/internal.h, the handle, counts as core; a folder not listed here,
# e.g. a new one, counts as just below the top until it is added.)
# Three checks, so the rule cannot rot quietly:
#   1. includes: no file of src/<layer>/ includes a header of a higher
#      layer (headers are found by bare name anywhere under src/);
#   2. narrow views: the lowest core files (NARROW below) see only the
#      mapping (core.h's mp_core), never the handle: they neither include
#      internal.h nor take a mempool *; no file of core/ names the spill
#      layer's state (p->spill, spillstate.h) and only the box files
#      (box*.c, box.h: the pool's holds) and arena.c (which binds them)
#      name the handoff regions;
#   3. calls: with the library's object files as arguments, no object of a
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
    compat/*) echo 10 ;;
    */*) echo 8 ;;
    *.h) echo 1 ;;                      # internal.h: the handle
    *) echo 9 ;;                        # pool.c: wires the layers
    esac
}

bad=0
here=$(pwd)
cd "$src" || exit 1
files=$(find . -name '*.[ch]' -o -name '*.def' | sed 's|^\./||' | sort)
for f in $files; do
    r=$(rank "$f")
    for h in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f"); do
        hp=$(printf '%s\n' $files | grep -m 1 -e "^$h\$" -e "/$h\$")
        [ -n "$hp" ] || continue
        hr=$(rank "$hp")
        if [ "$hr" -gt "$r" ]; then
            echo "include: $f (layer $r) includes $hp (layer $hr)"
            bad=1
        fi
    done
done

# 2. narrow views
NARROW="core/core.h core/pin.c core/pincell.h core/thread.h core/entry.h core/recency.h core/counters.h"
for f in $NARROW; do
    [ -f "$f" ] || { echo "narrow: $f is missing (update NARROW)"; bad=1; }
    if grep -n -e '#[[:space:]]*include[[:space:]]*"internal.h"' \
            -e 'mempool[[:space:]]*\*' "$f" | grep -v '^[0-9]*:[[:space:]]*/\?\*'
    then
        echo "narrow: $f sees the handle (above: include or mempool *)"
        bad=1
    fi
done
for f in $(printf '%s\n' $files | grep '^core/'); do
    if grep -n -E -e '->spill\b' "$f"; then
        echo "core: $f names the spill layer's state (above)"
        bad=1
    fi
    case $f in core/box*.c | core/box.h | core/arena.c) continue ;; esac
    if grep -n -E '\bp->(hand|boxw|boxes|names|chans|ring|nbox|nnames|nring)\b' \
            "$f"; then
        echo "core: $f names the handoff regions (above): go through the box files"
        bad=1
    fi
done

if [ $# -gt 0 ]; then
    syms=$(mktemp)
    trap 'rm -f "$syms"' EXIT
    for o in "$@"; do           # "def|use SYMBOL SOURCE LAYER" per symbol
        case $o in /*) ;; *) o=$here/$o ;; esac
        s=${o#*/src/}; s=${s%.o}
        nm "$o" | awk -v s="$s" -v r="$(rank "$s")" '
            $1 == "U" && $2 ~ /^mempool/ { print "use", $2, s, r }
            $2 ~ /^[TDRB]$/ && $3 ~ /^mempool/ { print "def", $3, s, r }'
    done >"$syms" || bad=1
    awk '$1 == "def" { src[$2] = $3; layer[$2] = $4; next }
         { use[++n] = $0 }
         END {
             for (i = 1; i <= n; i++) {
                 split(use[i], f, " ")
                 if ((f[2] in layer) && layer[f[2]] > f[4]) {
                     printf "call: %s (layer %d) uses %s of %s (layer %d)\n",
                            f[3], f[4], f[2], src[f[2]], layer[f[2]]
                     bad = 1
                 }
             }
             exit bad
         }' "$syms" || bad=1
fi
[ $bad -eq 0 ] && echo "layers: every include and call goes down"
exit $bad
