/* SPDX-License-Identifier: MIT */
/*
 * names.c - the pool-wide name directory: names (1..255 bytes, any byte
 * but NUL) bound to DRefs (Vineyard's GetName(name, wait)).
 *
 * An open-addressing table of nnames records, probed linearly from the
 * name's hash. A record's word is state | version | box + 1:
 *
 *   FREE   never used: ends every probe
 *   BOUND  the name is bound; box (box.c) holds the object, and holds one
 *          reference of its own when the object is refcounted
 *   TOMB   was bound: probes go on past it, a new name may reuse it
 *
 * Writers (put, drop) take the directory's owner lock, so a name exists in
 * at most one record; a dead holder's lock is taken over (every change of
 * a record is one CAS, so there is nothing half-done to repair), a live
 * one's is waited for at most the peer wait bound (wait.c), then -EAGAIN. Readers
 * (get, list) take no lock: they read the word, the name bytes (relaxed
 * atomic words: a writer may be rewriting a TOMB record), and the word
 * again; the version in the word makes any rewrite visible.
 *
 * Crash story (box.c has the rules): the new binding's box is built
 * before the record is written, so a put killed before the record CAS
 * leaves an orphan box (freed: not bound), and one killed after leaves a
 * bound name. The replaced or dropped binding's box becomes an orphan at
 * the CAS and is freed by the writer right after, or by the sweep when
 * the writer died. No worker owns a name: names outlive their creator.
 *
 * A binding to a plain object lasts as long as the object: once it is
 * deleted, get, list and drop see no binding (-ENOENT), and the next put
 * of that name replaces it without REPLACE.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "failpoint.h"
#include "handoff.h"
#include "spin.h"

#define NM_ST(w)   ((unsigned)((w) >> 62))
#define NM_VER(w)  (((w) >> 32) & 0x3fffffffu)
#define NM_BOX1(w) ((uint32_t)(w))
#define NM_W(st, ver, box1) \
    (((uint64_t)(st) << 62) | (((uint64_t)(ver) & 0x3fffffffu) << 32) | \
     (uint64_t)(box1))

int mempool__hname_len(const char *name)
{
    size_t n;
    if (!name)
        return -EINVAL;
    n = strnlen(name, MP_NAME_MAX + 1);
    return n == 0 || n > MP_NAME_MAX ? -EINVAL : (int)n;
}

uint32_t mempool__hname_hash(const char *name, size_t len)
{
    uint32_t h = 2166136261u;                      /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (uint8_t)name[i];
        h *= 16777619u;
    }
    return h;
}

/* The name bytes as 32 words (zero padded), read and written as relaxed
 * atomics: a reader may race a writer that reuses a TOMB record. */
typedef struct { uint64_t w[(MP_NAME_MAX + 1) / 8]; } nm_buf;

static void buf_of(nm_buf *b, const char *name, size_t len)
{
    memset(b, 0, sizeof(*b));
    memcpy(b->w, name, len);
}

static uint64_t *rec_words(mp_name *r)
{
    return (uint64_t *)(void *)r->name;
}

static bool rec_matches(mp_name *r, const nm_buf *b, size_t len, uint32_t h)
{
    uint64_t *w = rec_words(r);
    if (MP_LD(r->hash) != h || MP_LD(r->len) != len)
        return false;
    for (size_t i = 0; i < (len + 7) / 8; i++)
        if (__atomic_load_n(&w[i], __ATOMIC_RELAXED) != b->w[i])
            return false;
    return true;
}

static void rec_write(mp_name *r, const nm_buf *b, size_t len, uint32_t h)
{
    uint64_t *w = rec_words(r);
    for (size_t i = 0; i < sizeof(b->w) / 8; i++)
        __atomic_store_n(&w[i], b->w[i], __ATOMIC_RELAXED);
    MP_ST(r->hash, h);
    MP_ST(r->len, (uint32_t)len);
}

/* Find the BOUND record of a name: 0 with its index and word, or -ENOENT.
 * *ins (if not NULL) gets the first reusable record of the probe, or -1. */
