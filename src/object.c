/* SPDX-License-Identifier: MIT */
/*
 * object.c - the object API: reserve/publish/abort, set, get/release,
 * delete, ref/unref and info.
 *
 * Life of an entry (see layout.h for the word):
 *
 *   FREE --reserve--> ALLOC(us) --publish--> LIVE --delete--> DELETED
 *     ^                  |abort/reap                              |
 *     +------ free (allocator lock, gen + 1) <-- last pin gone ---+
 *
 * get is lock-free: read the word, record a pin cell, re-read the word
 * (pin.c explains the handshake). delete is a CAS to DELETED followed by an
 * attempt to reclaim; whoever drops the last pin of a DELETED entry
 * reclaims it. A DRef names the entry by arena offset and carries its
 * generation, so any DRef from before a reuse is answered -ENOENT.
 *
 * Refcounted objects: references are REF cells of the holding worker.
 * Whoever may have dropped the last one runs a check: set F_REFCHECK in the
 * word (one checker at a time), scan every worker's cells, then either
 * clear the flag or move the entry to DELETED. A concurrent mempool_ref()
 * that sees the flag waits for the verdict, so a reference is never granted
 * on an object being deleted.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

#define VIEW_KEY UINT64_C(0x6d656d706f6f6c21)

static uint64_t view_mac(uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t x = a * UINT64_C(0x9E3779B97F4A7C15) ^
                 b * UINT64_C(0xC2B2AE3D27D4EB4F) ^ c;
    x ^= x >> 31;
    return x ^ VIEW_KEY;
}

static uint64_t table_off(const mempool *p)
{
    return (uint64_t)((const uint8_t *)p->tab - p->base);
}

/* Validate a DRef's shape; gives the entry index and 32-bit generation. */
static int entry_of(const mempool *p, mempool_dref r, uint32_t *idx,
                    uint32_t *gen)
{
    uint64_t t = table_off(p);
    if ((r.gen & ~UINT64_C(0xffffffff)) != p->tag || (uint32_t)r.gen == 0)
        return -EINVAL;
    if (r.off < t || r.off - t >= p->ntab * sizeof(mp_entry) ||
        (r.off - t) % sizeof(mp_entry))
        return -EINVAL;
    *idx = (uint32_t)((r.off - t) / sizeof(mp_entry));
    *gen = (uint32_t)r.gen;
    return 0;
}

static mempool_dref dref_of(const mempool *p, uint32_t idx, uint32_t gen)
{
    mempool_dref r = { table_off(p) + (uint64_t)idx * sizeof(mp_entry),
                       p->tag | gen };
    return r;
}

static bool is_live(uint64_t w, uint32_t gen)
{
    return MP_W_GEN(w) == gen && MP_W_ST(w) == MP_ST_LIVE;
}

static void touch(mp_entry *e)
{
    atomic_store_explicit(&e->stamp, mempool__now_ns(), memory_order_relaxed);
}

#define COUNT(p, field) \
    atomic_fetch_add_explicit(&(p)->slots[(p)->slot].field, 1, \
                              memory_order_relaxed)

/* ---- reclaiming -------------------------------------------------------- */

void mempool__try_reclaim(mempool *p, uint32_t idx)
{
    mp_entry *e = mp_entry_at(p, idx);
    uint64_t w = atomic_load(&e->word);
    if (MP_W_ST(w) != MP_ST_DELETED ||
        mempool__cell_count(p, MP_PIN, idx, MP_W_GEN(w), true))
        return;                     /* the last unpinner will come back */
    if (mempool__lock(p))
        return;
    if (atomic_load(&e->word) == w)
        mempool__free(p, idx);
    mempool__unlock(p);
}

