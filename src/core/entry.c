/* SPDX-License-Identifier: MIT */
/*
 * entry.c - every write of an entry word: the state machine drawn in
 * entry.h, one function per transition, plus the three composite steps
 * built from them (reclaim a deleted entry, decide a refcount, repair what
 * a dead worker left). No other file stores or CASes mp_entry.word.
 *
 * Functions report what they found instead of acting on it; waiting for
 * another worker's verdict (mempool__wait_who) is done only here and in
 * the callers' loops, never while holding the allocator lock.
 */
#include <errno.h>

#include "entry.h"
#include "failpoint.h"
#include "internal.h"
#include "wcache.h"

/* The DELETED word for @p w: files and a running writer are remembered so
 * the reclaimer removes the file and waits for the writer. */
static uint64_t deleted_word(uint64_t w)
{
    unsigned fl = MP_W_FL(w) & (MP_F_ONDISK | MP_F_WRITING | MP_F_NOMEM);
    unsigned who = (MP_W_FL(w) & MP_F_WRITING) ? MP_W_WHO(w) : 0;
    return MP_W(MP_W_GEN(w), MP_ST_DELETED, who, fl);
}

static bool cas(mp_entry *e, uint64_t *w, uint64_t nw)
{
    return atomic_compare_exchange_strong(&e->word, w, nw);
}

/* ---- under the allocator lock ------------------------------------------- */

void mempool__entry_format(mp_entry *e)
{
    atomic_store(&e->word, MP_W(1, MP_ST_FREE, 0, 0));
}

/* The entry was just taken for a new generation: nobody holds a cell of
 * it yet (pin.c, "which tables to scan"). Relaxed: the publish that lets
 * anyone pin this generation is a later seq_cst CAS of the same thread, so
 * every holder's fetch_or of it comes after this store. */
static void holders_clear(mp_entry *e)
{
    atomic_store_explicit(&e->holders, 0, memory_order_relaxed);
}

/* FREE (word @p w) -> ALLOC(@p who). */
void mempool__entry_take(mp_entry *e, uint64_t w, unsigned who)
{
    atomic_store(&e->word, MP_W(MP_W_GEN(w), MP_ST_ALLOC, who, 0));
    holders_clear(e);
}

/* Word @p w -> FREEING(@p who). A CAS, not a store: a DELETED word may be
 * claimed at the same time by its owner's cache (recache, outside this
 * lock), and exactly one of the two may free it. false if the word moved. */
bool mempool__entry_freeing(mp_entry *e, uint64_t w, unsigned who)
{
    return cas(e, &w, MP_W(MP_W_GEN(w), MP_ST_FREEING, who, 0));
}

/* FREE (word @p w) -> CACHED(@p who), same generation: a refill. */
void mempool__entry_cache(mp_entry *e, uint64_t w, unsigned who)
{
    /* Release, not seq_cst (here and in uncache, claim): no lock-free CAS
     * races with a FREE or CACHED word, the readers that decide on it
     * (fsck, rebuild, repair) hold both locks, and a stale DRef's reader
     * finds FREE, CACHED and ALLOC all not alive. */
    atomic_store_explicit(&e->word, MP_W(MP_W_GEN(w), MP_ST_CACHED, who, 0),
                          memory_order_release);
}

/* CACHED -> FREE, same generation (bumped when it was cached): a flush,
 * under the allocator lock and the cache's lock. */
void mempool__entry_uncache(mp_entry *e, uint64_t w)
{
    atomic_store_explicit(&e->word, MP_W(MP_W_GEN(w), MP_ST_FREE, 0, 0),
                          memory_order_release);
}

/* ---- under a worker's cache lock (wcache.c) ------------------------------ */

/* CACHED(who) @p w -> ALLOC(who): a set took it from its cache. A store:
 * only the holder of who's cache lock moves a CACHED(who) word. */
void mempool__entry_claim(mp_entry *e, uint64_t w)
{
    atomic_store_explicit(&e->word,
                          MP_W(MP_W_GEN(w), MP_ST_ALLOC, MP_W_WHO(w), 0),
                          memory_order_release);
    holders_clear(e);
}

/* DELETED @p w, no pins, no file -> CACHED(@p who) with the next
 * generation, so every DRef of the deleted object fails from here on. A
 * CAS: a reclaimer under the allocator lock may race for it (freeing
 * above). false if the word moved (someone else has it). */
