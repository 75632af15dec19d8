/* SPDX-License-Identifier: MIT */
/*
 * box_hazard.c - a live worker acting on a box that no record holds:
 * the announcements (box_taking words) of a taker, and the hazards of a
 * holder of a stale box word (a sweep, a flight taker or expirer), so
 * that no sweep frees and no claim reuses the box under it. The boxes
 * themselves and their invariant are in box.c.
 *
 * "Orphan" (box.c) needs one more condition: between the CAS that makes a
 * record let go of a box (a receive, a broadcast overwrite, a name replace or
 * drop, a channel close) and the free of that box, the box is held by no
 * record, yet a LIVE worker still acts on it (it frees it by its word).
 * A sweep that freed it let a new claim reuse the slot, and the 7-bit
 * nonce aliases after 128 claims: the taker, continued, freed a live box
 * (an item lost, the ring naming a free box). So the taker announces the
 * box in its own slot (box_taking) before that CAS and withdraws it after
 * the free, and the sweep frees no box a live worker announces:
 *
 *   the sweep frees box b  iff  b is not referenced by its record,
 *                               b is not PREP of a live worker,
 *                           and no live worker announces b.
 *
 * The announcement precedes the record's CAS and the sweep reads it after
 * the record (all seq_cst), so a sweep that saw the record let go sees the
 * announcement, or the taker has freed the box already. A dead taker's
 * announcement counts for nothing (its box is an orphan: freed, the item
 * delivered with its cell) and its reaper zeroes it.
 *
 * The sweep holds a stale word too (it judges, then CASes), and so do a
 * flight taker and expirer: they announce the box as a hazard that no
 * claim keeps, so the word they CAS is the box they judged ("hazards",
 * below).
 */
#include <sched.h>

#include "box.h"
#include "internal.h"

/* ---- taking: the announcements (see the top of this file) ----------- */

/* Announce box @p b in a free box_taking word of our slot; its index, or
 * -1 for an observer (which takes nothing). b = UINT32_MAX (no box yet)
 * announces nothing a box could match. One word per thread of ours in a
 * taking window: if all are busy (more threads than words), wait. A window
 * lasts microseconds, so words still busy after the peer wait bound were
 * damaged in shared memory: then go on unannounced (-1), as takers did
 * before announcements existed, rather than hang on corrupt state. */
int mempool__box_announce(mempool *p, uint32_t b)
{
    _Atomic uint64_t *t;
    uint64_t deadline = 0;
    if (p->slot < 0)
        return -1;
    t = p->slots[p->slot].box_taking;
    for (;;) {
        uint64_t now;
        for (unsigned k = 0; k < MP_TAKING; k++) {
            uint64_t zero = 0;
            /* seq_cst: before the record's CAS that follows (the top). */
            if (atomic_compare_exchange_strong(&t[k], &zero,
                                               (uint64_t)b + 1))
                return (int)k;
        }
        now = mempool__now_ns();
        if (!deadline)
            deadline = now + mempool__wait_bound_ns(p);
        else if (now >= deadline)
            return -1;
        sched_yield();
    }
}

/* Our announcement @p k now names box @p b (before another CAS try). */
void mempool__box_reannounce(mempool *p, int k, uint32_t b)
{
    if (k >= 0)
        atomic_store(&p->slots[p->slot].box_taking[k], (uint64_t)b + 1);
}

void mempool__box_unannounce(mempool *p, int k)
{
    /* Release: after the box's free (a seq_cst CAS) for a sweep that
     * reads the word empty; nothing of ours loads before the next
     * announce, itself a CAS. */
    if (k >= 0)
        atomic_store_explicit(&p->slots[p->slot].box_taking[k], 0,
                              memory_order_release);
}

/* 1 alive, 0 dead, per slot, asked once per sweep. */
bool mempool__box_who_alive(mempool *p, unsigned who, int dead,
                            int8_t *memo)
{
    int s = (int)who - 1;
    if (s < 0 || s >= MP_WORKERS || s == dead)
        return false;
    if (s == p->slot)
        return true;
    if (memo[s] < 0)
        memo[s] = (int8_t)mempool__slot_alive(&p->core, s);
    return memo[s] != 0;
}

/* Does a live worker (not @p dead) announce box @p b in a word other
 * than @p mine (our own hazard, or NULL)? Read after the box's record
 * (the top of this file). */
bool mempool__box_announced(mempool *p, uint32_t b, int dead, int8_t *memo,
                            const _Atomic uint64_t *mine)
{
    for (int s = 0; s < MP_WORKERS; s++) {
        for (unsigned k = 0; k < MP_TAKING; k++) {
            const _Atomic uint64_t *t = &p->slots[s].box_taking[k];
            if (t != mine && atomic_load(t) == (uint64_t)b + 1 &&
                mempool__box_who_alive(p, (unsigned)s + 1, dead, memo))
                return true;
        }
    }
    return false;
}

