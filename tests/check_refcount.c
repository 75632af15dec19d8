/* SPDX-License-Identifier: MIT */
/*
 * check_refcount.c - refcounted objects and their per-worker references.
 *
 * Issue semantic 6: set_ex(MEMPOOL_PUT_REFCOUNTED) gives the caller one
 * reference; ref/unref are attributed to the calling worker; the object is
 * deleted at the last unref or when the last worker holding references dies
 * (SIGKILL, then mempool_reap() or a new mempool_open()); plain objects live
 * until delete and outlive the process that set them. docs/scenarios.md
 * C13-C17. Other workers are t_remote children scripted over pipes.
 */
#include "helpers.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static mempool_dref set_rc(mempool *p, const void *data, size_t len,
                           int owner)
{
    mempool_put_options o = { owner, 0, MEMPOOL_PUT_REFCOUNTED };
    mempool_dref r;

    ASSERT_RC(mempool_put_ex(p, data, len, &o, &r), 0);
    return r;
}

static void assert_gone(mempool *p, mempool_dref r)
{
    mempool_view v;
    mempool_info in;

    ASSERT_RC(mempool_get(p, r, &v), -ENOENT);
    ASSERT_RC(mempool_info_get(p, r, &in), -ENOENT);
    ASSERT_RC(mempool_unref(p, r), -ENOENT);
    ASSERT_RC(mempool_ref(p, r), -ENOENT);
    ASSERT_RC(mempool_delete(p, r), -ENOENT);
}

/* C13 by one worker: 1 -> 2 -> 1 -> freed. */
START_TEST(test_ref_unref_basic)
{
    struct mempool_stats s0 = t_stats(t_pool);
    int64_t v[2] = { 1, 2 };
    mempool_dref r = set_rc(t_pool, v, sizeof v, 0);
    mempool_info in;
    mempool_view view;

    ASSERT_RC(mempool_info_get(t_pool, r, &in), 0);
    ck_assert_uint_eq(in.refs, 1);
    ck_assert_uint_eq(in.len, sizeof v);
    ck_assert_int_eq(in.owner, mempool_worker_id(t_pool));
    ck_assert_uint_gt(t_stats(t_pool).used_bytes, s0.used_bytes);
    ASSERT_RC(mempool_ref(t_pool, r), 0);
    ck_assert_int_eq(t_refs(t_pool, r), 2);
    ASSERT_RC(mempool_unref(t_pool, r), 0);
    ck_assert_int_eq(t_refs(t_pool, r), 1);
    ASSERT_RC(mempool_get(t_pool, r, &view), 0);
    ck_assert_mem_eq(view.data, v, sizeof v);
    ASSERT_RC(mempool_release(t_pool, &view), 0);
    ASSERT_RC(mempool_unref(t_pool, r), 0);
    assert_gone(t_pool, r);
    ck_assert_uint_eq(t_stats(t_pool).objects, s0.objects);
    ck_assert_uint_eq(t_stats(t_pool).used_bytes, s0.used_bytes);
    t_assert_healthy(t_pool);
}
END_TEST

/* The last unref while a view is held: new gets fail, the view stays valid
 * until released, then the memory goes. */
START_TEST(test_last_unref_while_pinned)
{
    struct mempool_stats s0 = t_stats(t_pool);
    char buf[3000];
    mempool_dref r;
    mempool_view v;

    t_fill(buf, sizeof buf, 31);
    r = set_rc(t_pool, buf, sizeof buf, 0);
    ASSERT_RC(mempool_get(t_pool, r, &v), 0);
    ASSERT_RC(mempool_unref(t_pool, r), 0);
    ASSERT_RC(mempool_get(t_pool, r, &(mempool_view){ 0 }), -ENOENT);
    ck_assert(t_check_fill(v.data, sizeof buf, 31));
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    assert_gone(t_pool, r);
    ck_assert_uint_eq(t_stats(t_pool).used_bytes, s0.used_bytes);
    t_assert_healthy(t_pool);
}
END_TEST

START_TEST(test_plain_object_not_refcounted)
{
    mempool_dref r;
    mempool_info in;

    ASSERT_RC(mempool_put(t_pool, "plain", 5, &r), 0);
    ASSERT_RC(mempool_ref(t_pool, r), -EINVAL);
    ASSERT_RC(mempool_unref(t_pool, r), -EINVAL);
    ASSERT_RC(mempool_info_get(t_pool, r, &in), 0);
    ck_assert_uint_eq(in.refs, 0);
    ASSERT_RC(mempool_delete(t_pool, r), 0);
    ASSERT_RC(mempool_unref(t_pool, r), -ENOENT);
}
END_TEST

