/* SPDX-License-Identifier: MIT */
/*
 * box.c - items the pool holds: the bindings of names, the items in
 * channel rings and the references in flight (layout.h, "handoff").
 *
 * A reference that is held by no worker - a refcounted object bound to a
 * name, sent into a channel, or given with mempool_ref_give() - is a box
 * with the REF bit: the pool holds it. Reference checks (object.c) count
 * boxes next to the workers' cells, so an object lives while a box holds
 * it, whoever made the box and whether that process still exists.
 *
 * Every box has a record that holds it: a name (its word names the box), a
 * channel ring slot (its word names the box), or, for flight, the box
 * itself. The back word says which. The one invariant:
 *
 *   a box is live  iff  it is PREP by a live worker,
 *                   or  it is referenced by its record
 *                       (for flight: it is HELD and not expired).
 *
 * Everything else is an orphan and anyone may free it (dropping its
 * reference, which may delete the object). That is the whole crash story:
 *
 *   - a sender builds the box (PREP), writes item and back, then commits
 *     it into the record with one CAS, then marks it HELD. Killed before
 *     the record CAS: an orphan PREP of a dead worker, freed - not sent.
 *     Killed after: referenced, so the sweep marks it HELD - sent.
 *   - a receiver adds its own reference cell, then takes the item out of
 *     the record with one CAS, then frees the box. Killed between: the box
 *     is an orphan, freed by the sweep; the receiver's cell is reaped as
 *     any dead worker's - the item was delivered and released with its
 *     reference, exactly once.
 *   - replacing a name or overwriting a broadcast slot leaves the old box
 *     an orphan for the one who replaced it, or for the sweep.
 *
 * "Orphan" needs one more condition: between the CAS that makes a record
 * let go of a box (a receive, a broadcast overwrite, a name replace or
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
 *
 * A record never names a free box: it lets go of the box (CAS) before the
 * box is freed. So a stale back word never makes an orphan look held.
 * The sweep runs when a worker is reaped (worker.c), and from
 * mempool_check(); orphans only come from deaths, so that is enough.
 */
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "entry.h"
#include "failpoint.h"
#include "futex.h"
#include "internal.h"

static uint32_t nbuckets(const mempool *p) { return p->nbox / 10; }
static uint32_t ovf_base(const mempool *p) { return nbuckets(p) * MP_BOX_BW; }

static uint32_t bucket_base(const mempool *p, uint32_t idx)
{
    return (idx % nbuckets(p)) * MP_BOX_BW;
}

static bool box_hazard(mempool *p, uint32_t b);

static int take_box(mempool *p, uint32_t from, uint32_t n, uint64_t w)
{
    for (uint32_t i = from; i < from + n; i++) {
        uint64_t zero = 0;
        if (atomic_load_explicit(&p->boxw[i], memory_order_relaxed) != 0 ||
            !atomic_compare_exchange_strong(&p->boxw[i], &zero, w))
            continue;
        /* seq_cst after our CAS: a hazard holder (a sweep, a flight
         * taker or expirer) that judges box i either sees our word or we
         * see its hazard ("hazards", below) and give the box back - it is
         * PREP of ours, nobody else writes it. */
        if (MP_UNLIKELY(atomic_load(&p->hand->sweeping)) && box_hazard(p, i)) {
            /* A CAS, not a store: the sweep's CAS of an equal stale word
             * (the nonce wrapped) may have freed it already, and a later
             * claim may hold it by the time we get here. */
            uint64_t mine = w;
            atomic_compare_exchange_strong(&p->boxw[i], &mine, 0);
            continue;
        }
        return (int)i;
    }
    return -1;
}

/* A box word is told apart from the same box's earlier words by its
 * nonce (7 bits): a holder of an old word (a receiver that took the box
 * out of its slot, a sweep, a flight taker) CASes with it, and must fail
 * once the box was freed and claimed again, even for the same object.
 * Nonces come from one pool-wide counter, so claims near in time differ
 * whoever makes them; a counter per handle (all starting at 0) gave the
 * first send of every fresh process the same word
 * (check_handoff_review: test_box_reuse_nonce). Taken in blocks of
 * NONCE_BLOCK, so the shared line is written once per that many claims,
 * not by every send. */
#define NONCE_BLOCK 8u

