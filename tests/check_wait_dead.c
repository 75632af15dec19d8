/* SPDX-License-Identifier: MIT */
/*
 * check_wait_dead.c - mempool_get_wait() on a reservation whose writer is
 * already dead (SIGKILLed, its slot not yet reaped) when the wait begins.
 *
 * get_wait does not ask whether the writer lives before its first sleep
 * (a system call that cost the sleeper a fifth more CPU per wake-up than
 * a pipe reader: wait.c, writer_dead()). It asks after each sleep and
 * before answering -ETIMEDOUT. So:
 *
 *   keeper      a waiter that starts after the death still answers -ENOENT
 *               long before its own 20 s timeout: its keeper's wake (or
 *               the capped sleep's end) leads to the question.
 *   no_keeper   (failpoint builds) the same with keep.start=eio: the
 *               capped sleep's end leads to it.
 *   no_wait     a get_wait that cannot sleep (timeout 0) or hardly (10 ms)
 *               asks at once: -ENOENT, never -ETIMEDOUT.
 *
 * The waiters attach BEFORE the writer is killed: mempool_open reaps dead
 * slots, which would answer the question for them.
 */
#include "helpers.h"
#include "t_writer.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#define WAIT_MS 20000          /* a waiter's own timeout: never reached */

static int ready[2], go[2];
static mempool_dref refs[2];

/* Exit codes of a waiter. */
enum { W_ENOENT = 1, W_TIMEDOUT = 2, W_OTHER = 3, W_LATE = 4, W_SETUP = 5 };

/* Attach (with keep.start=eio if @p arg), say so, wait for "go", then
 * get_wait refs[0]: its answer as a W_ code (W_LATE: -ENOENT, but only
 * after half its timeout). */
static int waiter(void *arg)
{
    mempool_view v;
    mempool *q;
    double t0;
    char c = 'a';
    int rc;
    if (arg)
        setenv("MEMPOOL_FAILPOINT", "keep.start=eio", 1);
    if (t_attach(t_name, &q) < 0 || t_send(ready[1], &c, 1) < 0 ||
        t_recv(go[0], &c, 1, 120) < 0)
        return W_SETUP;
    t0 = t_now_s();
    rc = mempool_get_wait(q, refs[0], &v, WAIT_MS);
    if (rc == -ENOENT)
        return t_now_s() - t0 >= WAIT_MS / 2000.0 ? W_LATE : W_ENOENT;
    return rc == -ETIMEDOUT ? W_TIMEDOUT : W_OTHER;
}

/* A waiter (keeper or not) on a writer killed after the waiter attached
 * and before its get_wait began. */
static void dead_first(bool no_keeper)
{
    pid_t w = t_writer_start(refs, 2), k;
    char c;
    int st;
    t_pipe(ready);
    t_pipe(go);
    k = t_fork(waiter, no_keeper ? (void *)1 : NULL);
    ck_assert_int_eq(t_recv(ready[0], &c, 1, T_WAIT_S), 0);
    ck_assert_int_eq(t_kill(w), SIGKILL);
    ck_assert_int_eq(t_send(go[1], "g", 1), 0);
    st = t_wait(k, WAIT_MS / 1000.0 + 30);
    ck_assert_msg(st == W_ENOENT, "waiter ended with %d, want 1 (2 "
                  "ETIMEDOUT, 3 other, 4 late, 5 setup)", st);
    ck_assert_int_ge(mempool_reap(t_pool), 0);
    t_assert_healthy(t_pool);
}

START_TEST(test_keeper)
{
    dead_first(false);
}
END_TEST

#ifdef MEMPOOL_FAILPOINTS
START_TEST(test_no_keeper)
{
    dead_first(true);
}
END_TEST
#endif

START_TEST(test_no_wait)
{
    static const int64_t timeout_ms[] = { 0, 10 };
    for (int i = 0; i < 2; i++) {
        pid_t w = t_writer_start(refs, 2);     /* a writer each: the first reaps */
        mempool_view v;
        ck_assert_int_eq(t_kill(w), SIGKILL);
        ASSERT_RC(mempool_get_wait(t_pool, refs[0], &v, timeout_ms[i]),
                  -ENOENT);
        t_assert_healthy(t_pool);
    }
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "dead", 120, true, { test_keeper, test_no_wait } },
#ifdef MEMPOOL_FAILPOINTS
        { "dead_failpoints", 120, true, { test_no_keeper } },
#endif
        { .name = NULL }
    };
    return t_main("wait_dead", cases);
}