static int nm_find(mempool *p, const nm_buf *b, size_t len, uint32_t h,
                uint32_t *rec, uint64_t *word, int64_t *ins)
{
    uint32_t n = p->nnames, i = h % n;
    if (ins)
        *ins = -1;
    for (uint32_t k = 0; k < n; k++, i = (i + 1 == n) ? 0 : i + 1) {
        mp_name *r = &p->names[i];
        uint64_t w = atomic_load(&r->word);
        if (NM_ST(w) == MP_NM_FREE) {
            if (ins && *ins < 0)
                *ins = i;
            return -ENOENT;
        }
        if (NM_ST(w) == MP_NM_BOUND) {
            if (rec_matches(r, b, len, h) && atomic_load(&r->word) == w) {
                *rec = i;
                *word = w;
                return 0;
            }
        } else if (ins && *ins < 0) {
            *ins = i;
        }
    }
    return -ENOENT;
}

/* The object a bound word's box names, if it is alive. */
static bool binding_alive(mempool *p, uint64_t w, mempool_dref *out)
{
    uint32_t b = NM_BOX1(w) - 1, idx, gen;
    uint64_t item;
    if (NM_BOX1(w) == 0 || b >= p->nbox)
        return false;
    item = atomic_load(&p->boxes[b].item);
    idx = (uint32_t)(item >> 32);
    gen = (uint32_t)item;
    if (idx >= p->ntab ||
        !mp_entry_alive(atomic_load(&mp_entry_at(p, idx)->word), gen))
        return false;
    if (out)
        *out = mempool__dref_of(p, idx, gen);
    return true;
}

/* The box of binding word @p w, which we replaced (announced by us). */
static void drop_box_of(mempool *p, uint64_t w)
{
    if (NM_BOX1(w))
        mempool__box_drop_out(p, NM_BOX1(w) - 1);
}

/* Build the box of a new binding of @p r: a reference of its own for a
 * refcounted object. */
static int make_box(mempool *p, mempool_dref r, uint32_t *b)
{
    uint32_t idx, gen;
    mp_entry *e;
    bool ref;
    int rc = mempool__entry_of(p, r, &idx, &gen);
    if (rc)
        return rc;
    e = mp_entry_at(p, idx);
    if (!mp_entry_alive(atomic_load(&e->word), gen))
        return -ENOENT;
    ref = (MP_LD(e->setflags) & MEMPOOL_PUT_REFCOUNTED) != 0;
    if ((rc = mempool__box_claim(p, idx, gen, ref, MP_BACK(MP_BK_NAME, 0, 0),
                                 b)))
        return rc;
    /* Like mempool_ref(): the box is recorded, now wait out a running
     * reference check; a plain object must simply still be there. */
    if (ref ? mempool__ref_settle(p, idx, gen)
            : !mp_entry_alive(atomic_load(&e->word), gen)) {
        mempool__box_drop(p, *b, atomic_load(&p->boxw[*b]));
        return -ENOENT;
    }
    return 0;
}

/* Under the lock: bind the name to box @p b. */
static int bind_locked(mempool *p, const nm_buf *nb, size_t len, uint32_t h,
                       uint32_t b, unsigned flags, uint64_t *old, int *k)
{
    uint32_t rec;
    uint64_t w;
    int64_t ins;
    mp_name *r;

    *old = 0;
    if (nm_find(p, nb, len, h, &rec, &w, &ins) == 0) {
        if (!(flags & MEMPOOL_NAME_REPLACE) && binding_alive(p, w, NULL))
            return -EEXIST;
        *old = w;                   /* replaced: its box becomes an orphan */
        /* ... in no record until we drop it: announced (box_hazard.c) */
        *k = mempool__box_announce(p, NM_BOX1(w) - 1);
    } else if (ins < 0) {
        return -ENOSPC;             /* the directory is full */
    } else {
        rec = (uint32_t)ins;
        w = atomic_load(&p->names[rec].word);
        rec_write(&p->names[rec], nb, len, h);
    }
    r = &p->names[rec];
    atomic_store(&p->boxes[b].back, MP_BACK(MP_BK_NAME, rec, 0));
    MP_FP(name_boxed);
    if (!atomic_compare_exchange_strong(
            &r->word, &w, NM_W(MP_NM_BOUND, NM_VER(w) + 1, b + 1)))
        return MEMPOOL_ECORRUPT;    /* a writer without the lock */
    MP_FP(name_bound);
    return 0;
}

