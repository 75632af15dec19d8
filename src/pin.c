/* SPDX-License-Identifier: MIT */
/*
 * pin.c - per-worker pin and reference cells.
 *
 * Pins (get .. release) and references (ref .. unref) are recorded only in
 * the holding worker's own cell table, never as an anonymous shared count,
 * so a dead worker's holds are known exactly: the reaper clears its table.
 *
 * A cell is one 64-bit word:
 *
 *   63   62          32 31        16 15      0
 *   [kind| entry idx+1 | gen & 0xffff | count  ]      0 = empty
 *
 * Entry idx lives in bucket idx % MP_CELL_NB (8 cells, one cache line);
 * when a bucket is full the worker uses its overflow cells and raises its
 * slot's overflow_used, which tells scanners to look there too. Only the
 * worker's own threads write its cells (with CAS, as several threads may
 * share a handle); anyone may read them. Two threads may race to create two
 * cells for one key: every reader sums all matching cells, so that is fine,
 * and it is also how a count past 0xffff continues.
 *
 * Ordering (the hazard-pointer handshake). A pinner CASes its cell, then
 * re-reads the entry word; a deleter CASes the entry word to DELETED, then
 * scans the cells. All four are seq_cst, so either the pinner sees DELETED
 * and backs off, or the deleter sees the pin and leaves the freeing to the
 * last unpinner. The same handshake guards refcount checks.
 */
#include <errno.h>

#include "internal.h"

#define CELL_KEY(kind, idx, gen) \
    (((uint64_t)(kind) << 63) | ((uint64_t)((idx) + 1) << 32) | \
     ((uint64_t)((gen) & 0xffffu) << 16))
#define CELL_KEYMASK (~(uint64_t)0xffff)
#define CELL_COUNT(v) ((uint32_t)((v) & 0xffff))

static _Atomic uint64_t *table_of(mempool *p, int slot)
{
    return p->cells + (uint64_t)slot * MP_CELLS;
}

static _Atomic uint64_t *bucket_of(_Atomic uint64_t *t, uint32_t idx)
{
    return t + (idx % MP_CELL_NB) * MP_CELL_BW;
}

/* Add one to an existing cell for @p key in cells [c, c+n). */
static int bump_existing(_Atomic uint64_t *c, unsigned n, uint64_t key)
{
    for (unsigned i = 0; i < n; i++) {
        uint64_t v = atomic_load(&c[i]);
        while ((v & CELL_KEYMASK) == key && CELL_COUNT(v) < 0xffff && v) {
            if (atomic_compare_exchange_weak(&c[i], &v, v + 1))
                return 1;
        }
    }
    return 0;
}

static int take_empty(_Atomic uint64_t *c, unsigned n, uint64_t key)
{
    for (unsigned i = 0; i < n; i++) {
        uint64_t zero = 0;
        if (atomic_load(&c[i]) == 0 &&
            atomic_compare_exchange_strong(&c[i], &zero, key | 1))
            return 1;
    }
    return 0;
}

int mempool__cell_add(mempool *p, int kind, uint32_t idx, uint32_t gen)
{
    _Atomic uint64_t *t = table_of(p, p->slot);
    _Atomic uint64_t *b = bucket_of(t, idx);
    _Atomic uint64_t *ovf = t + MP_CELL_NB * MP_CELL_BW;
    _Atomic uint64_t *used = &p->slots[p->slot].overflow_used;
    uint64_t key = CELL_KEY(kind, idx, gen);

    if (bump_existing(b, MP_CELL_BW, key))
        return 0;
    if (atomic_load(used) && bump_existing(ovf, MP_CELL_OVF, key))
        return 0;
    if (take_empty(b, MP_CELL_BW, key))
        return 0;
    atomic_fetch_add(used, 1);       /* before the cell: scanners must look */
    if (take_empty(ovf, MP_CELL_OVF, key))
        return 0;
    atomic_fetch_sub(used, 1);
    return -ENOBUFS;
}

