/* SPDX-License-Identifier: MIT */
/*
 * flight.c - references in flight (MemPool.jl's send/receive counting):
 * mempool_ref_give() moves one of the caller's references of a refcounted
 * object to the pool, mempool_ref_take() moves one back to a worker, so a
 * DRef can cross any channel (a pipe, a socket, a file) without the object
 * dying in between or leaking when nobody takes it.
 *
 * A reference in flight is a box (box.c) whose back word says FLIGHT: it is
 * its own record, live while HELD and not expired.
 *
 *   give:  box PREP (the pool now holds one more)  -> drop the caller's
 *          cell -> box HELD. Killed before HELD: the box is a dead worker's
 *          orphan and is freed, the caller's cell is reaped - not given,
 *          and the reference is accounted once (dropped with the worker, as
 *          any reference of a dead worker). Killed after: given.
 *   take:  add the caller's cell -> free the box with one CAS. Killed
 *          between: the box is still there (not taken) and the cell is
 *          reaped. Killed after: taken, and reaped with the worker.
 *
 * Expiry: a box whose deadline has passed is dropped by whoever sweeps:
 * give and take (at most every 10 ms), the reaper, the spiller's tick,
 * mempool_reap() and mempool_check(). Dropping it may free the object.
 *
 * A taker or expirer judges a box by a word it read and then CASes that
 * word: it announces the box as a hazard first (box_hazard.c), so a
 * box freed meanwhile by another is not claimed again under it - after
 * 128 claims of the same object a new box (a channel item's too) would
 * carry the same word (check_flight_alias).
 */
#include <errno.h>

#include "failpoint.h"
#include "handoff.h"

int mempool_ref_give(mempool *p, mempool_dref r, int64_t ttl_ms)
{
    uint32_t idx, gen, b;
    mp_entry *e;
    int rc;

    if ((rc = mempool__writer_ok(p)) ||
        (rc = mempool__entry_of(p, r, &idx, &gen)))
        return rc;
    e = mp_entry_at(p, idx);
    if (!mp_entry_alive(atomic_load(&e->word), gen))
        return -ENOENT;
    if (!(MP_LD(e->setflags) & MEMPOOL_PUT_REFCOUNTED))
        return -EINVAL;
    if ((rc = mempool__box_claim(p, idx, gen, true,
                                 MP_BACK(MP_BK_FLIGHT, 0, 0), &b)))
        return rc;
    if (ttl_ms >= 0)
        atomic_store(&p->boxes[b].expire,
                     mempool__now_ns() + (uint64_t)ttl_ms * 1000000u + 1);
    MP_FP(give_boxed);
    if (mempool__ref_sub(&p->core, idx, gen)) {
        mempool__box_drop(p, b, atomic_load(&p->boxw[b]));
        return -EINVAL;              /* the caller holds no reference */
    }
    MP_FP(give_moved);
    mempool__box_commit(p, b);
    atomic_fetch_add_explicit(&p->hand->flight_given, 1,
                              memory_order_relaxed);
    mempool__flight_expire(p, false);
    return 0;
}

struct take_arg {
    uint64_t item;
    uint64_t now;
    int rc;
};

/* Is box @p b (word @p w) a HELD reference in flight of @p item? */
static bool flight_of(mempool *p, uint32_t b, uint64_t w, uint64_t item)
{
    return MP_BOX_ST(w) == MP_BOX_HELD && MP_BOX_REF(w) &&
           MP_BACK_KIND(atomic_load(&p->boxes[b].back)) == MP_BK_FLIGHT &&
           atomic_load(&p->boxes[b].item) == item;
}

/* Take reference in flight @p b (word @p w), judged under our hazard: or
 * drop it if it is expired. True to stop looking. */
static bool take_judged(mempool *p, uint32_t b, uint64_t w,
                        struct take_arg *t)
{
    uint32_t idx = (uint32_t)(t->item >> 32), gen = (uint32_t)t->item;

    if (mempool__flight_due(p, b, w, t->now)) {
        MP_FP(take_expiring);
        if (mempool__box_drop(p, b, w))        /* expired: the pool's */
            atomic_fetch_add(&p->hand->flight_expired, 1);
        return false;
    }
    if ((t->rc = mempool__ref_add(&p->core, idx, gen)))
        return true;                 /* -ENOBUFS: stop */
    /* A refcount check may have read the cells before ours and will read
     * the boxes after we free this one: settle makes it scan again. */
    if ((t->rc = mempool__ref_settle(p, idx, gen))) {
        mempool__ref_undo(p, idx, gen);
        return true;                 /* died first: nothing to take */
    }
    MP_FP(take_celled);
    if (mempool__box_take(p, b, w))
        return true;
    /* Someone else took it: give the cell back and look again. */
    mempool__ref_sub(&p->core, idx, gen);
    mempool__entry_refcheck(p, idx, gen);
    return false;
}

static bool take_one(mempool *p, uint32_t b, uint64_t w, void *a)
{
    struct take_arg *t = a;
    bool done = false;
    int k;

    if (!flight_of(p, b, w, t->item))
        return false;
    /* The word we CAS must be the box we judge (box_hazard.c): -1 (no
     * word free, damaged state) goes on unannounced, as before hazards. */
    k = mempool__box_announce(p, b);
    /* seq_cst, after the hazard: from here b is not claimed again. */
    w = atomic_load(&p->boxw[b]);
    if (flight_of(p, b, w, t->item))
        done = take_judged(p, b, w, t);
    mempool__box_unannounce(p, k);
    return done;
}

int mempool_ref_take(mempool *p, mempool_dref r)
{
    struct take_arg t = { 0, 0, -ENOENT };
    uint32_t idx, gen;
    int rc, found;

    if ((rc = mempool__writer_ok(p)) ||
        (rc = mempool__entry_of(p, r, &idx, &gen)))
        return rc;
    t.item = ((uint64_t)idx << 32) | gen;
    t.now = mempool__now_ns();
    mempool__hazard_enter(p);          /* before take_one's announcements */
    found = mempool__box_find(p, idx, gen, take_one, &t);
    mempool__hazard_exit(p);
    if (!found)
        return -ENOENT;
    if (t.rc == 0) {
        atomic_fetch_add_explicit(&p->hand->flight_taken, 1,
                                  memory_order_relaxed);
        mempool__flight_expire(p, false);
    }
    return t.rc;
}

/* References in flight now (stats). */
uint64_t mempool__flight_count(mempool *p)
{
    uint64_t n = 0;
    for (uint32_t b = 0; b < p->nbox; b++) {
        uint64_t w = atomic_load_explicit(&p->boxw[b], memory_order_relaxed);
        if (w && MP_BOX_ST(w) == MP_BOX_HELD &&
            MP_BACK_KIND(atomic_load(&p->boxes[b].back)) == MP_BK_FLIGHT)
            n++;
    }
    return n;
}
