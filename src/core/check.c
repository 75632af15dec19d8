/* SPDX-License-Identifier: MIT */
/*
 * check.c - mempool_check() (the online fsck) and mempool_trim().
 *
 * The check holds the allocator lock, recomputes every piece of derived
 * state from the object table (alloc.c) and compares, then makes sure no
 * worker that is gone still holds pins or references, and that no pin or
 * reference cell outlives the object it names (a leak that would fill the
 * worker's table) or is missing from its object's holders word (pin.c),
 * and that every object with a spill file - its only copy (SPILLED) or a
 * clean copy (LIVE) - has that file, intact. mempool_repair()
 * reaps, drops the objects whose only copy is gone and forgets damaged
 * clean copies.
 */
#include <errno.h>
#include <stdio.h>
#include <time.h>

#include "entry.h"
#include "internal.h"
#include "wcache.h"

/* Is worker slot @p s dead and not reaped? Its `active` bit is set only
 * while a holder has the slot's lock (claim: lock, then the bit; leave:
 * the bit cleared, then unlock), but the check reads the bit and the lock
 * at two moments: a worker that closes in between shows a bit with no
 * lock behind it. So the bit and the claim's token are read again after
 * the lock: dead only if the same claim (token) still has its bit with
 * the lock free, on three looks 1 ms apart (a leave in progress, or a
 * leave followed by a new claim, is gone by then). */
static bool slot_dead(mempool *p, int s)
{
    for (int look = 0; look < 3; look++) {
        uint64_t tok = __atomic_load_n(&p->slots[s].token, __ATOMIC_ACQUIRE);
        bool dead;
        if (look)
            nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
        if (!(atomic_load(&p->h->active) >> s & 1) ||
            mempool__slot_alive(&p->core, s))
            return false;
        dead = (atomic_load(&p->h->active) >> s & 1) &&
               __atomic_load_n(&p->slots[s].token, __ATOMIC_ACQUIRE) == tok;
        if (!dead)
            return false;
    }
    return true;
}

static int check_workers(mempool *p, char *why, size_t whylen)
{
    uint64_t act = atomic_load(&p->h->active);
    for (int s = 0; s < MP_WORKERS; s++) {
        if ((act >> s & 1) && slot_dead(p, s)) {
            snprintf(why, whylen, "worker %d is dead and not reaped", s + 1);
            return MEMPOOL_ECORRUPT;
        }
    }
    return 0;
}

/* Cells that @p count finds wrong on three looks 10 ms apart (a pinner or
 * referrer between its two steps names a freed entry for an instant):
 * how many on the last, and the first one's slot << 32 | cell. */
static uint64_t cells_persist(mempool *p, uint64_t *first,
                              uint64_t (*count)(const mp_core *, uint64_t *))
{
    uint64_t n = 0;
    for (int round = 0; round < 3; round++) {
        if (round)
            nanosleep(&(struct timespec){ 0, 10000000 }, NULL);
        if (!(n = count(&p->core, first)))
            return 0;
    }
    return n;
}

/* Cells naming a freed entry (leaked), or the current generation of one
 * whose holders word lacks their worker (pin.c: a delete would not see
 * them, and free a held object). */
static int check_cells(mempool *p, char *why, size_t whylen)
{
    uint64_t first = 0, n;
    const char *what = "name freed objects (leaked";
    if (!(n = cells_persist(p, &first, mempool__cells_stale))) {
        what = "are missing from their objects' holders words (unseen";
        if (!(n = cells_persist(p, &first, mempool__cells_unmarked)))
            return 0;
    }
    snprintf(why, whylen,
             "%llu pin/reference cells %s; the first: worker %u, cell %u)",
             (unsigned long long)n, what, (unsigned)(first >> 32) + 1,
             (unsigned)(first & 0xffffffffu));
    return MEMPOOL_ECORRUPT;
}

/* A file verdict that means the file is gone or wrong (not: unreadable to
 * us, e.g. another user's observer). */
static bool file_bad(int rc)
{
    return rc == -ENOENT || rc == MEMPOOL_ECORRUPT;
}

/* Visit every alive entry with a complete file whose file is bad and whose
 * word did not move during the look (a delete removes files only after
 * moving the word). @p fn may act on it; the count is returned. */
