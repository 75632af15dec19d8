/* SPDX-License-Identifier: MIT */
/*
 * share.c - mempool_share_get(): a worker's exact share of a refcounted
 * object's bytes.
 *
 * An object held by R references, r_i of them by worker i, is charged
 * len * r_i / R to worker i. Each holder computes its own share from one
 * scan of the reference cells, as the difference of two floors of the
 * running sum in slot order:
 *
 *   share_i = floor(len * (below_i + r_i) / R) - floor(len * below_i / R)
 *
 * so the shares telescope: over all holders (and the pool's own references
 * last) they add up to exactly len, with no holder knowing the others'.
 */
#include <errno.h>

#include "entry.h"
#include "internal.h"

static uint64_t muldiv(uint64_t a, uint64_t b, uint64_t c)
{
    return (uint64_t)((unsigned __int128)a * b / c);
}

int mempool_share_get(mempool *p, mempool_dref r, uint64_t *bytes)
{
    uint32_t idx, gen, below, mine, all;
    uint64_t len, w;
    mp_entry *e;
    int rc;

    if ((rc = mempool__handle_ok(p)))
        return rc;
    if (!bytes || (rc = mempool__entry_of(p, r, &idx, &gen)))
        return rc ? rc : -EINVAL;
    e = mp_entry_at(p, idx);
    w = atomic_load(&e->word);
    if (!mp_entry_alive(w, gen))
        return -ENOENT;
    if (!(MP_LD(e->setflags) & MEMPOOL_PUT_REFCOUNTED))
        return -EINVAL;
    len = MP_LD(e->len);
    mempool__ref_split(&p->core, idx, gen, p->slot, &below, &mine, &all);
    all += mempool__box_count(p, idx, gen);     /* the pool's, last */
    if (MP_W_GEN(atomic_load(&e->word)) != gen)
        return -ENOENT;             /* freed and reused while we looked */
    *bytes = p->slot < 0 || !mine || all < below + mine
                 ? 0 : muldiv(len, below + mine, all) - muldiv(len, below, all);
    return 0;
}
