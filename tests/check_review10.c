/* SPDX-License-Identifier: MIT */
/*
 * check_review10.c - a hostile review of session 10's landings.
 *
 * get_wait on a writer already dead (wait.c, 6657257): the liveness
 * question is no longer asked before the first sleep, only after a sleep
 * or before -ETIMEDOUT. But a sleep whose deadline passed before it began
 * (the waiter preempted between its clock read at the top of the loop and
 * the sleep's own: keeper start, registration) answered -ETIMEDOUT
 * straight from wait_sleep(), without the question: a waiter on a
 * reservation whose writer was long dead got -ETIMEDOUT instead of the
 * documented -ENOENT (it had -ENOENT before 6657257, which asked first).
 *
 *   late_sleep  (failpoint builds) the preemption made certain: the
 *               waiter's registration with its keeper is delayed past its
 *               deadline (keep.kept=delay): -ENOENT, not -ETIMEDOUT.
 *   many        many waiters in processes of their own, timeouts 0, 1,
 *               2, 5, 20 ms and none, on reservations of one writer
 *               SIGKILLed after they attached: every untimed one
 *               -ENOENT (a timed one may see the slot lock of another
 *               waiter's reap, which reads as alive, and answer
 *               -ETIMEDOUT), none hangs; the pool healthy after.
 */
#include "helpers.h"
#include "t_writer.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NREF 4                 /* reservations the writer holds */
#define NWAITER 12             /* waiters of test_many */

static int from_w[2], ready[2], go[2];
static mempool_dref refs[NREF];

/* Exit codes of a waiter. */
enum { W_ENOENT = 1, W_TIMEDOUT = 2, W_OTHER = 3, W_SLOW = 4, W_SETUP = 5 };

/* What one waiter does: which reference, its timeout, its failpoints. */
struct wjob {
    int ref;
    int64_t timeout_ms;
    const char *fp;
};

/* Attach (with failpoints @p fp), say so, wait for "go", then get_wait:
 * its answer as a W_ code (W_SLOW: -ENOENT, but after 10 s). */
static int waiter(void *arg)
{
    const struct wjob *j = arg;
    mempool_view v;
    mempool *q;
    double t0;
    char c = 'a';
    int rc;
    if (j->fp)
        setenv("MEMPOOL_FAILPOINT", j->fp, 1);
    if (t_attach(t_name, &q) < 0 || t_send(ready[1], &c, 1) < 0 ||
        t_recv(go[0], &c, 1, 120) < 0)
        return W_SETUP;
    t0 = t_now_s();
    rc = mempool_get_wait(q, refs[j->ref], &v, j->timeout_ms);
    if (rc == -ENOENT)
        return t_now_s() - t0 > 10.0 ? W_SLOW : W_ENOENT;
    return rc == -ETIMEDOUT ? W_TIMEDOUT : W_OTHER;
}

/* Waiters @p jobs (@p n) attach, the writer is SIGKILLed, they all wait:
 * each must end -ENOENT. */
static void dead_writer_waits(const struct wjob *jobs, int n)
{
    pid_t w = t_writer_start(refs, NREF), k[NWAITER];
    char c;
    ck_assert_int_le(n, NWAITER);
    t_pipe(ready);
    t_pipe(go);
    for (int i = 0; i < n; i++)
        k[i] = t_fork(waiter, (void *)&jobs[i]);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(t_recv(ready[0], &c, 1, T_WAIT_S), 0);
    ck_assert_int_eq(t_kill(w), SIGKILL);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(t_send(go[1], "g", 1), 0);
    for (int i = 0; i < n; i++) {
        int st = t_wait(k[i], T_WAIT_S);
        /* Another waiter reaping the writer holds its slot lock, which
         * reads as alive meanwhile: a timed waiter that looks then may
         * answer -ETIMEDOUT (a race older than this session). */
        if (st == W_TIMEDOUT && jobs[i].timeout_ms >= 0 && n > 1)
            continue;
        ck_assert_msg(st == W_ENOENT, "waiter %d (ref %d, timeout %lld ms, "
                      "%s) ended with %d, want 1 (2 ETIMEDOUT, 3 other, "
                      "4 slow, 5 setup)", i, jobs[i].ref,
                      (long long)jobs[i].timeout_ms,
                      jobs[i].fp ? jobs[i].fp : "-", st);
    }
    ck_assert_int_ge(mempool_reap(t_pool), 0);
    t_assert_healthy(t_pool);
}

#ifdef T_FAILPOINTS
START_TEST(test_late_sleep)
{
    /* Registered with the keeper, then preempted past the deadline. */
    static const struct wjob jobs[] = {
        { 0, 20, "keep.kept=delay:200" },
        { 1, 1, "keep.kept=delay:50" },
    };
    dead_writer_waits(jobs, 2);
}
END_TEST

/* A dead writer's reservation whose free is owed (the allocator lock's
 * holder is stopped): the waiter must still end at its deadline (or with
 * -ENOENT), not loop on reap and repair until the holder goes on. */