/* Delete refcounted (idx, gen) if no worker holds a reference to it. */
void mempool__refcheck(mempool *p, uint32_t idx, uint32_t gen)
{
    mp_entry *e = mp_entry_at(p, idx);
    unsigned spins = 0;
    uint64_t w, mine;

    for (;;) {
        w = atomic_load(&e->word);
        if (!is_live(w, gen) || !(MP_LD(e->setflags) & MEMPOOL_SET_REFCOUNTED))
            return;
        if (MP_W_FL(w) & MP_F_REFCHECK) {
            mempool__wait_who(p, MP_W_WHO(w), &spins);
            continue;
        }
        mine = MP_W(gen, MP_ST_LIVE, p->slot + 1, MP_F_REFCHECK);
        if (atomic_compare_exchange_strong(&e->word, &w, mine))
            break;
    }
    if (mempool__cell_count(p, MP_REF, idx, gen, true)) {
        atomic_compare_exchange_strong(&e->word, &mine,
                                       MP_W(gen, MP_ST_LIVE, 0, 0));
        return;
    }
    if (atomic_compare_exchange_strong(&e->word, &mine,
                                       MP_W(gen, MP_ST_DELETED, 0, 0)))
        mempool__try_reclaim(p, idx);
}

/* ---- creating ---------------------------------------------------------- */

static int owner_slot(mempool *p, const mempool_set_options *o, int *slot)
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
                         !mempool__slot_alive(p, s)))
        return -ESRCH;
    *slot = s;
    return 0;
}

static int alloc_entry(mempool *p, size_t len, const mempool_set_options *o,
                       int owner, uint32_t *idx)
{
    int rc;
    for (int attempt = 0; attempt < 2; attempt++) {
        mp_entry *e;
        if ((rc = mempool__lock(p)))
            return rc;
        rc = mempool__alloc(p, len, idx);
        if (rc == 0) {
            e = mp_entry_at(p, *idx);
            MP_ST(e->type, o ? o->type : 0);
            MP_ST(e->setflags, (uint16_t)(o ? o->flags : 0));
            MP_ST(e->owner, (uint16_t)(owner + 1));
            mempool__charge(p, *idx);
        }
        mempool__unlock(p);
        if ((rc != -ENOMEM && rc != -ENOSPC) || mempool_reap(p) <= 0)
            break;                   /* retry only if a dead worker freed room */
    }
    return rc;
}

int mempool_reserve(mempool *p, size_t len, const mempool_set_options *o,
                    void **buf, mempool_dref *out)
{
    const uint32_t known = MEMPOOL_SET_REFCOUNTED | MEMPOOL_SET_DESTROY_ON_EVICT;
    uint32_t idx, gen;
    mp_entry *e;
    int rc, owner;

    if ((rc = mempool__handle_ok(p)))
        return rc;
    if (!buf || !out || (o && (o->flags & ~known)))
        return -EINVAL;
    if ((rc = owner_slot(p, o, &owner)))
        return rc;
    if (len > p->npages * MP_PAGE)
        return -E2BIG;
    if ((rc = alloc_entry(p, len, o, owner, &idx)))
        return rc;
    e = mp_entry_at(p, idx);
    gen = MP_W_GEN(atomic_load(&e->word));
    if ((e->setflags & MEMPOOL_SET_REFCOUNTED) &&
        (rc = mempool__cell_add(p, MP_REF, idx, gen))) {
        if (mempool__lock(p) == 0) {
            mempool__free(p, idx);
            mempool__unlock(p);
        }
        return rc;
    }
    *buf = p->base + (e->off ? e->off : p->data_off);
    *out = dref_of(p, idx, gen);
    return 0;
}

/* Our unpublished reservation behind @p r, or an error. */
static int own_reservation(mempool *p, mempool_dref r, uint32_t *idx,
                           uint64_t *w)
{
    uint32_t gen;
    int rc = mempool__handle_ok(p);
    if (rc || (rc = entry_of(p, r, idx, &gen)))
        return rc;
    *w = atomic_load(&mp_entry_at(p, *idx)->word);
    if (MP_W_GEN(*w) != gen || MP_W_ST(*w) == MP_ST_FREE)
        return -ENOENT;
    if (MP_W_ST(*w) != MP_ST_ALLOC || MP_W_WHO(*w) != (unsigned)p->slot + 1)
        return -EINVAL;
    return 0;
}

