/* SPDX-License-Identifier: MIT */
/*
 * object.c - the object API: reserve/publish/abort, set, get/release,
 * delete, ref/unref and info.
 *
 * The entry word and its transitions are entry.c's (diagram in entry.h);
 * this file calls them.
 *
 * get is lock-free: read the word, record a pin cell, re-read the word
 * (pin.c explains the handshake). mempool_get() and mempool_release()
 * themselves are get.c's: a short path for resident objects that falls
 * back to the full one here (mempool__get, mempool__release). delete is a CAS to DELETED followed by an
 * attempt to reclaim; whoever drops the last pin of a DELETED entry
 * reclaims it. A DRef names the entry by arena offset and carries its
 * generation, so any DRef from before a reuse is answered -ENOENT.
 *
 * A get of a SPILLED object pins it and maps its file (mapcache.c); a get
 * that meets EVICTING waits for the evictor's verdict (spill.c).
 *
 * Refcounted objects: references are REF cells of the holding worker.
 * Whoever may have dropped the last one runs a check: put its slot in the
 * word's rc byte (one checker at a time), scan every worker's cells, then
 * either clear rc or move the entry to DELETED. A concurrent mempool_ref()
 * that sees rc set waits for the verdict, so a reference is never granted
 * on an object being deleted.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "dhint.h"
#include "entry.h"
#include "failpoint.h"
#include "internal.h"
#include "recency.h"
#include "streamcopy.h"
#include "view.h"
#include "wcache.h"

static uint64_t table_off(const mempool *p)
{
    return (uint64_t)((const uint8_t *)p->tab - p->base);
}

/* Validate a DRef's shape; gives the entry index and 32-bit generation. */
int mempool__entry_of(const mempool *p, mempool_dref r, uint32_t *idx,
                      uint32_t *gen)
{
    uint64_t t = table_off(p);
    r.off &= MEMPOOL_DREF_ENTRY_BITS;          /* the data hint: dhint.h */
    if ((r.gen & ~UINT64_C(0xffffffff)) != p->tag || (uint32_t)r.gen == 0)
        return -EINVAL;
    if (r.off < t || r.off - t >= p->ntab * sizeof(mp_entry) ||
        (r.off - t) % sizeof(mp_entry))
        return -EINVAL;
    *idx = (uint32_t)((r.off - t) / sizeof(mp_entry));
    *gen = (uint32_t)r.gen;
    return 0;
}

/* The DRef of (idx, gen), with the hint of where its data is now (a
 * plain load: a racing move only makes the hint stale, dhint.h). */
mempool_dref mempool__dref_of(const mempool *p, uint32_t idx, uint32_t gen)
{
    mempool_dref r = { (table_off(p) + (uint64_t)idx * sizeof(mp_entry)) |
                           mp_dhint_make(p->data_off, MP_LD(p->tab[idx].off)),
                       p->tag | gen };
    return r;
}

/* Recency: a get stores a stamp only when it moves (recency.h). */
static void touch(mp_entry *e, bool set)
{
    mp_stamp_touch(&e->stamp, set);
}

#define COUNT(p, field) \
    atomic_fetch_add_explicit(&(p)->slots[(p)->slot].field, 1, \
                              memory_order_relaxed)

/* ---- creating ---------------------------------------------------------- */

static int owner_slot(mempool *p, const mempool_put_options *o, int *slot)
{
    int s;
    if (!o || o->owner == 0) {
        *slot = p->slot;
        return 0;
    }
    if (o->owner < 1 || o->owner > MP_WORKERS)
        return -ESRCH;
    s = o->owner - 1;
    if (s != p->slot && (!(atomic_load(&p->h->active) >> s & 1) ||
                         !mempool__slot_alive(&p->core, s)))
        return -ESRCH;
    *slot = s;
    return 0;
}

static void set_fields(mempool *p, uint32_t idx, const mempool_put_options *o,
                       int owner)
{
    mp_entry *e = mp_entry_at(p, idx);
    MP_ST(e->type, o ? o->type : 0);
    MP_ST(e->setflags, (uint16_t)(o ? o->flags : 0));
    MP_ST(e->owner, (uint16_t)(owner + 1));
    mempool__charge(p, idx);
}

