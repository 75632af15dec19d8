/* SPDX-License-Identifier: MIT */
/*
 * get.c - mempool_get() and mempool_release(): a short path for the
 * common case, object.c's full one for everything else.
 *
 * Why a short path (issue 11 target 6, docs/design.md "Random gets in
 * large pools"): a random get in a pool larger than the caches waits for
 * two misses, the entry and then the data. Independent gets overlap those
 * misses only while the next get's loads fit in the CPU's reorder window
 * beside this one's, so every instruction of a get+release counts: the
 * full path was ~400 in a dozen calls. Here each is one function, the
 * checks merged, the handle's values precomputed at open (fastgen,
 * own_cells, own_slot, own_bit, data_span), no register saved on the common path:
 * its only call, the coarse clock's for the stamp, is made last, as a tail
 * call.
 *
 * The short get takes: a writer handle of this process; a well-formed
 * DRef; an entry LIVE in that generation (one compare of the word's bits
 * 63..24); a free cell in the entry's home bucket; a block inside the
 * arena. Like pin.c it first sets this worker's bit in the entry's
 * holders word when it is not set yet (failpoint holders.marked). Anything else goes to the full path with nothing changed (before
 * the pin: mempool__get() or mempool__get_at() checks again and says
 * why), or, once pinned, to mempool__get_pinned(), which carries on from
 * the same step: re-read the word, wait out an eviction, and so on. The
 * short release takes a memory view of this handle in a home-bucket cell;
 * others go to mempool__release(). So errors are the full path's. The
 * steps in shared memory are the full path's too, in its order but for
 * the counters - pin CAS, seq_cst re-read of the word, view, counter,
 * stamp; unpin CAS, counter, last-pin duty - and a kill at any instruction
 * leaves what the full path's would: a pin cell the reaper drops (with its
 * duty), or a DELETED entry with no pin, which the reaper reclaims
 * (worker.c reap_entries). Failpoints get.fast_pinned and
 * release.fast_unpinned sit between the shared steps, and join the crash
 * matrix (tests/check_failpoints.c).
 */
#include <string.h>

#include "dhint.h"
#include "entry.h"
#include "failpoint.h"
#include "internal.h"
#include "pincell.h"
#include "recency.h"
#include "view.h"

_Thread_local struct mp_thread mempool__thr;

/* The counters are the full path's (locked adds: a handle may be shared
 * by threads, and a load+store would lose counts). */
#define COUNT(p, field) \
    atomic_fetch_add_explicit(&(p)->own_slot->field, 1, memory_order_relaxed)

/* The end of a short get: mark @p e most recently used (the clock read is
 * a call; made last, as a tail call, it costs the common path no saved
 * registers). */
static __attribute__((noinline)) int touch_last(mp_entry *e)
{
    mp_stamp_touch(&e->stamp, false);
    return 0;
}

/* The rest of a short get that found something unusual after its pin
 * (the word moved, a block out of the arena or of length 0), by the full
 * path: @p a is the view's priv[0] (entry + 1, token). */
static __attribute__((noinline)) int get_full(mempool *p, uint64_t a,
                                              uint32_t gen, mempool_view *v)
{
    return mempool__get_pinned(p, (uint32_t)a - 1, gen, a >> 32, v, true);
}

/* Pin with @p key a free cell of the home bucket @p cell, in the order
 * pin.c's cell_put() looks: the place (0..7), or -1 if the bucket is
 * full. seq_cst CAS: the pinner's half of the handshake (pin.c). */
static inline int pin_home(_Atomic uint64_t *cell, uint64_t key)
{
    for (int i = 0; i < (int)MP_CELL_BW; i++) {
        uint64_t zero = 0;
        if (atomic_load_explicit(&cell[i], memory_order_relaxed) == 0 &&
            atomic_compare_exchange_strong(&cell[i], &zero, key))
            return i;
    }
    return -1;
}

