/* SPDX-License-Identifier: MIT */
/*
 * spill.c - giving objects a file ("clean copy"), evicting them from memory,
 * and choosing victims when a worker's limit or the arena runs short.
 *
 * Writing a file: pin the object, CAS F_WRITING (who = us) into its word,
 * hand header + bytes to this handle's I/O engine (which writes
 * "<idx>-<gen>.tmp" and renames it), then, under the allocator lock, swap
 * F_WRITING for F_ONDISK and charge the owner's disk bytes. If the object
 * was deleted meanwhile, the writer removes the file. A writer that dies is
 * rolled back by the reaper (tmp file removed, flag cleared).
 *
 * Evicting a clean object: CAS LIVE -> EVICTING(us), scan the pin cells;
 * if anyone pins it, go back to LIVE, else free its block under the lock
 * and leave it SPILLED. Readers that meet EVICTING wait for the verdict.
 * Memory is never freed before the file is complete.
 *
 * Victims: the owner's (or, under arena pressure, anyone's) unpinned
 * resident objects in policy order - least recently used first, or most
 * recently used first for MRU - until their bytes cover the need. victim.c
 * chooses them (exact on small pools, as MemPool.jl's scenarios demand;
 * sampled on large ones); a set waits a bounded time for pins to go, then
 * fails with -ENOMEM, never overcommitting.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "entry.h"
#include "failpoint.h"
#include "internal.h"
#include "spill.h"
#include "spillstate.h"
#include "spilldir.h"
#include "victim.h"

/* ---- directory and names ----------------------------------------------- */

static void file_name(char *buf, size_t n, uint32_t idx, uint32_t gen)
{
    snprintf(buf, n, "%u-%u", idx, gen);
}

