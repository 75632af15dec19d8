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
 *   [kind| entry idx+1 | gen & 0xffff | low16  ]      0 = empty
 *
 * A pin cell is one pin: low16 is a nonce, and the view remembers the cell's
 * position and nonce, so a release clears exactly its own pin - releasing a
 * stale copy of a view is refused instead of dropping someone else's pin.
 * A reference cell counts references in low16 (a count past 0xffff goes on
 * in another cell; readers sum all matching cells).
 *
 * Entry idx lives in bucket idx % MP_CELL_NB (8 cells, one cache line);
 * when a bucket is full the worker uses its overflow cells and raises its
 * slot's overflow_used, which tells scanners to look there too. Only the
 * worker's own threads put cells in its table (with CAS, as several threads
 * may share a handle); anyone may read them. Emptying is by CAS to 0 only,
 * so it may also come from outside: the freeing of a refcounted entry
 * empties every worker's reference cells of that generation (a deleted
 * object's references would otherwise fill the table, issue 15 item 8), and
 * whoever wins the CAS of an overflow cell lowers that slot's overflow_used.
 *
 * Ordering (the hazard-pointer handshake). A pinner CASes its cell, then
 * re-reads the entry word; a deleter CASes the entry word to DELETED, then
 * scans the cells. All four are seq_cst, so either the pinner sees DELETED
 * and backs off, or the deleter sees the pin and leaves the freeing to the
 * last unpinner. The same handshake guards refcount checks.
 */
#include <errno.h>

#include "entry.h"
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

/* Claim an empty cell for @p val in [c, c+n); its index, or -1. */
static int take_at(_Atomic uint64_t *c, unsigned n, uint64_t val)
{
    for (unsigned i = 0; i < n; i++) {
        uint64_t zero = 0;
        if (atomic_load(&c[i]) == 0 &&
            atomic_compare_exchange_strong(&c[i], &zero, val))
            return (int)i;
    }
    return -1;
}

/* Put @p val in a free cell of entry @p idx's bucket, else in overflow.
 * Returns the cell's position in the worker's table, or -ENOBUFS. */
static int cell_put(mempool *p, uint32_t idx, uint64_t val)
{
    _Atomic uint64_t *t = table_of(p, p->slot);
    _Atomic uint64_t *used = &p->slots[p->slot].overflow_used;
    unsigned base = (idx % MP_CELL_NB) * MP_CELL_BW;
    int i = take_at(t + base, MP_CELL_BW, val);
    if (i >= 0)
        return (int)base + i;
    atomic_fetch_add(used, 1);       /* before the cell: scanners must look */
    i = take_at(t + MP_CELL_NB * MP_CELL_BW, MP_CELL_OVF, val);
    if (i >= 0)
        return (int)(MP_CELL_NB * MP_CELL_BW) + i;
    atomic_fetch_sub(used, 1);
    return -ENOBUFS;
}

/* One overflow cell of slot @p s was emptied by our CAS. Never below 0:
 * a reaper may have zeroed the counter of a dead slot meanwhile. */
static void overflow_done(mempool *p, int s)
{
    _Atomic uint64_t *used = &p->slots[s].overflow_used;
    uint64_t n = atomic_load(used);
    while (n && !atomic_compare_exchange_weak(used, &n, n - 1))
        ;
}

static _Thread_local uint16_t pin_nonce;

int mempool__pin(mempool *p, uint32_t idx, uint32_t gen, uint64_t *tok)
{
    uint16_t nonce = ++pin_nonce ? pin_nonce : ++pin_nonce;
    int pos = cell_put(p, idx, CELL_KEY(MP_PIN, idx, gen) | nonce);
    if (pos < 0)
        return pos;
    *tok = ((uint64_t)pos << 16) | nonce;
    return 0;
}

/* A CAS, not a release store of 0 (issue 11 asked): the unpinner stores
 * its cell and then loads the entry word, the deleter stores the word and
 * then loads the cells - a store-to-load handshake that needs a full
 * fence on both sides, or both may miss each other and a DELETED entry
 * is never reclaimed. On x86 the fence costs what the CAS does; the CAS
 * also refuses a stale copy of a view atomically. */