/* C13 with owner W2 and C15: references belong to the worker that took
 * them; a non-holder's unref is -EINVAL and changes nothing. */
START_TEST(test_refs_attributed_per_worker)
{
    struct mempool_stats s0 = t_stats(t_pool);
    struct t_remote w2;
    int64_t v[2] = { 1, 2 }, wid;
    mempool_dref r;
    mempool_info in;

    t_remote_start(&w2, t_name);
    wid = t_remote_call(&w2, T_R_WID, NULL, 0);
    ck_assert_int_ge(wid, 1);
    /* W1 sets, charged to W2; W1 holds the one reference */
    r = set_rc(t_pool, v, sizeof v, (int)wid);
    ASSERT_RC(mempool_info_get(t_pool, r, &in), 0);
    ck_assert_int_eq(in.owner, (int)wid);
    ck_assert_uint_eq(in.refs, 1);
    /* W2 holds none: its unref is refused */
    ASSERT_RC(t_remote_call(&w2, T_R_UNREF, &r, 0), -EINVAL);
    ck_assert_int_eq(t_refs(t_pool, r), 1);
    /* W2 refs (2); W1 drops its own (1): r lives, W2 reads it */
    ASSERT_RC(t_remote_call(&w2, T_R_REF, &r, 1), 0);
    ck_assert_int_eq(t_refs(t_pool, r), 2);
    ASSERT_RC(mempool_unref(t_pool, r), 0);
    ck_assert_int_eq(t_refs(t_pool, r), 1);
    /* W1 now holds none */
    ASSERT_RC(mempool_unref(t_pool, r), -EINVAL);
    ck_assert_int_eq(t_refs(t_pool, r), 1);
    ASSERT_RC(t_remote_call(&w2, T_R_GET, &r, 1), 0);
    ck_assert_int_eq(t_pins(t_pool, r), 1);
    ASSERT_RC(t_remote_call(&w2, T_R_RELEASE_ALL, NULL, 0), 1);
    /* W2's unref is the last: freed everywhere */
    ASSERT_RC(t_remote_call(&w2, T_R_UNREF, &r, 0), 0);
    assert_gone(t_pool, r);
    ASSERT_RC(t_remote_call(&w2, T_R_UNREF, &r, 0), -ENOENT);
    ASSERT_RC(t_remote_call(&w2, T_R_GET, &r, 1), -ENOENT);
    ck_assert_int_eq(t_remote_quit(&w2), 0);
    ck_assert_uint_eq(t_stats(t_pool).used_bytes, s0.used_bytes);
    ck_assert_uint_eq(t_stats(t_pool).objects, s0.objects);
    t_assert_healthy(t_pool);
}
END_TEST

/* C14 + C16: W2 sets and sends the DRef; W1 refs; hand-off never hits 0. */
START_TEST(test_ref_handoff)
{
    struct t_remote w2;
    mempool_dref r;

    t_remote_start(&w2, t_name);
    ASSERT_RC(t_remote_call(&w2, T_R_SET_RC, &r, 4000), 0);
    ck_assert_int_eq(t_refs(t_pool, r), 1);
    ASSERT_RC(mempool_ref(t_pool, r), 0);
    ASSERT_RC(mempool_ref(t_pool, r), 0);
    ck_assert_int_eq(t_refs(t_pool, r), 3);
    ASSERT_RC(t_remote_call(&w2, T_R_UNREF, &r, 0), 0);
    ASSERT_RC(t_remote_call(&w2, T_R_UNREF, &r, 0), -EINVAL);
    ck_assert_int_eq(t_refs(t_pool, r), 2);
    {
        mempool_view v;

        ASSERT_RC(mempool_get(t_pool, r, &v), 0);
        ck_assert_uint_eq(v.len, 4000);
        ck_assert(t_check_fill(v.data, 4000, 4000));
        ASSERT_RC(mempool_release(t_pool, &v), 0);
    }
    ck_assert_int_eq(t_remote_quit(&w2), 0);
    /* W2 left: the object lives on W1's references */
    ck_assert_int_eq(t_refs(t_pool, r), 2);
    ASSERT_RC(mempool_unref(t_pool, r), 0);
    ASSERT_RC(mempool_unref(t_pool, r), 0);
    assert_gone(t_pool, r);
    t_assert_healthy(t_pool);
}
END_TEST

