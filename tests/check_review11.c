/* SPDX-License-Identifier: MIT */
/*
 * check_review11.c - a hostile review of what a second local user can do
 * to a pool another user shares with them (mode 0666): the other user is
 * real, a forked child that drops to uid/gid 65534 (T_NOBODY); as non-root
 * the cases print "SKIP: ..." and pass.
 *
 * A user who may write a pool is trusted with its contents, not with the
 * other workers' processes: damage must end in MEMPOOL_ECORRUPT or a
 * bounded wait, never in a crash (README "Security model").
 *
 *   robust_list  the arena's robust mutexes (the allocator lock, the
 *                worker caches' locks) hold glibc's robust-list pointers,
 *                which pthread_mutex_unlock() stored through. The other
 *                user rewrites them without pause while a root worker
 *                puts and deletes small objects (its cache's lock), page
 *                runs (the allocator lock) and objects of another worker
 *                (handed back into that worker's cache, under its lock):
 *                the worker lives and every call succeeds (it died of
 *                SIGSEGV within a second before rlock.c).
 *   kind         the other user flips each mutex's kind word to a
 *                priority-protected or priority-inheriting kind and back,
 *                over and over, while root workers attached before it
 *                began check the pool, put and delete: glibc's lock read
 *                the kind (after our own check of it, or with none: the
 *                allocator lock's is checked at attach only) and died in
 *                its asserts (abort: tpp.c "new_prio", trylock "robust").
 *                Every call must answer 0, MEMPOOL_ECORRUPT or -EAGAIN.
 */
#include "helpers.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "layout.h"      /* white box: where the mutexes are */

#define VICTIM_S 2.0           /* how long the worker works under attack */
#define NFOREIGN 256           /* objects of the test process it deletes */

static mempool_dref foreign[NFOREIGN];

/* The other user: rewrite the robust-list pointers of every arena mutex
 * until killed (or 60 s, if orphaned). Exit 2 if it cannot be that user
 * or map the pool. */
static int planter(void *unused)
{
    mp_header *h;
    mp_wcache *wcs;
    size_t len;
    double t0 = t_now_s();
    (void)unused;
    if (t_become_nobody() != 0)
        return 2;
    h = (mp_header *)t_map_arena_rw(t_name, &len);
    if (!h)
        return 2;
    wcs = (mp_wcache *)((uint8_t *)h + h->wcache_off);
    while (t_now_s() - t0 < 60.0) {
        for (int k = 0; k < 1000; k++) {
            h->alloc_lock.__data.__list.__next = (void *)0x10;
            h->alloc_lock.__data.__list.__prev = (void *)0x10;
            for (int s = 0; s < MP_WORKERS; s++) {
                wcs[s].lock.__data.__list.__next = (void *)0x10;
                wcs[s].lock.__data.__list.__prev = (void *)0x10;
            }
        }
    }
    return 0;
}

/* A root worker: puts and deletes for VICTIM_S, small and page-run
 * objects, and deletes the test process's objects. */
static int worker(void *unused)
{
    static char buf[96 << 10];
    mempool *q;
    double t0;
    int i = 0;
    (void)unused;
    T_CHILD_EQ(t_attach(t_name, &q), 0);
    memset(buf, 'x', sizeof buf);
    t0 = t_now_s();
    while (t_now_s() - t0 < VICTIM_S) {
        mempool_dref r;
        T_CHILD_EQ(mempool_put(q, buf, 64, &r), 0);
        T_CHILD_EQ(mempool_delete(q, r), 0);
        T_CHILD_EQ(mempool_put(q, buf, sizeof buf, &r), 0);
        T_CHILD_EQ(mempool_delete(q, r), 0);
        if (i < NFOREIGN)
            T_CHILD_EQ(mempool_delete(q, foreign[i++]), 0);
    }
    T_CHILD_EQ(mempool_close(q), 0);
    return 0;
}

/* The other user: flip every arena mutex's kind word to @p arg's
 * (priority-protected or -inheriting, as a glibc kind) and back, and set
 * an owner-died lock word where nobody holds it, until killed (or 60 s). */
