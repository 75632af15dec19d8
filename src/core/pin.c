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
 * place and nonce, so a release clears exactly its own pin - releasing a
 * stale copy of a view is refused instead of dropping someone else's pin.
 * The place is 16 bits relative to the entry (the view has 32 bits for the
 * whole token): 0..7 a cell of its home bucket, 8 + k * 8 + i cell i of
 * the k-th overflow bucket from its hash (k < OVF_MAXK).
 * A reference cell counts references in low16 (a count past 0xffff goes on
 * in another cell; readers sum all matching cells).
 *
 * The table is sized per pool (mempool_options.max_refs, layout.h): R home
 * cells in R / 8 buckets of 8 (one cache line), then R / 8 overflow cells
 * in buckets of 8 too. Entry idx lives in home bucket idx & (R/8 - 1), so a
 * worker holding objects of consecutive indices fills its buckets evenly
 * and every lookup is one bucket scan. When the home bucket is full the
 * worker probes overflow buckets from a multiplicative hash of idx on,
 * raising its slot's overflow_used (cells in overflow) and ovf_probe (how
 * many overflow buckets from the hash on a scan must look at) before it
 * stores the cell, so scanners know to look there - and only there, not at
 * the whole overflow region. ovf_probe never shrinks while the slot lives
 * (a lower bound would race with an inserter); the reaper resets it.
 *
 * Only the worker's own threads put cells in its table (with CAS, as
 * several threads may share a handle); anyone may read them. Emptying is by
 * CAS to 0 only, so it may also come from outside: the freeing of a
 * refcounted entry empties every worker's reference cells of that
 * generation (a deleted object's references would otherwise fill the
 * table, issue 15 item 8), and whoever wins the CAS of an overflow cell
 * lowers that slot's overflow_used.
 *
 * Ordering (the hazard-pointer handshake). A pinner CASes its cell, then
 * re-reads the entry word; a deleter CASes the entry word to DELETED, then
 * scans the cells. All four are seq_cst, so either the pinner sees DELETED
 * and backs off, or the deleter sees the pin and leaves the freeing to the
 * last unpinner. The same handshake guards refcount checks.
 *
 * Which tables to scan: the entry's holders word (layout.h) has bit s set
 * for every worker slot s that may hold a cell of this generation. A
 * worker sets its bit (fetch_or, seq_cst) before it stores its first cell
 * of the generation; a scan loads the word after its CAS of the entry word
 * and reads only the tables of active slots the word names. If the scan's
 * load misses a bit, it came before that fetch_or, hence before the cell
 * CAS and the pinner's re-read of the entry word, which then sees the
 * scanner's CAS: the handshake above holds with fewer tables. The word is
 * zeroed when the entry is taken for a new generation (entry.c, before
 * the publish that lets anyone pin it, so the zero precedes every bit of
 * that generation); a late bit of a pinner of an older generation (who
 * backs off) only makes a scan read one table more. In a stream, where
 * the consumer gets, releases and deletes, a delete reads one table, its
 * own, instead of one per attached worker (issue 12: the 4x4 stream).
 *
 * This file sees only the narrow view (core.h's mp_core), not the handle:
 * what a dropped cell held is handed back to the reaper's callback
 * (mempool__cells_drop), which does the entry's part above core's cells.
 */
#include <errno.h>

#include "core.h"
#include "entry.h"
#include "failpoint.h"
#include "pincell.h"

/* Overflow buckets one entry's probe may reach: its place fits 16 bits. */
#define OVF_MAXK 8190u

/* Before our first cell of (idx, this generation): our bit in the entry's
 * holders word (top of file). Seen set already, it stays set for this
 * generation: only the taking of the entry for the next one zeroes it. */
static void holder_mark(mp_core *c, uint32_t idx)
{
    _Atomic uint64_t *h = &mp_core_entry(c, idx)->holders;
    uint64_t bit = UINT64_C(1) << c->slot;
    if (MP_LIKELY(atomic_load(h) & bit))
        return;
    atomic_fetch_or(h, bit);
    MP_FP(holders_marked);
}

/* The active slots that may hold cells of entry @p idx (all active ones
 * for an index out of the table: the caller's checks did not see it). */
static uint64_t holder_slots(const mp_core *c, uint32_t idx)
{
    uint64_t act = atomic_load(&c->h->active);
    if (MP_UNLIKELY(idx >= c->ntab))
        return act;
    return act & atomic_load(&mp_core_entry(c, idx)->holders);
}

/* Position of the overflow bucket @p k buckets past @p idx's hash. */
static unsigned ovf_at(const mp_core *c, uint32_t idx, unsigned k)
{
    uint32_t h = (uint32_t)(idx * UINT32_C(0x9e3779b1)) >> c->ovf_shift;
    return c->ovf_base + ((h + k) & c->ovf_mask) * MP_CELL_BW;
}

/* Overflow buckets a scan of slot @p s's cells must look at: 0 while it
 * has none in use. Bounded: the word is shared, hence untrusted. */
static unsigned ovf_span(const mp_core *c, int s)
{
    uint64_t n;
    if (MP_LIKELY(!atomic_load(&c->slots[s].overflow_used)))
        return 0;
    n = atomic_load(&c->slots[s].ovf_probe);
    return n > (uint64_t)c->ovf_mask + 1 ? c->ovf_mask + 1 :
           n > OVF_MAXK ? OVF_MAXK : (unsigned)n;
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

static bool has_room(_Atomic uint64_t *c, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (atomic_load(&c[i]) == 0)
            return true;
    return false;
}

/* One overflow cell of slot @p s was emptied by our CAS. Never below 0:
 * a reaper may have zeroed the counter of a dead slot meanwhile. */
static void overflow_done(const mp_core *c, int s)
{
    _Atomic uint64_t *used = &c->slots[s].overflow_used;
    uint64_t n = atomic_load(used);
    while (n && !atomic_compare_exchange_weak(used, &n, n - 1))
        ;
}

/* The home bucket of @p idx is full: probe the overflow buckets. Both
 * counters go up before the cell is stored (seq_cst, like the cell CAS),
 * so a scanner that misses them ran before our cell existed and the
 * entry-word handshake below covers it. */
static int ovf_put(mp_core *c, uint32_t idx, uint64_t val)
{
    _Atomic uint64_t *t = mp_cell_table(c, c->slot);
    mp_slot *sl = &c->slots[c->slot];
    atomic_fetch_add(&sl->overflow_used, 1);
    for (unsigned k = 0; k <= c->ovf_mask && k < OVF_MAXK; k++) {
        unsigned pos = ovf_at(c, idx, k);
        uint64_t probe = atomic_load(&sl->ovf_probe);
        int i;
        if (!has_room(t + pos, MP_CELL_BW))
            continue;
        while (probe < k + 1u &&
               !atomic_compare_exchange_weak(&sl->ovf_probe, &probe, k + 1u))
            ;
        (void)MP_FP(cells_overflow);
        if ((i = take_at(t + pos, MP_CELL_BW, val)) >= 0)
            return (int)(MP_CELL_BW + k * MP_CELL_BW) + i;
    }
    overflow_done(c, c->slot);
    return -ENOBUFS;
}

/* Put @p val in a free cell of entry @p idx's home bucket, else in
 * overflow. Returns the cell's place (see the top), or -ENOBUFS (the
 * table is full: nothing was stored). */
static int cell_put(mp_core *c, uint32_t idx, uint64_t val)
{
    int i = take_at(mp_cell_table(c, c->slot) + mp_cell_home(c, idx), MP_CELL_BW, val);
    if (MP_LIKELY(i >= 0))
        return i;
    return ovf_put(c, idx, val);
}

/* The position in a table of entry @p idx's cell at @p place, or -1. */
static int64_t place_pos(const mp_core *c, uint32_t idx, unsigned place)
{
    unsigned k;
    if (MP_LIKELY(place < MP_CELL_BW))
        return mp_cell_home(c, idx) + place;
    k = (place - MP_CELL_BW) / MP_CELL_BW;
    if (k > c->ovf_mask || k >= OVF_MAXK)
        return -1;
    return ovf_at(c, idx, k) + (place - MP_CELL_BW) % MP_CELL_BW;
}

int mempool__pin(mp_core *c, uint32_t idx, uint32_t gen, uint64_t *tok)
{
    uint16_t nonce = mp_pin_nonce(&mempool__thr);
    int pos;
    holder_mark(c, idx);
    pos = cell_put(c, idx, CELL_KEY(MP_PIN, idx, gen) | nonce);
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
int mempool__unpin_cell(mp_core *c, uint32_t idx, uint32_t gen,
                        uint64_t tok)
{
    int64_t pos = tok >> 32 ? -1 : place_pos(c, idx, (unsigned)(tok >> 16));
    uint64_t want = CELL_KEY(MP_PIN, idx, gen) | (tok & 0xffff);
    if (pos < 0 ||
        !atomic_compare_exchange_strong(&mp_cell_table(c, c->slot)[pos], &want, 0))
        return -EINVAL;              /* not a live pin of this worker */
    if (pos >= c->ovf_base)
        overflow_done(c, c->slot);
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

int mempool__ref_add(mp_core *c, uint32_t idx, uint32_t gen)
{
    _Atomic uint64_t *t = mp_cell_table(c, c->slot);
    uint64_t key = CELL_KEY(MP_REF, idx, gen);
    unsigned span = ovf_span(c, c->slot);
    int pos;

    /* Marked before a bump too: the cell may be a stale one of an older
     * generation with the same 16 bits (its adder, held up, has yet to
     * take it back: mempool__ref_undo), whose mark that generation's
     * taking zeroed; a check must read our table (check_ref_gen16). One
     * load when the bit is set, as it is for any cell of ours that is
     * not stale. */
    holder_mark(c, idx);
    if (bump_existing(t + mp_cell_home(c, idx), MP_CELL_BW, key))
        return 0;
    for (unsigned k = 0; k < span; k++)
        if (bump_existing(t + ovf_at(c, idx, k), MP_CELL_BW, key))
            return 0;
    pos = cell_put(c, idx, key | 1);
    return pos < 0 ? pos : 0;
}

/* Take one reference from a cell for @p key among positions [base,
 * base+n) of our table; 1 done, 0 none. */
static int drop_ref(mp_core *c, unsigned base, unsigned n, uint64_t key)
{
    _Atomic uint64_t *t = mp_cell_table(c, c->slot) + base;
    for (unsigned i = 0; i < n; i++) {
        uint64_t v = atomic_load(&t[i]);
        while ((v & CELL_KEYMASK) == key && CELL_COUNT(v) > 0) {
            if (CELL_COUNT(v) == 1) {
                /* Straight to 0: a concurrent forget must not empty it too */
                if (atomic_compare_exchange_weak(&t[i], &v, 0)) {
                    if (base + i >= c->ovf_base)
                        overflow_done(c, c->slot);
                    return 1;
                }
            } else if (atomic_compare_exchange_weak(&t[i], &v, v - 1)) {
                return 1;
            }
        }
    }
    return 0;
}

int mempool__ref_sub(mp_core *c, uint32_t idx, uint32_t gen)
{
    uint64_t key = CELL_KEY(MP_REF, idx, gen);
    unsigned span;
    if (drop_ref(c, mp_cell_home(c, idx), MP_CELL_BW, key))
        return 0;
    span = ovf_span(c, c->slot);
    for (unsigned k = 0; k < span; k++)
        if (drop_ref(c, ovf_at(c, idx, k), MP_CELL_BW, key))
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

/* Holds matching @p key in slot @p s's cells for entry @p idx. */
static uint32_t slot_sum(const mp_core *c, int s, uint32_t idx, uint64_t key)
{
    _Atomic uint64_t *t = mp_cell_table(c, s);
    uint32_t sum = sum_cells(t + mp_cell_home(c, idx), MP_CELL_BW, key);
    unsigned span = ovf_span(c, s);
    for (unsigned k = 0; k < span; k++)
        sum += sum_cells(t + ovf_at(c, idx, k), MP_CELL_BW, key);
    return sum;
}

/* Does a cell of bucket @p c match @p key? A delete's reclaim looks at
 * its own pin bucket every time (one line, mostly empty cells). */
static bool bucket_has(const _Atomic uint64_t *c, uint64_t key)
{
    for (unsigned i = 0; i < MP_CELL_BW; i++) {
        uint64_t v = atomic_load(&c[i]);
        if (v && (v & CELL_KEYMASK) == key)
            return true;
    }
    return false;
}

/* Is there a hold matching @p key in worker @p s's cells for @p idx? */
static bool slot_has(const mp_core *c, int s, uint32_t idx, uint64_t key)
{
    return bucket_has(mp_cell_table(c, s) + mp_cell_home(c, idx), key) ||
           (ovf_span(c, s) && slot_sum(c, s, idx, key));
}

/* Holds of @p kind on (idx, gen) by every attached worker (dead but not
 * yet reaped ones included); with @p any, stop at the first one found
 * (for pins then 1 says there is one). */
uint32_t mempool__cell_count(const mp_core *c, int kind, uint32_t idx,
                             uint32_t gen, bool any)
{
    uint64_t key = CELL_KEY(kind, idx, gen);
    uint64_t act = holder_slots(c, idx);
    uint32_t sum = 0;

    if (any && kind == MP_PIN) {    /* a pin is one per matching cell */
        for (; act; act &= act - 1)
            if (slot_has(c, __builtin_ctzll(act), idx, key))
                return 1;
        return 0;
    }

    /* Only the active slots that may hold a cell, by their bits: a delete
     * used to test all 64 (issue 11), then every attached one (issue 12). */
    for (; act; act &= act - 1) {
        sum += slot_sum(c, __builtin_ctzll(act), idx, key);
        if (any && sum)
            return sum;
    }
    return sum;
}

void mempool__ref_split(const mp_core *c, uint32_t idx, uint32_t gen, int me,
                        uint32_t *below, uint32_t *mine, uint32_t *all)
{
    uint64_t key = CELL_KEY(MP_REF, idx, gen);
    uint64_t act = holder_slots(c, idx);
    *below = *mine = *all = 0;
    for (; act; act &= act - 1) {
        int s = __builtin_ctzll(act);
        uint32_t n = slot_sum(c, s, idx, key);
        *all += n;
        if (s < me)
            *below += n;
        else if (s == me)
            *mine += n;
    }
}

/* Empty the cells equal to @p key at positions [base, base+n) of slot
 * @p s's table; how many. */
static unsigned forget_in(const mp_core *c, int s, unsigned base, unsigned n,
                          uint64_t key)
{
    _Atomic uint64_t *t = mp_cell_table(c, s) + base;
    unsigned done = 0;
    for (unsigned i = 0; i < n; i++) {
        uint64_t v = atomic_load(&t[i]);
        while (v && (v & CELL_KEYMASK) == key) {
            if (atomic_compare_exchange_weak(&t[i], &v, 0)) {
                if (base + i >= c->ovf_base)
                    overflow_done(c, s);
                done++;
                break;
            }
        }
    }
    return done;
}

unsigned mempool__refs_forget(mp_core *c, uint32_t idx, uint32_t gen)
{
    uint64_t key = CELL_KEY(MP_REF, idx, gen);
    uint64_t act = holder_slots(c, idx);
    unsigned done = 0;
    for (; act; act &= act - 1) {
        int s = __builtin_ctzll(act);
        unsigned span = ovf_span(c, s);
        done += forget_in(c, s, mp_cell_home(c, idx), MP_CELL_BW, key);
        for (unsigned k = 0; k < span; k++)
            done += forget_in(c, s, ovf_at(c, idx, k), MP_CELL_BW, key);
    }
    return done;
}

/* A cell naming an entry that is free or of another generation. */
static bool cell_stale(const mp_core *c, int s, uint64_t v)
{
    uint32_t idx = (uint32_t)((v >> 32) & 0x7fffffff);
    uint64_t w;
    (void)s;
    if (idx == 0 || idx > c->ntab)
        return true;
    w = mp_entry_word(mp_core_entry(c, idx - 1));
    return MP_W_ST(w) == MP_ST_FREE || MP_W_ST(w) == MP_ST_RETIRED ||
           MP_W_ST(w) == MP_ST_CACHED ||
           (MP_W_GEN(w) & 0xffff) != ((v >> 16) & 0xffff);
}

/* A cell of slot @p s naming its entry's current generation while the
 * entry's holders word lacks bit s: scans of that entry skip the cell
 * (top of file). The bit is set before the cell, so this is never a
 * moment between two steps. The word is read twice around the holders
 * load: a new generation zeroes it (taking the entry), and a cell of the
 * old one then no longer names the current generation. */
static bool cell_unmarked(const mp_core *c, int s, uint64_t v)
{
    uint32_t idx = (uint32_t)((v >> 32) & 0x7fffffff);
    const mp_entry *e;
    uint64_t w, h;
    if (idx == 0 || idx > c->ntab || cell_stale(c, s, v))
        return false;
    e = mp_core_entry(c, idx - 1);
    w = mp_entry_word(e);
    h = atomic_load(&((mp_entry *)(uintptr_t)e)->holders);
    return !(h >> s & 1) && mp_entry_word(e) == w &&
           (MP_W_GEN(w) & 0xffff) == ((v >> 16) & 0xffff);
}

/* Cells of active slots that @p bad() says are wrong, each still there
 * after it was judged; the first one's slot << 32 | cell in *@p first. */
static uint64_t cells_scan(const mp_core *c, uint64_t *first,
                           bool (*bad)(const mp_core *, int, uint64_t))
{
    uint64_t act = atomic_load(&c->h->active), n = 0;
    for (int s = 0; s < MP_WORKERS; s++) {
        _Atomic uint64_t *t = mp_cell_table(c, s);
        if (!(act >> s & 1))
            continue;
        for (unsigned i = 0; i < c->cell_per; i++) {
            uint64_t v = atomic_load(&t[i]);
            /* Only if the cell held v also after the entry's word was
             * read: else it was released before the entry moved. */
            if (v && bad(c, s, v) && atomic_load(&t[i]) == v &&
                n++ == 0 && first)
                *first = ((uint64_t)s << 32) | i;
        }
    }
    return n;
}

uint64_t mempool__cells_stale(const mp_core *c, uint64_t *first)
{
    return cells_scan(c, first, cell_stale);
}

uint64_t mempool__cells_unmarked(const mp_core *c, uint64_t *first)
{
    return cells_scan(c, first, cell_unmarked);
}

/* Reaper: clear slot @p d's cells, then let go of what they held. Nobody
 * inserts into a dead slot's table, so its overflow counters go to 0. */
void mempool__cells_drop(mp_core *c, int d, mp_cell_release *release,
                         void *arg)
{
    _Atomic uint64_t *t = mp_cell_table(c, d);
    uint64_t pins = 0;
    for (unsigned i = 0; i < c->cell_per; i++) {
        uint64_t v = atomic_exchange(&t[i], 0);
        uint32_t idx, gen16;
        uint64_t w;
        if (!v)
            continue;
        pins += !(v >> 63);
        idx = (uint32_t)((v >> 32) & 0x7fffffff) - 1;
        gen16 = (uint32_t)(v >> 16) & 0xffff;
        if (idx >= c->ntab)
            continue;                  /* corrupt cell: nothing to release */
        w = mp_entry_word(mp_core_entry(c, idx));
        if ((MP_W_GEN(w) & 0xffff) != gen16)
            continue;
        release(arg, idx, MP_W_GEN(w), (v >> 63) ? MP_REF : MP_PIN);
    }
    atomic_store(&c->slots[d].overflow_used, 0);
    atomic_store(&c->slots[d].ovf_probe, 0);
    if (pins)
        atomic_fetch_add(&c->h->recovered_pins, pins);
}
