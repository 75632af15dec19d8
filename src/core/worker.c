/* SPDX-License-Identifier: MIT */
/*
 * worker.c - worker slots, liveness, reaping and fork handling.
 *
 * A handle owns slot s while its open file description holds an OFD write
 * lock on byte MP_LOCK_SLOT(s) of the pool's lock file (lockfile.c: only
 * the pool's writers may open it, so a reader's read lock cannot keep a
 * claimer or a reaper out). The kernel releases the
 * lock when the last descriptor of that description closes, i.e. when the
 * process dies, so a lock we can take belongs to a dead worker - even under
 * PID reuse or in another PID namespace, and never for a stopped process.
 * Each handle opens its own description, so two handles in one process are
 * two independent workers.
 *
 * fork() would share the description with the child and keep a dead
 * parent's lock alive; a pthread_atfork() child handler therefore closes
 * every handle's descriptors in the child, and bumps a fork generation that
 * makes the child's handle answer MEMPOOL_EFORKED. exec() closes them too
 * (O_CLOEXEC). The locks live on a description that is never mmap()ed
 * (mempool.lfd, the lock file): a mapping holds a reference to its file
 * description, and a child inherits the parent's mappings, so a lock on a
 * mapped description would outlive the parent in any forked child.
 *
 * Reaping slot d: take d's lock (so nobody else reaps or claims it), undo
 * what d left in flight - entries it was reserving, refcount checks it was
 * running - then drop its pin and reference cells, which frees deleted
 * objects it was the last to pin and deletes refcounted objects it was the
 * last to reference. Objects d published stay: they belong to the pool,
 * and no longer count against the limit of whoever claims slot d next.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "counters.h"
#include "entry.h"
#include "failpoint.h"
#include "internal.h"
#include "rlock.h"
#include "wcache.h"

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t registry_once = PTHREAD_ONCE_INIT;
static mempool *registry;
_Atomic uint64_t mempool__fork_gen = 1;  /* 0 is no handle's (fastgen) */

static void atfork_prepare(void) { pthread_mutex_lock(&registry_lock); }
static void atfork_parent(void) { pthread_mutex_unlock(&registry_lock); }

static void atfork_child(void)
{
    atomic_fetch_add(&mempool__fork_gen, 1);
    mempool__rl_forked();
    for (mempool *p = registry; p; p = p->next) {
        if (p->lfd >= 0)
            close(p->lfd);    /* drop the child's share of our slot lock */
        if (p->fd >= 0)
            close(p->fd);
        p->lfd = p->fd = -1;
    }
    pthread_mutex_unlock(&registry_lock);
}

static void registry_init(void)
{
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

void mempool__register(mempool *p)
{
    pthread_once(&registry_once, registry_init);
    pthread_mutex_init(&p->reap_lock, NULL);
    pthread_mutex_lock(&registry_lock);
    p->forkgen = atomic_load(&mempool__fork_gen);
    p->next = registry;
    registry = p;
    pthread_mutex_unlock(&registry_lock);
}

void mempool__unregister(mempool *p)
{
    pthread_mutex_lock(&registry_lock);
    for (mempool **pp = &registry; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    pthread_mutex_unlock(&registry_lock);
    pthread_mutex_destroy(&p->reap_lock);
}

bool mempool__registered(const mempool *p)
{
    bool found = false;
    pthread_once(&registry_once, registry_init);
    pthread_mutex_lock(&registry_lock);
    for (mempool *q = registry; q && !found; q = q->next)
        found = q == p;
    pthread_mutex_unlock(&registry_lock);
    return found;
}

/*
 * Closed handles are not freed at once: the last MP_QUARANTINE stay
 * allocated with `closed` set, so a second mempool_close() of the same
 * pointer, or any call on it, is answered -EINVAL (the handle is not in
 * the registry, and its memory cannot have been reused for a new handle
 * yet). After that many later closes the pointer is freed memory, as
 * after free().
 */
#define MP_QUARANTINE 64
static mempool *quarantine[MP_QUARANTINE];
static unsigned quarantine_next;

void mempool__handle_retire(mempool *p)
{
    mempool *old;
    p->closed = true;
    p->fastgen = 0;
    pthread_mutex_lock(&registry_lock);
    old = quarantine[quarantine_next];
    quarantine[quarantine_next] = p;
    quarantine_next = (quarantine_next + 1) % MP_QUARANTINE;
    pthread_mutex_unlock(&registry_lock);
    free(old);
}

int mempool__handle_ok(const mempool *p)
{
    if (MP_UNLIKELY(!p || p->closed))
        return -EINVAL;
    if (MP_UNLIKELY(p->forkgen !=
                    atomic_load_explicit(&mempool__fork_gen,
                                         memory_order_relaxed)))
        return MEMPOOL_EFORKED;
    return 0;
}

uint64_t mempool__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- slot locks -------------------------------------------------------- */

static int slot_lock(const mp_core *c, int slot, short type)
{
    struct flock fl = { .l_type = type, .l_whence = SEEK_SET,
                        .l_start = MP_LOCK_SLOT(slot), .l_len = 1 };
    return fcntl(c->lfd, F_OFD_SETLK, &fl) < 0 ? -errno : 0;
}

bool mempool__slot_alive(const mp_core *c, int slot)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
                        .l_start = MP_LOCK_SLOT(slot), .l_len = 1 };
    if (slot == c->slot)
        return true;
    if (fcntl(c->lfd, F_OFD_GETLK, &fl) < 0)
        return true;               /* cannot tell: never treat as dead */
    return fl.l_type != F_UNLCK;
}

