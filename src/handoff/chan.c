/* SPDX-License-Identifier: MIT */
/*
 * chan.c - channels: named, bounded, multi-producer multi-consumer FIFO
 * queues of DRefs (queue mode), or rings every subscriber reads in full
 * (broadcast mode, iceoryx-style publish/subscribe).
 *
 * A channel is a header (mp_chan) and a range of ring slots. Headers are
 * created and destroyed under the channel directory's owner lock; sends
 * and receives take no lock.
 *
 * Ring slot word: position (low 32 bits) | FULL | box + 1. It is Vyukov's
 * bounded MPMC queue with the item and the turn in one word:
 *
 *   EMPTY(t)    slot is free for the producer of position t
 *   FULL(t, b)  holds the item of position t, in box b (box.c)
 *
 * send (queue):  build the box (PREP, the pool's reference) -> drop the
 *   sender's reference cell -> CAS slot EMPTY(tail) -> FULL(tail, b)
 *   (the commit) -> help tail on -> box HELD -> wake a receiver if one
 *   sleeps. recv: read FULL(head, b) and b's item -> add the receiver's
 *   reference cell -> CAS slot -> EMPTY(head + cap) (the commit) -> help
 *   head on -> free the box -> wake a sender if one sleeps.
 *
 * Each commit is one CAS, and no slot is ever held "in progress": a
 * process stopped or killed anywhere in send or recv holds no slot, so it
 * never blocks the others (a stopped sender holds only its private box).
 * Head and tail are hints any process advances (helping). Crash story:
 * box.c - killed before its commit, a send never happened and the
 * sender's reference goes with its other cells; killed after, the item is
 * in the ring and the sweep marks its box HELD. A receiver killed after its
 * commit leaves an orphan box that the sweep frees: the item was
 * delivered and is released with the dead receiver's reference; killed
 * before, the item is still in the ring. Never both, never neither.
 *
 * Broadcast: senders take a position with fetch_add(tail) and overwrite
 * the slot (never waiting); the sender that overwrites a slot frees the
 * box it replaced. Each handle reads at its own position; if the ring has
 * lapped it, recv returns -EOVERFLOW once, adds what was lost to the
 * channel's dropped count, and continues at the oldest item. A reader
 * takes its own reference (a cell), then checks the slot did not change.
 * A position claimed by a sender that does not write it (stopped, slow,
 * dead) is skipped after a bounded wait and counted as dropped.
 *
 * Waiting: send_seq / recv_seq are futex words; a waiter counts itself in
 * send_waiters / recv_waiters, then re-checks, then sleeps; a sender or
 * receiver bumps the word after its commit and calls FUTEX_WAKE only if
 * the count is non-zero. Destroy moves the header to DESTROYING, wakes
 * everyone (they return -EPIPE), closes every slot (dropping the boxes of
 * the items still in it) and frees the header. A destroyer that dies is
 * finished by the next directory locker or by its reaper.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "failpoint.h"
#include "handoff.h"

#define CH_ST(w)    ((unsigned)(((w) >> 24) & 0xff))
#define CH_WHO(w)   ((unsigned)(((w) >> 16) & 0xff))
#define CH_GEN(w)   ((uint32_t)((w) >> 32))
#define CH_MODE(w)  ((unsigned)((w) & 0xff))
#define CH_W(gen, st, who, mode) \
    (((uint64_t)(gen) << 32) | ((uint64_t)(st) << 24) | \
     ((uint64_t)(who) << 16) | (uint64_t)(mode))
#define CH_BCAST    1u
#define SKIP_NS     20000000u   /* broadcast: wait this long for a writer */

struct mempool_chan {
    mempool *p;
    uint32_t ci, gen, cap, start;
    bool bcast;
    _Atomic uint64_t pos;       /* broadcast: next position to read */
};

/* ---- directory ---------------------------------------------------------- */

static bool name_is(mp_chan *c, const char *name, size_t len)
{
    char buf[MP_NAME_MAX + 1];
    if (MP_LD(c->namelen) != len)
        return false;
    for (size_t i = 0; i < len; i++)
        buf[i] = __atomic_load_n(&c->name[i], __ATOMIC_RELAXED);
    return memcmp(buf, name, len) == 0;
}

