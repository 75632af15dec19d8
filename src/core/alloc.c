/* SPDX-License-Identifier: MIT */
/*
 * alloc.c - the arena allocator: table entries and data blocks.
 *
 * Data pages are 4 KiB. Objects up to 2 KiB live in slab pages of one size
 * class (64, 128, ..., 2048 bytes; a slab's used blocks are one 64-bit
 * bitmap in its page descriptor); larger objects take a run of whole pages,
 * so they are page-aligned. Free pages are 1-bits in a page bitmap; runs are
 * found first-fit, starting at a hint below which no page is free, so warm
 * (already faulted-in) low pages are reused first. Every block is 64-byte
 * aligned.
 *
 * Crash safety without a log. All allocator state - page descriptors, the
 * page bitmap, the slab partial lists, the entry free list and the byte and
 * object counters - sits under one robust, process-shared mutex and is
 * *derived*: it can be recomputed from the object table alone, because an
 * entry that owns a block says so (off != 0, len) before the lock is
 * released. If a process dies holding the lock, the next locker gets
 * EOWNERDEAD, rebuilds everything from the table (rebuild()), and
 * only then marks the mutex consistent. mempool_check() recomputes the same
 * state into scratch memory and compares, which is how tests prove that no
 * byte leaked. The lock is held for bookkeeping only, never across a copy.
 * Two kinds of system calls do run under it, both off the common path:
 * backing (backing.c) in run_back() when a slab page is taken that is
 * still a hole - a new arena's, or one mempool_trim() punched - (failing
 * there leaves the allocator unchanged), and trim's own
 * fallocate(PUNCH_HOLE), which must not race with an allocation of the
 * pages it punches. A large block's run is handed out with its holes still
 * flagged (punched), and its owner backs them after the lock is released
 * (blockback.c), so no other process waits for that zeroing.
 *
 * Who moves what. Only this file writes the page descriptors (but for the
 * punched flags of a block's pages, which its owner clears), the bitmap,
 * the partial lists, the entry free list (entry_free, next_free), rover,
 * entries_used, used_bytes and the charges (slots' objects, resident_bytes,
 * disk_bytes and the pool's own), always under the lock; of an entry it
 * writes off, len and owner (object.c's admit() sets owner, type and
 * setflags under the same lock before the charge; the word is entry.c's,
 * called from here). Each function below says what it moves.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "entry.h"
#include "failpoint.h"
#include "internal.h"
#include "rlock.h"
#include "wcache.h"

static const uint32_t class_size[MP_NCLASS] = { 64, 128, 256, 512, 1024, 2048 };

/* The size class of 1 <= @p len <= MP_SMALL_MAX (wcache.h). */
static unsigned class_of(uint64_t len)
{
    return mp_class_of(len);
}

static uint64_t slab_full(unsigned c)
{
    unsigned n = MP_PAGE / class_size[c];
    return n == 64 ? ~UINT64_C(0) : (UINT64_C(1) << n) - 1;
}

static uint64_t pages_for(uint64_t len)
{
    return (len + MP_PAGE - 1) / MP_PAGE;
}

/* Bytes a block for @p len takes (size class or whole pages). Pure. */
uint64_t mempool__block_bytes(uint64_t len)
{
    if (len == 0)
        return 0;
    if (len <= MP_SMALL_MAX)
        return class_size[class_of(len)];
    return pages_for(len) * MP_PAGE;
}

/* ---- page bitmap (1 = free) -------------------------------------------- */

static bool bit_get(mempool *p, uint64_t i)
{
    return atomic_load_explicit(&p->bitmap[i / 64], memory_order_relaxed) >>
           (i % 64) & 1;
}

static void bits_set(mempool *p, uint64_t i, uint64_t n, bool free)
{
    while (n) {
        uint64_t b = i % 64, k = n < 64 - b ? n : 64 - b;
        uint64_t m = (k == 64 ? ~UINT64_C(0) : ((UINT64_C(1) << k) - 1)) << b;
        if (free)
            atomic_fetch_or_explicit(&p->bitmap[i / 64], m,
                                     memory_order_relaxed);
        else
            atomic_fetch_and_explicit(&p->bitmap[i / 64], ~m,
                                      memory_order_relaxed);
        i += k;
        n -= k;
    }
}

/* First index in [i, end) whose bit equals @p want, or end. */
static uint64_t bit_find(mempool *p, uint64_t i, uint64_t end, bool want)
{
    while (i < end) {
        uint64_t w = atomic_load_explicit(&p->bitmap[i / 64],
                                          memory_order_relaxed);
        if (!want)
            w = ~w;
        w &= ~UINT64_C(0) << (i % 64);
        if (w) {
            uint64_t j = i / 64 * 64 + (uint64_t)__builtin_ctzll(w);
            return j < end ? j : end;
        }
        i = (i / 64 + 1) * 64;
    }
    return end;
}

/* A run of @p n free pages in [from, end), or end. */
static uint64_t run_find(mempool *p, uint64_t from, uint64_t end, uint64_t n)
{
    uint64_t i = from;
    while (i + n <= end) {
        uint64_t j;
        i = bit_find(p, i, end, true);
        if (i + n > end)
            break;
        j = bit_find(p, i, i + n, false);
        if (j == i + n)
            return i;
        i = j;
    }
    return end;
}

/* Set the punched flags of pages [a, z) to @p v. Relaxed atomics: the
 * owner of a block clears its pages' flags outside the lock
 * (blockback.c). */
static void punched_set(mempool *p, uint64_t a, uint64_t z, uint8_t v)
{
    for (uint64_t k = a; k < z; k++)
        MP_ST(p->pages[k].punched, v);
}

/* Are all pages [a, z) punched? */
static bool punched_all(mempool *p, uint64_t a, uint64_t z)
{
    for (uint64_t k = a; k < z; k++)
        if (!MP_LD(p->pages[k].punched))
            return false;
    return true;
}

/* Back the span of @p nc whole-hole chunks from data page @p f to @p z
 * with huge pages (one MADV_COLLAPSE: the kernel drains every CPU's page
 * lists once per call, which costs ms on a loaded machine). On failure the
 * flags stay: the 4 KiB pass backs what the run needs. */
static void span_back(mempool *p, uint64_t f, uint64_t z, uint64_t nc)
{
    int rc = mempool__back_huge(&p->core, f, nc);
    if (rc == 0)
        punched_set(p, f, z, 0);
    else if (rc == -EINVAL)
        MP_ST(p->huge, false);                /* this kernel cannot */
}