int mempool_get(mempool *p, mempool_dref r, mempool_view *v)
{
    uint32_t gen = (uint32_t)r.gen;
    uint64_t live = (uint64_t)gen << 8 | MP_ST_LIVE;   /* word bits 63..24 */
    uint64_t rel, idx, off, len, a, x, hint;
    uint8_t *hp;
    mp_entry *e;
    int place;

    if (MP_UNLIKELY(!p || !v) || !mempool__writer_fast(p))
        return mempool__get(p, r, v, true);
    /* mempool__entry_of()'s tests: the pool's tag, gen != 0, an entry
     * offset inside the table (the hint's bits masked away; one below the
     * table wraps). */
    rel = (r.off & MEMPOOL_DREF_ENTRY_BITS) -
          (uint64_t)((uint8_t *)p->tab - p->base);
    idx = rel >> 6;
    if (MP_UNLIKELY((r.gen ^ p->tag) >> 32) || MP_UNLIKELY(!gen) ||
        MP_UNLIKELY(idx >= p->ntab))
        return mempool__get(p, r, v, true);
    e = &p->tab[idx];
    /* Acquire, not relaxed (a plain load on x86 all the same): the LIVE
     * word we see was published after the taking of the entry zeroed its
     * holders word (entry.c), so the holders load below must not read an
     * older value - a bit of ours left from an earlier generation, seen
     * set, would skip the mark of this one and a delete would not scan
     * our cell. */
    if (MP_UNLIKELY(atomic_load_explicit(&e->word, memory_order_acquire) >>
                    24 != live))               /* not LIVE: the full path */
        return mempool__get_at(p, (uint32_t)idx, gen, v, true);
    /* pin.c's holder mark: our bit in the holders word before our first
     * cell of this generation (seq_cst, as there; usually set already) */
    if (MP_UNLIKELY(!(atomic_load(&e->holders) & p->own_bit))) {
        atomic_fetch_or(&e->holders, p->own_bit);
        MP_FP(holders_marked);
    }
    /* priv[0] = entry + 1 | nonce << 32 (| place << 48 below); the cell
     * key is CELL_KEY(MP_PIN, idx, gen) | nonce: the same halves swapped,
     * plus the generation's low bits. */
    a = (idx + 1) | (uint64_t)mp_pin_nonce(&mempool__thr) << 32;
    place = pin_home(p->own_cells + mp_cell_home(&p->core, (uint32_t)idx),
                     (a << 32 | a >> 32) | (uint32_t)(gen << 16));
    if (MP_UNLIKELY(place < 0))                /* full: overflow cells */
        return mempool__get_at(p, (uint32_t)idx, gen, v, true);
    a |= (uint64_t)place << 48;
    MP_FP(get_fast_pinned);
    /* seq_cst, after the seq_cst CAS of our cell: a delete or eviction
     * CASes the word, then scans the cells (pin.c). Still LIVE in this
     * generation: off and len stay until we unpin. A block outside the
     * arena or of length 0: the full path says which. */
    if (MP_UNLIKELY(mp_entry_word(e) >> 24 != live))
        return get_full(p, a, gen, v);
    off = MP_LD(e->off);
    len = MP_LD(e->len);
    x = off - p->data_off;
    if (MP_UNLIKELY(x > p->data_span) || MP_UNLIKELY(len > p->data_span - x))
        return get_full(p, a, gen, v);
    /* Where the DRef's data hint says the block is (dhint.h; no hint:
     * data_off - 64, which no block has), used only when equal to the
     * entry's own off, so a stale or forged one is never read through.
     * Behind an empty asm so that the compiler cannot take it from off:
     * the CPU, predicting the compare, runs the caller's data load while
     * the entry load is still out. */
    hint = p->data_off + (mp_dhint_block(r.off) << 6) - 64;
    hp = p->base + hint;
    __asm__("" : "+r"(hp));
    if (MP_UNLIKELY(off != hint)) {
        hp = p->base + off;
        /* a branch, not a cmov: a cmov would wait for the entry's off */
        __asm__ volatile("" : "+r"(hp));
    }
    v->data = hp;
    v->len = len;
    v->type = MP_LD(e->type);
    v->flags = MEMPOOL_VIEW_MEMORY;
    v->priv[0] = a;
    v->priv[1] = gen;
    v->priv[2] = (uint64_t)(uintptr_t)p | MP_VIEW_MEM;
    v->priv[3] = mp_view_mac(a, gen, v->priv[2]);
    COUNT(p, gets);
    return touch_last(e);
}

/* The last pin's duty (reclaim, or a move that waited for us): the end
 * of a short release, as a tail call. */
static __attribute__((noinline)) int after_unpin(mempool *p, uint32_t idx)
{
    mempool__entry_after_unpin(p, idx);
    return 0;
}

int mempool_release(mempool *p, mempool_view *v)
{
    uint64_t a, b, w, want;
    uint32_t idx;
    unsigned place;
    _Atomic uint64_t *cell;

    if (MP_UNLIKELY(!p || !v) || !mempool__writer_fast(p))
        return mempool__release(p, v);
    a = v->priv[0];
    b = v->priv[1];
    idx = (uint32_t)a - 1;
    place = (unsigned)(a >> 48);
    /* A memory view of this handle (kind 0), sealed by a get, naming a
     * home-bucket cell of an entry in the table; else the full path. */
    if (MP_UNLIKELY(v->priv[2] != (uint64_t)(uintptr_t)p) ||
        MP_UNLIKELY(v->priv[3] != mp_view_mac(a, b, v->priv[2])) ||
        MP_UNLIKELY(idx >= p->ntab) || MP_UNLIKELY(place >= MP_CELL_BW))
        return mempool__release(p, v);
    MP_FP(release_before);
    cell = p->own_cells + mp_cell_home(&p->core, idx) + place;
    want = CELL_KEY(MP_PIN, idx, b) | (uint16_t)(a >> 32);
    /* A CAS, not a release store: pin.c, mempool__unpin_cell(). */
    if (MP_UNLIKELY(!atomic_compare_exchange_strong(cell, &want, 0)))
        return -EINVAL;              /* not a live pin of this worker */
    MP_FP(release_fast_unpinned);
    memset(v, 0, sizeof(*v));
    COUNT(p, releases);
    /* seq_cst after the unpin CAS: a deleter that saw our pin left the
     * free to us (pin.c); mempool__entry_after_unpin() looks again. */
    w = mp_entry_word(&p->tab[idx]);
    if (MP_UNLIKELY(MP_W_ST(w) == MP_ST_DELETED || (MP_W_FL(w) & MP_F_MOVE)))
        return after_unpin(p, idx);
    return 0;
}