/* The OPEN channel called @p name: its index and state word, or -1. */
static int find_open(mempool *p, const char *name, size_t len, uint64_t *sw)
{
    for (uint32_t i = 0; i < MP_CHANS; i++) {
        mp_chan *c = &p->chans[i];
        uint64_t w = atomic_load(&c->state);
        if (CH_ST(w) == MP_CH_OPEN && name_is(c, name, len) &&
            atomic_load(&c->state) == w) {
            *sw = w;
            return (int)i;
        }
    }
    return -1;
}

/* Close every slot of channel @p c, dropping the items still in it. */
static void close_ring(mempool *p, mp_chan *c)
{
    uint32_t cap = MP_LD(c->cap), start = MP_LD(c->start);
    if (cap > p->nring || start > p->nring - cap)
        return;                         /* damaged header: touch nothing */
    for (uint32_t j = 0; j < cap; j++) {
        _Atomic uint64_t *s = &p->ring[start + j];
        uint64_t v = atomic_load(s);
        while (v != MP_RING_CLOSED &&
               !atomic_compare_exchange_weak(s, &v, MP_RING_CLOSED))
            ;
        if (v != MP_RING_CLOSED && (v & MP_RING_FULL)) {
            uint32_t b = MP_RING_BOX1(v) - 1;
            if (MP_RING_BOX1(v) && b < p->nbox)
                mempool__box_drop(p, b, atomic_load(&p->boxw[b]));
        }
        if (j == 0)
            MP_FP(chan_closing);
    }
}

static void wake_all(mp_chan *c)
{
    atomic_fetch_add(&c->send_seq, 1);
    atomic_fetch_add(&c->recv_seq, 1);
    mp_futex_wake(&c->send_seq, INT_MAX);
    mp_futex_wake(&c->recv_seq, INT_MAX);
}

/* Under the directory lock, taken over from a dead holder: finish what it
 * left. Every CREATING or DESTROYING header is its (they exist only while
 * the lock is held), even one that names our slot: we may have just
 * claimed the dead holder's slot (mempool__chan_reap from claim). A half
 * created channel is undone without touching the ring: nobody could send
 * to it, and its cap and start may be half written (a stale range would
 * close slots of a live channel). A half destroyed one is finished. */
static void repair_dir(mempool *p)
{
    for (uint32_t i = 0; i < MP_CHANS; i++) {
        mp_chan *c = &p->chans[i];
        uint64_t w = atomic_load(&c->state);
        if (CH_ST(w) != MP_CH_CREATING && CH_ST(w) != MP_CH_DESTROYING)
            continue;
        if (CH_ST(w) == MP_CH_DESTROYING) {
            wake_all(c);
            close_ring(p, c);
        }
        atomic_store(&c->state, CH_W(CH_GEN(w), MP_CH_FREE, 0, 0));
        wake_all(c);
    }
}

static void dir_lock(mempool *p)
{
    if (mempool__olock(p, &p->hand->dir_lock))
        repair_dir(p);
}

/* Reaping slot @p d (dead, or ours when we claim or leave it): its
 * subscriptions end, and a channel it was creating or destroying is undone
 * or finished. */
void mempool__chan_reap(mempool *p, int d)
{
    uint32_t who = (uint32_t)d + 1, me = (uint32_t)p->slot + 1;
    if (p->slot < 0 || d < 0 || d >= MP_WORKERS)
        return;
    for (uint32_t i = 0; i < MP_CHANS; i++)
        atomic_store(&p->hand->subs[i][d], 0);
    if (atomic_compare_exchange_strong(&p->hand->dir_lock, &who, me)) {
        repair_dir(p);
        mempool__ounlock(p, &p->hand->dir_lock);
    }
}

/* First fit of @p cap slots among the ranges of live headers. */
static int ring_fit(mempool *p, uint32_t cap, uint32_t *start)
{
    uint32_t at = 0;
    for (;;) {
        bool moved = false;
        if (cap > p->nring || at > p->nring - cap)
            return -ENOSPC;
        for (uint32_t i = 0; i < MP_CHANS; i++) {
            mp_chan *c = &p->chans[i];
            uint32_t s = MP_LD(c->start), n = MP_LD(c->cap);
            if (CH_ST(atomic_load(&c->state)) == MP_CH_FREE || !n)
                continue;
            if (s < at + cap && at < s + n) {
                at = s + n;             /* overlaps: try after it */
                moved = true;
            }
        }
        if (!moved) {
            *start = at;
            return 0;
        }
    }
}