static uint32_t box_nonce(mempool *p)
{
    uint64_t w = atomic_load_explicit(&p->box_nonce, memory_order_relaxed);
    uint32_t base, left;
    do {
        base = (uint32_t)(w >> 32);
        left = (uint32_t)w;
        if (!left) {                 /* a new block (a lost race wastes one) */
            base = atomic_fetch_add_explicit(&p->hand->nonce_next,
                                             NONCE_BLOCK,
                                             memory_order_relaxed);
            left = NONCE_BLOCK;
        }
    } while (!atomic_compare_exchange_weak_explicit(
                 &p->box_nonce, &w, ((uint64_t)base << 32) | (left - 1),
                 memory_order_relaxed, memory_order_relaxed));
    return base + NONCE_BLOCK - left;
}

int mempool__box_claim(mempool *p, uint32_t idx, uint32_t gen, bool ref,
                       uint64_t back, uint32_t *b)
{
    uint32_t nonce = box_nonce(p);
    uint64_t w = MP_BOX_W(idx, gen, MP_BOX_PREP, (unsigned)p->slot + 1, ref,
                          nonce);
    int i = take_box(p, bucket_base(p, idx), MP_BOX_BW, w);
    if (i < 0) {
        /* Raise the count before taking: checkers must look there. */
        atomic_fetch_add(&p->hand->ovf_used, 1);
        i = take_box(p, ovf_base(p), p->nbox - ovf_base(p), w);
        if (i < 0) {
            atomic_fetch_sub(&p->hand->ovf_used, 1);
            return -ENOSPC;
        }
    }
    /* Private while PREP: nobody reads these but a sweep that found us
     * dead, and a stale back never names a record that holds this box.
     * Release stores, not seq_cst (three xchg per send on x86): they
     * only need to precede the record's commit CAS (seq_cst) for whoever
     * reads the box through that record; no load of ours must wait for
     * them (issue 12: the stream's send path). */
    atomic_store_explicit(&p->boxes[i].item, ((uint64_t)idx << 32) | gen,
                          memory_order_release);
    atomic_store_explicit(&p->boxes[i].expire, 0, memory_order_release);
    atomic_store_explicit(&p->boxes[i].back, back, memory_order_release);
    *b = (uint32_t)i;
    return 0;
}

void mempool__box_commit(mempool *p, uint32_t b)
{
    uint64_t w = atomic_load(&p->boxw[b]);
    if (MP_BOX_ST(w) != MP_BOX_PREP ||
        MP_BOX_WHO(w) != (unsigned)p->slot + 1)
        return;                 /* already taken out by a receiver */
    uint64_t nw = (w & ~(UINT64_C(3) << 15) & ~(UINT64_C(0x7f) << 8)) |
                  ((uint64_t)MP_BOX_HELD << 15);
    atomic_compare_exchange_strong(&p->boxw[b], &w, nw);
}

bool mempool__box_take(mempool *p, uint32_t b, uint64_t w)
{
    if (b >= p->nbox || !w ||
        !atomic_compare_exchange_strong(&p->boxw[b], &w, 0))
        return false;
    if (b >= ovf_base(p))
        atomic_fetch_sub(&p->hand->ovf_used, 1);
    return true;
}

struct take_arg {
    uint32_t b;
    uint64_t w;
};

static bool take_ref(mempool *p, void *arg)
{
    struct take_arg *t = arg;
    if (!mempool__box_take(p, t->b, t->w))
        return false;
    MP_FP(box_dropped);
    return true;
}

bool mempool__box_drop(mempool *p, uint32_t b, uint64_t w)
{
    struct take_arg t = { b, w };
    uint64_t item;
    uint32_t idx, gen;
    if (b >= p->nbox || !w)
        return false;
    /* Read the item before letting go: once free, a claimer rewrites it. */
    item = atomic_load(&p->boxes[b].item);
    idx = (uint32_t)(item >> 32);
    gen = (uint32_t)item;
    if (!MP_BOX_REF(w) || idx >= p->ntab || MP_BOX_IDX1(w) != idx + 1 ||
        p->slot < 0)
        return mempool__box_take(p, b, w);
    /* Maybe the last reference: the check is flagged before we let go. */
    return mempool__entry_refcheck_drop(p, idx, gen, take_ref, &t);
}

/* Drop box @p b, out of its record by our hand (a ring slot we overwrote
 * or closed, a name we rebound) and announced by us: nobody else frees
 * it, and it is not claimed again while not free. Its word may still say
 * PREP - its writer not yet at box_commit - and turn HELD under our CAS:
 * then drop it by its new word. One try, as the broadcast overwrite and
 * the name rebind made, left such a box HELD in no record, holding its
 * object for good (check_handoff_stress's thread cases under TSan, ~1 run
 * in 50: "box held by no record"). */
