/* SPDX-License-Identifier: MIT */
/*
 * chan_queue.c - a queue-mode channel's ring: Vyukov's bounded MPMC queue
 * with the item and the turn in one slot word (chan.c has the design).
 *
 * A send commits with one CAS of slot EMPTY(tail) -> FULL(tail, box), a
 * receive with one CAS of FULL(head, box) -> EMPTY(head + cap); head and
 * tail are hints any process moves on. The box is a direct record for a
 * plain object (chan_direct.c). Between attempts a sender waits
 * for a free slot, a receiver for an item, asleep on the channel's futex
 * words (sleepers.h: a waker wakes only who sleeps).
 */
#include <errno.h>
#include <limits.h>

#include "chan.h"
#include "failpoint.h"
#include "pincell.h"

/* One side's wait: the futex word it sleeps on and its sleepers, its
 * ring hint (head for receivers, tail for senders), the other side's last
 * worker (its spin peer) and this handle's past spins there. */
struct side {
    _Atomic uint32_t *seq;
    _Atomic uint64_t *waiters, *hint, *peer, *gate;
    mp_spin *spin, *stream;     /* stream: receivers' stream spins, or NULL */
    mempool_chan *c;
    bool line;                  /* a stream's spin: its line's end */
};

/* How many slots of position @p at's ring cache line follow its slot in
 * the channel's ring (slots are 8 bytes, the ring 64-byte aligned). */
static uint32_t line_rest(const mempool_chan *c, uint64_t at)
{
    uint32_t j = (uint32_t)(at % c->cap), r = 7 - (c->start + j) % 8;
    return r < c->cap - 1 - j ? r : c->cap - 1 - j;
}

/* What a waiting side watches while it spins: the slot at its hint (a
 * receiver's next item lands there, a sender's next room opens there)
 * and the hint itself. Reads only lines the next try reads anyway.
 * A stream's receiver (line: no lead, spin.h STREAM) watches the last
 * slot of its hint's line instead, so it takes a line's items once its
 * producer has moved on to the next line. Watching the next item, it took
 * each one as it landed: the producer's next commit found the slot's line
 * (and the tail's, that the spin decision reads) on the receiver's CPU,
 * a transfer per item on the stream's slower side (perf, 1->1 pinned
 * apart: the sender's two CASes). With it, and recv_ahead: 9.1-9.3 ->
 * 10.0-10.5 M/s in quiet same-run rounds. A stream that slows down waits
 * at most the spin's bound longer for an item (the last check takes it). */
static uint64_t side_look(const void *arg)
{
    const struct side *sd = arg;
    const mempool_chan *c = sd->c;
    uint64_t at = atomic_load(sd->hint), to = at;
    if (sd->line)
        to += line_rest(c, at);
    return atomic_load(&c->p->ring[c->start + to % c->cap]) ^ (at << 1);
}

/* The wait loop of queue send and recv: try @p once until it does not say
 * "would block" (-EAGAIN), spinning a bounded time while the other side
 * runs on another CPU (spin.h), then sleeping on @p sd's seq (counted in
 * its waiters: the futex word read, a last try, counted, FUTEX_WAIT:
 * sleepers.h), each sleep at most @p nap_ns (0: no limit). */
static int queue_wait(mempool_chan *c, mp_chan *h,
                      int (*once)(mempool_chan *, mp_chan *, void *),
                      void *arg, struct side *sd, uint64_t deadline,
                      uint64_t nap_ns)
{
    for (;;) {
        uint32_t s0;
        int rc;
        if (!mempool__chan_live(c))
            return -EPIPE;
        rc = once(c, h, arg);
        if (rc == 0)
            continue;                /* lost a race: look again */
        if (rc != -EAGAIN)
            return rc;
        if (mp_mono_ns() >= deadline)
            return -ETIMEDOUT;
        sd->line = sd->stream && !mempool__lead_on();
        if (mempool__spin_stream(c->p, atomic_load(sd->peer), sd->gate,
                                 sd->spin, sd->stream, side_look, sd,
                                 deadline))
            continue;                /* it moved while we spun */
        s0 = mp_sleep_seen(sd->seq);
        rc = once(c, h, arg);        /* the last check (sleepers.h) */
        if (rc == -EAGAIN && mempool__chan_live(c))
            mempool__hsleep(c->p, sd->seq, sd->waiters, s0, deadline, nap_ns);
        else if (rc != -EAGAIN && sd->stream)
            mempool__spin_answered(sd->stream);  /* just too short */
        if (rc != -EAGAIN && rc != 0)
            return rc;
    }
}

