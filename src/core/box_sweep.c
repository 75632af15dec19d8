/* SPDX-License-Identifier: MIT */
/*
 * box_sweep.c - freeing orphan boxes (box.c: a box no record holds, not
 * PREP of a live worker, announced by no live worker), and the handoff
 * part of reaping a dead worker. Orphans only come from deaths, so the
 * sweep runs when a worker is reaped (worker.c) and from mempool_check().
 * Each free is judged again under a hazard (box_hazard.c), so the word
 * the sweep CASes is the box it judged.
 */
#include "box.h"
#include "failpoint.h"
#include "internal.h"

/* Is box @p b (word @p w) an orphan: not PREP of a live worker, not
 * referenced by its record (a referenced PREP of a dead worker is marked
 * HELD: it was committed), announced by no live worker (in a word other
 * than @p mine)? */
static bool box_orphan(mempool *p, uint32_t b, uint64_t w, int dead,
                       int8_t *memo, const _Atomic uint64_t *mine)
{
    if (MP_BOX_ST(w) == MP_BOX_PREP) {
        if (mempool__box_who_alive(p, MP_BOX_WHO(w), dead, memo))
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
    /* A live taker's? */
    return !mempool__box_announced(p, b, dead, memo, mine);
}

/* Free orphan @p b, judged again under our hazard (box_hazard.c). */
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
