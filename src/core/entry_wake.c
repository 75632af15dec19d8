/* SPDX-License-Identifier: MIT */
/*
 * entry_wake.c - the waking side of mempool_get_wait(): its sleepers
 * (handoff/wait.c) sleep on the low half of an entry's word, and core
 * wakes them after a change that ends the wait (a publish, a delete, a
 * reservation gone). Here, in core, because those changes are core's.
 *
 * A publish that woke a sleeper then yields it the CPU (sched_yield()),
 * once. Why: on one CPU the woken sleeper either preempts the publisher
 * at once (EEVDF) or waits until the publisher blocks or its slice ends
 * (in the bench 1.2 us later; much later for a publisher that goes on
 * working), and which of the two depends on how much CPU each has burnt
 * lately. A pipe's reader is in the same lottery, so get_wait's wake-up
 * could at best match the pipe's. The yield settles it for the sleeper:
 * ftrace (sched_switch, 800 publishes each): the sleeper ran at once
 * after 790 publishes, 386 before, the pipe reader after 413 writes.
 * The bench's wake-up trials (500 a block, 12 blocks interleaved with the
 * build before, session 11): get_wait / pipe medians unpinned 0.92x
 * (<= 0.95x in 8 of 12 blocks) against 1.03x (3 of 12), both on one CPU
 * 0.89x against 1.01x; the sleeper's CPU per trial 6.9-8.5 us against
 * 8.2-10.5 (it no longer waits runnable).
 *
 * When it cannot hurt much: only after a FUTEX_WAKE that woke somebody
 * (a publish nobody waits for costs nothing new; a sleeper woken onto
 * another CPU makes the yield a system call that returns at once); never
 * after a delete or the reaper's free (they may hold locks; nobody waits
 * for those to get data). A yield that comes back late (more than
 * MP_YIELD_LATE_NS) let somebody else run - a CPU hog beside us, or a
 * sleeper that works long - so this thread's publishes stop yielding for
 * a while, doubling with each late one: the channel's YIELD rule and
 * figures, one helper for both (util/yield_off.h).
 */
#include <limits.h>
#include <sched.h>

#include "failpoint.h"
#include "futex.h"
#include "internal.h"
#include "yield_off.h"

/* This thread's publish yields' back-off (util/yield_off.h). */
static _Thread_local mp_yield_off wy;

/* Wake get_wait sleepers of entry @p idx; how many were woken. */
static int wake(mempool *p, uint32_t idx)
{
    mp_entry *e = mp_entry_at(p, idx);
    /* seq_cst after the caller's seq_cst CAS of the word: either we see
     * the sleeper's count or it sees the new word (Dekker). */
    if (!atomic_load(&e->waiters))
        return 0;
    return mp_futex_wake(mp_word_low(&e->word), INT_MAX);
}

void mempool__entry_wake(mempool *p, uint32_t idx)
{
    (void)wake(p, idx);
}

/* Give a sleeper we just woke the CPU, unless yields are put off; a late
 * yield puts the next ones off (top of file). */
static void wake_yield(void)
{
    uint64_t t0 = mp_mono_ns();
    if (t0 < wy.off)
        return;
    MP_FP(wake_yield);
    sched_yield();
    (void)mp_yield_timed(&wy, t0, mp_mono_ns());
}

void mempool__entry_wake_published(mempool *p, uint32_t idx)
{
    if (wake(p, idx) > 0)
        wake_yield();
}
