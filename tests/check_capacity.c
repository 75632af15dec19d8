/* SPDX-License-Identifier: MIT */
/*
 * check_capacity.c - how many pins and references one worker can hold
 * (mempool_options.max_refs, the per-worker cell table of src/core/pin.c).
 *
 * - one process holds 100,000 refcounted objects, reads each back, takes a
 *   second reference on each, and lets all of them go;
 * - at the limit, a refcounted put, a get and a ref answer -ENOBUFS and
 *   change nothing: every object held is still there with its exact
 *   reference count, another worker's objects are untouched, and dropping
 *   one hold makes room again;
 * - many pins of one object, and pins of objects whose indices all share
 *   one home bucket, go to the overflow buckets and are all counted by
 *   mempool_info_get() and honoured by delete (the hazard scan looks there);
 * - a worker killed while its overflow buckets are in use (and, with
 *   failpoints, at every hit of cells.overflow: counters raised, cell not
 *   stored) is reaped to a clean pool;
 * - the option's range, rounding and default, and an options struct from
 *   before the field existed.
 */
#include "helpers.h"

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int open_refs(const char *name, uint64_t arena, uint64_t max_objects,
                     uint64_t max_refs, mempool **out)
{
    mempool_options o;
    t_options(&o, arena);
    o.max_objects = max_objects;
    o.max_refs = max_refs;
    o.flags |= MEMPOOL_OPEN_EXCL;
    return mempool_open(name, &o, out);
}

static int put_rc(mempool *p, uint64_t seed, mempool_dref *r)
{
    mempool_put_options po = { 0, 0, 0 };
    uint64_t buf[4] = { seed, ~seed, seed * 3, seed ^ 0x5a5a };
    po.flags = MEMPOOL_PUT_REFCOUNTED;
    return mempool_put_ex(p, buf, sizeof buf, &po, r);
}

static void check_obj(mempool *p, mempool_dref r, uint64_t seed)
{
    mempool_view v;
    const uint64_t *x;
    ASSERT_RC(mempool_get(p, r, &v), 0);
    ck_assert_uint_eq(v.len, 32);
    x = v.data;
    ck_assert(x[0] == seed && x[1] == ~seed && x[2] == seed * 3 &&
              x[3] == (seed ^ 0x5a5a));
    ASSERT_RC(mempool_release(p, &v), 0);
}

#define N100K 100000

START_TEST(test_hold_100k_refcounted)
{
    char name[T_NAME_LEN];
    mempool_dref *r = malloc(N100K * sizeof *r);
    struct mempool_stats s;
    mempool *p;

    ck_assert_ptr_nonnull(r);
    t_pool_name(name, "capacity");
    ASSERT_RC(open_refs(name, 256 * MiB, 200000, 100000, &p), 0);
    s = t_stats(p);
    ck_assert_uint_eq(s.max_refs, 131072);          /* rounded up */
    for (int i = 0; i < N100K; i++)
        ASSERT_RC(put_rc(p, (uint64_t)i, &r[i]), 0);
    s = t_stats(p);
    ck_assert_uint_eq(s.objects, N100K);
    for (int i = 0; i < N100K; i++) {
        check_obj(p, r[i], (uint64_t)i);
        ASSERT_RC(mempool_ref(p, r[i]), 0);     /* the same cell, count 2 */
    }
    for (int i = 0; i < N100K; i += 997)
        ck_assert_int_eq(t_refs(p, r[i]), 2);
    t_assert_healthy(p);
    for (int i = 0; i < N100K; i++) {
        ASSERT_RC(mempool_unref(p, r[i]), 0);
        ASSERT_RC(mempool_unref(p, r[i]), 0);   /* the last: freed */
    }
    s = t_stats(p);
    ck_assert_uint_eq(s.objects, 0);
    ck_assert_uint_eq(s.pins, 0);
    ASSERT_RC(mempool_get(p, r[N100K / 2], &(mempool_view){ 0 }), -ENOENT);
    t_assert_healthy(p);
    ASSERT_RC(mempool_close(p), 0);
    ASSERT_RC(mempool_destroy(name), 0);
    free(r);
}
END_TEST

/* Fill @p p's table with refcounted objects until -ENOBUFS; how many. */
static int fill_refs(mempool *p, mempool_dref *r, int max)
{
    int n = 0, rc;
    while (n < max && (rc = put_rc(p, (uint64_t)n + 1, &r[n])) == 0)
        n++;
    ck_assert_int_lt(n, max);
    ASSERT_RC(rc, -ENOBUFS);
    return n;
}