/* A closing worker's references go with it (like a death, but orderly). */
START_TEST(test_close_drops_refs)
{
    struct mempool_stats s0 = t_stats(t_pool);
    struct t_remote w2;
    mempool_dref r;

    t_remote_start(&w2, t_name);
    ASSERT_RC(t_remote_call(&w2, T_R_SET_RC, &r, 100), 0);
    ASSERT_RC(t_remote_call(&w2, T_R_REF, &r, 2), 0);
    ck_assert_int_eq(t_refs(t_pool, r), 3);
    ck_assert_int_eq(t_remote_quit(&w2), 0);
    assert_gone(t_pool, r);
    ck_assert_uint_eq(t_stats(t_pool).used_bytes, s0.used_bytes);
    ck_assert_uint_eq(t_stats(t_pool).objects, s0.objects);
    t_assert_healthy(t_pool);
}
END_TEST

/* Plain objects outlive their setter, whether it closes or is killed. */
START_TEST(test_plain_outlives_setter)
{
    struct t_remote w;
    mempool_dref a, b;
    mempool_view v;

    t_remote_start(&w, t_name);
    ASSERT_RC(t_remote_call(&w, T_R_SET, &a, 1234), 0);
    ck_assert_int_eq(t_remote_quit(&w), 0);
    t_remote_start(&w, t_name);
    ASSERT_RC(t_remote_call(&w, T_R_SET, &b, 4321), 0);
    t_remote_kill(&w);
    ASSERT_RC(mempool_reap(t_pool), 1);
    ASSERT_RC(mempool_get(t_pool, a, &v), 0);
    ck_assert_uint_eq(v.len, 1234);
    ck_assert(t_check_fill(v.data, 1234, 1234));
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    ASSERT_RC(mempool_get(t_pool, b, &v), 0);
    ck_assert_uint_eq(v.len, 4321);
    ck_assert(t_check_fill(v.data, 4321, 4321));
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    ck_assert_uint_eq(t_stats(t_pool).objects, 2);
    t_assert_healthy(t_pool);
}
END_TEST

/* C17: the only holder (2 refs, 1 pin) is SIGKILLed: reaping frees r. */
START_TEST(test_killed_last_holder_reap)
{
    struct mempool_stats s0 = t_stats(t_pool);
    struct t_remote w;
    mempool_dref r;

    t_remote_start(&w, t_name);
    ASSERT_RC(t_remote_call(&w, T_R_SET_RC, &r, 5000), 0);
    ASSERT_RC(t_remote_call(&w, T_R_REF, &r, 1), 0);
    ASSERT_RC(t_remote_call(&w, T_R_GET, &r, 1), 0);
    ck_assert_int_eq(t_refs(t_pool, r), 2);
    ck_assert_int_eq(t_pins(t_pool, r), 1);
    t_remote_kill(&w);
    ASSERT_RC(mempool_reap(t_pool), 1);
    assert_gone(t_pool, r);
    ASSERT_RC(mempool_reap(t_pool), 0);
    ck_assert_uint_eq(t_stats(t_pool).used_bytes, s0.used_bytes);
    ck_assert_uint_eq(t_stats(t_pool).objects, s0.objects);
    ck_assert_uint_eq(t_stats(t_pool).workers, 1);
    t_assert_healthy(t_pool);
}
END_TEST

/* C17 second half: W1 still holds one, so r keeps count 1. */
START_TEST(test_killed_holder_other_keeps)
{
    struct t_remote w;
    mempool_dref r;
    mempool_view v;
    char buf[700];

    t_fill(buf, sizeof buf, 32);
    r = set_rc(t_pool, buf, sizeof buf, 0);
    t_remote_start(&w, t_name);
    ASSERT_RC(t_remote_call(&w, T_R_REF, &r, 2), 0);
    ASSERT_RC(t_remote_call(&w, T_R_GET, &r, 3), 0);
    ck_assert_int_eq(t_refs(t_pool, r), 3);
    ck_assert_int_eq(t_pins(t_pool, r), 3);
    t_remote_kill(&w);
    ASSERT_RC(mempool_reap(t_pool), 1);
    ck_assert_int_eq(t_refs(t_pool, r), 1);
    ck_assert_int_eq(t_pins(t_pool, r), 0);
    ASSERT_RC(mempool_get(t_pool, r, &v), 0);
    ck_assert(t_check_fill(v.data, sizeof buf, 32));
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    ASSERT_RC(mempool_unref(t_pool, r), 0);
    assert_gone(t_pool, r);
    t_assert_healthy(t_pool);
}
END_TEST

