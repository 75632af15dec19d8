/* SPDX-License-Identifier: MIT */
/*
 * handoff_helpers.h - helpers of the INTERNAL handoff suites that look at
 * box words (src/core/layout.h through internal.h): which box an item sits
 * in, and a send that gives the item a reference of its own. Shared by the
 * suites that chase a box word's 7-bit nonce round (check_box_sweep,
 * check_sweep_alias, check_flight_alias). Test process only (they assert).
 * Include after helpers.h and internal.h.
 */
#ifndef T_HANDOFF_HELPERS_H
#define T_HANDOFF_HELPERS_H

#include <stdatomic.h>
#include <stdint.h>

/* The one box in use (a fresh pool, one item sent): its index. */
static inline uint32_t t_only_box(mempool *p)
{
    uint32_t n = 0, at = 0;
    for (uint32_t b = 0; b < p->nbox; b++) {
        if (atomic_load(&p->boxw[b])) {
            n++;
            at = b;
        }
    }
    ck_assert_uint_eq(n, 1);
    return at;
}

/* Send @p x on @p c with a reference of its own (the item holds it). */
static inline void t_send_ref(mempool_chan *c, mempool_dref x)
{
    ASSERT_RC(mempool_ref(t_pool, x), 0);
    ASSERT_RC(mempool_chan_send(c, x, 10000), 0);
}

#endif /* T_HANDOFF_HELPERS_H */