START_TEST(test_limit_enobufs_loses_nothing)
{
    char name[T_NAME_LEN];
    mempool_dref r[2048], other, plain;
    mempool_view v;
    struct mempool_stats s0, s;
    mempool *p, *q;
    int n;

    t_pool_name(name, "capacity");
    ASSERT_RC(open_refs(name, 32 * MiB, 0, 1024, &p), 0);
    ASSERT_RC(t_attach(name, &q), 0);
    ASSERT_RC(put_rc(q, 999999, &other), 0);
    ASSERT_RC(mempool_put(q, "plain", 5, &plain), 0);
    s0 = t_stats(p);
    ck_assert_uint_eq(s0.max_refs, 1024);
    n = fill_refs(p, r, 2048);
    /* consecutive indices fill the 1024 home cells evenly, then the 128
     * overflow cells */
    ck_assert_int_ge(n, 1024);
    ck_assert_int_le(n, 1024 + 128);
    s = t_stats(p);
    ck_assert_uint_eq(s.objects, s0.objects + (uint64_t)n); /* none leaked */
    ck_assert_uint_eq(s.used_bytes, s0.used_bytes + (uint64_t)n * 64);
    /* a get needs a pin cell, a ref of another object a reference cell */
    ASSERT_RC(mempool_get(p, r[0], &v), -ENOBUFS);
    ASSERT_RC(mempool_get(p, plain, &v), -ENOBUFS);
    ASSERT_RC(mempool_ref(p, other), -ENOBUFS);
    ck_assert_int_eq(t_refs(q, other), 1);
    ck_assert_int_eq(t_pins(q, plain), 0);
    /* a second reference of a held object is the same cell: it works */
    ASSERT_RC(mempool_ref(p, r[n - 1]), 0);
    ck_assert_int_eq(t_refs(p, r[n - 1]), 2);
    ASSERT_RC(mempool_unref(p, r[n - 1]), 0);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(t_refs(p, r[i]), 1);
    /* the other worker is not limited by our table */
    check_obj(q, other, 999999);
    /* one hold less: room again. The last objects went to overflow, where
     * every entry may go: the first freed cell takes a reference of the
     * other worker's object, the second one pin at a time. */
    ck_assert_int_gt(n, 1024 + 2);
    ASSERT_RC(mempool_unref(p, r[n - 1]), 0);
    ASSERT_RC(mempool_ref(p, other), 0);
    ck_assert_int_eq(t_refs(q, other), 2);
    ASSERT_RC(mempool_get(p, r[0], &v), -ENOBUFS);
    ASSERT_RC(mempool_unref(p, r[n - 2]), 0);
    check_obj(p, other, 999999);
    t_assert_healthy(p);
    for (int i = 0; i < n - 2; i++) {
        check_obj(p, r[i], (uint64_t)i + 1);
        ASSERT_RC(mempool_unref(p, r[i]), 0);
    }
    ASSERT_RC(mempool_unref(p, other), 0);
    s = t_stats(p);
    ck_assert_uint_eq(s.objects, s0.objects);
    ck_assert_uint_eq(s.used_bytes, s0.used_bytes);
    t_assert_healthy(p);
    ASSERT_RC(mempool_close(q), 0);
    ASSERT_RC(mempool_close(p), 0);
    ASSERT_RC(mempool_destroy(name), 0);
}
END_TEST

START_TEST(test_many_pins_of_one_object)
{
    char name[T_NAME_LEN];
    static mempool_view v[512];
    mempool_dref r;
    mempool *p, *q;
    int n = 0, rc;

    t_pool_name(name, "capacity");
    ASSERT_RC(open_refs(name, 32 * MiB, 0, 1024, &p), 0);
    ASSERT_RC(t_attach(name, &q), 0);
    ASSERT_RC(mempool_put(q, "one object", 10, &r), 0);
    while (n < 512 && (rc = mempool_get(p, r, &v[n])) == 0)
        n++;
    ASSERT_RC(rc, -ENOBUFS);
    /* its home bucket (8), then every overflow bucket (1024 / 8 cells) */
    ck_assert_int_eq(n, 8 + 128);
    ck_assert_int_eq(t_pins(q, r), n);
    /* delete sees the pins in overflow: the bytes stay until the last */
    ASSERT_RC(mempool_delete(q, r), 0);
    for (int i = n - 1; i >= 1; i--) {
        ck_assert(memcmp(v[i].data, "one object", 10) == 0);
        ASSERT_RC(mempool_release(p, &v[i]), 0);
        ck_assert_uint_eq(t_stats(q).deleted_objects, 1);
    }
    ASSERT_RC(mempool_release(p, &v[0]), 0);
    ck_assert_uint_eq(t_stats(q).objects, 0);
    t_assert_healthy(p);
    ASSERT_RC(mempool_close(q), 0);
    ASSERT_RC(mempool_close(p), 0);
    ASSERT_RC(mempool_destroy(name), 0);
}
END_TEST

