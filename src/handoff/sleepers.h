/* SPDX-License-Identifier: MIT */
/*
 * sleepers.h - who sleeps on a futex word of the handoff, counted so that
 * a waker makes the FUTEX_WAKE system call only when someone is asleep,
 * and once per sleeper.
 *
 * Each such futex word (a channel's send_seq and recv_seq, the names'
 * names_seq) has a 64-bit sleepers word beside it. A waiter goes through
 * two states on its way to sleep:
 *
 *   checking  it read the futex word (mp_sleep_seen()) and makes its last
 *             check of the condition. Not counted: a waker bumps the futex
 *             word after every change (mp_signal(), a write to a line the
 *             waker owns anyway), so either the last check sees the change
 *             or the FUTEX_WAIT finds the word moved and returns at once.
 *   counted   the check failed: it counts itself (seq_cst), looks at the
 *             word once more, and then calls FUTEX_WAIT. The waker loads
 *             the count after its bump (seq_cst): a waiter whose
 *             FUTEX_WAIT saw the old word had counted itself before, so
 *             the waker sees it and wakes it. A waiter whose second look
 *             finds the word moved takes itself off without the system
 *             call, which would only have found it moved too: a consumer
 *             close behind its producer on another CPU counted itself
 *             just as the next item's bump landed about once per twelve
 *             items, each a FUTEX_WAIT for nothing (20-34% fewer futex
 *             calls in a bare send/recv stream pinned to two CPUs).
 *
 * So a waker pays the system call only for counted waiters, not for the
 * many that are merely re-checking (with four receivers on two CPUs, most
 * of them). A waiter stopped or killed while checking is not counted and
 * costs nothing. The second look does not close the window between it
 * and FUTEX_WAIT's own check in the kernel (~0.5 us of system call entry
 * and futex key lookup): a stream consumer close behind its producer on
 * another CPU still counted itself about once per 50-120 items and had
 * 9 of 10 of those FUTEX_WAITs return EAGAIN, each after a FUTEX_WAKE for
 * nobody by the producer. Such a receiver now spins briefly before it
 * gets here (spin.h: STREAM), and is counted only when its producer
 * really paused.
 *
 * Counted is not yet asleep: a waiter preempted between counting itself
 * and FUTEX_WAIT (or between FUTEX_WAIT's return and taking itself off),
 * stopped, or killed, stays counted while no FUTEX_WAKE can find it - on
 * two CPUs shared by eight processes, for a whole time slice, during which
 * every signal made a FUTEX_WAKE that woke nobody (15 per sleep). Such a
 * waiter read its futex word before the bump of the signal that found it
 * missing, so it will never sleep on that word: FUTEX_WAIT would find it
 * moved. The word keeps E, the newest futex word value a counted waiter
 * read, and a DRY mark: a waker whose FUTEX_WAKE found nobody, when every
 * counted waiter read the word before its bump (E older than it), marks
 * the word DRY if nothing changed in it meanwhile (one CAS); later wakers
 * make no system call while it is DRY; a waiter that counts itself clears
 * it. A wake-up is never lost this way: at that FUTEX_WAKE nobody was
 * asleep, none of those counted then can go to sleep any more, and anyone
 * who counts itself afterwards unmarks it. So it is at most one spare
 * FUTEX_WAKE per counted waiter, stopped, preempted or dead.
 *
 * A woken sleeper must come off the count at once: until it does, every
 * signal makes another FUTEX_WAKE for nobody (in a stream, one system call
 * per item while the woken receiver is on its way). Both ends of a wake
 * know it happened - the waker (FUTEX_WAKE says how many it dequeued) and
 * the sleeper (its FUTEX_WAIT returned 0) - and either may be late: a woken
 * task not yet run on the other CPU, a waker preempted by the task it woke
 * before it could write. So whichever reports first takes the sleeper off.
 * The word holds, as a 64-bit integer,
 *
 *     V = E * 2^32 + DRY * 2^31 + C * 2^16 + D      (-32768 < D < 32768)
 *
 *   C  waiters counted, minus those back unwoken, minus the dequeues
 *      wakers reported (15 bits)
 *   D  dequeues reported by wakers minus dequeues reported by sleepers
 *
 * and the sleepers not yet woken are C + min(0, D) (C alone while wakers
 * are ahead, C + D while woken sleepers are). Both reports count real
 * dequeues, so this never says fewer than there are (no lost wake-up); a
 * report that never comes (its process died) only makes it say more.
 *
 * Layout version: waiters that are not counted while checking need wakers
 * that always bump; MP_FORMAT_VERSION 7 keeps older libraries (which bump
 * only for counted waiters, on a 32-bit count) out of pools that use this.
 */
