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
        { "shared", 120, true, { test_robust_list } },
        { .name = NULL }
    };
    return t_main("review11", cases);
}