/* ---- reaping ----------------------------------------------------------- */

/* Undo what slot @p d left in the table, and finish deletes or moves whose
 * worker died between steps (those words name no owner). Once frees are
 * owed (the allocator lock's holder is stopped: entry.c), deletes are left
 * to whoever pays them, so a reap waits for that holder once, not once per
 * deleted entry. */
static void reap_entries(mempool *p, int d)
{
    uint64_t hwm = atomic_load(&p->h->hwm);
    for (uint32_t i = 0; i < p->ntab && i < hwm; i++) {
        uint64_t w;
        mempool__entry_repair(p, d, i);
        w = atomic_load(&mp_entry_at(p, i)->word);
        if ((MP_W_ST(w) == MP_ST_DELETED &&
             !atomic_load_explicit(&p->h->owed, memory_order_relaxed)) ||
            (MP_W_FL(w) & MP_F_MOVE))
            mempool__entry_after_unpin(p, i);
    }
}

/* A cell of a dead worker held this: its last-pin or last-reference duty
 * (mempool__cells_drop calls back for each). */
static void cell_release(void *arg, uint32_t idx, uint32_t gen, int kind)
{
    mempool *p = arg;
    if (kind == MP_REF)
        mempool__entry_refcheck(p, idx, gen);
    else
        mempool__entry_after_unpin(p, idx); /* free, or finish a move */
}

/* Repair everything slot @p d held. Caller holds d's slot lock. */
static void reap_contents(mempool *p, int d)
{
    reap_entries(p, d);
    MP_FP(reap_entries);
    if (p->hand_ops)
        p->hand_ops->reap(p, d);    /* channels it was creating/destroying */
    mempool__box_reap(p, d);        /* its boxes, name lock, due TTLs */
    mempool__cells_drop(&p->core, d, cell_release, p);
    mempool__disown(p, d);          /* or owed: mempool__settle_left */
    mempool__handback_flush(p);     /* the frees above we stashed */
    mempool__cache_heal(p);         /* caches whose lock d died in */
}

void mempool__settle_left(mempool *p)
{
    uint64_t act = atomic_load(&p->h->active);
    /* Slot locks are OFD locks, shared by every thread of this handle: a
     * reaping thread's lock on a slot would be ours too, and our unlock
     * its. So not while one reaps (perhaps this thread, under a reap):
     * the charges then wait for the next stall's settling or for the
     * slot's next claimer or leaver - accounting only, nothing leaks
     * (raising the flag again would make every free scan the table for
     * as long as the reap runs). */
    if (pthread_mutex_trylock(&p->reap_lock))
        return;
    for (int d = 0; d < MP_WORKERS; d++) {
        /* Not active: closed or reaped. Its slot lock keeps a claimer
         * out while we give its charges up (a claim would start charging
         * its own objects there). */
        if ((act >> d & 1) || d == p->slot || !mempool__slot_holds(p, d) ||
            slot_lock(&p->core, d, F_WRLCK))
            continue;
        if (!(atomic_load(&p->h->active) >> d & 1))
            mempool__disown(p, d);
        slot_lock(&p->core, d, F_UNLCK);
    }
    pthread_mutex_unlock(&p->reap_lock);
}

