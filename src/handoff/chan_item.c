/* SPDX-License-Identifier: MIT */
/*
 * chan_item.c - mempool_chan_send() and mempool_chan_recv(): an item's
 * box and reference on their way through a channel's ring (chan_queue.c,
 * chan_bcast.c), and the wake-up of the other side.
 *
 * send: box the item (PREP, the pool's reference) -> drop the sender's
 * reference cell -> the ring's commit -> box HELD -> wake a receiver if
 * one sleeps. recv: the ring hands over the item with the receiver's
 * reference cell already added, and frees the box; wake a sender if one
 * sleeps. A send that does not commit gives the sender its reference back.
 */
#include <errno.h>
#include <limits.h>

#include "chan.h"
#include "failpoint.h"

static int chan_ok(mempool_chan *c)
{
    int rc;
    if (!c)
        return -EINVAL;
    if ((rc = mempool__writer_ok(c->p)))
        return rc;
    return 0;
}

/* ---- send --------------------------------------------------------------- */

/* Undo a send that did not commit: the caller gets its reference back. */
static void unsend(mempool *p, uint32_t b, bool ref, uint32_t idx,
                   uint32_t gen)
{
    if (ref && mempool__ref_add(&p->core, idx, gen) == 0) {
        /* The cell before the box goes, and a running check told to
         * scan again (as mempool_ref_take does). */
        if (mempool__ref_settle(p, idx, gen) == 0) {
            mempool__box_take(p, b, atomic_load(&p->boxw[b]));
            return;
        }
        mempool__ref_undo(p, idx, gen);
    }
    mempool__box_drop(p, b, atomic_load(&p->boxw[b]));
}

/* After a commit: counted, and a sleeping receiver woken. */
static void sent(mempool_chan *c, mp_chan *h)
{
    uint32_t k;
    atomic_fetch_add_explicit(&h->sent, 1, memory_order_relaxed);
    k = mp_signal(&h->recv_seq, &h->recv_waiters, c->bcast ? INT_MAX : 1);
    if (k)
        mempool__run_awake(c->p);
    mempool__lead(MP_SPIN_KEY_CHAN(c->ci), k != 0);
}

/* A plain object into a queue channel: in one of our direct records
 * (chan_direct.c), no box. 1 sent, 0 no record free (send it boxed),
 * else the error. */
static int send_direct(mempool_chan *c, mp_chan *h, uint32_t idx,
                       uint32_t gen, uint64_t deadline)
{
    int k = mempool__direct_claim(c->p, idx, gen), rc;
    if (k < 0)
        return 0;
    rc = mempool__chanq_send_direct(c, h, (uint32_t)k, deadline);
    mempool__direct_release(c->p, (uint32_t)k);
    if (rc != 1)
        return rc;
    mempool__peer_note(c->p, &h->sender);
    MP_FP(send_committed);
    sent(c, h);
    return 1;
}

int mempool_chan_send(mempool_chan *c, mempool_dref r, int64_t timeout_ms)
{
    uint64_t deadline = mp_deadline(timeout_ms);
    uint32_t idx, gen, b;
    mempool *p;
    mp_chan *h;
    mp_entry *e;
    bool ref;
    int rc;

    if ((rc = chan_ok(c)))
        return rc;
    p = c->p;
    h = &p->chans[c->ci];
    if (!mempool__chan_live(c))
        return -EPIPE;
    if ((rc = mempool__entry_of(p, r, &idx, &gen)))
        return rc;
    e = mp_entry_at(p, idx);
    if (!mp_entry_alive(atomic_load(&e->word), gen))
        return -ENOENT;
    ref = (MP_LD(e->setflags) & MEMPOOL_PUT_REFCOUNTED) != 0;
    if (!ref && !c->bcast && (rc = send_direct(c, h, idx, gen, deadline)))
        return rc < 0 ? rc : 0;
    if ((rc = mempool__box_claim(p, idx, gen, ref,
                                 MP_BACK(MP_BK_CHAN, c->ci, UINT32_C(0xffffff)),
                                 &b)))
        return rc;
    MP_FP(send_boxed);
    if (ref && mempool__ref_sub(&p->core, idx, gen)) {
        mempool__box_drop(p, b, atomic_load(&p->boxw[b]));
        return -EINVAL;              /* the sender holds no reference */
    }
    MP_FP(send_moved);
    rc = c->bcast ? mempool__chanb_send(c, h, b)
                  : mempool__chanq_send(c, h, b, deadline);
    if (rc != 1 && rc != 2) {
        unsend(p, b, ref, idx, gen);
        return rc;
    }
    mempool__peer_note(p, &h->sender);
    MP_FP(send_committed);
    if (rc == 1)
        mempool__box_commit(p, b);   /* 2: overrun at once, box dropped */
    sent(c, h);
    return 0;
}

