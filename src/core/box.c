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
 * The rest of the boxes' story is in the files beside this one:
 * box_hazard.c (a live worker acting on a box no record holds: the
 * announcements and hazards that keep a sweep and a claim off it),
 * box_sweep.c (freeing orphans), box_expire.c (dropping references in
 * flight past their TTL) and box_check.c (mempool_check's verdict).
 *
 * A record never names a free box: it lets go of the box (CAS) before the
 * box is freed. So a stale back word never makes an orphan look held.
 * The sweep runs when a worker is reaped (worker.c), and from
 * mempool_check(); orphans only come from deaths, so that is enough.
 */
#include <errno.h>

#include "box.h"
#include "entry.h"
#include "failpoint.h"
#include "internal.h"

static int take_box(mempool *p, uint32_t from, uint32_t n, uint64_t w)
{
    for (uint32_t i = from; i < from + n; i++) {
        uint64_t zero = 0;
        if (atomic_load_explicit(&p->boxw[i], memory_order_relaxed) != 0 ||
            !atomic_compare_exchange_strong(&p->boxw[i], &zero, w))
            continue;
        /* seq_cst after our CAS: a hazard holder (a sweep, a flight
         * taker or expirer) that judges box i either sees our word or we
         * see its hazard (box_hazard.c) and give the box back - it is
         * PREP of ours, nobody else writes it. */
        if (MP_UNLIKELY(atomic_load(&p->hand->sweeping)) &&
            mempool__box_hazard(p, i)) {
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
 * in 50: "box held by no record"; check_box_drop_out stops both hands
 * there). */
void mempool__box_drop_out(mempool *p, uint32_t b)
{
    if (b >= p->nbox)
        return;                         /* BOX1 0 or damaged: no box */
    for (;;) {
        uint64_t w = atomic_load(&p->boxw[b]);
        if (!w)
            return;
        MP_FP(box_dropping_out);        /* its writer may commit it now */
        if (mempool__box_drop(p, b, w))
            return;
    }
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