int mempool_publish(mempool *p, mempool_dref r)
{
    uint32_t idx;
    uint64_t w;
    mp_entry *e;
    int rc = own_reservation(p, r, &idx, &w);
    if (rc)
        return rc;
    e = mp_entry_at(p, idx);
    touch(e);
    if (!atomic_compare_exchange_strong(&e->word, &w,
                                        MP_W(MP_W_GEN(w), MP_ST_LIVE, 0, 0)))
        return -ENOENT;              /* reaped under us: cannot happen live */
    COUNT(p, sets);
    return 0;
}

int mempool_abort(mempool *p, mempool_dref r)
{
    uint32_t idx;
    uint64_t w;
    mp_entry *e;
    int rc = own_reservation(p, r, &idx, &w);
    if (rc)
        return rc;
    e = mp_entry_at(p, idx);
    if (e->setflags & MEMPOOL_SET_REFCOUNTED)
        mempool__cell_sub(p, MP_REF, idx, MP_W_GEN(w));
    if ((rc = mempool__lock(p)))
        return rc;
    if (atomic_load(&e->word) == w)
        mempool__free(p, idx);
    else
        rc = -ENOENT;
    mempool__unlock(p);
    return rc;
}

int mempool_set_ex(mempool *p, const void *data, size_t len,
                   const mempool_set_options *o, mempool_dref *out)
{
    void *buf;
    mempool_dref r;
    int rc;

    if (!data && len)
        return -EINVAL;
    if ((rc = mempool_reserve(p, len, o, &buf, &r)))
        return rc;
    if (len)
        memcpy(buf, data, len);
    if ((rc = mempool_publish(p, r))) {
        mempool_abort(p, r);
        return rc;
    }
    *out = r;
    return 0;
}

int mempool_set(mempool *p, const void *data, size_t len, mempool_dref *out)
{
    return mempool_set_ex(p, data, len, NULL, out);
}

/* ---- reading ----------------------------------------------------------- */

/* Drop a pin we took; free the object if it was deleted meanwhile. */
static void unpin(mempool *p, uint32_t idx, uint32_t gen)
{
    mempool__cell_sub(p, MP_PIN, idx, gen);
    if (MP_W_ST(atomic_load(&mp_entry_at(p, idx)->word)) == MP_ST_DELETED)
        mempool__try_reclaim(p, idx);
}

int mempool_get(mempool *p, mempool_dref r, mempool_view *v)
{
    uint32_t idx, gen;
    uint64_t off, len;
    mp_entry *e;
    int rc;

    if ((rc = mempool__handle_ok(p)))
        return rc;
    if (!v || (rc = entry_of(p, r, &idx, &gen)))
        return rc ? rc : -EINVAL;
    e = mp_entry_at(p, idx);
    if (!is_live(atomic_load(&e->word), gen))
        return -ENOENT;
    if ((rc = mempool__cell_add(p, MP_PIN, idx, gen)))
        return rc;
    if (!is_live(atomic_load(&e->word), gen)) {
        unpin(p, idx, gen);
        return -ENOENT;
    }
    off = e->off;
    len = e->len;
    if ((off && (off < p->data_off || off > p->size || len > p->size - off)) ||
        (!off && len)) {
        unpin(p, idx, gen);
        return MEMPOOL_ECORRUPT;
    }
    touch(e);
    v->data = p->base + (off ? off : p->data_off);
    v->len = len;
    v->type = e->type;
    v->flags = MEMPOOL_VIEW_MEMORY;
    v->priv[0] = idx + 1;
    v->priv[1] = gen;
    v->priv[2] = (uint64_t)(uintptr_t)p;
    v->priv[3] = view_mac(v->priv[0], v->priv[1], v->priv[2]);
    COUNT(p, gets);
    return 0;
}