/* ---- recv --------------------------------------------------------------- */

/* The item in box @p b as seen now; false if the box does not hold it. */
bool mempool__chan_box_item(mempool *p, uint32_t b, uint64_t *bw,
                            uint32_t *idx, uint32_t *gen)
{
    uint64_t item;
    if (b >= p->nbox)
        return false;
    *bw = atomic_load(&p->boxw[b]);
    item = atomic_load(&p->boxes[b].item);
    *idx = (uint32_t)(item >> 32);
    *gen = (uint32_t)item;
    return *bw && *idx < p->ntab && MP_BOX_IDX1(*bw) == *idx + 1 &&
           MP_BOX_GEN16(*bw) == (*gen & 0xffff);
}

/* Free the box we took out of a slot: it may still say PREP (its sender
 * not yet at box_commit) or have been freed by a sweep already. */
void mempool__chan_free_taken(mempool *p, uint32_t b, uint64_t bw)
{
    const uint64_t same = ~((UINT64_C(3) << 15) | (UINT64_C(0x7f) << 8));
    for (;;) {
        uint64_t cur = atomic_load(&p->boxw[b]);
        if (!cur || (cur & same) != (bw & same))
            return;
        if (mempool__box_take(p, b, cur))
            return;
    }
}

void mempool__chan_uncell(mempool *p, bool ref, uint32_t idx,
                          uint32_t gen)
{
    if (ref && mempool__ref_sub(&p->core, idx, gen) == 0)
        mempool__entry_refcheck(p, idx, gen);
}

/* Queue mode, after receive number @p r (0, 1, ... in this channel):
 * wake a sleeping sender once there is room for a batch, not at every free
 * slot. A sender woken into a ring with one free slot fills it and sleeps
 * again: with several senders on two CPUs that is a wake-up and two
 * context switches per item. A pipe does the same, waking its writer a
 * page at a time. And one sender per batch of receives: the first sender
 * woken fills what room there is, so waking the next at the very next
 * receive (the room still there: the woken one not yet run) only made it
 * find the ring full and sleep again - with four senders asleep on a full
 * ring, four receives in a row woke all four for one batch of room (4x4
 * stream: ~3,000 such wake-ups per 2M objects, each two context switches
 * on a CPU shared with the receivers). Senders nap (CH_NAP_NS), so room
 * made without a wake-up is found even if no receiver comes again. */
static void wake_sender(mempool_chan *c, mp_chan *h, uint64_t r)
{
    uint32_t batch = mempool__chan_batch(c->cap);
    int64_t depth;
    if (batch > 1) {
        if (r % batch)
            return;
        /* Senders nap: one still checking (not counted) finds the room
         * within CH_NAP_NS, or is counted by a later batch's receive. So no bump
         * without a counted sender, and no read of the senders' line (the
         * tail) either: a stream pays neither. */
        if (!mp_sleepers(atomic_load(&h->send_waiters)))
            return;
        /* Head and tail are hints (either may lag a little): a guess of
         * the depth is all this needs. */
        depth = (int64_t)(atomic_load(&h->tail) - atomic_load(&h->head));
        if (depth > 0 && (uint64_t)depth + batch > c->cap)
            return;
    }
    /* Room for a batch (or a ring too small to batch, whose senders do
     * not nap): bump the word for senders still checking, FUTEX_WAKE a
     * counted one (sleepers.h). Below a batch not even the bump: a sender
     * that bounced off a moved word at every free slot would send one
     * item per trip again. */
    mp_signal(&h->send_seq, &h->send_waiters, 1);
}

int mempool_chan_recv(mempool_chan *c, mempool_dref *out, int64_t timeout_ms)
{
    uint64_t deadline = mp_deadline(timeout_ms), r;
    mp_chan *h;
    int rc;

    if ((rc = chan_ok(c)))
        return rc;
    if (!out)
        return -EINVAL;
    h = &c->p->chans[c->ci];
    rc = c->bcast ? mempool__chanb_recv(c, h, out, deadline)
                  : mempool__chanq_recv(c, h, out, deadline);
    if (rc != 1)
        return rc;
    if (!c->bcast)
        mempool__peer_note(c->p, &h->receiver);
    r = atomic_fetch_add_explicit(&h->received, 1, memory_order_relaxed);
    if (!c->bcast)
        wake_sender(c, h, r);
    return 0;
}