static uint64_t bad_files(mempool *p, void (*fn)(mempool *, uint32_t,
                                                   uint64_t, void *),
                          void *arg, uint32_t *first, int *first_rc)
{
    uint64_t hwm = atomic_load(&p->h->hwm), n = 0;
    for (uint32_t i = 0; i < hwm && i < p->ntab; i++) {
        mp_entry *e = mp_entry_at(p, i);
        uint64_t w = mp_entry_word(e);
        int rc;
        if (!mp_entry_alive(w, MP_W_GEN(w)) ||
            !(MP_W_FL(w) & MP_F_ONDISK) || (MP_W_FL(w) & MP_F_WRITING))
            continue;
        rc = p->spill_ops->file_verify(p, i, MP_W_GEN(w));
        if (!file_bad(rc) || mp_entry_word(e) != w)
            continue;
        if (n++ == 0 && first) {
            *first = i;
            *first_rc = rc;
        }
        if (fn)
            fn(p, i, w, arg);
    }
    return n;
}

static int check_files(mempool *p, char *why, size_t whylen)
{
    uint32_t first = 0;
    int frc = 0;
    uint64_t n = bad_files(p, NULL, NULL, &first, &frc);
    if (!n)
        return 0;
    snprintf(why, whylen,
             "%llu objects' spill files are missing or damaged (the first: "
             "entry %u, %s; mempool fsck --repair drops what is lost)",
             (unsigned long long)n, first,
             frc == -ENOENT ? "missing" : "damaged");
    return MEMPOOL_ECORRUPT;
}

int mempool_check(mempool *p, char *why, size_t whylen)
{
    char dummy[8];
    int rc = mempool__handle_ok(p);
    if (rc)
        return rc;
    if (p->readonly)
        return -EACCES;             /* the allocator lock needs write access */
    if (!why) {
        why = dummy;
        whylen = sizeof(dummy);
    }
    if (whylen)
        why[0] = '\0';
    mempool__handback_flush(p);     /* our deletes, before the lock */
    if ((rc = mempool__lock(p)))
        return rc;
    rc = mempool__alloc_verify(p, why, whylen);
    mempool__unlock(p);
    if (rc == 0)
        rc = check_workers(p, why, whylen);
    if (rc == 0)
        rc = check_cells(p, why, whylen);
    if (rc == 0)
        rc = check_files(p, why, whylen);
    /* Pool-held items: drop expired references in flight first (they are
     * due), then every box, name and channel slot must agree. */
    if (rc == 0)
        mempool__flight_expire(p, true);
    if (rc == 0)
        rc = mempool__box_verify(p, why, whylen);
    if (rc == 0 && p->hand_ops)
        rc = p->hand_ops->verify(p, why, whylen);
    return rc;
}

struct repair_counts {
    uint64_t dropped, forgotten;
};

/* Entry @p i (word @p w) has a bad file: drop the object if that was its
 * only copy, else forget the file. */
static void repair_one(mempool *p, uint32_t i, uint64_t w, void *arg)
{
    struct repair_counts *c = arg;
    mp_entry *e = mp_entry_at(p, i);
    if (MP_W_ST(w) == MP_ST_LIVE) {
        /* Remove the bad file first: while F_ONDISK is set nobody writes
         * that name, so this cannot hit a new copy. */
        p->spill_ops->unlink_files(p, i, MP_W_GEN(w));
        if (mempool__lock(p))
            return;
        if (mempool__entry_drop_file(e, w)) {
            mempool__charge_ondisk(p, i, w, w & ~(uint64_t)MP_F_ONDISK);
            c->forgotten++;
        }
        mempool__unlock(p);
    } else if (mempool__entry_delete(p, i, MP_W_GEN(w)) == 0) {
        mempool__entry_reclaim(p, i);    /* removes the bad file too */
        c->dropped++;
    }
}

int mempool_repair(mempool *p, uint64_t *dropped, uint64_t *forgotten)
{
    struct repair_counts c = { 0, 0 };
    int rc = mempool__writer_ok(p);
    if (rc)
        return rc;
    if ((rc = mempool_reap(p)) < 0)
        return rc;
    bad_files(p, repair_one, &c, NULL, NULL);
    if (dropped)
        *dropped = c.dropped;
    if (forgotten)
        *forgotten = c.forgotten;
    return 0;
}

int64_t mempool_trim(mempool *p)
{
    int64_t n;
    int rc = mempool__writer_ok(p);
    if (rc)
        return rc;
    mempool__handback_flush(p);     /* before the lock: it takes it */
    if ((rc = mempool__lock(p)))
        return rc;
    /* Cached entries keep their blocks, and so their pages: ours and dead
     * workers' caches are emptied first (a live worker's is its own: it
     * would only refill it). */
    mempool__cache_trim(p);
    n = mempool__trim_locked(p);
    mempool__unlock(p);
    return n;
}