/* Give the punched pages (holes: a new arena's, trimmed, or unknown after
 * a rebuild) of run [pg, pg + n) memory before it is handed out
 * (backing.c): the chunks of the run that are all holes get one huge page
 * each when this handle may, the rest 4 KiB pages, one fallocate() per
 * stretch. Fails cleanly on a full tmpfs (-ENOSPC; flags of pages already
 * backed are cleared, the run is not taken). Moves: the pages' punched
 * flags only. */
/* run_back's first pass: the run's whole, still empty 2 MiB chunks, as
 * huge pages, one collapse per stretch of adjacent chunks. */
static void huge_back(mempool *p, uint64_t pg, uint64_t end)
{
    uint64_t a, z, f = 0, fz = 0, nc = 0;
    for (uint64_t k = pg; k < end; k = z) {
        bool ok = mempool__chunk_of(&p->core, k, &a, &z) &&
                  punched_all(p, a, z);
        if (ok && nc && a == fz) {
            fz = z;                             /* extends the span */
            nc++;
            continue;
        }
        if (nc)
            span_back(p, f, fz, nc);
        f = a;
        fz = z;
        nc = ok;
    }
    if (nc)
        span_back(p, f, fz, nc);
}

static int run_back(mempool *p, uint64_t pg, uint64_t n)
{
    uint64_t end = pg + n;
    if (mempool__all_backed(&p->core, pg, end))
        return 0;
    if (MP_FP(back_chunk) == 0 && MP_LD(p->huge))
        huge_back(p, pg, end);
    return mempool__back_stretches(&p->core, pg, end);
}

/* A run of @p n free pages, taken. A slab page (@p back) is backed here,
 * under the lock: many owners will share it. A block's run keeps the
 * punched flags of its holes, and its one owner backs them after the lock
 * is released (mempool__block_back()). */
static int run_alloc(mempool *p, uint64_t n, bool back, uint64_t *pg)
{
    mp_header *h = p->h;
    uint64_t start = h->rover < p->npages ? h->rover : 0;
    uint64_t i = run_find(p, start, p->npages, n);
    if (i == p->npages)
        i = run_find(p, 0, p->npages, n);
    if (i == p->npages)
        return -ENOMEM;
    if (back && run_back(p, i, n))
        return -ENOSPC;
    bits_set(p, i, n, false);
    p->pages[i].kind = MP_PG_HEAD;
    p->pages[i].run = (uint32_t)n;
    for (uint64_t k = i + 1; k < i + n; k++)
        p->pages[k].kind = MP_PG_TAIL;
    if (i == h->rover)
        h->rover = i + n;     /* the lowest free page is now past this run */
    *pg = i;
    return 0;
}

static void run_free(mempool *p, uint64_t pg, uint64_t n)
{
    if (pg < p->h->rover)
        p->h->rover = pg;
    for (uint64_t k = pg; k < pg + n; k++) {
        p->pages[k].kind = MP_PG_FREE;
        p->pages[k].run = 0;
    }
    bits_set(p, pg, n, true);
}

/* ---- slabs ------------------------------------------------------------- */

/* Links read back from shared memory are bounds-checked: a corrupt list is
 * cut short rather than followed out of the descriptor array. */
static bool link_ok(mempool *p, uint32_t link)
{
    return link && link <= p->npages;
}

static void partial_push(mempool *p, unsigned c, uint32_t pg)
{
    mp_page *d = &p->pages[pg];
    uint32_t head = p->h->partial[c];
    d->prev = 0;
    d->next = link_ok(p, head) ? head : 0;
    if (link_ok(p, head))
        p->pages[head - 1].prev = pg + 1;
    p->h->partial[c] = pg + 1;
}

static void partial_remove(mempool *p, unsigned c, uint32_t pg)
{
    mp_page *d = &p->pages[pg];
    if (link_ok(p, d->prev))
        p->pages[d->prev - 1].next = d->next;
    else
        p->h->partial[c] = d->next;
    if (link_ok(p, d->next))
        p->pages[d->next - 1].prev = d->prev;
    d->prev = d->next = 0;
}

static int slab_alloc(mempool *p, unsigned c, uint64_t *off)
{
    uint32_t head = p->h->partial[c];
    uint64_t pg, bit;
    mp_page *d;

    if (!head) {
        int rc = run_alloc(p, 1, true, &pg);
        if (rc)
            return rc;
        d = &p->pages[pg];
        d->kind = MP_PG_SLAB;
        d->cls = (uint8_t)c;
        d->used = 0;
        d->run = 0;
        partial_push(p, c, (uint32_t)pg);
    } else {
        if (!link_ok(p, head))
            return MEMPOOL_ECORRUPT;
        pg = head - 1;
        d = &p->pages[pg];
        if (d->kind != MP_PG_SLAB || d->cls != c || d->used == slab_full(c))
            return MEMPOOL_ECORRUPT;
    }
    bit = (uint64_t)__builtin_ctzll(~d->used & slab_full(c));
    d->used |= UINT64_C(1) << bit;
    if (d->used == slab_full(c))
        partial_remove(p, c, (uint32_t)pg);
    *off = p->data_off + pg * MP_PAGE + bit * class_size[c];
    return 0;
}

static void slab_free(mempool *p, uint64_t pg, uint64_t bit)
{
    mp_page *d = &p->pages[pg];
    unsigned c = d->cls;
    bool was_full = d->used == slab_full(c);
    d->used &= ~(UINT64_C(1) << bit);
    if (was_full)
        partial_push(p, c, (uint32_t)pg);
    if (d->used == 0) {
        partial_remove(p, c, (uint32_t)pg);
        d->kind = MP_PG_FREE;
        bits_set(p, pg, 1, true);
        if (pg < p->h->rover)
            p->h->rover = pg;
    }
}

/* ---- blocks ------------------------------------------------------------ */

static int block_alloc(mempool *p, uint64_t len, uint64_t *off)
{
    uint64_t pg;
    int rc;
    if (len == 0) {
        *off = 0;
        return 0;
    }
    if (len <= MP_SMALL_MAX)
        return slab_alloc(p, class_of(len), off);
    if (pages_for(len) > p->npages)
        return -E2BIG;
    if ((rc = run_alloc(p, pages_for(len), false, &pg)))
        return rc;
    *off = p->data_off + pg * MP_PAGE;
    return 0;
}

