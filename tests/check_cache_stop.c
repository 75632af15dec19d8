/* SPDX-License-Identifier: MIT */
/*
 * check_cache_stop.c - a worker stopped (real SIGSTOP) while it holds its
 * own allocator cache's lock (src/core/wcache.c) blocks nobody beyond the
 * bounded wait (MEMPOOL_PEER_WAIT_MS).
 *
 * stop: worker A sets three small objects and sends their DRefs, then stops
 * itself inside its fourth set's pop (failpoint cache.popped=stop) or its
 * delete's recache (cache.recached=stop), holding its cache lock. While it
 * is stopped:
 *   - mempool_check() returns -EAGAIN naming A (not a hang, not a false
 *     MEMPOOL_ECORRUPT);
 *   - another worker gets and deletes A's objects (a cross-worker delete)
 *     and sets and deletes its own small objects;
 *   - worker B is killed holding the allocator lock (alloc.locked=kill) and
 *     the next locker rebuilds the allocator's state, leaving A's cache to
 *     A (marked dirty) instead of waiting for its lock.
 * Then A is continued, finishes its step and more sets and deletes, closes;
 * B is reaped; mempool_check() is clean and the pool holds exactly the one
 * object left on purpose.
 *
 * trim: mempool_trim() gives back the calling worker's cached entries and
 * blocks, and those of a dead (unreaped) worker, so their pages are free
 * and punched; another live worker's cache is left alone.
 *
 * Needs a failpoint build (-DMEMPOOL_FAILPOINTS=ON) for "stop".
 */
#include "helpers.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef MEMPOOL_FAILPOINTS

static const char *const stops[] = { "cache.popped=stop@4",
                                     "cache.recached=stop@1" };

struct aargs {
    const char *fp;
    int fd;         /* to the parent: 3 DRefs, then 1 after resuming */
};

/* Worker A: three small objects out, then a set and a delete (one of
 * which stops), then more of both after the parent continues it. */
