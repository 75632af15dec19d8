/* SPDX-License-Identifier: MIT */
/*
 * stats.c - pool and worker figures, read without disturbing the workers.
 *
 * Who writes what. Every event counter (sets, gets, spills, ...) lives in
 * the slot of the worker that counts it and is written only by that
 * worker's threads with relaxed atomic adds, so the get path shares no
 * cache line with anyone. Charges (resident, disk, objects) are written
 * under the allocator lock for whoever owns the object. A reader sums.
 *
 * Totals since creation. Claiming a slot first folds the previous holder's
 * event counters into the header's `retired` array and zeroes them
 * (slot_retire() in worker.c), so a worker's counters are its own and the sum
 * over slots plus `retired` never goes back.
 *
 * How a reader reads. Relaxed atomic loads only: the slots, the table up
 * to its high-water mark (object states), each attached worker's pin cells
 * (pins, pinned bytes) and the free-page bitmap (largest free extent).
 * Liveness is F_OFD_GETLK on the slot's lock byte in the pool's lock file,
 * which tests the lock without taking it (an observer the lock file's mode
 * keeps out, one who may only read the pool, cannot tell: every attached
 * worker counts as alive, lockfile.c). No lock a worker could wait on, no pin, no store: an
 * observer (MEMPOOL_OPEN_OBSERVE), even one mapped read-only, cannot slow a
 * worker down beyond sharing cache lines it reads. Values are read one by
 * one and may be a moment apart; mempool_check() is the locked view.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "counters.h"
#include "handoff.h"
#include "spill.h"
#include "spillstate.h"

/* ---- event counters and their totals ----------------------------------- */

static uint64_t ld(_Atomic uint64_t *x)
{
    return atomic_load_explicit(x, memory_order_relaxed);
}

static const char *backend_name(uint32_t code)
{
    return code == 1 ? "io_uring" : code == 2 ? "pwrite" : "";
}

/* ---- liveness ----------------------------------------------------------- */

static uint32_t slot_state(mempool *p, int s)
{
    if (atomic_load(&p->h->active) >> s & 1)
        return mempool__slot_alive(&p->core, s) ? MEMPOOL_WORKER_ALIVE
                                         : MEMPOOL_WORKER_DEAD;
    return p->slots[s].claimed_ns ? MEMPOOL_WORKER_GONE : MEMPOOL_WORKER_FREE;
}

/* ---- pin cells ---------------------------------------------------------- */

/* Keys of pin cells (nonce cleared) and references of one worker. */
typedef struct keyset {
    uint64_t *k;
    size_t    n, cap;
} keyset;

static int keys_add(keyset *ks, uint64_t key)
{
    if (ks->n == ks->cap) {
        size_t cap = ks->cap ? ks->cap * 2 : 256;
        uint64_t *k = realloc(ks->k, cap * sizeof(*k));
        if (!k)
            return -ENOMEM;
        ks->k = k;
        ks->cap = cap;
    }
    ks->k[ks->n++] = key;
    return 0;
}