#ifndef MEMPOOL_SLEEPERS_H
#define MEMPOOL_SLEEPERS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "failpoint.h"
#include "futex.h"

#define MP_SLEEPER  (UINT64_C(1) << 16)    /* one waiter in C */
#define MP_SL_DRY   (UINT64_C(1) << 31)
#define MP_SL_CMAX  0x7fffu
#define MP_SL_NAP   1000000u               /* uncounted sleeps: 1 ms */
/* Every counted sleep looks again after at most this long. A waker that
 * dies between its change and its signal (a sender SIGKILLed after its
 * ring commit, a binder after its bind), or a sleeper that a wake-one
 * dequeued and that dies before it acts, leaves the others asleep next
 * to a change nobody will signal: without a limit, until the next change,
 * which may never come (check_handoff_review: a receiver asleep for ever
 * beside the item of a killed sender). One look per 5 s per idle waiter
 * costs nothing measurable; it is a bound on a crash's damage, not how a
 * wake-up is normally delivered (long enough that tests which hold a
 * sleeper asleep on a loaded machine, check_handoff_sleep, still see it
 * dequeued rather than back on its own). A sleep with no deadline or
 * cap of its caller's has the handle's keeper thread look again for it
 * instead of a timer of its own (keeper.c: the timer cost ~350 ns a
 * sleep); MP_SL_UNCAPPED below. */
#define MP_SL_LOOK_NS 5000000000u
/* A counted sleep's cap when someone else looks again for it (the
 * handle's keeper thread, keeper.h): none. */
#define MP_SL_UNCAPPED UINT64_MAX

/* V - D: the fields above D without D's borrow. */
static inline uint64_t mp_sl_rest(uint64_t v)
{
    int16_t d = (int16_t)(uint16_t)(v & 0xffffu);
    return v - (uint64_t)(int64_t)d;
}

/* The sleepers not yet woken that word value @p v counts. */
static inline uint32_t mp_sleepers(uint64_t v)
{
    int32_t d = (int16_t)(uint16_t)(v & 0xffffu);
    uint32_t c = (uint32_t)(mp_sl_rest(v) >> 16) & MP_SL_CMAX;
    if (d >= 0)
        return c;
    /* Fewer than none is a damaged word: say someone sleeps (a spare
     * wake-up costs a system call; a missed one, a stuck waiter). */
    return c >= (uint32_t)-d ? c - (uint32_t)-d : 1;
}

static inline bool mp_sleepers_dry(uint64_t v)
{
    return (mp_sl_rest(v) & MP_SL_DRY) != 0;
}

/* Count ourselves, having read @p seen: C + 1, E the newer of E and
 * @p seen (@p seen alone if nobody else is counted or the word is DRY:
 * the others then read the word before any bump to come), DRY off.
 * False if C is full (a damaged word): do not count, nap instead. */
static inline bool mp_sleeper_add(_Atomic uint64_t *sl, uint32_t seen)
{
    uint64_t v = atomic_load(sl), nv;
    do {
        uint64_t rest = mp_sl_rest(v);
        uint32_t c = (uint32_t)(rest >> 16) & MP_SL_CMAX;
        uint32_t e = (uint32_t)(rest >> 32);
        if (c >= MP_SL_CMAX)
            return false;
        if (c == 0 || (rest & MP_SL_DRY) || (int32_t)(seen - e) > 0)
            e = seen;
        nv = ((uint64_t)e << 32) + (uint64_t)(c + 1) * MP_SLEEPER +
             (v - rest);             /* D, with its borrow */
    } while (!atomic_compare_exchange_weak(sl, &v, nv));
    return true;
}

/* Back without a dequeue: C - 1 (E and DRY stay: one fewer counted
 * waiter cannot make a sleeper the mark hides). */