/* One admission attempt under the lock; *need says what to free first. */
static int admit(mempool *p, size_t len, const mempool_put_options *o,
                 int owner, uint32_t *idx, uint64_t *need, int *who)
{
    uint64_t over;
    bool held = true;
    int rc = mempool__lock(p);
    if (rc)
        return rc == -EAGAIN ? -EBUSY : rc;   /* not "spill first" */
    /* The owner's cache lock too: its cached sets charge it meanwhile, and
     * its limit is exact only if neither part moves (wcache.c). Held by a
     * stopped giver (-EAGAIN), an owner without a limit needs no exact
     * sum: the set goes on without it (charged to the part the allocator
     * lock guards; nothing of the cache is read or written below). */
    if ((rc = mempool__cache_hold_set(p, owner))) {
        if (rc != -EAGAIN || atomic_load_explicit(
                                 &p->slots[owner].max_memsize,
                                 memory_order_relaxed)) {
            mempool__unlock(p);
            return rc == -EAGAIN ? -EBUSY : rc;
        }
        held = false;
    }
    *need = 0;
    if ((over = mempool__over_limit(p, owner, len))) {
        *need = over;                     /* spill the owner's objects */
        *who = owner;
        rc = -EAGAIN;
    } else {
        rc = mempool__alloc(p, len, idx);
        /* Short of entries or blocks: first what caches hold unused. */
        if ((rc == -ENOSPC || rc == -ENOMEM) &&
            mempool__cache_drain(p, held ? owner : -1) > 0)
            rc = mempool__alloc(p, len, idx);
        if (rc == 0) {
            set_fields(p, *idx, o, owner);
        } else if (rc == -ENOMEM) {
            *need = mempool__block_bytes(len); /* arena short: anyone's */
            *who = -1;
        }
    }
    if (held)
        mempool__cache_release(p, owner);
    mempool__unlock(p);
    return rc;
}

/* Short of arena memory (@p rc -ENOMEM): first what dead workers held
 * (reaped); then, once, what deleters' stashes hold (handback.c) - over
 * the owner's limit (-EAGAIN) and with the object table full (-ENOSPC)
 * too: a stashed object is deleted but keeps its entry and its charge to
 * its owner, whose live objects must not be spilled for it (a limit set
 * after such deletes found nothing to spill: -ENOMEM), and a put must not
 * find the table full while deleted objects hold entries (-ENOSPC).
 * true: admit again. */
static bool room_back(mempool *p, int rc, bool *collected)
{
    if (rc == -ENOMEM && mempool_reap(p) > 0)
        return true;
    if (*collected)
        return false;
    *collected = true;
    mempool__handback_collect(p, true);
    return true;
}

/*
 * Allocate an entry charged to @p owner, first making room: the owner's
 * limit by spilling its own objects, the arena by spilling anyone's (after
 * reaping dead workers). Fails with -E2BIG if @p len alone passes the
 * owner's limit, -ENOMEM if nothing more can be freed within the wait.
 */
static int alloc_entry(mempool *p, size_t len, const mempool_put_options *o,
                       int owner, uint32_t *idx)
{
    uint64_t lim = atomic_load(&p->slots[owner].max_memsize), need = 0;
    uint64_t deadline = 0;
    bool collected = false;
    int rc, who = -1;

    if (lim && len > lim)
        return -E2BIG;
    /* The common path: a small object of our own from our cache. */
    if (owner == p->slot && len && len <= MP_SMALL_MAX &&
        (rc = mempool__cache_alloc(p, len, o ? o->type : 0,
                                   (uint16_t)(o ? o->flags : 0), idx)) <= 0)
        return rc;          /* 0, or -EAGAIN: the allocator lock's holder
                               is stopped (it would be ours to wait too) */
    if (MP_UNLIKELY(atomic_load_explicit(&p->h->owed, memory_order_relaxed)))
        mempool__reclaim_owed(p);       /* frees that waited out the lock */
    for (;;) {
        rc = admit(p, len, o, owner, idx, &need, &who);
        if (rc == -EBUSY)
            return -EAGAIN;               /* its holder is stopped */
        if (rc != -EAGAIN && rc != -ENOMEM && rc != -ENOSPC)
            return rc;
        if (room_back(p, rc, &collected))
            continue;
        if (rc == -ENOSPC)
            return rc;                    /* full even so: no spill helps */
        if (!deadline)
            deadline = mempool__now_ns() + p->evict_wait_ms * 1000000ull;
        else if (mempool__now_ns() >= deadline)
            return -ENOMEM;               /* after one more admission */
        /* One pass, then admit again: others may have freed room too. */
        rc = p->spill_ops->make_room(p, who, need, false);
        if (rc && rc != -ENOMEM && rc != -ENOENT && rc != -EAGAIN)
            return rc;                    /* -ENOSPC, -EIO: say so */
        if (rc == -ENOMEM)
            nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
    }
}

