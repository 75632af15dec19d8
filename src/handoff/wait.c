/* SPDX-License-Identifier: MIT */
/*
 * wait.c - mempool_get_wait(): wait for a reserved object to be published
 * (Plasma's create/seal/get), the owner locks of the handoff directories,
 * and the handoff part of reaping a worker.
 *
 * get_wait sleeps on the low half of the entry word (state, writer, flags):
 * publish, abort, delete and the reaper's free of a dead writer's
 * reservation all change it, and each of them wakes the entry's sleepers
 * when its waiters count says there are any (publish costs one load of a
 * word in the entry's own cache line otherwise). A writer that died with
 * nobody reaping it must be noticed too: the handle's keeper thread
 * (keeper.c) looks at the writers of its sleepers every 50 ms and wakes
 * those whose writer died, so a sleep needs no timer (its cancel was on
 * the wake-up path: 4 % of a one-CPU wake-up). Without a keeper (it could
 * not start, all its places taken) a sleep is capped at 50 ms instead.
 * Either way the woken waiter reaps the writer itself, which frees the
 * reservation (-ENOENT). The keeper wakes too a sleeper whose entry left
 * the generation it waits for: the sleeper compares the whole word but
 * FUTEX_WAIT only the low half, which an abort and the same writer's next
 * reserve of the entry, both between that look and the FUTEX_WAIT, bring
 * back as it was (the abort's wake-up found nobody asleep yet: it slept
 * until the new reservation ended, check_review13 wait_aba).
 *
 * Owner locks (names directory, channel directory) are a word holding the
 * holder's slot + 1. A dead holder is replaced by the next locker, which
 * then repairs what the holder left. A live holder is never replaced, even
 * a stopped one (SIGSTOP, a debugger, a frozen cgroup): it may continue
 * mid-change. It delays only other writers of that directory (never gets,
 * listings, sends or receives), and those for at most the peer wait bound
 * (mempool__wait_bound_ns(): MEMPOOL_PEER_WAIT_MS, or evict_wait_ms if
 * longer), after which they answer -EAGAIN having changed nothing.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <time.h>

#include "failpoint.h"
#include "handoff.h"
#include "keeper.h"
#include "spin.h"

#define WAIT_CAP_NS 50000000u   /* look at a silent writer every 50 ms */

/* get_wait's past spins, this thread's (spin.h). */
static _Thread_local mp_spin wait_spin = { MP_SPIN_KEY_ENTRY, 0 };

/* get_wait spins watching the entry word (spin.h). */
static uint64_t entry_look(const void *arg)
{
    return atomic_load((_Atomic uint64_t *)arg);
}

/* One sleep of get_wait on entry @p e (index @p idx) while its word is
 * @p w: untimed when the keeper watches the writer (keeper.c), else
 * capped at WAIT_CAP_NS. 0 or -ETIMEDOUT. */
static int wait_sleep(mempool *p, mp_entry *e, uint32_t idx, uint64_t w,
                      uint64_t deadline)
{
    _Atomic uint64_t *place = mempool__keep_enter(p, idx, MP_W_GEN(w),
                                                  MP_W_WHO(w));
    int rc = 0;
    atomic_fetch_add(&e->waiters, 1);
    if (atomic_load(&e->word) == w) {
        atomic_fetch_add_explicit(&p->hand->get_waits, 1,
                                  memory_order_relaxed);
        mempool__run_asleep(p);
        rc = mp_futex_wait(mp_word_low(&e->word), (uint32_t)w, deadline,
                           place ? 0 : WAIT_CAP_NS);
        mempool__run_awake(p);
    }
    atomic_fetch_sub(&e->waiters, 1);
    mempool__keep_leave(place);
    return rc;
}

/* Is writer @p who (a word's WHO) of the reservation we wait on another
 * worker that died? Asked only when @p now: at any look but the first -
 * after a sleep (the keeper's wake for a dead writer, a capped sleep's
 * end) or a spin that saw the word move - or before answering
 * -ETIMEDOUT, not before the first sleep. The answer is a system call
 * (the slot's OFD lock: 1.5-2 us here) that made a sleeper burn a fifth
 * more CPU per wake-up than a pipe reader, and a task that used more CPU
 * is less often let run at once by the wake-up that follows (EEVDF: the
 * waker keeps the CPU until it blocks). A writer already dead at the
 * first sleep is noticed by the keeper within its tick (keeper.c), or by
 * the capped sleep's end when there is no keeper: the bound either way. */