/* Free a block named by an entry; a block that does not match the page
 * descriptors (corrupt entry) is left alone rather than trusted. */
static void block_free(mempool *p, uint64_t off, uint64_t len)
{
    uint64_t rel = off - p->data_off, pg = rel / MP_PAGE;
    mp_page *d;
    if (off < p->data_off || pg >= p->npages || len > p->npages * MP_PAGE)
        return;
    d = &p->pages[pg];
    if (len <= MP_SMALL_MAX) {
        unsigned c = class_of(len);
        uint64_t bit = rel % MP_PAGE / class_size[c];
        if (d->kind == MP_PG_SLAB && d->cls == c && (d->used >> bit & 1))
            slab_free(p, pg, bit);
    } else if (d->kind == MP_PG_HEAD && d->run == pages_for(len) &&
               pg + pages_for(len) <= p->npages) {
        run_free(p, pg, pages_for(len));
    }
}

/* ---- entries ----------------------------------------------------------- */

/* Where an entry's charges go: its owner's slot, or the pool's own
 * record for owner 0 (objects whose worker is gone). */
typedef struct charges {
    _Atomic uint64_t *objects, *resident, *disk;
} charges;

static bool charges_of(mempool *p, uint16_t owner, charges *c)
{
    if (owner >= 1 && owner <= MP_WORKERS) {
        mp_slot *s = &p->slots[owner - 1];
        *c = (charges){ &s->objects, &s->resident_bytes, &s->disk_bytes };
    } else if (owner == 0) {
        mp_header *h = p->h;
        *c = (charges){ &h->pool_objects, &h->pool_resident, &h->pool_disk };
    } else {
        return false;                    /* corrupt owner: charge nobody */
    }
    return true;
}

/* The counters above are written only under the lock, so an add is a
 * relaxed load and store, not a locked RMW (issue 11: ~10 ns each);
 * lock-free readers (stats) still see whole values. A holder that dies
 * between the two leaves nothing half-done: rebuild() recounts them all. */
static void locked_add(_Atomic uint64_t *c, uint64_t d)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + d,
                          memory_order_relaxed);
}

static void locked_sub(_Atomic uint64_t *c, uint64_t d)
{
    locked_add(c, (uint64_t)0 - d);
}

/* Charge (+1) or uncharge (-1) entry @p e, in state word @p w, to its owner:
 * one object; its bytes as resident unless F_NOMEM; as disk if F_ONDISK.
 * Relaxed loads: a cache lock's holder (recache) stores the owner too, of
 * an earlier generation; what orders the two is the entry's round trip
 * through other processes (a set, a send, a receive, the delete), which
 * ThreadSanitizer cannot see - it reported the plain read here against
 * that store (check_handoff_stream, 1 run in ~100). */
static void account(mempool *p, const mp_entry *e, uint64_t w, int sign)
{
    uint64_t len = MP_LD(e->len);
    charges c;
    if (!charges_of(p, MP_LD(e->owner), &c))
        return;
    locked_add(c.objects, (uint64_t)(int64_t)sign);
    if (!(MP_W_FL(w) & MP_F_NOMEM))
        locked_add(c.resident, (uint64_t)(int64_t)sign * len);
    if (MP_W_FL(w) & MP_F_ONDISK)
        locked_add(c.disk, (uint64_t)(int64_t)sign * len);
}

/* Charged to its owner: an object (reserved, published, deleted), not a
 * free, dying or cached entry. */
static bool charged(uint64_t w)
{
    unsigned st = MP_W_ST(w);
    return st != MP_ST_FREE && st != MP_ST_RETIRED && st != MP_ST_FREEING &&
           st != MP_ST_CACHED;
}

static bool has_block(uint64_t w)
{
    unsigned st = MP_W_ST(w);
    return st != MP_ST_FREE && st != MP_ST_RETIRED && st != MP_ST_FREEING &&
           !(MP_W_FL(w) & MP_F_NOMEM);
}

/* Pop a free entry and give it a block; the entry is ALLOC(us). Locked.
 * Moves: entry_free, the entry's next_free, len, off and word (FREE ->
 * ALLOC), hwm, entries_used, used_bytes, the pages/bitmap/partial lists
 * of the block, rover. Charges nobody (mempool__charge() does). */
static void entry_push(mempool *p, uint32_t idx)
{
    mp_entry *e = mp_entry_at(p, idx);
    e->next_free = p->h->entry_free;
    p->h->entry_free = idx + 1;
}

/* The first free entry (not yet popped) and its FREE word. Locked. */
static int entry_peek(mempool *p, uint32_t *i, uint64_t *w)
{
    *i = p->h->entry_free;
    if (!*i)
        return -ENOSPC;
    if (*i > p->ntab)
        return MEMPOOL_ECORRUPT;
    *w = atomic_load(&mp_entry_at(p, *i - 1)->word);
    return MP_W_ST(*w) == MP_ST_FREE ? 0 : MEMPOOL_ECORRUPT;
}

/* Pop free entry @p i (entry_peek's) and give it block @p off for @p len:
 * the counters and the high-water mark follow. Locked. */
static void entry_pop(mempool *p, uint32_t i, uint64_t len, uint64_t off)
{
    mp_header *h = p->h;
    mp_entry *e = mp_entry_at(p, i - 1);
    h->entry_free = e->next_free;
    e->next_free = 0;
    if (atomic_load(&h->hwm) < i)
        atomic_store(&h->hwm, i);
    MP_ST(e->len, len);      /* len before off: off != 0 claims the block */
    MP_ST(e->off, off);
    locked_add(&h->entries_used, 1);
    locked_add(&h->used_bytes, mempool__block_bytes(len));
}

int mempool__alloc(mempool *p, uint64_t len, uint32_t *idx)
{
    uint32_t i;
    uint64_t off, w;
    int rc;

    if ((rc = entry_peek(p, &i, &w)) || (rc = block_alloc(p, len, &off)))
        return rc;
    /* The word first: a rebuild must not take the entry for a FREE one
     * that owns a block. */
    mempool__entry_take(mp_entry_at(p, i - 1), w, (unsigned)p->slot + 1);
    entry_pop(p, i, len, off);
    *idx = i - 1;
    MP_FP(alloc_locked);
    return 0;
}

/* ---- worker caches: what wcache.c asks of the allocator ---------------- */