/* A type id an object may carry: plain bytes, a built-in codec's, or a
 * user type registered through this handle (as mempool_put_obj() wants);
 * the ids between the built-ins and MEMPOOL_TYPE_USER are reserved. */
static int type_ok(mempool *p, uint32_t type)
{
    if (type <= MEMPOOL_TYPE_TABLE)
        return 0;
    if (type < MEMPOOL_TYPE_USER)
        return -EINVAL;
    return p->type_known ? p->type_known(p, type) : -ENOTSUP;
}

/* Give the holes of the block of entry @p e (ours, ALLOC) memory,
 * outside the allocator lock (blockback.c): all of it at once, one
 * MADV_COLLAPSE for its whole chunks (each call drains every CPU's page
 * lists; backing 8 MiB at a time between the copies of a put measured no
 * faster: 0.63x memcpy against 0.70x, 40 interleaved runs at load ~10).
 * On failure (-ENOSPC) the reservation is given back. */
static int back_block(mempool *p, const mp_entry *e, mempool_dref r)
{
    uint64_t off = MP_LD(e->off), len = MP_LD(e->len);
    int rc;
    if (!off || len <= MP_SMALL_MAX)
        return 0;                     /* slab blocks were backed locked */
    rc = mempool__block_back(&p->core, &p->huge,
                             (off - p->data_off) / MP_PAGE,
                             (len + MP_PAGE - 1) / MP_PAGE);
    if (rc) {
        COUNT(p, set_errors);
        (void)mempool_abort(p, r);
    }
    return rc;
}

/* mempool_reserve() up to the backing of the block: *@p e is ours. */
static int reserve_entry(mempool *p, size_t len, const mempool_put_options *o,
                         void **buf, mempool_dref *out, mp_entry **ep)
{
    const uint32_t known = MEMPOOL_PUT_REFCOUNTED | MEMPOOL_PUT_DESTROY_ON_EVICT;
    uint32_t idx, gen;
    mp_entry *e;
    int rc, owner;

    if ((rc = mempool__writer_ok(p)))
        return rc;
    if (!buf || !out || (o && (o->flags & ~known)))
        return -EINVAL;
    if (o && (rc = type_ok(p, o->type)))
        return rc;
    if ((rc = owner_slot(p, o, &owner)))
        return rc;
    if (len > p->npages * MP_PAGE)
        return -E2BIG;
    if ((rc = alloc_entry(p, len, o, owner, &idx))) {
        if (rc != -E2BIG)
            COUNT(p, set_errors);     /* no room: a set that failed */
        return rc;
    }
    e = mp_entry_at(p, idx);
    gen = MP_W_GEN(atomic_load(&e->word));
    if ((MP_LD(e->setflags) & MEMPOOL_PUT_REFCOUNTED) &&
        (rc = mempool__ref_add(&p->core, idx, gen))) {
        /* Past the bound (a stopped holder, or a live TID planted in
         * the lock word) the reservation stays ours, unpublished: our
         * close or reap frees it (worker.c reap_entries). */
        if (mempool__lock(p) == 0) {
            mempool__free(p, idx, atomic_load(&e->word));
            mempool__unlock(p);
        }
        return rc;
    }
    *buf = p->base + (e->off ? e->off : p->data_off);
    *out = mempool__dref_of(p, idx, gen);
    *ep = e;
    MP_FP(reserve_done);
    return 0;
}

