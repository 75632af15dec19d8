/* SPDX-License-Identifier: MIT */
/*
 * wcache.c - per-worker allocator caches: a set of a small object and the
 * delete of one's own small object without the pool-wide allocator lock.
 *
 * Robust mutexes do not spin, so two writers taking the allocator lock for
 * every set and delete collide into futex sleeps (issue 11: 2 writer
 * processes ran at 0.25x one). Each worker therefore keeps up to
 * mp_wc_cap(class) table entries per size class (512 of 64 B: a stream's
 * producer runs up to a channel's capacity ahead) in state CACHED(who =
 * the worker), each with a free block of that class still attached (off,
 * len), listed in its mp_wcache (layout.h) under its own robust lock:
 *
 *   set     pop an entry of the class: CACHED(us) -> ALLOC(us), charge it
 *           to our cache's part of our charges (mempool__cache_alloc);
 *   delete  of our own small object, no pins or file (a refcounted one's
 *           stale reference cells forgotten first, as mempool__free does): the
 *           DELETED word CASes to CACHED(us) with the next generation (old
 *           DRefs fail at once), our cache's part is uncharged, the entry
 *           is pushed (mempool__cache_free); another worker's goes the
 *           same way into its owner's cache, a batch per try of that lock
 *           (mempool__cache_give, batched by the deleter's stash:
 *           handback.c; a stream's deletes feed its setter's cache);
 *   refill  an empty class takes the allocator lock, then ours, and
 *           caches mp_wc_batch(c) free entries with fresh blocks (none
 *           for a set over our limit: it is refused or spilled anyway);
 *   flush   a full class gives its mp_wc_batch(c) oldest back the same way.
 *
 * Batches: half the class (layout.h mp_wc_batch: 256 of 64 B, 64, 32,
 * then 16), so a refilled or flushed class stands half full, as far from
 * the next refill as from the next flush. A 1->1 stream through a
 * 1024-deep channel swings its producer's 64 B class from empty to full
 * and back (the producer runs a channel ahead, the consumer's hand-backs
 * return a channel's worth). With 16 per hold it took the allocator lock
 * ~99,000 times per 2M objects (4x4: ~90,000); with half the class
 * ~10,000-11,500 (4x4: ~11,300), mostly refills and flushes (~4,500
 * each), and ~19,000 futex calls became ~12,500 (uprobe counts, session
 * 9). A hold costs ~10 ns per entry moved (median hold 1.7 us at 16, 4.1
 * us at 256, uprobe overhead included), so a peer waiting for the
 * allocator lock - asleep in the kernel, robust mutexes do not spin -
 * waits about one futex wake-up longer at most. The class sizes stay (no
 * format change): a deeper class (1024) fits a channel's swing but not
 * the smallest arena.
 *
 * Crash safety stays "derived from the table": a CACHED word says which
 * worker's cache holds the entry and the entry still names its block, so
 * rebuild() and mempool_check() place the block and count the entry as
 * used (entries_used and used_bytes include cached ones; stats subtract
 * them) but charge it to nobody. The cache's list and its charge part are
 * a summary of the table: whoever takes a cache lock its holder died with
 * (EOWNERDEAD) marks it dirty, and the next holder that also holds the
 * allocator lock repairs it (cache_repair: the list re-read from the
 * table, the owner's charges recounted). The reaper, and a worker that
 * closes, flush the whole cache (mempool__disown). Anyone short of entries
 * or blocks drains the caches it can lock (mempool__cache_drain), so a
 * cache never makes the pool look fuller than it is.
 *
 * A stopped holder of our cache lock (a giver SIGSTOPped mid hand-back
 * batch, check_giver_stop) costs our sets and deletes one short wait
 * (own_lock: MP_OWN_WAIT_MS), then they go around the cache until a try
 * finds the lock free: a set from the pool's allocator (object.c admit,
 * without our cache lock if we have no memory limit to keep exact:
 * charged to the part the allocator lock guards, as any locked set), a
 * delete freed under the allocator lock. No shared state is new: that is
 * the locked set and free, with their failpoints.
 *
 * A deleter's stash (handback.c) holds no entry of its own: what it lists
 * is DELETED in the table, charged to its owner like any deleted object
 * not yet reclaimed, so rebuild() and mempool_check() see nothing new; a
 * deleter SIGKILLed with a full stash leaves DELETED entries that its
 * reaper frees (worker.c reap_entries), and a stashed entry another
 * reclaimer took fails the recache CAS here (give_locked skips it before
 * reading its class: it may hold a large object by then).
 *
 * Who moves what: this file writes a cache's list, dirty flag and charge
 * part, always under that cache's lock; the entry words through entry.c
 * (claim, recache; cache and uncache via alloc.c under both locks).
 * Verification and rebuild hold every cache lock, so they see no set or
 * delete half done.
 */
#include <errno.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "entry.h"
#include "failpoint.h"
#include "rlock.h"
#include "wcache.h"

/* How long a set or delete of ours waits for our own cache lock before it
 * goes around the cache (own_lock). */
#define MP_OWN_WAIT_MS 50u
/* How long it watches that lock first, before it sleeps on it (own_spin). */
#define MP_OWN_SPIN_NS 5000u

