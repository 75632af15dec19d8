/* SPDX-License-Identifier: MIT */
/*
 * check_reap_owed.c - mempool_reap() pays the frees owed (entry.c, "owed
 * frees") once the allocator lock can be had (found in session 14).
 *
 * A worker W pins deleted objects and holds a reservation; the holder H
 * of the allocator lock is stopped inside it (SIGSTOP at alloc.locked).
 * Both are then SIGKILLed. A supervisor's mempool_reap() in the stall
 * cannot free what W left (it waits one bound and leaves the frees
 * owed); H's death hands the lock over. Before, a later mempool_reap()
 * (the lock free now, nobody else setting or deleting) left those blocks
 * owed: used in the stats for as long as nobody else freed or allocated -
 * for ever in a pool whose live workers only read. Now it pays them:
 * stats back where they were before W, fsck clean.
 *
 * Stops the holder for one bound. Needs a -DMEMPOOL_FAILPOINTS=ON build.
 */
#include "helpers.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#define BIG (64u * 1024u)              /* a page run: the allocator lock */
#define NPIN 4

START_TEST(test_reap_pays)
{
    static char buf[BIG];
    uint64_t objects0 = t_stats(t_pool).objects;
    uint64_t used0 = t_stats(t_pool).used_bytes;
    mempool_dref r[NPIN], res = { 0 };
    struct t_remote w;
    pid_t h;

    for (int i = 0; i < NPIN; i++)
        ASSERT_RC(mempool_put(t_pool, buf, sizeof buf, &r[i]), 0);
    t_remote_start(&w, t_name);
    for (int i = 0; i < NPIN; i++) {
        ck_assert_int_eq(t_remote_call(&w, T_R_GET, &r[i], 1), 0);
        ASSERT_RC(mempool_delete(t_pool, r[i]), 0);   /* pinned: kept */
    }
    ck_assert_int_eq(t_remote_call(&w, T_R_RESERVE, &res, BIG), 0);
    h = t_fork(t_alloc_holder, NULL);
    t_await_stopped(h, "alloc.locked");
    t_remote_kill(&w);
    ck_assert_int_eq(mempool_reap(t_pool), 1);     /* in the stall: owed */
    ck_assert_int_eq(t_kill(h), SIGKILL);          /* the lock handed over */
    (void)mempool_reap(t_pool);                    /* reaps H; pays */
    ck_assert_uint_eq(t_stats(t_pool).objects, objects0);
    ck_assert_uint_eq(t_stats(t_pool).used_bytes, used0);
    t_assert_healthy(t_pool);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "reap_owed", 120, true, { test_reap_pays } },
        { .name = NULL }
    };
    return t_main("reap_owed", cases);
}