int mempool_reserve(mempool *p, size_t len, const mempool_put_options *o,
                    void **buf, mempool_dref *out)
{
    mp_entry *e;
    int rc = reserve_entry(p, len, o, buf, out, &e);
    return rc ? rc : back_block(p, e, *out);
}

/* Our unpublished reservation behind @p r (entry *e, index *idx, ALLOC
 * word *w), or an error. */
static int own_reservation(mempool *p, mempool_dref r, mp_entry **e,
                           uint32_t *idx, uint64_t *w)
{
    uint32_t gen;
    int rc = mempool__writer_ok(p);
    if (rc || (rc = mempool__entry_of(p, r, idx, &gen)))
        return rc;
    *e = mp_entry_at(p, *idx);
    *w = atomic_load(&(*e)->word);
    if (MP_W_GEN(*w) != gen || MP_W_ST(*w) == MP_ST_FREE ||
        MP_W_ST(*w) == MP_ST_CACHED)
        return -ENOENT;
    if (MP_W_ST(*w) != MP_ST_ALLOC || MP_W_WHO(*w) != (unsigned)p->slot + 1)
        return -EINVAL;
    return 0;
}

/* Publish our reservation @p e (entry @p idx, ALLOC(us) word @p w). */
static int publish_own(mempool *p, mp_entry *e, uint32_t idx, uint64_t w)
{
    touch(e, true);
    MP_FP(publish_before);
    if (mempool__entry_publish(e, w))
        return -ENOENT;              /* reaped under us: cannot happen live */
    /* get_wait sleepers, if any: woken and yielded the CPU */
    mempool__entry_wake_published(p, idx);
    COUNT(p, sets);
    return 0;
}

int mempool_publish(mempool *p, mempool_dref r)
{
    uint32_t idx;
    uint64_t w;
    mp_entry *e;
    int rc = own_reservation(p, r, &e, &idx, &w);
    return rc ? rc : publish_own(p, e, idx, w);
}

int mempool_abort(mempool *p, mempool_dref r)
{
    uint32_t idx;
    uint64_t w;
    mp_entry *e;
    int rc = own_reservation(p, r, &e, &idx, &w);
    if (rc)
        return rc;
    /* The lock first: -EAGAIN (a stopped holder) changes nothing. */
    if ((rc = mempool__lock(p)))
        return rc;
    if (MP_LD(e->setflags) & MEMPOOL_PUT_REFCOUNTED)
        mempool__ref_sub(&p->core, idx, MP_W_GEN(w));
    if (!mempool__free(p, idx, w))
        rc = -ENOENT;
    mempool__unlock(p);
    return rc;
}

/* A large copy into arena pages this process never mapped pays a page
 * fault per 4 KiB; MADV_POPULATE_WRITE (Linux 5.14) maps them in one call
 * first (issue 11 target 3). On pages already mapped it still walks them
 * (it slowed warm 64 MiB sets), so each handle remembers which chunks of
 * the arena (1/4096 of it, at least 2 MiB) it has populated and does it
 * once per chunk. Only whole pages inside the block are populated; any
 * failure (older kernels: EINVAL) just leaves the faults to memcpy. A
 * chunk whose pages were punched since (trim) faults again, as before. */
#define POPULATE_MIN (256u << 10)
#define POP_CHUNKS   (64u * 64u)

static void populate(mempool *p, void *buf, size_t len)
{
#ifdef MADV_POPULATE_WRITE
    uint8_t *data = p->base + p->data_off, *end = (uint8_t *)buf + len;
    unsigned sh = 21;
    if (len < POPULATE_MIN || (uint8_t *)buf < data)
        return;
    while (((p->npages * MP_PAGE) >> sh) >= POP_CHUNKS)
        sh++;
    for (uint64_t c = (uint64_t)((uint8_t *)buf - data) >> sh;
         c < POP_CHUNKS && data + (c << sh) < end; c++) {
        _Atomic uint64_t *word = &p->populated[c / 64];
        uint64_t bit = UINT64_C(1) << (c % 64);
        uintptr_t a = (uintptr_t)data + (c << sh), z = a + (UINT64_C(1) << sh);
        if (atomic_load_explicit(word, memory_order_relaxed) & bit)
            continue;
        atomic_fetch_or_explicit(word, bit, memory_order_relaxed);
        a = a > (uintptr_t)buf ? a : (uintptr_t)buf;
        z = z < (uintptr_t)end ? z : (uintptr_t)end;
        a = (a + MP_PAGE - 1) & ~(uintptr_t)(MP_PAGE - 1);
        z &= ~(uintptr_t)(MP_PAGE - 1);
        if (z > a)
            (void)madvise((void *)a, z - a, MADV_POPULATE_WRITE);
    }
#else
    (void)p;
    (void)buf;
    (void)len;
#endif
}