static mp_wcache *wc_of(const mp_core *c, int s)
{
    return &c->wcs[s];
}

/* Class @p c's list in cache @p wc. */
static uint32_t *wc_list(mp_wcache *wc, unsigned c)
{
    return wc->idx + mp_wc_base(c);
}

/* Stats read the counts without the lock: stores are relaxed atomics. */
static void counts_clear(mp_wcache *wc)
{
    for (unsigned c = 0; c < MP_NCLASS; c++)
        MP_ST(wc->n[c], 0);
}

/* A relaxed add to a charge only its cache's lock holder writes. */
static void part_add(_Atomic uint64_t *c, uint64_t d)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + d,
                          memory_order_relaxed);
}

/* Is @p m a mutex of the kind we make (found once)? A damaged arena may
 * hold anything in a lock's kind word. */
static bool wc_kind_ok(pthread_mutex_t *m)
{
    static int kind = -1;
    /* Atomic loads too: two threads may make the first call at once. */
    if (MP_UNLIKELY(__atomic_load_n(&kind, __ATOMIC_RELAXED) < 0))
        __atomic_store_n(&kind, mempool__mutex_kind(), __ATOMIC_RELAXED);
    return m->__data.__kind == __atomic_load_n(&kind, __ATOMIC_RELAXED);
}

/* Cache @p s's lock was taken with pthread result @p rc: a holder that
 * died leaves the cache dirty. 0, or the error. */
static int wc_got(mempool *p, int s, int rc)
{
    pthread_mutex_t *m = &wc_of(&p->core, s)->lock;
    if (rc == EOWNERDEAD) {
        wc_of(&p->core, s)->dirty = 1;     /* its holder died mid-step */
        mempool__rl_consistent(m);
        rc = 0;
    }
    if (rc == ENOTRECOVERABLE)
        return MEMPOOL_ECORRUPT;
    return -rc;
}

/* Take another worker's cache lock, waiting until @p until (now_ns clock)
 * at most. Its holder is inside a step of a few instructions, so a lock
 * still held at the deadline has a holder that is stopped (SIGSTOP, a
 * debugger, a frozen cgroup): alive, so the kernel will not hand the lock
 * over, and the caller (fsck, a rebuild, holding the allocator lock) must
 * not wait for it. 0, -EAGAIN (held at the deadline), MEMPOOL_ECORRUPT. */
static int wc_lock_until(mempool *p, int s, uint64_t until)
{
    pthread_mutex_t *m = &wc_of(&p->core, s)->lock;
    int rc;
    if (MP_UNLIKELY(!wc_kind_ok(m)))
        return MEMPOOL_ECORRUPT;
    rc = mempool__rl_trylock(m);
    if (rc == EBUSY) {
        /* timedlock takes a CLOCK_REALTIME time: the rest of the bound
         * from now (a clock step only lengthens or shortens one wait). */
        uint64_t now = mempool__now_ns(), left = until > now ? until - now : 0;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        left += (uint64_t)ts.tv_nsec;
        ts.tv_sec += (time_t)(left / 1000000000u);
        ts.tv_nsec = (long)(left % 1000000000u);
        rc = mempool__rl_timedlock(m, &ts);
        if (rc == ETIMEDOUT)
            return -EAGAIN;
    }
    return wc_got(p, s, rc);
}

/* Take cache @p s's lock (@p try: or fail with -EBUSY). Otherwise wait
 * the peer bound at most: besides s's own threads, fsck and the reaper,
 * any worker that frees an object of s's holds it (cache_give), and one
 * stopped in there kept s's sets and close (under the allocator lock)
 * waiting until it was continued (check_review6). A holder that died
 * leaves it dirty. 0, -EBUSY, -EAGAIN (held past the bound: the caller
 * goes around the cache), MEMPOOL_ECORRUPT (a lock that is not of our
 * kind, or names no thread). */
static int wc_lock(mempool *p, int s, bool try)
{
    pthread_mutex_t *m = &wc_of(&p->core, s)->lock;
    int rc;
    if (MP_UNLIKELY(!wc_kind_ok(m)))
        return MEMPOOL_ECORRUPT;
    /* Uncontended (the common case) a trylock is all it costs. */
    rc = mempool__rl_trylock(m);
    if (rc == EBUSY && !try)
        return wc_lock_until(p, s, mempool__now_ns() +
                                   mempool__wait_bound_ns(p));
    return wc_got(p, s, rc);
}

/* Watch our lock held by someone else a bounded while (MP_OWN_SPIN_NS)
 * before own_lock sleeps on it: a pthread_mutex_trylock() result, EBUSY
 * if it is still held. Its holder is a giver (handback.c) recaching one
 * batch (MP_STASH_BATCH entries, a microsecond or two): in a 1->1 stream
 * the consumer on the other CPU, whose batch a set of the producer found
 * under way about once per batch. Robust mutexes do not spin: the set
 * slept in the kernel (FUTEX_WAIT) and the giver's unlock paid a
 * FUTEX_WAKE and the producer a wake-up, several microseconds per batch
 * (perf, 1->1 pinned apart: 6-20 % of all samples in those calls). The
 * spin reads only the lock word (its owner's TID, 0 when free; glibc's
 * layout, as wc_kind_ok reads its kind) and tries when it reads free.
 * A holder that is not running (preempted on a busy machine, stopped)
 * does not let go while we spin: each spin of this thread's that ends
 * without the lock halves its next bound, down to 1/32 (~150 ns), and
 * one that gets it restores the whole bound. */
