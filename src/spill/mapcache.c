/* SPDX-License-Identifier: MIT */
/*
 * mapcache.c - the per-handle cache of read-only file mappings behind
 * MEMPOOL_VIEW_DISK views.
 *
 * A get of a spilled object maps its file once per handle and shares the
 * mapping between views (each view holds a reference; the entry itself is
 * pinned through the pin cells as usual). A mapping nobody uses is kept for
 * a later get - up to MP_IDLE_MAPS of them - unless its object is gone, in
 * which case it is unmapped at once (at its release, or when this handle
 * deletes the object) so a deleted file's space is returned. Idle mappings
 * held by *other* processes' handles go at their next release or close.
 * Files opened with mempool_get_file() get a mapping of their own, unmapped
 * at release. Views name their mapping by id, never by pointer, so a forged
 * or twice-released view cannot make us free something we do not own.
 *
 * Verdicts: the ids (spill.h mp_file_id: device, inode, size, mtime,
 * ctime, header crc) of the last MP_VERDICTS files whose every chunk this
 * handle checked. Mapping a file again - a get_file() after its release, a
 * spilled object whose idle mapping was dropped - skips the payload check
 * when the file still has a remembered id, exactly as a get of a mapping
 * still cached skips it: checked once per handle, and again after any
 * change that sets the file's ctime (design.md, "What a reader is
 * guaranteed").
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "failpoint.h"
#include "internal.h"
#include "spill.h"
#include "spillstate.h"

#define MP_IDLE_MAPS 256
#define MP_VERDICTS  64

struct mp_mapping {
    uint64_t    id;
    uint32_t    idx, gen;
    bool        file;        /* from mempool_get_file(): not cached */
    uint32_t    refs;
    mp_file_map m;
    struct mp_mapping *next;
};

struct mp_mapcache {
    pthread_mutex_t    mu;
    struct mp_mapping *head;
    uint64_t           next_id;
    mp_file_id         verdict[MP_VERDICTS]; /* files checked whole */
    unsigned           verdicts, verdict_next;
};

static struct mp_mapcache *cache(mempool *p)
{
    struct mp_mapcache *c;
    pthread_mutex_lock(&p->spill->io_lock);
    if (!p->spill->maps && (c = calloc(1, sizeof(*c)))) {
        pthread_mutex_init(&c->mu, NULL);
        c->next_id = 1;
        p->spill->maps = c;
    }
    c = p->spill->maps;
    pthread_mutex_unlock(&p->spill->io_lock);
    return c;
}

/* The cache if one was made; read under io_lock, as cache() writes it. */
static struct mp_mapcache *cache_if_any(mempool *p)
{
    struct mp_mapcache *c;
    pthread_mutex_lock(&p->spill->io_lock);
    c = p->spill->maps;
    pthread_mutex_unlock(&p->spill->io_lock);
    return c;
}

static void drop(struct mp_mapping *m)
{
    mempool__file_unmap(&m->m);
    free(m);
}

/* Did this handle check every chunk of a file with id @p id? */
static bool seen(void *ctx, const mp_file_id *id)
{
    struct mp_mapcache *c = ctx;
    bool hit = false;

    pthread_mutex_lock(&c->mu);
    for (unsigned i = 0; i < c->verdicts && !hit; i++)
        hit = memcmp(&c->verdict[i], id, sizeof *id) == 0;
    pthread_mutex_unlock(&c->mu);
    return hit;
}

/* Remember @p m's file if this map checked it whole and its ctime had
 * settled (the oldest verdict makes room). Caller holds c->mu. */
static void remember(struct mp_mapcache *c, const mp_file_map *m)
{
    if (!m->checked || !m->settled)
        return;
    c->verdict[c->verdict_next] = m->id;
    c->verdict_next = (c->verdict_next + 1) % MP_VERDICTS;
    if (c->verdicts < MP_VERDICTS)
        c->verdicts++;
}

/* Insert @p m (refs 1) unless another thread mapped (idx, gen) first. */
static struct mp_mapping *insert(struct mp_mapcache *c, struct mp_mapping *m)
{
    pthread_mutex_lock(&c->mu);
    remember(c, &m->m);
    for (struct mp_mapping *x = c->head; x && !m->file; x = x->next) {
        if (!x->file && x->idx == m->idx && x->gen == m->gen) {
            x->refs++;
            pthread_mutex_unlock(&c->mu);
            drop(m);
            return x;
        }
    }
    m->id = c->next_id++ & 0xffffffffu;
    m->refs = 1;
    m->next = c->head;
    c->head = m;
    pthread_mutex_unlock(&c->mu);
    return m;
}

int mempool__map_entry(mempool *p, uint32_t idx, uint32_t gen, uint64_t *id,
                       const uint8_t **data)
{
    struct mp_mapcache *c = cache(p);
    struct mp_mapping *m;
    char name[48];
    int rc;

    if (!c)
        return -ENOMEM;
    pthread_mutex_lock(&c->mu);
    for (m = c->head; m; m = m->next)
        if (!m->file && m->idx == idx && m->gen == gen)
            break;
    if (m)
        m->refs++;
    pthread_mutex_unlock(&c->mu);
    if (!m) {
        int dfd = mempool__spill_dirfd(p);
        if (dfd < 0)
            return dfd;             /* no directory we trust (spilldir.c) */
        snprintf(name, sizeof(name), "%u-%u", idx, gen);
        if (!(m = calloc(1, sizeof(*m))))
            return -ENOMEM;
        m->idx = idx;
        m->gen = gen;
        if ((rc = MP_FP(map_before))) {
            free(m);
            return rc;
        }
        rc = mempool__file_map_seen(dfd, name, p->h->uuid, idx, gen,
                                    p->spill->verify, seen, c, &m->m);
        if (rc) {
            free(m);
            return rc;
        }
        m = insert(c, m);
    }
    *id = m->id;
    *data = m->m.data;
    return 0;
}