/* Under the directory lock: make channel @p name. */
static int create_locked(mempool *p, const char *name, size_t len,
                         uint32_t cap, unsigned mode, int *ci)
{
    uint32_t start;
    int rc = ring_fit(p, cap, &start);
    if (rc)
        return rc;
    for (uint32_t i = 0; i < MP_CHANS; i++) {
        mp_chan *c = &p->chans[i];
        uint64_t w = atomic_load(&c->state), base;
        uint32_t gen;
        if (CH_ST(w) != MP_CH_FREE)
            continue;
        gen = CH_GEN(w) + 1 ? CH_GEN(w) + 1 : 1;
        if (!atomic_compare_exchange_strong(
                &c->state, &w,
                CH_W(gen, MP_CH_CREATING, (unsigned)p->slot + 1, mode)))
            return MEMPOOL_ECORRUPT;    /* a writer without the lock */
        /* Positions of each incarnation start elsewhere (a multiple of
         * cap), so a stale sender's CAS never matches a new slot. */
        base = (uint64_t)cap * (uint64_t)(gen * 40503u);
        MP_ST(c->cap, cap);
        MP_ST(c->start, start);
        atomic_store(&c->head, base);
        atomic_store(&c->tail, base);
        atomic_store(&c->sent, 0);
        atomic_store(&c->received, 0);
        atomic_store(&c->dropped, 0);
        for (size_t k = 0; k < sizeof(c->name); k++)
            __atomic_store_n(&c->name[k], k < len ? name[k] : '\0',
                             __ATOMIC_RELAXED);
        MP_ST(c->namelen, (uint32_t)len);
        for (uint32_t j = 0; j < cap; j++) {
            atomic_store(&p->ring[start + j], MP_RING(base + j, 0, 0));
            if (j == cap / 2)
                MP_FP(chan_creating);
        }
        atomic_store(&c->state, CH_W(gen, MP_CH_OPEN, 0, mode));
        *ci = (int)i;
        return 0;
    }
    return -ENOSPC;
}

/* ---- broadcast subscribers ------------------------------------------------
 * hand->subs[ci][slot]: gen16 << 16 | this worker's open subscriber handles
 * of incarnation gen of channel ci. Only the worker's own threads change
 * it (open, close), and its reaper, which zeroes its row when it died or
 * leaves (mempool__chan_reap). A word of an older incarnation counts for
 * nothing and is taken over by the next open. */

static int sub_open(mempool *p, uint32_t ci, uint32_t gen)
{
    _Atomic uint32_t *w = &p->hand->subs[ci][p->slot];
    uint32_t g = gen & 0xffffu, cur = atomic_load(w), n;
    do {
        n = (cur >> 16) == g ? (cur & 0xffffu) : 0;
        if (n == 0xffffu)
            return -ENOSPC;
    } while (!atomic_compare_exchange_weak(w, &cur, (g << 16) | (n + 1)));
    return 0;
}

static void sub_close(mempool *p, uint32_t ci, uint32_t gen)
{
    _Atomic uint32_t *w = &p->hand->subs[ci][p->slot];
    uint32_t g = gen & 0xffffu, cur = atomic_load(w);
    do {
        if ((cur >> 16) != g || (cur & 0xffffu) == 0)
            return;                 /* reaped, or another incarnation's */
    } while (!atomic_compare_exchange_weak(w, &cur, cur - 1));
}

static uint32_t sub_count(mempool *p, uint32_t ci, uint32_t gen)
{
    uint32_t n = 0;
    for (int s = 0; s < MP_WORKERS; s++) {
        uint32_t v = atomic_load(&p->hand->subs[ci][s]);
        if ((v >> 16) == (gen & 0xffffu))
            n += v & 0xffffu;
    }
    return n;
}