int mempool__unpin_cell(mempool *p, uint32_t idx, uint32_t gen, uint64_t tok)
{
    unsigned pos = (unsigned)(tok >> 16);
    uint64_t want = CELL_KEY(MP_PIN, idx, gen) | (tok & 0xffff);
    if (pos >= MP_CELLS ||
        !atomic_compare_exchange_strong(&table_of(p, p->slot)[pos], &want, 0))
        return -EINVAL;              /* not a live pin of this worker */
    if (pos >= MP_CELL_NB * MP_CELL_BW)
        overflow_done(p, p->slot);
    return 0;
}

/* Add one to an existing reference cell for @p key in [c, c+n). */
static int bump_existing(_Atomic uint64_t *c, unsigned n, uint64_t key)
{
    for (unsigned i = 0; i < n; i++) {
        uint64_t v = atomic_load(&c[i]);
        while ((v & CELL_KEYMASK) == key && CELL_COUNT(v) < 0xffff) {
            if (atomic_compare_exchange_weak(&c[i], &v, v + 1))
                return 1;
        }
    }
    return 0;
}

int mempool__ref_add(mempool *p, uint32_t idx, uint32_t gen)
{
    _Atomic uint64_t *t = table_of(p, p->slot);
    uint64_t key = CELL_KEY(MP_REF, idx, gen);
    int pos;

    if (bump_existing(bucket_of(t, idx), MP_CELL_BW, key) ||
        (atomic_load(&p->slots[p->slot].overflow_used) &&
         bump_existing(t + MP_CELL_NB * MP_CELL_BW, MP_CELL_OVF, key)))
        return 0;
    pos = cell_put(p, idx, key | 1);
    return pos < 0 ? pos : 0;
}

/* Take one reference from a cell for @p key among [c, c+n) (positions
 * starting at @p base); 1 done, 0 none. */
static int drop_ref(mempool *p, unsigned base, unsigned n, uint64_t key)
{
    _Atomic uint64_t *c = table_of(p, p->slot) + base;
    for (unsigned i = 0; i < n; i++) {
        uint64_t v = atomic_load(&c[i]);
        while ((v & CELL_KEYMASK) == key && CELL_COUNT(v) > 0) {
            if (CELL_COUNT(v) == 1) {
                /* Straight to 0: a concurrent forget must not empty it too */
                if (atomic_compare_exchange_weak(&c[i], &v, 0)) {
                    if (base + i >= MP_CELL_NB * MP_CELL_BW)
                        overflow_done(p, p->slot);
                    return 1;
                }
            } else if (atomic_compare_exchange_weak(&c[i], &v, v - 1)) {
                return 1;
            }
        }
    }
    return 0;
}

int mempool__ref_sub(mempool *p, uint32_t idx, uint32_t gen)
{
    uint64_t key = CELL_KEY(MP_REF, idx, gen);
    if (drop_ref(p, (idx % MP_CELL_NB) * MP_CELL_BW, MP_CELL_BW, key) ||
        (atomic_load(&p->slots[p->slot].overflow_used) &&
         drop_ref(p, MP_CELL_NB * MP_CELL_BW, MP_CELL_OVF, key)))
        return 0;
    return -EINVAL;
}

/* Pins (one per cell) or references (summed) matching @p key. */
static uint32_t sum_cells(_Atomic uint64_t *c, unsigned n, uint64_t key)
{
    uint32_t sum = 0;
    for (unsigned i = 0; i < n; i++) {
        uint64_t v = atomic_load(&c[i]);
        if (v && (v & CELL_KEYMASK) == key)
            sum += (key >> 63) ? CELL_COUNT(v) : 1;
    }
    return sum;
}

/* Holds of @p kind on (idx, gen) by every attached worker (dead but not
 * yet reaped ones included); with @p any, stop at the first one found. */
uint32_t mempool__cell_count(mempool *p, int kind, uint32_t idx, uint32_t gen,
                             bool any)
{
    uint64_t key = CELL_KEY(kind, idx, gen);
    uint64_t act = atomic_load(&p->h->active);
    uint32_t sum = 0;

    /* Only the active slots, by their bits: a delete used to test all 64
     * (issue 11). */
    for (; act; act &= act - 1) {
        int s = __builtin_ctzll(act);
        _Atomic uint64_t *t = table_of(p, s);
        sum += sum_cells(bucket_of(t, idx), MP_CELL_BW, key);
        if (atomic_load(&p->slots[s].overflow_used))
            sum += sum_cells(t + MP_CELL_NB * MP_CELL_BW, MP_CELL_OVF, key);
        if (any && sum)
            return sum;
    }
    return sum;
}

