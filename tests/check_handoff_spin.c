/* SPDX-License-Identifier: MIT */
/*
 * check_handoff_spin.c - the adaptive, bounded spin before a handoff
 * futex sleep (src/handoff/spin.h):
 *
 *   decide    mempool__spin() does not even look at the word without a
 *             lead (a send elsewhere since the last spin decision, which
 *             spends it), when the peer is unknown, or asleep without a
 *             wake-up of ours (on our CPU it yields instead:
 *             check_handoff_yield.c); it watches the word while the peer
 *             runs on another CPU, gives up at its bound (and halves the next one), and
 *             returns as soon as the word moves; one waiter per side
 *             spins (a running gate keeps the others off it).
 *   reaped    a worker killed asleep in a receive leaves its run word
 *             saying so; the reaper zeroes it (no spinner waits for it).
 *   pingpong  two processes (pinned to two CPUs when there are two) hand
 *             one reference back and forth - the spinning regime - while
 *             the echo side is stopped and continued now and then: every
 *             round trip completes, in order, and the object is freed at
 *             the end exactly once.
 *
 *   threads   two askers and two echoes, threads of one handle sharing the
 *             channel handles, run word and gates (the TSan lane runs
 *             this file: labelled stress).
 *
 * White-box (calls mempool__spin and reads the run words), so it links
 * the library's objects. No timing is asserted.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers_base.h"
#include <mempool/mempool.h>
#include "internal.h"
#include "spin.h"
#define T_WB_TAG "spin"
#include "t_wbpool.h"
#include "t_looker.h"

/* ---- decide --------------------------------------------------------------- */


/* Stay on one CPU, so "our CPU" does not change under the test. */
static uint64_t pin_here(void)
{
    int cpu = sched_getcpu();
    cpu_set_t one;
    ck_assert_int_ge(cpu, 0);
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    ck_assert_int_eq(sched_setaffinity(0, sizeof one, &one), 0);
    return (uint64_t)cpu + 1;
}

/* One spin decision with a fresh lead elsewhere (woke: its send woke
 * someone), the peer's run word @p run, the gate @p gate. */
static bool spin_led(_Atomic uint64_t *rw, uint64_t run, bool woke,
                     _Atomic uint64_t *gate, mp_spin *st, struct looker *l,
                     uint64_t deadline)
{
    atomic_store(rw, run);
    atomic_store(&l->looks, 0);
    mempool__lead(MP_SPIN_KEY_CHAN(2), woke);
    return mempool__spin(P, MP_WORKERS, gate, st, look, l, deadline);
}

START_TEST(test_decide)
{
    uint32_t f;
    const uint64_t peer1 = MP_WORKERS;     /* a slot nobody uses here */
    _Atomic uint64_t *run = &P->hand->run[peer1 - 1], gate;
    uint64_t me = pin_here(), other = me + 1;
    struct looker l = { 0, 0, 0 };
    mp_spin st = { MP_SPIN_KEY_CHAN(1), 0 };

    ck_assert_uint_ne(peer1, (uint64_t)P->slot + 1);
    /* no lead (nothing sent since the last spin decision), or a lead on
     * what we wait on (a stream's producer): no look at all, even with
     * the peer awake on another CPU; the decision spends the lead */
    atomic_store(run, other);
    ck_assert(!mempool__spin(P, peer1, NULL, &st, look, &l, UINT64_MAX));
    mempool__lead(MP_SPIN_KEY_CHAN(1), true);
    ck_assert(!mempool__spin(P, peer1, NULL, &st, look, &l, UINT64_MAX));
    mempool__lead(MP_SPIN_KEY_CHAN(2), true);
    ck_assert(!mempool__spin(P, 0, NULL, &st, look, &l, UINT64_MAX));
    ck_assert(!mempool__spin(P, peer1, NULL, &st, look, &l, UINT64_MAX));
    mempool__lead(MP_SPIN_KEY_CHAN(2), true);
    ck_assert(!mempool__spin(P, MP_WORKERS + 1, NULL, &st, look, &l,
                             UINT64_MAX));
    ck_assert_uint_eq(atomic_load(&l.looks), 0);

    /* the peer unknown, asleep (our lead woke nobody): no look at all
     * (awake on our CPU it gets the CPU instead: check_handoff_yield) */
    const uint64_t never[] = { 0, me | MP_RUN_ASLEEP,
                               other | MP_RUN_ASLEEP };
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++) {
        ck_assert(!spin_led(run, never[i], false, NULL, &st, &l, UINT64_MAX));
        ck_assert_uint_eq(atomic_load(&l.looks), 0);
        ck_assert_uint_eq(atomic_load(&st.fails), 0);
    }

    /* awake on another CPU, silent: spins to its bound, then halves it
     * (unanswered() allows the preempted case) */
    ck_assert(!spin_led(run, other, false, NULL, &st, &l, UINT64_MAX));
    ck_assert_uint_gt(atomic_load(&l.looks), 1);
    unanswered(&st, 0);
    f = atomic_load(&st.fails);
    ck_assert(!spin_led(run, other, false, NULL, &st, &l, UINT64_MAX));
    unanswered(&st, f);
    /* a deadline already past: no wait beyond it */
    f = atomic_load(&st.fails);
    ck_assert(!spin_led(run, other, false, NULL, &st, &l, 0));
    ck_assert_uint_le(atomic_load(&l.looks), 1 + 8);
    unanswered(&st, f);

    /* the word moves while it spins: true, and the bound is whole again */
    l.move_at = 5;
    ck_assert(spin_led(run, other, false, NULL, &st, &l, UINT64_MAX));
    ck_assert_uint_eq(atomic_load(&l.looks), 5);
    ck_assert_uint_eq(atomic_load(&st.fails), 0);

    /* another waiter of the same side spins (its gate runs): not us */
    atomic_store(&gate, UINT64_MAX);
    ck_assert(!spin_led(run, other, false, &gate, &st, &l, UINT64_MAX));
    ck_assert_uint_eq(atomic_load(&l.looks), 0);
    /* an expired gate (its spinner gone): we take it, and give it back */
    atomic_store(&gate, 1);
    l.move_at = 3;
    ck_assert(spin_led(run, other, false, &gate, &st, &l, UINT64_MAX));
    ck_assert_uint_eq(atomic_load(&l.looks), 3);
    ck_assert_uint_eq(atomic_load(&gate), 0);

    /* asleep on another CPU, but our lead's send woke a sleeper: we wait
     * for it a while (WOKE) */
    l.move_at = 4;
    ck_assert(spin_led(run, other | MP_RUN_ASLEEP, true, NULL, &st, &l,
                       UINT64_MAX));
    ck_assert_uint_eq(atomic_load(&l.looks), 4);
    atomic_store(run, 0);
}
END_TEST