void mempool__box_drop_out(mempool *p, uint32_t b)
{
    uint64_t w;
    if (b >= p->nbox)
        return;                         /* BOX1 0 or damaged: no box */
    while ((w = atomic_load(&p->boxw[b])) && !mempool__box_drop(p, b, w))
        ;
}

/* Boxes of (idx, gen) in [from, from + n) that @p fn accepts; the first
 * one's position in *b. */
int mempool__box_find(mempool *p, uint32_t idx, uint32_t gen,
                      bool (*fn)(mempool *, uint32_t, uint64_t, void *),
                      void *arg)
{
    uint64_t key = MP_BOX_KEY(MP_BOX_W(idx, gen, 0, 0, 0, 0));
    uint32_t from = bucket_base(p, idx), n = MP_BOX_BW;
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t i = from; i < from + n; i++) {
            uint64_t w = atomic_load(&p->boxw[i]);
            if (w && MP_BOX_KEY(w) == key && fn(p, i, w, arg))
                return 1;
        }
        if (!atomic_load(&p->hand->ovf_used))
            break;
        from = ovf_base(p);
        n = p->nbox - from;
    }
    return 0;
}

static uint32_t count_in(mempool *p, uint32_t from, uint32_t n, uint64_t key,
                         bool any)
{
    uint32_t c = 0;
    for (uint32_t i = from; i < from + n; i++) {
        uint64_t w = atomic_load(&p->boxw[i]);
        if (w && MP_BOX_REF(w) && MP_BOX_KEY(w) == key) {
            c++;
            if (any)
                return c;
        }
    }
    return c;
}

static uint32_t box_refs(mempool *p, uint32_t idx, uint32_t gen, bool any)
{
    uint64_t key = MP_BOX_KEY(MP_BOX_W(idx, gen, 0, 0, 0, 0));
    uint32_t c = count_in(p, bucket_base(p, idx), MP_BOX_BW, key, any);
    if ((any && c) || !atomic_load(&p->hand->ovf_used))
        return c;
    return c + count_in(p, ovf_base(p), p->nbox - ovf_base(p), key, any);
}

bool mempool__box_held(mempool *p, uint32_t idx, uint32_t gen)
{
    return box_refs(p, idx, gen, true) != 0;
}

uint32_t mempool__box_count(mempool *p, uint32_t idx, uint32_t gen)
{
    return box_refs(p, idx, gen, false);
}