static _Thread_local unsigned own_fails;

static int own_spin(pthread_mutex_t *m)
{
    uint64_t t0 = 0, bound = MP_OWN_SPIN_NS >> own_fails;
    for (unsigned k = 1;; k++) {
        mp_cpu_relax();
        if (!(__atomic_load_n(&m->__data.__lock, __ATOMIC_RELAXED) &
              FUTEX_TID_MASK)) {
            int rc = mempool__rl_trylock(m);
            if (rc != EBUSY) {
                own_fails = 0;
                return rc;
            }
        }
        if (k % 16)
            continue;
        if (!t0) {
            t0 = mempool__now_ns();
        } else if (mempool__now_ns() - t0 > bound) {
            own_fails += own_fails < 5;
            return EBUSY;
        }
    }
}

/* Our own cache's lock, for a set or a delete of ours (and the locked
 * set's hold, object.c). Its other holders are our threads, fsck and the
 * reaper, and givers (cache_give) inside a step of a few instructions: a
 * wait of MP_OWN_WAIT_MS (or the peer bound, if shorter; the peer bound
 * if we have a memory limit) sees them out unless one is stopped
 * (SIGSTOP inside a hand-back batch). Then we go
 * around the cache (the set from the pool's allocator, the delete freed
 * under the allocator lock), and remember it: until a try finds the lock
 * free again, our sets and deletes only try it, so a stopped peer costs
 * us one short wait, not one per call (check_giver_stop). 0, -EAGAIN,
 * MEMPOOL_ECORRUPT, as wc_lock. */
static int own_lock(mempool *p)
{
    int s = p->slot, rc;
    pthread_mutex_t *m = &wc_of(&p->core, s)->lock;
    uint64_t bound;

    if (MP_UNLIKELY(!wc_kind_ok(m)))
        return MEMPOOL_ECORRUPT;
    rc = mempool__rl_trylock(m);
    if (MP_LIKELY(rc != EBUSY)) {
        if (MP_UNLIKELY(atomic_load_explicit(&p->wc_stuck,
                                             memory_order_relaxed)))
            atomic_store_explicit(&p->wc_stuck, false, memory_order_relaxed);
        return wc_got(p, s, rc);
    }
    if (atomic_load_explicit(&p->wc_stuck, memory_order_relaxed))
        return -EAGAIN;
    if ((rc = own_spin(m)) != EBUSY)
        return wc_got(p, s, rc);
    /* The short wait only without a memory limit: then a set can go
     * around the cache. With one it cannot (the limit is exact only under
     * this lock), so it waits the peer bound as for any peer: a giver
     * only preempted for a moment must not fail our put (check_review9). */
    bound = mempool__wait_bound_ns(p);
    if (bound > MP_OWN_WAIT_MS * 1000000u &&
        !atomic_load_explicit(&p->slots[s].max_memsize, memory_order_relaxed))
        bound = MP_OWN_WAIT_MS * 1000000u;
    rc = wc_lock_until(p, s, mempool__now_ns() + bound);
    if (rc == -EAGAIN)
        atomic_store_explicit(&p->wc_stuck, true, memory_order_relaxed);
    return rc;
}

static void wc_unlock(mempool *p, int s)
{
    mempool__rl_unlock(&wc_of(&p->core, s)->lock);
}

/* @p off is where a block of @p len (1 .. MP_SMALL_MAX) bytes can be: in
 * the data pages, on a block boundary of its class. A set writes there
 * without the allocator lock, so a damaged offset must not pass. (Class
 * sizes are powers of two dividing MP_PAGE: a mask, not a division.) */
static bool block_ok(const mp_core *c, uint64_t off, uint64_t len)
{
    uint64_t rel = off - c->data_off;
    return off >= c->data_off && rel / MP_PAGE < c->npages &&
           !(rel & (mp_class_bytes(mp_class_of(len)) - 1));
}

/* Structurally a cached entry: a live cache names it, a small block. With
 * @p room, its cache's list of that class can take it too. */
bool mempool__cache_fits(const mp_core *c, const mp_entry *e, uint64_t w,
                         bool room)
{
    unsigned who = MP_W_WHO(w);
    uint64_t len = MP_LD(e->len);
    if (who < 1 || who > MP_WORKERS || len < 1 || len > MP_SMALL_MAX ||
        !block_ok(c, MP_LD(e->off), len))
        return false;
    return !room ||
           wc_of(c, (int)who - 1)->n[mp_class_of(len)] <
               mp_wc_cap(mp_class_of(len));
}

/* Word @p w of entry @p e is CACHED(worker @p s) and the entry names a
 * block it may own (the checks of cache_fits without room, inline: the
 * cached set and the flush run them on every entry). */
static inline bool cached_by(const mp_core *c, const mp_entry *e, uint64_t w,
                             int s)
{
    uint64_t len = MP_LD(e->len);
    return (w & UINT64_C(0xffffffff)) == MP_W(0, MP_ST_CACHED, s + 1, 0) &&
           len >= 1 && len <= MP_SMALL_MAX && block_ok(c, MP_LD(e->off), len);
}