bool mempool__entry_recache(mp_entry *e, uint64_t w, unsigned who)
{
    return MP_W_GEN(w) < MP_GEN_MAX &&
           cas(e, &w, MP_W(MP_W_GEN(w) + 1, MP_ST_CACHED, who, 0));
}

/* FREEING (or a corrupt word, in a rebuild) -> FREE with the next
 * generation, or RETIRED when the generations are used up. */
uint64_t mempool__entry_recycle(mp_entry *e, uint64_t w)
{
    uint32_t gen = MP_W_GEN(w);
    uint64_t nw = gen >= MP_GEN_MAX ? MP_W(gen, MP_ST_RETIRED, 0, 0)
                                    : MP_W(gen + 1, MP_ST_FREE, 0, 0);
    atomic_store(&e->word, nw);
    return nw;
}

/* EVICTING(us) @p ev -> SPILLED, no memory. Stored before the block is
 * freed, so a rebuild after a crash in between ignores the block. */
uint64_t mempool__entry_end_evict(mp_entry *e, uint64_t ev)
{
    uint64_t nw = MP_W_SETST(ev, MP_ST_SPILLED, 0);
    nw = (nw & ~(uint64_t)MP_F_MOVE) | MP_F_NOMEM;
    atomic_store(&e->word, nw);
    return nw;
}

/* Our write ended: drop F_WRITING and who, add F_ONDISK if @p ok. The word
 * may be LIVE or DELETED (deleted meanwhile); its other bits may change
 * under us (rc, F_MOVE), hence the loop. *was gets the word replaced. */
uint64_t mempool__entry_end_write(mp_entry *e, bool ok, uint64_t *was)
{
    uint64_t w = atomic_load(&e->word), nw;
    do {
        nw = (w & ~(UINT64_C(0xff) << 16)) & ~(uint64_t)MP_F_WRITING;
        if (ok)
            nw |= MP_F_ONDISK;
    } while (!cas(e, &w, nw));
    *was = w;
    return nw;
}

/* ---- lock-free ---------------------------------------------------------- */

/* ALLOC(us) @p w -> LIVE. -ENOENT if the word moved (reaped under us). */
int mempool__entry_publish(mp_entry *e, uint64_t w)
{
    return cas(e, &w, MP_W(MP_W_GEN(w), MP_ST_LIVE, 0, 0)) ? 0 : -ENOENT;
}

/* LIVE or SPILLED (idx, gen) -> DELETED, waiting out an eviction's
 * verdict. 0, -ENOENT if it is not alive, -EAGAIN if the evictor did not
 * finish within the bound (mempool__wait_who). */
int mempool__entry_delete(mempool *p, uint32_t idx, uint32_t gen)
{
    mp_entry *e = mp_entry_at(p, idx);
    mp_wait wt = { 0, 0 };
    uint64_t w;
    int rc;

    for (;;) {
        w = atomic_load(&e->word);
        if (!mp_entry_alive(w, gen))
            return -ENOENT;
        if (MP_W_ST(w) == MP_ST_EVICTING) {
            if ((rc = mempool__wait_who(p, MP_W_WHO(w), idx, &wt)))
                return rc;              /* the evictor is stopped */
            continue;
        }
        if (atomic_compare_exchange_weak(&e->word, &w, deleted_word(w)))
            return 0;
    }
}

/* A DESTROY_ON_EVICT victim, LIVE word @p w, -> DELETED (file flags and a
 * running writer kept). false if the word moved. */
bool mempool__entry_destroy(mp_entry *e, uint64_t w)
{
    return cas(e, &w, MP_W(MP_W_GEN(w), MP_ST_DELETED, MP_W_WHO(w),
                           MP_W_FL(w) & (MP_F_ONDISK | MP_F_WRITING)));
}

/* Classify word @p w for a writer of generation @p gen: 1 may claim it,
 * 0 already has a complete file, -EAGAIN another writer is at it, -ENOENT
 * gone or not published. */
