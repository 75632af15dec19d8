/* SPDX-License-Identifier: MIT */
/*
 * recency.h - the recency stamps that order objects for LRU/MRU eviction
 * (mp_entry.stamp; spill.c sorts by them).
 *
 * A stamp is nanoseconds of CLOCK_MONOTONIC_COARSE (one system-wide clock,
 * so stamps of different processes compare), but never below the calling
 * thread's previous stamp + 1. Reading the coarse clock costs a few ns
 * where CLOCK_MONOTONIC cost ~35 ns per get (issue 11).
 *
 * A get stores a new stamp only when the entry's stamp is older than both
 * the current coarse tick and this thread's newest stamp. So:
 *   - readers of an object that nobody else touches write its cache line
 *     at most once per clock tick (the coarse resolution, 4 ms at HZ=250,
 *     see clock_getres(CLOCK_MONOTONIC_COARSE)), not once per get;
 *   - within one thread the order is exact: every touch that must move an
 *     entry ahead of another this thread touched gets a larger stamp
 *     (the thread's stamps strictly increase, and an entry is skipped only
 *     if its stamp is already >= all of them);
 *   - between threads or processes the order is exact to one tick: two
 *     touches less than a tick apart by different threads may be ordered
 *     either way.
 * The per-thread counter can run ahead of the clock only by the number of
 * stamps taken within one tick (1 ns each), far below the resolution.
 * A set always stores a fresh stamp (new generation, new object).
 *
 *
 * The thread's newest stamp lives in mempool__thr (thread.h) beside the
 * pin nonce: one TLS lookup per get.
 */
#ifndef MEMPOOL_RECENCY_H
#define MEMPOOL_RECENCY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "thread.h"

static inline uint64_t mp_coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Mark *stamp most recently used by thread @p t at clock @p now; @p always
 * for a set. Relaxed: a stamp orders eviction candidates only, it
 * publishes nothing. */
static inline void mp_stamp_at(struct mp_thread *t, _Atomic uint64_t *stamp,
                               uint64_t now, bool always)
{
    uint64_t last = t->stamp_last;
    uint64_t cur = atomic_load_explicit(stamp, memory_order_relaxed);
    if (!always && cur >= now && cur >= last)
        return;                      /* already newest: leave the line */
    last = now > last ? now : last + 1;
    t->stamp_last = last;
    atomic_store_explicit(stamp, last, memory_order_relaxed);
}

/* Mark *stamp most recently used; @p always for a set. */
static inline void mp_stamp_touch(_Atomic uint64_t *stamp, bool always)
{
    mp_stamp_at(&mempool__thr, stamp, mp_coarse_ns(), always);
}

#endif /* MEMPOOL_RECENCY_H */