/* queue_wait(), passing the wake-up on when it leaves with an error
 * other than -EPIPE (a destroy woke everyone) or -ETIMEDOUT (its last try
 * found nothing to take): the receiver whose reference cell could not be
 * added (-ENOBUFS: its table is full), a damaged slot. It may have been
 * the one sleeper a send or receive woke (one per change, chan_item.c):
 * the item or room is still there, next to others asleep that nobody
 * woke for it - until their keeper's look, 5 s (check_review13 pass_on).
 * An error is rare; a spare wake-up costs one system call. */
static int queue_loop(mempool_chan *c, mp_chan *h,
                      int (*once)(mempool_chan *, mp_chan *, void *),
                      void *arg, struct side *sd, uint64_t deadline,
                      uint64_t nap_ns)
{
    int rc = queue_wait(c, h, once, arg, sd, deadline, nap_ns);
    if (rc < 0 && rc != -EPIPE && rc != -ETIMEDOUT)
        mp_signal(sd->seq, sd->waiters, 1);
    return rc;
}

/* Queue slot word @p v of @p s, at distance @p d from position @p at that
 * its side's hint @p hint named, is @p odd: a state no interleaving makes
 * (a slot moves on only after its position was taken, a hint only past
 * taken positions, so a slot is never more than a lap ahead of either
 * hint, nor behind the head, nor EMPTY behind the tail). If the slot and
 * the hint still read the same, it is damage (a flipped bit, a planted
 * word), on which send or recv would otherwise loop for ever. */
static bool ring_damaged(bool odd, _Atomic uint64_t *hint, uint64_t at,
                         _Atomic uint64_t *s, uint64_t v)
{
    return odd && atomic_load(hint) == at && atomic_load(s) == v;
}

/* What a send puts in a slot: box b, or our direct record (d, the slot
 * word's low bits in box1). */
struct qitem {
    uint32_t b, box1;
    mp_direct *d;
};

/* Before the commit CAS (seq_cst, a release) that publishes it: where the
 * item goes, for whoever finds it through the slot - a box's back word
 * (box.c, box_claim), a direct record's where (chan_direct.c: its reuse
 * check looks there). */
static void qitem_at(mempool_chan *c, const struct qitem *it, uint32_t at,
                     uint64_t t)
{
    if (it->d) {
        atomic_store_explicit(&it->d->where,
                              ((uint64_t)at << 32) | (uint32_t)t,
                              memory_order_relaxed);
        MP_FP(send_direct);
    } else {
        atomic_store_explicit(&c->p->boxes[it->b].back,
                              MP_BACK(MP_BK_CHAN, c->ci, at),
                              memory_order_release);
    }
}

/* One attempt at the queue's tail with item *@p arg: 1 committed, 0
 * retry, -EAGAIN full. */
static int qsend_once(mempool_chan *c, mp_chan *h, void *arg)
{
    const struct qitem *it = arg;
    mempool *p = c->p;
    uint64_t t = atomic_load(&h->tail);
    uint32_t j = (uint32_t)(t % c->cap);
    _Atomic uint64_t *s = &p->ring[c->start + j];
    uint64_t v = atomic_load(s);
    int32_t d = (int32_t)(MP_RING_POS(v) - (uint32_t)t);

    if (v == MP_RING_CLOSED)
        return -EPIPE;
    if (ring_damaged(d > (int32_t)c->cap || d < -(int32_t)c->cap ||
                     (d < 0 && !(v & MP_RING_FULL)), &h->tail, t, s, v))
        return MEMPOOL_ECORRUPT;
    if (!(v & MP_RING_FULL) && d == 0) {
        qitem_at(c, it, c->start + j, t);
        if (!atomic_compare_exchange_strong(s, &v, MP_RING(t, 1, it->box1)))
            return 0;
        atomic_compare_exchange_strong(&h->tail, &t, t + 1);
        return 1;
    }
    if (d >= 0) {                    /* filled at t already: tail lags */
        atomic_compare_exchange_strong(&h->tail, &t, t + 1);
        return 0;
    }
    return atomic_load(&h->tail) == t ? -EAGAIN : 0;   /* full */
}

/* Remember whether this handle's last item came in a box (a refcounted
 * one, or a plain one whose sender had no direct record free): only a
 * receiver of direct items spins as a stream's (STREAM, spin.h). A store
 * only when it changes (threads may share the handle). */
