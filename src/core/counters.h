/* SPDX-License-Identifier: MIT */
/*
 * counters.h - the one list of mempool's event counters (mimalloc's
 * MI_STAT_FIELDS style). Each row names one counter once; everything else
 * is generated from the rows or checked against them:
 *
 *   - the mp_slot field of that name (layout.h; a row without the field
 *     does not compile, see stats.c), and the slot's place in
 *     mp_header.retired (the row's position: APPEND ONLY, the order is
 *     shared-memory layout);
 *   - folding a slot into `retired` when it is claimed (worker.c);
 *   - the fields of that name in struct mempool_stats (pool totals) and
 *     struct mempool_worker_stats (public header; checked by compiling the
 *     copy loops in stats.c);
 *   - the JSON keys totals.<name> and workers[].<name> (json.c);
 *   - the Prometheus families mempool_<prom>_total and
 *     mempool_worker_<prom>_total (tools/top_export.c);
 *   - the README "Stats schema" rows (tests/check_counters.sh).
 *
 * MP_COUNTERS(X) calls X(name, prom, div, help) per counter:
 *   name  the field and JSON key
 *   prom  the Prometheus name stem, in base units (seconds, bytes)
 *   div   the Prometheus value is the count divided by this
 *   help  one line for # HELP and the README
 *
 * MP_POOL_COUNTERS(X) are pool-wide totals kept only in the header:
 * X(name, header field, help); JSON totals.<name>, Prometheus
 * mempool_<name>_total.
 *
 * This header includes nothing, so tools may include it too.
 */
#ifndef MEMPOOL_COUNTERS_H
#define MEMPOOL_COUNTERS_H

#define MP_COUNTERS(X)                                                       \
    X(sets, sets, 1, "Objects published (set, set_obj, publish).")           \
    X(gets, gets, 1, "Successful gets.")                                     \
    X(deletes, deletes, 1, "Deletes.")                                       \
    X(releases, releases, 1, "Releases of pins.")                            \
    X(refs, refs, 1, "mempool_ref() calls.")                                 \
    X(unrefs, unrefs, 1, "mempool_unref() calls.")                           \
    X(set_errors, set_errors, 1, "Sets that failed for lack of room.")       \
    X(spills, spills, 1, "Spill files written.")                             \
    X(spill_bytes, spill_bytes, 1, "Payload bytes of spill files written.")  \
    X(spill_ns, spill_seconds, 1e9, "Time spent writing spill files.")       \
    X(spill_errors, spill_errors, 1, "Spill file writes that failed.")       \
    X(restores, restores, 1, "Gets served from a spill file.")               \
    X(restore_bytes, restore_bytes, 1,                                       \
      "Bytes of gets served from spill files.")                              \
    X(destroys, destroys, 1,                                                 \
      "DESTROY_ON_EVICT objects dropped, not spilled.")                      \
    X(corrupt_files, corrupt_files, 1, "Spill files a get found corrupt.")   \
    X(spill_refused, spill_refused, 1,                                       \
      "Objects not spilled: the spill directory failed its check.")

#define MP_POOL_COUNTERS(X)                                                  \
    X(reaped_workers, reaped, "Dead workers reaped.")                        \
    X(recovered_pins, recovered_pins,                                        \
      "Pins dropped for workers that died or closed holding them.")          \
    X(rebuilds, rebuilds, "Allocator rebuilds after a lock holder died.")

/* MP_CTR_<name>: a counter's index in MP_COUNTERS and mp_header.retired. */
#define MP_CTR_ENUM(name, prom, div, help) MP_CTR_##name,
enum { MP_COUNTERS(MP_CTR_ENUM) MP_NCOUNTERS };
#undef MP_CTR_ENUM

#endif /* MEMPOOL_COUNTERS_H */