/* Rebuild: list CACHED entry @p idx in its cache (cache_fits said room). */
void mempool__cache_adopt(const mp_core *c, uint32_t idx, uint64_t w)
{
    mp_wcache *wc = wc_of(c, (int)MP_W_WHO(w) - 1);
    unsigned k = mp_class_of(MP_LD(mp_core_entry(c, idx)->len));
    wc_list(wc, k)[wc->n[k]] = idx;
    MP_ST(wc->n[k], wc->n[k] + 1);
}

void mempool__cache_zero(const mp_core *c, int s)
{
    atomic_store(&wc_of(c, s)->objects, 0);
    atomic_store(&wc_of(c, s)->resident, 0);
}

/* Rebuild: every cache empty, but the caches in @p busy (their holder is
 * stopped mid-step: we do not hold their locks): those are left as they
 * are and marked dirty, so their next holder with the allocator lock
 * re-reads them from the table (cache_repair). */
void mempool__cache_reset(const mp_core *c, uint64_t busy)
{
    for (int s = 0; s < MP_WORKERS; s++) {
        if (busy >> s & 1) {
            __atomic_store_n(&wc_of(c, s)->dirty, 1, __ATOMIC_RELAXED);
            continue;
        }
        counts_clear(wc_of(c, s));
        mempool__cache_zero(c, s);
        wc_of(c, s)->dirty = 0;
    }
}

/* A holder of cache @p s died: its list from the table (entries that do
 * not fit go back to the free list), s's charges recounted. Both locks. */
static void cache_repair(mempool *p, int s)
{
    mp_wcache *wc = wc_of(&p->core, s);
    counts_clear(wc);
    for (uint32_t i = 0; i < p->ntab; i++) {
        mp_entry *e = mp_entry_at(p, i);
        uint64_t w = atomic_load(&e->word);
        if (MP_W_ST(w) != MP_ST_CACHED || MP_W_WHO(w) != (unsigned)s + 1)
            continue;
        if (mempool__cache_fits(&p->core, e, w, true))
            mempool__cache_adopt(&p->core, i, w);
        else if (mempool__cache_fits(&p->core, e, w, false))
            mempool__uncache_locked(p, i, w);   /* no room: back it goes */
        /* else damaged: fsck reports it, a rebuild frees it */
    }
    mempool__recharge_locked(p, s);
    mempool__cache_zero(&p->core, s);
    wc->dirty = 0;
}

int mempool__cache_hold(mempool *p, int s)
{
    int rc = wc_lock(p, s, false);
    if (rc == 0 && wc_of(&p->core, s)->dirty)
        cache_repair(p, s);
    return rc;
}

int mempool__cache_hold_set(mempool *p, int s)
{
    int rc = s == p->slot ? own_lock(p) : wc_lock(p, s, false);
    if (rc == 0 && wc_of(&p->core, s)->dirty)
        cache_repair(p, s);
    return rc;
}

void mempool__cache_release(mempool *p, int s)
{
    wc_unlock(p, s);
}

/* The caches of attached workers (the `active` bits). A slot that becomes
 * active meanwhile cannot touch its cache until we release the allocator
 * lock: the reap of its claim emptied it, and filling it (a refill, or a
 * set charged to it whose delete is recached) takes the allocator lock
 * first. (It also keeps a thread's locks under 64, ThreadSanitizer's
 * limit, with fewer than 64 workers.) All of them within one bound,
 * mempool__wait_bound_ns(): the caches whose holder is stopped go to
 * *@p busy, not held. */
uint64_t mempool__cache_hold_all(mempool *p, bool repair, uint64_t *busy)
{
    uint64_t held = 0, act = atomic_load(&p->h->active);
    uint64_t until = mempool__now_ns() + mempool__wait_bound_ns(p);
    *busy = 0;
    for (int s = 0; s < MP_WORKERS; s++) {
        int rc;
        if (!(act >> s & 1))
            continue;
        if ((rc = wc_lock_until(p, s, until))) {
            if (rc == -EAGAIN)
                *busy |= UINT64_C(1) << s;
            continue;               /* damaged lock: its cache is not used */
        }
        held |= UINT64_C(1) << s;
        if (repair && wc_of(&p->core, s)->dirty)
            cache_repair(p, s);
    }
    return held;
}

void mempool__cache_release_all(mempool *p, uint64_t held)
{
    for (int s = 0; s < MP_WORKERS; s++)
        if (held >> s & 1)
            wc_unlock(p, s);
}

/* Give the @p cnt oldest entries of class @p c back. Both locks. */
static uint64_t flush(mempool *p, int s, unsigned c, uint32_t cnt)
{
    mp_wcache *wc = wc_of(&p->core, s);
    uint32_t *l = wc_list(wc, c);
    uint32_t n = wc->n[c] < mp_wc_cap(c) ? wc->n[c] : mp_wc_cap(c);
    cnt = cnt < n ? cnt : n;
    for (uint32_t k = 0; k < cnt; k++) {
        uint32_t i = l[k];
        uint64_t w;
        if (i >= p->ntab)
            continue;
        w = atomic_load(&mp_entry_at(p, i)->word);
        if (cached_by(&p->core, mp_entry_at(p, i), w, s))
            mempool__uncache_locked(p, i, w);
        MP_FP(cache_flushed);
    }
    memmove(l, l + cnt, (n - cnt) * sizeof(uint32_t));
    MP_ST(wc->n[c], n - cnt);
    return cnt;
}

