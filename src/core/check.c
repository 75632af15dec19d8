/* SPDX-License-Identifier: MIT */
/*
 * check.c - mempool_check() (the online fsck) and mempool_trim().
 *
 * The check holds the allocator lock, recomputes every piece of derived
 * state from the object table (alloc.c) and compares, then makes sure no
 * worker that is gone still holds pins or references, and that no pin or
 * reference cell outlives the object it names (a leak that would fill the
 * worker's table).
 */
#include <errno.h>
#include <stdio.h>
#include <time.h>

#include "internal.h"

static int check_workers(mempool *p, char *why, size_t whylen)
{
    uint64_t act = atomic_load(&p->h->active);
    for (int s = 0; s < MP_WORKERS; s++) {
        if ((act >> s & 1) && !mempool__slot_alive(p, s)) {
            snprintf(why, whylen, "worker %d is dead and not reaped", s + 1);
            return MEMPOOL_ECORRUPT;
        }
    }
    return 0;
}

/* Cells naming a freed entry. A pinner or referrer between its two steps
 * names one for an instant, so only cells still there after three looks
 * 10 ms apart are reported. */
static int check_cells(mempool *p, char *why, size_t whylen)
{
    uint64_t first = 0, n = 0;
    for (int round = 0; round < 3; round++) {
        if (round)
            nanosleep(&(struct timespec){ 0, 10000000 }, NULL);
        if (!(n = mempool__cells_stale(p, &first)))
            return 0;
    }
    snprintf(why, whylen,
             "%llu pin/reference cells name freed objects (leaked; the "
             "first: worker %u, cell %u)", (unsigned long long)n,
             (unsigned)(first >> 32) + 1, (unsigned)(first & 0xffffffffu));
    return MEMPOOL_ECORRUPT;
}

int mempool_check(mempool *p, char *why, size_t whylen)
{
    char dummy[8];
    int rc = mempool__handle_ok(p);
    if (rc)
        return rc;
    if (p->readonly)
        return -EACCES;             /* the allocator lock needs write access */
    if (!why) {
        why = dummy;
        whylen = sizeof(dummy);
    }
    if (whylen)
        why[0] = '\0';
    if ((rc = mempool__lock(p)))
        return rc;
    rc = mempool__alloc_verify(p, why, whylen);
    mempool__unlock(p);
    if (rc == 0)
        rc = check_workers(p, why, whylen);
    if (rc == 0)
        rc = check_cells(p, why, whylen);
    /* Pool-held items: drop expired references in flight first (they are
     * due), then every box, name and channel slot must agree. */
    if (rc == 0)
        mempool__flight_expire(p, true);
    if (rc == 0)
        rc = mempool__box_verify(p, why, whylen);
    if (rc == 0 && p->hand_ops)
        rc = p->hand_ops->verify(p, why, whylen);
    return rc;
}

int64_t mempool_trim(mempool *p)
{
    int64_t n;
    int rc = mempool__writer_ok(p);
    if (rc)
        return rc;
    if ((rc = mempool__lock(p)))
        return rc;
    n = mempool__trim_locked(p);
    mempool__unlock(p);
    return n;
}
