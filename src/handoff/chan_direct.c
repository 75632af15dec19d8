/* SPDX-License-Identifier: MIT */
/*
 * chan_direct.c - direct items: a plain object sent into a queue channel
 * travels in a record of its sender's worker slot, not in a box.
 *
 * A box (box.c) is a pool-wide record: a send claims one by CAS in the
 * bucket of the object, writes its payload, commits, marks it HELD, and the
 * receiver reads its word and payload and frees it by CAS. In a stream
 * every one of those lines was last written by the other process (the
 * receiver freed the box the sender claims next), so a box costs each side
 * two or three cache-line transfers per item, about a quarter of the whole
 * send -> recv -> get -> delete on two CPUs (issue 12). A plain object's
 * item holds no reference, so it needs none of what a box gives (reference
 * checks count boxes, sweeps free orphans): only a place for its (idx, gen)
 * beside a ring slot word that has room for 31 bits.
 *
 * So each worker slot w owns ndirect records (layout.h, mp_direct; one
 * per 256 KiB of arena, 16..1024):
 * item (idx << 32 | gen) and where (ring slot << 32 | position). A send
 * takes its next record k, writes item and where, and commits the slot
 * EMPTY(t) -> FULL(t, D(w, k)) with the ring's one CAS; a receive reads
 * FULL(t, D(w, k)), reads record k's item, and takes the slot with the
 * ring's one CAS. Records are written by their sender alone and in order,
 * so they stream through the cache like the ring does.
 *
 * Reuse: record k is free when the slot its where names no longer holds
 * FULL(position, D(w, k)): its item was received, or its channel closed.
 * The ring's state is the only truth, so nothing is to be repaired after a
 * death: a sender killed before its commit leaves a record nobody names
 * (not sent); after, the slot names it and it stays taken until received
 * (sent) - also for the next process in the same worker slot, which checks
 * the same way. A receiver reads the item before its CAS and the record
 * is rewritten only after the slot moved on (the sender's check reads the
 * slot seq_cst after that CAS): a receive whose CAS succeeds read the item
 * of that send. The threads of one handle take records through dbusy
 * (process-private). When the next records are still in rings (more than
 * ndirect items of ours in flight), the send takes a box as before.
 */
#include "chan.h"

static mp_direct *drec(mempool *p, uint32_t w, uint32_t k)
{
    return &p->direct[(size_t)w * p->ndirect + k];
}

mp_direct *mempool__direct_rec(mempool *p, uint32_t w, uint32_t k)
{
    return w < MP_WORKERS && k < p->ndirect ? drec(p, w, k) : NULL;
}

/* Does a ring slot still hold our record @p k, as its where says? */
static bool dheld(mempool *p, uint32_t k)
{
    uint32_t w = (uint32_t)p->slot;
    uint64_t wh = atomic_load(&drec(p, w, k)->where), v;
    uint32_t at = (uint32_t)(wh >> 32);
    if (at >= p->nring)
        return false;
    v = atomic_load(&p->ring[at]);
    return v != MP_RING_CLOSED && (v & MP_RING_FULL) &&
           MP_RING_POS(v) == (uint32_t)wh &&
           MP_RING_BOX1(v) == MP_RING_D(w, k);
}

int mempool__direct_claim(mempool *p, uint32_t idx, uint32_t gen)
{
    if (p->slot < 0 || p->slot >= MP_WORKERS || !p->ndirect ||
        p->ndirect > MP_DIRECT_KMAX)
        return -1;
    /* Two looks: records free in send order, so the next one is free
     * unless ndirect items of ours are in rings (then a box). */
    for (int tries = 0; tries < 2; tries++) {
        uint32_t k = atomic_fetch_add_explicit(&p->dnext, 1,
                                               memory_order_relaxed) %
                     p->ndirect;
        uint8_t zero = 0;
        if (!atomic_compare_exchange_strong(&p->dbusy[k], &zero, 1))
            continue;                   /* another thread of ours has it */
        if (!dheld(p, k)) {
            /* Ours until our commit CAS publishes it (release). */
            atomic_store_explicit(&drec(p, (uint32_t)p->slot, k)->item,
                                  ((uint64_t)idx << 32) | gen,
                                  memory_order_relaxed);
            return (int)k;
        }
        atomic_store_explicit(&p->dbusy[k], 0, memory_order_release);
    }
    return -1;
}

void mempool__direct_release(mempool *p, uint32_t k)
{
    atomic_store_explicit(&p->dbusy[k], 0, memory_order_release);
}

bool mempool__direct_item(mempool *p, uint32_t at, uint64_t v,
                          uint32_t *idx, uint32_t *gen)
{
    mp_direct *d = mempool__direct_rec(p, MP_RING_DW(v), MP_RING_DK(v));
    uint64_t item, wh;
    if (!d)
        return false;
    /* After the slot's seq_cst load (acquire): the sender's writes, both
     * made before its commit CAS. A record that does not say it was sent
     * to this slot at this position is damaged (or was never written: a
     * word naming another worker's record), like a box whose word and
     * item disagree (chan_item.c): not an item to hand out. */
    item = atomic_load_explicit(&d->item, memory_order_relaxed);
    wh = atomic_load_explicit(&d->where, memory_order_relaxed);
    *idx = (uint32_t)(item >> 32);
    *gen = (uint32_t)item;
    return *idx < p->ntab && *gen != 0 &&
           wh == (((uint64_t)at << 32) | MP_RING_POS(v));
}
