/* SPDX-License-Identifier: MIT */
/*
 * check_giver_stop.c - a deleter stopped (real SIGSTOP) inside our cache
 * lock costs our sets and deletes at most one bounded wait, never
 * failures (src/core/wcache.c, "a stopped giver").
 *
 * Another worker deletes our small objects; its stash hands a batch back
 * into our allocator cache (handback.c) and stops there (failpoint
 * handback.given=stop@1), holding our cache lock. While it stays stopped
 * we set and delete small objects of two classes (one our cache holds
 * entries of, one it holds none of) many times over: every set succeeds
 * (it goes to the pool's allocator instead of our cache) and reads back,
 * every delete succeeds, and all of them together end within a watchdog
 * far below one peer bound (5 s) per call - before, each set waited the
 * bound and answered -EAGAIN, and each delete of ours waited it too.
 * Then the deleter is continued and finishes; the pool checks clean and
 * holds nothing. A second case sets a memory limit on us first: the
 * limit is exact only under our cache lock, so there a set may answer
 * -EAGAIN (documented), but after one bounded wait at most, and deletes
 * still succeed.
 *
 * Needs a failpoint build (-DMEMPOOL_FAILPOINTS=ON) for "stop".
 */
#include "helpers.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef T_FAILPOINTS
#include "t_giver.h"

enum { NOPS = 24 };             /* sets and deletes while it is stopped */

struct owner_ops {
    mempool *p;
    int fails, del_fails, eagain;
    _Atomic int done;
};

/* NOPS sets of 64 B and 256 B objects, each read back and deleted. */
static void *owner_run(void *arg)
{
    struct owner_ops *o = arg;
    for (int i = 0; i < NOPS; i++) {
        size_t len = i % 2 ? 256 : 64;
        char buf[256];
        mempool_dref r;
        mempool_view v;
        int rc;
        t_fill(buf, len, (uint64_t)i);
        rc = mempool_put(o->p, buf, len, &r);
        if (rc) {
            o->fails++;
            o->eagain += rc == -EAGAIN;
            continue;
        }
        if (mempool_get(o->p, r, &v) || v.len != len ||
            !t_check_fill(v.data, len, (uint64_t)i))
            o->fails++;
        else
            mempool_release(o->p, &v);
        if (mempool_delete(o->p, r))
            o->del_fails++;
    }
    atomic_store(&o->done, 1);
    return NULL;
}

/* With the deleter stopped in our cache lock, run owner_run on our
 * handle under a watchdog; @p o's counts are left for the caller. */
static void ops_while_stopped(struct owner_ops *o)
{
    pthread_t th;
    double t0;
    bool ended;
    pid_t k;

    for (int i = 0; i < NGIVE; i++)
        given[i] = t_put_fill(t_pool, 64, (uint64_t)i);
    k = t_fork(stopped_deleter, NULL);
    t_await_stopped(k, "handback.given");
    o->p = t_pool;
    t0 = t_now_s();
    ck_assert_int_eq(pthread_create(&th, NULL, owner_run, o), 0);
    /* A watchdog, not a measurement: one peer bound is 5 s; the stall
     * was one bound per set and per delete (NOPS * 10 s). */
    while (!atomic_load(&o->done) && t_now_s() - t0 < 60)
        t_sleep_ms(10);
    ended = atomic_load(&o->done) != 0;
    ck_assert_int_eq(kill(k, SIGCONT), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_msg(ended, "%d sets and deletes took over 60 s while a "
                  "deleter was stopped in our cache lock", NOPS);
    t_wait_ok(k);
    ck_assert_int_eq(o->del_fails, 0);
}

START_TEST(test_sets_while_giver_stopped)
{
    struct owner_ops o = { .p = NULL };
    ops_while_stopped(&o);
    ck_assert_msg(o.fails == 0, "%d of %d sets failed (%d with -EAGAIN) "
                  "while a deleter was stopped in our cache lock", o.fails,
                  NOPS, o.eagain);
    (void)mempool_reap(t_pool);
    t_assert_healthy(t_pool);
    ck_assert_uint_eq(t_stats(t_pool).objects, 0);
}
END_TEST

START_TEST(test_limited_sets_while_giver_stopped)
{
    struct owner_ops o = { .p = NULL };
    ASSERT_RC(mempool_limit_set(t_pool, MEMPOOL_LIMIT_MEMSIZE, 16u << 20),
              0);
    ops_while_stopped(&o);
    ck_assert_msg(o.fails == o.eagain, "%d sets failed, %d with -EAGAIN",
                  o.fails, o.eagain);
    (void)mempool_reap(t_pool);
    t_assert_healthy(t_pool);
    ck_assert_uint_eq(t_stats(t_pool).objects, 0);
}
END_TEST
#endif

int main(void)
{
    const struct t_case cases[] = {
#ifdef T_FAILPOINTS
        { "giver_stop", 240, true, { test_sets_while_giver_stopped,
                                     test_limited_sets_while_giver_stopped } },
#endif
        { .name = NULL }
    };
    return t_main("giver_stop", cases);
}
