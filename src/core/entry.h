/* SPDX-License-Identifier: MIT */
/*
 * entry.h - the entry word's state machine (entry.c).
 *
 * Every object table entry (mp_entry, layout.h) carries one 64-bit word:
 *
 *   63            32 31     24 23      16 15      8 7       0
 *   [ generation    | state   | who      | rc      | flags   ]
 *
 * States:
 *
 *   FREE      on the allocator's free list (gen already bumped)
 *   ALLOC     reserved by worker `who`, not yet visible
 *   LIVE      published; immutable bytes at off/len
 *   EVICTING  `who` is freeing the memory of an object with a clean file;
 *             readers wait for the verdict (back to LIVE, or SPILLED)
 *   SPILLED   bytes only in the spill file (F_ONDISK | F_NOMEM)
 *   DELETED   gets fail; bytes and file stay until no pin cell names it
 *   FREEING   being freed by the allocator-lock holder `who`
 *   RETIRED   generation exhausted; never reused
 *   CACHED    in worker `who`'s allocator cache with a block of its size
 *             class attached; gen already bumped; no object (wcache.c)
 *
 *   rc        slot + 1 of a worker deciding whether a refcounted object
 *             lost its last reference (LIVE or SPILLED), else 0
 *   F_ONDISK  a complete file "<idx>-<gen>" holds the bytes
 *   F_WRITING `who` is writing that file ("<idx>-<gen>.tmp")
 *   F_NOMEM   the bytes are not in the arena
 *   F_MOVE    move_to_disk() asked while pinned: evict at last release
 *   F_RECHECK (only with rc) a reference changed during the check: the
 *             checker scans again before its verdict
 *
 * Transitions (each one function below; [L] = under the allocator lock):
 *
 *   FREE --take[L]--> ALLOC(us) --publish--> LIVE --delete--> DELETED
 *     ^                  |abort/reap          | ^                   |
 *     |                  |     begin_evict    v | cancel_evict  last pin:
 *     |                  |              EVICTING(us)              reclaim
 *     |                  |                    | end_evict[L]          |
 *     |                  |                    v                       |
 *     |                  |                 SPILLED --delete-----------+
 *     |                  v                                            |
 *     +--recycle[L]-- FREEING(us) <--freeing[L]-----------------------+
 *     |                                                               |
 *     +--uncache[L+C]-- CACHED(w) <--recache[C] (own small object)----+
 *     |                  |  ^
 *     +--cache[L+C]------+  +---> claim[C]: CACHED(w) -> ALLOC(w)
 *
 *   [C] = under worker w's cache lock (wcache.c), not the allocator lock:
 *   a worker's sets of small objects claim entries it cached (refilled
 *   under [L+C], 16 at a time), and the delete of its own small object
 *   (no pins, file, or references) recaches the entry with the next
 *   generation; a full cache flushes 16 back under [L+C]. freeing and
 *   recache are CASes from the DELETED word, so of a reclaimer under the
 *   lock and the owner's cache exactly one wins.
 *
 *   On LIVE (and DELETED, for a writer that was overtaken by a delete):
 *   begin_write sets F_WRITING + who; end_write[L] clears them and sets
 *   F_ONDISK if the file is complete. flag_move sets F_MOVE on a pinned
 *   LIVE object. refcheck sets and clears rc, or moves LIVE/SPILLED to
 *   DELETED when no reference is left. The reaper (repair) rolls back what
 *   a dead `who` or `rc` left: ALLOC is freed, EVICTING goes back to LIVE,
 *   F_WRITING is cleared (and its files removed), rc is cleared and the
 *   check re-run.
 *
 * Invariants:
 *   1. entry.c is the only code that writes the word. Lock-free transitions
 *      are seq_cst CASes; the [L] and [C] ones are plain seq_cst stores,
 *      safe because while the lock holder owns the state (ALLOC, FREEING,
 *      EVICTING of its own; FREE under [L]; CACHED(w) under w's [C]) no
 *      CAS elsewhere matches it. freeing and recache leave DELETED, which
 *      nobody owns: both are CASes.
 *   2. The generation changes only in recycle (FREEING -> FREE, gen + 1)
 *      and recache (DELETED -> CACHED, gen + 1), so a DRef from before a
 *      reuse never matches again.
 *   3. A non-zero `who` names the single worker allowed to move the word
 *      out of ALLOC, EVICTING, FREEING or F_WRITING; everyone else waits
 *      for it (mempool__wait_who: sleeping, bounded, -EAGAIN past the
 *      bound) or, if it died, repairs for it. Nobody waits for rc: a
 *      reference change raises F_RECHECK instead (refcheck below).
 *   4. Memory is never freed before a file is complete: EVICTING requires
 *      F_ONDISK and no F_WRITING; SPILLED implies F_ONDISK | F_NOMEM.
 *   5. In LIVE, who != 0 exactly when F_WRITING is set.
 *   6. Pins are not in the word: a transition that must not race with a
 *      pin (delete, begin_evict) CASes the word and then scans the pin
 *      cells; a pinner writes its cell and then re-reads the word (pin.c).
 *      All four are seq_cst, so one of the two sees the other.
 */
