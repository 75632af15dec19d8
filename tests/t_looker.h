/* SPDX-License-Identifier: MIT */
/*
 * t_looker.h - what the white-box spin suites (check_handoff_spin,
 * check_handoff_stream) drive a spin decision with, in one copy:
 *
 *   struct looker  a word a spin watches, moved at a chosen look;
 *   look           the mp_look_fn that counts looks and moves it;
 *   unanswered     the check of a spin's memory after a spin nobody
 *                  answered;
 *   pin_to         the caller pinned to one CPU of its affinity.
 *
 * Include after spin.h.
 */
#ifndef T_LOOKER_H
#define T_LOOKER_H

#include <check.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

struct looker {
    _Atomic uint64_t word;
    _Atomic unsigned looks;
    unsigned move_at;            /* the word moves at this look (0 never) */
};

static uint64_t look(const void *arg)
{
    struct looker *l = (struct looker *)(uintptr_t)arg;
    unsigned n = atomic_fetch_add(&l->looks, 1) + 1;
    if (l->move_at && n == l->move_at)
        atomic_fetch_add(&l->word, 1);
    return atomic_load(&l->word);
}

/* After a spin the peer did not answer, from @p f unanswered ones: one
 * more, or - if the VM preempted the spin (it ran 20 us past its bound:
 * spin.c, SPIN_LATE_NS; seen under ASan in CI) - the floor, 1/32 of the
 * bound (a count of 5), at once. */
static void unanswered(const mp_spin *st, uint32_t f)
{
    uint32_t n = atomic_load(&st->fails);
    ck_assert_msg(n == f + 1 || (f < 5 && n == 5),
                  "unanswered spins %u after %u", n, f);
}

/* Pin the caller to its @p nth allowed CPU (the last one if fewer);
 * that CPU + 1. */
static uint64_t pin_to(int nth)
{
    cpu_set_t all, one;
    int k = 0, last = -1;
    ck_assert_int_eq(sched_getaffinity(0, sizeof all, &all), 0);
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (!CPU_ISSET(c, &all))
            continue;
        last = c;
        if (k++ == nth)
            break;
    }
    ck_assert_int_ge(last, 0);
    CPU_ZERO(&one);
    CPU_SET(last, &one);
    ck_assert_int_eq(sched_setaffinity(0, sizeof one, &one), 0);
    return (uint64_t)last + 1;
}

#endif /* T_LOOKER_H */