/* ---- hazards --------------------------------------------------------
 *
 * A sweep judges box b by its word w (read first), its record and the
 * announcements, then frees it with a CAS on w; a flight taker or expirer
 * (flight.c, mempool__flight_expire) judges a reference in flight by its
 * word and takes or drops it with a CAS on that word. Between the read
 * and the CAS (a preemption, a SIGSTOP) b may be freed by another and
 * claimed again; the 7-bit nonce makes a later claim of the same object
 * carry w again after 128 claims (and a HELD channel box of an object
 * looks like a HELD flight box of it), and the CAS freed that live box (an
 * item lost, the ring naming a free box: check_sweep_alias,
 * check_flight_alias). So none of them frees a box it did not judge after
 * announcing it as a hazard:
 *
 *   holder: bit s of hand->sweeping (hazard_enter) -> announce b in a
 *           box_taking word -> read w again -> judge -> CAS w -> 0
 *   claim:  CAS 0 -> w' -> read hand->sweeping; if a bit is set and that
 *           worker's box_taking names the box, give it back (store 0)
 *
 * All seq_cst: a claim whose CAS follows the holder's second read sees the
 * bit and the hazard and gives the box back, so from that read to the
 * CAS the box can be freed but not claimed again - the word the holder
 * CASes is the box it judged. (A sweep's judgement is the taker's rule
 * above, made after that read.) Other sweeps spare a box a live sweeper
 * announces: it frees it itself. A dead holder's bit and words are
 * cleared by its reaper (mempool__box_reap).
 *
 * The bit is the handle's, the hazards its threads': p->hazards counts
 * them, each enter sets the bit if it finds it clear, and the thread that
 * ends the last one clears it under HZ_CLEARING, which holds off new
 * ones until it is clear (else a new hazard could be left without its
 * bit between the count's drop and the clear). */
#define HZ_CLEARING (UINT32_C(1) << 31)

void mempool__hazard_enter(mempool *p)
{
    uint64_t bit;
    uint32_t v;
    if (p->slot < 0)
        return;                      /* an observer takes and frees nothing */
    bit = UINT64_C(1) << p->slot;
    v = atomic_load_explicit(&p->hazards, memory_order_relaxed);
    for (;;) {
        if (v & HZ_CLEARING) {
            sched_yield();           /* two stores away from clear */
            v = atomic_load_explicit(&p->hazards, memory_order_relaxed);
        } else if (atomic_compare_exchange_weak(&p->hazards, &v, v + 1)) {
            break;
        }
    }
    /* seq_cst, before any announcement of ours: a claim after it sees the
     * bit. Clear only while the count is 0, so a set bit stays set. */
    if (!(atomic_load(&p->hand->sweeping) & bit))
        atomic_fetch_or(&p->hand->sweeping, bit);
}

void mempool__hazard_exit(mempool *p)
{
    uint32_t v;
    if (p->slot < 0)
        return;
    v = atomic_load_explicit(&p->hazards, memory_order_relaxed);
    for (;;) {
        if (v == 0 || (v & HZ_CLEARING))
            return;                  /* unbalanced: nothing of ours */
        if (v > 1) {
            if (atomic_compare_exchange_weak(&p->hazards, &v, v - 1))
                return;
        } else if (atomic_compare_exchange_weak(&p->hazards, &v,
                                                HZ_CLEARING)) {
            break;                   /* the last: clear the bit */
        }
    }
    /* seq_cst, after our last free and withdrawal. */
    atomic_fetch_and(&p->hand->sweeping, ~(UINT64_C(1) << p->slot));
    atomic_store(&p->hazards, 0);
}

/* Does a live worker holding hazards announce box @p b? (A claim just
 * took it.) A dead one never CASes: its hazard counts for nothing, also
 * before its reaper clears it - one killed in a slot claim's reap (not
 * yet active) is reaped only when its slot is claimed again. */
bool mempool__box_hazard(mempool *p, uint32_t b)
{
    uint64_t m = atomic_load(&p->hand->sweeping);
    while (m) {
        int s = __builtin_ctzll(m);
        m &= m - 1;
        if (s >= MP_WORKERS)
            break;                      /* damaged: no such worker */
        for (unsigned k = 0; k < MP_TAKING; k++)
            if (atomic_load(&p->slots[s].box_taking[k]) == (uint64_t)b + 1)
                return mempool__slot_alive(&p->core, s);
    }
    return false;
}