/* ---- reaped --------------------------------------------------------------- */

START_TEST(test_reaped)
{
    mempool_chan *c;
    int fds[2];
    pid_t k;
    int slot = -1, st;
    double t0;

    ck_assert_int_eq(mempool_chan_open(P, "sp", 4, MEMPOOL_CHAN_CREATE, &c),
                     0);
    ck_assert_int_eq(pipe(fds), 0);
    if ((k = fork()) == 0) {
        mempool *q = t_wb_attach();
        mempool_chan *qc;
        mempool_dref r;
        if (!q || mempool_chan_open(q, "sp", 0, 0, &qc))
            _exit(2);
        if (write(fds[1], &q->slot, sizeof q->slot) != sizeof q->slot)
            _exit(3);
        (void)mempool_chan_recv(qc, &r, 60000);   /* killed asleep here */
        _exit(4);
    }
    ck_assert_int_eq(read(fds[0], &slot, sizeof slot), (ssize_t)sizeof slot);
    ck_assert(slot >= 0 && slot < MP_WORKERS);
    /* asleep in its receive: its run word says so */
    t0 = t_now_s();
    while (!(atomic_load(&P->hand->run[slot]) & MP_RUN_ASLEEP)) {
        ck_assert_msg(t_now_s() - t0 < 60, "the receiver never slept");
        t_sleep_ms(1);
    }
    ck_assert_int_eq(kill(k, SIGKILL), 0);
    ck_assert_int_eq(waitpid(k, &st, 0), k);
    ck_assert(WIFSIGNALED(st));
    ck_assert_int_ge(mempool_reap(P), 1);
    ck_assert_uint_eq(atomic_load(&P->hand->run[slot]), 0);
    mempool_chan_close(c);
    close(fds[0]);
    close(fds[1]);
}
END_TEST

/* ---- pingpong ------------------------------------------------------------- */

#define TRIPS 3000

/* The echo side: receive on "ping", check the object, send it back. */
static int echo(void)
{
    mempool *q = t_wb_attach();
    mempool_chan *in, *out;
    if (!q || mempool_chan_open(q, "ping", 0, 0, &in) ||
        mempool_chan_open(q, "pong", 0, 0, &out))
        return 2;
    pin_to(1);
    return t_wb_echo(q, in, out, TRIPS);
}