/* Pins of objects whose indices share one home bucket (every 128th of a
 * 1024-cell table): 8 at home, the rest spread over the overflow buckets by
 * the hash, each found again by info, release and delete. */
START_TEST(test_colliding_indices)
{
    char name[T_NAME_LEN];
    enum { NOBJ = 8192, STEP = 1024 / 8 };
    static mempool_dref r[NOBJ];
    static mempool_view v[NOBJ / STEP];
    mempool *p, *q;
    int k = 0;

    t_pool_name(name, "capacity");
    ASSERT_RC(open_refs(name, 64 * MiB, NOBJ, 1024, &p), 0);
    ASSERT_RC(t_attach(name, &q), 0);
    for (int i = 0; i < NOBJ; i++)
        ASSERT_RC(mempool_put(q, &i, sizeof i, &r[i]), 0);
    /* entries are 64 B apart: same home bucket <=> off differs by STEP */
    for (int i = 0; i < NOBJ; i++) {
        if (((r[i].off & MEMPOOL_DREF_ENTRY_BITS) - (r[0].off & MEMPOOL_DREF_ENTRY_BITS)) / 64 % STEP)
            continue;
        ASSERT_RC(mempool_get(p, r[i], &v[k]), 0);
        ck_assert_int_eq(*(const int *)v[k].data, i);
        k++;
    }
    ck_assert_int_eq(k, NOBJ / STEP);         /* 64: 8 home, 56 overflow */
    for (int i = 0, j = 0; i < NOBJ; i++) {
        if (((r[i].off & MEMPOOL_DREF_ENTRY_BITS) - (r[0].off & MEMPOOL_DREF_ENTRY_BITS)) / 64 % STEP)
            continue;
        ck_assert_int_eq(t_pins(q, r[i]), 1);
        ASSERT_RC(mempool_delete(q, r[i]), 0);   /* held by our pin */
        ck_assert(*(const int *)v[j].data == i);
        j++;
    }
    ck_assert_uint_eq(t_stats(q).deleted_objects, (uint64_t)k);
    t_assert_healthy(p);
    for (int j = 0; j < k; j++)
        ASSERT_RC(mempool_release(p, &v[j]), 0);
    ck_assert_uint_eq(t_stats(q).deleted_objects, 0);
    ck_assert_uint_eq(t_stats(q).objects, NOBJ - (uint64_t)k);
    t_assert_healthy(p);
    ASSERT_RC(mempool_close(q), 0);
    ASSERT_RC(mempool_close(p), 0);
    ASSERT_RC(mempool_destroy(name), 0);
}
END_TEST

/* The child: fill its table past the home cells (refcounted objects only
 * it holds), tell the parent, wait to be killed. With @p fp set, the
 * failpoint kills it first. */
struct kid {
    const char *name, *fp;
    int fd;
};

static int kid_main(void *arg)
{
    struct kid *k = arg;
    mempool_dref r;
    mempool *p;
    if (k->fp)
        setenv("MEMPOOL_FAILPOINT", k->fp, 1);
    T_CHILD_EQ(t_attach(k->name, &p), 0);
    for (int i = 0; i < 1100; i++)
        T_CHILD_EQ(put_rc(p, (uint64_t)i, &r), 0);
    T_CHILD_EQ(t_send_u64(k->fd, 1100), 0);
    pause();
    return 0;
}