/* A free entry with a block of class @p c, CACHED(@p who): a refill.
 * Locked (and who's cache lock). Moves what mempool__alloc() moves. */
int mempool__cache_take_locked(mempool *p, unsigned c, unsigned who,
                               uint32_t *idx)
{
    uint32_t i;
    uint64_t off, w;
    int rc;

    if ((rc = entry_peek(p, &i, &w)) || (rc = slab_alloc(p, c, &off)))
        return rc;
    mempool__entry_cache(mp_entry_at(p, i - 1), w, who);
    entry_pop(p, i, class_size[c], off);
    MP_ST(mp_entry_at(p, i - 1)->owner, 0);
    *idx = i - 1;
    return 0;
}

/* CACHED entry @p idx (word @p w) back to the free list, its block freed:
 * a flush. Locked (and the cache's lock). */
void mempool__uncache_locked(mempool *p, uint32_t idx, uint64_t w)
{
    mp_entry *e = mp_entry_at(p, idx);
    mempool__entry_uncache(e, w);   /* first: a FREE word owns no block */
    if (e->off)
        block_free(p, e->off, e->len);
    locked_sub(&p->h->used_bytes, mempool__block_bytes(e->len));
    locked_sub(&p->h->entries_used, 1);
    MP_ST(e->off, 0);
    MP_ST(e->len, 0);
    MP_ST(e->owner, 0);
    entry_push(p, idx);
}

/* Slot @p s's allocator-lock charges (objects, resident bytes) recounted
 * from the table; its cache's part is zeroed by the caller. Locked (and
 * s's cache lock, so no charge of s moves meanwhile). */
void mempool__recharge_locked(mempool *p, int s)
{
    uint64_t objs = 0, res = 0;
    for (uint32_t i = 0; i < p->ntab; i++) {
        mp_entry *e = mp_entry_at(p, i);
        uint64_t w = atomic_load(&e->word);
        /* Relaxed loads: a giver recaching an entry of another owner
         * under that owner's cache lock zeroes its owner meanwhile
         * (wcache.c recache) - an entry not of s either way, but a plain
         * read of it failed the TSan lane (check_handback many: ~1 in
         * 200 runs), as account()'s did (330e909). */
        if (MP_LD(e->owner) == s + 1 && charged(w)) {
            objs++;
            res += (MP_W_FL(w) & MP_F_NOMEM) ? 0 : MP_LD(e->len);
        }
    }
    atomic_store(&p->slots[s].objects, objs);
    atomic_store(&p->slots[s].resident_bytes, res);
}

/* Bytes over @p owner's limit if @p len more were charged. Exact under
 * the owner's cache lock (its cache's charges cannot move) and the
 * allocator lock (nor can the rest grow). */
uint64_t mempool__over_limit(mempool *p, int owner, uint64_t len)
{
    return mp_over_limit(&p->core, owner, len);
}

/* Free entry @p idx, if its word is still @p w, and its block; uncharge
 * its owner. Locked. false if the word moved.
 * Moves: the word (-> FREEING -> FREE gen + 1, or RETIRED), off, len,
 * owner, entry_free, used_bytes, entries_used, the owner's charges, the
 * block's pages/bitmap/partial lists, rover. */
bool mempool__free(mempool *p, uint32_t idx, uint64_t w)
{
    mp_entry *e = mp_entry_at(p, idx);
    uint64_t nw;

    if (!mempool__entry_freeing(e, w, (unsigned)p->slot + 1))
        return false;               /* moved: freed or recached by another */
    MP_FP(free_locked);
    /* References of a deleted object stay in their holders' cells until
     * they unref; none may outlive the generation, or a worker that never
     * unrefs fills its table (issue 15 item 8). */
    if (MP_LD(e->setflags) & MEMPOOL_PUT_REFCOUNTED)
        mempool__refs_forget(&p->core, idx, MP_W_GEN(w));
    if (has_block(w)) {
        if (e->off)
            block_free(p, e->off, e->len);
        locked_sub(&p->h->used_bytes, mempool__block_bytes(e->len));
    }
    locked_sub(&p->h->entries_used, 1);
    account(p, e, w, -1);
    MP_ST(e->off, 0);
    MP_ST(e->len, 0);
    MP_ST(e->owner, 0);
    nw = mempool__entry_recycle(e, w);
    if (MP_W_ST(w) == MP_ST_ALLOC)
        mempool__entry_wake(p, idx);  /* get_wait: reservation is gone */
    if (MP_W_ST(nw) == MP_ST_FREE)
        entry_push(p, idx);
    return true;
}

/* Charge entry @p idx to its owner (objects, resident, disk). Locked.
 * Moves: the owner's (or the pool's) charges only. */
void mempool__charge(mempool *p, uint32_t idx)
{
    mp_entry *e = mp_entry_at(p, idx);
    account(p, e, atomic_load(&e->word), +1);
}

/* Entry @p idx went from word @p w to @p nw (mempool__entry_end_write, or
 * mempool_repair() dropping a damaged clean copy): charge or uncharge its
 * owner's disk bytes as it gained or lost its file. Locked.
 * Moves: the owner's (or the pool's) disk_bytes only. */
void mempool__charge_ondisk(mempool *p, uint32_t idx, uint64_t w, uint64_t nw)
{
    mp_entry *e = mp_entry_at(p, idx);
    bool had = MP_W_FL(w) & MP_F_ONDISK, has = MP_W_FL(nw) & MP_F_ONDISK;
    charges c;
    if (had != has && charges_of(p, e->owner, &c)) {
        if (has)
            locked_add(c.disk, e->len);
        else
            locked_sub(c.disk, e->len);
    }
}

/* Free the memory of EVICTING entry @p idx (word @p w): it becomes SPILLED.
 * The state is stored first, so a rebuild after a crash here sees SPILLED
 * and ignores the block. Locked. Moves: the word (EVICTING -> SPILLED),
 * off, used_bytes, the owner's resident charge, the block's pages. */
void mempool__evict_locked(mempool *p, uint32_t idx, uint64_t w)
{
    mp_entry *e = mp_entry_at(p, idx);
    charges c;
    MP_FP(evict_locked);
    mempool__entry_end_evict(e, w);
    if (e->off)
        block_free(p, e->off, e->len);
    locked_sub(&p->h->used_bytes, mempool__block_bytes(e->len));
    if (charges_of(p, e->owner, &c))
        locked_sub(c.resident, e->len);
    MP_ST(e->off, 0);
}

