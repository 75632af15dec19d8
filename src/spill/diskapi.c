/* SPDX-License-Identifier: MIT */
/*
 * diskapi.c - the explicit disk operations of MemPool.jl: move_to_disk,
 * copy_to_disk, save_to_disk, plus limits and flush.
 *
 * move and copy reuse the spill machinery (spill.c): a file is written
 * once and then kept while the object lives, so both are idempotent and a
 * later eviction never rewrites it (MemPool.jl #39). save_to_disk writes a
 * separate, durable file that mempool never removes.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "entry.h"
#include "internal.h"
#include "spill.h"
#include "spillstate.h"

/* The slot field behind limit @p which, or NULL for an unknown one. */
static _Atomic uint64_t *limit_field(mempool *p, unsigned which)
{
    switch (which) {
    case MEMPOOL_LIMIT_MEMSIZE:
        return &p->slots[p->slot].max_memsize;
    case MEMPOOL_LIMIT_DISKSIZE:
        return &p->slots[p->slot].max_disksize;
    default:
        return NULL;
    }
}

int mempool_limit_set(mempool *p, unsigned which, uint64_t bytes)
{
    _Atomic uint64_t *f;
    int rc = mempool__writer_ok(p);
    if (rc)
        return rc;
    if (!(f = limit_field(p, which)))
        return -EINVAL;
    atomic_store(f, bytes);
    return 0;
}

int mempool_limit_get(mempool *p, unsigned which, uint64_t *bytes)
{
    _Atomic uint64_t *f;
    int rc = mempool__writer_ok(p);
    if (rc)
        return rc;
    if (!bytes || !(f = limit_field(p, which)))
        return -EINVAL;
    *bytes = atomic_load(f);
    return 0;
}

static int fill_ref(mempool *p, uint32_t idx, uint32_t gen,
                    mempool_fileref *out)
{
    if (!out)
        return 0;
    memset(out->path, 0, sizeof(out->path));
    out->len = MP_LD(mp_entry_at(p, idx)->len);
    return mempool__file_path(p, idx, gen, out->path, sizeof(out->path));
}

/* Make sure (idx, gen) has a complete file, waiting out another writer
 * (bounded: -EAGAIN if it is stopped). Our own write's end may have
 * waited out the bound for the allocator lock and rolled back (-EAGAIN
 * too, spill.c finish): the bound runs from the start, so that is not
 * tried again 64 times (the spins before mempool__wait_who's own). */
static int ensure_file(mempool *p, uint32_t idx)
{
    mp_wait wt = { 0, mempool__now_ns() + mempool__wait_bound_ns(p) };
    for (;;) {
        int res, rc = mempool__write_clean(p, &idx, 1, &res);
        uint64_t w;
        if (rc == 0 && res == -EAGAIN)
            rc = -EAGAIN;            /* another worker is writing it */
        if (rc != -EAGAIN || mempool__now_ns() >= wt.deadline)
            return rc;
        w = mp_entry_word(mp_entry_at(p, idx));
        if ((rc = mempool__wait_who(p, MP_W_WHO(w), idx, &wt)))
            return rc;
    }
}

/* Evict now, or - if pinned - flag it so the last release evicts it. Waits
 * (bounded) for another evictor's verdict or a refcount check. */
static int evict_or_flag(mempool *p, uint32_t idx, uint32_t gen)
{
    mp_entry *e = mp_entry_at(p, idx);
    mp_wait wt = { 0, 0 };
    for (;;) {
        uint64_t w;
        int rc = mempool__evict(p, idx, gen);
        if (rc != -EBUSY)
            return rc;
        w = mp_entry_word(e);
        if (MP_W_GEN(w) == gen &&
            (MP_W_ST(w) == MP_ST_EVICTING || MP_W_RC(w))) {
            if ((rc = mempool__wait_who(
                     p, MP_W_RC(w) ? MP_W_RC(w) : MP_W_WHO(w), idx, &wt)))
                return rc;
            continue;
        }
        if (!mempool__entry_flag_move(e, gen))
            continue;
        /* The last pin may have gone before the flag was seen: retry. */
        if (mempool__cell_count(&p->core, MP_PIN, idx, gen, true))
            return 0;
    }
}