int mempool_name_put(mempool *p, const char *name, mempool_dref r,
                     unsigned flags)
{
    int len = mempool__hname_len(name), rc, k = -1;
    uint64_t old;
    uint32_t h, b;
    nm_buf nb;

    if ((rc = mempool__writer_ok(p)))
        return rc;
    if (len < 0 || (flags & ~MEMPOOL_NAME_REPLACE))
        return -EINVAL;
    if ((rc = make_box(p, r, &b)))
        return rc;
    buf_of(&nb, name, (size_t)len);
    h = mempool__hname_hash(name, (size_t)len);
    if ((rc = mempool__olock(p, &p->hand->names_lock)) >= 0) {
        rc = bind_locked(p, &nb, (size_t)len, h, b, flags, &old, &k);
        mempool__ounlock(p, &p->hand->names_lock);
    }
    if (rc) {
        mempool__box_unannounce(p, k);
        mempool__box_drop(p, b, atomic_load(&p->boxw[b]));
        return rc;
    }
    MP_FP(name_unlocked);
    mempool__box_commit(p, b);
    if (old)
        drop_box_of(p, old);         /* the replaced binding's reference */
    mempool__box_unannounce(p, k);
    mempool__peer_note(p, &p->hand->binder);
    mempool__lead(MP_SPIN_KEY_NAMES,
                  mp_signal(&p->hand->names_seq, &p->hand->names_waiters,
                            INT_MAX) != 0);
    return 0;
}

int mempool_name_drop(mempool *p, const char *name)
{
    int len = mempool__hname_len(name), rc, k;
    uint32_t h, rec;
    uint64_t w = 0;
    bool alive;
    nm_buf nb;

    if ((rc = mempool__writer_ok(p)))
        return rc;
    if (len < 0)
        return -EINVAL;
    buf_of(&nb, name, (size_t)len);
    h = mempool__hname_hash(name, (size_t)len);
    if ((rc = mempool__olock(p, &p->hand->names_lock)) < 0)
        return rc;                   /* held by a stopped writer */
    rc = nm_find(p, &nb, (size_t)len, h, &rec, &w, NULL);
    /* Its box is in no record once the CAS is done, until we drop it:
     * announced before (box_hazard.c, "taking"). */
    k = mempool__box_announce(p, rc == 0 ? NM_BOX1(w) - 1 : UINT32_MAX);
    if (rc == 0 &&
        !atomic_compare_exchange_strong(&p->names[rec].word, &w,
                                        NM_W(MP_NM_TOMB, NM_VER(w) + 1, 0)))
        rc = MEMPOOL_ECORRUPT;
    mempool__ounlock(p, &p->hand->names_lock);
    if (rc) {
        mempool__box_unannounce(p, k);
        return rc;
    }
    MP_FP(name_dropped);
    alive = binding_alive(p, w, NULL);
    drop_box_of(p, w);
    mempool__box_unannounce(p, k);
    return alive ? 0 : -ENOENT;      /* a deleted plain object's name */
}

/* One lookup of a live binding. */
static int nm_lookup(mempool *p, const nm_buf *nb, size_t len, uint32_t h,
                  mempool_dref *out)
{
    uint32_t rec;
    uint64_t w;
    if (nm_find(p, nb, len, h, &rec, &w, NULL))
        return -ENOENT;
    return binding_alive(p, w, out) ? 0 : -ENOENT;
}

/* name_get's past spins, this thread's (spin.h). */
static _Thread_local mp_spin name_spin = { MP_SPIN_KEY_NAMES, 0 };