uint64_t mempool__cache_flush_all(mempool *p, int s)
{
    uint64_t n = 0;
    for (unsigned c = 0; c < MP_NCLASS; c++)
        n += flush(p, s, c, mp_wc_cap(c));
    return n;
}

uint64_t mempool__cache_drain(mempool *p, int held)
{
    uint64_t n = 0;
    for (int s = 0; s < MP_WORKERS; s++) {
        if (s == held) {
            n += mempool__cache_flush_all(p, s);
        } else if (wc_lock(p, s, true) == 0) {
            if (wc_of(&p->core, s)->dirty)
                cache_repair(p, s);
            n += mempool__cache_flush_all(p, s);
            wc_unlock(p, s);
        }
    }
    return n;
}

uint64_t mempool__cache_trim(mempool *p)
{
    uint64_t n = 0, act = atomic_load(&p->h->active);
    for (int s = 0; s < MP_WORKERS; s++) {
        bool own = s == p->slot;
        if (!(act >> s & 1) || (!own && mempool__slot_alive(&p->core, s)))
            continue;
        /* A dead worker's lock is free or handed over (EOWNERDEAD: dirty,
         * repaired below); ours is held by our threads or a giver
         * (mempool__cache_give), waited for the bound at most. */
        if (wc_lock(p, s, !own))
            continue;
        if (wc_of(&p->core, s)->dirty)
            cache_repair(p, s);
        n += mempool__cache_flush_all(p, s);
        wc_unlock(p, s);
    }
    return n;
}

/* Cache up to mp_wc_batch(c) fresh entries of class @p c. Both locks. */
static void refill(mempool *p, int s, unsigned c)
{
    mp_wcache *wc = wc_of(&p->core, s);
    uint32_t cnt = mp_wc_batch(c);
    for (uint32_t k = 0; k < cnt && wc->n[c] < mp_wc_cap(c); k++) {
        uint32_t i;
        if (mempool__cache_take_locked(p, c, (unsigned)s + 1, &i))
            break;
        MP_FP(cache_refilled);
        wc_list(wc, c)[wc->n[c]] = i;
        MP_ST(wc->n[c], wc->n[c] + 1);
    }
}

/* ---- the common path ---------------------------------------------------- */

/* Ask for the lines of the next sets while this one runs: the entry two
 * pops ahead and the block one pop ahead (its entry was asked for by the
 * previous pop, so reading its offset does not wait). A stream's
 * consumer handed these entries back from another CPU: each line is a
 * transfer that otherwise stalls the set that takes it. Hints only: a
 * prefetch neither faults nor waits, and a stale list costs a useless one. */
static void prefetch_next(mempool *p, mp_wcache *wc, unsigned c,
                          uint32_t n)
{
    const uint32_t *l = wc_list(wc, c);
    if (n >= 2 && l[n - 2] < p->ntab)
        mp_prefetch_w(mp_entry_at(p, l[n - 2]));
    if (n >= 1 && l[n - 1] < p->ntab) {
        uint64_t off = MP_LD(mp_entry_at(p, l[n - 1])->off);
        if (off >= p->data_off && off < p->size)
            mp_prefetch_w(p->base + off);
    }
}

/* Take a cached entry of class @p c for a set. Our cache's lock. */
static int pop(mempool *p, unsigned c, uint64_t len, uint32_t type,
               uint16_t flags, uint32_t *idx)
{
    int s = p->slot;
    mp_wcache *wc = wc_of(&p->core, s);
    uint32_t i;
    mp_entry *e;
    uint64_t w;

    if (!wc->n[c] || wc->n[c] > mp_wc_cap(c) ||
        mp_over_limit(&p->core, s, len))
        return 1;                   /* the locked path spills or refuses */
    i = wc_list(wc, c)[wc->n[c] - 1];
    if (i >= p->ntab)
        goto damaged;
    e = mp_entry_at(p, i);
    w = atomic_load(&e->word);
    /* CACHED(us) with a block of class c: the set will write at e->off. */
    if (!cached_by(&p->core, e, w, s) || mp_class_of(MP_LD(e->len)) != c)
        goto damaged;
    MP_ST(wc->n[c], wc->n[c] - 1);
    prefetch_next(p, wc, c, wc->n[c]);
    MP_FP(cache_popped);
    MP_ST(e->len, len);
    MP_ST(e->type, type);
    MP_ST(e->setflags, flags);
    MP_ST(e->owner, (uint16_t)(s + 1));
    part_add(&wc->objects, 1);
    part_add(&wc->resident, len);
    mempool__entry_claim(e, w);     /* release: the fields before the word */
    *idx = i;
    return 0;
damaged:
    wc->dirty = 1;                  /* the locked path repairs the list */
    return 1;
}