/* A put at least this long into a block with holes (new memory) copies
 * with streaming stores (streamcopy.c: the kernel has just zeroed those
 * lines, and a memcpy() would read each one back before overwriting it),
 * and backs the block on a helper thread while it copies (backahead.c)
 * when a CPU is free for that. */
#define FILL_AHEAD_MIN (4u << 20)
/* A put at least this long streams into pages already backed too: it is
 * as large as this VM's L3, so few of its lines can still be cached, and
 * memcpy() read each one from memory before overwriting it (64 MiB into a
 * warm pool: 5.7-6.0 ms with memcpy, 3.4-3.5 ms streamed). Shorter puts
 * into backed pages, whose lines may be cached, keep memcpy(). glibc
 * streams only above 3/4 of what it takes for the shared cache (240 MiB
 * on this VM). */
#define FILL_STREAM_MIN (32u << 20)

/* Shall a large put into new memory use a helper? */
static bool ahead(const mempool *p)
{
    return !p->back_inline && (p->back_ahead || mempool__spare_cpu());
}

/* Copy @p len bytes of @p data into our reservation @p r (entry @p e,
 * bytes at @p buf), its block backed first: 0, or -ENOSPC with the
 * reservation given back. */
static int fill(mempool *p, const mp_entry *e, mempool_dref r, void *buf,
                const void *data, size_t len)
{
    uint64_t off = MP_LD(e->off), pg, n;
    bool fresh = false;
    int rc;
    if (off && len > MP_SMALL_MAX) {
        pg = (off - p->data_off) / MP_PAGE;
        n = (len + MP_PAGE - 1) / MP_PAGE;
        fresh = len >= FILL_AHEAD_MIN &&
                !mempool__all_backed(&p->core, pg, pg + n);
        if (fresh && ahead(p)) {
            rc = MP_FP(back_block);           /* back.block=enospc */
            if (rc == 0)
                rc = mempool__fill(&p->core, &p->huge, pg, n, buf, data,
                                   len);
            if (rc) {
                COUNT(p, set_errors);
                (void)mempool_abort(p, r);
            }
            return rc;
        }
    }
    /* Slab blocks were backed locked: no call for a small object. */
    if (len > MP_SMALL_MAX && (rc = back_block(p, e, r)))
        return rc;
    populate(p, buf, len);
    if (fresh || len >= FILL_STREAM_MIN)
        mempool__copy_stream(buf, data, len);     /* see streamcopy.c */
    else
        memcpy(buf, data, len);
    return 0;
}

int mempool_put_ex(mempool *p, const void *data, size_t len,
                   const mempool_put_options *o, mempool_dref *out)
{
    void *buf;
    mempool_dref r;
    mp_entry *e;
    uint64_t w;
    int rc;

    if ((!data && len) || !out)
        return -EINVAL;
    if ((rc = reserve_entry(p, len, o, &buf, &r, &e)))
        return rc;
    if (len && (rc = fill(p, e, r, buf, data, len)))
        return rc;
    /* Our reservation of a moment ago: published without checking the
     * DRef again (mempool_publish's checks, for one a caller gives). */
    w = atomic_load(&e->word);
    if (MP_LIKELY(MP_W_ST(w) == MP_ST_ALLOC &&
                  MP_W_WHO(w) == (unsigned)p->slot + 1))
        rc = publish_own(p, e, mp_entry_idx(p, e), w);
    else
        rc = mempool_publish(p, r);
    if (rc) {
        mempool_abort(p, r);
        return rc;
    }
    *out = r;
    return 0;
}