int mempool_chan_open(mempool *p, const char *name, uint32_t capacity,
                      unsigned flags, mempool_chan **out)
{
    const unsigned known = MEMPOOL_CHAN_CREATE | MEMPOOL_CHAN_BROADCAST;
    unsigned mode = (flags & MEMPOOL_CHAN_BROADCAST) ? CH_BCAST : 0;
    int len = mempool__hname_len(name), ci, rc = 0;
    mempool_chan *c;
    uint64_t w;

    if ((rc = mempool__writer_ok(p)))
        return rc;
    if (len < 0 || !out || (flags & ~known))
        return -EINVAL;
    ci = find_open(p, name, (size_t)len, &w);
    if (ci < 0) {
        if (!(flags & MEMPOOL_CHAN_CREATE))
            return -ENOENT;
        if (capacity == 0 || capacity > p->nring)
            return -EINVAL;
        dir_lock(p);
        ci = find_open(p, name, (size_t)len, &w);
        if (ci < 0 && (rc = create_locked(p, name, (size_t)len, capacity,
                                          mode, &ci)) == 0)
            w = atomic_load(&p->chans[ci].state);
        mempool__ounlock(p, &p->hand->dir_lock);
        if (rc)
            return rc;
    }
    if (CH_MODE(w) != mode)
        return -EINVAL;                 /* BROADCAST must match the mode */
    if (!(c = calloc(1, sizeof(*c))))
        return -ENOMEM;
    c->p = p;
    c->ci = (uint32_t)ci;
    c->gen = CH_GEN(w);
    c->cap = MP_LD(p->chans[ci].cap);
    c->start = MP_LD(p->chans[ci].start);
    c->bcast = mode == CH_BCAST;
    if (c->cap == 0 || c->cap > p->nring || c->start > p->nring - c->cap) {
        free(c);
        return MEMPOOL_ECORRUPT;
    }
    atomic_store(&c->pos, atomic_load(&p->chans[ci].tail));
    if (c->bcast && (rc = sub_open(p, c->ci, c->gen))) {
        free(c);
        return rc;
    }
    *out = c;
    return 0;
}

int mempool_chan_close(mempool_chan *c)
{
    if (!c)
        return -EINVAL;
    if (c->bcast && mempool__handle_ok(c->p) == 0)
        sub_close(c->p, c->ci, c->gen);
    free(c);
    return 0;
}

int mempool_chan_destroy(mempool *p, const char *name)
{
    int len = mempool__hname_len(name), ci, rc;
    mp_chan *c;
    uint64_t w;

    if ((rc = mempool__writer_ok(p)))
        return rc;
    if (len < 0)
        return -EINVAL;
    dir_lock(p);
    ci = find_open(p, name, (size_t)len, &w);
    if (ci < 0) {
        mempool__ounlock(p, &p->hand->dir_lock);
        return -ENOENT;
    }
    c = &p->chans[ci];
    if (!atomic_compare_exchange_strong(
            &c->state, &w, CH_W(CH_GEN(w), MP_CH_DESTROYING,
                                (unsigned)p->slot + 1, CH_MODE(w)))) {
        mempool__ounlock(p, &p->hand->dir_lock);
        return MEMPOOL_ECORRUPT;
    }
    MP_FP(chan_destroying);
    wake_all(c);                      /* sleepers see DESTROYING: -EPIPE */
    close_ring(p, c);
    atomic_store(&c->state, CH_W(CH_GEN(w), MP_CH_FREE, 0, 0));
    wake_all(c);
    mempool__ounlock(p, &p->hand->dir_lock);
    return 0;
}

/* ---- the handle's view ---------------------------------------------------- */

static int chan_ok(mempool_chan *c)
{
    int rc;
    if (!c)
        return -EINVAL;
    if ((rc = mempool__writer_ok(c->p)))
        return rc;
    return 0;
}

static bool chan_live(mempool_chan *c)
{
    uint64_t w = atomic_load(&c->p->chans[c->ci].state);
    return CH_GEN(w) == c->gen && CH_ST(w) == MP_CH_OPEN;
}

/* Sleep on @p seq until it moves, the deadline, or @p cap_ns. The caller
 * registered in @p waiters and re-checked after reading *seq0. */
static int sleep_on(_Atomic uint32_t *seq, uint32_t seq0, uint64_t deadline,
                    uint64_t cap_ns)
{
    return mp_futex_wait(seq, seq0, deadline, cap_ns);
}

/* The wait loop of queue send and recv: try @p once until it does not say
 * "would block" (-EAGAIN), sleeping on @p seq in between (counted in
 * @p waiters, then a last try, then FUTEX_WAIT: see mp_signal()). */