int mempool__cache_alloc(mempool *p, uint64_t len, uint32_t type,
                         uint16_t flags, uint32_t *idx)
{
    int s = p->slot, rc = 1;
    unsigned c = mp_class_of(len);
    mp_wcache *wc = wc_of(&p->core, s);

    /* An unlocked look first: an empty class goes straight to a refill
     * (a stale count only sends us the longer way). */
    if (MP_LD(wc->n[c]) && (rc = own_lock(p)) == 0) {
        if (!wc->dirty && wc->n[c]) {
            rc = pop(p, c, len, type, flags, idx);
            wc_unlock(p, s);
            return rc;
        }
        wc_unlock(p, s);
    }
    if (rc == -EAGAIN)
        return 1;       /* a stopped giver holds it: around the cache */
    /* Refill: the allocator lock first, then ours again (lock order). */
    if (MP_UNLIKELY(atomic_load_explicit(&p->h->owed, memory_order_relaxed)))
        mempool__reclaim_owed(p);     /* no lock of ours held here */
    if ((rc = mempool__lock(p)))
        return rc;                    /* -EAGAIN: not the allocator's either */
    /* Held by a stopped giver, or damaged: the allocator's way (rc 1). */
    rc = 1;
    if (mempool__cache_hold_set(p, s) == 0) {
        /* Over our limit the set is refused or spilled anyway: no blocks
         * cached for it. */
        if (!wc->n[c] && !mp_over_limit(&p->core, s, len))
            refill(p, s, c);
        rc = pop(p, c, len, type, flags, idx);
        mempool__cache_release(p, s);
    }
    mempool__unlock(p);
    return rc;
}

/* DELETED @p w of worker @p s's (@p len bytes) -> s's cache, its charge
 * not yet taken off (the caller's uncharge(), once per batch). s's cache
 * lock, room in class @p c. false if the word moved (another reclaimer
 * has it). A death before the uncharge leaves s's cache dirty: its next
 * holder recounts the charges from the table (cache_repair). */
static bool recache(mempool *p, int s, unsigned c, uint32_t idx, uint64_t w)
{
    mp_wcache *wc = wc_of(&p->core, s);
    mp_entry *e = mp_entry_at(p, idx);

    if (!mempool__entry_recache(e, w, (unsigned)s + 1))
        return false;
    MP_FP(cache_recached);
    MP_ST(e->owner, 0);
    wc_list(wc, c)[wc->n[c]] = idx;
    MP_ST(wc->n[c], wc->n[c] + 1);
    return true;
}

/* @p n recached objects of @p bytes off s's cache's charge. s's lock. */
static void uncharge(mempool *p, int s, uint64_t n, uint64_t bytes)
{
    mp_wcache *wc = wc_of(&p->core, s);
    part_add(&wc->objects, (uint64_t)0 - n);
    part_add(&wc->resident, (uint64_t)0 - bytes);
}

/* The not yet done ones of @p b into owner o's cache, o's lock held and
 * clean; with @p flush_ok (the allocator lock held too) a full class
 * gives a batch back first, else its entries wait. o is re-read as the
 * owner under o's lock: a reaper or a closing o disowns o's objects
 * (owner 0) under that lock, so a disowned entry never lands in a cache
 * nobody flushes; the caller frees those. */
static void give_locked(mempool *p, int o, mp_give *b, bool flush_ok)
{
    mp_wcache *wc = wc_of(&p->core, o);
    uint64_t n = 0, bytes = 0;
    for (unsigned k = 0; k < b->n; k++) {
        mp_entry *e = mp_entry_at(p, b->idx[k]);
        uint64_t len = MP_LD(e->len);
        unsigned c;
        if (b->done >> k & 1)
            continue;
        /* Moved on meanwhile (another reclaimer freed it; it may hold a
         * large object now, whose class no list has): not ours to give. */
        if (atomic_load(&e->word) != b->w[k] || len < 1 ||
            len > MP_SMALL_MAX) {
            b->done |= UINT64_C(1) << k;
            continue;
        }
        if (MP_LD(e->owner) != o + 1)
            continue;
        c = mp_class_of(len);
        if (wc->n[c] >= mp_wc_cap(c)) {
            if (!flush_ok)
                continue;
            flush(p, o, c, mp_wc_batch(c));
        }
        /* Recached, or moved (another reclaimer has it): done either way. */
        if (recache(p, o, c, b->idx[k], b->w[k])) {
            n++;
            bytes += len;
        }
        b->done |= UINT64_C(1) << k;
        MP_FP(handback_given);
    }
    uncharge(p, o, n, bytes);
}

static bool all_done(const mp_give *b)
{
    return b->done == (b->n >= 64 ? ~UINT64_C(0) : (UINT64_C(1) << b->n) - 1);
}

/* The not yet done ones of @p b freed, all under the allocator lock the
 * caller holds (false from mempool__free: another reclaimer had it). A
 * stream's deleter whose owner's cache lock stayed busy freed its whole
 * stash (MP_STASH_MAX) one allocator-lock hold per entry before: ~3,000
 * takes per 2M objects 1->1. At most MP_STASH_MAX frees per hold. */
static void free_rest_locked(mempool *p, mp_give *b)
{
    for (unsigned k = 0; k < b->n; k++) {
        if (!(b->done >> k & 1))
            (void)mempool__free(p, b->idx[k], b->w[k]);
        b->done |= UINT64_C(1) << k;
    }
}