static int write_verdict(uint64_t w, uint32_t gen)
{
    unsigned st = MP_W_ST(w);
    if (MP_W_GEN(w) != gen)
        return -ENOENT;
    if (st == MP_ST_SPILLED || st == MP_ST_EVICTING)
        return 0;                        /* both imply a complete file */
    if (st != MP_ST_LIVE)
        return -ENOENT;
    if (MP_W_FL(w) & MP_F_ONDISK)
        return 0;
    return (MP_W_FL(w) & MP_F_WRITING) ? -EAGAIN : 1;
}

/* LIVE, no file -> LIVE | F_WRITING by @p who. 1 claimed, or what
 * write_verdict() says. */
int mempool__entry_begin_write(mp_entry *e, uint32_t gen, unsigned who)
{
    for (;;) {
        uint64_t w = atomic_load(&e->word);
        int rc = write_verdict(w, gen);
        if (rc != 1)
            return rc;
        if (atomic_compare_exchange_weak(
                &e->word, &w, MP_W_SETST(w, MP_ST_LIVE, who) | MP_F_WRITING))
            return 1;
    }
}

/* LIVE with a complete file -> EVICTING(@p who). 1 marked (*w the LIVE word
 * to go back to, *ev the EVICTING one), 0 already SPILLED, -EBUSY another
 * evictor or a refcount verdict is pending, -EAGAIN no complete file yet,
 * -ENOENT gone. */
int mempool__entry_begin_evict(mp_entry *e, uint32_t gen, unsigned who,
                               uint64_t *w, uint64_t *ev)
{
    do {
        *w = atomic_load(&e->word);
        if (MP_W_GEN(*w) != gen)
            return -ENOENT;
        if (MP_W_ST(*w) == MP_ST_SPILLED)
            return 0;
        if (MP_W_ST(*w) == MP_ST_EVICTING)
            return -EBUSY;               /* another evictor's verdict */
        if (MP_W_ST(*w) != MP_ST_LIVE)
            return -ENOENT;
        if (!(MP_W_FL(*w) & MP_F_ONDISK) || (MP_W_FL(*w) & MP_F_WRITING))
            return -EAGAIN;
        if (MP_W_RC(*w))
            return -EBUSY;               /* a refcount verdict is pending */
        *ev = MP_W_SETST(*w, MP_ST_EVICTING, who);
    } while (!atomic_compare_exchange_weak(&e->word, w, *ev));
    return 1;
}

/* EVICTING(us) -> the LIVE word @p w it came from (a pin was found, or the
 * lock failed). A store: nobody else moves an EVICTING word of a live
 * worker. */
void mempool__entry_cancel_evict(mp_entry *e, uint64_t w)
{
    atomic_store(&e->word, w);
}

/* LIVE (idx, gen) -> LIVE | F_MOVE; false if it is not LIVE of @p gen or
 * the word moved (the caller retries its eviction). */
bool mempool__entry_flag_move(mp_entry *e, uint32_t gen)
{
    uint64_t w = atomic_load(&e->word);
    if (MP_W_GEN(w) != gen || MP_W_ST(w) != MP_ST_LIVE)
        return false;
    return cas(e, &w, w | MP_F_MOVE);
}

/* LIVE word @p w with a complete clean copy -> the same without F_ONDISK
 * (the file was found damaged; a later eviction writes a new one). false
 * if the word moved. Under the allocator lock, for the disk charge. */
bool mempool__entry_drop_file(mp_entry *e, uint64_t w)
{
    if (MP_W_ST(w) != MP_ST_LIVE || !(MP_W_FL(w) & MP_F_ONDISK) ||
        (MP_W_FL(w) & MP_F_WRITING))
        return false;
    return cas(e, &w, w & ~(uint64_t)MP_F_ONDISK);
}

/* ---- reclaim ------------------------------------------------------------ */

/* Free DELETED entry @p idx if no pin cell names it and no writer is at
 * it; otherwise the last unpinner (or the writer) comes back here. With
 * @p unheld the caller's refcount check just found no reference cell of
 * it (rc_scan), so the cached free need not look for cells to forget. */
