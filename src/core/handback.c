/* SPDX-License-Identifier: MIT */
/*
 * handback.c - batched cross-process hand-back: the small objects of other
 * workers that we delete go back to their owners' allocator caches a batch
 * per hold of the owner's cache lock, not one hold per object (issue 12).
 *
 * In a stream one worker sets and another gets and deletes. Each delete
 * used to take the setter's cache lock to recache the entry (wcache.c):
 * that lock's line travelled between the two CPUs twice per object, and
 * when the setter held it the deleter fell back to the allocator lock
 * (block freed, the setter refilling later) while the setter, finding it
 * held by the deleter, slept in the kernel. Now the deleter keeps such
 * entries in its handle's stash (mp_stash, this process's memory) and,
 * once MP_STASH_BATCH of one owner wait (or MP_STASH_MAX - MP_STASH_SLACK
 * of several), gives them back under one try of the owner's lock
 * (mempool__cache_give); what does not fit (lock busy, class full) waits
 * for the next batch, and at MP_STASH_MAX everything goes, through the
 * allocator lock if need be.
 *
 * Crash safety adds no shared state: a stashed entry is DELETED in the
 * table (no pins, no file; a refcounted one's cells already forgotten),
 * charged to its owner as any deleted object not yet reclaimed, and any
 * reclaimer may take it - the reaper of a dead deleter frees every DELETED
 * entry it finds (worker.c reap_entries), an owed-free scan too (entry.c).
 * Handing one back is the CAS DELETED -> CACHED(owner) of wcache.c's
 * recache under the owner's lock: a death there leaves the owner's cache
 * dirty, repaired from the table by its next holder. A stashed entry some
 * other reclaimer took meanwhile fails that CAS and is skipped, so nothing
 * is freed twice; rebuild() and mempool_check() see DELETED entries and
 * account them as today.
 *
 * What the stash costs: a deleted object of another worker stays charged
 * to its owner (its stats, its limit) and keeps its block until its batch
 * goes, at most MP_STASH_MAX objects per deleting handle. The stash is
 * emptied when this handle leaves (close), reaps, checks, trims or reads
 * stats, so what a process reports after its own deletes is exact. Its
 * threads share it through a busy flag; one that finds it busy gives its
 * object back at once, as before.
 */
#include "failpoint.h"
#include "wcache.h"

/* Our stash may take entries: an open worker's handle (not closing). */
static bool stash_usable(const mempool *p)
{
    return p->slot >= 0 && mempool__writer_fast(p);
}

static void free_one(mempool *p, uint32_t idx, uint64_t w)
{
    if (mempool__lock_or_owe(p))
        return;                     /* owed: left DELETED for the payer */
    (void)mempool__free(p, idx, w);  /* false: another reclaimer had it */
    mempool__unlock(p);
}

/* Our cache's copy of the stash's entries k.. (a hint for readers). */
static void publish(mempool *p, const mp_stash *st, unsigned k)
{
    mp_wcache *wc = &p->wcs[p->slot];
    for (; k < st->n; k++)
        atomic_store_explicit(&wc->stash[k], st->idx[k],
                              memory_order_relaxed);
    /* Release: a reader that sees the count sees the entries below it. */
    atomic_store_explicit(&wc->stash_n, st->n, memory_order_release);
}

/* Give owner @p o its entries of the stash into its cache; with @p all
 * the rest are freed, else they stay. Clears in *@p keep the bits of the
 * entries that left the stash. */
static void give_owner(mempool *p, mp_stash *st, int o, uint64_t *keep,
                       bool all)
{
    mp_give b;                      /* n and done only: no 800-byte memset */
    uint8_t pos[MP_STASH_MAX];
    unsigned cnt = 0;
    int owed;

    for (unsigned k = 0; k < st->n && k < MP_STASH_MAX; k++) {
        if (st->owner[k] != o)
            continue;
        pos[cnt] = (uint8_t)k;
        b.idx[cnt] = st->idx[k];
        b.w[cnt++] = st->w[k];
    }
    b.n = cnt;
    b.done = 0;
    owed = mempool__cache_give(p, o, &b, !all);
    for (unsigned j = 0; j < cnt; j++) {
        bool done = b.done >> j & 1;
        if (!done && !all)
            continue;               /* busy or full: the next batch's */
        if (!done && !owed)
            free_one(p, b.idx[j], b.w[j]);
        *keep &= ~(UINT64_C(1) << pos[j]);
    }
}

/* Hand back the stash, one batch per owner (@p only >= 0: that owner's
 * alone); @p all: empty it. Ours. */
static void hand(mempool *p, mp_stash *st, bool all, int only)
{
    uint64_t keep = st->n >= 64 ? ~UINT64_C(0) : (UINT64_C(1) << st->n) - 1;
    uint64_t seen = 0;
    unsigned n = 0;

    for (unsigned k = 0; k < st->n; k++) {
        int o = st->owner[k];
        if (seen >> k & 1)
            continue;
        for (unsigned j = k; j < st->n; j++)
            if (st->owner[j] == o)
                seen |= UINT64_C(1) << j;
        if (only >= 0 && o != only)
            continue;
        /* A departed owner's cache takes nothing: freed now. */
        give_owner(p, st, o, &keep,
                   all || !(atomic_load(&p->h->active) >> o & 1));
    }
    for (unsigned k = 0; k < st->n; k++)
        st->per[st->owner[k]] = 0;
    for (unsigned k = 0; k < st->n; k++) {
        if (!(keep >> k & 1))
            continue;
        st->owner[n] = st->owner[k];
        st->per[st->owner[k]]++;
        st->idx[n] = st->idx[k];
        st->w[n++] = st->w[k];
    }
    MP_ST(st->n, n);           /* read unlocked by the flush's look */
    publish(p, st, 0);
}

