/* SPDX-License-Identifier: MIT */
/*
 * keeper.c - the handle's keeper thread, which lets mempool_get_wait()
 * and the channel and name_get sleeps sleep without a timer.
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
 * The channel and name_get sleeps (sleepers.h) capped every counted sleep
 * at MP_SL_LOOK_NS (5 s) for the same kind of reason - a sender killed
 * between its commit and its wake-up leaves its item next to sleepers
 * nobody will wake - and paid the same timer: session 12, one-CPU
 * ping-pong (send, recv, get, release both ways), CPU time per round
 * trip, 14 interleaved runs a side on the loaded machine, medians: 5.91
 * us capped against 5.23 untimed when every leg sleeps, 5.75 against 5.03
 * with the yields of spin.h: ~350 ns a sleep. Being two-threaded costs
 * less (the same runs with an idle second thread in both processes:
 * +40 to +175 ns a round trip; a pipe's +270), so those sleeps now ask
 * the keeper to look again for them too.
 *
 * How: a get_wait sleeper registers (entry, writer slot) in one of
 * MP_KEEP_N places of its handle's keeper (private memory: nothing
 * another process or user can touch) and sleeps untimed (unless it has a
 * deadline of its own). The keeper, one thread per handle started by the
 * first such sleep, looks every MP_KEEP_TICK_MS at the writers of the
 * registered sleepers (mempool__slot_alive(): the slot's OFD lock, which
 * the kernel drops when the whole process is gone - a writer thread that
 * exits in a live process is still alive) and makes a FUTEX_WAKE on the
 * entry word of each sleeper whose writer died; the sleeper then reaps it
 * as before (wait.c). It makes one too for a sleeper whose entry has left
 * the generation it waits for (its look before sleeping compared the
 * whole word, its FUTEX_WAIT only the low half, which the same writer's
 * next reservation of the entry brings back: keeper_gen_moved()). A wake
 * that comes before the sleeper is in FUTEX_WAIT is lost, but the keeper
 * repeats it every tick while the
 * place is taken, so a death is noticed within about one tick, as with
 * the cap. For get_wait the keeper writes nothing shared; it only reads
 * the entry table's geometry (fixed at open) and makes system calls.
 *
 * A channel or name_get sleeper with neither deadline nor cap of its own
 * registers (futex word, sleepers word, look time = now + MP_SL_LOOK_NS)
 * instead (mempool__keep_look(); the place says KEEP_LOOK while the three
 * are filled in, then KEEP_LOOK | a generation, re-read after them so that
 * the three are one registration's). When the time comes the keeper does
 * what a destroy does (mp_wake(): bump the word, wake its counted
 * sleepers, taking them off the count as any waker does, so the sleepers
 * word stays exact; a bump is only a "look again" to every waiter of the
 * word) and again every tick until the sleeper leaves its place. It
 * sleeps until the earliest look time when no writer is watched: an idle
 * consumer costs one keeper wake-up per 5 s.
 *
 * The keeper publishes until when it sleeps (k->until; UINT64_MAX: untimed
 * after MP_KEEP_IDLE ticks with no place taken). A registrant that needs
 * a look sooner (a writer watch: within a tick; a look: at its time)
 * wakes it (Dekker's handshake on until and the places, seq_cst: the
 * keeper stores until and then reads the places once more, a registrant
 * takes its place and then reads until - either the keeper's last read
 * sees the new place or the registrant sees the until it must beat). A
 * handle with no keeper (it could not start: failpoint keep.start, no
 * memory or threads; all places taken; another thread starting it at
 * that moment) sleeps with the cap as before. Its failpoints (keep.*) are
 * exercised by check_wait_keeper.c and check_handoff_look.c. The keeper
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
#include "sleepers.h"

struct mp_keeper {
    mempool         *p;           /* the handle it looks after */
    pthread_t        th;
    pthread_mutex_t  mu;
    pthread_cond_t   cv;
    bool             stop;        /* under mu */
    /* Until when it sleeps (CLOCK_MONOTONIC ns; UINT64_MAX: untimed, idle):
     * a registrant that needs it sooner wakes it. */
    _Atomic uint64_t until;
    _Atomic uint64_t gen;         /* look places' generations */
    uint64_t         forkgen;     /* the process it runs in */
    /* (entry + 1) << 32 | its generation's low 16 bits << 16 | writer
     * slot + 1: a get_wait sleeper's writer and entry to watch;
     * KEEP_LOOK | generation: a handoff sleeper to look again for
     * at look[].by (KEEP_LOOK alone: being filled in); 0: a free place. */
    _Atomic uint64_t watch[MP_KEEP_N];
    struct {
        _Atomic(_Atomic uint32_t *) word;
        _Atomic(_Atomic uint64_t *) sl;
        _Atomic uint64_t by;
    } look[MP_KEEP_N];
};