static void reclaim(mempool *p, uint32_t idx, bool unheld)
{
    mp_entry *e = mp_entry_at(p, idx);
    uint64_t w = atomic_load(&e->word);
    if (MP_W_ST(w) != MP_ST_DELETED || (MP_W_FL(w) & MP_F_WRITING) ||
        mempool__cell_count(&p->core, MP_PIN, idx, MP_W_GEN(w), true))
        return;                     /* the last unpinner will come back */
    if (MP_W_FL(w) & MP_F_ONDISK)
        p->spill_ops->unlink_files(p, idx, MP_W_GEN(w));
    else if (mempool__cache_free(p, idx, w, !unheld))
        return;                     /* into our cache, without the lock */
    if (mempool__lock_or_owe(p))
        return;                     /* a stopped holder: freed later */
    mempool__free(p, idx, w);
    mempool__unlock(p);
    if (MP_W_FL(w) & MP_F_ONDISK)
        p->spill_ops->maps_sweep(p); /* our idle mapping holds the space */
    if (MP_UNLIKELY(atomic_load_explicit(&p->h->owed, memory_order_relaxed)))
        mempool__reclaim_owed(p);
}

void mempool__entry_reclaim(mempool *p, uint32_t idx)
{
    reclaim(p, idx, false);
}

/* ---- owed frees ----------------------------------------------------------
 *
 * The allocator lock is waited for at most the peer wait bound (alloc.c):
 * its holder may be stopped. A free that cannot wait - the last unpin,
 * unref or delete of an object, the reaper undoing a dead worker's
 * reservation - then leaves its entry as it is (DELETED, or ALLOC of a
 * dead worker: gone for readers either way) and raises header.owed. The
 * next freer or allocator (entry_reclaim above, a set's slow path, a
 * cache refill) scans the table and frees every such entry; none is lost,
 * since both states are final but for this free. The flag is cleared
 * before the scan, so a free that gives up during it raises it again, and
 * the scan stops there (the holder is still stopped). While it is raised
 * a free tries the lock once, not for the whole bound again
 * (mempool__lock_or_owe): one stall costs one bound, not one per free.
 * A slot given up meanwhile (its worker closed or was reaped) keeps its
 * charges: owed too, given up to the pool after the scan
 * (mempool__settle_left); a claim meanwhile takes another slot (worker.c
 * claim_reap). */

void mempool__owe(mempool *p)
{
    atomic_store(&p->h->owed, 1);
}

/* One entry's owed free, if it is one. */
static void pay_owed(mempool *p, uint32_t i)
{
    uint64_t w = atomic_load(&mp_entry_at(p, i)->word);
    unsigned who = MP_W_WHO(w);
    if (MP_W_ST(w) == MP_ST_DELETED)
        mempool__entry_reclaim(p, i);   /* pinned: its last unpin frees it */
    else if (MP_W_ST(w) == MP_ST_ALLOC && who >= 1 && who <= MP_WORKERS &&
             (int)who - 1 != p->slot &&
             !mempool__slot_alive(&p->core, (int)who - 1))
        mempool__entry_repair(p, (int)who - 1, i);
}

void mempool__reclaim_owed(mempool *p)
{
    static _Thread_local bool paying;  /* the frees below come back here */
    uint64_t hwm;
    if (paying || p->slot < 0 || !atomic_exchange(&p->h->owed, 0))
        return;
    paying = true;
    hwm = atomic_load(&p->h->hwm);
    /* A free that gives up again raises the flag: the holder is still
     * stopped, so stop too (one bound per try, not one per entry). */
    for (uint32_t i = 0; i < hwm && i < p->ntab &&
                         !atomic_load_explicit(&p->h->owed,
                                               memory_order_relaxed); i++)
        pay_owed(p, i);
    if (!atomic_load_explicit(&p->h->owed, memory_order_relaxed))
        mempool__settle_left(p);
    paying = false;
}

/* What the last pin of entry @p idx leaves to do: free it if deleted
 * (reclaim), or evict it if move_to_disk() found it pinned (F_MOVE). Run
 * after every unpin, and by the reaper for the pins it drops. */
void mempool__entry_after_unpin(mempool *p, uint32_t idx)
{
    uint64_t w = atomic_load(&mp_entry_at(p, idx)->word);
    if (MP_W_ST(w) == MP_ST_DELETED)
        mempool__entry_reclaim(p, idx);
    else if (MP_W_ST(w) == MP_ST_LIVE && (MP_W_FL(w) & MP_F_MOVE))
        p->spill_ops->evict(p, idx, MP_W_GEN(w));
}

