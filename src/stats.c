/* SPDX-License-Identifier: MIT */
/*
 * stats.c - pool figures read without locks or pins, so an observer never
 * disturbs the workers. Values are read one by one and may be a moment
 * apart; mempool_check() gives the consistent, locked view.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "spill.h"

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
    for (int i = 0; i < MP_WORKERS; i++) {
        mp_slot *w = &p->slots[i];
        s->disk_bytes += atomic_load_explicit(&w->disk_bytes,
                                              memory_order_relaxed);
        s->spills += atomic_load_explicit(&w->spills, memory_order_relaxed);
        s->spill_bytes += atomic_load_explicit(&w->spill_bytes,
                                               memory_order_relaxed);
        s->restores += atomic_load_explicit(&w->restores,
                                            memory_order_relaxed);
        s->spill_errors += atomic_load_explicit(&w->spill_errors,
                                                memory_order_relaxed);
    }
    s->spiller = (int32_t)atomic_load(&p->h->spiller);
    pthread_mutex_lock(&p->io_lock);
    if (p->io)
        snprintf(s->io_backend, sizeof(s->io_backend), "%s",
                 mempool__io_backend(p->io));
    pthread_mutex_unlock(&p->io_lock);
    return 0;
}