static inline void mp_sleeper_drop(_Atomic uint64_t *sl)
{
    atomic_fetch_sub(sl, MP_SLEEPER);
}

/* Dequeue up to @p n sleepers of @p word and report them (C -= k,
 * D += k). The caller bumped @p word already. 0 if nobody was asleep. */
static inline uint32_t mp_wake_counted(_Atomic uint32_t *word,
                                       _Atomic uint64_t *sl, int n)
{
    uint64_t k = (uint64_t)mp_futex_wake(word, n);
    if (k)
        atomic_fetch_add(sl, k - k * MP_SLEEPER);
    return (uint32_t)k;
}

/* Bump @p word and wake up to @p n of its sleepers, whether or not any
 * are counted (destroy: everyone must look again). */
static inline void mp_wake(_Atomic uint32_t *word, _Atomic uint64_t *sl,
                           int n)
{
    atomic_fetch_add(word, 1);
    mp_wake_counted(word, sl, n);
}

/* After a change a waiter may wait for: bump @p word (waiters that are
 * checking see it), then, seq_cst after the bump, wake up to @p n of the
 * counted sleepers unless there are none or the word is DRY. A FUTEX_WAKE
 * that finds nobody while every counted waiter read @p word before this
 * bump (E older than it, by less than 2^30: no doubt about wrapping) marks
 * it DRY, if it is still as loaded. How many it woke. */
static inline uint32_t mp_signal(_Atomic uint32_t *word, _Atomic uint64_t *sl,
                                 int n)
{
    uint32_t s = atomic_fetch_add(word, 1) + 1, k;
    uint64_t v = atomic_load(sl);
    uint32_t e;
    if (!mp_sleepers(v) || mp_sleepers_dry(v))
        return 0;
    if ((k = mp_wake_counted(word, sl, n)) != 0)
        return k;
    e = (uint32_t)(mp_sl_rest(v) >> 32);
    if ((int32_t)(s - e) > 0 && s - e < (UINT32_C(1) << 30))
        atomic_compare_exchange_strong(sl, &v, v + MP_SL_DRY);
    return 0;
}

/* A waiter's first step: the futex word as it is before the last check. */
static inline uint32_t mp_sleep_seen(_Atomic uint32_t *word)
{
    return atomic_load(word);
}

/* The last check failed: count ourselves, sleep on @p word while it holds
 * @p seen (from mp_sleep_seen()) - at most @p cap_ns, and never longer
 * than MP_SL_LOOK_NS unless @p cap_ns is MP_SL_UNCAPPED (the keeper
 * looks again for us) - then be off the count: dequeued by a
 * waker, report it (D -= 1); back any other way, take ourselves off
 * (C -= 1). mp_futex_sleep()'s answer. */
static inline int mp_sleep(_Atomic uint32_t *word, _Atomic uint64_t *sl,
                           uint32_t seen, uint64_t deadline, uint64_t cap_ns)
{
    int rc;
    MP_FP(wait_checking);
    if (!mp_sleeper_add(sl, seen)) {
        rc = mp_futex_sleep(word, seen, deadline, MP_SL_NAP);
        if (rc != 1)
            return rc;
        /* A waker took us off C: put that back (C + 1, D - 1). */
        atomic_fetch_add(sl, MP_SLEEPER - 1);
        return 0;
    }
    MP_FP(wait_counted);
    /* Moved already (a waker's bump since @p seen): FUTEX_WAIT would
     * return at once; a waker that saw our count may still FUTEX_WAKE
     * for nobody, as before. */
    if (atomic_load(word) != seen) {
        mp_sleeper_drop(sl);
        return 0;
    }
    if (cap_ns == MP_SL_UNCAPPED)
        cap_ns = 0;
    else if (!cap_ns || cap_ns > MP_SL_LOOK_NS)
        cap_ns = MP_SL_LOOK_NS;
    rc = mp_futex_sleep(word, seen, deadline, cap_ns);
    if (rc == 1) {
        MP_FP(wait_woken);
        atomic_fetch_sub(sl, 1u);
    } else {
        mp_sleeper_drop(sl);
    }
    return rc;
}

#endif /* MEMPOOL_SLEEPERS_H */