/* Does slot @p d hold nothing to give up: no charge, no cached entry,
 * its cache's lock free (a holder that died there may have left an entry
 * half moved: the locked path repairs it)? Racy reads: d is dead, or ours
 * while we claim or leave it. */
static bool holds_nothing(mempool *p, int d)
{
    mp_slot *sl = &p->slots[d];
    mp_wcache *wc = &p->wcs[d];
    uint32_t cached = 0;
    for (unsigned c = 0; c < MP_NCLASS; c++)
        cached += MP_LD(wc->n[c]);
    return !cached && !MP_LD(wc->dirty) &&
           !__atomic_load_n(&wc->lock.__data.__lock, __ATOMIC_ACQUIRE) &&
           atomic_load(&sl->objects) + atomic_load(&wc->objects) == 0 &&
           atomic_load(&sl->resident_bytes) + atomic_load(&wc->resident) ==
               0 &&
           atomic_load(&sl->disk_bytes) == 0;
}

bool mempool__slot_holds(mempool *p, int d)
{
    return !holds_nothing(p, d);
}

/* Slot @p d is being given up (its worker died or closed): the objects
 * charged to it become the pool's (owner 0), counted against no worker's
 * limit, so whoever claims the slot next starts with nothing charged.
 * Takes the lock. Moves: owner of d's entries, d's and the pool's
 * charges. True once d holds nothing. */
bool mempool__disown(mempool *p, int d)
{
    uint64_t hwm = atomic_load(&p->h->hwm);
    /* Most claims take a clean slot: no allocator lock for them, so
     * opening a pool never waits for a stopped holder of it. A slot that
     * does hold something keeps it if the lock's holder is stopped past
     * the bound: owed, so the lock's next holder gives it up
     * (mempool__settle_left), or its next claimer or leaver. */
    if (holds_nothing(p, d))
        return true;
    if (mempool__lock_or_owe(p))
        return false;
    /* Its cache first (a worker that closes flushes; a dead one's cache is
     * returned), under its cache lock, which also stops its charges. */
    if (mempool__cache_hold(p, d)) {
        mempool__unlock(p);
        mempool__owe(p);
        return false;
    }
    mempool__cache_flush_all(p, d);
    for (uint32_t i = 0; i < hwm && i < p->ntab; i++) {
        mp_entry *e = mp_entry_at(p, i);
        uint64_t w = atomic_load(&e->word);
        if (MP_LD(e->owner) == d + 1 && charged(w)) {  /* as above */
            account(p, e, w, -1);
            MP_ST(e->owner, 0);
            account(p, e, w, +1);        /* now the pool's */
        }
    }
    /* Nothing is charged to d now; its two parts may still be +x and -x
     * (sets counted by its cache, frees by the lock): both to 0. */
    atomic_store(&p->slots[d].objects, 0);
    atomic_store(&p->slots[d].resident_bytes, 0);
    mempool__cache_zero(&p->core, d);
    mempool__cache_release(p, d);
    mempool__unlock(p);
    return true;
}

/* ---- derived state: placement shared by rebuild and verify ------------- */

/* Record the block (off, len) in @p pg; -1 if it is invalid or overlaps. */
static int place(mempool *p, mp_page *pg, uint64_t off, uint64_t len)
{
    uint64_t rel, page;
    if (off < p->data_off || off % MP_ALIGN || len > p->npages * MP_PAGE)
        return -1;
    rel = off - p->data_off;
    page = rel / MP_PAGE;
    if (page >= p->npages)
        return -1;
    if (len <= MP_SMALL_MAX) {
        unsigned c = class_of(len);
        uint64_t bit, in = rel % MP_PAGE;
        if (in % class_size[c])
            return -1;
        bit = UINT64_C(1) << (in / class_size[c]);
        if (pg[page].kind == MP_PG_FREE) {
            pg[page].kind = MP_PG_SLAB;
            pg[page].cls = (uint8_t)c;
        } else if (pg[page].kind != MP_PG_SLAB || pg[page].cls != c ||
                   (pg[page].used & bit)) {
            return -1;
        }
        pg[page].used |= bit;
        return 0;
    }
    if (rel % MP_PAGE || page + pages_for(len) > p->npages)
        return -1;
    for (uint64_t k = page; k < page + pages_for(len); k++)
        if (pg[k].kind != MP_PG_FREE)
            return -1;
    pg[page].kind = MP_PG_HEAD;
    pg[page].run = (uint32_t)pages_for(len);
    for (uint64_t k = page + 1; k < page + pages_for(len); k++)
        pg[k].kind = MP_PG_TAIL;
    return 0;
}

/* Is CACHED word @p w in one of the caches in @p busy (not held)? */
static bool cache_busy(uint64_t busy, uint64_t w)
{
    unsigned who = MP_W_WHO(w);
    return who >= 1 && who <= MP_WORKERS && (busy >> (who - 1) & 1);
}

/* Rebuild: entry @p i back into the derived state (its block placed, the
 * free list, its cache or its owner's charges, *@p used and *@p nused);
 * caches in @p busy are not held. */
static void rebuild_entry(mempool *p, uint32_t i, uint64_t busy,
                          uint64_t *used, uint64_t *nused)
{
    mp_entry *e = mp_entry_at(p, i);
    uint64_t w = atomic_load(&e->word);
    unsigned st = MP_W_ST(w);
    bool mine = st == MP_ST_CACHED && !cache_busy(busy, w);
    if (!has_block(w))
        MP_ST(e->off, 0);               /* e.g. evicted, block not yet freed */
    if (st == MP_ST_FREEING ||
        (st == MP_ST_CACHED && !mempool__cache_fits(&p->core, e, w, mine)) ||
        (e->off && place(p, p->pages, e->off, e->len))) {
        MP_ST(e->off, 0);               /* dying holder's, or corrupt */
        MP_ST(e->len, 0);
        MP_ST(e->owner, 0);
        w = mempool__entry_recycle(e, w);
        st = MP_W_ST(w);
        mine = false;
    }
    if (st == MP_ST_FREE) {
        entry_push(p, i);
    } else if (st != MP_ST_RETIRED) {
        (*nused)++;
        if (has_block(w))
            *used += mempool__block_bytes(e->len);
        if (mine)
            mempool__cache_adopt(&p->core, i, w);
        else if (st != MP_ST_CACHED)    /* a busy cache's: nobody's */
            account(p, e, w, +1);
    }
}

