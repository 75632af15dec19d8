/* SPDX-License-Identifier: MIT */
/*
 * check_handoff_stopped.c - a process stopped (SIGSTOP) while it holds the
 * name directory lock or the channel directory lock (issue 12: "never
 * blocks the others beyond a bounded wait").
 *
 * A child is stopped by a failpoint inside the critical section of
 * name_put (name.boxed, name.bound), of chan_open CREATE (chan.creating)
 * or of chan_destroy (chan.destroying, chan.closing). While it is stopped
 * this process checks that:
 *
 *   - readers never wait for it: name_get, name_list, chan_list, stats,
 *     opening an existing channel, send and recv, mempool_reap() (a stopped
 *     holder is alive: it keeps the lock) and mempool_check();
 *   - the other directory's writers do not wait either;
 *   - writers of the held directory wait at most MEMPOOL_PEER_WAIT_MS and
 *     then answer -EAGAIN having changed nothing;
 *   - a writer already waiting when the holder continues gets the lock
 *     (the wait is a real wait, not a refusal);
 *   - once the holder continues, its operation completes intact (nothing
 *     was taken from it mid-change); or, if it is killed while stopped
 *     instead, the next writer takes the lock over at once and repairs.
 *
 * At the end every name and channel is gone, every object freed, and the
 * pool passes mempool_check(). Needs a -DMEMPOOL_FAILPOINTS=ON build.
 */
#include "helpers.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

static const mempool_put_options rco = { 0, 0, MEMPOOL_PUT_REFCOUNTED };

enum op { OP_NAME_PUT, OP_CHAN_CREATE, OP_CHAN_DESTROY };