START_TEST(test_owed_free)
{
    static const struct wjob job = { 0, 1000, NULL };
    pid_t w = t_writer_start(refs, NREF), k, h;
    double t0;
    char c;
    int st;
    t_pipe(ready);
    t_pipe(go);
    k = t_fork(waiter, (void *)&job);
    ck_assert_int_eq(t_recv(ready[0], &c, 1, T_WAIT_S), 0);
    h = t_fork(t_alloc_holder, NULL);
    t_await_stopped(h, "alloc.locked");
    ck_assert_int_eq(t_kill(w), SIGKILL);
    t0 = t_now_s();
    ck_assert_int_eq(t_send(go[1], "g", 1), 0);
    /* One peer bound (5 s) for the first repair's lock wait, then owed. */
    st = t_wait(k, 30);
    ASSERT_RC(kill(h, SIGCONT), 0);
    t_wait_ok(h);
    ck_assert_msg(st == W_ENOENT || st == W_TIMEDOUT, "waiter (timeout 1 "
                  "s, allocator lock's holder stopped) ended with %d after "
                  "%.1f s (-1: still waiting, killed)", st, t_now_s() - t0);
    ck_assert_int_ge(mempool_reap(t_pool), 0);
    t_assert_healthy(t_pool);
}
END_TEST
#endif

START_TEST(test_many)
{
    static const int64_t tmo[] = { 0, 1, 2, 5, 20, -1 };
    struct wjob jobs[NWAITER];
    for (int i = 0; i < NWAITER; i++)
        jobs[i] = (struct wjob){ i % NREF, tmo[i % 6], NULL };
    dead_writer_waits(jobs, NWAITER);
}
END_TEST

/* ---- a receiver that takes less than a batch, then stops ------------- */

#define SLOW_ROUNDS 6

/* Sender: fill channel (name @p arg, capacity in its name's tail) and
 * say so, then send one more per round with a 5 s timeout (the receiver
 * made room for one only, less than a batch), each answer reported. */
static int slow_sender(void *arg)
{
    const char *name = arg;
    char buf[64] = { 0 };
    mempool_chan *c;
    mempool_dref r;
    mempool *q;
    uint32_t cap = (uint32_t)atoi(name + 2);
    T_CHILD_EQ(t_attach(t_name, &q), 0);
    T_CHILD_EQ(mempool_chan_open(q, name, 0, 0, &c), 0);
    T_CHILD_EQ(mempool_put(q, buf, sizeof buf, &r), 0);
    for (uint32_t i = 0; i < cap; i++)
        T_CHILD_EQ(mempool_chan_send(c, r, 10000), 0);
    T_CHILD_EQ(t_send_u64(from_w[1], 0), 0);
    for (int i = 0; i < SLOW_ROUNDS; i++)
        T_CHILD_EQ(t_send_u64(from_w[1], (uint64_t)(int64_t)
                              mempool_chan_send(c, r, 5000)), 0);
    return 0;
}

/* Queue channels of capacities 1 to 512: a sender blocked on a full ring
 * gets the one slot a receive made (fewer than a batch, and the receiver
 * then stops) within its timeout - a receive wakes a sender only once per
 * batch (988691a), the sender's nap finds the rest. Exact count after. */
START_TEST(test_slow_receiver)
{
    static const uint32_t caps[] = { 1, 2, 3, 5, 7, 8, 64, 512 };
    for (unsigned k = 0; k < sizeof caps / sizeof caps[0]; k++) {
        char name[16];
        mempool_chan *c;
        mempool_dref r;
        uint64_t v;
        pid_t s;
        int n = 0;
        snprintf(name, sizeof name, "rv%u", caps[k]);
        ASSERT_RC(mempool_chan_open(t_pool, name, caps[k],
                                    MEMPOOL_CHAN_CREATE, &c), 0);
        t_pipe(from_w);
        s = t_fork(slow_sender, name);
        ck_assert_int_eq(t_recv_u64(from_w[0], &v, T_WAIT_S), 0);
        for (int i = 0; i < SLOW_ROUNDS; i++) {
            usleep(20000);             /* the sender asleep on a full ring */
            ASSERT_RC(mempool_chan_recv(c, &r, 10000), 0);
            n++;
            ck_assert_int_eq(t_recv_u64(from_w[0], &v, T_WAIT_S), 0);
            ck_assert_msg((int64_t)v == 0, "capacity %u round %d: send with "
                          "one free slot answered %lld", caps[k], i,
                          (long long)(int64_t)v);
        }
        t_wait_ok(s);
        while (mempool_chan_recv(c, &r, 0) == 0)
            n++;
        ck_assert_int_eq(n, (int)caps[k] + SLOW_ROUNDS);
        ASSERT_RC(mempool_chan_close(c), 0);
        ASSERT_RC(mempool_chan_destroy(t_pool, name), 0);
    }
    ck_assert_int_ge(mempool_reap(t_pool), 0);
    t_assert_healthy(t_pool);
}
END_TEST