/* The dead holder is reaped by the next mempool_open(), not mempool_reap. */
START_TEST(test_killed_holder_reaped_by_open)
{
    struct mempool_stats s0 = t_stats(t_pool);
    struct t_remote w;
    mempool_dref r, keep;
    mempool *q = NULL;

    t_remote_start(&w, t_name);
    ASSERT_RC(t_remote_call(&w, T_R_SET_RC, &r, 64 * 1024), 0);
    ASSERT_RC(t_remote_call(&w, T_R_SET, &keep, 100), 0);
    ASSERT_RC(t_remote_call(&w, T_R_GET, &keep, 1), 0);
    t_remote_kill(&w);
    ck_assert_int_eq(t_attach(t_name, &q), 0);
    /* the open reaped it: nothing left for mempool_reap */
    ASSERT_RC(mempool_reap(t_pool), 0);
    assert_gone(t_pool, r);
    ck_assert_int_eq(t_pins(t_pool, keep), 0);
    ck_assert_uint_eq(t_stats(t_pool).workers, 2);
    ck_assert_uint_eq(t_stats(t_pool).objects, s0.objects + 1);
    ASSERT_RC(mempool_delete(q, keep), 0);
    ck_assert_uint_eq(t_stats(t_pool).used_bytes, s0.used_bytes);
    ck_assert_int_eq(mempool_close(q), 0);
    t_assert_healthy(t_pool);
}
END_TEST

/* Three workers hold the only references; they die one after another. */
START_TEST(test_holders_die_one_by_one)
{
    struct mempool_stats s0 = t_stats(t_pool);
    struct t_remote w[3];
    mempool_dref r;
    int i;

    r = set_rc(t_pool, "shared", 6, 0);
    for (i = 0; i < 3; i++) {
        t_remote_start(&w[i], t_name);
        ASSERT_RC(t_remote_call(&w[i], T_R_REF, &r, (uint64_t)i + 1), 0);
    }
    ASSERT_RC(mempool_unref(t_pool, r), 0);
    ck_assert_int_eq(t_refs(t_pool, r), 1 + 2 + 3);
    t_remote_kill(&w[0]);
    t_remote_kill(&w[2]);
    ASSERT_RC(mempool_reap(t_pool), 2);
    ck_assert_int_eq(t_refs(t_pool, r), 2);
    ASSERT_RC(t_remote_call(&w[1], T_R_GET, &r, 1), 0);
    t_remote_kill(&w[1]);
    ASSERT_RC(mempool_reap(t_pool), 1);
    assert_gone(t_pool, r);
    ck_assert_uint_eq(t_stats(t_pool).used_bytes, s0.used_bytes);
    ck_assert_uint_eq(t_stats(t_pool).objects, s0.objects);
    t_assert_healthy(t_pool);
}
END_TEST

START_TEST(test_refcount_many_objects)
{
    enum { N = 300 };
    struct mempool_stats s0 = t_stats(t_pool);
    mempool_dref r[N];
    int i, k;

    for (i = 0; i < N; i++)
        r[i] = set_rc(t_pool, &i, sizeof i, 0);
    for (k = 0; k < 3; k++)
        for (i = 0; i < N; i++)
            ASSERT_RC(mempool_ref(t_pool, r[i]), 0);
    for (i = 0; i < N; i++)
        ck_assert_int_eq(t_refs(t_pool, r[i]), 4);
    for (k = 0; k < 4; k++)
        for (i = N - 1; i >= 0; i--)
            ASSERT_RC(mempool_unref(t_pool, r[i]), 0);
    for (i = 0; i < N; i++)
        assert_gone(t_pool, r[i]);
    ck_assert_uint_eq(t_stats(t_pool).used_bytes, s0.used_bytes);
    ck_assert_uint_eq(t_stats(t_pool).objects, s0.objects);
    t_assert_healthy(t_pool);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "local", 30, true, {
              test_ref_unref_basic, test_last_unref_while_pinned,
              test_plain_object_not_refcounted, test_refcount_many_objects,
          } },
        { "workers", 90, true, {
              test_refs_attributed_per_worker, test_ref_handoff,
              test_close_drops_refs, test_plain_outlives_setter } },
        { "death", 90, true, {
              test_killed_last_holder_reap, test_killed_holder_other_keeps,
              test_killed_holder_reaped_by_open, test_holders_die_one_by_one,
          } },
        { .name = NULL }
    };
    return t_main("refcount", cases);
}