static void slot_clear(mp_core *c, int d)
{
    mp_slot *s = &c->slots[d];
    s->pid = 0;
    s->token = 0;
    for (unsigned k = 0; k < MP_TAKING; k++)   /* its box_taking: void */
        atomic_store(&s->box_taking[k], 0);
    atomic_store(&s->state, 0);
    atomic_fetch_and(&c->h->active, ~(UINT64_C(1) << d));
}

int mempool__reap_slot(mempool *p, int d)
{
    int reaped = 0;
    if (d < 0 || d >= MP_WORKERS || d == p->slot)
        return 0;
    if (pthread_mutex_trylock(&p->reap_lock))
        return 0;                      /* another thread of ours is at it */
    if (slot_lock(&p->core, d, F_WRLCK) == 0) {
        if (atomic_load(&p->slots[d].state) ||
            (atomic_load(&p->h->active) >> d & 1)) {
            reap_contents(p, d);
            slot_clear(&p->core, d);
            atomic_fetch_add(&p->h->reaped, 1);
            reaped = 1;
        }
        slot_lock(&p->core, d, F_UNLCK);
    }
    pthread_mutex_unlock(&p->reap_lock);
    return reaped;
}

/* What a reap in a stall of the allocator lock left owed (the dead
 * one's reservation, its pins' frees: entry.c) is paid by the next freer
 * or allocator - in a pool whose live workers only read, nobody, so the
 * blocks stayed used (check_reap_owed). A reap pays too, once the lock is
 * free: one try, so a reap in the stall does not wait a second bound
 * (the scan clears the flag, and its first free would). */
static void pay_owed(mempool *p)
{
    if (!atomic_load_explicit(&p->h->owed, memory_order_relaxed) ||
        mempool__lock_try(p))
        return;
    mempool__unlock(p);
    mempool__reclaim_owed(p);
}

int mempool_reap(mempool *p)
{
    int rc = mempool__writer_ok(p), n = 0;
    uint64_t act;
    if (rc)
        return rc;
    act = atomic_load(&p->h->active);
    for (int d = 0; d < MP_WORKERS; d++)
        if ((act >> d & 1) && d != p->slot &&
            !mempool__slot_alive(&p->core, d))
            n += mempool__reap_slot(p, d);
    /* Also when another process reaped the dead first: a cache its taker
     * left dirty after that reap's heal looked (wcache.c cache_heal). */
    mempool__cache_heal(p);
    mempool__flight_expire(p, true);   /* references in flight past TTL */
    pay_owed(p);
    return n;
}

uint64_t mempool__wait_bound_ns(const mempool *p)
{
    uint64_t ms = p->evict_wait_ms > MEMPOOL_PEER_WAIT_MS
                      ? p->evict_wait_ms : MEMPOOL_PEER_WAIT_MS;
    return ms * 1000000u;
}

/* Wait a little for worker @p who to finish its step on entry @p idx. If
 * it is not alive, reap it, and repair the entry itself: the word may name
 * a slot nobody holds (corrupt state), which no reap of that slot fixes.
 * A live peer may be stopped (SIGSTOP, a debugger, a frozen cgroup) for
 * any time, so after a short spin the wait sleeps, doubling from 1 us to
 * 1 ms, and ends with -EAGAIN at its deadline: a stopped peer costs the
 * waiter no CPU and no more than the bound. */
int mempool__wait_who(mempool *p, unsigned who, uint32_t idx, mp_wait *wt)
{
    uint64_t now;
    unsigned k;

    if (++wt->spins < 64) {
        mp_cpu_relax();
        return 0;
    }
    if (who >= 1 && who <= MP_WORKERS &&
        !mempool__slot_alive(&p->core, (int)who - 1)) {
        mempool__reap_slot(p, (int)who - 1);
        mempool__entry_repair(p, (int)who - 1, idx);
        return 0;
    }
    now = mempool__now_ns();
    if (!wt->deadline)
        wt->deadline = now + mempool__wait_bound_ns(p);
    else if (now >= wt->deadline)
        return -EAGAIN;
    k = wt->spins - 64 < 10 ? wt->spins - 64 : 10;
    nanosleep(&(struct timespec){ 0, 1000L << k }, NULL);
    return 0;
}

/* ---- claiming and leaving --------------------------------------------- */