/* ---- many senders and receivers, small rings --------------------------- */

#define MM_SIDE 4                  /* senders, and receivers */
#define MM_N 1500                  /* items per sender */

/* Shared between the test's processes: counts and sums of DRefs. */
struct mm {
    _Atomic uint64_t sent, sent_sum, got, got_sum, bad;
    char name[16];
};
static struct mm *mm;

static uint64_t mm_mix(mempool_dref r)
{
    uint64_t x = (r.off & MEMPOOL_DREF_ENTRY_BITS) * 0x9e3779b97f4a7c15u ^
                 r.gen;
    return x ^ (x >> 29);
}

/* A sender: MM_N objects put and sent, each with a 200 ms timeout retried
 * (a full ring); every answer but 0 and -ETIMEDOUT is counted bad. */
static int mm_sender(void *arg)
{
    char buf[64] = { 0 };
    mempool_chan *c;
    mempool *q;
    (void)arg;
    T_CHILD_EQ(t_attach(t_name, &q), 0);
    T_CHILD_EQ(mempool_chan_open(q, mm->name, 0, 0, &c), 0);
    for (int i = 0; i < MM_N; i++) {
        mempool_dref r;
        int rc;
        T_CHILD_EQ(mempool_put(q, buf, sizeof buf, &r), 0);
        while ((rc = mempool_chan_send(c, r, 200)) == -ETIMEDOUT)
            ;
        if (rc)
            atomic_fetch_add(&mm->bad, 1);
        atomic_fetch_add(&mm->sent, 1);
        atomic_fetch_add(&mm->sent_sum, mm_mix(r));
    }
    return 0;
}

/* A receiver: until all items are counted received, with short timeouts
 * (0, 1 ms, 50 ms in turn) between looks at the count; deletes each. */
static int mm_receiver(void *arg)
{
    static const int64_t tmo[] = { 0, 1, 50 };
    mempool_chan *c;
    mempool *q;
    (void)arg;
    T_CHILD_EQ(t_attach(t_name, &q), 0);
    T_CHILD_EQ(mempool_chan_open(q, mm->name, 0, 0, &c), 0);
    for (unsigned k = 0; atomic_load(&mm->got) < MM_SIDE * MM_N; k++) {
        mempool_dref r;
        int rc = mempool_chan_recv(c, &r, tmo[k % 3]);
        if (rc == -ETIMEDOUT)
            continue;
        if (rc) {
            atomic_fetch_add(&mm->bad, 1);
            return 1;
        }
        atomic_fetch_add(&mm->got_sum, mm_mix(r));
        atomic_fetch_add(&mm->got, 1);
        if (mempool_delete(q, r))       /* the sender's: handed back */
            atomic_fetch_add(&mm->bad, 1);
    }
    return 0;
}

/* Capacities 1 to 1024 (batch 1 to 256), MM_SIDE senders and receivers
 * in processes of their own: every item received once, none lost. */
START_TEST(test_many_many)
{
    static const uint32_t caps[] = { 1, 2, 3, 5, 7, 9, 1024 };
    mm = t_shared_map(sizeof *mm);
    for (unsigned k = 0; k < sizeof caps / sizeof caps[0]; k++) {
        pid_t pid[2 * MM_SIDE];
        mempool_chan *c;
        memset(mm, 0, sizeof *mm);
        snprintf(mm->name, sizeof mm->name, "mm%u", caps[k]);
        ASSERT_RC(mempool_chan_open(t_pool, mm->name, caps[k],
                                    MEMPOOL_CHAN_CREATE, &c), 0);
        for (int i = 0; i < MM_SIDE; i++) {
            pid[i] = t_fork(mm_receiver, NULL);
            pid[MM_SIDE + i] = t_fork(mm_sender, NULL);
        }
        for (int i = 2 * MM_SIDE - 1; i >= 0; i--)  /* senders first */
            ck_assert_msg(t_wait(pid[i], 240) == 0, "capacity %u: process "
                          "%d failed (sent %llu got %llu bad %llu)", caps[k],
                          i, (unsigned long long)mm->sent,
                          (unsigned long long)mm->got,
                          (unsigned long long)mm->bad);
        ck_assert_uint_eq(mm->bad, 0);
        ck_assert_uint_eq(mm->got, MM_SIDE * MM_N);
        ck_assert_uint_eq(mm->got_sum, mm->sent_sum);
        ASSERT_RC(mempool_chan_close(c), 0);
        ASSERT_RC(mempool_chan_destroy(t_pool, mm->name), 0);
    }
    ck_assert_int_ge(mempool_reap(t_pool), 0);
    t_assert_healthy(t_pool);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "wait_dead", 240, true, {
#ifdef T_FAILPOINTS
              test_late_sleep, test_owed_free,
#endif
              test_many } },
        { "chan", 600, true, { test_slow_receiver, test_many_many } },
        { .name = NULL }
    };
    return t_main("review10", cases);
}