static int kind_flipper(void *arg)
{
    const int bad = *(const int *)arg;
    volatile struct __pthread_mutex_s *m[MP_WORKERS + 1];
    mp_header *h;
    mp_wcache *wcs;
    size_t len;
    double t0 = t_now_s();
    if (t_become_nobody() != 0)
        return 2;
    h = (mp_header *)t_map_arena_rw(t_name, &len);
    if (!h)
        return 2;
    wcs = (mp_wcache *)((uint8_t *)h + h->wcache_off);
    m[0] = &h->alloc_lock.__data;
    for (int s = 0; s < MP_WORKERS; s++)
        m[s + 1] = &wcs[s].lock.__data;
    while (t_now_s() - t0 < 60.0) {
        for (int i = 0; i <= MP_WORKERS; i++) {
            int k = m[i]->__kind, w = m[i]->__lock;
            m[i]->__kind = bad;
            if (!w)
                __sync_bool_compare_and_swap(&m[i]->__lock, 0, 0x40000000);
            m[i]->__kind = k;
        }
    }
    return 0;
}

static int go_pipe[2], ready_pipe[2];

/* A root worker attached before the flipping began: checks, puts and
 * deletes for VICTIM_S; 0, MEMPOOL_ECORRUPT or -EAGAIN each. */
static int kind_worker(void *unused)
{
    static char buf[96 << 10];
    mempool *q;
    double t0;
    char c = 'r';
    (void)unused;
    T_CHILD_EQ(t_attach(t_name, &q), 0);
    T_CHILD_ASSERT(t_send(ready_pipe[1], &c, 1) == 0);
    T_CHILD_ASSERT(t_recv(go_pipe[0], &c, 1, T_WAIT_S) == 0);
    t0 = t_now_s();
    while (t_now_s() - t0 < VICTIM_S) {
        mempool_dref r;
        int rc = mempool_check(q, NULL, 0);
        T_CHILD_ASSERT(rc == 0 || rc == MEMPOOL_ECORRUPT || rc == -EAGAIN);
        for (size_t len = 64; len <= sizeof buf; len *= 48) {
            rc = mempool_put(q, buf, len, &r);
            T_CHILD_ASSERT(rc == 0 || rc == MEMPOOL_ECORRUPT ||
                           rc == -EAGAIN);
            if (rc == 0) {
                rc = mempool_delete(q, r);
                T_CHILD_ASSERT(rc == 0 || rc == MEMPOOL_ECORRUPT ||
                               rc == -EAGAIN);
            }
        }
    }
    return 0;
}

/* Glibc kinds (nptl's internal values) the flipper plants. */
#define K_PSHARED 128
#define K_PI      32
#define K_PP      64
#define K_ROBUST  16

START_TEST(test_kind)
{
    static const int bad[] = { K_PP | K_PSHARED, K_PI | K_PSHARED,
                               K_PP | K_ROBUST | K_PSHARED };
    if (!t_fixture_shared("kind"))
        return;
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        pid_t w[2], fl;
        char c = 'g';
        int st;
        t_pipe(go_pipe);
        t_pipe(ready_pipe);
        for (int i = 0; i < 2; i++)
            w[i] = t_fork(kind_worker, NULL);
        for (int i = 0; i < 2; i++)
            ck_assert_int_eq(t_recv(ready_pipe[0], &c, 1, T_WAIT_S), 0);
        fl = t_fork(kind_flipper, (void *)&bad[b]);
        usleep(100 * 1000);
        ck_assert_msg(kill(fl, 0) == 0, "the other user could not start");
        for (int i = 0; i < 2; i++)
            ck_assert_int_eq(t_send(go_pipe[1], &c, 1), 0);
        for (int i = 0; i < 2; i++) {
            st = t_wait(w[i], T_WAIT_S);
            ck_assert_msg(st == 0, "kind %d: a worker ended with %d (>= "
                          "128: signal %d)", bad[b], st, st - 128);
        }
        t_kill(fl);
        close(go_pipe[0]);
        close(go_pipe[1]);
        close(ready_pipe[0]);
        close(ready_pipe[1]);
    }
}
END_TEST

START_TEST(test_robust_list)
{
    pid_t pl, w;
    int st;
    if (!t_fixture_shared("robust_list"))
        return;
    for (int i = 0; i < NFOREIGN; i++)
        foreign[i] = t_put_fill(t_pool, 64, (uint64_t)i);
    pl = t_fork(planter, NULL);
    usleep(100 * 1000);
    ck_assert_msg(kill(pl, 0) == 0, "the other user could not start");
    w = t_fork(worker, NULL);
    st = t_wait(w, T_WAIT_S);
    t_kill(pl);
    ck_assert_msg(st == 0, "the worker ended with %d (>= 128: signal %d)", st,
                  st - 128);
    /* The pointers are garbage now; nothing of ours reads them. */
    t_assert_healthy(t_pool);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "shared", 120, true, { test_robust_list, test_kind } },
        { .name = NULL }
    };
    return t_main("review11", cases);
}
