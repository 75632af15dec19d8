/* SPDX-License-Identifier: MIT */
/*
 * keeper.c - the handle's keeper thread, which lets mempool_get_wait()
 * sleep without a timer.
 *
 * Why: a get_wait sleeper must notice a writer that died without
 * publishing (-ENOENT), and nobody wakes it for that: the dead writer
 * cannot, and no other worker knows it sleeps. It used to cap each sleep
 * at 50 ms (FUTEX_WAIT with a timeout) and look again. That timer is
 * armed and cancelled by the kernel on every sleep, and the cancel lies
 * on the wake-up path: measured (session 8, both processes on one CPU,
 * 31 blocks of 300 wake-ups, medians): pipe 4.82 us, capped FUTEX_WAIT
 * 5.02 us, the same sleep untimed 4.83 us. A long cap costs the same as a
 * short one (5 s: no better than 50 ms): the cost is arming at all.
 * A kernel death notice waited on beside the entry word (futex_waitv with
 * a robust-futex word per worker) was measured too: a second shared futex
 * word in the wait costs more than the timer (5.13 us untimed), so the
 * watching is taken off the sleeper instead.
 *
 * How: a sleeper registers (entry, writer slot) in one of MP_KEEP_N
 * places of its handle's keeper (private memory: nothing another process
 * or user can touch) and sleeps untimed (unless it has a deadline of its
 * own). The keeper, one thread per handle started by the first such
 * sleep, looks every MP_KEEP_TICK_MS at the writers of the registered
 * sleepers (mempool__slot_alive(): the slot's OFD lock, which the kernel
 * drops when the whole process is gone - a writer thread that exits in a
 * live process is still alive) and makes a FUTEX_WAKE on the entry word
 * of each sleeper whose writer died; the sleeper then reaps it as before
 * (wait.c). A wake that comes before the sleeper is in FUTEX_WAIT is
 * lost, but the keeper repeats it every tick while the place is taken,
 * so a death is noticed within about one tick, as with the cap. The
 * keeper writes nothing shared; it only reads the entry table's geometry
 * (fixed at open) and makes system calls.
 *
 * After MP_KEEP_IDLE ticks with no place taken it sleeps on its condition
 * variable untimed, and the next sleeper to register wakes it (Dekker's
 * handshake on the idle flag and the places, seq_cst: either the keeper's
 * last look sees the new place or the sleeper sees the flag). A handle
 * with no keeper (it could not start: failpoint keep.start, no memory or
 * threads; all places taken) sleeps with the cap as before. Its
 * failpoints (keep.*) are exercised by check_wait_keeper.c. The keeper
 * blocks every signal (it must not run the application's handlers), is
 * stopped and joined by mempool_close(), and does not exist in a forked
 * child (whose handle answers MEMPOOL_EFORKED; its close only frees the
 * copy).
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include "failpoint.h"
#include "handoff.h"
#include "keeper.h"

struct mp_keeper {
    mempool         *p;           /* the handle it looks after */
    pthread_t        th;
    pthread_mutex_t  mu;
    pthread_cond_t   cv;
    bool             stop;        /* under mu */
    _Atomic bool     idle;        /* asleep untimed: registrants wake it */
    uint64_t         forkgen;     /* the process it runs in */
    /* (entry + 1) << 32 | writer slot + 1, or 0: a free place. */
    _Atomic uint64_t watch[MP_KEEP_N];
};

/* Wake the sleepers whose writer died; whether any place is taken. */
static bool keeper_look(mempool *p, struct mp_keeper *k)
{
    bool any = false;
    for (unsigned i = 0; i < MP_KEEP_N; i++) {
        uint64_t v = atomic_load(&k->watch[i]);
        uint32_t idx = (uint32_t)(v >> 32) - 1;
        int d = (int)(v & 0xffffu) - 1;
        if (!v)
            continue;
        any = true;
        if (!mempool__slot_alive(&p->core, d))
            mp_futex_wake(mp_word_low(&mp_entry_at(p, idx)->word), INT_MAX);
    }
    return any;
}