#ifndef MEMPOOL_ENTRY_H
#define MEMPOOL_ENTRY_H

#include "core.h"

/* Published and not deleted: in memory, on disk, or between the two. */
static inline bool mp_entry_alive(uint64_t w, uint32_t gen)
{
    unsigned st = MP_W_ST(w);
    return MP_W_GEN(w) == gen && (st == MP_ST_LIVE || st == MP_ST_SPILLED ||
                                  st == MP_ST_EVICTING);
}

/* The word, seq_cst (the pin handshake above relies on it). */
static inline uint64_t mp_entry_word(const mp_entry *e)
{
    return atomic_load((_Atomic uint64_t *)&e->word);
}

/* ---- under the allocator lock (alloc.c only) -------------------------- */
void     mempool__entry_format(mp_entry *e);           /* -> FREE, gen 1 */
void     mempool__entry_take(mp_entry *e, uint64_t w, unsigned who);
bool     mempool__entry_freeing(mp_entry *e, uint64_t w, unsigned who);
void     mempool__entry_cache(mp_entry *e, uint64_t w, unsigned who);
void     mempool__entry_uncache(mp_entry *e, uint64_t w);
uint64_t mempool__entry_recycle(mp_entry *e, uint64_t w);    /* new word */
uint64_t mempool__entry_end_evict(mp_entry *e, uint64_t ev); /* new word */
uint64_t mempool__entry_end_write(mp_entry *e, bool ok, uint64_t *was);
bool     mempool__entry_drop_file(mp_entry *e, uint64_t w);

/* ---- under a worker's cache lock (wcache.c) ------------------------------ */
void     mempool__entry_claim(mp_entry *e, uint64_t w);
bool     mempool__entry_recache(mp_entry *e, uint64_t w, unsigned who);

/* ---- lock-free ---------------------------------------------------------- */
int  mempool__entry_publish(mp_entry *e, uint64_t w);
bool mempool__entry_destroy(mp_entry *e, uint64_t w);
int  mempool__entry_begin_write(mp_entry *e, uint32_t gen, unsigned who);
int  mempool__entry_begin_evict(mp_entry *e, uint32_t gen, unsigned who,
                                uint64_t *w, uint64_t *ev);
void mempool__entry_cancel_evict(mp_entry *e, uint64_t w);
bool mempool__entry_flag_move(mp_entry *e, uint32_t gen);
bool mempool__entry_ask_recheck(mp_entry *e, uint64_t w);

/* The composite steps (delete, reclaim, unpin, refcount check, reaper
 * repair) reach up through the handle's tables (spill_ops) or wait for and
 * reap peers, so they take the handle: internal.h declares them. */

#endif /* MEMPOOL_ENTRY_H */