int mempool_release(mempool *p, mempool_view *v)
{
    uint64_t idx1;
    int rc;

    if ((rc = mempool__handle_ok(p)))
        return rc;
    if (!v)
        return -EINVAL;
    idx1 = v->priv[0];
    if (v->priv[2] != (uint64_t)(uintptr_t)p || idx1 == 0 ||
        idx1 > p->ntab || v->priv[1] > UINT32_MAX ||
        v->priv[3] != view_mac(idx1, v->priv[1], v->priv[2]))
        return -EINVAL;
    if (mempool__cell_sub(p, MP_PIN, (uint32_t)idx1 - 1, (uint32_t)v->priv[1]))
        return -EINVAL;
    memset(v, 0, sizeof(*v));
    if (MP_W_ST(atomic_load(&mp_entry_at(p, (uint32_t)idx1 - 1)->word)) ==
        MP_ST_DELETED)
        mempool__try_reclaim(p, (uint32_t)idx1 - 1);
    COUNT(p, releases);
    return 0;
}

/* ---- deleting and references ------------------------------------------- */

int mempool_delete(mempool *p, mempool_dref r)
{
    uint32_t idx, gen;
    mp_entry *e;
    uint64_t w;
    int rc;

    if ((rc = mempool__handle_ok(p)) || (rc = entry_of(p, r, &idx, &gen)))
        return rc;
    e = mp_entry_at(p, idx);
    do {
        w = atomic_load(&e->word);
        if (!is_live(w, gen))
            return -ENOENT;
    } while (!atomic_compare_exchange_weak(&e->word, &w,
                                           MP_W(gen, MP_ST_DELETED, 0, 0)));
    mempool__try_reclaim(p, idx);
    COUNT(p, deletes);
    return 0;
}

/* A live refcounted entry behind @p r. */
static int refcounted(mempool *p, mempool_dref r, uint32_t *idx, uint32_t *gen)
{
    int rc;
    mp_entry *e;
    if ((rc = mempool__handle_ok(p)) || (rc = entry_of(p, r, idx, gen)))
        return rc;
    e = mp_entry_at(p, *idx);
    if (!is_live(atomic_load(&e->word), *gen))
        return -ENOENT;
    return (MP_LD(e->setflags) & MEMPOOL_SET_REFCOUNTED) ? 0 : -EINVAL;
}

int mempool_ref(mempool *p, mempool_dref r)
{
    uint32_t idx, gen;
    unsigned spins = 0;
    mp_entry *e;
    int rc;

    if ((rc = refcounted(p, r, &idx, &gen)))
        return rc;
    if ((rc = mempool__cell_add(p, MP_REF, idx, gen)))
        return rc;
    e = mp_entry_at(p, idx);
    for (;;) {
        uint64_t w = atomic_load(&e->word);
        if (!is_live(w, gen)) {
            mempool__cell_sub(p, MP_REF, idx, gen);
            return -ENOENT;
        }
        if (!(MP_W_FL(w) & MP_F_REFCHECK))
            break;
        mempool__wait_who(p, MP_W_WHO(w), &spins);   /* await the verdict */
    }
    COUNT(p, refs);
    return 0;
}

int mempool_unref(mempool *p, mempool_dref r)
{
    uint32_t idx, gen;
    int rc;

    if ((rc = refcounted(p, r, &idx, &gen)))
        return rc;
    if (mempool__cell_sub(p, MP_REF, idx, gen))
        return -EINVAL;              /* this worker holds no reference */
    mempool__refcheck(p, idx, gen);
    COUNT(p, unrefs);
    return 0;
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
    if (!out || (rc = entry_of(p, r, &idx, &gen)))
        return rc ? rc : -EINVAL;
    e = mp_entry_at(p, idx);
    w = atomic_load(&e->word);
    if (!is_live(w, gen))
        return -ENOENT;
    in.len = MP_LD(e->len);
    in.owner = MP_LD(e->owner);
    in.type = MP_LD(e->type);
    in.state = MEMPOOL_STATE_MEMORY;
    in.pins = mempool__cell_count(p, MP_PIN, idx, gen, false);
    in.refs = mempool__cell_count(p, MP_REF, idx, gen, false);
    if (MP_W_GEN(atomic_load(&e->word)) != gen)
        return -ENOENT;             /* freed and reused while we looked */
    *out = in;
    return 0;
}
