/* SPDX-License-Identifier: MIT */
/*
 * wcache.h - per-worker allocator caches (wcache.c), and what they ask of
 * the allocator (alloc.c). Lock order: the allocator lock, then a cache's
 * lock; a worker never waits for the allocator lock holding its own.
 */
#ifndef MEMPOOL_WCACHE_H
#define MEMPOOL_WCACHE_H

#include "internal.h"

/* Bytes over @p owner's limit if @p len more were charged (both parts of
 * its charge), else 0. Exact under the owner's cache lock and the
 * allocator lock. */
static inline uint64_t mp_over_limit(const mp_core *c, int owner,
                                     uint64_t len)
{
    const mp_slot *s = &c->slots[owner];
    uint64_t lim = atomic_load_explicit(&s->max_memsize, memory_order_relaxed);
    uint64_t res;
    if (!lim)
        return 0;
    res = atomic_load_explicit(&s->resident_bytes, memory_order_relaxed) +
          atomic_load_explicit(&c->wcs[owner].resident, memory_order_relaxed);
    return res + len > lim ? res + len - lim : 0;
}

/* A batch of one owner's small objects, deleted by us (handback.c), for
 * mempool__cache_give(): entry, its DELETED word; bit k of done once entry
 * k is in the owner's cache (or was found moved on). */
typedef struct mp_give {
    unsigned n;
    uint64_t done;
    uint32_t idx[MP_STASH_MAX];
    uint64_t w[MP_STASH_MAX];
} mp_give;

/* ---- the common path: the worker's own cache lock only ----------------- */
/* A set of @p len (1 .. MP_SMALL_MAX) bytes charged to us: 0 and *idx is
 * ALLOC(us) with type, flags, owner and charge set; 1: take the locked
 * path (cache unusable or held by a stopped giver, over our limit, or the
 * arena has no block); or the error of taking the allocator lock for a
 * refill (-EAGAIN: its holder is stopped). */
int  mempool__cache_alloc(mempool *p, uint64_t len, uint32_t type,
                          uint16_t flags, uint32_t *idx);
/* DELETED entry @p idx, word @p w, no pins: if it is a small object
 * without file, recache it (next generation) and return true; false: the
 * caller frees it under the allocator lock. With @p forget a refcounted
 * one's reference cells are forgotten first (false: a refcount check just
 * found none). */
bool mempool__cache_free(mempool *p, uint32_t idx, uint64_t w, bool forget);
/* The batch @p b of worker @p o's objects into o's cache (o's lock tried
 * only; the allocator lock too for a full class, a dirty cache, or with
 * @p try_only false a busy lock, and then what o's cache did not take is
 * freed under that hold). 1: the allocator lock's holder is stopped, the
 * rest are owed (left DELETED); 0: the caller frees what is not done. */
int  mempool__cache_give(mempool *p, int o, mp_give *b, bool try_only);
/* The same with o's lock tried once and nothing else: true if all of
 * @p b are done (recached, or found moved); false: the caller frees the
 * rest. */
bool mempool__cache_give_try(mempool *p, int o, mp_give *b);

/* ---- handback.c: the deleter's batches --------------------------------- */
/* DELETED small object @p idx (word @p w) of worker @p o, freed by us:
 * stashed for a batch, or given to o's cache now. false: the caller frees
 * it under the allocator lock. */
bool mempool__handback(mempool *p, int o, uint32_t idx, uint64_t w);

/* ---- under the allocator lock ------------------------------------------ */
/* s's lock, waited for the peer bound at most; repairs. 0, -EAGAIN (its
 * holder is stopped: a giver, wcache.c wc_lock), MEMPOOL_ECORRUPT. */
int  mempool__cache_hold(mempool *p, int s);
/* The same for a set charged to @p s (object.c admit): our own lock
 * (s is us) is waited for a short while once, then only tried while a
 * stopped peer holds it (wcache.c own_lock). */
int  mempool__cache_hold_set(mempool *p, int s);
void mempool__cache_release(mempool *p, int s);
/* Every attached worker's cache lock (mask held), within one bounded wait:
 * those whose holder is stopped are left out and listed in *busy. */
uint64_t mempool__cache_hold_all(mempool *p, bool repair, uint64_t *busy);
void mempool__cache_release_all(mempool *p, uint64_t held);
uint64_t mempool__cache_flush_all(mempool *p, int s);      /* s held */
void mempool__cache_zero(const mp_core *c, int s); /* s's cache charges := 0 */
void mempool__cache_reset(const mp_core *c, uint64_t busy); /* rebuild */
bool mempool__cache_fits(const mp_core *c, const mp_entry *e, uint64_t w,
                         bool room);
void mempool__cache_adopt(const mp_core *c, uint32_t idx, uint64_t w);
int  mempool__cache_verify(mempool *p, uint64_t ncached, char *why,
                           size_t whylen);
/* Flush every cache we can lock (@p held: one we hold already, or -1);
 * entries returned to the free lists. */
uint64_t mempool__cache_drain(mempool *p, int held);
/* After a reap: repair each cache whose lock's holder died (only
 * tried: a live holder keeps it). Takes the allocator lock if any. */
void mempool__cache_heal(mempool *p);
/* mempool_trim(): flush our own cache and those of dead (unreaped)
 * workers; live workers keep theirs. Entries returned. */
uint64_t mempool__cache_trim(mempool *p);

/* The size class of 1 <= @p len <= MP_SMALL_MAX (64 << class), and its
 * block size. Inline: the cached set and delete test them every time. */
static inline unsigned mp_class_of(uint64_t len)
{
    return len <= 64 ? 0 : 58u - (unsigned)__builtin_clzll(len - 1);
}

static inline uint64_t mp_class_bytes(unsigned c)
{
    return UINT64_C(64) << c;
}

/* ---- alloc.c, for the caches (locked) ---------------------------------- */
int  mempool__cache_take_locked(mempool *p, unsigned c, unsigned who,
                                uint32_t *idx);
void mempool__uncache_locked(mempool *p, uint32_t idx, uint64_t w);
void mempool__recharge_locked(mempool *p, int s);
int  mempool__mutex_wait(pthread_mutex_t *m);
int  mempool__mutex_kind(void);                /* arena.c */

#endif /* MEMPOOL_WCACHE_H */