/* Drop pin @p tok of ours on (idx, gen), then the last pin's duty. */
void mempool__unpin(mempool *p, uint32_t idx, uint32_t gen, uint64_t tok)
{
    mempool__unpin_cell(&p->core, idx, gen, tok);
    mempool__entry_after_unpin(p, idx);
}

/* ---- refcount check ----------------------------------------------------- */

/*
 * Nobody waits for another checker (it may be stopped for any time): one
 * that meets rc set raises F_RECHECK instead (a ref after adding its cell,
 * an unref after dropping it), and the checker scans again before it gives
 * its verdict, so the scan that decides follows every reference change
 * whose owner saw rc. An entry being evicted is left to its evictor, which
 * runs the check after its step (spill.c), or to the reaper that rolls the
 * eviction back.
 */

/* rc is set in word @p w: make its checker scan again. true asked (or
 * already asked), false the word moved (the caller looks again). */
bool mempool__entry_ask_recheck(mp_entry *e, uint64_t w)
{
    return (MP_W_FL(w) & MP_F_RECHECK) || cas(e, &w, w | MP_F_RECHECK);
}

/* Put our slot in the rc byte of alive refcounted (idx, gen). false if
 * there is nothing for us to check (or the running check will). */
static bool rc_begin(mempool *p, uint32_t idx, uint32_t gen, unsigned me)
{
    mp_entry *e = mp_entry_at(p, idx);
    for (;;) {
        uint64_t w = atomic_load(&e->word);
        if (!mp_entry_alive(w, gen) ||
            !(MP_LD(e->setflags) & MEMPOOL_PUT_REFCOUNTED) ||
            MP_W_ST(w) == MP_ST_EVICTING)
            return false;
        if (MP_W_RC(w)) {
            if (mempool__entry_ask_recheck(e, w))
                return false;
            continue;
        }
        if (cas(e, &w, MP_W_SETRC(w, me)))
            return true;
    }
}

/* Our check's verdict: clear rc (@p held), or -> DELETED. 1 given, 0 the
 * word is no longer ours (reaped and re-checked by someone else), -1 a
 * recheck was asked (F_RECHECK now cleared): scan again. */
static int rc_end(mp_entry *e, uint32_t gen, unsigned me, bool held)
{
    for (;;) {                  /* writers may change flags meanwhile */
        uint64_t w = atomic_load(&e->word);
        if (MP_W_GEN(w) != gen || MP_W_RC(w) != me)
            return 0;
        if (MP_W_FL(w) & MP_F_RECHECK) {
            if (cas(e, &w, w & ~(uint64_t)MP_F_RECHECK))
                return -1;
            continue;
        }
        if (cas(e, &w, held ? MP_W_SETRC(w, 0) : deleted_word(w)))
            return 1;
    }
}

/* The check we began (rc byte = @p me): scan, end, reclaim if unheld. */
static void rc_scan(mempool *p, uint32_t idx, uint32_t gen, unsigned me)
{
    bool held;
    int done;
    do {
        /* Workers' reference cells, then the pool's own (names, channel
         * items, references in flight: box.c). */
        held = mempool__cell_count(&p->core, MP_REF, idx, gen, true) != 0 ||
               mempool__box_held(p, idx, gen);
    } while ((done = rc_end(mp_entry_at(p, idx), gen, me, held)) < 0);
    /* Unheld: the scan that decided saw no reference cell, and a cell
     * added since is its adder's to take back - it sees the entry dead
     * (mempool_ref, ref_settle) - so there are none to forget. */
    if (done && !held)
        reclaim(p, idx, true);
}

/* Delete refcounted (idx, gen) if no worker holds a reference to it. */
void mempool__entry_refcheck(mempool *p, uint32_t idx, uint32_t gen)
{
    unsigned me = (unsigned)p->slot + 1;

    if (!rc_begin(p, idx, gen, me))
        return;
    MP_FP(refcheck_flagged);
    rc_scan(p, idx, gen, me);
}

void mempool__ref_undo(mempool *p, uint32_t idx, uint32_t gen)
{
    uint64_t w;
    mempool__ref_sub(&p->core, idx, gen);
    /* seq_cst after our cell's CAS: a check that counted it sees it gone
     * or we see its generation here. */
    w = atomic_load(&mp_entry_at(p, idx)->word);
    if (MP_W_GEN(w) != gen && ((MP_W_GEN(w) ^ gen) & 0xffff) == 0)
        mempool__entry_refcheck(p, idx, MP_W_GEN(w));
}

