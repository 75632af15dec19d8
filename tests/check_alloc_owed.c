/* SPDX-License-Identifier: MIT */
/*
 * check_alloc_owed.c - frees and slot hand-backs while the allocator
 * lock's holder is stopped (SIGSTOP at failpoint alloc.locked, inside a
 * put). The others wait for that lock at most the peer wait bound, then
 * leave their work owed (entry.c, "owed frees") to whoever has the lock
 * next:
 *
 *   many_frees   once a free has waited out the bound, later frees try
 *                the lock once and leave their entry owed at once: 16
 *                deletes of page-run objects finish well within 60 s
 *                (one bound of 5 s, not 16). They are gone for readers at
 *                once, and the memory comes back once the holder goes on.
 *   closed       a worker that closes in the stall cannot give its
 *                charges up to the pool (mempool__disown): they are owed,
 *                and the lock's next holder gives them up - its slot is
 *                not left charged until some worker claims it again.
 *
 * Each test stops the holder for one bound or more. INTERNAL: it reads a
 * slot's charges (layout.h). Needs a -DMEMPOOL_FAILPOINTS=ON build.
 */
#include "helpers.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "internal.h"

#define BIG (64u * 1024u)              /* a page run: the allocator lock */
#define NFREE 16                       /* 16 bounds: 80 s > the 60 s limit */
#define NCLOSED 4

static mempool_dref objs[NFREE];       /* set before the forks */
static int rep_fd = -1;

static pid_t stop_holder(void)
{
    pid_t h = t_fork(t_alloc_holder, NULL);
    t_await_stopped(h, "alloc.locked");
    return h;
}

static void go_on(pid_t h)
{
    ASSERT_RC(kill(h, SIGCONT), 0);
    t_wait_ok(h);
}

/* Child: delete objs[] one by one, each result over rep_fd. */
static int deleter(void *arg)
{
    mempool *p;
    (void)arg;
    T_CHILD_EQ(t_attach(t_name, &p), 0);         /* a claim does not wait */
    for (int i = 0; i < NFREE; i++)
        T_CHILD_EQ(t_send_u64(rep_fd, (uint64_t)(int64_t)
                              mempool_delete(p, objs[i])), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

START_TEST(test_many_frees)
{
    static char buf[BIG];
    uint64_t objects0 = t_stats(t_pool).objects, v;
    uint64_t used0 = t_stats(t_pool).used_bytes;
    double end;
    mempool_view view;
    int fds[2];
    pid_t h, d;

    for (int i = 0; i < NFREE; i++)
        ASSERT_RC(mempool_put(t_pool, buf, sizeof buf, &objs[i]), 0);
    h = stop_holder();
    t_pipe(fds);
    rep_fd = fds[1];
    d = t_fork(deleter, NULL);
    close(fds[1]);
    /* Not a measure of speed: a limit 12 bounds past the one wait they
     * need, and 4 bounds short of one wait each (the bug). */
    end = t_now_s() + T_WAIT_S;
    for (int i = 0; i < NFREE; i++) {
        double left = end - t_now_s();
        int rc = t_recv_u64(fds[0], &v, left > 0 ? left : 0.001);
        ck_assert_msg(rc == 0, "delete %d of %d not done within %.0f s of "
                      "a stall (%d): each waits the whole bound", i + 1,
                      NFREE, T_WAIT_S, rc);
        ck_assert_int_eq((int64_t)v, 0);
        ck_assert_int_eq(mempool_get(t_pool, objs[i], &view), -ENOENT);
    }
    close(fds[0]);
    t_wait_ok(d);
    v = atomic_load(&t_pool->h->owed);
    ck_assert_uint_eq(v, 1);
    go_on(h);
    t_assert_settled(t_pool, objects0, used0);
}
END_TEST

/* Objects and resident bytes charged to slot @p s. */
static void charges(int s, uint64_t *objects, uint64_t *resident)
{
    *objects = atomic_load(&t_pool->slots[s].objects) +
               atomic_load(&t_pool->wcs[s].objects);
    *resident = atomic_load(&t_pool->slots[s].resident_bytes) +
                atomic_load(&t_pool->wcs[s].resident);
}

START_TEST(test_closed)
{
    uint64_t objects0 = t_stats(t_pool).objects, wid, v, n, res;
    uint64_t used0 = t_stats(t_pool).used_bytes, objects1, used1;
    int fds[2], go[2];
    pid_t h, c;

    t_pipe(fds);
    t_pipe(go);
    rep_fd = fds[1];
    c = t_fork(t_closer, &(struct t_closer){ NCLOSED, BIG, fds[1], go[0] });
    close(fds[1]);
    close(go[0]);
    for (int i = 0; i < NCLOSED; i++)
        ASSERT_RC(t_recv_dref(fds[0], &objs[i], T_WAIT_S), 0);
    ASSERT_RC(t_recv_u64(fds[0], &wid, T_WAIT_S), 0);
    charges((int)wid - 1, &n, &res);
    ck_assert_uint_eq(n, NCLOSED);
    objects1 = t_stats(t_pool).objects;
    used1 = t_stats(t_pool).used_bytes;
    h = stop_holder();
    ASSERT_RC(t_send_u64(go[1], 1), 0);             /* close in the stall */
    ASSERT_RC(t_recv_u64(fds[0], &v, T_WAIT_S), 0);
    ck_assert_int_eq((int64_t)v, 0);
    close(fds[0]);
    close(go[1]);
    t_wait_ok(c);
    charges((int)wid - 1, &n, &res);
    ck_assert_uint_eq(n, NCLOSED);                 /* left, owed */
    go_on(h);                    /* the holder's next free pays it */
    t_assert_settled(t_pool, objects1, used1);
    charges((int)wid - 1, &n, &res);
    ck_assert_msg(n == 0 && res == 0, "closed worker %d still charged %llu "
                  "objects, %llu bytes", (int)wid, (unsigned long long)n,
                  (unsigned long long)res);
    for (int i = 0; i < NCLOSED; i++)
        ASSERT_RC(mempool_delete(t_pool, objs[i]), 0);   /* the pool's */
    t_assert_settled(t_pool, objects0, used0);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "owed", 200, true, { test_many_frees, test_closed } },
        { .name = NULL }
    };
    return t_main("alloc_owed", cases);
}
