/* SPDX-License-Identifier: MIT */
/*
 * check_alloc_stop.c - a worker stopped (SIGSTOP) while it holds the
 * pool-wide allocator lock (failpoint alloc.locked, inside a put). The
 * others wait for that lock at most the peer wait bound (alloc.c,
 * mempool__lock), then:
 *
 *   - a put that needs it answers -EAGAIN (nothing changed);
 *   - a delete, and the last unref of a refcounted object, answer 0: the
 *     object is gone for every reader at once, and its memory is freed by
 *     the next process that frees or allocates once the lock is free
 *     ("owed", entry.c);
 *   - opening the pool (a slot claim reaps, and gives the pool nothing
 *     when the slot holds nothing) and gets do not wait at all;
 *   - mempool_check() and mempool_trim() answer -EAGAIN.
 *
 * Continued, or killed (the kernel hands the lock over, EOWNERDEAD), the
 * holder no longer stalls anyone, the owed memory comes back, and the pool
 * checks clean with exact figures. A worker child does the waiting calls,
 * so a call that waits for ever shows as a child that never reports.
 *
 * Needs a -DMEMPOOL_FAILPOINTS=ON build. Each bounded wait lasts
 * MEMPOOL_PEER_WAIT_MS (5 s).
 */
#include "helpers.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define BIG (64u * 1024u)              /* a page run: the allocator lock */

static const mempool_put_options rco = { 0, 0, MEMPOOL_PUT_REFCOUNTED };
static int rep_fd = -1, go_fd = -1, go2_fd = -1;
static int go_wfd = -1, go2_wfd = -1;  /* closed in children: EOF = go */

/* t_alloc_holder, without our ends of the go pipes (their EOF is "go"). */
static int holder(void *arg)
{
    close(go_wfd);
    close(go2_wfd);
    return t_alloc_holder(arg);
}

/* Results of the worker's calls, in this order, over rep_fd. */
enum { W_PUT, W_DELETE, W_UNREF, W_GET, W_OPEN, W_CHECK, W_TRIM, W_N };
static const char *const w_names[W_N] = {
    "put", "delete", "last unref", "get", "open", "check", "trim"
};

/* Child: make a plain and a refcounted object, say ready, wait for go
 * (the holder stopped), then the calls above. */
static int worker(void *arg)
{
    static char buf[BIG];
    mempool *p, *q;
    mempool_dref a, b, c, r;
    mempool_view v;
    int rc;
    (void)arg;
    close(go_wfd);
    close(go2_wfd);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_put(p, buf, sizeof buf, &a), 0);
    T_CHILD_EQ(mempool_put_ex(p, buf, sizeof buf, &rco, &b), 0);
    T_CHILD_EQ(mempool_put(p, "c", 1, &c), 0);
    T_CHILD_EQ(t_send_u64(rep_fd, 1), 0);                 /* ready */
    T_CHILD_EQ(t_wait_fd(go_fd, T_WAIT_S), 0);
    T_CHILD_EQ(t_send_u64(rep_fd, (uint64_t)(int64_t)
                          mempool_put(p, buf, sizeof buf, &r)), 0);
    T_CHILD_EQ(t_send_u64(rep_fd, (uint64_t)(int64_t)mempool_delete(p, a)),
               0);
    T_CHILD_EQ(t_send_u64(rep_fd, (uint64_t)(int64_t)mempool_unref(p, b)),
               0);
    rc = mempool_get(p, c, &v);
    if (rc == 0)
        rc = mempool_release(p, &v);
    T_CHILD_EQ(t_send_u64(rep_fd, (uint64_t)(int64_t)rc), 0);
    rc = t_attach(t_name, &q);
    if (rc == 0)
        rc = mempool_close(q);
    T_CHILD_EQ(t_send_u64(rep_fd, (uint64_t)(int64_t)rc), 0);
    T_CHILD_EQ(t_send_u64(rep_fd, (uint64_t)(int64_t)
                          mempool_check(p, NULL, 0)), 0);
    T_CHILD_EQ(t_send_u64(rep_fd, (uint64_t)(int64_t)mempool_trim(p)), 0);
    /* Gone for readers at once, whatever the memory waits for. */
    T_CHILD_EQ(mempool_get(p, a, &v), -ENOENT);
    T_CHILD_EQ(mempool_get(p, b, &v), -ENOENT);
    T_CHILD_EQ(t_wait_fd(go2_fd, T_WAIT_S), 0);  /* the holder is gone */
    T_CHILD_EQ(mempool_delete(p, c), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

static void stopped_holder(bool kill_it)
{
    uint64_t objects0 = t_stats(t_pool).objects;
    uint64_t used0 = t_stats(t_pool).used_bytes, v;
    int64_t want[W_N] = { -EAGAIN, 0, 0, 0, 0, -EAGAIN, -EAGAIN };
    int fds[2], go[2], go2[2];
    pid_t h, w;

    t_pipe(fds);
    t_pipe(go);
    t_pipe(go2);
    rep_fd = fds[1];
    go_fd = go[0];
    go2_fd = go2[0];
    go_wfd = go[1];
    go2_wfd = go2[1];
    w = t_fork(worker, NULL);
    close(fds[1]);
    close(go[0]);
    close(go2[0]);
    ASSERT_RC(t_recv_u64(fds[0], &v, T_WAIT_S), 0);       /* ready */
    h = t_fork(holder, NULL);
    t_await_stopped(h, "alloc.locked");
    close(go[1]);                                          /* go */
    for (int k = 0; k < W_N; k++) {
        /* A bounded wait is 5 s; a call that waits for ever never says. */
        int rc = t_recv_u64(fds[0], &v, 60.0);
        ck_assert_msg(rc == 0, "%s: no answer within 60 s with the "
                      "allocator lock's holder stopped", w_names[k]);
        ck_assert_msg((int64_t)v == want[k], "%s returned %" PRId64
                      ", want %" PRId64, w_names[k], (int64_t)v, want[k]);
    }
    close(fds[0]);
    if (kill_it) {
        ASSERT_RC(kill(h, SIGKILL), 0);
        ck_assert_int_eq(t_wait(h, T_WAIT_S), 128 + SIGKILL);
    } else {
        ASSERT_RC(kill(h, SIGCONT), 0);
        t_wait_ok(h);
    }
    close(go2[1]);
    t_wait_ok(w);
    mempool_reap(t_pool);
    t_assert_settled(t_pool, objects0, used0);   /* back to the start */
}

START_TEST(test_stopped_holder_continued) { stopped_holder(false); }
END_TEST

START_TEST(test_stopped_holder_killed) { stopped_holder(true); }
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "stop", 240, true, {
              test_stopped_holder_continued, test_stopped_holder_killed } },
        { .name = NULL }
    };
    return t_main("alloc_stop", cases);
}