#define KEEP_LOOK (UINT64_C(1) << 63)
#define KEEP_TICK_NS ((uint64_t)MP_KEEP_TICK_MS * 1000000u)

/* Look place @p i (value @p v, taken now): signal its word when its time
 * has come (if @p act). When it wants the next look. */
static uint64_t keeper_look_one(struct mp_keeper *k, unsigned i, uint64_t v,
                                uint64_t now, bool act)
{
    _Atomic uint32_t *word = atomic_load(&k->look[i].word);
    _Atomic uint64_t *sl = atomic_load(&k->look[i].sl);
    uint64_t by = atomic_load(&k->look[i].by);
    /* Filled in before the place took v (seq_cst both): still v, the
     * three belong together (a taker in between changed the place). */
    if (v == KEEP_LOOK || atomic_load(&k->watch[i]) != v)
        return now + KEEP_TICK_NS;
    if (by > now)
        return by;
    /* As a destroy does: bump, wake whoever is counted (sleepers.h); the
     * woken look at the channel or the names again. */
    if (act)
        mp_wake(word, sl, INT_MAX);
    return now + KEEP_TICK_NS;        /* until it leaves its place */
}

/* Has the entry of get_wait place value @p v left the generation its
 * sleeper waits for? Its sleeper compared the whole word but sleeps on
 * its low half (state, writer, flags), which a new generation of the
 * same writer and flags brings back as it was: the writer's abort (or
 * the reaper's free) and its next reserve of the same entry, both
 * between the sleeper's look and its FUTEX_WAIT, leave it asleep on a
 * value that is "still" there, until that new reservation ends - for
 * ever if it never does (check_review13 wait_aba). The abort's wake-up
 * found nobody in the kernel yet; this look is its repeat, as for a
 * writer's death. */
static bool keeper_gen_moved(mempool *p, uint32_t idx, uint64_t v)
{
    uint64_t w = atomic_load(&mp_entry_at(p, idx)->word);
    return (uint16_t)MP_W_GEN(w) != (uint16_t)(v >> 16);
}

/* If @p act, wake the sleepers whose writer died or whose entry moved on
 * to another generation, and the handoff sleepers whose look is due;
 * when it should look next (UINT64_MAX: no place is taken). */
static uint64_t keeper_look(mempool *p, struct mp_keeper *k, bool act)
{
    uint64_t next = UINT64_MAX, now = mp_mono_ns();
    for (unsigned i = 0; i < MP_KEEP_N; i++) {
        uint64_t v = atomic_load(&k->watch[i]), t;
        uint32_t idx = (uint32_t)(v >> 32) - 1;
        int d = (int)(v & 0xffffu) - 1;
        if (!v)
            continue;
        if (v & KEEP_LOOK) {
            t = keeper_look_one(k, i, v, now, act);
        } else {
            t = now + KEEP_TICK_NS;
            if (act && (keeper_gen_moved(p, idx, v) ||
                        !mempool__slot_alive(&p->core, d)))
                mp_futex_wake(mp_word_low(&mp_entry_at(p, idx)->word),
                              INT_MAX);
        }
        next = t < next ? t : next;
    }
    return next;
}

/* Sleep until @p next (a tick when no place is taken), or untimed when
 * idle long enough; under k->mu. Registrants that need a look sooner
 * than k->until wake it: the seq_cst store of until, then the places
 * again (registrants: place, then until) - a place taken after our last
 * look is seen now, or its taker sees our until and signals (it takes
 * mu, which we hold until the wait releases it). */