/* After a lock holder died: recompute all allocator state from the table.
 * Moves everything the allocator owns (see the top of this file), and
 * frees entries caught FREEING or naming an invalid block. */
static void rebuild(mempool *p)
{
    mp_header *h = p->h;
    uint64_t used = 0, nused = 0, held, busy;

    for (uint64_t k = 0; k < p->npages; k++) {
        /* A free page: unknown (a trim may have died mid-punch), back it
         * before use. An allocated one keeps its flag: a block's owner
         * backs its pages outside the lock (blockback.c). */
        uint8_t holes = p->pages[k].kind == MP_PG_FREE ||
                        MP_LD(p->pages[k].punched);
        memset(&p->pages[k], 0, sizeof(mp_page));
        MP_ST(p->pages[k].punched, holes);
    }
    memset(h->partial, 0, sizeof(h->partial));
    h->entry_free = 0;
    /* Every worker's cache too: a refill or flush dies holding both locks;
     * the caches' contents are the table's CACHED words, re-adopted below.
     * A cache whose holder is stopped mid-pop or mid-recache (busy) keeps
     * its list, and its CACHED entries keep their blocks; it is marked
     * dirty, so its worker's next locked step re-reads it and recounts its
     * charges (which until then count its cache's part twice). */
    held = mempool__cache_hold_all(p, false, &busy);
    mempool__cache_reset(&p->core, busy);
    for (int s = 0; s < MP_WORKERS; s++) {
        atomic_store(&p->slots[s].resident_bytes, 0);
        atomic_store(&p->slots[s].objects, 0);
        atomic_store(&p->slots[s].disk_bytes, 0);
    }
    atomic_store(&h->pool_objects, 0);
    atomic_store(&h->pool_resident, 0);
    atomic_store(&h->pool_disk, 0);
    for (uint32_t i = (uint32_t)p->ntab; i-- > 0;)
        rebuild_entry(p, i, busy, &used, &nused);
    mempool__cache_release_all(p, held);
    for (uint64_t k = 0; k < p->npages; k++) {
        mp_page *d = &p->pages[k];
        bits_set(p, k, 1, d->kind == MP_PG_FREE);
        if (d->kind == MP_PG_SLAB && d->used != slab_full(d->cls))
            partial_push(p, d->cls, (uint32_t)k);
    }
    atomic_store(&h->entries_used, nused);
    atomic_store(&h->used_bytes, used);
    h->rover = 0;
    atomic_fetch_add(&h->rebuilds, 1);
}

/* mempool__alloc_init's backing of the data's first chunk. */
static void first_chunk_back(mempool *p)
{
    uint64_t a, z;
    if (mempool__chunk_of(&p->core, 0, &a, &z) && a == 0 &&
        p->data_off % MP_CHUNK == 0 && mempool__resident(&p->core, a, z, a))
        punched_set(p, a, z, 0);
    else
        (void)run_back(p, 0, 1);
}

/* A new arena: every entry FREE (gen 1) on the free list, every page free
 * and, if @p holes, a hole to back before use (run_back). Before the pool
 * is linked, so no lock. */
void mempool__alloc_init(mempool *p, bool holes)
{
    punched_set(p, 0, p->npages, holes);
    /* The chunk the data pages begin in: back it now, not in the first
     * put, where collapsing it cost ms on a loaded machine. Where the data
     * starts on a chunk boundary, create() had it collapsed with the
     * metadata (mincore says so: its flags are cleared, nothing is asked
     * of the kernel twice); where it also holds metadata (a small arena),
     * its huge page is made here, before most of that metadata is written
     * (little to copy, nobody else maps the file yet). A failure leaves
     * the pages holes for run_back() later. */
    if (holes)
        first_chunk_back(p);
    for (uint32_t i = 0; i < p->ntab; i++) {
        mp_entry *e = mp_entry_at(p, i);
        mempool__entry_format(e);
        e->next_free = i + 1 < p->ntab ? i + 2 : 0;
    }
    p->h->entry_free = 1;
    bits_set(p, 0, p->npages, true);
}

/* ---- the lock ---------------------------------------------------------- */

/* A timed step of lock_wait() on @p m ran out: does its lock word name a
 * thread that does not exist? A free word names nobody - its holder let
 * go as our step ended - so we try again (a waiter judged such a lock
 * "owner 0, gone" and its free was owed: ~1 in 100 TSan runs of
 * check_handback many). An owner of INT_MAX (glibc's and rlock.c's
 * "inconsistent") is a holder making a dead one's state consistent (a
 * rebuild, which may wait for stopped cache holders): the word names it. */
static bool holder_gone(pthread_mutex_t *m)
{
    int word = __atomic_load_n(&m->__data.__lock, __ATOMIC_RELAXED), owner;
    /* No thread named: free (0) or handed over (OWNER_DIED) - try again;
     * anything else (waiters alone) no unlock and no death will ever
     * clear: damage, and a wait without a bound (a spill write's end,
     * then) never ended (check_review12 duty_waiters_word). */
    if (!(word & FUTEX_TID_MASK))
        return word != 0 && !(word & FUTEX_OWNER_DIED);
    owner = __atomic_load_n(&m->__data.__owner, __ATOMIC_RELAXED);
    if (owner == INT_MAX)
        owner = word & FUTEX_TID_MASK;
    return owner <= 0 || (kill(owner, 0) < 0 && errno == ESRCH);
}

/* Wait for a robust mutex of the arena. A holder that dies makes the
 * kernel hand it over (EOWNERDEAD); a lock word naming a thread that does
 * not exist can only come from a damaged arena, so after each second of
 * waiting the owner is checked and the wait fails instead of lasting
 * forever. A holder that is alive but stopped (SIGSTOP, a debugger, a
 * frozen cgroup) keeps the lock - it may continue mid-step - so with
 * @p bound_ns (not 0) the wait ends there with ETIMEDOUT. */