static int by_key(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Sort and drop duplicates of keys [from, n); returns the distinct ones'
 * count and object bytes (an entry reused since the pin is skipped). */
static uint64_t keys_unique(mempool *p, keyset *ks, size_t from,
                            uint64_t *bytes)
{
    size_t w = from;
    *bytes = 0;
    if (ks->n - from > 1)
        qsort(ks->k + from, ks->n - from, sizeof(uint64_t), by_key);
    for (size_t r = from; r < ks->n; r++) {
        uint64_t key = ks->k[r];
        uint32_t idx = (uint32_t)((key >> 32) & 0x7fffffff) - 1;
        uint64_t word;
        if (r > from && key == ks->k[r - 1])
            continue;
        if (idx >= p->ntab)
            continue;
        word = atomic_load_explicit(&mp_entry_at(p, idx)->word,
                                    memory_order_relaxed);
        if ((MP_W_GEN(word) & 0xffff) != ((key >> 16) & 0xffff) ||
            MP_W_ST(word) == MP_ST_FREE)
            continue;
        *bytes += MP_LD(mp_entry_at(p, idx)->len);
        ks->k[w++] = key;
    }
    ks->n = w;
    return w - from;
}

typedef struct pinfig {
    uint64_t pins, objects, bytes, refs;
} pinfig;

/* Read slot @p s's cells: its pin keys go to @p ks (distinct), the rest
 * to @p f. */
static int scan_cells(mempool *p, int s, keyset *ks, pinfig *f)
{
    _Atomic uint64_t *t = p->cells + (uint64_t)s * p->cell_per;
    unsigned n = p->ovf_base;
    size_t from = ks->n;
    if (ld(&p->slots[s].overflow_used))
        n = p->cell_per;
    memset(f, 0, sizeof(*f));
    for (unsigned i = 0; i < n; i++) {
        uint64_t v = ld(&t[i]);
        if (!v)
            continue;
        if (v >> 63) {
            f->refs += v & 0xffff;
        } else {
            f->pins++;
            if (keys_add(ks, v & ~(uint64_t)0xffff))
                return -ENOMEM;
        }
    }
    f->objects = keys_unique(p, ks, from, &f->bytes);
    return 0;
}

/* ---- one worker --------------------------------------------------------- */

static void worker_fill(mempool *p, int s, const pinfig *pf,
                        struct mempool_worker_stats *w)
{
    mp_slot *sl = &p->slots[s];
    memset(w, 0, sizeof(*w));
    w->size = sizeof(*w);
    w->version = 1;
    w->id = s + 1;
    w->state = slot_state(p, s);
    if (w->state == MEMPOOL_WORKER_FREE)
        return;
    w->pid = sl->pid;
    w->spiller = atomic_load(&p->h->spiller) == (uint32_t)s + 1;
    w->attached_ns = sl->claimed_ns;
    mempool__charged(p, s, &w->objects, &w->resident_bytes);
    w->max_memsize = ld(&sl->max_memsize);
    w->disk_bytes = ld(&sl->disk_bytes);
    w->max_disksize = ld(&sl->max_disksize);
    w->pins = pf->pins;
    w->pinned_objects = pf->objects;
    w->pinned_bytes = pf->bytes;
    w->references = pf->refs;
#define COPY(name, prom, div, help) w->name = ld(&sl->name);
    MP_COUNTERS(COPY)
#undef COPY
    w->errors = w->set_errors + w->spill_errors + w->corrupt_files;
    snprintf(w->io_backend, sizeof(w->io_backend), "%s",
             backend_name(atomic_load_explicit(&sl->io_backend,
                                               memory_order_relaxed)));
}

int mempool_worker_stats_get(mempool *p, int worker,
                             struct mempool_worker_stats *out)
{
    keyset ks = { 0 };
    pinfig pf = { 0 };
    int rc = mempool__handle_ok(p);
    if (rc)
        return rc;
    if (!out || worker < 1 || worker > MP_WORKERS)
        return -EINVAL;
    mempool__handback_collect(p, false); /* deleted ones: not counted */
    if (atomic_load(&p->h->active) >> (worker - 1) & 1)
        rc = scan_cells(p, worker - 1, &ks, &pf);
    free(ks.k);
    if (rc)
        return rc;
    worker_fill(p, worker - 1, &pf, out);
    return 0;
}

/* ---- the pool ----------------------------------------------------------- */

/* Longest run of 1-bits (free pages) in the page bitmap. */
static uint64_t largest_free_run(mempool *p)
{
    uint64_t run = 0, best = 0;
    for (uint64_t i = 0; i < p->npages; i += 64) {
        uint64_t w = ld(&p->bitmap[i / 64]);
        unsigned nb = p->npages - i < 64 ? (unsigned)(p->npages - i) : 64;
        if (nb == 64 && w == ~UINT64_C(0)) {
            run += 64;
            continue;
        }
        for (unsigned b = 0; b < nb; b++) {
            if (w >> b & 1) {
                run++;
            } else {
                best = run > best ? run : best;
                run = 0;
            }
        }
    }
    return run > best ? run : best;
}

/* Object states from the table, up to its high-water mark. */
static void scan_table(mempool *p, struct mempool_stats *s)
{
    uint64_t hwm = atomic_load_explicit(&p->h->hwm, memory_order_relaxed);
    for (uint64_t i = 0; i < hwm && i < p->ntab; i++) {
        uint64_t w = atomic_load_explicit(&mp_entry_at(p, (uint32_t)i)->word,
                                          memory_order_relaxed);
        unsigned st = MP_W_ST(w), fl = MP_W_FL(w);
        if (st == MP_ST_FREE || st == MP_ST_RETIRED || st == MP_ST_FREEING ||
            st == MP_ST_CACHED)
            continue;
        s->reserved_objects += st == MP_ST_ALLOC;
        s->deleted_objects += st == MP_ST_DELETED;
        s->mem_objects += !(fl & MP_F_NOMEM);
        s->disk_objects += (fl & MP_F_ONDISK) != 0;
        s->disk_only_objects += (fl & MP_F_ONDISK) && (fl & MP_F_NOMEM);
    }
}

/* Pins of every attached worker, pinned objects counted once. */
static int scan_pins(mempool *p, struct mempool_stats *s)
{
    uint64_t act = atomic_load(&p->h->active);
    keyset ks = { 0 };
    int rc = 0;
    for (int i = 0; i < MP_WORKERS && !rc; i++) {
        pinfig f;
        if ((act >> i & 1) && !(rc = scan_cells(p, i, &ks, &f)))
            s->pins += f.pins;
    }
    if (!rc)
        s->pinned_objects = keys_unique(p, &ks, 0, &s->pinned_bytes);
    free(ks.k);
    return rc;
}

/* Free space of the spill directory's file system (it may not exist yet:
 * then of its nearest existing parent). */
static void spill_fs(const char *dir, struct mempool_stats *s)
{
    char path[sizeof(s->spill_dir)];
    struct statvfs v;
    snprintf(path, sizeof(path), "%s", dir);
    while (path[0] == '/' && statvfs(path, &v) < 0) {
        char *slash = strrchr(path, '/');
        if (slash == path) {
            path[1] = '\0';
            if (statvfs(path, &v) < 0)
                return;
            break;
        }
        *slash = '\0';
    }
    if (path[0] != '/')
        return;
    s->fs_free_bytes = (uint64_t)v.f_bavail * v.f_frsize;
    s->fs_total_bytes = (uint64_t)v.f_blocks * v.f_frsize;
}

/* The engine in use: ours, else the spiller's, else any worker's. */
static void pool_backend(mempool *p, struct mempool_stats *s)
{
    uint32_t code = 0, sp = atomic_load(&p->h->spiller);
    pthread_mutex_lock(&p->spill->io_lock);
    if (p->spill->io)
        snprintf(s->io_backend, sizeof(s->io_backend), "%s",
                 mempool__io_backend(p->spill->io));
    pthread_mutex_unlock(&p->spill->io_lock);
    if (s->io_backend[0]) {
        memcpy(s->pool_io_backend, s->io_backend, sizeof(s->io_backend));
        return;
    }
    if (sp >= 1 && sp <= MP_WORKERS)
        code = atomic_load(&p->slots[sp - 1].io_backend);
    for (int i = 0; i < MP_WORKERS && !code; i++)
        if (atomic_load(&p->h->active) >> i & 1)
            code = atomic_load(&p->slots[i].io_backend);
    snprintf(s->pool_io_backend, sizeof(s->pool_io_backend), "%s",
             backend_name(code));
}

static void sum_slots(mempool *p, struct mempool_stats *s)
{
    uint64_t ev[MP_NCOUNTERS];
    uint64_t act = atomic_load(&p->h->active);
    for (int k = 0; k < MP_NCOUNTERS; k++)
        ev[k] = ld(&p->h->retired[k]);
    s->resident_bytes = ld(&p->h->pool_resident);   /* the pool's own */
    s->disk_bytes = ld(&p->h->pool_disk);
    for (int i = 0; i < MP_WORKERS; i++) {
        mp_slot *w = &p->slots[i];
        uint64_t objs, res;
        mempool__charged(p, i, &objs, &res);
        s->resident_bytes += res;
        s->disk_bytes += ld(&w->disk_bytes);
        for (int k = 0; k < MP_NCOUNTERS; k++)
            ev[k] += ld(mempool__counter(w, k));
        if (act >> i & 1) {
            s->workers++;
            if (slot_state(p, i) == MEMPOOL_WORKER_ALIVE)
                s->workers_alive++;
            else
                s->workers_dead++;
        }
    }
#define COPY(name, prom, div, help) s->name = ev[MP_CTR_##name];
    MP_COUNTERS(COPY)
#undef COPY
}

static int count_chan(const mempool_chan_info *ci, void *arg)
{
    (void)ci;
    ++*(uint64_t *)arg;
    return 0;
}

/* Names, flight and channels: read like the rest (relaxed, no locks). */
static void handoff_figures(mempool *p, struct mempool_stats *s)
{
    mp_hand *hd = p->hand;
    s->names = mempool__names_count(p);
    s->names_capacity = p->nnames;
    s->flight_refs = mempool__flight_count(p);
    s->flight_given = ld(&hd->flight_given);
    s->flight_taken = ld(&hd->flight_taken);
    s->flight_expired = ld(&hd->flight_expired);
    (void)mempool_chan_list(p, count_chan, &s->channels);
    for (uint32_t b = 0; b < p->nbox; b++)
        s->items_used += ld(&p->boxw[b]) != 0;
    s->items_capacity = p->nbox;
    s->orphans_freed = ld(&hd->boxes_gc);
    s->get_waits = ld(&hd->get_waits);
}

int mempool_stats_get(mempool *p, struct mempool_stats *s)
{
    mp_header *h;
    uint64_t cached_n, cached_bytes;
    uint32_t sp;
    int rc = mempool__handle_ok(p);
    if (rc)
        return rc;
    if (!s)
        return -EINVAL;
    mempool__handback_collect(p, false); /* every delete that returned */
    h = p->h;
    memset(s, 0, sizeof(*s));
    s->size = sizeof(*s);
    s->version = 1;
    snprintf(s->name, sizeof(s->name), "%s", p->name);
    memcpy(s->uuid, h->uuid, sizeof(s->uuid));
    s->created_ns = h->created_ns;
    s->policy = h->policy;
    s->arena_bytes = p->size;
    s->data_bytes = p->npages * MP_PAGE;
    /* Entries and blocks in workers' allocator caches hold no object:
     * counted as free here (any set can have them, wcache.c). */
    mempool__cached(p, &cached_n, &cached_bytes);
    s->used_bytes = ld(&h->used_bytes);
    s->used_bytes -= cached_bytes < s->used_bytes ? cached_bytes
                                                  : s->used_bytes;
    s->free_bytes = s->used_bytes < s->data_bytes
                        ? s->data_bytes - s->used_bytes : 0;
    s->largest_free_bytes = largest_free_run(p) * MP_PAGE;
    s->objects = ld(&h->entries_used);
    s->objects -= cached_n < s->objects ? cached_n : s->objects;
    s->max_objects = p->ntab;
    s->max_refs = h->max_refs;
    s->max_workers = MP_WORKERS;
    sum_slots(p, s);
    scan_table(p, s);
    if ((rc = scan_pins(p, s)))
        return rc;
    sp = atomic_load(&h->spiller);
    s->spiller = (int32_t)sp;
    s->spiller_alive = sp >= 1 && sp <= MP_WORKERS &&
                       slot_state(p, (int)sp - 1) == MEMPOOL_WORKER_ALIVE;
    snprintf(s->spill_dir, sizeof(s->spill_dir), "%s", p->spill->spill_dir);
    spill_fs(p->spill->spill_dir, s);
    pool_backend(p, s);
#define COPY(name, field, help) s->name = ld(&h->field);
    MP_POOL_COUNTERS(COPY)
#undef COPY
    handoff_figures(p, s);
    return 0;
}