int mempool__map_file(mempool *p, const char *path, uint64_t *id,
                      const uint8_t **data, uint64_t *len, uint32_t *type)
{
    struct mp_mapcache *c = cache(p);
    struct mp_mapping *m;
    int rc;

    if (!c || !(m = calloc(1, sizeof(*m))))
        return -ENOMEM;
    m->file = true;
    if ((rc = mempool__file_map_seen(AT_FDCWD, path, NULL, 0, 0, true, seen,
                                     c, &m->m))) {
        free(m);
        return rc;
    }
    m = insert(c, m);
    *id = m->id;
    *data = m->m.data;
    *len = m->m.len;
    *type = m->m.type;
    return 0;
}

/* Is the object behind cached mapping @p m still spilled? */
static bool still_wanted(mempool *p, const struct mp_mapping *m)
{
    uint64_t w = atomic_load(&mp_entry_at(p, m->idx)->word);
    return !m->file && MP_W_GEN(w) == m->gen && MP_W_ST(w) == MP_ST_SPILLED;
}

/* Unlink from the list the oldest idle mapping beyond the idle budget, or
 * @p m itself if it is idle and unwanted. Caller holds c->mu. */
static struct mp_mapping *pick_drop(mempool *p, struct mp_mapcache *c,
                                    struct mp_mapping *m)
{
    struct mp_mapping **pp, **last = NULL;
    unsigned idle = 0;
    for (pp = &c->head; *pp; pp = &(*pp)->next) {
        if ((*pp)->refs)
            continue;
        if (*pp == m && !still_wanted(p, m)) {
            last = pp;
            idle = MP_IDLE_MAPS + 1;
            break;
        }
        idle++;
        last = pp;                      /* list is newest first */
    }
    if (idle > MP_IDLE_MAPS && last) {
        struct mp_mapping *x = *last;
        *last = x->next;
        return x;
    }
    return NULL;
}

int mempool__map_put(mempool *p, uint64_t id)
{
    struct mp_mapcache *c = cache_if_any(p);
    struct mp_mapping *m, **pp, *gone = NULL;

    if (!c)
        return -EINVAL;
    pthread_mutex_lock(&c->mu);
    for (pp = &c->head; (m = *pp); pp = &m->next)
        if (m->id == id && m->refs)
            break;
    if (!m) {
        pthread_mutex_unlock(&c->mu);
        return -EINVAL;
    }
    if (--m->refs == 0) {
        if (m->file) {
            *pp = m->next;
            gone = m;
        } else {
            gone = pick_drop(p, c, m);
        }
    }
    pthread_mutex_unlock(&c->mu);
    if (gone)
        drop(gone);
    return 0;
}

/* Unmap every idle mapping whose object is no longer spilled (deleted,
 * or reused): an unlinked file's disk space comes back only when nobody
 * maps it. Called when this handle deletes a spilled object. */
void mempool__maps_sweep(mempool *p)
{
    struct mp_mapcache *c = cache_if_any(p);
    struct mp_mapping *gone = NULL, **pp;
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    for (pp = &c->head; *pp;) {
        struct mp_mapping *m = *pp;
        if (m->refs == 0 && !still_wanted(p, m)) {
            *pp = m->next;
            m->next = gone;
            gone = m;
        } else {
            pp = &m->next;
        }
    }
    pthread_mutex_unlock(&c->mu);
    while (gone) {
        struct mp_mapping *m = gone;
        gone = m->next;
        drop(m);
    }
}

void mempool__maps_free(mempool *p)
{
    struct mp_mapcache *c = p->spill->maps;
    if (!c)
        return;
    while (c->head) {
        struct mp_mapping *m = c->head;
        c->head = m->next;
        drop(m);
    }
    pthread_mutex_destroy(&c->mu);
    free(c);
    p->spill->maps = NULL;
}

/* A view of a file by path (mempool_get_file): a mapping only, no pin;
 * mempool_release() gives it back through spill_ops->map_put. */
int mempool_get_file(mempool *p, const mempool_fileref *f, mempool_view *v)
{
    const uint8_t *data;
    uint64_t len, id;
    uint32_t type;
    int rc;

    if ((rc = mempool__writer_ok(p)))
        return rc;
    if (!f || !v || !memchr(f->path, '\0', sizeof(f->path)))
        return -EINVAL;
    if ((rc = mempool__map_file(p, f->path, &id, &data, &len, &type)))
        return rc;
    v->data = data;
    v->len = len;
    v->type = type;
    v->flags = MEMPOOL_VIEW_DISK;
    mempool__view_seal(v, p, 0, id, MP_VIEW_FILE);
    return 0;
}