int mempool_put(mempool *p, const void *data, size_t len, mempool_dref *out)
{
    return mempool_put_ex(p, data, len, NULL, out);
}

/* ---- reading ----------------------------------------------------------- */

/* A view's priv words: view.h. The short get path (get.c) seals memory
 * views itself, the same way. */
#define VIEW_DISK MP_VIEW_DISK
#define VIEW_FILE MP_VIEW_FILE           /* get_file mapping only */

void mempool__view_seal(mempool_view *v, const mempool *p, uint64_t a,
                        uint64_t b, uint64_t kind)
{
    v->priv[0] = a;
    v->priv[1] = b;
    v->priv[2] = (uint64_t)(uintptr_t)p | kind;
    v->priv[3] = mp_view_mac(a, b, v->priv[2]);
}

/* Our pin @p tok on (idx, gen) is in its cell: wait out an eviction
 * verdict; gives the settled word, or drops the pin and says why not. */
static int settle(mempool *p, uint32_t idx, uint32_t gen, uint64_t tok,
                  uint64_t *wp)
{
    mp_entry *e = mp_entry_at(p, idx);
    mp_wait wt = { 0, 0 };
    int rc;
    for (;;) {
        /* seq_cst, after the seq_cst CAS that wrote our pin cell: a delete
         * or eviction CASes the word and then scans the cells, so either it
         * sees our pin (and leaves the free to us) or we see its word here
         * and back off. A relaxed or acquire load could read the word from
         * before that CAS while the scan misses our cell (store-load order;
         * pin.c). */
        uint64_t w = mp_entry_word(e);
        if (!mp_entry_alive(w, gen)) {
            mempool__unpin(p, idx, gen, tok);
            return -ENOENT;
        }
        if (MP_W_ST(w) != MP_ST_EVICTING) {
            *wp = w;
            return 0;
        }
        if ((rc = mempool__wait_who(p, MP_W_WHO(w), idx, &wt))) {
            mempool__unpin(p, idx, gen, tok);
            return rc;                  /* the evictor is stopped */
        }
    }
}

static int view_memory(mempool *p, uint32_t idx, uint32_t gen, uint64_t tok,
                       mempool_view *v)
{
    mp_entry *e = mp_entry_at(p, idx);
    uint64_t off = e->off, len = e->len;
    if ((off && (off < p->data_off || off > p->size || len > p->size - off)) ||
        (!off && len))
        return MEMPOOL_ECORRUPT;
    v->data = p->base + (off ? off : p->data_off);
    v->len = len;
    v->flags = MEMPOOL_VIEW_MEMORY;
    mempool__view_seal(v, p, (idx + 1) | (tok << 32), gen, 0);
    return 0;
}

static int view_disk(mempool *p, uint32_t idx, uint32_t gen, uint64_t tok,
                     mempool_view *v)
{
    const uint8_t *data;
    uint64_t id;
    int rc = p->spill_ops->map_entry(p, idx, gen, &id, &data);
    if (rc == MEMPOOL_ECORRUPT)
        COUNT(p, corrupt_files);
    if (rc)
        return rc;
    v->data = data;
    v->len = MP_LD(mp_entry_at(p, idx)->len);
    v->flags = MEMPOOL_VIEW_DISK;
    mempool__view_seal(v, p, (idx + 1) | (tok << 32),
              gen | (id << 32), VIEW_DISK);
    atomic_fetch_add(&p->slots[p->slot].restores, 1);
    atomic_fetch_add(&p->slots[p->slot].restore_bytes, v->len);
    return 0;
}

/* The start of every get of @p r into @p v: 0 with its entry, or why
 * not (the handle, a NULL view, the DRef). */
int mempool__get_entry(mempool *p, mempool_dref r, const mempool_view *v,
                       uint32_t *idx, uint32_t *gen)
{
    int rc = mempool__writer_ok(p);
    if (rc || !v)
        return rc ? rc : -EINVAL;
    return mempool__entry_of(p, r, idx, gen);
}

/* get, and mark the object most recently used if @p recency. */
int mempool__get(mempool *p, mempool_dref r, mempool_view *v, bool recency)
{
    uint32_t idx, gen;
    int rc;

    if ((rc = mempool__get_entry(p, r, v, &idx, &gen)))
        return rc;
    return mempool__get_at(p, idx, gen, v, recency);
}