static void kill_in_overflow(const char *fp)
{
    char name[T_NAME_LEN];
    struct mempool_stats s0, s;
    struct kid k;
    int fds[2], st;
    uint64_t got = 0;
    pid_t pid;
    mempool *p;

    t_pool_name(name, "capacity");
    ASSERT_RC(open_refs(name, 32 * MiB, 0, 1024, &p), 0);
    s0 = t_stats(p);
    t_pipe(fds);
    k = (struct kid){ name, fp, fds[1] };
    pid = t_fork(kid_main, &k);
    close(fds[1]);
    if (!fp) {
        ASSERT_RC(t_recv_u64(fds[0], &got, T_WAIT_S), 0);
        ck_assert_uint_eq(got, 1100);
        st = t_kill(pid);
    } else {
        st = t_wait(pid, T_WAIT_S) - 128;     /* killed by the failpoint */
    }
    ck_assert_msg(st == SIGKILL, "child (fp %s) ended with %d", fp ? fp : "-",
                  st);
    close(fds[0]);
    ck_assert_msg(mempool_reap(p) >= 1, "fp %s: nothing reaped", fp ? fp : "-");
    s = t_stats(p);
    ck_assert_uint_eq(s.objects, s0.objects);     /* only it held them */
    ck_assert_uint_eq(s.used_bytes, s0.used_bytes);
    t_assert_healthy(p);
    /* the slot is reused with an empty table and a clean overflow */
    {
        mempool_dref r[1200];
        int n = fill_refs(p, r, 1200);
        ck_assert_int_ge(n, 1024);
        for (int i = 0; i < n; i++)
            ASSERT_RC(mempool_unref(p, r[i]), 0);
    }
    t_assert_healthy(p);
    ASSERT_RC(mempool_close(p), 0);
    ASSERT_RC(mempool_destroy(name), 0);
}

START_TEST(test_killed_in_overflow)
{
    kill_in_overflow(NULL);
#ifdef T_FAILPOINTS
    /* 1100 - 1024 = 76 puts go to overflow: kill at the first, a middle
     * and the last of them */
    kill_in_overflow("cells.overflow@1");
    kill_in_overflow("cells.overflow@40");
    kill_in_overflow("cells.overflow@76");
#endif
}
END_TEST

static int try_refs(uint64_t arena, uint64_t max_refs, uint32_t size,
                    uint64_t *got)
{
    char name[T_NAME_LEN];
    mempool_options o;
    mempool *p;
    int rc;

    t_pool_name(name, "capacity");
    t_options(&o, arena);
    o.max_refs = max_refs;
    o.flags |= MEMPOOL_OPEN_EXCL;
    if (size)
        o.size = size;
    rc = mempool_open(name, &o, &p);
    if (rc == 0) {
        *got = t_stats(p).max_refs;
        ASSERT_RC(mempool_close(p), 0);
        ASSERT_RC(mempool_destroy(name), 0);
    }
    return rc;
}

START_TEST(test_option_range)
{
    uint64_t got = 0;
    ASSERT_RC(try_refs(32 * MiB, 0, 0, &got), 0);
    ck_assert_uint_eq(got, 4096);           /* small pools: 4096 */
    ASSERT_RC(try_refs(256 * MiB, 0, 0, &got), 0);
    ck_assert_uint_eq(got, 16384);          /* max_objects / 4 */
    ASSERT_RC(try_refs(32 * MiB, 1, 0, &got), 0);
    ck_assert_uint_eq(got, 1024);
    ASSERT_RC(try_refs(32 * MiB, 3000, 0, &got), 0);
    ck_assert_uint_eq(got, 4096);
    ASSERT_RC(try_refs(MEMPOOL_MIN_ARENA_BYTES, 0, 0, &got), 0);
    ck_assert_uint_eq(got, 4096);
    ASSERT_RC(try_refs(32 * MiB, MEMPOOL_MAX_REFS + 1, 0, &got), -EINVAL);
    /* 64 tables of 2^24 x 9 B do not fit 32 MiB */
    ASSERT_RC(try_refs(32 * MiB, MEMPOOL_MAX_REFS, 0, &got), -EINVAL);
    ASSERT_RC(try_refs(32 * MiB, 1u << 16, 0, &got), -EINVAL);
    ASSERT_RC(try_refs(256 * MiB, 1u << 16, 0, &got), 0);
    ck_assert_uint_eq(got, 1u << 16);
    /* a program built before max_refs existed gets the default */
    ASSERT_RC(try_refs(32 * MiB, 0,
                       (uint32_t)offsetof(mempool_options, max_refs), &got), 0);
    ck_assert_uint_eq(got, 4096);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("capacity");
    TCase *tc = tcase_create("capacity");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_hold_100k_refcounted);
    tcase_add_test(tc, test_limit_enobufs_loses_nothing);
    tcase_add_test(tc, test_many_pins_of_one_object);
    tcase_add_test(tc, test_colliding_indices);
    tcase_add_test(tc, test_killed_in_overflow);
    tcase_add_test(tc, test_option_range);
    suite_add_tcase(s, tc);
    return t_run(s, "capacity");
}