static int lock_wait(pthread_mutex_t *m, uint64_t bound_ns)
{
    /* Uncontended: no clock read (a CLOCK_REALTIME read cost ~60 ns per
     * lock, issue 11). trylock reports EOWNERDEAD like timedlock does.
     * Robust mutexes never spin, so a short spin here keeps a collision
     * between writers (held for well under a microsecond) from becoming a
     * futex sleep. */
    uint64_t deadline;
    int rc;
    for (int spin = 0; spin < 64; spin++) {
        /* Read before trying: a failing trylock still takes the line. */
        if (spin && __atomic_load_n(&m->__data.__lock, __ATOMIC_RELAXED)) {
            mp_cpu_relax();
            continue;
        }
        rc = mempool__rl_trylock(m);
        if (rc != EBUSY)
            return rc;
    }
    deadline = bound_ns ? mempool__now_ns() + bound_ns : 0;
    for (;;) {
        /* timedlock takes a CLOCK_REALTIME time: a second, or what is
         * left of the bound (a clock step only moves one wait). */
        uint64_t step = 1000000000u, now;
        struct timespec ts;
        if (deadline) {
            now = mempool__now_ns();
            if (now >= deadline)
                return ETIMEDOUT;
            if (deadline - now < step)
                step = deadline - now;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        step += (uint64_t)ts.tv_nsec;
        ts.tv_sec += (time_t)(step / 1000000000u);
        ts.tv_nsec = (long)(step % 1000000000u);
        rc = mempool__rl_timedlock(m, &ts);
        if (rc != ETIMEDOUT)
            return rc;
        if (holder_gone(m))
            return ENOTRECOVERABLE;
    }
}

/* Wait for robust mutex @p m of the arena (a worker cache's lock) as
 * above, without a bound: 0, EOWNERDEAD, ENOTRECOVERABLE or an errno. */
int mempool__mutex_wait(pthread_mutex_t *m)
{
    return lock_wait(m, 0);
}

/* Take the allocator lock, waiting at most @p bound_ns (0: no bound); if
 * its holder died, rebuild first. Moves: lock_holder (diagnostics), and
 * all allocator state on a rebuild. */
static int lock_alloc(mempool *p, uint64_t bound_ns)
{
    int rc = lock_wait(&p->h->alloc_lock, bound_ns);
    if (rc == EOWNERDEAD) {
        rebuild(p);
        mempool__rl_consistent(&p->h->alloc_lock);
        rc = 0;
    }
    if (rc == ENOTRECOVERABLE)
        return MEMPOOL_ECORRUPT;
    if (rc == ETIMEDOUT)
        return -EAGAIN;
    if (rc)
        return -rc;
    atomic_store_explicit(&p->h->lock_holder, (uint32_t)p->slot + 1,
                          memory_order_relaxed);
    return 0;
}

/* 0, or -EAGAIN: a live holder kept the lock past the peer wait bound
 * (stopped: the caller gives up, or leaves its free owed: entry.c), or
 * MEMPOOL_ECORRUPT (lock word names no thread), or -errno. */
int mempool__lock(mempool *p)
{
    return lock_alloc(p, mempool__wait_bound_ns(p));
}

/* The lock for a step that can be left owed if it cannot have it (a free,
 * giving up a slot: entry.c, "owed frees"). Once anything is owed, the
 * holder was stopped past the bound a moment ago: one try (the short spin
 * of lock_wait), not another whole bound - every free of a stall paid
 * the bound before (check_alloc_owed). 0, or the error with header.owed
 * raised: whoever has the lock next pays. */
int mempool__lock_or_owe(mempool *p)
{
    /* Relaxed: the flag only chooses how long to wait; the frees it
     * stands for are found by reading the entry words themselves. */
    bool owing = atomic_load_explicit(&p->h->owed, memory_order_relaxed);
    int rc = lock_alloc(p, owing ? 1 : mempool__wait_bound_ns(p));
    if (rc)
        mempool__owe(p);
    return rc;
}

int mempool__lock_try(mempool *p)
{
    return lock_alloc(p, 1);
}

void mempool__unlock(mempool *p)
{
    atomic_store_explicit(&p->h->lock_holder, 0, memory_order_relaxed);
    mempool__rl_unlock(&p->h->alloc_lock);
}

/* ---- trim -------------------------------------------------------------- */

/* Punch the free, not yet punched pages out of the shm object. Locked.
 * Moves: the pages' punched flags only. Returns bytes punched or -errno. */
int64_t mempool__trim_locked(mempool *p)
{
    int64_t done = 0;
    for (uint64_t k = 0, e; k < p->npages; k = e) {
        e = k + 1;
        if (!bit_get(p, k) || MP_LD(p->pages[k].punched))
            continue;
        while (e < p->npages && bit_get(p, e) && !MP_LD(p->pages[e].punched))
            e++;
        if (fallocate(p->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                      (off_t)(p->data_off + k * MP_PAGE),
                      (off_t)((e - k) * MP_PAGE)) < 0)
            return done ? done : -errno;
        for (uint64_t q = k; q < e; q++)
            MP_ST(p->pages[q].punched, 1);
        done += (int64_t)((e - k) * MP_PAGE);
    }
    return done;
}

/* ---- verify ------------------------------------------------------------ */

/* What the table says the derived state should be (alloc_verify). Charges
 * are per owner; index 0 is the pool's own (owner 0). */
typedef struct expect {
    mp_page *pg;                         /* scratch page descriptors */
    uint64_t used, nused, nfree, npartial, cached;
    uint64_t res[MP_WORKERS + 1], objs[MP_WORKERS + 1], disk[MP_WORKERS + 1];
} expect;

__attribute__((format(printf, 3, 4)))
static int fail(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return MEMPOOL_ECORRUPT;
}

/* One entry in use (not FREE or RETIRED): place its block, add its charges. */
static int expect_entry(mempool *p, expect *x, uint32_t i, char *why,
                        size_t whylen)
{
    mp_entry *e = mp_entry_at(p, i);
    uint64_t w = atomic_load(&e->word);
    unsigned st = MP_W_ST(w);
    if (st > MP_ST_CACHED || st == MP_ST_FREEING)
        return fail(why, whylen, "entry %u has state %u outside the lock", i,
                    st);
    if (st == MP_ST_CACHED && !mempool__cache_fits(&p->core, e, w, false))
        return fail(why, whylen, "entry %u is cached without a small block",
                    i);
    if (!has_block(w) && e->off)
        return fail(why, whylen, "entry %u is not in memory but owns a block",
                    i);
    if (e->off && place(p, x->pg, e->off, e->len))
        return fail(why, whylen, "entry %u: block %llu+%llu invalid or shared",
                    i, (unsigned long long)e->off, (unsigned long long)e->len);
    if (has_block(w) && !e->off && e->len)
        return fail(why, whylen, "entry %u: %llu bytes but no block", i,
                    (unsigned long long)e->len);
    x->nused++;
    if (has_block(w))
        x->used += mempool__block_bytes(e->len);
    if (st == MP_ST_CACHED)
        x->cached++;                     /* no object: charged to nobody */
    else if (e->owner <= MP_WORKERS) {
        x->res[e->owner] += has_block(w) ? e->len : 0;
        x->disk[e->owner] += (MP_W_FL(w) & MP_F_ONDISK) ? e->len : 0;
        x->objs[e->owner]++;
    }
    return 0;
}

static int expect_table(mempool *p, expect *x, char *why, size_t whylen)
{
    for (uint32_t i = 0; i < p->ntab; i++) {
        unsigned st = MP_W_ST(atomic_load(&mp_entry_at(p, i)->word));
        int rc;
        if (st == MP_ST_FREE)
            x->nfree++;
        else if (st != MP_ST_RETIRED && (rc = expect_entry(p, x, i, why,
                                                           whylen)))
            return rc;
    }
    return 0;
}

/* The page descriptors and the bitmap against the scratch copy. */
static int check_pages(mempool *p, expect *x, char *why, size_t whylen)
{
    for (uint64_t k = 0; k < p->npages; k++) {
        mp_page *a = &p->pages[k], *c = &x->pg[k];
        if (a->kind != c->kind || (c->kind == MP_PG_SLAB &&
            (a->used != c->used || a->cls != c->cls)) ||
            (c->kind == MP_PG_HEAD && a->run != c->run))
            return fail(why, whylen,
                        "page %llu: descriptor disagrees with the table",
                        (unsigned long long)k);
        if (bit_get(p, k) != (c->kind == MP_PG_FREE))
            return fail(why, whylen,
                        "page %llu: free bitmap disagrees with the table",
                        (unsigned long long)k);
        if (c->kind == MP_PG_SLAB && c->used != slab_full(c->cls))
            x->npartial++;
    }
    return 0;
}

/* The slab partial lists and the entry free list: well formed, complete. */
static int check_lists(mempool *p, const expect *x, char *why, size_t whylen)
{
    uint64_t npartial = 0, walked = 0;
    for (unsigned c = 0; c < MP_NCLASS; c++) {
        for (uint32_t q = p->h->partial[c]; q; q = p->pages[q - 1].next) {
            if (q > p->npages || ++npartial > p->npages ||
                p->pages[q - 1].kind != MP_PG_SLAB || p->pages[q - 1].cls != c)
                return fail(why, whylen, "slab list of class %u is broken", c);
        }
    }
    if (npartial != x->npartial)
        return fail(why, whylen, "slab lists hold %llu pages, %llu have room",
                    (unsigned long long)npartial,
                    (unsigned long long)x->npartial);
    for (uint32_t q = p->h->entry_free; q; q = mp_entry_at(p, q - 1)->next_free) {
        if (q > p->ntab || ++walked > x->nfree ||
            MP_W_ST(atomic_load(&mp_entry_at(p, q - 1)->word)) != MP_ST_FREE)
            return fail(why, whylen, "entry free list is broken");
    }
    if (walked != x->nfree)
        return fail(why, whylen, "%llu free entries, %llu on the free list",
                    (unsigned long long)x->nfree, (unsigned long long)walked);
    return 0;
}

/* The pool's counters and every owner's charges. */
static int check_counters(mempool *p, const expect *x, char *why,
                          size_t whylen)
{
    if (x->used != atomic_load(&p->h->used_bytes) ||
        x->nused != atomic_load(&p->h->entries_used))
        return fail(why, whylen,
                    "counters say %llu bytes/%llu objects, table %llu/%llu",
                    (unsigned long long)atomic_load(&p->h->used_bytes),
                    (unsigned long long)atomic_load(&p->h->entries_used),
                    (unsigned long long)x->used, (unsigned long long)x->nused);
    for (uint16_t o = 0; o <= MP_WORKERS; o++) {
        charges c;
        uint64_t res, objs;
        charges_of(p, o, &c);
        res = atomic_load(c.resident);
        objs = atomic_load(c.objects);
        if (o) {                         /* plus its cache's part */
            res += atomic_load(&p->wcs[o - 1].resident);
            objs += atomic_load(&p->wcs[o - 1].objects);
        }
        if (x->res[o] != res || x->objs[o] != objs ||
            x->disk[o] != atomic_load(c.disk))
            return fail(why, whylen, "%s %d charged %llu objects, %llu/%llu "
                        "bytes (memory/disk), table says %llu, %llu/%llu",
                        o ? "worker" : "pool", o, (unsigned long long)objs,
                        (unsigned long long)res,
                        (unsigned long long)atomic_load(c.disk),
                        (unsigned long long)x->objs[o],
                        (unsigned long long)x->res[o],
                        (unsigned long long)x->disk[o]);
    }
    return 0;
}

/* The first worker in @p busy holds its cache lock past the bound. */
static int fail_busy(const mempool *p, uint64_t busy, char *why,
                     size_t whylen)
{
    snprintf(why, whylen, "worker %d held its allocator cache's lock for "
             "over %llu ms (stopped?): the pool was not checked; retry",
             __builtin_ctzll(busy) + 1,
             (unsigned long long)(mempool__wait_bound_ns(p) / 1000000u));
    return -EAGAIN;
}

/* Recompute the derived state into scratch memory and compare. Locked.
 * Moves nothing. */
int mempool__alloc_verify(mempool *p, char *why, size_t whylen)
{
    expect x = { .pg = calloc(p->npages, sizeof(mp_page)) };
    uint64_t held, busy;
    int rc;

    if (!x.pg)
        return -ENOMEM;
    /* The caches' locks too: their sets and deletes move entries and
     * charges without the allocator lock. A cache whose holder is stopped
     * inside such a step cannot be checked (its entry and charges may be
     * half moved, which is not corruption), nor the pool's totals without
     * it: -EAGAIN rather than a guess either way. */
    held = mempool__cache_hold_all(p, true, &busy);
    if (busy)
        rc = fail_busy(p, busy, why, whylen);
    else if (!(rc = expect_table(p, &x, why, whylen)) &&
             !(rc = check_pages(p, &x, why, whylen)) &&
             !(rc = check_lists(p, &x, why, whylen)) &&
             !(rc = mempool__cache_verify(p, x.cached, why, whylen)))
        rc = check_counters(p, &x, why, whylen);
    mempool__cache_release_all(p, held);
    free(x.pg);
    return rc;
}
