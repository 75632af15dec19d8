/* SPDX-License-Identifier: MIT */
/*
 * box.h - what the box files of core/ (box.c, box_hazard.c, box_sweep.c,
 * box_expire.c, box_check.c) share and nobody else needs: where a bucket
 * and the overflow area start in the box table, and the announcement
 * checks the sweep, the claim and fsck ask. The operations the rest of
 * the library calls are in internal.h.
 */
#ifndef MEMPOOL_CORE_BOX_H
#define MEMPOOL_CORE_BOX_H

#include "internal.h"

/* The table: nbox / 10 buckets of MP_BOX_BW boxes, then the overflow. */
static inline uint32_t nbuckets(const mempool *p) { return p->nbox / 10; }
static inline uint32_t ovf_base(const mempool *p)
{
    return nbuckets(p) * MP_BOX_BW;
}

static inline uint32_t bucket_base(const mempool *p, uint32_t idx)
{
    return (idx % nbuckets(p)) * MP_BOX_BW;
}

/* box_hazard.c: is worker @p who alive (not @p dead)? Asked once per slot
 * per sweep (@p memo: MP_WORKERS entries, -1 not asked yet). */
bool mempool__box_who_alive(mempool *p, unsigned who, int dead, int8_t *memo);
/* Does a live worker (not @p dead) announce box @p b in a word other than
 * @p mine (our own hazard, or NULL)? */
bool mempool__box_announced(mempool *p, uint32_t b, int dead, int8_t *memo,
                            const _Atomic uint64_t *mine);
/* Does a live worker holding hazards announce box @p b? (A claim just took
 * it.) */
bool mempool__box_hazard(mempool *p, uint32_t b);

#endif