int mempool__get_at(mempool *p, uint32_t idx, uint32_t gen, mempool_view *v,
                    bool recency)
{
    uint64_t tok;
    int rc;

    if (!mp_entry_alive(atomic_load(&mp_entry_at(p, idx)->word), gen))
        return -ENOENT;
    if ((rc = mempool__pin(&p->core, idx, gen, &tok)))
        return rc;
    MP_FP(get_pinned);
    return mempool__get_pinned(p, idx, gen, tok, v, recency);
}

int mempool__get_pinned(mempool *p, uint32_t idx, uint32_t gen, uint64_t tok,
                        mempool_view *v, bool recency)
{
    mp_entry *e = mp_entry_at(p, idx);
    uint64_t w;
    int rc;

    if ((rc = settle(p, idx, gen, tok, &w)))
        return rc;
    rc = MP_W_ST(w) == MP_ST_LIVE ? view_memory(p, idx, gen, tok, v)
                                  : view_disk(p, idx, gen, tok, v);
    if (rc) {
        mempool__unpin(p, idx, gen, tok);
        return rc;
    }
    v->type = MP_LD(e->type);
    if (recency)
        touch(e, false);
    COUNT(p, gets);
    return 0;
}

int mempool__release(mempool *p, mempool_view *v)
{
    uint64_t kind, idx1;
    uint32_t gen;
    int rc;

    if ((rc = mempool__writer_ok(p)))
        return rc;
    if (!v || (v->priv[2] & ~UINT64_C(7)) != (uint64_t)(uintptr_t)p ||
        v->priv[3] != mp_view_mac(v->priv[0], v->priv[1], v->priv[2]))
        return -EINVAL;
    kind = v->priv[2] & 7;
    if (kind == VIEW_FILE) {
        if ((rc = p->spill_ops->map_put(p, v->priv[1])))
            return rc;
        memset(v, 0, sizeof(*v));
        return 0;
    }
    idx1 = v->priv[0] & 0xffffffffu;
    gen = (uint32_t)v->priv[1];
    MP_FP(release_before);
    if (idx1 == 0 || idx1 > p->ntab ||
        mempool__unpin_cell(&p->core, (uint32_t)idx1 - 1, gen, v->priv[0] >> 32))
        return -EINVAL;
    if (kind == VIEW_DISK)
        p->spill_ops->map_put(p, v->priv[1] >> 32);
    memset(v, 0, sizeof(*v));
    mempool__entry_after_unpin(p, (uint32_t)idx1 - 1);
    COUNT(p, releases);
    return 0;
}

/* ---- deleting and references ------------------------------------------- */

int mempool_delete(mempool *p, mempool_dref r)
{
    uint32_t idx, gen;
    int rc;

    if ((rc = mempool__writer_ok(p)) ||
        (rc = mempool__entry_of(p, r, &idx, &gen)))
        return rc;
    if ((rc = mempool__entry_delete(p, idx, gen)))
        return rc;
    MP_FP(delete_marked);
    mempool__entry_wake(p, idx);
    mempool__entry_reclaim(p, idx);
    COUNT(p, deletes);
    return 0;
}

/* A live refcounted entry behind @p r. */
static int refcounted(mempool *p, mempool_dref r, uint32_t *idx, uint32_t *gen)
{
    uint16_t fl;
    int rc;
    mp_entry *e;
    if ((rc = mempool__writer_ok(p)) ||
        (rc = mempool__entry_of(p, r, idx, gen)))
        return rc;
    e = mp_entry_at(p, *idx);
    if (!mp_entry_alive(atomic_load(&e->word), *gen))
        return -ENOENT;
    fl = MP_LD(e->setflags);
    /* The flags are the generation's only if it still lives after the
     * read: a reuse rewrites them (issue 15 item 14). */
    atomic_thread_fence(memory_order_acquire);
    if (!mp_entry_alive(mp_entry_word(e), *gen))
        return -ENOENT;
    return (fl & MEMPOOL_PUT_REFCOUNTED) ? 0 : -EINVAL;
}