static void note_kind(mempool_chan *c, bool boxed)
{
    if (atomic_load_explicit(&c->boxed, memory_order_relaxed) != boxed)
        atomic_store_explicit(&c->boxed, boxed, memory_order_relaxed);
}

/* The entry index of the direct item at ring position @p pos, if that
 * item is in the ring already (a hint: racing sends and receives only
 * make it stale). */
static bool direct_at(mempool_chan *c, uint64_t pos, uint32_t *idx)
{
    mempool *p = c->p;
    uint64_t v = atomic_load_explicit(&p->ring[c->start + pos % c->cap],
                                      memory_order_relaxed);
    mp_direct *d;
    if (!MP_RING_IS_D(v) || MP_RING_POS(v) != (uint32_t)pos)
        return false;
    d = mempool__direct_rec(p, MP_RING_DW(v), MP_RING_DK(v));
    if (!d)
        return false;
    *idx = (uint32_t)(atomic_load_explicit(&d->item, memory_order_relaxed) >>
                      32);
    return *idx < p->ntab;
}

/* Ask for the lines a receive of entry @p idx's object stalls on, for
 * writing, so that one transfer serves all: the entry (its producer wrote
 * it last on its CPU; the receive's DRef, mempool__dref_of, reads its off,
 * the get its word and then the holders mark, a locked OR, the delete its
 * word's CAS) and the home bucket of our pin cells that the get's pin and
 * the release's unpin CAS (get.c, pin_home). A hint only: a prefetch
 * neither faults nor waits, a stale index costs a useless one.
 *
 * The bucket is this worker's own memory, cold only because a stream
 * cycles through more entries than a CPU's cache holds buckets for: in a
 * 4x4 stream each receiver gets the entries of four producers, and four
 * receivers share a CPU's cache (perf, 4x4 of 2M objects on 2 CPUs: the
 * pin_home load was 60 % of mempool_get's samples, 740 against 118 in a
 * 1->1 run of as many objects). */
static void want_item(mempool *p, uint32_t idx)
{
    mp_prefetch_w(mp_entry_at(p, idx));
    if (p->own_cells)
        mp_prefetch_w(p->own_cells + mp_cell_home(&p->core, idx));
}

/* Ask for the lines of the next item (position @p hd + 1) if it is a
 * direct one already in the ring (want_item), while this receive goes on
 * (perf, 1->1 pinned apart: the entry's stalls were 16 % of all samples,
 * 2 % with this). The ring slot and the record it reads are the ones the
 * next receive reads anyway. The next item's data (its off in that entry)
 * and items further on cost a receiver sharing its producer's CPU more
 * than they gave (8 % fewer objects per second unpinned there: nothing is
 * in transit on one CPU, so only the instructions count). */
static void recv_ahead(mempool_chan *c, uint64_t hd)
{
    uint32_t idx;
    if (direct_at(c, hd + 1, &idx))
        want_item(c->p, idx);
}

/* Take FULL slot word @p v of slot @p s at position @p hd, a direct item
 * (chan_direct.c): read its record's item, then the ring's CAS. Nothing
 * else to do: a plain item holds no reference and no box. */
static int qrecv_direct(mempool_chan *c, mp_chan *h, _Atomic uint64_t *s,
                        uint64_t v, uint64_t hd, mempool_dref *out)
{
    uint32_t idx, gen;
    if (!mempool__direct_item(c->p, (uint32_t)(s - c->p->ring), v, &idx,
                              &gen))
        return atomic_load(s) == v ? MEMPOOL_ECORRUPT : 0;
    /* Under way while the CAS below waits for the slot's line: an item
     * found after a sleep or a spin had no recv_ahead. */
    want_item(c->p, idx);
    MP_FP(recv_direct);
    if (!atomic_compare_exchange_strong(s, &v, MP_RING(hd + c->cap, 0, 0)))
        return 0;
    atomic_compare_exchange_strong(&h->head, &hd, hd + 1);
    MP_FP(recv_taken);
    recv_ahead(c, hd);
    *out = mempool__dref_of(c->p, idx, gen);
    note_kind(c, false);
    return 1;
}

/* One attempt at the queue's head into *@p arg (a DRef): 1 got one, 0
 * retry, -EAGAIN empty. */
