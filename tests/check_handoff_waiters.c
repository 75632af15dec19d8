/* SPDX-License-Identifier: MIT */
/*
 * check_handoff_waiters.c - a waiter stopped (SIGSTOP) or killed (SIGKILL)
 * between the two states of its way to sleep (src/handoff/sleepers.h):
 * "checking" (futex word read, last check failed, not counted) and
 * "counted" (counted asleep, FUTEX_WAIT not yet entered). Senders only
 * make the FUTEX_WAKE system call for counted sleepers, so these are the
 * places a wake-up could be lost. Real processes stop or die there (the
 * wait.checking and wait.counted failpoints), and every other receiver,
 * already asleep, must still get each item sent meanwhile; a stopped one,
 * continued, must get the item sent while it was stopped (its futex word
 * moved: no wake-up was made for it); a dead one leaves at most a spare
 * wake-up behind (the count says one more), never a hang.
 */
#include "helpers.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static const char *const points[] = { "wait.checking", "wait.counted" };
static char fp_spec[64];

/* Child: one blocking receive on "w" (failpoint in fp_spec, if any);
 * 0 when it got an item (deleted) before its 30 s timeout was nearly
 * over (else a wake-up was lost), 2 on anything else. */
static int receiver(void *arg)
{
    mempool *p;
    mempool_chan *c;
    mempool_dref r;
    double t0;
    int rc;
    if (arg)
        setenv("MEMPOOL_FAILPOINT", fp_spec, 1);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_chan_open(p, "w", 0, 0, &c), 0);
    t0 = t_now_s();
    rc = mempool_chan_recv(c, &r, 30000);
    /* A lost wake-up is found by the last look at the deadline: the
     * item arrives after the whole timeout. */
    T_CHILD_ASSERT(t_now_s() - t0 < 25.0);
    if (rc == 0)
        T_CHILD_EQ(mempool_delete(p, r), 0);
    mempool_chan_close(c);
    mempool_close(p);
    return rc == 0 ? 0 : 2;
}

static void send_one(mempool_chan *c)
{
    mempool_dref r;
    char b[64] = { 7 };
    ASSERT_RC(mempool_put(t_pool, b, sizeof(b), &r), 0);
    ASSERT_RC(mempool_chan_send(c, r, 0), 0);
}

/* Until "w" counts @p n receivers asleep, then a little more (they may
 * be counted a few instructions before FUTEX_WAIT). */
static void await_asleep(uint32_t n)
{
    double t0 = t_now_s();
    while (t_chan_info(t_pool, "w", NULL).receivers_waiting < n) {
        ck_assert_msg(t_now_s() - t0 < T_WAIT_S, "receivers never slept");
        t_sleep_ms(1);
    }
    t_sleep_ms(20);
}

/* Receivers asleep while child X is stopped or dead at points[_i]: each
 * item sent wakes one of them; X then gets one sent while it was stopped,
 * or (dead) leaves the count at most one high. */
static void run(int pt, bool kill_it)
{
    bool counted = pt == 1;
    mempool_chan *c;
    pid_t x, y[2];
    ASSERT_RC(mempool_chan_open(t_pool, "w", 16, MEMPOOL_CHAN_CREATE, &c),
              0);
    snprintf(fp_spec, sizeof fp_spec, "%s=%s@1", points[pt],
             kill_it ? "kill" : "stop");
    if (!kill_it) {
        /* Sent while X is stopped there and nobody else waits (no
         * wake-up is made for X, at checking): continued, its FUTEX_WAIT
         * must find the futex word moved. */
        x = t_fork(receiver, fp_spec);
        t_await_stopped(x, fp_spec);
        send_one(c);
        t_sleep_ms(20);
        ASSERT_RC(kill(x, SIGCONT), 0);
        t_wait_ok(x);
    }
    x = t_fork(receiver, fp_spec);
    if (kill_it)
        ck_assert_int_eq(t_wait(x, T_WAIT_S), 128 + SIGKILL);
    else
        t_await_stopped(x, fp_spec);
    for (int i = 0; i < 2; i++)
        y[i] = t_fork(receiver, NULL);
    await_asleep(2u + counted);
    /* Each send wakes one sleeper: none may be lost on X. */
    for (int i = 0; i < 2; i++)
        send_one(c);
    for (int i = 0; i < 2; i++)
        t_wait_ok(y[i]);
    ck_assert_uint_eq(t_chan_info(t_pool, "w", NULL).depth, 0);
    if (kill_it) {
        /* Dead while counted: the count says one more (a spare wake-up
         * per send, which finds nobody), never fewer. */
        ck_assert_uint_eq(t_chan_info(t_pool, "w", NULL).receivers_waiting,
                          counted ? 1u : 0u);
        send_one(c);
        y[0] = t_fork(receiver, NULL);
        t_wait_ok(y[0]);
    } else {
        ASSERT_RC(kill(x, SIGCONT), 0);
        t_sleep_ms(20);
        send_one(c);
        t_wait_ok(x);
        ck_assert_uint_eq(t_chan_info(t_pool, "w", NULL).receivers_waiting,
                          0);
    }
    ck_assert_uint_eq(t_chan_info(t_pool, "w", NULL).received,
                      kill_it ? 3u : 4u);
    ASSERT_RC(mempool_chan_close(c), 0);
    ASSERT_RC(mempool_chan_destroy(t_pool, "w"), 0);
    t_assert_healthy(t_pool);
}

START_TEST(test_stopped_waiter)
{
    run(_i, false);
}
END_TEST

START_TEST(test_killed_waiter)
{
    run(_i, true);
}
END_TEST

static Suite *waiters_suite(void)
{
    Suite *s = suite_create("handoff_waiters");
    TCase *tc = t_tcase(s, "waiters", 120);
    tcase_add_loop_test(tc, test_stopped_waiter, 0, 2);
    tcase_add_loop_test(tc, test_killed_waiter, 0, 2);
    return s;
}

int main(void)
{
    return t_run(waiters_suite(), "handoff_waiters");
}