static const struct stop_case {
    const char *point;
    enum op op;
} cases[] = {
    { "name.boxed", OP_NAME_PUT },         /* names lock held */
    { "name.bound", OP_NAME_PUT },         /* record written, lock held */
    { "chan.creating", OP_CHAN_CREATE },   /* header CREATING, dir lock */
    { "chan.destroying", OP_CHAN_DESTROY },/* DESTROYING, ring not closed */
    { "chan.closing", OP_CHAN_DESTROY },   /* ring half closed */
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

static const struct stop_case *cur;
static int hold_fd = -1;           /* holder -> us: the DRef it names */

static mempool_dref new_obj(mempool *p, uint64_t tag)
{
    mempool_dref r;
    T_CHILD_EQ(mempool_put_ex(p, &tag, sizeof(tag), &rco, &r), 0);
    return r;
}

/* The child that stops inside the critical section (and, continued,
 * finishes its operation, which must succeed). */
static int holder(void *arg)
{
    mempool *p;
    mempool_chan *c;
    char spec[64];
    (void)arg;

    snprintf(spec, sizeof spec, "%s=stop@1", cur->point);
    setenv("MEMPOOL_FAILPOINT", spec, 1);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    switch (cur->op) {
    case OP_NAME_PUT: {
        mempool_dref r = new_obj(p, 7), got;
        T_CHILD_EQ(t_send_dref(hold_fd, r), 0);
        T_CHILD_EQ(mempool_name_put(p, "held", r, 0), 0);
        T_CHILD_EQ(mempool_name_get(p, "held", &got, 0), 0);
        T_CHILD_ASSERT(got.off == r.off && got.gen == r.gen);
        T_CHILD_EQ(mempool_unref(p, r), 0);       /* the name keeps it */
        break;
    }
    case OP_CHAN_CREATE:
        T_CHILD_EQ(mempool_chan_open(p, "new", 4, MEMPOOL_CHAN_CREATE, &c),
                   0);
        T_CHILD_EQ(mempool_chan_close(c), 0);
        break;
    case OP_CHAN_DESTROY:
        T_CHILD_EQ(mempool_chan_destroy(p, "doomed"), 0);
        break;
    }
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

/* A writer of the held directory that starts waiting while the holder is
 * stopped; reports its answer through hold_fd. */
static int late_writer(void *arg)
{
    mempool *p;
    mempool_chan *c;
    int rc;
    (void)arg;
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    if (cur->op == OP_NAME_PUT) {
        mempool_dref r = new_obj(p, 9);
        rc = mempool_name_put(p, "late", r, 0);
        T_CHILD_EQ(mempool_unref(p, r), 0);
    } else if ((rc = mempool_chan_open(p, "late", 4, MEMPOOL_CHAN_CREATE,
                                       &c)) == 0) {
        T_CHILD_EQ(mempool_chan_close(c), 0);
    }
    T_CHILD_EQ(t_send_u64(hold_fd, (uint64_t)(int64_t)rc), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

static void wait_stopped(pid_t pid)
{
    double t0 = t_now_s();
    for (;;) {
        int st;
        pid_t w = waitpid(pid, &st, WUNTRACED | WNOHANG);
        if (w == pid) {
            ck_assert_msg(WIFSTOPPED(st), "holder ended (%d) before its "
                          "failpoint %s", st, cur->point);
            return;
        }
        ck_assert_msg(t_now_s() - t0 < T_WAIT_S, "holder never stopped");
        t_sleep_ms(1);
    }
}

static bool same(mempool_dref a, mempool_dref b)
{
    return a.off == b.off && a.gen == b.gen;
}

static int count_name(const char *name, mempool_dref r, void *arg)
{
    (void)name;
    (void)r;
    (*(int *)arg)++;
    return 0;
}

static int count_chan(const mempool_chan_info *ci, void *arg)
{
    (void)ci;
    (*(int *)arg)++;
    return 0;
}

/* What never waits for a directory lock, with the holder stopped. */
static void readers_go(mempool_dref pre, mempool_chan *live)
{
    mempool_dref got, x = new_obj(t_pool, 1);
    struct mempool_stats st;
    mempool_chan *again;
    int n = 0, rc;

    ASSERT_RC(mempool_name_get(t_pool, "pre", &got, 0), 0);
    ck_assert(same(got, pre));
    rc = mempool_name_get(t_pool, "held", &got, 50);  /* bound or not yet */
    ck_assert_msg(rc == 0 || rc == -ETIMEDOUT, "name_get = %d", rc);
    ASSERT_RC(mempool_name_list(t_pool, count_name, &n), 0);
    ck_assert_int_ge(n, 1);
    n = 0;
    ASSERT_RC(mempool_chan_list(t_pool, count_chan, &n), 0);
    ck_assert_int_ge(n, 1);
    ASSERT_RC(mempool_stats_get(t_pool, &st), 0);
    ASSERT_RC(mempool_chan_open(t_pool, "live", 0, 0, &again), 0);
    ASSERT_RC(mempool_chan_send(again, x, 1000), 0);
    ASSERT_RC(mempool_chan_recv(live, &got, 1000), 0);
    ck_assert(same(got, x));
    ASSERT_RC(mempool_unref(t_pool, got), 0);     /* x is gone */
    ASSERT_RC(mempool_chan_close(again), 0);
    ASSERT_RC(mempool_reap(t_pool), 0);           /* stopped is alive */
    t_assert_healthy(t_pool);
}

/* The other directory's writers do not wait either. */
static void other_dir_goes(mempool_dref pre)
{
    mempool_chan *c;
    if (cur->op == OP_NAME_PUT) {
        ASSERT_RC(mempool_chan_open(t_pool, "other", 2, MEMPOOL_CHAN_CREATE,
                                    &c), 0);
        ASSERT_RC(mempool_chan_close(c), 0);
        ASSERT_RC(mempool_chan_destroy(t_pool, "other"), 0);
    } else {
        ASSERT_RC(mempool_name_put(t_pool, "other", pre, 0), 0);
        ASSERT_RC(mempool_name_drop(t_pool, "other"), 0);
    }
}

/* A write to the held directory: 0, or -EAGAIN and nothing changed. */
static int blocked_write(mempool_dref pre, bool second)
{
    mempool_chan *c;
    int rc;
    if (cur->op == OP_NAME_PUT)
        return second ? mempool_name_drop(t_pool, "pre")
                      : mempool_name_put(t_pool, "other", pre, 0);
    if (second)
        return mempool_chan_destroy(t_pool, "live");
    if ((rc = mempool_chan_open(t_pool, "other", 2, MEMPOOL_CHAN_CREATE,
                                &c)) == 0)
        mempool_chan_close(c);
    return rc;
}

static void assert_bounded_refusal(mempool_dref pre, bool second)
{
    double t0 = t_now_s(), dt;
    ASSERT_RC(blocked_write(pre, second), -EAGAIN);
    dt = t_now_s() - t0;
    /* The bound is a promise both ways: not before it, and not forever. */
    ck_assert_msg(dt >= MEMPOOL_PEER_WAIT_MS / 1000.0 * 0.99,
                  "-EAGAIN after only %.3f s", dt);
    ck_assert_msg(dt < T_WAIT_S, "waited %.3f s", dt);
}

/* The holder continues while a writer waits: the writer gets the lock. */
static void continue_with_waiter(pid_t hold)
{
    int fds[2];
    uint64_t rc;
    pid_t w;
    t_pipe(fds);
    hold_fd = fds[1];
    w = t_fork(late_writer, NULL);
    close(fds[1]);
    t_sleep_ms(300);                  /* (it is waiting by now, or soon) */
    kill(hold, SIGCONT);
    ASSERT_RC(t_recv_u64(fds[0], &rc, T_WAIT_S), 0);
    ASSERT_RC((int)(int64_t)rc, 0);
    close(fds[0]);
    t_wait_ok(w);
    t_wait_ok(hold);
}

START_TEST(test_stopped_holder)
{
    bool killed = _i & 1;
    mempool_dref pre, doomed_item = { 0 }, held = { 0 }, got;
    mempool_chan *live, *doomed = NULL;
    int fds[2];
    pid_t hold;

    cur = &cases[_i / 2];
    pre = new_obj(t_pool, 3);
    ASSERT_RC(mempool_name_put(t_pool, "pre", pre, 0), 0);
    ASSERT_RC(mempool_chan_open(t_pool, "live", 8, MEMPOOL_CHAN_CREATE,
                                &live), 0);
    if (cur->op == OP_CHAN_DESTROY) {
        doomed_item = new_obj(t_pool, 5);
        ASSERT_RC(mempool_chan_open(t_pool, "doomed", 4, MEMPOOL_CHAN_CREATE,
                                    &doomed), 0);
        /* Our reference moves into the ring: the item's only one. */
        ASSERT_RC(mempool_chan_send(doomed, doomed_item, 0), 0);
    }
    t_pipe(fds);
    hold_fd = fds[1];
    hold = t_fork(holder, NULL);
    close(fds[1]);
    wait_stopped(hold);
    if (cur->op == OP_NAME_PUT)
        ASSERT_RC(t_recv_dref(fds[0], &held, T_WAIT_S), 0);
    close(fds[0]);

    readers_go(pre, live);
    other_dir_goes(pre);
    if (!killed) {
        assert_bounded_refusal(pre, false);
        ASSERT_RC(mempool_reap(t_pool), 0);       /* the lock stays its */
        assert_bounded_refusal(pre, true);
        ASSERT_RC(mempool_name_get(t_pool, "pre", &got, 0), 0);
        readers_go(pre, live);                    /* "live" still there */
        continue_with_waiter(hold);
    } else {
        ck_assert_int_eq(t_kill(hold), SIGKILL);
        /* Taken over from the dead holder at once, and repaired. */
        ASSERT_RC(blocked_write(pre, false), 0);
        if (cur->op == OP_NAME_PUT)
            ASSERT_RC(mempool_name_drop(t_pool, "other"), 0);
        else
            ASSERT_RC(mempool_chan_destroy(t_pool, "other"), 0);
    }
    ck_assert_int_ge(mempool_reap(t_pool), 0);   /* a killed holder: 1 */
    t_assert_healthy(t_pool);

    /* The holder's operation: complete if it continued; if killed, done
     * or undone as the crash story says, never half. */
    switch (cur->op) {
    case OP_NAME_PUT: {
        int rc = mempool_name_get(t_pool, "held", &got, 0);
        if (!killed || rc == 0) {
            ASSERT_RC(rc, 0);
            ck_assert(same(got, held));
            ck_assert_int_eq(t_refs(t_pool, held), 1);   /* the name's */
            ASSERT_RC(mempool_name_drop(t_pool, "held"), 0);
        } else {
            ASSERT_RC(rc, -ETIMEDOUT);
        }
        ck_assert_int_eq(t_refs(t_pool, held), -1);      /* freed */
        break;
    }
    case OP_CHAN_CREATE: {
        mempool_chan *c;
        int rc = mempool_chan_open(t_pool, "new", 0, 0, &c);
        ASSERT_RC(rc, killed ? -ENOENT : 0);   /* undone when killed */
        if (rc == 0) {
            ASSERT_RC(mempool_chan_close(c), 0);
            ASSERT_RC(mempool_chan_destroy(t_pool, "new"), 0);
        }
        break;
    }
    case OP_CHAN_DESTROY:
        /* Finished by us or the holder: its item's reference dropped. */
        ASSERT_RC(mempool_chan_recv(doomed, &got, 0), -EPIPE);
        ASSERT_RC(mempool_chan_close(doomed), 0);
        ck_assert_int_eq(t_refs(t_pool, doomed_item), -1);
        break;
    }
    if (!killed) {                    /* the late writer's */
        if (cur->op == OP_NAME_PUT)
            ASSERT_RC(mempool_name_drop(t_pool, "late"), 0);
        else
            ASSERT_RC(mempool_chan_destroy(t_pool, "late"), 0);
    }
    ASSERT_RC(mempool_name_drop(t_pool, "pre"), 0);
    ASSERT_RC(mempool_unref(t_pool, pre), 0);
    ASSERT_RC(mempool_chan_close(live), 0);
    ASSERT_RC(mempool_chan_destroy(t_pool, "live"), 0);
    ck_assert_int_ge(mempool_reap(t_pool), 0);
    ck_assert_uint_eq(t_stats(t_pool).objects, 0);
    t_assert_healthy(t_pool);
}
END_TEST

static Suite *stopped_suite(void)
{
    Suite *s = suite_create("handoff_stopped");
    /* Even cases continue the holder (two bounded waits, ~10 s), odd ones
     * kill it while stopped. */
    TCase *tc = t_tcase(s, "holder", 120);
    tcase_add_loop_test(tc, test_stopped_holder, 0, 2 * NCASES);
    return s;
}

int main(void)
{
    return t_run(stopped_suite(), "handoff_stopped");
}
