/* SPDX-License-Identifier: MIT */
/*
 * check_review8.c - a hostile review of session 8's landings: the
 * deleters' batched hand-back (src/core/handback.c).
 *
 *   limit after stash  another process deletes our small objects and
 *             keeps them in its stash (fewer than a batch, then idles);
 *             we then set a memory limit that our live objects (none)
 *             fit in but our live plus the stashed ones do not: our next
 *             put must succeed without spilling anything, since the
 *             stashed objects are deleted (they failed -ENOMEM: the limit
 *             path spilled our own objects, and there were none).
 *   table full   the same stash in a pool whose object table we filled:
 *             our next put must take one of the deleted objects' entries
 *             (it failed -ENOSPC, "the object table is full", while a
 *             twentieth of the table was deleted objects).
 *   owner gone   (loop: the owner closes / is SIGKILLed) another
 *             process's small objects wait in our stash; their DRefs are
 *             -ENOENT for get and delete, an observer's fsck is clean;
 *             the owner goes, a new worker takes a slot and sets, we
 *             delete its objects (a batch goes with the stale entries in
 *             it): every figure is exact, no entry is handed out twice
 *             (100 new objects read back their own bytes), fsck clean.
 */
#include "helpers.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { NSTASH = 20, SMALL = 64 };   /* NSTASH < a stash batch (32) */

/* Our NSTASH small objects deleted by a live remote worker that then
 * idles: their entries wait DELETED in its stash. */
static void stash_ours(struct t_remote *w)
{
    for (int i = 0; i < NSTASH; i++) {
        mempool_dref r = t_put_fill(t_pool, SMALL, (uint64_t)i + 1);
        ASSERT_RC(t_remote_call(w, T_R_DELETE, &r, 0), 0);
    }
}

START_TEST(test_limit_after_stash)
{
    struct t_remote w;
    mempool_dref r;
    char buf[4 * SMALL];
    struct mempool_stats s;

    memset(buf, 7, sizeof buf);
    t_remote_start(&w, t_name);
    stash_ours(&w);
    /* Our live objects: none. A limit of 8 small objects' room: the next
     * put must fit (the 20 deleted ones are not ours any more). */
    ASSERT_RC(mempool_limit_set(t_pool, MEMPOOL_LIMIT_MEMSIZE, 8 * SMALL), 0);
    ASSERT_RC(mempool_put(t_pool, buf, sizeof buf, &r), 0);
    s = t_stats(t_pool);
    ck_assert_uint_eq(s.objects, 1);
    ck_assert_uint_eq(s.spills, 0);
    ASSERT_RC(mempool_delete(t_pool, r), 0);
    ck_assert_int_eq(t_remote_quit(&w), 0);
    t_assert_healthy(t_pool);
}
END_TEST

START_TEST(test_table_full_stash)
{
    enum { TAB = 128 };
    char name[T_NAME_LEN];
    mempool_options o;
    mempool *p;
    mempool_dref r[TAB], x;
    struct t_remote w;
    char buf[SMALL];
    int n = 0, rc;

    memset(buf, 3, sizeof buf);
    t_pool_name(name, "review8");
    t_options(&o, T_ARENA_BYTES);
    o.max_objects = TAB;
    ASSERT_RC(mempool_open(name, &o, &p), 0);
    while (n < TAB && (rc = mempool_put(p, buf, sizeof buf, &r[n])) == 0)
        n++;
    ck_assert_msg(n > NSTASH, "%d objects fit in a table of %d",
                  n, TAB);
    ASSERT_RC(mempool_put(p, buf, sizeof buf, &x), -ENOSPC);
    t_remote_start(&w, name);
    for (int i = 0; i < NSTASH; i++)
        ASSERT_RC(t_remote_call(&w, T_R_DELETE, &r[i], 0), 0);
    /* NSTASH objects deleted: as many puts fit again. */
    for (int i = 0; i < NSTASH; i++)
        ASSERT_RC(mempool_put(p, buf, sizeof buf, &r[i]), 0);
    for (int i = 0; i < n; i++)
        ASSERT_RC(mempool_delete(p, r[i]), 0);
    ck_assert_int_eq(t_remote_quit(&w), 0);
    t_assert_healthy(p);
    ASSERT_RC(mempool_close(p), 0);
    ASSERT_RC(mempool_destroy(name), 0);
}
END_TEST

/* Remote @p w sets @p n objects of SMALL bytes into @p r. */
static void remote_sets(struct t_remote *w, mempool_dref *r, int n)
{
    for (int i = 0; i < n; i++)
        ASSERT_RC(t_remote_call(w, T_R_SET, &r[i], SMALL), 0);
}

static void gone(mempool *p, const mempool_dref *r, int n)
{
    mempool_view v;
    for (int i = 0; i < n; i++) {
        ASSERT_RC(mempool_get(p, r[i], &v), -ENOENT);
        ASSERT_RC(mempool_delete(p, r[i]), -ENOENT);
    }
}

START_TEST(test_owner_gone)
{
    enum { NB = 40, NNEW = 100 };
    struct t_remote a, b;
    mempool_dref ra[NSTASH], rb[NB], rn[NNEW];
    mempool *obs;
    char why[256];
    struct mempool_stats s;
    int bid;

    t_remote_start(&a, t_name);
    remote_sets(&a, ra, NSTASH);
    for (int i = 0; i < NSTASH; i++)
        ASSERT_RC(mempool_delete(t_pool, ra[i]), 0);
    gone(t_pool, ra, NSTASH);
    obs = t_observe(t_name);
    ck_assert_msg(mempool_check(obs, why, sizeof why) == 0, "%s", why);
    if (_i == 0)
        ck_assert_int_eq(t_remote_quit(&a), 0);
    else
        t_remote_kill(&a);
    t_remote_start(&b, t_name);
    bid = (int)t_remote_call(&b, T_R_WID, NULL, 0);
    ck_assert_int_gt(bid, 0);
    remote_sets(&b, rb, NB);
    for (int i = 0; i < NB; i++)
        ASSERT_RC(mempool_delete(t_pool, rb[i]), 0);
    ck_assert_msg(mempool_check(obs, why, sizeof why) == 0, "%s", why);
    gone(t_pool, ra, NSTASH);
    gone(t_pool, rb, NB);
    remote_sets(&b, rn, NNEW);
    for (int i = 0; i < NNEW; i++)
        t_expect_fill(t_pool, rn[i], SMALL, SMALL);
    s = t_stats(t_pool);
    ck_assert_uint_eq(s.objects, NNEW);
    for (int i = 0; i < NNEW; i++)
        ASSERT_RC(mempool_delete(t_pool, rn[i]), 0);
    s = t_stats(t_pool);
    ck_assert_uint_eq(s.objects, 0);
    {
        struct mempool_worker_stats ws;
        memset(&ws, 0, sizeof ws);
        ws.size = sizeof ws;
        ASSERT_RC(mempool_worker_stats_get(t_pool, bid, &ws), 0);
        ck_assert_uint_eq(ws.objects, 0);
        ck_assert_uint_eq(ws.resident_bytes, 0);
    }
    ck_assert_int_eq(t_remote_quit(&b), 0);
    ASSERT_RC(mempool_close(obs), 0);
    t_assert_healthy(t_pool);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "review8", 120, true, { test_limit_after_stash, test_owner_gone } },
        { "review8-own", 120, false, { test_table_full_stash } },
        { .name = NULL }
    };
    const struct t_loop loops[] = {
        { test_owner_gone, 2 },
        { NULL, 0 }
    };
    return t_main_loops("review8", cases, loops);
}
