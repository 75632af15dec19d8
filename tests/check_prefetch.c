/* SPDX-License-Identifier: MIT */
/*
 * check_prefetch.c - mempool_prefetch() (src/core/prefetch.c, issue 11
 * target 6) is a hint: it answers 0 for any DRefs, including foreign,
 * stale, deleted, spilled and garbage ones (it must read nothing outside
 * the mapping: run under ASan and with offsets that point anywhere), works
 * on observer handles, refuses only a bad handle or a NULL array, and
 * changes nothing - no pin, no count, no recency: prefetching the least
 * recently used object does not save it from being the next victim.
 * Whether it is faster is measured by mempool-bench --section scale.
 */
#include "helpers.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

START_TEST(test_hint_any_dref)
{
    mempool_dref r[6], bad[8];
    struct mempool_stats a, b;
    uint64_t rs = 99;
    char buf[4096];

    memset(buf, 5, sizeof buf);
    for (int i = 0; i < 4; i++)
        ASSERT_RC(mempool_put(t_pool, buf, i ? sizeof buf : 64, &r[i]), 0);
    ASSERT_RC(mempool_delete(t_pool, r[3]), 0);        /* stale */
    ASSERT_RC(mempool_move_to_disk(t_pool, r[2], NULL), 0); /* spilled */
    r[4] = (mempool_dref){ 0, 0 };
    r[5] = (mempool_dref){ UINT64_MAX, r[0].gen };
    for (int i = 0; i < 8; i++)                      /* garbage */
        bad[i] = (mempool_dref){ t_rand(&rs), t_rand(&rs) };
    bad[0].gen = r[0].gen;                  /* our tag, offset anywhere */
    bad[1] = (mempool_dref){ r[0].off ^ 8, r[0].gen };   /* forged hint */
    a = t_stats(t_pool);
    ASSERT_RC(mempool_prefetch(t_pool, r, 6), 0);
    ASSERT_RC(mempool_prefetch(t_pool, bad, 8), 0);
    ASSERT_RC(mempool_prefetch(t_pool, NULL, 0), 0);
    ASSERT_RC(mempool_prefetch(t_pool, NULL, 3), -EINVAL);
    ASSERT_RC(mempool_prefetch(NULL, r, 1), -EINVAL);
    b = t_stats(t_pool);
    ck_assert_uint_eq(a.gets, b.gets);
    ck_assert_uint_eq(a.pins, b.pins);
    ck_assert_uint_eq(b.pins, 0);
    ck_assert_uint_eq(a.restores, b.restores);
    t_assert_healthy(t_pool);
}
END_TEST

START_TEST(test_observer_and_closed)
{
    mempool_options o;
    mempool *obs;
    mempool_dref r;

    ASSERT_RC(mempool_put(t_pool, "abc", 3, &r), 0);
    t_options(&o, T_ARENA_BYTES);
    o.flags = MEMPOOL_OPEN_OBSERVE;
    ASSERT_RC(mempool_open(t_name, &o, &obs), 0);
    ASSERT_RC(mempool_prefetch(obs, &r, 1), 0);
    ASSERT_RC(mempool_close(obs), 0);
    ASSERT_RC(mempool_prefetch(obs, &r, 1), -EINVAL);   /* closed */
}
END_TEST

static int child_forked(void *arg)
{
    mempool_dref *r = arg;
    T_CHILD_EQ(mempool_prefetch(t_pool, r, 1), MEMPOOL_EFORKED);
    return 0;
}

START_TEST(test_forked_child)
{
    mempool_dref r;
    ASSERT_RC(mempool_put(t_pool, "abc", 3, &r), 0);
    t_wait_ok(t_fork(child_forked, &r));
}
END_TEST

/* Three 64 B objects, limit 3 x 64: prefetching the LRU one (r0) leaves it
 * the LRU one, so the next set spills it. */
START_TEST(test_no_recency)
{
    mempool_dref r[4];
    mempool_info in;
    char buf[64] = { 1 };

    for (int i = 0; i < 3; i++)
        ASSERT_RC(mempool_put(t_pool, buf, sizeof buf, &r[i]), 0);
    ASSERT_RC(mempool_limit_set(t_pool, MEMPOOL_LIMIT_MEMSIZE, 3 * 64), 0);
    ASSERT_RC(mempool_prefetch(t_pool, r, 1), 0);
    ASSERT_RC(mempool_put(t_pool, buf, sizeof buf, &r[3]), 0);
    ASSERT_RC(mempool_info_get(t_pool, r[0], &in), 0);
    ck_assert_uint_eq(in.state & MEMPOOL_STATE_MEMORY, 0);
    ASSERT_RC(mempool_info_get(t_pool, r[1], &in), 0);
    ck_assert_uint_ne(in.state & MEMPOOL_STATE_MEMORY, 0);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "prefetch", 60, true, {
              test_hint_any_dref, test_observer_and_closed, test_forked_child,
              test_no_recency } },
        { .name = NULL }
    };
    return t_main("prefetch", cases);
}