int mempool_name_get(mempool *p, const char *name, mempool_dref *out,
                     int64_t timeout_ms)
{
    uint64_t deadline;
    int len = mempool__hname_len(name), rc;
    uint32_t h;
    nm_buf nb;

    if ((rc = mempool__handle_ok(p)))
        return rc;
    if (len < 0 || !out)
        return -EINVAL;
    buf_of(&nb, name, (size_t)len);
    h = mempool__hname_hash(name, (size_t)len);
    if (nm_lookup(p, &nb, (size_t)len, h, out) == 0)
        return 0;
    if (timeout_ms == 0)
        return -ETIMEDOUT;
    if (p->observer)
        return -EPERM;               /* waiting writes the waiters count */
    deadline = mp_deadline(timeout_ms);
    for (;;) {
        uint32_t seq;
        seq = mp_sleep_seen(&p->hand->names_seq);
        if (nm_lookup(p, &nb, (size_t)len, h, out) == 0)
            return 0;
        /* A binder running on another CPU: watch the word a while. */
        if (mempool__spin(p, atomic_load(&p->hand->binder), NULL, &name_spin,
                          mp_look_u32, &p->hand->names_seq, deadline))
            continue;
        rc = mempool__hsleep(p, &p->hand->names_seq, &p->hand->names_waiters,
                             seq, deadline, 0);
        if (rc == -ETIMEDOUT)
            return nm_lookup(p, &nb, (size_t)len, h, out) ? -ETIMEDOUT : 0;
    }
}

int mempool_name_list(mempool *p,
                      int (*fn)(const char *name, mempool_dref r, void *arg),
                      void *arg)
{
    int rc = mempool__handle_ok(p);
    if (rc)
        return rc;
    if (!fn)
        return -EINVAL;
    for (uint32_t i = 0; i < p->nnames; i++) {
        mp_name *r = &p->names[i];
        uint64_t w = atomic_load(&r->word), *src = rec_words(r);
        char buf[MP_NAME_MAX + 1];
        uint64_t words[(MP_NAME_MAX + 1) / 8];
        mempool_dref d;
        uint32_t len;
        if (NM_ST(w) != MP_NM_BOUND)
            continue;
        for (size_t k = 0; k < sizeof(words) / 8; k++)
            words[k] = __atomic_load_n(&src[k], __ATOMIC_RELAXED);
        len = MP_LD(r->len);
        if (atomic_load(&r->word) != w || len == 0 || len > MP_NAME_MAX ||
            !binding_alive(p, w, &d))
            continue;                /* changed while we read, or dead */
        memcpy(buf, words, len);
        buf[len] = '\0';
        if (strlen(buf) != len)
            continue;                /* damaged record */
        if ((rc = fn(buf, d, arg)) != 0)
            return rc;
    }
    return 0;
}

/* Names currently bound to a live object (stats). */
uint64_t mempool__names_count(mempool *p)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < p->nnames; i++) {
        uint64_t w = atomic_load(&p->names[i].word);
        n += NM_ST(w) == MP_NM_BOUND && binding_alive(p, w, NULL);
    }
    return n;
}

/* fsck: every bound name holds a box that points back at it. */
int mempool__names_verify(mempool *p, char *why, size_t whylen)
{
    for (uint32_t i = 0; i < p->nnames; i++) {
        uint64_t w = atomic_load(&p->names[i].word), bw, back;
        uint32_t b = NM_BOX1(w) - 1;
        if (NM_ST(w) != MP_NM_BOUND)
            continue;
        if (NM_BOX1(w) == 0 || b >= p->nbox) {
            snprintf(why, whylen, "name record %u names no box", i);
            return MEMPOOL_ECORRUPT;
        }
        bw = atomic_load(&p->boxw[b]);
        back = atomic_load(&p->boxes[b].back);
        if (atomic_load(&p->names[i].word) != w)
            continue;                /* changed while we looked */
        if (!bw || MP_BACK_KIND(back) != MP_BK_NAME || MP_BACK_REC(back) != i) {
            snprintf(why, whylen, "name record %u: its box %u is %s", i, b,
                     bw ? "another record's" : "free");
            return MEMPOOL_ECORRUPT;
        }
    }
    return 0;
}