/* After stashing an entry of owner @p o: hand back o's entries once a
 * batch of them wait; all owners' once the stash is nearly full; all of
 * it, through the allocator lock if need be, when it is full. Per owner,
 * not per stash: a consumer of four producers' objects gave each its
 * share of every MP_STASH_BATCH (about 8 entries), one hold of that
 * producer's cache lock per 8 of its objects per consumer - four times
 * the holds of a 1->1 stream, each a collision with the producer's own
 * sets (own_lock) the more likely (4x4 stream, issue 12). */
static void hand_due(mempool *p, mp_stash *st, int o)
{
    if (st->n >= MP_STASH_MAX - MP_STASH_SLACK)
        hand(p, st, st->n >= MP_STASH_MAX, -1);
    else if (st->per[o] >= MP_STASH_BATCH)
        hand(p, st, false, o);
}

/* Take the stash for this thread: false if another thread has it. */
static bool stash_take(mp_stash *st)
{
    return !atomic_exchange_explicit(&st->busy, true, memory_order_acquire);
}

static void stash_put(mp_stash *st)
{
    atomic_store_explicit(&st->busy, false, memory_order_release);
}

bool mempool__handback(mempool *p, int o, uint32_t idx, uint64_t w)
{
    mp_stash *st = &p->stash;

    /* An owner with a memory limit gets its room back at once: its next
     * set must not spill for objects already deleted. */
    if (!stash_usable(p) || atomic_load_explicit(&p->slots[o].max_memsize,
                                                 memory_order_relaxed) ||
        !stash_take(st)) {
        mp_give b;
        b.n = 1;
        b.done = 0;
        b.idx[0] = idx;
        b.w[0] = w;
        /* At once, as before batches: owed, given, or the caller's. */
        return mempool__cache_give(p, o, &b, false) || b.done;
    }
    st->owner[st->n] = (uint16_t)o;
    st->per[o]++;
    st->idx[st->n] = idx;
    st->w[st->n] = w;
    MP_ST(st->n, st->n + 1);
    publish(p, st, st->n - 1);
    MP_FP(handback_stashed);
    hand_due(p, st, o);
    stash_put(st);
    return true;
}

void mempool__handback_flush(mempool *p)
{
    mp_stash *st = &p->stash;
    /* A relaxed look first: an empty stash costs one load. */
    if (!MP_LD(st->n) || !stash_take(st))
        return;
    hand(p, st, true, -1);
    stash_put(st);
}

/* Entry @p idx, named by a stash (a hint only): if it is a DELETED small
 * object (no flags, no pin), its reference cells forgotten, into its
 * owner's cache if that cache's lock is free at the first try; true if
 * there is nothing more to do, false with its word in *@p w: the caller
 * frees it (mempool__free CASes the word, so one a stash's owner hands
 * back meanwhile is not freed twice). No lock is waited for here: a
 * deleter stopped inside the owner's cache lock mid-batch
 * (handback.given) held the reclaim of a delete one peer bound per entry
 * it listed - a stats read took minutes (check_review8). */
static bool collect_give(mempool *p, uint32_t idx, uint64_t *w)
{
    mp_entry *e;
    unsigned o;
    mp_give b;
    if (idx >= p->ntab)
        return true;                /* damaged or stale */
    e = mp_entry_at(p, idx);
    *w = atomic_load(&e->word);
    /* What a stash may hold (mempool__cache_free's tests): anything else
     * a hint names - another user may plant them - is its reclaimer's. */
    if (MP_W_ST(*w) != MP_ST_DELETED || MP_W_FL(*w) || MP_W_WHO(*w) ||
        !MP_LD(e->off) ||
        mempool__cell_count(&p->core, MP_PIN, idx, MP_W_GEN(*w), true))
        return true;
    if (MP_LD(e->setflags) & MEMPOOL_PUT_REFCOUNTED)
        mempool__refs_forget(&p->core, idx, MP_W_GEN(*w));
    o = MP_LD(e->owner);
    if (o < 1 || o > MP_WORKERS)
        return false;
    b.n = 1;
    b.done = 0;
    b.idx[0] = idx;
    b.w[0] = *w;
    return mempool__cache_give_try(p, (int)o - 1, &b);
}

/* What worker @p s's stash names: given to the owners' caches, or freed
 * under the allocator lock, waited for only with @p wait. */
static void collect_stash(mempool *p, int s, bool wait)
{
    mp_wcache *wc = &p->wcs[s];
    uint32_t n = atomic_load_explicit(&wc->stash_n, memory_order_acquire);
    uint32_t idx[MP_STASH_MAX];
    uint64_t w[MP_STASH_MAX];
    unsigned m = 0;
    n = n < MP_STASH_MAX ? n : MP_STASH_MAX;
    for (uint32_t k = 0; k < n; k++) {
        idx[m] = atomic_load_explicit(&wc->stash[k], memory_order_relaxed);
        if (!collect_give(p, idx[m], &w[m]))
            m++;
    }
    if (!m || (wait ? mempool__lock(p) : mempool__lock_try(p)))
        return;                     /* a stopped holder: counted a while */
    for (unsigned k = 0; k < m; k++)
        (void)mempool__free(p, idx[k], w[k]);
    mempool__unlock(p);
}

void mempool__handback_collect(mempool *p, bool wait)
{
    uint64_t act;
    if (p->slot < 0 || p->readonly)
        return;                     /* an observer frees nothing */
    act = atomic_load(&p->h->active) & ~(UINT64_C(1) << p->slot);
    for (; act; act &= act - 1)
        collect_stash(p, __builtin_ctzll(act), wait);
    mempool__handback_flush(p);     /* ours */
}