static int worker_a(void *arg)
{
    struct aargs *a = arg;
    mempool *p;
    mempool_dref r;
    char buf[100];
    memset(buf, 'a', sizeof buf);
    T_CHILD_EQ(setenv("MEMPOOL_FAILPOINT", a->fp, 1), 0);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(t_send_u64(a->fd, (uint64_t)mempool_worker_id(p)), 0);
    for (int i = 0; i < 3; i++) {
        T_CHILD_EQ(mempool_put(p, buf, sizeof buf, &r), 0);
        T_CHILD_EQ(t_send_dref(a->fd, r), 0);
    }
    T_CHILD_EQ(mempool_put(p, buf, sizeof buf, &r), 0);
    T_CHILD_EQ(mempool_delete(p, r), 0);
    /* Continued: the next steps repair what a rebuild left dirty. */
    for (int i = 0; i < 200; i++) {
        T_CHILD_EQ(mempool_put(p, buf, 1 + (size_t)i % sizeof buf, &r), 0);
        T_CHILD_EQ(mempool_delete(p, r), 0);
    }
    T_CHILD_EQ(t_send_u64(a->fd, 1), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

/* Worker B: dies holding the allocator lock (its first locked alloc). */
static int worker_b(void *arg)
{
    mempool *p;
    mempool_dref r;
    static char big[64 << 10];
    (void)arg;
    T_CHILD_EQ(setenv("MEMPOOL_FAILPOINT", "alloc.locked=kill@1", 1), 0);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    (void)mempool_put(p, big, sizeof big, &r);
    return 1;                           /* not killed: the test fails */
}

static void wait_stopped(pid_t pid)
{
    int st;
    ck_assert_int_eq(waitpid(pid, &st, WUNTRACED), pid);
    ck_assert_msg(WIFSTOPPED(st), "worker A ended (%d) instead of stopping",
                  st);
}

/* While A is stopped holding its cache lock: everything else goes on. */
static void while_stopped(uint64_t a_id, const mempool_dref *ra)
{
    char why[512], buf[200], want[32];
    struct mempool_stats s0;
    mempool_dref r;
    mempool_view v;
    pid_t b;

    ASSERT_RC(mempool_check(t_pool, why, sizeof why), -EAGAIN);
    snprintf(want, sizeof want, "worker %llu ", (unsigned long long)a_id);
    ck_assert_msg(strstr(why, want), "why names A: %s", why);
    for (int i = 0; i < 3; i++) {               /* cross-worker deletes */
        ASSERT_RC(mempool_get(t_pool, ra[i], &v), 0);
        ASSERT_RC(mempool_release(t_pool, &v), 0);
        ASSERT_RC(mempool_delete(t_pool, ra[i]), 0);
    }
    memset(buf, 'p', sizeof buf);
    for (int i = 0; i < 300; i++) {             /* our own cache's paths */
        ASSERT_RC(mempool_put(t_pool, buf, 1 + (size_t)i % sizeof buf, &r),
                  0);
        ASSERT_RC(mempool_delete(t_pool, r), 0);
    }
    /* A rebuild must not wait for A's cache either. */
    s0 = t_stats(t_pool);
    b = t_fork(worker_b, NULL);
    ck_assert_int_eq(t_wait(b, T_WAIT_S), 128 + SIGKILL);
    {
        static char big[64 << 10];
        ASSERT_RC(mempool_put(t_pool, big, sizeof big, &r), 0);
    }
    ck_assert_uint_eq(t_stats(t_pool).rebuilds, s0.rebuilds + 1);
}

START_TEST(test_stop)
{
    int fds[2];
    struct aargs a;
    mempool_dref ra[3];
    uint64_t a_id, one;
    pid_t pid;
    char why[512];

    t_pipe(fds);
    a = (struct aargs){ stops[_i], fds[1] };
    pid = t_fork(worker_a, &a);
    ASSERT_RC(t_recv_u64(fds[0], &a_id, T_WAIT_S), 0);
    for (int i = 0; i < 3; i++)
        ASSERT_RC(t_recv_dref(fds[0], &ra[i], T_WAIT_S), 0);
    wait_stopped(pid);
    while_stopped(a_id, ra);
    ck_assert_int_eq(kill(pid, SIGCONT), 0);
    ASSERT_RC(t_recv_u64(fds[0], &one, T_WAIT_S), 0);
    t_wait_ok(pid);
    ck_assert_int_eq(mempool_reap(t_pool), 1);          /* B */
    ASSERT_RC(mempool_check(t_pool, why, sizeof why), 0);
    ck_assert_uint_eq(t_stats(t_pool).objects, 1);      /* the 64 KiB one */
    close(fds[0]);
    close(fds[1]);
}
END_TEST

#endif /* MEMPOOL_FAILPOINTS */

/* ------------------------------------------------------------------ trim */

#define NSMALL 512

/* Set NSMALL objects of 1 KiB (four to a slab page), delete them: the last
 * ones stay in our cache (it keeps up to 32 of a class), holding pages
 * that have nothing else in them. Report, then die (arg[1]) or wait. */
static int cacher(void *arg)
{
    int *a = arg;               /* { fd, die } */
    mempool *p;
    static mempool_dref r[NSMALL];
    char buf[1024];
    memset(buf, 'c', sizeof buf);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    for (int i = 0; i < NSMALL; i++)
        T_CHILD_EQ(mempool_put(p, buf, sizeof buf, &r[i]), 0);
    for (int i = 0; i < NSMALL; i++)
        T_CHILD_EQ(mempool_delete(p, r[i]), 0);
    T_CHILD_EQ(t_send_u64(a[0], 1), 0);
    if (a[1])
        raise(SIGKILL);         /* dies with a full cache, unreaped */
    pause();
    return 0;
}

/* mempool_trim() gives back our cache and a dead worker's: once it ran,
 * freeing them otherwise (the dead one's reap, our close) leaves nothing
 * more to punch. A live worker's cache is its own and stays. */
START_TEST(test_trim)
{
    int fds[2], dead[2], live[2];
    uint64_t one;
    pid_t pd, pl;
    char buf[512];
    mempool_dref r[NSMALL];
    int64_t n1, n2;

    t_pipe(fds);
    dead[0] = live[0] = fds[1];
    dead[1] = 1;
    live[1] = 0;
    /* The live one first: attaching after the dead one, it would claim
     * (and reap) the dead one's slot. */
    pl = t_fork(cacher, live);
    ASSERT_RC(t_recv_u64(fds[0], &one, T_WAIT_S), 0);
    pd = t_fork(cacher, dead);
    ASSERT_RC(t_recv_u64(fds[0], &one, T_WAIT_S), 0);
    ck_assert_int_eq(t_wait(pd, T_WAIT_S), 128 + SIGKILL);
    memset(buf, 't', sizeof buf);           /* our own cache: 512 B class */
    for (int i = 0; i < NSMALL; i++)
        ASSERT_RC(mempool_put(t_pool, buf, sizeof buf, &r[i]), 0);
    for (int i = 0; i < NSMALL; i++)
        ASSERT_RC(mempool_delete(t_pool, r[i]), 0);

    n1 = mempool_trim(t_pool);
    ck_assert_int_gt(n1, 0);
    ck_assert_int_eq(mempool_reap(t_pool), 1);  /* the dead one: flushed */
    ASSERT_RC(mempool_close(t_pool), 0);        /* ours: flushed */
    ASSERT_RC(t_open(t_name, T_ARENA_BYTES, &t_pool), 0);
    n2 = mempool_trim(t_pool);
    ck_assert_msg(n2 == 0, "trim left %lld bytes of cached blocks' pages "
                  "(first trim: %lld)", (long long)n2, (long long)n1);
    t_assert_healthy(t_pool);
    t_kill(pl);
    close(fds[0]);
    close(fds[1]);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("cache_stop");
    TCase *tc = t_tcase(s, "stop", 120);
#ifdef MEMPOOL_FAILPOINTS
    tcase_add_loop_test(tc, test_stop, 0,
                        (int)(sizeof stops / sizeof stops[0]));
#endif
    tcase_add_test(tc, test_trim);
    return s;
}

int main(void)
{
    return t_run(suite(), "cstop");
}
