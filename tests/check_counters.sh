#!/bin/sh
# SPDX-License-Identifier: MIT
#
# check_counters.sh - README's "Stats schema" table and the counter list
# (src/core/counters.h) name the same counters: every MP_COUNTERS row is
# documented as totals.<name> and workers[].<name>, every MP_POOL_COUNTERS
# row as totals.<name>, and every totals.* row of the README is a counter.
# (check_stats then checks that the JSON document has exactly the README's
# fields, and the build checks the struct fields.)
# Usage: check_counters.sh SOURCE_DIR
set -u
root=${1:?usage: check_counters.sh SOURCE_DIR}
hdr=$root/src/core/counters.h
readme=$root/README.md
bad=0

rows() {        # names of the rows of X-macro $1
    sed -n "/^#define $1(X)/,/^\$/p" "$hdr" |
        sed -n 's/^[[:space:]]*X(\([a-z_]*\),.*/\1/p'
}
worker=$(rows MP_COUNTERS)
pool=$(rows MP_POOL_COUNTERS)
[ -n "$worker" ] && [ -n "$pool" ] || { echo "no rows read from $hdr"; exit 1; }

for n in $worker $pool; do
    grep -q "^| \`totals\.$n\` |" "$readme" ||
        { echo "README lacks totals.$n"; bad=1; }
done
for n in $worker; do
    grep -q "^| \`workers\[\]\.$n\` |" "$readme" ||
        { echo "README lacks workers[].$n"; bad=1; }
done
for n in $(sed -n 's/^| `totals\.\([a-z_]*\)` |.*/\1/p' "$readme"); do
    echo " $worker $pool " | tr '\n' ' ' | grep -q " $n " ||
        { echo "README documents totals.$n, which counters.h does not list"; bad=1; }
done
[ $bad -eq 0 ] && echo "counters: README and counters.h agree ($(echo $worker $pool | wc -w) counters)"
exit $bad
