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

int main(void)
{
    const struct t_case cases[] = {
        { "review8", 120, true, { test_limit_after_stash } },
        { "review8-own", 120, false, { test_table_full_stash } },
        { .name = NULL }
    };
    return t_main("review8", cases);
}