static int qrecv_once(mempool_chan *c, mp_chan *h, void *arg)
{
    mempool_dref *out = arg;
    mempool *p = c->p;
    uint64_t hd = atomic_load(&h->head), bw;
    uint32_t j = (uint32_t)(hd % c->cap), b, idx, gen;
    _Atomic uint64_t *s = &p->ring[c->start + j];
    uint64_t v = atomic_load(s);
    int32_t d = (int32_t)(MP_RING_POS(v) - (uint32_t)hd);
    bool ref;
    int rc, k;

    if (v == MP_RING_CLOSED)
        return -EPIPE;
    if (ring_damaged(d < 0 || d > (int32_t)c->cap, &h->head, hd, s, v))
        return MEMPOOL_ECORRUPT;
    if (!(v & MP_RING_FULL) || d != 0) {
        if (d > 0 || (d == 0 && (v & MP_RING_FULL))) {
            atomic_compare_exchange_strong(&h->head, &hd, hd + 1);
            return 0;                /* taken at hd already: head lags */
        }
        return d == 0 && atomic_load(&h->head) == hd ? -EAGAIN : 0;
    }
    if (MP_RING_BOX1(v) & MP_RING_DIRECT)
        return qrecv_direct(c, h, s, v, hd, out);
    b = MP_RING_BOX1(v) - 1;
    if (!mempool__chan_box_item(p, b, &bw, &idx, &gen))
        return atomic_load(s) == v ? MEMPOOL_ECORRUPT : 0;
    ref = MP_BOX_REF(bw);
    if (ref && (rc = mempool__ref_add(&p->core, idx, gen)))
        return rc;
    /* A refcount check may have read the cells before ours and will read
     * the boxes after we free b: settle makes it scan again. The slot's
     * box holds the object, so it can only be dead if the slot moved on. */
    if (ref && mempool__ref_settle(p, idx, gen)) {
        mempool__chan_uncell(p, ref, idx, gen);
        return atomic_load(s) == v ? MEMPOOL_ECORRUPT : 0;
    }
    MP_FP(recv_celled);
    /* Taken out of the slot, b is in no record until we free it: our
     * announcement keeps a sweep off it meanwhile (box_hazard.c). */
    k = mempool__box_announce(p, b);
    if (!atomic_compare_exchange_strong(s, &v,
                                        MP_RING(hd + c->cap, 0, 0))) {
        mempool__box_unannounce(p, k);
        mempool__chan_uncell(p, ref, idx, gen);
        return 0;
    }
    atomic_compare_exchange_strong(&h->head, &hd, hd + 1);
    MP_FP(recv_taken);
    mempool__chan_free_taken(p, b, bw);
    mempool__box_unannounce(p, k);
    *out = mempool__dref_of(p, idx, gen);
    note_kind(c, true);
    return 1;
}

static int queue_send(mempool_chan *c, mp_chan *h, struct qitem *it,
                      uint64_t deadline)
{
    /* Receivers wake a sleeping sender only once there is room for a
     * batch (chan_item.c): a sender naps, so that room they made without
     * waking anyone is found within CH_NAP_NS. */
    uint64_t nap = mempool__chan_batch(c->cap) > 1 ? CH_NAP_NS : 0;
    struct side sd = { &h->send_seq, &h->send_waiters, &h->tail,
                       &h->receiver, &h->send_gate, &c->spin_send, NULL, c,
                       false };
    return queue_loop(c, h, qsend_once, it, &sd, deadline, nap);
}

int mempool__chanq_send(mempool_chan *c, mp_chan *h, uint32_t b,
                        uint64_t deadline)
{
    struct qitem it = { b, b + 1, NULL };
    return queue_send(c, h, &it, deadline);
}

int mempool__chanq_send_direct(mempool_chan *c, mp_chan *h, uint32_t k,
                               uint64_t deadline)
{
    uint32_t w = (uint32_t)c->p->slot;
    struct qitem it = { 0, MP_RING_D(w, k), mempool__direct_rec(c->p, w, k) };
    return it.d ? queue_send(c, h, &it, deadline) : -EINVAL;
}

int mempool__chanq_recv(mempool_chan *c, mp_chan *h, mempool_dref *out,
                        uint64_t deadline)
{
    bool boxed = atomic_load_explicit(&c->boxed, memory_order_relaxed);
    struct side sd = { &h->recv_seq, &h->recv_waiters, &h->head,
                       &h->sender, &h->recv_gate, &c->spin_recv,
                       boxed ? NULL : &c->spin_stream, c, false };
    return queue_loop(c, h, qrecv_once, out, &sd, deadline, 0);
}