static int queue_loop(mempool_chan *c, mp_chan *h,
                      int (*once)(mempool_chan *, mp_chan *, void *),
                      void *arg, _Atomic uint32_t *seq,
                      _Atomic uint32_t *waiters, uint64_t deadline)
{
    for (;;) {
        uint32_t s0;
        int rc;
        if (!chan_live(c))
            return -EPIPE;
        rc = once(c, h, arg);
        if (rc == 0)
            continue;                /* lost a race: look again */
        if (rc != -EAGAIN)
            return rc;
        if (mp_mono_ns() >= deadline)
            return -ETIMEDOUT;
        atomic_fetch_add(waiters, 1);
        s0 = atomic_load(seq);
        rc = once(c, h, arg);        /* re-check after counting ourselves */
        if (rc == -EAGAIN && chan_live(c))
            sleep_on(seq, s0, deadline, 0);
        atomic_fetch_sub(waiters, 1);
        if (rc != -EAGAIN && rc != 0)
            return rc;
    }
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

/* ---- send --------------------------------------------------------------- */

/* Undo a send that did not commit: the caller gets its reference back. */
static void unsend(mempool *p, uint32_t b, bool ref, uint32_t idx,
                   uint32_t gen)
{
    if (ref && mempool__ref_add(&p->core, idx, gen) == 0) {
        mempool__box_take(p, b, atomic_load(&p->boxw[b]));
        return;
    }
    mempool__box_drop(p, b, atomic_load(&p->boxw[b]));
}

/* One attempt at the queue's tail with box *@p arg: 1 committed, 0 retry,
 * -EAGAIN full. */
static int qsend_once(mempool_chan *c, mp_chan *h, void *arg)
{
    uint32_t b = *(uint32_t *)arg;
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
        atomic_store(&p->boxes[b].back,
                     MP_BACK(MP_BK_CHAN, c->ci, c->start + j));
        if (!atomic_compare_exchange_strong(s, &v, MP_RING(t, 1, b + 1)))
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

static int bsend(mempool_chan *c, mp_chan *h, uint32_t b)
{
    mempool *p = c->p;
    uint64_t t = atomic_fetch_add(&h->tail, 1);
    uint32_t j = (uint32_t)(t % c->cap);
    _Atomic uint64_t *s = &p->ring[c->start + j];
    uint64_t v = atomic_load(s);

    atomic_store(&p->boxes[b].back, MP_BACK(MP_BK_CHAN, c->ci, c->start + j));
    MP_FP(bcast_claimed);
    for (;;) {
        int32_t d = (int32_t)(MP_RING_POS(v) - (uint32_t)t);
        if (v == MP_RING_CLOSED)
            return -EPIPE;
        if (d > 0 || (d == 0 && (v & MP_RING_FULL))) {
            /* A sender a lap ahead wrote first: ours is overrun at once
             * (2: sent, and the box is gone - nothing to commit). */
            mempool__box_drop(p, b, atomic_load(&p->boxw[b]));
            return 2;
        }
        if (atomic_compare_exchange_weak(s, &v, MP_RING(t, 1, b + 1)))
            break;
    }
    MP_FP(bcast_overwrote);
    if (v & MP_RING_FULL) {          /* the item we overwrote: an orphan */
        uint32_t ob = MP_RING_BOX1(v) - 1;
        if (MP_RING_BOX1(v) && ob < p->nbox)
            mempool__box_drop(p, ob, atomic_load(&p->boxw[ob]));
    }
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
    if (!chan_live(c))
        return -EPIPE;
    if ((rc = mempool__entry_of(p, r, &idx, &gen)))
        return rc;
    e = mp_entry_at(p, idx);
    if (!mp_entry_alive(atomic_load(&e->word), gen))
        return -ENOENT;
    ref = (MP_LD(e->setflags) & MEMPOOL_PUT_REFCOUNTED) != 0;
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
    rc = c->bcast ? bsend(c, h, b)
                  : queue_loop(c, h, qsend_once, &b, &h->send_seq,
                               &h->send_waiters, deadline);
    if (rc != 1 && rc != 2) {
        unsend(p, b, ref, idx, gen);
        return rc;
    }
    MP_FP(send_committed);
    if (rc == 1)
        mempool__box_commit(p, b);
    atomic_fetch_add_explicit(&h->sent, 1, memory_order_relaxed);
    mp_signal(&h->recv_seq, &h->recv_waiters, c->bcast ? INT_MAX : 1);
    return 0;
}

/* ---- recv --------------------------------------------------------------- */

/* The item in box @p b as seen now; false if the box does not hold it. */
static bool box_item(mempool *p, uint32_t b, uint64_t *bw, uint32_t *idx,
                     uint32_t *gen)
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
static void free_taken(mempool *p, uint32_t b, uint64_t bw)
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

static void uncell(mempool *p, bool ref, uint32_t idx, uint32_t gen)
{
    if (ref && mempool__ref_sub(&p->core, idx, gen) == 0)
        mempool__entry_refcheck(p, idx, gen);
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
    int rc;

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
    b = MP_RING_BOX1(v) - 1;
    if (!box_item(p, b, &bw, &idx, &gen))
        return atomic_load(s) == v ? MEMPOOL_ECORRUPT : 0;
    ref = MP_BOX_REF(bw);
    if (ref && (rc = mempool__ref_add(&p->core, idx, gen)))
        return rc;
    MP_FP(recv_celled);
    if (!atomic_compare_exchange_strong(s, &v,
                                        MP_RING(hd + c->cap, 0, 0))) {
        uncell(p, ref, idx, gen);
        return 0;
    }
    atomic_compare_exchange_strong(&h->head, &hd, hd + 1);
    MP_FP(recv_taken);
    free_taken(p, b, bw);
    *out = mempool__dref_of(p, idx, gen);
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
    if (!box_item(p, b, &bw, &idx, &gen))
        return atomic_load(slot) == v ? MEMPOOL_ECORRUPT : 0;
    ref = MP_BOX_REF(bw);
    if (ref && (rc = mempool__ref_add(&p->core, idx, gen)))
        return rc;
    MP_FP(recv_celled);
    /* The slot still holds the item: its box held the object until our
     * cell was there, so the reference we have is good. */
    if (atomic_load(slot) != v || (ref && mempool__ref_settle(p, idx, gen))) {
        uncell(p, ref, idx, gen);
        return 0;
    }
    if (!atomic_compare_exchange_strong(&c->pos, &s, s + 1)) {
        uncell(p, ref, idx, gen);
        return 0;
    }
    *out = mempool__dref_of(p, idx, gen);
    return 1;
}

static int brecv(mempool_chan *c, mp_chan *h, mempool_dref *out,
                 uint64_t deadline)
{
    uint64_t stuck_since = 0, stuck_pos = 0;
    for (;;) {
        uint32_t seq;
        int rc;
        if (!chan_live(c))
            return -EPIPE;
        rc = brecv_once(c, h, out);
        if (rc == 0)
            continue;                /* lost a race: look again */
        if (rc == -EINPROGRESS) {
            /* A sender took this position and has not written it. Wait a
             * bounded time (it may be stopped or dead), then skip it. */
            uint64_t s = atomic_load(&c->pos), now = mp_mono_ns();
            if (!stuck_since || stuck_pos != s) {
                stuck_since = now;
                stuck_pos = s;
            } else if (now - stuck_since > SKIP_NS) {
                rc = overrun(c, h, s, s + 1);
                if (rc)
                    return rc;
                continue;
            }
        }
        if (rc != -EAGAIN && rc != -EINPROGRESS)
            return rc;
        if (mp_mono_ns() >= deadline)
            return -ETIMEDOUT;
        atomic_fetch_add(&h->recv_waiters, 1);
        seq = atomic_load(&h->recv_seq);
        rc = brecv_once(c, h, out);
        if ((rc == -EAGAIN || rc == -EINPROGRESS) && chan_live(c))
            sleep_on(&h->recv_seq, seq, deadline,
                     rc == -EINPROGRESS ? 1000000u : 0);
        atomic_fetch_sub(&h->recv_waiters, 1);
        if (rc != -EAGAIN && rc != -EINPROGRESS && rc != 0)
            return rc;
    }
}

int mempool_chan_recv(mempool_chan *c, mempool_dref *out, int64_t timeout_ms)
{
    uint64_t deadline = mp_deadline(timeout_ms);
    mp_chan *h;
    int rc;

    if ((rc = chan_ok(c)))
        return rc;
    if (!out)
        return -EINVAL;
    h = &c->p->chans[c->ci];
    rc = c->bcast ? brecv(c, h, out, deadline)
                  : queue_loop(c, h, qrecv_once, out, &h->recv_seq,
                               &h->recv_waiters, deadline);
    if (rc != 1)
        return rc;
    atomic_fetch_add_explicit(&h->received, 1, memory_order_relaxed);
    if (!c->bcast)
        mp_signal(&h->send_seq, &h->send_waiters, 1);
    return 0;
}

/* ---- figures and fsck ----------------------------------------------------- */

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
        uint64_t w = atomic_load(&c->state), head, tail;
        uint32_t cap = MP_LD(c->cap), start = MP_LD(c->start), len;
        mempool_chan_info in;
        if (CH_ST(w) != MP_CH_OPEN)
            continue;
        memset(&in, 0, sizeof(in));
        len = MP_LD(c->namelen);
        if (len == 0 || len > MP_NAME_MAX || cap > p->nring ||
            start > p->nring - cap)
            continue;
        for (uint32_t k = 0; k < len; k++)
            in.name[k] = __atomic_load_n(&c->name[k], __ATOMIC_RELAXED);
        in.flags = CH_MODE(w) == CH_BCAST ? MEMPOOL_CHAN_BROADCAST : 0;
        in.capacity = cap;
        head = atomic_load(&c->head);
        tail = atomic_load(&c->tail);
        for (uint32_t j = 0; j < cap; j++) {
            uint64_t v = atomic_load(&p->ring[start + j]);
            uint32_t b = MP_RING_BOX1(v) - 1;
            if (v == MP_RING_CLOSED || !(v & MP_RING_FULL))
                continue;
            in.depth++;
            if (MP_RING_BOX1(v) && b < p->nbox &&
                MP_BOX_REF(atomic_load(&p->boxw[b])))
                in.refs++;
        }
        (void)head;
        (void)tail;
        in.senders_waiting = atomic_load(&c->send_waiters);
        in.receivers_waiting = atomic_load(&c->recv_waiters);
        in.subscribers = in.flags ? sub_count(p, i, CH_GEN(w)) : 0;
        in.sent = atomic_load(&c->sent);
        in.received = atomic_load(&c->received);
        in.dropped = atomic_load(&c->dropped);
        if (atomic_load(&c->state) != w)
            continue;
        if ((rc = fn(&in, arg)) != 0)
            return rc;
    }
    return 0;
}

