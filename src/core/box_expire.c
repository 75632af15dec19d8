/* SPDX-License-Identifier: MIT */
/*
 * box_expire.c - dropping references in flight past their TTL
 * (mempool_ref_give's ttl_ms; the give and take are handoff/flight.c).
 * It lives in core, not beside them, because core and the spill layer
 * call it - the reaper, mempool_check() and the spiller's tick - and
 * layers only call down. Each drop is judged again under a hazard
 * (box_hazard.c), so the word it CASes is the box it judged.
 */
#include "failpoint.h"
#include "internal.h"

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
 * (box_hazard.c). */
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
