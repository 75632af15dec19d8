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
 */
#ifndef MEMPOOL_RECENCY_H
#define MEMPOOL_RECENCY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* This thread's newest stamp (any pool: stamps are one clock). */
extern _Thread_local uint64_t mempool__stamp_last;

static inline uint64_t mp_coarse_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A new stamp: the coarse clock, above this thread's previous one. */
static inline uint64_t mp_stamp_next(uint64_t now)
{
    uint64_t s = now > mempool__stamp_last ? now : mempool__stamp_last + 1;
    mempool__stamp_last = s;
    return s;
}

/* Mark *stamp most recently used; @p always for a set. Relaxed: a stamp
 * orders eviction candidates only, it publishes nothing. */
static inline void mp_stamp_touch(_Atomic uint64_t *stamp, bool always)
{
    uint64_t now = mp_coarse_ns();
    uint64_t cur = atomic_load_explicit(stamp, memory_order_relaxed);
    if (!always && cur >= now && cur >= mempool__stamp_last)
        return;                      /* already newest: leave the line */
    atomic_store_explicit(stamp, mp_stamp_next(now), memory_order_relaxed);
}

#endif /* MEMPOOL_RECENCY_H */
