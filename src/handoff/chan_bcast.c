/* SPDX-License-Identifier: MIT */
/*
 * chan_bcast.c - a broadcast channel's ring (iceoryx-style publish /
 * subscribe): senders take a position with fetch_add(tail) and overwrite
 * its slot, never waiting; each handle reads at its own position and
 * loses the oldest items when the ring laps it (chan.c has the design).
 */
#include <errno.h>
#include <limits.h>

#include "chan.h"
#include "failpoint.h"

#define SKIP_NS     20000000u   /* wait this long for a writer */

int mempool__chanb_send(mempool_chan *c, mp_chan *h, uint32_t b)
{
    mempool *p = c->p;
    uint64_t t = atomic_fetch_add(&h->tail, 1);
    uint32_t j = (uint32_t)(t % c->cap);
    _Atomic uint64_t *s = &p->ring[c->start + j];
    uint64_t v = atomic_load(s);
    int k;

    atomic_store(&p->boxes[b].back, MP_BACK(MP_BK_CHAN, c->ci, c->start + j));
    MP_FP(bcast_claimed);
    /* The box we overwrite is in no record until we drop it: announced
     * before each try, so no sweep frees it meanwhile (box_hazard.c).
     * An empty slot's BOX1 0 announces UINT32_MAX: no box. */
    k = mempool__box_announce(p, MP_RING_BOX1(v) - 1);
    for (;;) {
        int32_t d = (int32_t)(MP_RING_POS(v) - (uint32_t)t);
        if (v == MP_RING_CLOSED) {
            mempool__box_unannounce(p, k);
            return -EPIPE;
        }
        if (d > 0 || (d == 0 && (v & MP_RING_FULL))) {
            /* A sender a lap ahead wrote first: ours is overrun at once
             * (2: sent, and the box is gone - nothing to commit). */
            mempool__box_unannounce(p, k);
            mempool__box_drop(p, b, atomic_load(&p->boxw[b]));
            return 2;
        }
        if (atomic_compare_exchange_weak(s, &v, MP_RING(t, 1, b + 1)))
            break;
        mempool__box_reannounce(p, k, MP_RING_BOX1(v) - 1);
    }
    MP_FP(bcast_overwrote);
    if ((v & MP_RING_FULL) && MP_RING_BOX1(v)) /* ours now: an orphan */
        mempool__box_drop_out(p, MP_RING_BOX1(v) - 1);
    mempool__box_unannounce(p, k);
    return 1;
}

/* Broadcast: move our position from @p s to @p to, counting the lost. */
static int overrun(mempool_chan *c, mp_chan *h, uint64_t s, uint64_t to)
{
    uint64_t cur = s;
    if (!atomic_compare_exchange_strong(&c->pos, &cur, to))
        return 0;                    /* another thread of ours moved it */
    atomic_fetch_add(&h->dropped, to - s);
    return -EOVERFLOW;
}

/* One attempt for a subscriber: 1 got one, 0 retry, -EAGAIN nothing new,
 * -EINPROGRESS position claimed but not yet written. */
static int brecv_once(mempool_chan *c, mp_chan *h, mempool_dref *out)
{
    mempool *p = c->p;
    uint64_t s = atomic_load(&c->pos), t = atomic_load(&h->tail), bw, v;
    uint32_t b, idx, gen;
    _Atomic uint64_t *slot;
    int32_t d;
    bool ref;
    int rc;

    if (t == s)
        return -EAGAIN;
    if (t - s > c->cap)              /* lapped: continue at the oldest */
        return overrun(c, h, s, t - c->cap);
    slot = &p->ring[c->start + (uint32_t)(s % c->cap)];
    v = atomic_load(slot);
    if (v == MP_RING_CLOSED)
        return -EPIPE;
    d = (int32_t)(MP_RING_POS(v) - (uint32_t)s);
    if (d > 0)
        return overrun(c, h, s, t > s + c->cap ? t - c->cap : s + 1);
    if (d < 0 || !(v & MP_RING_FULL))
        return -EINPROGRESS;
    b = MP_RING_BOX1(v) - 1;
    if (!mempool__chan_box_item(p, b, &bw, &idx, &gen))
        return atomic_load(slot) == v ? MEMPOOL_ECORRUPT : 0;
    ref = MP_BOX_REF(bw);
    if (ref && (rc = mempool__ref_add(&p->core, idx, gen)))
        return rc;
    MP_FP(recv_celled);
    /* The slot still holds the item: its box held the object until our
     * cell was there, so the reference we have is good. */
    if (atomic_load(slot) != v || (ref && mempool__ref_settle(p, idx, gen))) {
        mempool__chan_uncell(p, ref, idx, gen);
        return 0;
    }
    if (!atomic_compare_exchange_strong(&c->pos, &s, s + 1)) {
        mempool__chan_uncell(p, ref, idx, gen);
        return 0;
    }
    *out = mempool__dref_of(p, idx, gen);
    return 1;
}

/* A position a sender took and has not written (-EINPROGRESS): wait a
 * bounded time for it (the sender may be stopped or dead), then skip it.
 * 0 keep waiting, 1 skipped: look again, -EOVERFLOW skipped: report it. */
struct stuck {
    uint64_t since, pos;
};

static int skip_stuck(mempool_chan *c, mp_chan *h, struct stuck *st)
{
    uint64_t s = atomic_load(&c->pos), now = mp_mono_ns();
    if (!st->since || st->pos != s) {
        st->since = now;
        st->pos = s;
        return 0;
    }
    if (now - st->since <= SKIP_NS)
        return 0;
    return overrun(c, h, s, s + 1) ? -EOVERFLOW : 1;
}

/* Spin a bounded time while the last sender runs on another CPU; if
 * nothing was sent meanwhile, read the futex word, try once more, sleep
 * (capped while a position is stuck); what the last try said (0 after a
 * spin that saw a send: look again). */
static int bsleep(mempool_chan *c, mp_chan *h, mempool_dref *out,
                  uint64_t deadline)
{
    uint32_t seq;
    int rc;
    if (mempool__spin(c->p, atomic_load(&h->sender), NULL, &c->spin_recv,
                      mp_look_u32, &h->recv_seq, deadline))
        return 0;
    seq = mp_sleep_seen(&h->recv_seq);
    rc = brecv_once(c, h, out);
    if ((rc == -EAGAIN || rc == -EINPROGRESS) && mempool__chan_live(c))
        mempool__hsleep(c->p, &h->recv_seq, &h->recv_waiters, seq, deadline,
                        rc == -EINPROGRESS ? 1000000u : 0);
    return rc;
}

int mempool__chanb_recv(mempool_chan *c, mp_chan *h, mempool_dref *out,
                        uint64_t deadline)
{
    struct stuck st = { 0, 0 };
    for (;;) {
        int rc, skip;
        if (!mempool__chan_live(c))
            return -EPIPE;
        rc = brecv_once(c, h, out);
        if (rc == -EINPROGRESS && (skip = skip_stuck(c, h, &st)) != 0) {
            if (skip < 0)
                return skip;
            continue;
        }
        if (rc == 0)
            continue;                /* lost a race: look again */
        if (rc != -EAGAIN && rc != -EINPROGRESS)
            return rc;
        if (mp_mono_ns() >= deadline)
            return -ETIMEDOUT;
        rc = bsleep(c, h, out, deadline);
        if (rc != -EAGAIN && rc != -EINPROGRESS && rc != 0)
            return rc;
    }
}