/*
 * Small objects of worker @p o, freed by us: into o's cache, as if o had
 * deleted them itself, so o's next sets take the entries back without the
 * allocator lock. A stream (one worker sets, another gets and deletes)
 * took the allocator lock twice per item otherwise: the deleter's free,
 * and a refill of the setter's cache every batch of sets (issue 12);
 * and o's lock once per item, shared with o's own sets, until the
 * deleters batched them (handback.c: one hold of o's lock per batch).
 * o's lock is only tried, never waited for (o may be stopped inside it;
 * its own steps are never kept waiting). With @p try_only a busy lock
 * ends it: the batch stays to the caller. Otherwise a busy lock, and
 * always a dirty cache or a full class, take the allocator lock too (o's
 * still tried), and a full class first gives a batch back, as o's own
 * delete does (a
 * consumer that runs ahead of its producer fills it). A death in here is
 * a death of o's cache lock holder: the next holder repairs it from the
 * table (cache_repair), as after o's own steps. b->done says which were
 * recached (or found moved, or freed); 1: the allocator lock's holder is
 * stopped, the rest are owed (entry.c: left DELETED for the next freer);
 * 0: without @p try_only, what o's cache did not take (its lock busy, or
 * disowned) was freed under the same hold, else it is the caller's.
 */
int mempool__cache_give(mempool *p, int o, mp_give *b, bool try_only)
{
    mp_wcache *wc = wc_of(&p->core, o);

    if (!(atomic_load(&p->h->active) >> o & 1))
        return 0;
    if (wc_lock(p, o, true) == 0) {
        if (!wc->dirty)
            give_locked(p, o, b, false);
        wc_unlock(p, o);
        if (all_done(b))
            return 0;
    } else if (try_only) {
        return 0;                   /* busy: the next batch tries again */
    }
    /* A stopped holder of the allocator lock: owed (entry.c). */
    if (mempool__lock_or_owe(p))
        return 1;
    if (wc_lock(p, o, true) == 0) {
        if (wc->dirty)
            cache_repair(p, o);
        give_locked(p, o, b, true);
        wc_unlock(p, o);
    }
    if (!try_only)
        free_rest_locked(p, b);
    mempool__unlock(p);
    return 0;
}

bool mempool__cache_give_try(mempool *p, int o, mp_give *b)
{
    mp_wcache *wc = wc_of(&p->core, o);
    if (!(atomic_load(&p->h->active) >> o & 1) || wc_lock(p, o, true))
        return false;
    if (!wc->dirty)
        give_locked(p, o, b, false);
    wc_unlock(p, o);
    return all_done(b);
}

bool mempool__cache_free(mempool *p, uint32_t idx, uint64_t w, bool forget)
{
    int s = p->slot;
    mp_entry *e = mp_entry_at(p, idx);
    uint64_t len = MP_LD(e->len);
    unsigned owner = MP_LD(e->owner);
    mp_wcache *wc;
    unsigned c;
    int rc = 0;

    /* A small object in memory, no file or writer. */
    if (s < 0 || MP_W_ST(w) != MP_ST_DELETED || MP_W_FL(w) || MP_W_WHO(w) ||
        MP_W_GEN(w) >= MP_GEN_MAX || len < 1 || len > MP_SMALL_MAX ||
        !MP_LD(e->off))
        return false;
    /* A refcounted one deleted while referenced: its holders' cells of
     * this generation must not outlive it (issue 15 item 8), as in
     * mempool__free. Forgotten before the recache below, while the entry
     * is still DELETED and its holders word intact: a death in between
     * leaves a DELETED entry with fewer cells, a state every unref makes.
     * Two reclaimers may both forget: each cell is CASed to 0 once. Not
     * after a refcount check found none (@p forget false: the unref that
     * freed it). So a refcounted stream (the consumer's unref frees) takes
     * the caches too, not the allocator lock per object (issue 12). */
    if (forget && (MP_LD(e->setflags) & MEMPOOL_PUT_REFCOUNTED))
        mempool__refs_forget(&p->core, idx, MP_W_GEN(w));
    if (owner != (unsigned)s + 1)         /* another worker's */
        return owner >= 1 && owner <= MP_WORKERS &&
               mempool__handback(p, (int)owner - 1, idx, w);
    c = mp_class_of(len);
    wc = wc_of(&p->core, s);
    if (MP_LD(wc->n[c]) < mp_wc_cap(c) &&
        (rc = own_lock(p)) == 0) {
        if (!wc->dirty && wc->n[c] < mp_wc_cap(c)) {
            if (recache(p, s, c, idx, w))
                uncharge(p, s, 1, len);
            wc_unlock(p, s);
            return true;
        }
        wc_unlock(p, s);
    }
    if (rc == -EAGAIN)
        return false;     /* a stopped giver holds it: the caller frees */
    /* Full (or to be repaired): flush a batch under both locks. A stopped
     * holder of the allocator lock: the free is owed (entry.c). */
    if (mempool__lock_or_owe(p))
        return true;
    if (mempool__cache_hold_set(p, s) != 0) {
        mempool__unlock(p);
        return false;     /* held past the bound, damaged: the caller's */
    }
    if (wc->n[c] >= mp_wc_cap(c))
        flush(p, s, c, mp_wc_batch(c));
    if (recache(p, s, c, idx, w))
        uncharge(p, s, 1, len);
    mempool__cache_release(p, s);
    mempool__unlock(p);
    return true;
}