/* Sleep one tick, or untimed when idle long enough; under k->mu. */
static void keeper_nap(mempool *p, struct mp_keeper *k, unsigned *empty)
{
    struct timespec ts;
    if (*empty >= MP_KEEP_IDLE) {
        /* seq_cst flag, then the places again (registrants: place, then
         * flag): a place taken after our last look is seen now, or its
         * taker sees the flag and signals (it takes mu, which we hold
         * until the wait releases it). */
        atomic_store(&k->idle, true);
        if (!keeper_look(p, k))
            pthread_cond_wait(&k->cv, &k->mu);
        atomic_store(&k->idle, false);
        *empty = 0;
        return;
    }
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += (long)MP_KEEP_TICK_MS * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&k->cv, &k->mu, &ts);
}

static void *keeper_main(void *arg)
{
    struct mp_keeper *k = arg;        /* not p->keep: close clears it */
    mempool *p = k->p;
    unsigned empty = 0;
    pthread_mutex_lock(&k->mu);
    while (!k->stop) {
        bool any;
        pthread_mutex_unlock(&k->mu);
        any = keeper_look(p, k);
        empty = any ? 0 : empty + 1;
        pthread_mutex_lock(&k->mu);
        if (!k->stop)
            keeper_nap(p, k, &empty);
    }
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

static void keeper_free(struct mp_keeper *k)
{
    pthread_cond_destroy(&k->cv);
    pthread_mutex_destroy(&k->mu);
    free(k);
}

/* Make and run the keeper; 0 or a negative errno (nothing left behind). */
static int keeper_start(mempool *p)
{
    struct mp_keeper *k = calloc(1, sizeof(*k));
    pthread_condattr_t ca;
    sigset_t all, old;
    int rc;
    if (!k)
        return -ENOMEM;
    if ((rc = MP_FP(keep_start))) {
        free(k);
        return rc;
    }
    pthread_mutex_init(&k->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&k->cv, &ca);
    pthread_condattr_destroy(&ca);
    k->forkgen = p->forkgen;
    k->p = p;
    p->keep = k;
    /* The thread starts with every signal blocked (it inherits our mask
     * at creation): the application's handlers run in its own threads. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&k->th, NULL, keeper_main, k);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        p->keep = NULL;
        keeper_free(k);
        return -rc;
    }
    return 0;
}

/* The running keeper, starting it the first time; NULL if there is none
 * (it failed to start: never tried again, the cap is the fallback). */
static struct mp_keeper *keeper_get(mempool *p)
{
    uint32_t st = atomic_load_explicit(&p->keep_st, memory_order_acquire);
    if (st == 0 && atomic_compare_exchange_strong(&p->keep_st, &st, 1)) {
        /* Release: p->keep is written before the state says it runs. */
        st = keeper_start(p) == 0 ? 2 : 3;
        atomic_store_explicit(&p->keep_st, st, memory_order_release);
    }
    return st == 2 ? p->keep : NULL;
}

_Atomic uint64_t *mempool__keep_enter(mempool *p, uint32_t idx, unsigned who)
{
    uint64_t v = (uint64_t)(idx + 1) << 32 | who;
    struct mp_keeper *k;
    if (who < 1 || who > MP_WORKERS || who == (unsigned)p->slot + 1 ||
        !(k = keeper_get(p)))
        return NULL;
    for (unsigned i = 0; i < MP_KEEP_N; i++) {
        uint64_t zero = 0;
        if (atomic_load_explicit(&k->watch[i], memory_order_relaxed) ||
            !atomic_compare_exchange_strong(&k->watch[i], &zero, v))
            continue;
        /* seq_cst place, then flag (keeper_nap()). */
        if (atomic_load(&k->idle)) {
            pthread_mutex_lock(&k->mu);
            pthread_cond_signal(&k->cv);
            pthread_mutex_unlock(&k->mu);
        }
        MP_FP(keep_kept);
        return &k->watch[i];
    }
    return NULL;                      /* all places taken: the cap */
}

void mempool__keep_stop(mempool *p)
{
    struct mp_keeper *k = p->keep;
    if (!k)
        return;
    p->keep = NULL;
    atomic_store(&p->keep_st, 3);     /* closed: never started again */
    if (k->forkgen != atomic_load(&mempool__fork_gen)) {
        free(k);                      /* the parent's: no thread here */
        return;
    }
    pthread_mutex_lock(&k->mu);
    k->stop = true;
    pthread_cond_signal(&k->cv);
    pthread_mutex_unlock(&k->mu);
    pthread_join(k->th, NULL);
    keeper_free(k);
}