/* ---- taking: the announcements (see the top of this file) ------------ */

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
static bool who_alive(mempool *p, unsigned who, int dead, int8_t *memo)
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
static bool box_announced(mempool *p, uint32_t b, int dead, int8_t *memo,
                          const _Atomic uint64_t *mine)
{
    for (int s = 0; s < MP_WORKERS; s++) {
        for (unsigned k = 0; k < MP_TAKING; k++) {
            const _Atomic uint64_t *t = &p->slots[s].box_taking[k];
            if (t != mine && atomic_load(t) == (uint64_t)b + 1 &&
                who_alive(p, (unsigned)s + 1, dead, memo))
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
static bool box_hazard(mempool *p, uint32_t b)
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

bool mempool__box_referenced(mempool *p, uint32_t b, uint64_t w)
{
    uint64_t back = atomic_load(&p->boxes[b].back);
    uint32_t rec = MP_BACK_REC(back), slot = MP_BACK_SLOT(back);
    uint64_t v;

    switch (MP_BACK_KIND(back)) {
    case MP_BK_FLIGHT:
        return MP_BOX_ST(w) == MP_BOX_HELD;
    case MP_BK_NAME:
        if (rec >= p->nnames)
            return false;
        v = atomic_load(&p->names[rec].word);
        return (v >> 62) == MP_NM_BOUND && (uint32_t)v == b + 1;
    case MP_BK_CHAN:
        if (slot >= p->nring)
            return false;
        v = atomic_load(&p->ring[slot]);
        return (v & MP_RING_FULL) && v != MP_RING_CLOSED &&
               MP_RING_BOX1(v) == b + 1;
    default:
        return false;
    }
}

/* Is box @p b (word @p w) an orphan: not PREP of a live worker, not
 * referenced by its record (a referenced PREP of a dead worker is marked
 * HELD: it was committed), announced by no live worker (in a word other
 * than @p mine)? */
static bool box_orphan(mempool *p, uint32_t b, uint64_t w, int dead,
                       int8_t *memo, const _Atomic uint64_t *mine)
{
    if (MP_BOX_ST(w) == MP_BOX_PREP) {
        if (who_alive(p, MP_BOX_WHO(w), dead, memo))
            return false;
        if (mempool__box_referenced(p, b, w)) {   /* committed: keep */
            uint64_t nw = (w & ~(UINT64_C(3) << 15) &
                           ~(UINT64_C(0x7f) << 8)) |
                          ((uint64_t)MP_BOX_HELD << 15);
            atomic_compare_exchange_strong(&p->boxw[b], &w, nw);
            return false;
        }
    } else if (mempool__box_referenced(p, b, w)) {
        return false;
    }
    return !box_announced(p, b, dead, memo, mine);  /* a live taker's */
}

/* Free orphan @p b, judged again under our hazard (above). */
static bool sweep_free(mempool *p, uint32_t b, int dead, int8_t *memo)
{
    int k = mempool__box_announce(p, b);
    const _Atomic uint64_t *mine;
    bool freed = false;
    uint64_t w;
    if (k < 0)
        return false;              /* no word free: the next sweep */
    mine = &p->slots[p->slot].box_taking[k];
    /* seq_cst, after the hazard: from here b is not claimed again. */
    w = atomic_load(&p->boxw[b]);
    if (w && box_orphan(p, b, w, dead, memo, mine)) {
        MP_FP(box_sweeping);
        freed = mempool__box_drop(p, b, w);
    }
    mempool__box_unannounce(p, k);
    return freed;
}

uint64_t mempool__box_sweep(mempool *p, int dead)
{
    int8_t memo[MP_WORKERS];
    uint64_t freed = 0;
    if (p->slot < 0)
        return 0;                  /* an observer frees nothing */
    for (int i = 0; i < MP_WORKERS; i++)
        memo[i] = -1;
    mempool__hazard_enter(p);      /* before any hazard */
    for (uint32_t b = 0; b < p->nbox; b++) {
        uint64_t w = atomic_load_explicit(&p->boxw[b], memory_order_relaxed);
        if (!w)
            continue;
        w = atomic_load(&p->boxw[b]);
        if (box_orphan(p, b, w, dead, memo, NULL) &&
            sweep_free(p, b, dead, memo))
            freed++;
    }
    mempool__hazard_exit(p);
    if (freed)
        atomic_fetch_add(&p->hand->boxes_gc, freed);
    return freed;
}

bool mempool__flight_due(mempool *p, uint32_t b, uint64_t w, uint64_t now)
{
    uint64_t exp;
    if (!w || MP_BOX_ST(w) != MP_BOX_HELD ||
        MP_BACK_KIND(atomic_load(&p->boxes[b].back)) != MP_BK_FLIGHT)
        return false;
    exp = atomic_load(&p->boxes[b].expire);
    return exp && now >= exp;
}

/* Drop expired reference in flight @p b, judged again under our hazard
 * (above). */
static bool expire_one(mempool *p, uint32_t b, uint64_t now)
{
    int k = mempool__box_announce(p, b);
    bool dropped = false;
    uint64_t w;
    if (k < 0)
        return false;              /* no word free: the next sweep */
    /* seq_cst, after the hazard: from here b is not claimed again. */
    w = atomic_load(&p->boxw[b]);
    if (mempool__flight_due(p, b, w, now)) {
        MP_FP(take_expiring);
        dropped = mempool__box_drop(p, b, w);
    }
    mempool__box_unannounce(p, k);
    return dropped;
}

uint64_t mempool__flight_expire(mempool *p, bool force)
{
    uint64_t now = mempool__now_ns(), last = atomic_load(&p->hand->expire_ns);
    uint64_t n = 0;
    bool entered = false;
    if (p->slot < 0)
        return 0;                /* an observer does not drop references */
    /* One sweep per 10 ms is plenty for TTLs given in ms. */
    if (!force && (now - last < 10000000u ||
                   !atomic_compare_exchange_strong(&p->hand->expire_ns,
                                                   &last, now)))
        return 0;
    for (uint32_t b = 0; b < p->nbox; b++) {
        uint64_t w = atomic_load_explicit(&p->boxw[b], memory_order_relaxed);
        if (!mempool__flight_due(p, b, w, now))
            continue;
        if (!entered)
            mempool__hazard_enter(p);  /* the first due box only */
        entered = true;
        if (expire_one(p, b, now))
            n++;
    }
    if (entered)
        mempool__hazard_exit(p);
    if (n)
        atomic_fetch_add(&p->hand->flight_expired, n);
    return n;
}

/* fsck: an orphan is a failure only if it stays one and no live worker
 * announces it (a live receiver frees the box it took once it runs). */
static bool still_orphan(mempool *p, uint32_t b, uint64_t w)
{
    int8_t memo[MP_WORKERS];
    for (int i = 0; i < MP_WORKERS; i++)
        memo[i] = -1;
    for (int i = 0; i < 3; i++) {
        nanosleep(&(struct timespec){ 0, 2000000 }, NULL);
        if (atomic_load(&p->boxw[b]) != w ||
            mempool__box_referenced(p, b, w) ||
            box_announced(p, b, -1, memo, NULL))
            return false;
    }
    return true;
}

/* What is wrong with held box @p b (word @p w, item @p item), or NULL;
 * @p b's word is re-read before a verdict, so a box that moved meanwhile
 * is not blamed. */
static const char *box_fault(mempool *p, uint32_t b, uint64_t w,
                             uint64_t item)
{
    uint32_t idx = (uint32_t)(item >> 32);
    bool held = MP_BOX_ST(w) == MP_BOX_HELD;
    const mp_entry *e;
    if (MP_BOX_IDX1(w) == 0 || MP_BOX_IDX1(w) - 1 >= p->ntab ||
        (held && idx + 1 != MP_BOX_IDX1(w)))
        return atomic_load(&p->boxw[b]) == w ? "names no object entry"
                                              : NULL;
    if (b < ovf_base(p) && idx % nbuckets(p) != b / MP_BOX_BW &&
        atomic_load(&p->boxw[b]) == w)
        return "is outside its bucket";
    if (!held)
        return NULL;
    if (!mempool__box_referenced(p, b, w) && still_orphan(p, b, w))
        return "is held by no record";
    e = mp_entry_at(p, idx);
    if (MP_BOX_REF(w) && mp_entry_alive(mp_entry_word(e), (uint32_t)item) &&
        !(MP_LD(e->setflags) & MEMPOOL_PUT_REFCOUNTED))
        return "holds a reference to a plain object";
    return NULL;
}

int mempool__box_verify(mempool *p, char *why, size_t whylen)
{
    uint64_t ovf = 0;
    for (uint32_t b = 0; b < p->nbox; b++) {
        uint64_t w = atomic_load(&p->boxw[b]), item;
        const char *fault;
        if (!w)
            continue;
        if (b >= ovf_base(p))
            ovf++;
        item = atomic_load(&p->boxes[b].item);
        if ((fault = box_fault(p, b, w, item))) {
            snprintf(why, whylen, "box %u (entry %u) %s", b,
                     (unsigned)(item >> 32), fault);
            return MEMPOOL_ECORRUPT;
        }
    }
    if (ovf > atomic_load(&p->hand->ovf_used)) {
        snprintf(why, whylen, "%llu overflow boxes, count says %llu",
                 (unsigned long long)ovf,
                 (unsigned long long)atomic_load(&p->hand->ovf_used));
        return MEMPOOL_ECORRUPT;
    }
    return 0;
}

/* The handoff part of reaping dead slot @p d: its hold on the name
 * directory (every change there is one CAS: nothing half-done), its boxes,
 * and any reference in flight that is due. */
void mempool__box_reap(mempool *p, int d)
{
    uint32_t who = (uint32_t)d + 1;
    /* Its announcements count for nothing now; zeroed here, not only when
     * the slot is cleared, because a claim reaps the slot it takes and
     * never clears it: a stale word left there took one of the new
     * holder's words for good and spared that box for its whole life. */
    for (unsigned k = 0; k < MP_TAKING; k++)
        atomic_store(&p->slots[d].box_taking[k], 0);
    if (d != p->slot)              /* ours is cleared by our sweep */
        atomic_fetch_and(&p->hand->sweeping, ~(UINT64_C(1) << d));
    atomic_compare_exchange_strong(&p->hand->names_lock, &who, 0);
    mempool__box_sweep(p, d);
    mempool__flight_expire(p, true);
}

/* get_wait sleepers of entry @p idx (handoff/wait.c) sleep on the low half
 * of its word: wake them after a change that ends the wait. */
void mempool__entry_wake(mempool *p, uint32_t idx)
{
    mp_entry *e = mp_entry_at(p, idx);
    /* seq_cst after the caller's seq_cst CAS of the word: either we see
     * the sleeper's count or it sees the new word (Dekker). */
    if (atomic_load(&e->waiters))
        mp_futex_wake(mp_word_low(&e->word), INT_MAX);
}