/* A giver SIGKILLed in an owner's cache lock mid hand-back batch leaves
 * the batch's recached entries charged to the owner (give_locked takes
 * them off once per batch): the owner's figures stay wrong until the
 * lock's next holder repairs the cache, and an idle owner may take it
 * never (check_review9). So the reaper repairs every cache whose robust
 * lock the kernel marked as its holder's death, now - and every cache
 * marked dirty: a holder that took such a lock where it could not repair
 * (a try without the allocator lock: a stash collected by a stats read,
 * a hand-back batch) cleared the lock's mark and left only the flag
 * (check_review9 idle_owner_lock_taken). Only tried: a live holder keeps
 * its lock. */
void mempool__cache_heal(mempool *p)
{
    uint64_t dead = 0, act = atomic_load(&p->h->active);
    for (int s = 0; s < MP_WORKERS; s++)
        if ((act >> s & 1) &&
            ((__atomic_load_n(&wc_of(&p->core, s)->lock.__data.__lock,
                              __ATOMIC_RELAXED) & FUTEX_OWNER_DIED) ||
             MP_LD(wc_of(&p->core, s)->dirty)))
            dead |= UINT64_C(1) << s;
    if (!dead || mempool__lock(p))
        return;
    for (; dead; dead &= dead - 1) {
        int s = __builtin_ctzll(dead);
        if (wc_lock(p, s, true) == 0) {
            if (wc_of(&p->core, s)->dirty)
                cache_repair(p, s);
            wc_unlock(p, s);
        }
    }
    mempool__unlock(p);
}

/* ---- checks and readers ------------------------------------------------- */

/* Does worker @p s's cache really hold entry @p i of class @p c? */
static bool holds(mempool *p, int s, unsigned c, uint32_t i)
{
    mp_entry *e = i < p->ntab ? mp_entry_at(p, i) : NULL;
    uint64_t w = e ? atomic_load(&e->word) : 0;
    return e && MP_W_ST(w) == MP_ST_CACHED &&
           MP_W_WHO(w) == (unsigned)s + 1 &&
           mempool__cache_fits(&p->core, e, w, false) &&
           mp_class_of(e->len) == c;
}

/* One class list of worker @p s's cache: each entry held, none listed
 * twice (@p seen, over the whole table); adds the list to *@p listed. */
static int verify_list(mempool *p, int s, unsigned c, uint8_t *seen,
                       uint64_t *listed, char *why, size_t whylen)
{
    mp_wcache *wc = wc_of(&p->core, s);
    if (wc->n[c] > mp_wc_cap(c)) {
        snprintf(why, whylen, "worker %d's cache lists %u entries of class %u",
                 s + 1, wc->n[c], c);
        return MEMPOOL_ECORRUPT;
    }
    for (uint32_t k = 0; k < wc->n[c]; k++) {
        uint32_t i = wc_list(wc, c)[k];
        if (!holds(p, s, c, i) || seen[i]) {
            snprintf(why, whylen, "worker %d's cache lists entry %u "
                     "(class %u), which it does not hold", s + 1, i, c);
            return MEMPOOL_ECORRUPT;
        }
        seen[i] = 1;
        (*listed)++;
    }
    return 0;
}

int mempool__cache_verify(mempool *p, uint64_t ncached, char *why,
                          size_t whylen)
{
    uint8_t *seen = calloc(p->ntab ? p->ntab : 1, 1);
    uint64_t listed = 0;
    int rc = 0;

    if (!seen)
        return -ENOMEM;
    for (int s = 0; s < MP_WORKERS && !rc; s++)
        for (unsigned c = 0; c < MP_NCLASS && !rc; c++)
            rc = verify_list(p, s, c, seen, &listed, why, whylen);
    if (!rc && listed != ncached) {
        snprintf(why, whylen, "%llu entries are cached, the caches list %llu",
                 (unsigned long long)ncached, (unsigned long long)listed);
        rc = MEMPOOL_ECORRUPT;
    }
    free(seen);
    return rc;
}

void mempool__charged(mempool *p, int s, uint64_t *objects,
                      uint64_t *resident)
{
    mp_slot *sl = &p->slots[s];
    mp_wcache *wc = wc_of(&p->core, s);
    *objects = atomic_load_explicit(&sl->objects, memory_order_relaxed) +
               atomic_load_explicit(&wc->objects, memory_order_relaxed);
    *resident = atomic_load_explicit(&sl->resident_bytes,
                                     memory_order_relaxed) +
                atomic_load_explicit(&wc->resident, memory_order_relaxed);
}

void mempool__cached(mempool *p, uint64_t *entries, uint64_t *bytes)
{
    *entries = *bytes = 0;
    for (int s = 0; s < MP_WORKERS; s++) {
        for (unsigned c = 0; c < MP_NCLASS; c++) {
            uint32_t n = MP_LD(wc_of(&p->core, s)->n[c]);
            n = n < mp_wc_cap(c) ? n : mp_wc_cap(c);
            *entries += n;
            *bytes += n * mp_class_bytes(c);
        }
    }
}