/* Let go of a pool-held reference of (idx, gen) with @p drop (box.c), then
 * check as mempool__entry_refcheck() does. The check is flagged (rc byte =
 * us) before @p drop runs: if we die after it, the reaper finds our rc
 * byte and checks again, so the object never outlives its last reference.
 * (Flagged after, a death in between left an object nobody held and
 * nobody would ever check.) @return what @p drop returned. */
bool mempool__entry_refcheck_drop(mempool *p, uint32_t idx, uint32_t gen,
                                  bool (*drop)(mempool *, void *), void *arg)
{
    unsigned me = (unsigned)p->slot + 1;
    bool began = rc_begin(p, idx, gen, me), dropped = drop(p, arg);

    if (began)
        rc_scan(p, idx, gen, me);
    else if (dropped)
        /* Nothing to check, or another check was running: rc_begin asked
         * it to look again, but it may have done so before our drop and
         * found the object still held. Ask again now that the reference
         * is gone (a death right here, during someone else's check, is
         * the one window left: design.md, "Pool-held references"). */
        mempool__entry_refcheck(p, idx, gen);
    return dropped;
}

/* ---- repair after a dead worker ----------------------------------------- */

static void disk_unreserve(const mp_core *c, const mp_entry *e)
{
    uint16_t o = MP_LD(e->owner);
    if (o >= 1 && o <= MP_WORKERS)
        atomic_fetch_sub(&c->slots[o - 1].disk_pending, MP_LD(e->len));
}

/* Roll back the eviction or file write dead worker @p d (= who - 1) was
 * doing on entry @p idx (word @p w). */
static void repair_spill(mempool *p, int d, uint32_t idx, uint64_t w)
{
    mp_entry *e = mp_entry_at(p, idx);
    if (MP_W_WHO(w) != (unsigned)d + 1)
        return;
    if (MP_W_ST(w) == MP_ST_EVICTING) {
        cas(e, &w, MP_W_SETST(w, MP_ST_LIVE, 0));
    } else if ((MP_W_ST(w) == MP_ST_LIVE || MP_W_ST(w) == MP_ST_DELETED) &&
               (MP_W_FL(w) & MP_F_WRITING)) {
        /* The writer may have died after its rename: the final name is
         * unrecorded (no F_ONDISK) and nobody else writes it, so both go. */
        p->spill_ops->unlink_files(p, idx, MP_W_GEN(w));
        if (cas(e, &w, MP_W_SETST(w, MP_W_ST(w), 0) & ~(uint64_t)MP_F_WRITING))
            disk_unreserve(&p->core, e);
    }
}

/* Undo what dead slot @p d left on entry @p idx: a reservation, a file
 * write, an eviction, a refcount check. CAS-based, so it is harmless if
 * another reaper or waiter repaired it first. */
void mempool__entry_repair(mempool *p, int d, uint32_t idx)
{
    unsigned who = (unsigned)d + 1;
    mp_entry *e = mp_entry_at(p, idx);
    uint64_t w = atomic_load(&e->word);

    if (MP_W_ST(w) == MP_ST_ALLOC && MP_W_WHO(w) == who) {
        /* Frees owed already: a dead worker's reservation is one more
         * (ours - a slot we claim - we still wait for, once). */
        if (d != p->slot &&
            atomic_load_explicit(&p->h->owed, memory_order_relaxed))
            return;
        if (mempool__lock(p) == 0) {
            mempool__free(p, idx, w);
            mempool__unlock(p);
        } else {
            mempool__owe(p);            /* a stopped holder: freed later */
        }
        return;
    }
    if (MP_W_WHO(w) == who) {
        repair_spill(p, d, idx, w);
        /* A dead evictor owed the entry a refcount check (see above). */
        if (MP_W_ST(w) == MP_ST_EVICTING)
            mempool__entry_refcheck(p, idx, MP_W_GEN(w));
    }
    w = atomic_load(&e->word);
    if (MP_W_RC(w) == who &&
        cas(e, &w, MP_W_SETRC(w, 0) & ~(uint64_t)MP_F_RECHECK))
        mempool__entry_refcheck(p, idx, MP_W_GEN(w));
}