/* Empty the cells equal to @p key among [c, c+n) of slot @p s; how many. */
static unsigned forget_in(mempool *p, int s, unsigned base, unsigned n,
                          uint64_t key)
{
    _Atomic uint64_t *c = table_of(p, s) + base;
    unsigned done = 0;
    for (unsigned i = 0; i < n; i++) {
        uint64_t v = atomic_load(&c[i]);
        while (v && (v & CELL_KEYMASK) == key) {
            if (atomic_compare_exchange_weak(&c[i], &v, 0)) {
                if (base + i >= MP_CELL_NB * MP_CELL_BW)
                    overflow_done(p, s);
                done++;
                break;
            }
        }
    }
    return done;
}

unsigned mempool__refs_forget(mempool *p, uint32_t idx, uint32_t gen)
{
    uint64_t key = CELL_KEY(MP_REF, idx, gen);
    uint64_t act = atomic_load(&p->h->active);
    unsigned done = 0;
    for (; act; act &= act - 1) {
        int s = __builtin_ctzll(act);
        done += forget_in(p, s, (idx % MP_CELL_NB) * MP_CELL_BW, MP_CELL_BW,
                          key);
        if (atomic_load(&p->slots[s].overflow_used))
            done += forget_in(p, s, MP_CELL_NB * MP_CELL_BW, MP_CELL_OVF, key);
    }
    return done;
}

/* A cell naming an entry that is free or of another generation. */
static bool cell_stale(mempool *p, uint64_t v)
{
    uint32_t idx = (uint32_t)((v >> 32) & 0x7fffffff);
    uint64_t w;
    if (idx == 0 || idx > p->ntab)
        return true;
    w = atomic_load(&mp_entry_at(p, idx - 1)->word);
    return MP_W_ST(w) == MP_ST_FREE || MP_W_ST(w) == MP_ST_RETIRED ||
           MP_W_ST(w) == MP_ST_CACHED ||
           (MP_W_GEN(w) & 0xffff) != ((v >> 16) & 0xffff);
}

uint64_t mempool__cells_stale(mempool *p, uint64_t *first)
{
    uint64_t act = atomic_load(&p->h->active), n = 0;
    for (int s = 0; s < MP_WORKERS; s++) {
        _Atomic uint64_t *t = table_of(p, s);
        if (!(act >> s & 1))
            continue;
        for (unsigned i = 0; i < MP_CELLS; i++) {
            uint64_t v = atomic_load(&t[i]);
            /* Stale only if the cell held v also after the entry's word
             * was read: else it was released before the entry moved. */
            if (v && cell_stale(p, v) && atomic_load(&t[i]) == v &&
                n++ == 0 && first)
                *first = ((uint64_t)s << 32) | i;
        }
    }
    return n;
}

/* Reaper: clear slot @p d's cells, then let go of what they held. */
void mempool__cells_drop(mempool *p, int d)
{
    _Atomic uint64_t *t = table_of(p, d);
    uint64_t pins = 0;
    for (unsigned i = 0; i < MP_CELLS; i++) {
        uint64_t v = atomic_exchange(&t[i], 0);
        uint32_t idx, gen16;
        mp_entry *e;
        uint64_t w;
        if (!v)
            continue;
        pins += !(v >> 63);
        idx = (uint32_t)((v >> 32) & 0x7fffffff) - 1;
        gen16 = (uint32_t)(v >> 16) & 0xffff;
        if (idx >= p->ntab)
            continue;                  /* corrupt cell: nothing to release */
        e = mp_entry_at(p, idx);
        w = atomic_load(&e->word);
        if ((MP_W_GEN(w) & 0xffff) != gen16)
            continue;
        if (v >> 63)
            mempool__entry_refcheck(p, idx, MP_W_GEN(w));
        else
            mempool__entry_after_unpin(p, idx); /* free, or finish a move */
    }
    atomic_store(&p->slots[d].overflow_used, 0);
    if (pins)
        atomic_fetch_add(&p->h->recovered_pins, pins);
}
