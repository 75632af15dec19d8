/* SPDX-License-Identifier: MIT */
/*
 * chan.h - what the channel files share: the per-process handle, the
 * header state word, and the calls between
 *
 *   chan.c        the directory: open, close, destroy, reaping
 *   chan_item.c   send and recv: the item's box and reference, waking
 *   chan_queue.c  queue mode: the bounded MPMC ring
 *   chan_bcast.c  broadcast mode: the overwriting ring, one reader each
 *   chan_direct.c plain items in queue rings without a box
 *   chan_info.c   mempool_chan_list() and fsck
 *
 * The design and the crash story of the whole are at the top of chan.c.
 */
#ifndef MEMPOOL_CHAN_H
#define MEMPOOL_CHAN_H

#include "handoff.h"
#include "spin.h"

#define CH_ST(w)    ((unsigned)(((w) >> 24) & 0xff))
#define CH_WHO(w)   ((unsigned)(((w) >> 16) & 0xff))
#define CH_GEN(w)   ((uint32_t)((w) >> 32))
#define CH_MODE(w)  ((unsigned)((w) & 0xff))
#define CH_W(gen, st, who, mode) \
    (((uint64_t)(gen) << 32) | ((uint64_t)(st) << 24) | \
     ((uint64_t)(who) << 16) | (uint64_t)(mode))
#define CH_BCAST    1u

struct mempool_chan {
    mempool *p;
    uint32_t ci, gen, cap, start;
    bool bcast;
    _Atomic uint64_t pos;       /* broadcast: next position to read */
    mp_spin spin_recv, spin_send; /* this handle's past spins (spin.h) */
    mp_spin spin_stream;        /* its receivers' stream spins (STREAM) */
    _Atomic bool boxed;         /* its last received item was boxed */
};

/* The header this handle opened is still that incarnation, and OPEN. */
static inline bool mempool__chan_live(mempool_chan *c)
{
    uint64_t w = atomic_load(&c->p->chans[c->ci].state);
    return CH_GEN(w) == c->gen && CH_ST(w) == MP_CH_OPEN;
}

/* Queue mode: a sender blocked on a full channel is woken when there is
 * room for this many items (a quarter of the ring, at most 256), and looks
 * again at least every CH_NAP_NS meanwhile (chan_item.c: wake_sender()). */
#define CH_NAP_NS   2000000u
static inline uint32_t mempool__chan_batch(uint32_t cap)
{
    return cap / 4 < 256 ? (cap / 4 ? cap / 4 : 1) : 256;
}

/* chan_item.c: box @p b, just taken out of a ring slot, holds (idx, gen)
 * now (false: it does not; its word in *bw); drop a receiver's cell
 * taken for an item it did not get. */
bool mempool__chan_box_item(mempool *p, uint32_t b, uint64_t *bw,
                            uint32_t *idx, uint32_t *gen);
void mempool__chan_uncell(mempool *p, bool ref, uint32_t idx, uint32_t gen);
void mempool__chan_free_taken(mempool *p, uint32_t b, uint64_t bw);

/* chan_queue.c: put box @p b at the tail / take the head item, waiting
 * until @p deadline. 1 done, else -EPIPE, -ETIMEDOUT or an error. */
int mempool__chanq_send(mempool_chan *c, mp_chan *h, uint32_t b,
                        uint64_t deadline);
/* The same with our direct record @p k (chan_direct.c) for a box. */
int mempool__chanq_send_direct(mempool_chan *c, mp_chan *h, uint32_t k,
                               uint64_t deadline);

/* chan_direct.c: take one of our direct records for a plain (@p idx,
 * @p gen), its item written: the record, or -1 (none free: use a box);
 * give it back after the send; the record @p w, @p k (NULL: no such);
 * the item of FULL slot word @p v of ring slot @p at naming a record
 * (false: damaged - no such record, or not one sent to @p at then). */
int mempool__direct_claim(mempool *p, uint32_t idx, uint32_t gen);
void mempool__direct_release(mempool *p, uint32_t k);
mp_direct *mempool__direct_rec(mempool *p, uint32_t w, uint32_t k);
bool mempool__direct_item(mempool *p, uint32_t at, uint64_t v,
                          uint32_t *idx, uint32_t *gen);
int mempool__chanq_recv(mempool_chan *c, mp_chan *h, mempool_dref *out,
                        uint64_t deadline);

/* chan_bcast.c: the same for broadcast (send never waits, and returns 2
 * when its item was overrun at once: sent, its box already dropped; recv
 * may return -EOVERFLOW once after losing items). */
int mempool__chanb_send(mempool_chan *c, mp_chan *h, uint32_t b);
int mempool__chanb_recv(mempool_chan *c, mp_chan *h, mempool_dref *out,
                        uint64_t deadline);

/* chan.c: this incarnation's broadcast subscriber handles, all workers. */
uint32_t mempool__chan_subs(mempool *p, uint32_t ci, uint32_t gen);

#endif /* MEMPOOL_CHAN_H */
