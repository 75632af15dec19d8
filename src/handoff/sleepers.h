/* SPDX-License-Identifier: MIT */
/*
 * sleepers.h - who sleeps on a futex word of the handoff, counted so that
 * a waker makes the FUTEX_WAKE system call only when someone sleeps, and
 * once per sleeper.
 *
 * Each such futex word (a channel's send_seq and recv_seq, the names'
 * names_seq) has a sleepers word beside it. A waiter adds itself (seq_cst)
 * before it reads the futex word and makes its last check, so either the
 * waker's seq_cst load after its change sees it, or that last check sees
 * the change (Dekker); and a bump of the futex word after the waiter read
 * it makes its FUTEX_WAIT return at once.
 *
 * A woken sleeper must come off the count at once: until it does, every
 * signal makes another FUTEX_WAKE for nobody (in a stream, one system call
 * per item while the woken receiver is on its way). Both ends of a wake
 * know it happened - the waker (FUTEX_WAKE says how many it dequeued) and
 * the sleeper (its FUTEX_WAIT returned 0) - and either may be late: a woken
 * task not yet run on the other CPU, a waker preempted by the task it woke
 * before it could write. So whichever reports first takes the sleeper off.
 * The word holds, as a 32-bit integer,
 *
 *     V = C * 65536 + D      (-32768 < D < 32768)
 *
 *   C  sleepers registered, minus those back unwoken, minus the dequeues
 *      wakers reported
 *   D  dequeues reported by wakers minus dequeues reported by sleepers
 *
 * and the sleepers not yet woken are C + min(0, D) (C alone while wakers
 * are ahead, C + D while woken sleepers are). Both reports count real
 * dequeues, so this never says fewer than there are (no lost wake-up); a
 * report that never comes (its process died) only makes it say more (a
 * spare FUTEX_WAKE), as does a sleeper killed asleep.
 */
#ifndef MEMPOOL_SLEEPERS_H
#define MEMPOOL_SLEEPERS_H

#include <stdatomic.h>
#include <stdint.h>

#include "futex.h"

#define MP_SLEEPER 65536u       /* one sleeper in C */

/* The sleepers not yet woken that word value @p v counts. */
static inline uint32_t mp_sleepers(uint32_t v)
{
    int32_t d = (int16_t)(uint16_t)(v & 0xffffu);
    uint32_t c = (v - (uint32_t)d) >> 16;
    if (d >= 0)
        return c;
    /* Fewer than none is a damaged word: say someone sleeps (a spare
     * wake-up costs a system call; a missed one, a stuck waiter). */
    return c >= (uint32_t)-d ? c - (uint32_t)-d : 1;
}

/* Count ourselves before the last check; or take that back unslept. */
static inline void mp_sleeper_add(_Atomic uint32_t *sl)
{
    atomic_fetch_add(sl, MP_SLEEPER);
}

static inline void mp_sleeper_drop(_Atomic uint32_t *sl)
{
    atomic_fetch_sub(sl, MP_SLEEPER);
}

/* Bump @p word and wake up to @p n of its sleepers, reporting the dequeued
 * (C -= k, D += k). */
static inline void mp_wake(_Atomic uint32_t *word, _Atomic uint32_t *sl, int n)
{
    uint32_t k;
    atomic_fetch_add(word, 1);
    k = (uint32_t)mp_futex_wake(word, n);
    if (k)
        atomic_fetch_add(sl, k - k * MP_SLEEPER);
}

/* After a change a sleeper may wait for: wake only if someone sleeps.
 * Without sleepers nothing is written. */
static inline void mp_signal(_Atomic uint32_t *word, _Atomic uint32_t *sl,
                             int n)
{
    if (mp_sleepers(atomic_load(sl)))
        mp_wake(word, sl, n);
}

/* Sleep on @p word while it holds @p seen (read after mp_sleeper_add()),
 * then be off the count: dequeued by a waker, report it (D -= 1); back any
 * other way, take ourselves off (C -= 1). mp_futex_sleep()'s answer. */
static inline int mp_sleep(_Atomic uint32_t *word, _Atomic uint32_t *sl,
                           uint32_t seen, uint64_t deadline, uint64_t cap_ns)
{
    int rc = mp_futex_sleep(word, seen, deadline, cap_ns);
    if (rc == 1)
        atomic_fetch_sub(sl, 1u);
    else
        mp_sleeper_drop(sl);
    return rc;
}

#endif /* MEMPOOL_SLEEPERS_H */