static bool writer_dead(mempool *p, unsigned who, bool now)
{
    return now && who != (unsigned)p->slot + 1 && who >= 1 &&
           who <= MP_WORKERS && !mempool__slot_alive(&p->core, (int)who - 1);
}

int mempool_get_wait(mempool *p, mempool_dref r, mempool_view *v,
                     int64_t timeout_ms)
{
    uint64_t deadline = mp_deadline(timeout_ms);
    uint32_t idx, gen;
    mp_entry *e;
    int rc;

    if ((rc = mempool__get_entry(p, r, v, &idx, &gen)))
        return rc;
    e = mp_entry_at(p, idx);
    /* again: not the first look - one after a sleep, or after a spin
     * that saw the word move (writer_dead() asks only then). */
    for (bool again = false;; again = true) {
        uint64_t w = atomic_load(&e->word);
        unsigned who = MP_W_WHO(w);
        bool late;
        if (MP_W_GEN(w) != gen)
            return -ENOENT;          /* aborted, writer reaped, or reused */
        /* Published (or gone): mempool_get's short path, not the full
         * one - the wake-up's last step, on the clock of the wake-up
         * latency (its own checks of r and the word again, the full path
         * for anything unusual). */
        if (MP_W_ST(w) != MP_ST_ALLOC)
            return mempool_get(p, r, v);
        /* Only a worker reserves (WHO 1..MP_WORKERS, entry.c): any other
         * WHO is damage (a user who may write the pool), whose writer's
         * death we would wait for in vain (check_review12 wait_nobody). */
        if (who < 1 || who > MP_WORKERS)
            return MEMPOOL_ECORRUPT;
        /* (No clock read for a wait without a deadline.) */
        late = deadline != UINT64_MAX && mp_deadline(0) >= deadline;
        /* A dead writer's reservation is gone: freed by the repair, or
         * owed while the allocator lock's holder is stopped (the word
         * then stays as it is until that holder goes on: looking again
         * looped, past any deadline - check_review10). */
        if (writer_dead(p, who, again || late)) {
            mempool__reap_slot(p, (int)who - 1);
            mempool__entry_repair(p, (int)who - 1, idx);
            return -ENOENT;
        }
        if (late)
            return -ETIMEDOUT;
        /* The writer running on another CPU may publish in a moment. */
        if (mempool__spin(p, who <= MP_WORKERS ? who : 0, NULL, &wait_spin,
                          entry_look, &e->word, deadline))
            continue;
        /* -ETIMEDOUT here (the deadline passed before the sleep began:
         * preempted on the way) is answered at the top, after the
         * writer's liveness question: a dead writer's reservation is
         * -ENOENT whenever we notice the deadline (check_review10). */
        (void)wait_sleep(p, e, idx, w, deadline);
    }
}

/* ---- owner locks ------------------------------------------------------ */

int mempool__olock(mempool *p, _Atomic uint32_t *l)
{
    uint32_t me = (uint32_t)p->slot + 1;
    uint64_t deadline = 0;
    unsigned spins = 0, naps = 0;
    for (;;) {
        uint32_t v = 0;
        uint64_t now;
        if (atomic_compare_exchange_strong(l, &v, me))
            return 0;
        if (++spins < 64) {
            mp_cpu_relax();
            continue;
        }
        /* Only a holder that is not alive is replaced: a stopped one may
         * continue at any moment, mid-change, so it keeps the lock. */
        if (v != me &&
            (v > MP_WORKERS || !mempool__slot_alive(&p->core, (int)v - 1)) &&
            atomic_compare_exchange_strong(l, &v, me))
            return 1;                 /* its holder is gone: repair */
        now = mempool__now_ns();
        if (!deadline)
            deadline = now + mempool__wait_bound_ns(p);
        else if (now >= deadline)
            return -EAGAIN;           /* a live holder that does not let go */
        /* 50 us, doubling to 800 us: a stopped holder costs no CPU. */
        nanosleep(&(struct timespec){ 0, 50000L << naps }, NULL);
        naps += naps < 4;
    }
}

void mempool__ounlock(mempool *p, _Atomic uint32_t *l)
{
    uint32_t me = (uint32_t)p->slot + 1;
    atomic_compare_exchange_strong(l, &me, 0);
}

/* ---- reaping ---------------------------------------------------------- */

static int hand_verify(mempool *p, char *why, size_t whylen)
{
    int rc = mempool__names_verify(p, why, whylen);
    return rc ? rc : mempool__chan_verify(p, why, whylen);
}

/* What core's reaper and fsck call up through (pool.c sets it). */
const mp_hand_ops mempool__hand_ops = { mempool__chan_reap, hand_verify };