static void keeper_nap(mempool *p, struct mp_keeper *k, uint64_t next,
                       unsigned *empty)
{
    uint64_t again;
    *empty = next == UINT64_MAX ? *empty + 1 : 0;
    if (next == UINT64_MAX && *empty < MP_KEEP_IDLE)
        next = mp_mono_ns() + KEEP_TICK_NS;
    atomic_store(&k->until, next);
    again = keeper_look(p, k, false);
    if (again < next) {
        next = again;
        atomic_store(&k->until, next);
    }
    if (next == UINT64_MAX) {
        pthread_cond_wait(&k->cv, &k->mu);
        *empty = 0;
    } else {
        struct timespec ts = { (time_t)(next / 1000000000u),
                               (long)(next % 1000000000u) };
        pthread_cond_timedwait(&k->cv, &k->mu, &ts);
    }
    atomic_store(&k->until, 0);      /* looking: nobody need wake it */
}

static void *keeper_main(void *arg)
{
    struct mp_keeper *k = arg;        /* not p->keep: close clears it */
    mempool *p = k->p;
    unsigned empty = 0;
    pthread_mutex_lock(&k->mu);
    while (!k->stop) {
        uint64_t next;
        pthread_mutex_unlock(&k->mu);
        next = keeper_look(p, k, true);
        pthread_mutex_lock(&k->mu);
        if (!k->stop)
            keeper_nap(p, k, next, &empty);
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

/* Wake the keeper if it sleeps past @p need (after a place was taken:
 * seq_cst place, then until - keeper_nap()). */
static void keeper_call(struct mp_keeper *k, uint64_t need)
{
    if (atomic_load(&k->until) > need) {
        pthread_mutex_lock(&k->mu);
        pthread_cond_signal(&k->cv);
        pthread_mutex_unlock(&k->mu);
    }
}

/* Take a free place of @p k with @p v; its index or -1 (all taken). */
static int keeper_take(struct mp_keeper *k, uint64_t v)
{
    for (unsigned i = 0; i < MP_KEEP_N; i++) {
        uint64_t zero = 0;
        if (atomic_load_explicit(&k->watch[i], memory_order_relaxed) ||
            !atomic_compare_exchange_strong(&k->watch[i], &zero, v))
            continue;
        return (int)i;
    }
    return -1;
}

_Atomic uint64_t *mempool__keep_enter(mempool *p, uint32_t idx, uint32_t gen,
                                      unsigned who)
{
    uint64_t v = (uint64_t)(idx + 1) << 32 | (uint64_t)(gen & 0xffffu) << 16 |
                 who;
    struct mp_keeper *k;
    int i;
    if (who < 1 || who > MP_WORKERS || who == (unsigned)p->slot + 1 ||
        !(k = keeper_get(p)) || (i = keeper_take(k, v)) < 0)
        return NULL;                  /* all places taken: the cap */
    keeper_call(k, mp_mono_ns() + KEEP_TICK_NS);
    MP_FP(keep_kept);
    return &k->watch[i];
}

_Atomic uint64_t *mempool__keep_look(mempool *p, _Atomic uint32_t *word,
                                     _Atomic uint64_t *sl, uint64_t by)
{
    struct mp_keeper *k = keeper_get(p);
    uint64_t g;
    int i;
    if (!k || (i = keeper_take(k, KEEP_LOOK)) < 0)
        return NULL;                  /* all places taken: the cap */
    atomic_store_explicit(&k->look[i].word, word, memory_order_relaxed);
    atomic_store_explicit(&k->look[i].sl, sl, memory_order_relaxed);
    atomic_store_explicit(&k->look[i].by, by, memory_order_relaxed);
    g = (atomic_fetch_add_explicit(&k->gen, 1, memory_order_relaxed) + 1) &
        ~KEEP_LOOK;
    atomic_store(&k->watch[i], KEEP_LOOK | (g ? g : 1));
    keeper_call(k, by);
    MP_FP(keep_looked);
    return &k->watch[i];
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
