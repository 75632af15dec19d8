/* SPDX-License-Identifier: MIT */
/*
 * chan.c - channels: named, bounded, multi-producer multi-consumer FIFO
 * queues of DRefs (queue mode), or rings every subscriber reads in full
 * (broadcast mode, iceoryx-style publish/subscribe). This file holds the
 * design and the directory (open, close, destroy, reaping); send and recv
 * are in chan_item.c over the rings of chan_queue.c and chan_bcast.c, the
 * figures and fsck in chan_info.c (chan.h lists them).
 *
 * A channel is a header (mp_chan) and a range of ring slots. Headers are
 * created and destroyed under the channel directory's owner lock (a live
 * holder, maybe stopped, is waited for at most the peer wait bound, then
 * open-to-create and destroy answer -EAGAIN: wait.c); opening an existing
 * channel, listing, sends and receives take no lock.
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
 *   A plain object's item needs no box (it holds no reference): in queue
 *   mode it travels in one of its sender's direct records, FULL(t, D(w,
 *   k)), with the same one-CAS commit and take (chan_direct.c).
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
 * the count says someone sleeps not yet woken (sleepers.h). Receivers
 * wake a sender when there is room for a batch, and senders nap
 * (chan_item.c: wake_sender()).
 *
 * Destroy moves the header to DESTROYING, wakes everyone (they return
 * -EPIPE), closes every slot (dropping the boxes of the items still in it)
 * and frees the header. A destroyer that dies is finished by the next
 * directory locker or by its reaper. Closing a slot takes its item out
 * like a receive: announced (box_hazard.c), CAS to CLOSED, then the
 * box is dropped; a destroyer killed in between (chan.closed) leaves an
 * orphan its reaper's sweep frees, one stopped there keeps the box from
 * sweeps (check_chan_close).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chan.h"
#include "failpoint.h"

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

/* Drop box @p b, the item of a slot we closed (box.c says how). */
static void drop_closed(mempool *p, uint32_t b)
{
    MP_FP(chan_closed);
    mempool__box_drop_out(p, b);
}

/* The box slot word @p v names, or UINT32_MAX: none (empty, or a direct
 * item, which holds no reference: chan_direct.c). */
static uint32_t slot_box(uint64_t v)
{
    return MP_RING_IS_D(v) ? UINT32_MAX : MP_RING_BOX1(v) - 1;
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
        /* The box we close out is in no record until we drop it: announced
         * before each try (box_hazard.c; BOX1 0 announces no box). */
        int k = mempool__box_announce(p, slot_box(v));
        while (v != MP_RING_CLOSED &&
               !atomic_compare_exchange_weak(s, &v, MP_RING_CLOSED))
            mempool__box_reannounce(p, k, slot_box(v));
        if (v != MP_RING_CLOSED && (v & MP_RING_FULL) && !MP_RING_IS_D(v))
            drop_closed(p, MP_RING_BOX1(v) - 1);
        mempool__box_unannounce(p, k);
        if (j == 0)
            MP_FP(chan_closing);
    }
}

static void wake_all(mp_chan *c)
{
    mp_wake(&c->send_seq, &c->send_waiters, INT_MAX);
    mp_wake(&c->recv_seq, &c->recv_waiters, INT_MAX);
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

/* 0 with the directory lock, or -EAGAIN: a live holder kept it past the
 * peer wait bound (stopped; wait.c). */
static int dir_lock(mempool *p)
{
    int rc = mempool__olock(p, &p->hand->dir_lock);
    if (rc > 0)
        repair_dir(p);
    return rc < 0 ? rc : 0;
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
    mempool__run_reap(p, d);
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

uint32_t mempool__chan_subs(mempool *p, uint32_t ci, uint32_t gen)
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
        if ((rc = dir_lock(p)))
            return rc;
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
    c->spin_recv.key = c->spin_send.key = c->spin_stream.key =
        MP_SPIN_KEY_CHAN(c->ci);
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
    if ((rc = dir_lock(p)))
        return rc;
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
