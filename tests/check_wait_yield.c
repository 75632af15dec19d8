/* SPDX-License-Identifier: MIT */
/*
 * check_wait_yield.c - a publish that woke get_wait sleepers yields them
 * the CPU (src/core/entry_wake.c), once, after the object is published:
 *
 *   rounds      a publisher process and a get_wait sleeper (the test),
 *               round after round: reserve, the sleeper waits, the
 *               publisher publishes once the sleeper is seen asleep (so
 *               the publish wakes it and yields), the sleeper
 *               gets the object's bytes, the publisher deletes it. Both
 *               pinned to one CPU (the yield hands the CPU over) and
 *               unpinned: every wait answers 0 with the right bytes, the
 *               pool is healthy at the end. No timing is asserted.
 *   stopped     (failpoint builds) the publisher SIGSTOPped at wake.yield:
 *               its sleeper already has the object (the yield comes after
 *               the publish and the wake-up: a stop there costs nobody a
 *               wait); continued, the rounds go on.
 *   killed      (failpoint builds) the publisher SIGKILLed there: the
 *               sleeper has the object, which survives the reap (a
 *               published object of a dead worker is the pool's).
 */
#include "helpers.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROUNDS 40
#define WAIT_MS 20000 /* a sleeper's own timeout: never reached */

static int to_p[2], from_p[2]; /* test -> publisher, publisher -> test */

/* Pin the caller to the first CPU it may run on (0, or -errno). */
static int pin_first(void)
{
    cpu_set_t all, one;
    if (sched_getaffinity(0, sizeof all, &all))
        return -errno;
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (!CPU_ISSET(c, &all))
            continue;
        CPU_ZERO(&one);
        CPU_SET(c, &one);
        return sched_setaffinity(0, sizeof one, &one) ? -errno : 0;
    }
    return -ENODEV;
}

struct pub_arg {
    const char *fp; /* MEMPOOL_FAILPOINT, or NULL */
    bool pin;
};

/* The publisher: each round reserve 64 B of t_fill(round + 1), send the
 * DRef, wait for "go", publish once the test sleeps, wait for "done",
 * delete. */
static int publisher(void *arg)
{
    const struct pub_arg *a = arg;
    mempool *q;
    char c;
    if (a->fp)
        setenv("MEMPOOL_FAILPOINT", a->fp, 1);
    if ((a->pin && pin_first()) || t_attach(t_name, &q) < 0)
        return 10;
    for (int i = 0; i < ROUNDS; i++) {
        void *buf;
        mempool_dref r;
        if (mempool_reserve(q, 64, NULL, &buf, &r) < 0)
            return 11;
        t_fill(buf, 64, (uint64_t)i + 1);
        if (t_send_dref(from_p[1], r) < 0 || t_recv(to_p[0], &c, 1, 120) < 0)
            return 12;
        /* The sleeper asleep in its get_wait (the test sends "g" just
         * before it), so the publish wakes it and yields: a fixed 300 us
         * was a guess a loaded machine can beat, and rounds that never
         * yield fail the failpoint cases (no stop, no kill). */
        (void)t_await_sleeping(getppid(), 10.0);
        usleep(300);
        if (mempool_publish(q, r) < 0)
            return 13;
        if (t_recv(to_p[0], &c, 1, 120) < 0 || mempool_delete(q, r) < 0)
            return 14;
    }
    return mempool_close(q) < 0 ? 15 : 0;
}

/* Is @p k stopped? Its stop report is taken; a dead @p k is left
 * unreaped (for the last t_wait). */
static bool stopped(pid_t k)
{
    siginfo_t si = { 0 };
    int st;
    if (waitid(P_PID, (id_t)k, &si, WSTOPPED | WNOHANG | WNOWAIT) ||
        si.si_pid != k)
        return false;
    (void)waitpid(k, &st, WUNTRACED | WNOHANG);
    return true;
}

/* The next round's DRef, continuing @p k whenever it is found stopped
 * (counted in *@p stops). 0, or -EPIPE once the publisher is gone. */
static int next_ref(pid_t k, mempool_dref *r, int *stops)
{
    double t0 = t_now_s();
    while (t_now_s() - t0 < T_WAIT_S) {
        int rc = t_recv_dref(from_p[0], r, 0.05);
        if (rc != -ETIMEDOUT)
            return rc;
        if (stopped(k)) {
            (*stops)++;
            ck_assert_int_eq(kill(k, SIGCONT), 0);
        }
    }
    return -ETIMEDOUT;
}

