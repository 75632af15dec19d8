/* SPDX-License-Identifier: MIT */
/*
 * handoff_helpers.h - helpers of the INTERNAL handoff suites that look at
 * box words (src/core/layout.h through internal.h): which box an item sits
 * in, a send that gives the item a reference of its own, and sends until
 * a box holds a given (stale) word again. Shared by the
 * suites that chase a box word's 7-bit nonce round (check_box_sweep,
 * check_sweep_alias, check_flight_alias). Test process only (they assert).
 * Include after helpers.h and internal.h.
 */
#ifndef T_HANDOFF_HELPERS_H
#define T_HANDOFF_HELPERS_H

#include <stdatomic.h>
#include <stdbool.h>
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

#define T_ALIAS_SENDS 300        /* > 128: every nonce comes round */

/* Send x on @p c (and receive it back) until box @p b, once freed or
 * claimed anew, holds word @p w0 again with the item in the ring, at most
 * T_ALIAS_SENDS times; then one more stays in the ring anyway. True if b
 * held w0 again: a stale holder of w0 would now free that live box. */
static inline bool t_send_until_alias(mempool_chan *c, mempool_dref x,
                                      uint32_t b, uint64_t w0)
{
    bool moved = false;
    for (int i = 0; i < T_ALIAS_SENDS; i++) {
        mempool_dref r;
        uint64_t w;
        t_send_ref(c, x);
        w = atomic_load(&t_pool->boxw[b]);
        if (w != w0)
            moved = true;            /* freed, or a claim of another nonce */
        else if (moved)
            return true;             /* a claim with the stale word */
        ASSERT_RC(mempool_chan_recv(c, &r, 10000), 0);
        ASSERT_RC(mempool_unref(t_pool, r), 0);
    }
    t_send_ref(c, x);
    return false;
}

#endif /* T_HANDOFF_HELPERS_H */