START_TEST(test_pingpong_stopped)
{
    static const mempool_put_options rco = { .flags = MEMPOOL_PUT_REFCOUNTED };
    mempool_chan *ping, *pong;
    mempool_dref r, back;
    mempool_info in;
    int v = 42, st;
    pid_t k;

    ck_assert_int_eq(mempool_chan_open(P, "ping", 4, MEMPOOL_CHAN_CREATE,
                                       &ping), 0);
    ck_assert_int_eq(mempool_chan_open(P, "pong", 4, MEMPOOL_CHAN_CREATE,
                                       &pong), 0);
    ck_assert_int_eq(mempool_put_ex(P, &v, sizeof v, &rco, &r), 0);
    if ((k = fork()) == 0)
        _exit(echo());
    pin_to(0);
    for (int i = 0; i < TRIPS; i++) {
        ASSERT_RC(mempool_chan_send(ping, r, 60000), 0);
        if (i % 500 == 250) {
            /* stopped while we wait on it (its run word says awake) */
            ck_assert_int_eq(kill(k, SIGSTOP), 0);
            t_sleep_ms(20);
            ck_assert_int_eq(kill(k, SIGCONT), 0);
        }
        ASSERT_RC(mempool_chan_recv(pong, &back, 60000), 0);
        ck_assert(back.off == r.off && back.gen == r.gen);
    }
    ck_assert_int_eq(waitpid(k, &st, 0), k);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    ck_assert_int_eq(mempool_info_get(P, r, &in), 0);
    ck_assert_uint_eq(in.refs, 1);
    ASSERT_RC(mempool_unref(P, r), 0);
    ck_assert_int_eq(mempool_info_get(P, r, &in), -ENOENT);
    mempool_chan_close(ping);
    mempool_chan_close(pong);
}
END_TEST

/* ---- threads ---------------------------------------------------------------- */

/* Threads of one handle share the channel handles (their spin memory),
 * the slot's run word and the sides' gates: two askers and two echoes. */
#define T_TRIPS 2000

struct tside {
    mempool_chan *in, *out;
    int trips;
    mempool_dref first;          /* askers: the object to start with */
    int bad;
};

static void *asker(void *arg)
{
    struct tside *t = arg;
    mempool_dref r = t->first;
    for (int i = 0; i < t->trips && !t->bad; i++)
        if (mempool_chan_send(t->out, r, 60000) ||
            mempool_chan_recv(t->in, &r, 60000))
            t->bad = 1;
    t->first = r;                /* the one it holds at the end */
    return NULL;
}

static void *echoer(void *arg)
{
    struct tside *t = arg;
    for (int i = 0; i < t->trips && !t->bad; i++) {
        mempool_dref r;
        if (mempool_chan_recv(t->in, &r, 60000) ||
            mempool_chan_send(t->out, r, 60000))
            t->bad = 1;
    }
    return NULL;
}

START_TEST(test_threads)
{
    static const mempool_put_options rco = { .flags = MEMPOOL_PUT_REFCOUNTED };
    mempool_chan *ping, *pong;
    struct tside a[2], e[2];
    pthread_t th[4];
    mempool_info in;

    ck_assert_int_eq(mempool_chan_open(P, "tping", 4, MEMPOOL_CHAN_CREATE,
                                       &ping), 0);
    ck_assert_int_eq(mempool_chan_open(P, "tpong", 4, MEMPOOL_CHAN_CREATE,
                                       &pong), 0);
    for (int k = 0; k < 2; k++) {
        int v = 42 + k;
        a[k] = (struct tside){ pong, ping, T_TRIPS, { 0, 0 }, 0 };
        e[k] = (struct tside){ ping, pong, T_TRIPS, { 0, 0 }, 0 };
        ck_assert_int_eq(mempool_put_ex(P, &v, sizeof v, &rco, &a[k].first),
                         0);
    }
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(pthread_create(&th[k], NULL, asker, &a[k]), 0);
        ck_assert_int_eq(pthread_create(&th[2 + k], NULL, echoer, &e[k]), 0);
    }
    for (int k = 0; k < 4; k++)
        ck_assert_int_eq(pthread_join(th[k], NULL), 0);
    for (int k = 0; k < 2; k++) {
        ck_assert(!a[k].bad && !e[k].bad);
        /* each asker ends holding one of the two objects, once each */
        ck_assert_int_eq(mempool_info_get(P, a[k].first, &in), 0);
        ck_assert_uint_eq(in.refs, 1);
    }
    ck_assert(a[0].first.off != a[1].first.off);
    for (int k = 0; k < 2; k++) {
        ASSERT_RC(mempool_unref(P, a[k].first), 0);
        ck_assert_int_eq(mempool_info_get(P, a[k].first, &in), -ENOENT);
    }
    mempool_chan_close(ping);
    mempool_chan_close(pong);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("handoff_spin");
    TCase *tc = tcase_create("spin");
    SRunner *sr;
    int nf;
    tcase_add_checked_fixture(tc, t_wb_setup, t_wb_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_decide);
    tcase_add_test(tc, test_reaped);
    tcase_add_test(tc, test_pingpong_stopped);
    tcase_add_test(tc, test_threads);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? 1 : 0;
}