/* Wait for @p k to end, continuing it whenever it is found stopped
 * (counted in *@p stops): the last round's yield may stop it after the
 * test's last look (its sleeper returns between its wake-up and its
 * yield). Its exit code, 128 + signal, or -1 if it hung (then killed). */
static int end_of(pid_t k, int *stops)
{
    double t0 = t_now_s();
    int st;
    while (t_now_s() - t0 < T_WAIT_S) {
        pid_t w = waitpid(k, &st, WNOHANG | WUNTRACED);
        if (w == k && WIFSTOPPED(st)) {
            (*stops)++;
            ck_assert_int_eq(kill(k, SIGCONT), 0);
        } else if (w == k) {
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        } else {
            usleep(1000);
        }
    }
    kill(k, SIGKILL);
    (void)waitpid(k, &st, 0);
    return -1;
}

/* Rounds against a publisher (@p fp: its failpoint), both pinned to one
 * CPU if @p pin. The rounds the sleeper completed; *@p stops as above;
 * the last object got in *@p last (the publisher may be dead). */
static int rounds(const char *fp, bool pin, int *stops, mempool_dref *last)
{
    struct pub_arg a = { fp, pin };
    cpu_set_t mask;
    pid_t k;
    int done = 0;
    ck_assert_int_eq(sched_getaffinity(0, sizeof mask, &mask), 0);
    t_pipe(to_p);
    t_pipe(from_p);
    k = t_fork(publisher, &a);
    close(from_p[1]); /* end of file once it is gone */
    if (pin)
        ck_assert_int_eq(pin_first(), 0);
    *stops = 0;
    for (int i = 0; i < ROUNDS; i++) {
        mempool_dref r;
        mempool_view v;
        int rc = next_ref(k, &r, stops);
        if (rc == -EPIPE)
            break; /* killed at its failpoint */
        ck_assert_int_eq(rc, 0);
        ck_assert_int_eq(t_send(to_p[1], "g", 1), 0);
        ASSERT_RC(mempool_get_wait(t_pool, r, &v, WAIT_MS), 0);
        ck_assert(v.len == 64 && t_check_fill(v.data, 64, (uint64_t)i + 1));
        ASSERT_RC(mempool_release(t_pool, &v), 0);
        *last = r;
        done++;
        if (stopped(k)) { /* at wake.yield, our object got */
            (*stops)++;
            ck_assert_int_eq(kill(k, SIGCONT), 0);
        }
        /* (-EPIPE once a publisher killed at its point is gone) */
        ck_assert(t_send(to_p[1], "d", 1) == 0 || fp);
    }
    ck_assert_int_eq(sched_setaffinity(0, sizeof mask, &mask), 0);
    ck_assert_int_eq(end_of(k, stops),
                     !fp || done == ROUNDS ? 0 : 128 + SIGKILL);
    close(to_p[0]);
    close(to_p[1]);
    close(from_p[0]);
    return done;
}

START_TEST(test_rounds)
{
    int stops;
    mempool_dref last;
    ck_assert_int_eq(rounds(NULL, true, &stops, &last), ROUNDS);
    ck_assert_int_eq(rounds(NULL, false, &stops, &last), ROUNDS);
    ck_assert_int_eq(stops, 0);
    t_assert_healthy(t_pool);
}
END_TEST

#ifdef MEMPOOL_FAILPOINTS
START_TEST(test_stopped)
{
    int stops;
    mempool_dref last;
    /* Every yield stops it: each time the sleeper has its object. */
    ck_assert_int_eq(rounds("wake.yield=stop", true, &stops, &last), ROUNDS);
    ck_assert_int_gt(stops, 0);
    t_assert_healthy(t_pool);
}
END_TEST

START_TEST(test_killed)
{
    int stops;
    mempool_dref last;
    mempool_view v;
    int done = rounds("wake.yield=kill@1", true, &stops, &last);
    ck_assert_int_gt(done, 0);
    ck_assert_int_lt(done, ROUNDS);
    ck_assert_int_ge(mempool_reap(t_pool), 0);
    /* The object it published before dying is the pool's now. */
    ASSERT_RC(mempool_get(t_pool, last, &v), 0);
    ck_assert(t_check_fill(v.data, 64, (uint64_t)done));
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    t_assert_healthy(t_pool);
}
END_TEST
#endif

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct t_case cases[] = {
        { "yield", 120, true, { test_rounds } },
#ifdef MEMPOOL_FAILPOINTS
        { "yield_failpoints", 120, true, { test_stopped, test_killed } },
#endif
        { .name = NULL }
    };
    return t_main("wait_yield", cases);
}
