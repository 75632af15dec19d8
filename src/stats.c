/* SPDX-License-Identifier: MIT */
/*
 * stats.c - pool figures read without locks or pins, so an observer never
 * disturbs the workers. Values are read one by one and may be a moment
 * apart; mempool_check() gives the consistent, locked view.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

int mempool_stats(mempool *p, struct mempool_stats *s)
{
    uint64_t act;
    int rc = mempool__handle_ok(p);
    if (rc)
        return rc;
    if (!s)
        return -EINVAL;
    memset(s, 0, sizeof(*s));
    s->size = sizeof(*s);
    s->version = 1;
    s->arena_bytes = p->size;
    s->data_bytes = p->npages * MP_PAGE;
    s->used_bytes = atomic_load_explicit(&p->h->used_bytes,
                                         memory_order_relaxed);
    s->free_bytes = s->used_bytes < s->data_bytes
                        ? s->data_bytes - s->used_bytes : 0;
    s->objects = atomic_load_explicit(&p->h->entries_used,
                                      memory_order_relaxed);
    s->max_objects = p->ntab;
    act = atomic_load(&p->h->active);
    for (int i = 0; i < MP_WORKERS; i++) {
        s->resident_bytes += atomic_load_explicit(&p->slots[i].resident_bytes,
                                                  memory_order_relaxed);
        if (act >> i & 1)
            s->workers++;
    }
    s->max_workers = MP_WORKERS;
    return 0;
}
