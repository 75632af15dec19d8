/* SPDX-License-Identifier: MIT */
/*
 * prefetch.c - mempool_prefetch(): start the memory loads of gets the
 * caller is about to make, so that their misses overlap (issue 11,
 * target 6).
 *
 * A get pins its object with a locked CAS (pin.c), and a locked
 * instruction waits for every earlier load: the misses of successive gets
 * cannot overlap the way plain loads do, so a random get in a pool larger
 * than the caches pays two memory latencies back to back (the entry, then
 * the data it points to) - as a chain of plain lookups does, where the
 * same lookups made independently overlap ten of them
 * (mempool-bench --section scale). Given the next few DRefs, this first
 * asks for all their entry lines (prefetches neither fault nor wait), then
 * reads each entry's data offset - plain loads with nothing fencing
 * between them, so their misses overlap - and asks for each data line.
 * The gets that follow find both in cache. Nothing is pinned or written; a
 * stale offset costs one useless prefetch, never a wrong read: the get
 * checks everything again.
 */
#include "internal.h"

/* Entry of @p r in this pool, or NULL (not one of its DRefs). */
static mp_entry *entry_or_null(const mempool *p, mempool_dref r)
{
    uint32_t idx, gen;
    if (mempool__entry_of(p, r, &idx, &gen))
        return NULL;
    return &p->tab[idx];
}

int mempool_prefetch(mempool *p, const mempool_dref *refs, size_t n)
{
    int rc = mempool__handle_ok(p);
    if (rc)
        return rc;
    if (!refs && n)
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        mp_entry *e = entry_or_null(p, refs[i]);
        if (e)
            __builtin_prefetch(e);
    }
    for (size_t i = 0; i < n; i++) {
        mp_entry *e = entry_or_null(p, refs[i]);
        uint64_t off = e ? MP_LD(e->off) : 0;
        if (off >= p->data_off && off < p->size)
            __builtin_prefetch(p->base + off);
    }
    return 0;
}
