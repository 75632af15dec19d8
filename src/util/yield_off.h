/* SPDX-License-Identifier: MIT */
/*
 * yield_off.h - when a thread's sched_yield() calls are put off: the one
 * back-off rule of the library's two yielders, a channel waiter giving a
 * peer on its CPU the CPU (handoff/spin.c, spin.h: YIELD) and a publish
 * that woke get_wait sleepers (core/entry_wake.c). Here, in util, because
 * core cannot call up into handoff, and both keep one rule.
 *
 * A yield that comes back more than MP_YIELD_LATE_NS after it began let
 * somebody else run: sched_yield() puts the yielder behind everyone
 * runnable on its CPU, a whole time slice beside a CPU hog (round trips
 * of 2.7 ms, session 7). That thread's yields are then off for
 * MP_YIELD_OFF_MIN_NS, doubling with every late one up to
 * MP_YIELD_OFF_MAX_NS. Quick yields in between do not reset it (beside a
 * hog some yields are quick, the hog was not due): the back-off is
 * forgotten only after MP_YIELD_OFF_MAX_NS without a late yield
 * (forgetting it at each quick one still lost a slice every few ms beside
 * a hog: 8.7 us round trips against 5.6-6.1).
 */
#ifndef MEMPOOL_YIELD_OFF_H
#define MEMPOOL_YIELD_OFF_H

#include <stdbool.h>
#include <stdint.h>

#define MP_YIELD_LATE_NS    50000u      /* a yield that let someone else run */
#define MP_YIELD_OFF_MIN_NS 4000000u    /* yields off after a late one */
#define MP_YIELD_OFF_MAX_NS 1000000000u /* ... doubling up to this */

/* One thread's back-off (keep it _Thread_local; zero: yields on): its
 * yields are off until @c off (CLOCK_MONOTONIC ns); @c backoff is the
 * last put-off, @c late when the last late yield came back. */
typedef struct mp_yield_off {
    uint64_t off, backoff, late;
} mp_yield_off;

/* A yield that began at @p t0 came back at @p t1: a late one puts the
 * next ones off. True if it was late. */
static inline bool mp_yield_timed(mp_yield_off *y, uint64_t t0, uint64_t t1)
{
    if (t1 - t0 <= MP_YIELD_LATE_NS) {
        if (y->backoff && t1 - y->late > MP_YIELD_OFF_MAX_NS)
            y->backoff = 0;              /* calm for a while: forget */
        return false;
    }
    y->backoff = y->backoff ? y->backoff * 2 : MP_YIELD_OFF_MIN_NS;
    if (y->backoff > MP_YIELD_OFF_MAX_NS)
        y->backoff = MP_YIELD_OFF_MAX_NS;
    y->late = t1;
    y->off = t1 + y->backoff;
    return true;
}

#endif /* MEMPOOL_YIELD_OFF_H */