static int to_disk(mempool *p, mempool_dref r, mempool_fileref *out,
                   bool move)
{
    uint32_t idx, gen;
    int rc;

    if ((rc = mempool__writer_ok(p)) ||
        (rc = mempool__entry_of(p, r, &idx, &gen)))
        return rc;
    if (MP_W_GEN(atomic_load(&mp_entry_at(p, idx)->word)) != gen)
        return -ENOENT;
    if ((rc = ensure_file(p, idx)))
        return rc;
    if (MP_W_GEN(atomic_load(&mp_entry_at(p, idx)->word)) != gen)
        return -ENOENT;
    if (move && (rc = evict_or_flag(p, idx, gen)))
        return rc;
    return fill_ref(p, idx, gen, out);
}

int mempool_move_to_disk(mempool *p, mempool_dref r, mempool_fileref *out)
{
    return to_disk(p, r, out, true);
}

int mempool_copy_to_disk(mempool *p, mempool_dref r, mempool_fileref *out)
{
    return to_disk(p, r, out, false);
}

/* Write view @p v durably to @p path through this handle's engine. */
static int save_view(mempool *p, const mempool_view *v, uint32_t idx,
                     uint32_t gen, const char *path)
{
    char *d = strdup(path), *b = strdup(path);
    mp_io_req req, *rp = &req;
    int rc, dfd = -1;

    if (!d || !b) {
        rc = -ENOMEM;
        goto out;
    }
    if ((dfd = open(dirname(d), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        rc = -errno;
        goto out;
    }
    memset(&req, 0, sizeof(req));
    req.dirfd = dfd;
    req.name = basename(b);
    req.payload = v->data;
    req.len = v->len;
    req.durable = true;
    req.unique_tmp = true;          /* no "<path>.tmp" a kill could strand */
    mempool__file_header(&req.hdr, p->h->uuid, idx, gen, v->type,
                         MP_FILE_SAVED, v->len);
    rc = mempool__io_get(p);
    if (!rc && !(rc = mempool__io_submit(p->spill->io, &rp, 1)))
        mempool__io_wait(p->spill->io, &rp, 1);
    if (!rc)
        rc = req.result;
out:
    if (dfd >= 0)
        close(dfd);
    free(d);
    free(b);
    return rc;
}

int mempool_save_to_disk(mempool *p, mempool_dref r, const char *path,
                         mempool_fileref *out)
{
    uint32_t idx, gen;
    mempool_view v;
    uint64_t len;
    int rc;

    if ((rc = mempool__writer_ok(p)))
        return rc;
    if (!path || !*path || strlen(path) >= sizeof(out->path) ||
        path[strlen(path) - 1] == '/')
        return -EINVAL;
    if ((rc = mempool__entry_of(p, r, &idx, &gen)) ||
        (rc = mempool__get(p, r, &v, false)))  /* LRU unchanged */
        return rc;
    rc = save_view(p, &v, idx, gen, path);
    len = v.len;
    mempool_release(p, &v);
    if (rc == 0 && out) {
        memset(out, 0, sizeof(*out));
        if (path[0] == '/' || !getcwd(out->path, sizeof(out->path) - 2))
            snprintf(out->path, sizeof(out->path), "%s", path);
        else if (strlen(out->path) + strlen(path) + 2 < sizeof(out->path))
            snprintf(out->path + strlen(out->path),
                     sizeof(out->path) - strlen(out->path), "/%s", path);
        out->len = len;
    }
    return rc;
}

int mempool_flush(mempool *p)
{
    struct mp_io *io;
    int rc = mempool__handle_ok(p);
    if (rc)
        return rc;
    pthread_mutex_lock(&p->spill->io_lock);     /* set lazily by another thread */
    io = p->spill->io;
    pthread_mutex_unlock(&p->spill->io_lock);
    return io ? mempool__io_drain(io) : 0;
}