/* Take one from a cell for @p key in [c, c+n); returns 1 done, 0 none. */
static int drop_one(_Atomic uint64_t *c, unsigned n, uint64_t key,
                    bool *emptied)
{
    for (unsigned i = 0; i < n; i++) {
        uint64_t v = atomic_load(&c[i]);
        while (v && (v & CELL_KEYMASK) == key && CELL_COUNT(v) > 0) {
            uint64_t nv = CELL_COUNT(v) == 1 ? 0 : v - 1;
            if (atomic_compare_exchange_weak(&c[i], &v, nv)) {
                *emptied = nv == 0;
                return 1;
            }
        }
    }
    return 0;
}

int mempool__cell_sub(mempool *p, int kind, uint32_t idx, uint32_t gen)
{
    _Atomic uint64_t *t = table_of(p, p->slot);
    _Atomic uint64_t *ovf = t + MP_CELL_NB * MP_CELL_BW;
    _Atomic uint64_t *used = &p->slots[p->slot].overflow_used;
    uint64_t key = CELL_KEY(kind, idx, gen);
    bool emptied = false;

    if (drop_one(bucket_of(t, idx), MP_CELL_BW, key, &emptied))
        return 0;
    if (atomic_load(used) && drop_one(ovf, MP_CELL_OVF, key, &emptied)) {
        if (emptied)
            atomic_fetch_sub(used, 1);
        return 0;
    }
    return -EINVAL;
}

static uint32_t sum_cells(_Atomic uint64_t *c, unsigned n, uint64_t key)
{
    uint32_t sum = 0;
    for (unsigned i = 0; i < n; i++) {
        uint64_t v = atomic_load(&c[i]);
        if (v && (v & CELL_KEYMASK) == key)
            sum += CELL_COUNT(v);
    }
    return sum;
}

/* Holds of @p kind on (idx, gen) by every attached worker, or - with
 * @p any - by every worker but the caller's own slot excluded never. */
uint32_t mempool__cell_count(mempool *p, int kind, uint32_t idx, uint32_t gen,
                             bool any)
{
    uint64_t key = CELL_KEY(kind, idx, gen);
    uint64_t act = atomic_load(&p->h->active);
    uint32_t sum = 0;

    for (int s = 0; s < MP_WORKERS; s++) {
        _Atomic uint64_t *t;
        if (!(act >> s & 1))
            continue;
        t = table_of(p, s);
        sum += sum_cells(bucket_of(t, idx), MP_CELL_BW, key);
        if (atomic_load(&p->slots[s].overflow_used))
            sum += sum_cells(t + MP_CELL_NB * MP_CELL_BW, MP_CELL_OVF, key);
        if (any && sum)
            return sum;
    }
    return sum;
}

/* Reaper: clear slot @p d's cells, then let go of what they held. */
void mempool__cells_drop(mempool *p, int d)
{
    _Atomic uint64_t *t = table_of(p, d);
    for (unsigned i = 0; i < MP_CELLS; i++) {
        uint64_t v = atomic_exchange(&t[i], 0);
        uint32_t idx, gen16;
        mp_entry *e;
        uint64_t w;
        if (!v)
            continue;
        idx = (uint32_t)((v >> 32) & 0x7fffffff) - 1;
        gen16 = (uint32_t)(v >> 16) & 0xffff;
        if (idx >= p->ntab)
            continue;                  /* corrupt cell: nothing to release */
        e = mp_entry_at(p, idx);
        w = atomic_load(&e->word);
        if ((MP_W_GEN(w) & 0xffff) != gen16)
            continue;
        if (v >> 63)
            mempool__refcheck(p, idx, MP_W_GEN(w));
        else if (MP_W_ST(w) == MP_ST_DELETED)
            mempool__try_reclaim(p, idx);
    }
    atomic_store(&p->slots[d].overflow_used, 0);
}