/* A reference to (idx, gen) was just recorded (a cell or a box): 0 if the
 * object is still alive (a running check is asked to scan again, so it
 * sees the new reference), -ENOENT if it died first. */
int mempool__ref_settle(mempool *p, uint32_t idx, uint32_t gen)
{
    mp_entry *e = mp_entry_at(p, idx);
    for (;;) {
        uint64_t w = mp_entry_word(e);
        if (!mp_entry_alive(w, gen))
            return -ENOENT;
        if (!MP_W_RC(w) || mempool__entry_ask_recheck(e, w))
            return 0;
    }
}

int mempool_ref(mempool *p, mempool_dref r)
{
    uint32_t idx, gen;
    mp_entry *e;
    int rc;

    if ((rc = refcounted(p, r, &idx, &gen)))
        return rc;
    if ((rc = mempool__ref_add(&p->core, idx, gen)))
        return rc;
    MP_FP(ref_added);
    e = mp_entry_at(p, idx);
    for (;;) {
        /* seq_cst after the cell CAS: the refcount check CASes rc and then
         * scans the cells, so it sees our reference or we see its rc or
         * its DELETED here (the handshake of the get path, pin.c). */
        uint64_t w = mp_entry_word(e);
        if (!mp_entry_alive(w, gen)) {
            mempool__ref_undo(p, idx, gen);
            return -ENOENT;
        }
        /* A running check may have scanned before our cell: make it scan
         * again (it then sees us) rather than wait for its verdict. */
        if (!MP_W_RC(w) || mempool__entry_ask_recheck(e, w))
            break;
    }
    COUNT(p, refs);
    return 0;
}

int mempool_unref(mempool *p, mempool_dref r)
{
    uint32_t idx = 0, gen = 0;   /* set by entry_of before any use; -O2 cannot see it */
    int rc;

    if ((rc = refcounted(p, r, &idx, &gen))) {
        /* Deleted while we held a reference: drop our cell anyway, or it
         * would stay until this handle closes. */
        if (rc == -ENOENT && mempool__ref_sub(&p->core, idx, gen) == 0)
            COUNT(p, unrefs);
        return rc;
    }
    if (mempool__ref_sub(&p->core, idx, gen))  /* none: or freed and forgotten */
        return mp_entry_alive(mp_entry_word(mp_entry_at(p, idx)), gen)
                   ? -EINVAL : -ENOENT;
    mempool__entry_refcheck(p, idx, gen);
    COUNT(p, unrefs);
    return 0;
}

static uint32_t state_bits(uint64_t w)
{
    switch (MP_W_ST(w)) {
    case MP_ST_SPILLED:
        return MEMPOOL_STATE_DISK;
    case MP_ST_EVICTING:
        return MEMPOOL_STATE_MEMORY | MEMPOOL_STATE_DISK;
    default:
        return MEMPOOL_STATE_MEMORY |
               ((MP_W_FL(w) & MP_F_ONDISK) ? MEMPOOL_STATE_DISK : 0);
    }
}

int mempool_info_get(mempool *p, mempool_dref r, mempool_info *out)
{
    uint32_t idx, gen;
    mempool_info in;
    mp_entry *e;
    uint64_t w;
    int rc;

    if ((rc = mempool__handle_ok(p)))
        return rc;
    if (!out || (rc = mempool__entry_of(p, r, &idx, &gen)))
        return rc ? rc : -EINVAL;
    e = mp_entry_at(p, idx);
    w = atomic_load(&e->word);
    if (!mp_entry_alive(w, gen))
        return -ENOENT;
    in.len = MP_LD(e->len);
    in.owner = MP_LD(e->owner);
    in.type = MP_LD(e->type);
    in.state = state_bits(w);
    in.pins = mempool__cell_count(&p->core, MP_PIN, idx, gen, false);
    in.refs = mempool__cell_count(&p->core, MP_REF, idx, gen, false) +
              mempool__box_count(p, idx, gen);    /* and the pool's own */
    if (MP_W_GEN(atomic_load(&e->word)) != gen)
        return -ENOENT;             /* freed and reused while we looked */
    *out = in;
    return 0;
}