_Static_assert(MP_NCOUNTERS <= sizeof(((mp_header *)0)->retired) /
                                   sizeof(uint64_t),
               "retired[] holds every event counter");

#define COUNTER_OFF(name, prom, div, help) offsetof(mp_slot, name),
static const size_t counter_off[] = { MP_COUNTERS(COUNTER_OFF) };
#undef COUNTER_OFF

_Atomic uint64_t *mempool__counter(mp_slot *s, int k)
{
    return (_Atomic uint64_t *)((char *)s + counter_off[k]);
}

/* Fold slot @p s's event counters into the pool's `retired` totals and
 * zero them, so the counters of whoever claims it start at 0 and the sum
 * over slots plus retired never goes back (stats.c). */
static void slot_retire(mp_core *c, int s)
{
    mp_slot *sl = &c->slots[s];
    for (int k = 0; k < MP_NCOUNTERS; k++) {
        uint64_t v = atomic_exchange(mempool__counter(sl, k), 0);
        if (v)
            atomic_fetch_add(&c->h->retired[k], v);
    }
    atomic_store(&sl->io_backend, 0);
}

/* Reap slot @p s, whose lock we took, before claiming it. false if its
 * last holder's charges are still on it - owed, a stopped holder of the
 * allocator lock kept it from giving them up (mempool__disown) - and
 * @p any is false: the slot is then left reaped and free (not active), so
 * the lock's next holder gives them up (mempool__settle_left skips
 * claimed slots), and the caller looks for another. A worker that claimed
 * it carried them until it left: against its limit, in its stats. */
static bool claim_reap(mempool *p, int s, bool any)
{
    mp_slot *sl = &p->slots[s];
    bool clean = true;
    if (pthread_mutex_lock(&p->reap_lock) == 0) {
        bool held = atomic_load(&sl->state) ||
                    (atomic_load(&p->h->active) >> s & 1);
        /* Always: even a slot marked free must name nothing of ours
         * before we act under its id (a damaged arena might). */
        reap_contents(p, s);
        if (held)
            atomic_fetch_add(&p->h->reaped, 1);   /* previous holder */
        clean = any || !mempool__slot_holds(p, s);
        if (!clean)
            slot_clear(&p->core, s);
        pthread_mutex_unlock(&p->reap_lock);
    }
    return clean;
}

/* A slot to claim: first one whose charges are settled; only if there is
 * none, one that still holds owed charges (they stay on it until we
 * leave, as before). */
int mempool__claim_slot(mempool *p)
{
    for (int k = 0; k < 2 * MP_WORKERS; k++) {
        int s = k % MP_WORKERS;
        mp_slot *sl = &p->slots[s];
        if (slot_lock(&p->core, s, F_WRLCK))
            continue;                  /* a live worker holds it */
        MP_FP(slot_locked);
        p->slot = s;
        if (!claim_reap(p, s, k >= MP_WORKERS)) {
            slot_lock(&p->core, s, F_UNLCK);     /* owed: another one */
            continue;
        }
        slot_retire(&p->core, s);      /* counters start at 0 for us */
        atomic_store(&p->wcs[s].stash_n, 0);   /* a dead one's hint */
        if (getrandom(&sl->token, sizeof(sl->token), 0) < 0)
            sl->token = mempool__now_ns();
        sl->pid = (int32_t)getpid();
        sl->claimed_ns = mempool__now_ns();
        atomic_store(&sl->state, 1);
        atomic_fetch_or(&p->h->active, UINT64_C(1) << s);
        p->own_cells = p->cells + (uint64_t)s * p->cell_per;
        p->own_slot = sl;
        p->own_bit = UINT64_C(1) << s;
        p->data_span = p->size - p->data_off;
        p->fastgen = p->forkgen;       /* the short paths may run (get.c) */
        return s;
    }
    p->slot = -1;
    return -EUSERS;
}

void mempool__leave_slot(mempool *p)
{
    mempool__handback_flush(p);        /* while our slot is ours */
    p->fastgen = 0;                    /* no short paths, no stash */
    pthread_mutex_lock(&p->reap_lock);
    reap_contents(p, p->slot);
    pthread_mutex_unlock(&p->reap_lock);
    slot_clear(&p->core, p->slot);
    slot_lock(&p->core, p->slot, F_UNLCK);
}

int mempool_worker_id(const mempool *p)
{
    int rc = mempool__handle_ok(p);
    return rc ? rc : p->slot + 1;
}
