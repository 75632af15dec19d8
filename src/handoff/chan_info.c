/* SPDX-License-Identifier: MIT */
/*
 * chan_info.c - what a channel looks like from outside: the figures of
 * mempool_chan_list() (stats, mempool-top, `mempool chan ls`) and fsck's
 * check that every item in a ring is held by a live box pointing back.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "chan.h"

/* Items in ring slots [start, start + cap) and how many hold a reference. */
static void ring_count(mempool *p, uint32_t start, uint32_t cap,
                       mempool_chan_info *in)
{
    for (uint32_t j = 0; j < cap; j++) {
        uint64_t v = atomic_load(&p->ring[start + j]);
        uint32_t b = MP_RING_BOX1(v) - 1;
        if (v == MP_RING_CLOSED || !(v & MP_RING_FULL))
            continue;
        in->depth++;
        if (MP_RING_BOX1(v) && b < p->nbox &&
            MP_BOX_REF(atomic_load(&p->boxw[b])))
            in->refs++;
    }
}

/* The figures of channel header @p c if it is OPEN and sane, as of its
 * state word *@p w (the caller checks it did not change). */
static bool chan_info(mempool *p, mp_chan *c, uint64_t *w,
                      mempool_chan_info *in)
{
    uint32_t cap, start, len;
    *w = atomic_load(&c->state);
    if (CH_ST(*w) != MP_CH_OPEN)
        return false;
    cap = MP_LD(c->cap);
    start = MP_LD(c->start);
    memset(in, 0, sizeof(*in));
    len = MP_LD(c->namelen);
    if (len == 0 || len > MP_NAME_MAX || cap > p->nring ||
        start > p->nring - cap)
        return false;
    for (uint32_t k = 0; k < len; k++)
        in->name[k] = __atomic_load_n(&c->name[k], __ATOMIC_RELAXED);
    in->flags = CH_MODE(*w) == CH_BCAST ? MEMPOOL_CHAN_BROADCAST : 0;
    in->capacity = cap;
    ring_count(p, start, cap, in);
    in->senders_waiting = mp_sleepers(atomic_load(&c->send_waiters));
    in->receivers_waiting = mp_sleepers(atomic_load(&c->recv_waiters));
    in->subscribers = !in->flags ? 0 :
        mempool__chan_subs(p, (uint32_t)(c - p->chans), CH_GEN(*w));
    in->sent = atomic_load(&c->sent);
    in->received = atomic_load(&c->received);
    in->dropped = atomic_load(&c->dropped);
    return true;
}

int mempool_chan_list(mempool *p, int (*fn)(const mempool_chan_info *ci,
                                            void *arg), void *arg)
{
    int rc = mempool__handle_ok(p);
    if (rc)
        return rc;
    if (!fn)
        return -EINVAL;
    for (uint32_t i = 0; i < MP_CHANS; i++) {
        mp_chan *c = &p->chans[i];
        mempool_chan_info in;
        uint64_t w;
        if (!chan_info(p, c, &w, &in) || atomic_load(&c->state) != w)
            continue;
        if ((rc = fn(&in, arg)) != 0)
            return rc;
    }
    return 0;
}

/* fsck of FULL slot word @p v of ring slot @p at naming a direct item
 * (chan_direct.c): its record exists, says it was sent there and holds
 * an item (mempool__direct_item, the receive's own test). */
static int verify_direct(mempool *p, uint32_t i, uint32_t at, uint64_t v,
                         char *why, size_t whylen)
{
    mp_direct *d = mempool__direct_rec(p, MP_RING_DW(v), MP_RING_DK(v));
    uint32_t idx, gen;
    if (mempool__direct_item(p, at, v, &idx, &gen) ||
        atomic_load(&p->ring[at]) != v)
        return 0;                    /* sound, or moved on while we looked */
    snprintf(why, whylen, "channel %u slot %u: direct item %u.%u is %s", i,
             at, MP_RING_DW(v), MP_RING_DK(v),
             d ? "another slot's or damaged" : "out of range");
    return MEMPOOL_ECORRUPT;
}

/* fsck of slot @p j of channel @p i: a FULL slot holds a live box that
 * points back at the slot, or a direct item whose record does. */
static int verify_slot(mempool *p, uint32_t i, uint32_t start, uint32_t j,
                       char *why, size_t whylen)
{
    uint64_t v = atomic_load(&p->ring[start + j]), bw, back;
    uint32_t b = MP_RING_BOX1(v) - 1;
    if (v == MP_RING_CLOSED || !(v & MP_RING_FULL))
        return 0;
    if (MP_RING_IS_D(v))
        return verify_direct(p, i, start + j, v, why, whylen);
    if (!MP_RING_BOX1(v) || b >= p->nbox) {
        snprintf(why, whylen, "channel %u slot %u names no box", i, j);
        return MEMPOOL_ECORRUPT;
    }
    bw = atomic_load(&p->boxw[b]);
    back = atomic_load(&p->boxes[b].back);
    if (atomic_load(&p->ring[start + j]) != v)
        return 0;                    /* moved on while we looked */
    if (!bw || MP_BACK_KIND(back) != MP_BK_CHAN ||
        MP_BACK_SLOT(back) != start + j) {
        snprintf(why, whylen, "channel %u slot %u: box %u is %s", i, j, b,
                 bw ? "another record's" : "free");
        return MEMPOOL_ECORRUPT;
    }
    return 0;
}

/* fsck: every FULL slot of every live channel (verify_slot()). */
int mempool__chan_verify(mempool *p, char *why, size_t whylen)
{
    for (uint32_t i = 0; i < MP_CHANS; i++) {
        mp_chan *c = &p->chans[i];
        uint64_t w = atomic_load(&c->state);
        uint32_t cap = MP_LD(c->cap), start = MP_LD(c->start);
        int rc;
        if (CH_ST(w) != MP_CH_OPEN)
            continue;
        if (cap == 0 || cap > p->nring || start > p->nring - cap) {
            snprintf(why, whylen, "channel %u has a bad ring range", i);
            return MEMPOOL_ECORRUPT;
        }
        for (uint32_t j = 0; j < cap; j++)
            if ((rc = verify_slot(p, i, start, j, why, whylen)))
                return rc;
    }
    return 0;
}