/* fsck: every FULL slot of a live channel holds a live box that points
 * back at the slot. */
int mempool__chan_verify(mempool *p, char *why, size_t whylen)
{
    for (uint32_t i = 0; i < MP_CHANS; i++) {
        mp_chan *c = &p->chans[i];
        uint64_t w = atomic_load(&c->state);
        uint32_t cap = MP_LD(c->cap), start = MP_LD(c->start);
        if (CH_ST(w) != MP_CH_OPEN)
            continue;
        if (cap == 0 || cap > p->nring || start > p->nring - cap) {
            snprintf(why, whylen, "channel %u has a bad ring range", i);
            return MEMPOOL_ECORRUPT;
        }
        for (uint32_t j = 0; j < cap; j++) {
            uint64_t v = atomic_load(&p->ring[start + j]), bw, back;
            uint32_t b = MP_RING_BOX1(v) - 1;
            if (v == MP_RING_CLOSED || !(v & MP_RING_FULL))
                continue;
            if (!MP_RING_BOX1(v) || b >= p->nbox) {
                snprintf(why, whylen, "channel %u slot %u names no box", i, j);
                return MEMPOOL_ECORRUPT;
            }
            bw = atomic_load(&p->boxw[b]);
            back = atomic_load(&p->boxes[b].back);
            if (atomic_load(&p->ring[start + j]) != v)
                continue;
            if (!bw || MP_BACK_KIND(back) != MP_BK_CHAN ||
                MP_BACK_SLOT(back) != start + j) {
                snprintf(why, whylen, "channel %u slot %u: box %u is %s", i,
                         j, b, bw ? "another record's" : "free");
                return MEMPOOL_ECORRUPT;
            }
        }
    }
    return 0;
}