int mempool__file_path(mempool *p, uint32_t idx, uint32_t gen, char *buf,
                       size_t len)
{
    int n = snprintf(buf, len, "%s/%u-%u", p->spill->spill_dir, idx, gen);
    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Is our pool still linked in /dev/shm (not destroyed)? A destroyed
 * pool's handle stops touching its directory: a re-created pool may be
 * using it (only when the user kept own files there, see spilldir.c). */
static bool pool_linked(mempool *p)
{
    struct stat st;
    return fstat(p->fd, &st) == 0 && st.st_nlink > 0;
}

/* Open and prove the directory (made here if it is missing and ours to
 * make). Caller holds io_lock or is the only thread (open). */
static void open_dir(mempool *p)
{
    bool made = false;
    int fd, up, rc = mempool__dir_open(p->spill->spill_dir, p->name, p->h->uuid,
                                       p->owner_uid, (mode_t)p->pool_mode,
                                       &fd, &up);
    if (rc == -ENOENT && !p->observer && p->owner_uid == geteuid() &&
        pool_linked(p) &&
        (rc = mempool__dir_make(p->spill->spill_dir, p->name, p->h->uuid,
                                (mode_t)p->pool_mode, p->owner_gid,
                                &made)) == 0) {
        if (made)
            p->h->dir_flags |= MP_DIR_MADE_BASE;
        rc = mempool__dir_open(p->spill->spill_dir, p->name, p->h->uuid,
                               p->owner_uid, (mode_t)p->pool_mode, &fd, &up);
    }
    p->spill->dir_err = rc;
    if (rc == 0) {
        p->spill->updfd = up;
        /* Readers load dirfd without io_lock: publish it last. */
        __atomic_store_n(&p->spill->dirfd, fd, __ATOMIC_RELEASE);
    }
}

/* The spill directory (opened at attach; if that failed, tried again here,
 * so a directory made writable later is used), or why there is none:
 * spills and reads of files are then refused, objects stay in memory. */
int mempool__spill_dirfd(mempool *p)
{
    int fd = __atomic_load_n(&p->spill->dirfd, __ATOMIC_ACQUIRE), rc;
    if (fd < 0) {
        pthread_mutex_lock(&p->spill->io_lock);
        if (p->spill->dirfd < 0)
            open_dir(p);
        fd = p->spill->dirfd;
        rc = p->spill->dir_err;
        pthread_mutex_unlock(&p->spill->io_lock);
        if (fd < 0)
            return rc;
    }
    return pool_linked(p) ? fd : -ENOENT;
}

static int ensure_dir(mempool *p)
{
    return mempool__spill_dirfd(p);
}

/* Record in our slot which backend our engine uses (stats read it). */
static void note_backend(mempool *p)
{
    const char *b = mempool__io_backend(p->spill->io);
    if (p->slot >= 0)
        atomic_store(&p->slots[p->slot].io_backend,
                     strcmp(b, "io_uring") == 0 ? 1u : 2u);
}

/* This handle's I/O engine, started at first use. */
int mempool__io_get(mempool *p)
{
    int rc = 0;
    pthread_mutex_lock(&p->spill->io_lock);
    if (!p->spill->io && (rc = mempool__io_open(&p->spill->io, p->spill->io_mode == MEMPOOL_IO_PWRITE
                                                     ? MP_IO_PWRITE
                                                     : MP_IO_AUTO)) == 0)
        note_backend(p);
    pthread_mutex_unlock(&p->spill->io_lock);
    return rc;
}

void mempool__unlink_files(mempool *p, uint32_t idx, uint32_t gen)
{
    char name[48];
    int fd = ensure_dir(p);
    if (fd < 0)
        return;
    file_name(name, sizeof(name), idx, gen);
    unlinkat(fd, name, 0);
    snprintf(name, sizeof(name), "%u-%u.tmp", idx, gen);
    unlinkat(fd, name, 0);
}

/* ---- setup -------------------------------------------------------------- */

/* Make the handle's spill state and know the spill directory before
 * anything can unlink files in it (the slot claim may reap a dead worker).
 * An observer only learns the directory's name: it never makes or opens
 * it at attach. */
int mempool__spill_bind(mempool *p)
{
    struct mp_spill_state *s;
    if (!memchr(p->h->spill_dir, '\0', MP_PATH_MAX))
        return MEMPOOL_ECORRUPT;
    if (!(s = calloc(1, sizeof(*s))))
        return -ENOMEM;
    memcpy(s->spill_dir, p->h->spill_dir, MP_PATH_MAX);
    pthread_mutex_init(&s->io_lock, NULL);
    s->dirfd = s->updfd = -1;
    s->dir_err = -EPERM;            /* observers never touch files */
    p->spill = s;
    if (p->observer)
        return 0;
    if (s->spill_dir[0] != '/')
        return MEMPOOL_ECORRUPT;    /* the caller's spill_fini frees s */
    s->file_mode = (uint32_t)mempool__file_mode((mode_t)p->pool_mode);
    open_dir(p);
    return 0;
}

int mempool__spill_init(mempool *p, const mempool_options *o, bool created)
{
    const char *env = getenv("MEMPOOL_IO");
    mp_slot *s = &p->slots[p->slot];

    p->spill->io_mode = o->io_mode;
    if (env && strcmp(env, "pwrite") == 0)
        p->spill->io_mode = MEMPOOL_IO_PWRITE;
    p->evict_wait_ms = o->evict_wait_ms;
    p->spill->verify = !(o->flags & MEMPOOL_OPEN_NOVERIFY);
    atomic_store(&s->max_memsize, o->max_memsize ? o->max_memsize
                                                 : p->h->default_memsize);
    atomic_store(&s->max_disksize, o->max_disksize);
    (void)created;                 /* the directory is new (spilldir.c) */
    return 0;
}

/* Stop the engine, close the directory, free the state (NULL-safe: a
 * failed open may not have made it). After the slot is left: a reap may
 * unlink files. */
void mempool__spill_fini(mempool *p)
{
    struct mp_spill_state *s = p->spill;
    if (!s)
        return;
    if (s->io)
        mempool__io_close(s->io);
    if (s->dirfd >= 0)
        close(s->dirfd);
    if (s->updfd >= 0)
        close(s->updfd);
    mempool__maps_free(p);
    pthread_mutex_destroy(&s->io_lock);
    free(s);
    p->spill = NULL;
}

/* At close: if our pool was destroyed (its name is gone or names another
 * incarnation), files our handle's pool still had - some written after the
 * destroy - go now, with the directory (spilldir.c). */
void mempool__spill_close(mempool *p)
{
    char path[MEMPOOL_NAME_MAX + 32];
    struct stat a, b;
    if (p->spill->dirfd < 0 || p->spill->updfd < 0 || fstat(p->fd, &a) < 0 ||
        mempool__shm_path(p->name, path, sizeof(path)))
        return;
    if (stat(path, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev)
        return;                                /* still the live pool */
    if (stat(path, &b) < 0 && errno != ENOENT)
        return;
    mempool__dir_release(p->spill->updfd, p->name, p->spill->dirfd, p->owner_uid,
                         p->h->uuid);
}

/* ---- clean copies ------------------------------------------------------- */

/* Reserve @p len bytes of the owner's disk limit for a file being written;
 * false if it would pass the limit. finish() gives the reservation back. */
static bool disk_reserve(mp_slot *o, uint64_t len)
{
    uint64_t lim = atomic_load(&o->max_disksize);
    uint64_t pend = atomic_load(&o->disk_pending);
    do {
        if (lim && atomic_load(&o->disk_bytes) + pend + len > lim)
            return false;
    } while (!atomic_compare_exchange_weak(&o->disk_pending, &pend,
                                           pend + len));
    return true;
}

static mp_slot *owner_of(mempool *p, const mp_entry *e)
{
    uint16_t o = MP_LD(e->owner);
    return o >= 1 && o <= MP_WORKERS ? &p->slots[o - 1] : NULL;
}

/* Pin (idx) and mark it F_WRITING by us. 1 claimed, 0 already clean,
 * -EAGAIN another writer is at it, -ENOENT gone, -ENOSPC disk limit. */
static int claim(mempool *p, uint32_t idx, uint32_t *gen, uint64_t *tok)
{
    mp_entry *e = mp_entry_at(p, idx);
    uint64_t w = atomic_load(&e->word);
    mp_slot *o;
    int rc;

    *gen = MP_W_GEN(w);
    if (MP_W_ST(w) == MP_ST_SPILLED || MP_W_ST(w) == MP_ST_EVICTING)
        return 0;                        /* both imply a complete file */
    if (MP_W_ST(w) != MP_ST_LIVE)
        return -ENOENT;
    if ((rc = mempool__pin(&p->core, idx, *gen, tok)))
        return rc;
    o = owner_of(p, e);
    if (o && !disk_reserve(o, MP_LD(e->len))) {
        mempool__unpin(p, idx, *gen, *tok);
        return -ENOSPC;
    }
    rc = mempool__entry_begin_write(e, *gen, (unsigned)p->slot + 1);
    if (rc == 1) {
        MP_FP(spill_claimed);
        return 1;
    }
    if (o)
        atomic_fetch_sub(&o->disk_pending, MP_LD(e->len));
    mempool__unpin(p, idx, *gen, *tok);
    return rc;
}

/* The write of (idx, gen) ended with @p result: publish or roll back.
 * Publishing charges the owner's disk bytes, under the allocator lock;
 * that lock is waited for the peer bound only, as everywhere: its holder
 * may be stopped, or the word may name a live thread that never lets go
 * (planted by a user who may write the pool: the write's end waited for
 * ever, check_lock_owner planted_live). Rolling back moves no charge
 * (F_ONDISK neither gained nor lost), so it needs no lock: the write is
 * lost, the object stays as it was, the caller hears the lock's error.
 * A write that does not land leaves no file, and its files go while
 * F_WRITING is still ours: once it is dropped another worker may claim
 * (idx, gen) and write these very names - an unlink after that removed
 * its complete file under its F_ONDISK, and the object, evicted on the
 * word's say-so, was lost (check_review14 rollback_unlink).
 * Returns @p result, or that error. */
static int finish(mempool *p, uint32_t idx, uint32_t gen, int result)
{
    mp_entry *e = mp_entry_at(p, idx);
    uint64_t w, nw;
    int rc;

    if (result)
        mempool__unlink_files(p, idx, gen);
    if ((rc = mempool__lock(p))) {
        if (!result)
            mempool__unlink_files(p, idx, gen);
        result = rc;
    }
    nw = mempool__entry_end_write(e, result == 0, &w);
    if (rc == 0)
        mempool__charge_ondisk(p, idx, w, nw);
    if (owner_of(p, e))
        atomic_fetch_sub(&owner_of(p, e)->disk_pending, e->len);
    if (rc == 0)
        mempool__unlock(p);
    MP_FP(spill_ended);
    /* Deleted meanwhile: no writer claims a deleted object, and our pin
     * keeps its generation (so these names) until we unpin. */
    if (!result && MP_W_ST(w) != MP_ST_LIVE)
        mempool__unlink_files(p, idx, gen);
    return result;
}

/* Describe the file of (idx, gen); false if the entry's block does not lie
 * inside the data area (damaged arena: nothing is read). */
static bool fill_req(mempool *p, mp_io_req *r, char *name, uint32_t idx,
                     uint32_t gen)
{
    mp_entry *e = mp_entry_at(p, idx);
    uint64_t off = e->off, len = e->len;
    memset(r, 0, sizeof(*r));
    if ((off && (off < p->data_off || off > p->size ||
                 len > p->size - off)) || (!off && len))
        return false;
    file_name(name, 48, idx, gen);
    r->dirfd = p->spill->dirfd;
    r->mode = p->spill->file_mode;
    r->name = name;
    r->len = len;
    r->payload = p->base + (off ? off : p->data_off);
    mempool__file_header(&r->hdr, p->h->uuid, idx, gen, e->type, 0, len);
    return true;
}

static void count_write(mempool *p, const mp_io_req *r)
{
    mp_slot *s = &p->slots[p->slot];
    if (r->result) {
        atomic_fetch_add(&s->spill_errors, 1);
        return;
    }
    atomic_fetch_add(&s->spills, 1);
    atomic_fetch_add(&s->spill_bytes, r->len);
    atomic_fetch_add(&s->spill_ns, r->ns);
}

/* The per-entry state of one write_clean() batch. */
typedef struct batch {
    mp_io_req *reqs, **rp;       /* rp: the first q of reqs to submit */
    char (*names)[48];
    uint32_t *gens;
    uint64_t *toks;
    unsigned q;
} batch;

static void batch_free(batch *b)
{
    free(b->reqs);
    free(b->rp);
    free(b->names);
    free(b->gens);
    free(b->toks);
}

static int batch_alloc(batch *b, unsigned n)
{
    *b = (batch){ calloc(n, sizeof(*b->reqs)), calloc(n, sizeof(*b->rp)),
                  calloc(n, 48), calloc(n, sizeof(*b->gens)),
                  calloc(n, sizeof(*b->toks)), 0 };
    if (b->reqs && b->rp && b->names && b->gens && b->toks)
        return 0;
    batch_free(b);
    return -ENOMEM;
}

/* Claim each entry and describe its file; res[i] as claim() says.
 * Returns the first error other than -EAGAIN, or 0. */
static int batch_claim(mempool *p, batch *b, const uint32_t *idx, unsigned n,
                       int *res)
{
    int first = 0;
    for (unsigned i = 0; i < n; i++) {
        res[i] = claim(p, idx[i], &b->gens[i], &b->toks[i]);
        if (res[i] == 1) {
            if (fill_req(p, &b->reqs[i], b->names[i], idx[i], b->gens[i]))
                b->rp[b->q++] = &b->reqs[i];
            else
                b->reqs[i].result = MEMPOOL_ECORRUPT;
        } else if (res[i] < 0 && res[i] != -EAGAIN && !first) {
            first = res[i];
        }
    }
    return first;
}

/* Publish or roll back each claimed write (@p rc: the submit's error, if
 * any) and drop its pin; res[i] becomes its result. Returns the first. */
static int batch_finish(mempool *p, batch *b, const uint32_t *idx,
                        unsigned n, int *res, int rc)
{
    int first = 0;
    for (unsigned i = 0; i < n; i++) {
        mp_io_req *r = &b->reqs[i];
        if (res[i] != 1)
            continue;
        if (rc)
            r->result = rc;
        if (!r->result)
            r->result = MP_FP(spill_written);
        count_write(p, r);              /* the I/O's own outcome */
        r->result = finish(p, idx[i], b->gens[i], r->result);
        mempool__unpin(p, idx[i], b->gens[i], b->toks[i]);
        res[i] = r->result;
        if (res[i] && !first)
            first = res[i];
    }
    return first;
}

static int fail_all(int *res, unsigned n, int rc)
{
    for (unsigned i = 0; i < n; i++)
        res[i] = rc;
    return rc;
}

/*
 * Give each of the @p n entries a complete file. res[i]: 0 done (or was
 * already clean), -EAGAIN another worker is writing it, or an error.
 * Returns the first error, or 0.
 */
int mempool__write_clean(mempool *p, const uint32_t *idx, unsigned n,
                         int *res)
{
    batch b;
    int rc, first;

    if ((rc = batch_alloc(&b, n)))
        return fail_all(res, n, rc);
    if ((rc = ensure_dir(p)) < 0)       /* no directory: refused, counted */
        atomic_fetch_add(&p->slots[p->slot].spill_refused, n);
    else
        rc = mempool__io_get(p);
    if (rc < 0) {
        batch_free(&b);
        return fail_all(res, n, rc);
    }
    first = batch_claim(p, &b, idx, n, res);
    if (b.q && (rc = mempool__io_submit(p->spill->io, b.rp, b.q)) == 0)
        mempool__io_wait(p->spill->io, b.rp, b.q);
    rc = batch_finish(p, &b, idx, n, res, rc);
    batch_free(&b);
    return first ? first : rc;
}

/* ---- eviction ------------------------------------------------------------ */

/* Free the memory of clean object (idx, gen). 0 done (or already spilled),
 * -EBUSY pinned, -EAGAIN no complete file yet, -ENOENT gone. */
int mempool__evict(mempool *p, uint32_t idx, uint32_t gen)
{
    mp_entry *e = mp_entry_at(p, idx);
    uint64_t w, ev;
    int rc = mempool__entry_begin_evict(e, gen, (unsigned)p->slot + 1, &w, &ev);

    if (rc != 1)
        return rc;
    MP_FP(evict_marked);
    if (mempool__cell_count(&p->core, MP_PIN, idx, gen, true)) {
        mempool__entry_cancel_evict(e, w);
        rc = -EBUSY;
    } else if ((rc = mempool__lock(p))) {
        mempool__entry_cancel_evict(e, w);
    } else {
        mempool__evict_locked(p, idx, ev);
        mempool__unlock(p);
    }
    /* An unref that met EVICTING left its refcount check to us (entry.c):
     * run it after our last store, so it sees the reference gone. */
    mempool__entry_refcheck(p, idx, gen);
    return rc;
}

/* ---- victims (chosen by victim.c) -------------------------------------- */

/* Delete a DESTROY_ON_EVICT victim (never while pinned). */
static uint64_t destroy_victim(mempool *p, uint32_t idx)
{
    mp_entry *e = mp_entry_at(p, idx);
    uint64_t w = atomic_load(&e->word), len = MP_LD(e->len);
    if (MP_W_ST(w) != MP_ST_LIVE || MP_W_RC(w) ||
        mempool__cell_count(&p->core, MP_PIN, idx, MP_W_GEN(w), true))
        return 0;
    if (!mempool__entry_destroy(e, w))
        return 0;
    mempool__entry_reclaim(p, idx);
    atomic_fetch_add(&p->slots[p->slot].destroys, 1);
    return len;
}

/* Write and evict the victims in @p v[0..n); returns bytes freed. */
static uint64_t spill_batch(mempool *p, const mp_victim *v, unsigned n,
                            int *err)
{
    uint32_t *idx = malloc(n * sizeof(*idx));
    int *res = malloc(n * sizeof(*res));
    uint64_t freed = 0;
    if (!idx || !res) {
        *err = -ENOMEM;
        n = 0;
    }
    for (unsigned i = 0; i < n; i++)
        idx[i] = v[i].idx;
    if (n && (*err = mempool__write_clean(p, idx, n, res)) == -EAGAIN)
        *err = 0;
    for (unsigned i = 0; i < n; i++) {
        uint32_t gen = MP_W_GEN(atomic_load(&mp_entry_at(p, idx[i])->word));
        if (res[i] == 0 && mempool__evict(p, idx[i], gen) == 0)
            freed += v[i].len;
    }
    free(idx);
    free(res);
    return freed;
}

/* Take victims from @p vs in order until their bytes cover the need,
 * skipping pinned ones (*pinned counts them), into @p w; the number used. */
static size_t take_victims(mempool *p, const mp_victims *vs, mp_victim *w,
                           size_t *k, uint64_t *freed, size_t *pinned)
{
    uint64_t got = 0;
    size_t i, taken = 0;
    for (i = 0; i < vs->n && got < vs->need && taken < vs->take; i++) {
        const mp_victim *v = &vs->v[i];
        uint32_t gen = MP_W_GEN(atomic_load(&mp_entry_at(p, v->idx)->word));
        if (mempool__cell_count(&p->core, MP_PIN, v->idx, gen, true)) {
            ++*pinned;                       /* pinned: skip, never wait */
            continue;
        }
        if (v->destroy)
            *freed += destroy_victim(p, v->idx);
        else
            w[(*k)++] = *v;
        got += v->len;
        taken++;
    }
    return i;
}

/* One pass: pick victims covering @p need and spill them. When every
 * listed candidate was pinned and there are more, list more. */
static uint64_t room_pass(mempool *p, int owner, uint64_t need, int *err)
{
    size_t keep = MP_VICTIM_KEEP;
    for (;;) {
        mp_victims vs;
        mp_victim *w;
        size_t k = 0, pinned = 0, used;
        uint64_t freed = 0;

        if ((*err = mempool__victims_pick(p, owner, need, keep, &vs)))
            return 0;
        if (!(w = malloc((vs.n ? vs.n : 1) * sizeof(*w)))) {
            mempool__victims_done(p, &vs, 0);
            *err = -ENOMEM;
            return 0;
        }
        used = take_victims(p, &vs, w, &k, &freed, &pinned);
        if (k)
            freed += spill_batch(p, w, (unsigned)k, err);
        free(w);
        if (freed || k || !pinned || !vs.dropped || keep >= SIZE_MAX / 4) {
            mempool__victims_done(p, &vs, used);
            return freed;
        }
        keep = 2 * (keep + pinned);
        mempool__victims_done(p, &vs, used);
    }
}

/*
 * Free at least @p need resident bytes of worker @p owner (-1: anyone's),
 * waiting (if @p wait) up to evict_wait_ms for pinned objects to go.
 * Returns 0 when something was freed, -ENOMEM when nothing could be, or the
 * write error (-ENOSPC, -EIO) that stopped it.
 */
int mempool__make_room(mempool *p, int owner, uint64_t need, bool wait)
{
    uint64_t deadline = mempool__now_ns() +
                        (wait ? p->evict_wait_ms * 1000000ull : 0);
    for (;;) {
        int err = 0;
        uint64_t freed = room_pass(p, owner, need, &err);
        if (freed)
            return 0;
        if (err && err != -EBUSY)
            return err;
        if (mempool__now_ns() >= deadline)
            return -ENOMEM;
        nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
    }
}

/* ---- what core calls through p->spill_ops (pool.c installs it) --------- */

/* Through the proven directory only (observers such as fsck too): a path
 * from the header is never opened on trust. */
static int spill_file_verify(mempool *p, uint32_t idx, uint32_t gen)
{
    char name[48];
    mp_file_map m;
    int rc = mempool__spill_dirfd(p);
    if (rc < 0)
        return rc;
    file_name(name, sizeof(name), idx, gen);
    if ((rc = mempool__file_map(rc, name, p->h->uuid, idx, gen, true,
                                &m)) == 0)
        mempool__file_unmap(&m);
    return rc;
}

const mp_spill_ops mempool__spill_ops = {
    .make_room = mempool__make_room,
    .evict = mempool__evict,
    .unlink_files = mempool__unlink_files,
    .maps_sweep = mempool__maps_sweep,
    .map_entry = mempool__map_entry,
    .map_put = mempool__map_put,
    .file_verify = spill_file_verify,
    .make_dir = mempool__dir_make,
};
