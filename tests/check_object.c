/* SPDX-License-Identifier: MIT */
/*
 * check_object.c - objects: set, get, release, delete, reserve/publish/abort,
 * owners, DRef validation and text, a full arena and a full table.
 *
 * Issue semantics covered: 2 (set copies, get is zero-copy inside the shared
 * mapping and pinned, two gets are two pins, bytes stable while pinned), 3
 * (delete; -ENOENT after delete and after slot reuse; a held view stays valid
 * and the memory is freed at the last release), 4 (malformed DRefs -EINVAL;
 * double or zeroed release is an error; counts never underflow), 5 (reserve,
 * publish, abort, and the memory returned by abort or close), 7 (owner), 11
 * (-ENOMEM when the arena is full and nothing can be freed).
 */
#include "helpers.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>


static uint64_t used(mempool *p)
{
    return t_stats(p).used_bytes;
}

/* Fill the arena with 64 KiB reservations of 0xee bytes, then abort them
 * all: memory freed too early would now hold that pattern. Reservations
 * cannot be spilled, so this really fills the arena. @return how many. */
static int churn(mempool *p)
{
    enum { LEN = 64 * 1024, MAX = 1024 };
    mempool_dref *r = calloc(MAX, sizeof *r);
    int n = 0, i, rc = 0;
    void *buf;

    ck_assert_ptr_nonnull(r);
    while (n < MAX && (rc = mempool_reserve(p, LEN, NULL, &buf, &r[n])) == 0) {
        memset(buf, 0xee, LEN);
        n++;
    }
    ck_assert_msg(rc == -ENOMEM, "churn: reserve = %d after %d", rc, n);
    for (i = 0; i < n; i++)
        ASSERT_RC(mempool_abort(p, r[i]), 0);
    free(r);
    return n;
}

/* ----------------------------------------------------------- 2: set/get */

START_TEST(test_set_get_zero_copy)
{
    enum { LEN = 1000 };
    unsigned char src[LEN];
    mempool_dref r;
    mempool_view v1, v2;
    mempool_info in;
    uint64_t base = used(t_pool);

    t_fill(src, LEN, 1);
    ASSERT_RC(mempool_put(t_pool, src, LEN, &r), 0);
    ck_assert_uint_gt(used(t_pool), base);
    ck_assert_uint_eq(t_stats(t_pool).objects, 1);
    memset(src, 0, LEN); /* set copied: changing the source changes nothing */
    ASSERT_RC(mempool_get(t_pool, r, &v1), 0);
    ck_assert_ptr_nonnull(v1.data);
    ck_assert_ptr_ne(v1.data, src);
    ck_assert_uint_eq(v1.len, LEN);
    ck_assert_uint_eq(v1.type, 0);
    ck_assert(v1.flags & MEMPOOL_VIEW_MEMORY);
    ck_assert(t_check_fill(v1.data, LEN, 1));
    ck_assert_msg(t_in_pool_mapping(t_name, v1.data, LEN),
                  "view %p is not inside the pool's shared mapping", v1.data);
    /* a second get is a second pin on the same bytes: no copy */
    ASSERT_RC(mempool_get(t_pool, r, &v2), 0);
    ck_assert_ptr_eq(v2.data, v1.data);
    ASSERT_RC(mempool_info_get(t_pool, r, &in), 0);
    ck_assert_uint_eq(in.pins, 2);
    ck_assert_uint_eq(in.len, LEN);
    ck_assert_int_eq(in.owner, mempool_worker_id(t_pool));
    ck_assert_uint_eq(in.type, 0);
    ck_assert(in.state & MEMPOOL_STATE_MEMORY);
    ck_assert_uint_eq(in.refs, 0);
    ASSERT_RC(mempool_release(t_pool, &v1), 0);
    ck_assert_int_eq(t_pins(t_pool, r), 1);
    ASSERT_RC(mempool_release(t_pool, &v2), 0);
    ck_assert_int_eq(t_pins(t_pool, r), 0);
    /* release clears the view */
    ck_assert_ptr_null(v2.data);
    t_assert_healthy(t_pool);
}
END_TEST

static mempool_dref child_ref;

static int child_get_in_mapping(void *arg)
{
    mempool *p = NULL;
    mempool_view v;

    (void)arg;
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_get(p, child_ref, &v), 0);
    T_CHILD_EQ(v.len, 4096);
    T_CHILD_ASSERT(t_check_fill(v.data, 4096, 2));
    T_CHILD_ASSERT(t_in_pool_mapping(t_name, v.data, v.len));
    T_CHILD_EQ(mempool_release(p, &v), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

START_TEST(test_get_from_other_process)
{
    child_ref = t_put_fill(t_pool, 4096, 2);
    t_wait_ok(t_fork(child_get_in_mapping, NULL));
    ck_assert_int_eq(t_pins(t_pool, child_ref), 0);
    ck_assert_uint_eq(t_stats(t_pool).workers, 1);
}
END_TEST

START_TEST(test_len_zero_and_null_args)
{
    mempool_dref r1, r2, r;
    mempool_view v;
    mempool_info in;
    struct mempool_stats s0, s1;

    ASSERT_RC(mempool_put(t_pool, NULL, 0, &r1), 0);
    ASSERT_RC(mempool_put(t_pool, "ignored", 0, &r2), 0);
    ck_assert(r1.off != r2.off || r1.gen != r2.gen);
    ASSERT_RC(mempool_get(t_pool, r1, &v), 0);
    ck_assert_ptr_nonnull(v.data);
    ck_assert_uint_eq(v.len, 0);
    ASSERT_RC(mempool_info_get(t_pool, r1, &in), 0);
    ck_assert_uint_eq(in.len, 0);
    ck_assert_uint_eq(in.pins, 1);
    ASSERT_RC(mempool_release(t_pool, &v), 0);

    s0 = t_stats(t_pool);
    ASSERT_RC(mempool_put(t_pool, NULL, 5, &r), -EINVAL);
    ASSERT_RC(mempool_put(NULL, "x", 1, &r), -EINVAL);
    ASSERT_RC(mempool_put(t_pool, "x", 1, NULL), -EINVAL);
    ASSERT_RC(mempool_get(t_pool, r1, NULL), -EINVAL);
    ASSERT_RC(mempool_get(NULL, r1, &v), -EINVAL);
    ASSERT_RC(mempool_info_get(t_pool, r1, NULL), -EINVAL);
    ASSERT_RC(mempool_release(t_pool, NULL), -EINVAL);
    ASSERT_RC(mempool_stats_get(t_pool, NULL), -EINVAL);
    ASSERT_RC(mempool_stats_get(NULL, &s1), -EINVAL);
    ASSERT_RC(mempool_worker_id(NULL), -EINVAL);
    s1 = t_stats(t_pool);
    ck_assert_uint_eq(s1.objects, s0.objects);
    ck_assert_uint_eq(s1.used_bytes, s0.used_bytes);
    ASSERT_RC(mempool_delete(t_pool, r1), 0);
    ASSERT_RC(mempool_delete(t_pool, r2), 0);
    ck_assert_uint_eq(t_stats(t_pool).objects, 0);
    t_assert_healthy(t_pool);
}
END_TEST

START_TEST(test_set_ex_options)
{
    mempool_put_options o = { 0, MEMPOOL_TYPE_STRINGS, 0 };
    mempool_dref r;
    mempool_view v;
    mempool_info in;
    struct mempool_stats s0;

    ASSERT_RC(mempool_put_ex(t_pool, "typed", 5, &o, &r), 0);
    ASSERT_RC(mempool_get(t_pool, r, &v), 0);
    ck_assert_uint_eq(v.type, MEMPOOL_TYPE_STRINGS);
    ASSERT_RC(mempool_info_get(t_pool, r, &in), 0);
    ck_assert_uint_eq(in.type, MEMPOOL_TYPE_STRINGS);
    ck_assert_int_eq(in.owner, mempool_worker_id(t_pool));
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    /* an unknown flag: -EINVAL, nothing left behind */
    s0 = t_stats(t_pool);
    o.flags = 0x80u;
    ASSERT_RC(mempool_put_ex(t_pool, "x", 1, &o, &r), -EINVAL);
    ck_assert_uint_eq(t_stats(t_pool).objects, s0.objects);
    ck_assert_uint_eq(t_stats(t_pool).used_bytes, s0.used_bytes);
    t_assert_healthy(t_pool);
}
END_TEST

/* ---------------------------------------------------- 2, 4: pin counts */

START_TEST(test_pins_and_double_release)
{
    mempool_dref r = t_put_fill(t_pool, 100, 3);
    mempool_view a, b, copy;

    ASSERT_RC(mempool_get(t_pool, r, &a), 0);
    ck_assert_int_eq(t_pins(t_pool, r), 1);
    ASSERT_RC(mempool_get(t_pool, r, &b), 0);
    ck_assert_int_eq(t_pins(t_pool, r), 2);
    ASSERT_RC(mempool_release(t_pool, &a), 0);
    ck_assert_int_eq(t_pins(t_pool, r), 1);
    copy = b;
    ASSERT_RC(mempool_release(t_pool, &b), 0);
    ck_assert_int_eq(t_pins(t_pool, r), 0);
    /* the same view again (cleared, then as a saved copy): error, 0 pins */
    ASSERT_RC(mempool_release(t_pool, &b), -EINVAL);
    ASSERT_RC(mempool_release(t_pool, &copy), -EINVAL);
    ck_assert_int_eq(t_pins(t_pool, r), 0);
    t_assert_healthy(t_pool);
    /* pins still work normally afterwards */
    ASSERT_RC(mempool_get(t_pool, r, &a), 0);
    ck_assert_int_eq(t_pins(t_pool, r), 1);
    ASSERT_RC(mempool_release(t_pool, &a), 0);
    ck_assert_int_eq(t_pins(t_pool, r), 0);
}
END_TEST

/* Each get is its own pin: re-releasing a released view must not consume
 * another live pin of the same object by the same worker. */
START_TEST(test_release_copy_keeps_other_pin)
{
    mempool_dref r = t_put_fill(t_pool, 100, 4);
    mempool_view a, b, copy;

    ASSERT_RC(mempool_get(t_pool, r, &a), 0);
    ASSERT_RC(mempool_get(t_pool, r, &b), 0);
    copy = a;
    ASSERT_RC(mempool_release(t_pool, &a), 0);
    ASSERT_RC(mempool_release(t_pool, &copy), -EINVAL);
    ck_assert_int_eq(t_pins(t_pool, r), 1);
    ASSERT_RC(mempool_release(t_pool, &b), 0);
    ck_assert_int_eq(t_pins(t_pool, r), 0);
    t_assert_healthy(t_pool);
}
END_TEST

START_TEST(test_release_zeroed_and_forged)
{
    mempool_dref r = t_put_fill(t_pool, 100, 5);
    mempool_view v, z, f;
    uint64_t seed = 77;
    int i;

    memset(&z, 0, sizeof z);
    ASSERT_RC(mempool_release(t_pool, &z), -EINVAL);
    ASSERT_RC(mempool_get(t_pool, r, &v), 0);
    /* fully forged pins (random bookkeeping words) */
    for (i = 0; i < 1000; i++) {
        unsigned j;

        f = v;
        for (j = 0; j < 4; j++)
            f.priv[j] = t_rand(&seed);
        if (i & 1)
            f.data = (const void *)(uintptr_t)t_rand(&seed);
        ASSERT_RC(mempool_release(t_pool, &f), -EINVAL);
    }
    ASSERT_RC(mempool_release(t_pool, &z), -EINVAL);
    ck_assert_int_eq(t_pins(t_pool, r), 1);
    ck_assert(t_check_fill(v.data, 100, 5));
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    ck_assert_int_eq(t_pins(t_pool, r), 0);
    t_assert_healthy(t_pool);
}
END_TEST

/* ------------------------------------------------------------- 3: delete */

START_TEST(test_delete_while_pinned)
{
    enum { LEN = 64 * 1024 };
    uint64_t base = used(t_pool), held;
    mempool_dref r = t_put_fill(t_pool, LEN, 6);
    mempool_view v, w;
    mempool_info in;
    uint64_t sum;

    ASSERT_RC(mempool_get(t_pool, r, &v), 0);
    sum = t_fnv1a(v.data, v.len);
    held = used(t_pool);
    ck_assert_uint_gt(held, base);
    ASSERT_RC(mempool_delete(t_pool, r), 0);
    /* gone for everyone at once ... */
    ASSERT_RC(mempool_get(t_pool, r, &w), -ENOENT);
    ASSERT_RC(mempool_info_get(t_pool, r, &in), -ENOENT);
    ASSERT_RC(mempool_delete(t_pool, r), -ENOENT);
    /* ... but the pinned bytes stay valid and unchanged through churn */
    ck_assert_uint_eq(used(t_pool), held);
    ck_assert_int_gt(churn(t_pool), 0);
    ck_assert_uint_eq(v.len, LEN);
    ck_assert(t_check_fill(v.data, LEN, 6));
    ck_assert_uint_eq(t_fnv1a(v.data, v.len), sum);
    ck_assert_uint_eq(used(t_pool), held);
    /* the last release frees the memory */
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    ck_assert_uint_eq(used(t_pool), base);
    ck_assert_uint_eq(t_stats(t_pool).objects, 0);
    ASSERT_RC(mempool_release(t_pool, &v), -EINVAL);
    t_assert_healthy(t_pool);
}
END_TEST

static int go_fd = -1, ack_fd = -1;

/* Child: pin child_ref, tell the parent, wait, check the bytes, release. */
static int child_hold_then_verify(void *arg)
{
    mempool *p = NULL;
    mempool_view v;
    uint64_t x;

    (void)arg;
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_get(p, child_ref, &v), 0);
    T_CHILD_EQ(t_send_u64(ack_fd, 1), 0);
    T_CHILD_EQ(t_recv_u64(go_fd, &x, T_WAIT_S), 0);
    T_CHILD_EQ(v.len, 256 * 1024);
    T_CHILD_ASSERT(t_check_fill(v.data, v.len, 8));
    T_CHILD_EQ(mempool_get(p, child_ref, &(mempool_view){ 0 }), -ENOENT);
    T_CHILD_EQ(mempool_release(p, &v), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

START_TEST(test_delete_pinned_by_other_process)
{
    uint64_t base = used(t_pool), x;
    int go[2], ack[2];
    pid_t pid;

    child_ref = t_put_fill(t_pool, 256 * 1024, 8);
    t_pipe(go);
    t_pipe(ack);
    go_fd = go[0];
    ack_fd = ack[1];
    pid = t_fork(child_hold_then_verify, NULL);
    ck_assert_int_eq(t_recv_u64(ack[0], &x, T_WAIT_S), 0);
    ck_assert_int_eq(t_pins(t_pool, child_ref), 1);
    ASSERT_RC(mempool_delete(t_pool, child_ref), 0);
    ck_assert_int_gt(churn(t_pool), 0);
    ck_assert_int_eq(t_send_u64(go[1], 1), 0);
    t_wait_ok(pid);
    ck_assert_uint_eq(used(t_pool), base);
    ck_assert_uint_eq(t_stats(t_pool).objects, 0);
    t_assert_healthy(t_pool);
}
END_TEST

START_TEST(test_stale_after_slot_reuse)
{
    struct mempool_stats s = t_stats(t_pool);
    mempool_dref a, b = { 0, 0 }, *all;
    mempool_view v;
    mempool_info in;
    uint64_t i, n = 0;
    int rc = 0;
    bool reused = false;

    all = calloc(s.max_objects + 1, sizeof *all);
    ck_assert_ptr_nonnull(all);
    a = t_put_fill(t_pool, 32, 9);
    ASSERT_RC(mempool_delete(t_pool, a), 0);
    /* set until a's table entry is reused (at the latest when full) */
    while (n <= s.max_objects) {
        rc = mempool_put(t_pool, &n, sizeof n, &all[n]);
        if (rc != 0)
            break;
        if (all[n].off == a.off) {
            b = all[n++];
            reused = true;
            break;
        }
        n++;
    }
    ck_assert_msg(reused, "entry never reused (%" PRIu64 " sets, last %d)",
                  n, rc);
    ck_assert_uint_ne(a.gen, b.gen);
    ck_assert_uint_eq(a.gen >> 32, b.gen >> 32); /* same pool tag */
    ASSERT_RC(mempool_get(t_pool, a, &v), -ENOENT);
    ASSERT_RC(mempool_info_get(t_pool, a, &in), -ENOENT);
    ASSERT_RC(mempool_delete(t_pool, a), -ENOENT);
    /* the stale delete did not touch the new object */
    ASSERT_RC(mempool_get(t_pool, b, &v), 0);
    ck_assert_uint_eq(v.len, sizeof n);
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    for (i = 0; i < n; i++)
        ASSERT_RC(mempool_delete(t_pool, all[i]), 0);
    ASSERT_RC(mempool_get(t_pool, b, &v), -ENOENT);
    ck_assert_uint_eq(t_stats(t_pool).objects, 0);
    free(all);
    t_assert_healthy(t_pool);
}
END_TEST

static int child_delete(void *arg)
{
    mempool *p = NULL;
    int n = *(int *)arg, i, rc;
    mempool_dref *r = malloc((size_t)n * sizeof *r);

    T_CHILD_ASSERT(r != NULL);
    T_CHILD_EQ(t_recv(go_fd, r, (size_t)n * sizeof *r, T_WAIT_S), 0);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    for (i = 0; i < n; i++) {
        rc = mempool_delete(p, r[i]);
        T_CHILD_ASSERT(rc == 0 || rc == -ENOENT);
        T_CHILD_EQ(t_send(ack_fd, &(char){ rc == 0 ? 'y' : 'n' }, 1), 0);
    }
    T_CHILD_EQ(mempool_close(p), 0);
    free(r);
    return 0;
}

/* Two processes delete the same objects at once: exactly one wins each. */
START_TEST(test_double_delete_two_processes)
{
    enum { N = 200 };
    mempool_dref r[N];
    int go[2][2], ack[2], i, n = N, wins = 0;
    pid_t pid[2];
    char c;

    for (i = 0; i < N; i++)
        r[i] = t_put_fill(t_pool, 64, (uint64_t)i);
    t_pipe(ack);
    ack_fd = ack[1];
    for (i = 0; i < 2; i++) {
        t_pipe(go[i]);
        go_fd = go[i][0];
        pid[i] = t_fork(child_delete, &n);
    }
    close(ack[1]);
    for (i = 0; i < 2; i++)
        ck_assert_int_eq(t_send(go[i][1], r, sizeof r), 0);
    for (i = 0; i < 2 * N; i++) {
        ck_assert_int_eq(t_recv(ack[0], &c, 1, T_WAIT_S), 0);
        wins += c == 'y';
    }
    t_wait_ok(pid[0]);
    t_wait_ok(pid[1]);
    ck_assert_int_eq(wins, N);
    ck_assert_uint_eq(t_stats(t_pool).objects, 0);
    ck_assert_uint_eq(t_stats(t_pool).used_bytes, 0);
    t_assert_healthy(t_pool);
}
END_TEST

/* ------------------------------------------------------ 4: bad DRefs */

/* Every DRef-taking call refuses @p r with @p want (and -EINVAL for calls
 * whose "wrong kind" answer would also be -EINVAL). */
static void assert_all_refuse(mempool_dref r, int want, const char *what)
{
    mempool_view v;
    mempool_info in;
    int rc[7], i;

    memset(&v, 0, sizeof v);
    rc[0] = mempool_get(t_pool, r, &v);
    rc[1] = mempool_info_get(t_pool, r, &in);
    rc[2] = mempool_delete(t_pool, r);
    rc[3] = mempool_ref(t_pool, r);
    rc[4] = mempool_unref(t_pool, r);
    rc[5] = mempool_publish(t_pool, r);
    rc[6] = mempool_abort(t_pool, r);
    for (i = 0; i < 7; i++) {
        bool ok = rc[i] == want;

        /* ref/unref/publish/abort of a valid-looking but absent object may
         * say "not refcounted / not yours" (-EINVAL) instead of -ENOENT */
        if (want == -ENOENT && i >= 3)
            ok = rc[i] == -ENOENT || rc[i] == -EINVAL;
        ck_assert_msg(ok, "%s: call %d (get,info,delete,ref,unref,publish,"
                      "abort) = %d (%s), want %d; dref %016" PRIx64
                      ":%016" PRIx64, what, i, rc[i], mempool_strerror(rc[i]),
                      want, r.off, r.gen);
    }
}

START_TEST(test_malformed_drefs)
{
    struct mempool_stats s = t_stats(t_pool);
    mempool_dref r = t_put_fill(t_pool, 100, 10);
    mempool_dref bad;
    mempool *q = NULL;
    char name[T_NAME_LEN];
    uint64_t seed = 4242;
    unsigned k;
    int i;

    /* (offsets that are not a multiple of 64 are data hints now, the
     * same object: tests/check_dref_hint.c) */
    static const uint64_t offs[] = { 1ull << 45, 1ull << 44 };
    for (k = 0; k < sizeof offs / sizeof offs[0]; k++) {
        bad = r;
        bad.off += offs[k];
        assert_all_refuse(bad, -EINVAL, "past the table");
    }
    bad = r;
    bad.off = 0;
    assert_all_refuse(bad, -EINVAL, "offset 0 (header)");
    bad.off = UINT64_MAX;
    assert_all_refuse(bad, -EINVAL, "offset max");
    bad.off = UINT64_MAX - 63;
    assert_all_refuse(bad, -EINVAL, "offset max, aligned");
    bad.off = 1ull << 63;
    assert_all_refuse(bad, -EINVAL, "offset 2^63");
    bad.off = s.arena_bytes;
    assert_all_refuse(bad, -EINVAL, "offset = arena size");
    bad.off = s.arena_bytes - 64;
    assert_all_refuse(bad, -EINVAL, "offset in the data pages");
    /* another pool's tag */
    bad = r;
    bad.gen ^= 1ull << 40;
    assert_all_refuse(bad, -EINVAL, "wrong pool tag");
    /* right entry and pool, wrong generation: stale */
    bad = r;
    bad.gen = (r.gen & ~0xffffffffull) | ((r.gen + 1) & 0xffffffffull);
    assert_all_refuse(bad, -ENOENT, "generation + 1");
    bad.gen = (r.gen & ~0xffffffffull) | ((r.gen + 7) & 0xffffffffull);
    assert_all_refuse(bad, -ENOENT, "generation + 7");
    /* random bytes */
    for (i = 0; i < 5000; i++) {
        bad.off = t_rand(&seed);
        bad.gen = t_rand(&seed);
        assert_all_refuse(bad, -EINVAL, "random");
    }
    /* random offsets inside the arena with this pool's tag: never 0, never
     * a crash */
    for (i = 0; i < 5000; i++) {
        mempool_view v;
        int rc;

        bad.off = t_rand(&seed) % s.arena_bytes;
        if (i & 1)
            bad.off &= ~63ull;
        bad.gen = (r.gen & ~0xffffffffull) | (t_rand(&seed) & 0xffffffffull);
        if (bad.off == r.off && bad.gen == r.gen)
            continue;
        rc = mempool_get(t_pool, bad, &v);
        ck_assert_msg(rc == -EINVAL || rc == -ENOENT,
                      "get(%016" PRIx64 ":%016" PRIx64 ") = %d", bad.off,
                      bad.gen, rc);
        rc = mempool_delete(t_pool, bad);
        ck_assert_msg(rc == -EINVAL || rc == -ENOENT,
                      "delete(%016" PRIx64 ":%016" PRIx64 ") = %d", bad.off,
                      bad.gen, rc);
    }
    /* a DRef of another live pool */
    t_pool_name(name, NULL);
    ck_assert_int_eq(t_open(name, 4 * MiB, &q), 0);
    {
        mempool_dref other;
        mempool_view v;

        ASSERT_RC(mempool_put(q, "other", 5, &other), 0);
        ASSERT_RC(mempool_get(t_pool, other, &v), -EINVAL);
        ASSERT_RC(mempool_get(q, r, &v), -EINVAL);
    }
    ck_assert_int_eq(mempool_close(q), 0);
    ck_assert_int_eq(mempool_destroy(name), 0);
    /* nothing was harmed */
    ck_assert_uint_eq(t_stats(t_pool).objects, 1);
    ck_assert_int_eq(t_pins(t_pool, r), 0);
    {
        mempool_view v;

        ASSERT_RC(mempool_get(t_pool, r, &v), 0);
        ck_assert(t_check_fill(v.data, 100, 10));
        ASSERT_RC(mempool_release(t_pool, &v), 0);
    }
    t_assert_healthy(t_pool);
}
END_TEST

/* ------------------------------------------------------- DRef as text */

START_TEST(test_dref_text)
{
    char buf[64], want[64];
    mempool_dref r, back;
    uint64_t seed = 5;
    int i;

    for (i = 0; i < 1000; i++) {
        r.off = i == 0 ? 0 : i == 1 ? UINT64_MAX : t_rand(&seed);
        r.gen = i == 0 ? 0 : i == 1 ? UINT64_MAX : t_rand(&seed);
        memset(buf, 'Z', sizeof buf);
        ASSERT_RC(mempool_dref_format(r, buf, MEMPOOL_DREF_STRLEN), 33);
        snprintf(want, sizeof want, "%016" PRIx64 ":%016" PRIx64, r.off,
                 r.gen);
        ck_assert_str_eq(buf, want);
        ck_assert_int_eq(buf[MEMPOOL_DREF_STRLEN], 'Z');
        memset(&back, 0, sizeof back);
        ASSERT_RC(mempool_dref_parse(buf, &back), 0);
        ck_assert_uint_eq(back.off, r.off);
        ck_assert_uint_eq(back.gen, r.gen);
    }
    /* a real DRef round-trips and still works */
    r = t_put_fill(t_pool, 10, 11);
    ASSERT_RC(mempool_dref_format(r, buf, sizeof buf), 33);
    ASSERT_RC(mempool_dref_parse(buf, &back), 0);
    ASSERT_RC(mempool_info_get(t_pool, back, &(mempool_info){ 0 }), 0);
    /* too small a buffer, NULL */
    memset(buf, 'Z', sizeof buf);
    ASSERT_RC(mempool_dref_format(r, buf, MEMPOOL_DREF_STRLEN - 1), -ENOSPC);
    ASSERT_RC(mempool_dref_format(r, buf, 0), -ENOSPC);
    ASSERT_RC(mempool_dref_format(r, NULL, 64), -EINVAL);
    ck_assert_int_eq(buf[MEMPOOL_DREF_STRLEN - 1], 'Z');
}
END_TEST

START_TEST(test_dref_parse_errors)
{
    static const char *bad[] = {
        "",
        "0",
        ":",
        "00000000000000000000000000000000",          /* no ':' */
        "0000000000000000:000000000000000",          /* 15 after */
        "000000000000000:0000000000000000",          /* 15 before */
        "00000000000000000:0000000000000000",        /* 17 before */
        "0000000000000000:00000000000000000",        /* 17 after */
        "0000000000000000:0000000000000000 ",        /* trailing space */
        "0000000000000000:0000000000000000\n",       /* trailing newline */
        " 0000000000000000:0000000000000000",        /* leading space */
        "0000000000000000-0000000000000000",         /* wrong separator */
        "0000000000000000::000000000000000",
        "000000000000000g:0000000000000000",         /* not hex */
        "0000000000000000:000000000000000G",
        "ABCDEF0000000000:0000000000000000",         /* upper case */
        "0x00000000000000:0000000000000000",
        "+000000000000000:0000000000000000",
        "-000000000000000:0000000000000000",
        "0000000000000000:0000000000000000:",
        "0000000000000000:0000000000000000x",
        "00000000 0000000:0000000000000000",
    };
    mempool_dref out, sentinel = { 0x1111, 0x2222 };
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        out = sentinel;
        ck_assert_msg(mempool_dref_parse(bad[i], &out) == -EINVAL,
                      "parse('%s') accepted", bad[i]);
        ck_assert_msg(out.off == sentinel.off && out.gen == sentinel.gen,
                      "parse('%s') changed its output on failure", bad[i]);
    }
    ASSERT_RC(mempool_dref_parse(NULL, &out), -EINVAL);
    ASSERT_RC(mempool_dref_parse("0000000000000000:0000000000000000", NULL),
              -EINVAL);
    ASSERT_RC(mempool_dref_parse("00000000000000ab:00000000000000cd", &out),
              0);
    ck_assert_uint_eq(out.off, 0xab);
    ck_assert_uint_eq(out.gen, 0xcd);
}
END_TEST

/* ------------------------------------------- 5: reserve/publish/abort */

static int child_try_unpublished(void *arg)
{
    mempool *p = NULL;
    mempool_view v;

    (void)arg;
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_get(p, child_ref, &v), -ENOENT);
    /* not this worker's reservation */
    T_CHILD_EQ(mempool_publish(p, child_ref), -EINVAL);
    T_CHILD_EQ(mempool_abort(p, child_ref), -EINVAL);
    T_CHILD_EQ(mempool_delete(p, child_ref), -ENOENT);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

START_TEST(test_reserve_publish)
{
    enum { LEN = 5000 };
    uint64_t base = used(t_pool);
    mempool_dref r;
    mempool_view v;
    void *buf = NULL;
    int rc;

    ASSERT_RC(mempool_reserve(t_pool, LEN, NULL, &buf, &r), 0);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq((uintptr_t)buf % 64, 0);
    ck_assert(t_in_pool_mapping(t_name, buf, LEN));
    ck_assert_uint_gt(used(t_pool), base);
    /* invisible until published, here and elsewhere */
    ASSERT_RC(mempool_get(t_pool, r, &v), -ENOENT);
    ASSERT_RC(mempool_delete(t_pool, r), -ENOENT);
    child_ref = r;
    t_wait_ok(t_fork(child_try_unpublished, NULL));
    t_fill(buf, LEN, 12);
    ASSERT_RC(mempool_publish(t_pool, r), 0);
    /* zero copy: the view is the reserved buffer */
    ASSERT_RC(mempool_get(t_pool, r, &v), 0);
    ck_assert_ptr_eq(v.data, buf);
    ck_assert_uint_eq(v.len, LEN);
    ck_assert(t_check_fill(v.data, LEN, 12));
    /* published: no second publish, no abort */
    rc = mempool_publish(t_pool, r);
    ck_assert_msg(rc == -EINVAL || rc == -ENOENT, "publish twice = %d", rc);
    rc = mempool_abort(t_pool, r);
    ck_assert_msg(rc == -EINVAL || rc == -ENOENT, "abort published = %d", rc);
    ck_assert(t_check_fill(v.data, LEN, 12));
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    ASSERT_RC(mempool_delete(t_pool, r), 0);
    ck_assert_uint_eq(used(t_pool), base);
    t_assert_healthy(t_pool);
}
END_TEST

START_TEST(test_reserve_abort)
{
    uint64_t base = used(t_pool);
    mempool_dref r;
    mempool_view v;
    void *buf = NULL;

    ASSERT_RC(mempool_reserve(t_pool, MiB, NULL, &buf, &r), 0);
    ck_assert_uint_ge(used(t_pool), base + MiB);
    memset(buf, 0x42, MiB);
    ASSERT_RC(mempool_abort(t_pool, r), 0);
    ck_assert_uint_eq(used(t_pool), base);
    ck_assert_uint_eq(t_stats(t_pool).objects, 0);
    ASSERT_RC(mempool_get(t_pool, r, &v), -ENOENT);
    ASSERT_RC(mempool_publish(t_pool, r), -ENOENT);
    ASSERT_RC(mempool_abort(t_pool, r), -ENOENT);
    t_assert_healthy(t_pool);
}
END_TEST

START_TEST(test_reserve_close_returns_memory)
{
    uint64_t base = used(t_pool);
    mempool *q = NULL;
    mempool_dref r;
    mempool_view v;
    void *buf = NULL;

    ck_assert_int_eq(t_attach(t_name, &q), 0);
    ASSERT_RC(mempool_reserve(q, 3 * MiB, NULL, &buf, &r), 0);
    ASSERT_RC(mempool_publish(t_pool, r), -EINVAL); /* not ours */
    ck_assert_uint_ge(used(t_pool), base + 3 * MiB);
    ck_assert_int_eq(mempool_close(q), 0);
    ck_assert_uint_eq(used(t_pool), base);
    ASSERT_RC(mempool_get(t_pool, r, &v), -ENOENT);
    t_assert_healthy(t_pool);
}
END_TEST

START_TEST(test_reserve_errors)
{
    struct mempool_stats s = t_stats(t_pool);
    mempool_put_options o = { 0, 0, 0x80u };
    mempool_dref r;
    void *buf = NULL;

    ASSERT_RC(mempool_reserve(t_pool, SIZE_MAX, NULL, &buf, &r), -E2BIG);
    ASSERT_RC(mempool_reserve(t_pool, 2 * s.arena_bytes, NULL, &buf, &r),
              -E2BIG);
    ASSERT_RC(mempool_reserve(t_pool, 10, NULL, NULL, &r), -EINVAL);
    ASSERT_RC(mempool_reserve(t_pool, 10, NULL, &buf, NULL), -EINVAL);
    ASSERT_RC(mempool_reserve(t_pool, 10, &o, &buf, &r), -EINVAL);
    ck_assert_uint_eq(t_stats(t_pool).objects, s.objects);
    ck_assert_uint_eq(t_stats(t_pool).used_bytes, s.used_bytes);
    t_assert_healthy(t_pool);
}
END_TEST

/* ------------------------------------------------------------ 7: owner */

START_TEST(test_owner_nonexistent)
{
    struct mempool_stats s0 = t_stats(t_pool);
    int me = mempool_worker_id(t_pool);
    mempool_put_options o = { 0, 0, 0 };
    mempool_dref r;
    void *buf;
    int rc;

    ck_assert_int_ge(me, 1);
    o.owner = me % MEMPOOL_MAX_WORKERS + 1; /* a valid id nobody holds */
    ASSERT_RC(mempool_put_ex(t_pool, "x", 1, &o, &r), -ESRCH);
    ASSERT_RC(mempool_reserve(t_pool, 10, &o, &buf, &r), -ESRCH);
    o.owner = MEMPOOL_MAX_WORKERS + 1;
    rc = mempool_put_ex(t_pool, "x", 1, &o, &r);
    ck_assert_msg(rc == -ESRCH || rc == -EINVAL, "owner 65: %d", rc);
    o.owner = -1;
    rc = mempool_put_ex(t_pool, "x", 1, &o, &r);
    ck_assert_msg(rc == -ESRCH || rc == -EINVAL, "owner -1: %d", rc);
    ck_assert_uint_eq(t_stats(t_pool).objects, s0.objects);
    ck_assert_uint_eq(t_stats(t_pool).used_bytes, s0.used_bytes);
    /* the caller itself, explicitly */
    o.owner = me;
    ASSERT_RC(mempool_put_ex(t_pool, "x", 1, &o, &r), 0);
    {
        mempool_info in;

        ASSERT_RC(mempool_info_get(t_pool, r, &in), 0);
        ck_assert_int_eq(in.owner, me);
    }
    t_assert_healthy(t_pool);
}
END_TEST

static int child_worker_wait(void *arg)
{
    mempool *p = NULL;
    uint64_t x;

    (void)arg;
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(t_send_u64(ack_fd, (uint64_t)mempool_worker_id(p)), 0);
    T_CHILD_EQ(t_recv_u64(go_fd, &x, T_WAIT_S), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

START_TEST(test_owner_other_worker)
{
    int go[2], ack[2];
    uint64_t wid;
    pid_t pid;
    mempool_put_options o = { 0, 0, 0 };
    mempool_dref r, r2;
    mempool_info in;
    void *buf;
    mempool_view v;

    t_pipe(go);
    t_pipe(ack);
    go_fd = go[0];
    ack_fd = ack[1];
    pid = t_fork(child_worker_wait, NULL);
    ck_assert_int_eq(t_recv_u64(ack[0], &wid, T_WAIT_S), 0);
    ck_assert_int_ne((int)wid, mempool_worker_id(t_pool));
    o.owner = (int)wid;
    ASSERT_RC(mempool_put_ex(t_pool, "charged", 7, &o, &r), 0);
    ASSERT_RC(mempool_info_get(t_pool, r, &in), 0);
    ck_assert_int_eq(in.owner, (int)wid);
    ASSERT_RC(mempool_reserve(t_pool, 100, &o, &buf, &r2), 0);
    memset(buf, 1, 100);
    ASSERT_RC(mempool_publish(t_pool, r2), 0);
    ASSERT_RC(mempool_info_get(t_pool, r2, &in), 0);
    ck_assert_int_eq(in.owner, (int)wid);
    ck_assert_int_eq(t_send_u64(go[1], 1), 0);
    t_wait_ok(pid);
    /* plain objects outlive the worker they are charged to */
    ASSERT_RC(mempool_get(t_pool, r, &v), 0);
    ck_assert_mem_eq(v.data, "charged", 7);
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    ASSERT_RC(mempool_get(t_pool, r2, &v), 0);
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    /* and now that worker is gone, charging it is -ESRCH */
    ASSERT_RC(mempool_put_ex(t_pool, "x", 1, &o, &r), -ESRCH);
    t_assert_healthy(t_pool);
}
END_TEST

/* ---------------------------------------------------- 11: arena full */

/* Full arena, nothing can be freed: every object is pinned, so none can be
 * spilled either. */
START_TEST(test_arena_full)
{
    enum { LEN = 256 * 1024, MAX = 1024 };
    mempool_dref *r = calloc(MAX, sizeof *r), extra;
    mempool_view *v = calloc(MAX, sizeof *v);
    struct mempool_stats s, s2;
    char *buf = malloc(LEN);
    void *huge;
    int n = 0, rc = 0, i;

    ck_assert_ptr_nonnull(r);
    ck_assert_ptr_nonnull(v);
    ck_assert_ptr_nonnull(buf);
    while (n < MAX) {
        t_fill(buf, LEN, (uint64_t)n);
        rc = mempool_put(t_pool, buf, LEN, &r[n]);
        if (rc != 0)
            break;
        ASSERT_RC(mempool_get(t_pool, r[n], &v[n]), 0);
        n++;
    }
    ck_assert_msg(rc == -ENOMEM, "set = %d after %d pinned objects", rc, n);
    s = t_stats(t_pool);
    ck_assert_uint_ge((uint64_t)n * LEN, s.data_bytes / 2);
    ck_assert_uint_eq(s.objects, (uint64_t)n);
    /* still full; nothing left behind by the failures */
    ASSERT_RC(mempool_put(t_pool, buf, LEN, &extra), -ENOMEM);
    ASSERT_RC(mempool_reserve(t_pool, LEN, NULL, &huge, &extra), -ENOMEM);
    s2 = t_stats(t_pool);
    ck_assert_uint_eq(s2.objects, s.objects);
    ck_assert_uint_eq(s2.used_bytes, s.used_bytes);
    ck_assert_uint_eq(s2.disk_bytes, 0);
    t_assert_healthy(t_pool);
    /* a deleted but pinned object cannot be freed: still -ENOMEM */
    ASSERT_RC(mempool_delete(t_pool, r[0]), 0);
    ASSERT_RC(mempool_put(t_pool, buf, LEN, &extra), -ENOMEM);
    /* its last release frees it: now there is room */
    ck_assert(t_check_fill(v[0].data, LEN, 0));
    ASSERT_RC(mempool_release(t_pool, &v[0]), 0);
    t_fill(buf, LEN, 0);
    ASSERT_RC(mempool_put(t_pool, buf, LEN, &r[0]), 0);
    ASSERT_RC(mempool_get(t_pool, r[0], &v[0]), 0);
    /* everything still reads back */
    for (i = 0; i < n; i++) {
        ck_assert_msg(t_check_fill(v[i].data, LEN, (uint64_t)i),
                      "object %d damaged", i);
        ASSERT_RC(mempool_release(t_pool, &v[i]), 0);
    }
    /* larger than the arena: -E2BIG, without reading the source */
    huge = mmap(NULL, 2 * s.arena_bytes, PROT_READ,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    ck_assert_ptr_ne(huge, MAP_FAILED);
    ASSERT_RC(mempool_put(t_pool, huge, 2 * s.arena_bytes, &extra), -E2BIG);
    munmap(huge, 2 * s.arena_bytes);
    for (i = 0; i < n; i++)
        ASSERT_RC(mempool_delete(t_pool, r[i]), 0);
    ck_assert_uint_eq(used(t_pool), 0);
    t_assert_healthy(t_pool);
    free(buf);
    free(v);
    free(r);
}
END_TEST

START_TEST(test_table_full)
{
    char name[T_NAME_LEN];
    mempool_options o;
    mempool *p = NULL;
    mempool_dref *r, extra;
    struct mempool_stats s;
    uint64_t n = 0, i;
    int rc = 0;

    t_pool_name(name, NULL);
    t_options(&o, 4 * MiB);
    o.max_objects = 1024;
    ck_assert_int_eq(mempool_open(name, &o, &p), 0);
    s = t_stats(p);
    ck_assert_uint_eq(s.max_objects, 1024);
    r = calloc(s.max_objects + 1, sizeof *r);
    ck_assert_ptr_nonnull(r);
    while (n <= s.max_objects && (rc = mempool_put(p, &n, 1, &r[n])) == 0)
        n++;
    ck_assert_msg(rc == -ENOSPC, "set = %d after %" PRIu64 " objects", rc, n);
    ck_assert_uint_eq(n, s.max_objects);
    s = t_stats(p);
    ck_assert_uint_eq(s.objects, s.max_objects);
    ASSERT_RC(mempool_put(p, "x", 1, &extra), -ENOSPC);
    ck_assert_uint_eq(t_stats(p).used_bytes, s.used_bytes);
    ASSERT_RC(mempool_delete(p, r[17]), 0);
    ASSERT_RC(mempool_put(p, "x", 1, &r[17]), 0);
    for (i = 0; i < n; i++)
        ASSERT_RC(mempool_delete(p, r[i]), 0);
    ck_assert_uint_eq(t_stats(p).objects, 0);
    ck_assert_uint_eq(t_stats(p).used_bytes, 0);
    t_assert_healthy(p);
    ck_assert_int_eq(mempool_close(p), 0);
    ck_assert_int_eq(mempool_destroy(name), 0);
    free(r);
}
END_TEST

START_TEST(test_trim)
{
    mempool_dref keep = t_put_fill(t_pool, 300 * 1024, 13);
    mempool_view v;
    int64_t got;

    ck_assert_int_gt(churn(t_pool), 0);
    got = mempool_trim(t_pool);
    ck_assert_msg(got >= 0, "trim = %" PRId64, got);
    t_assert_healthy(t_pool);
    ASSERT_RC(mempool_get(t_pool, keep, &v), 0);
    ck_assert(t_check_fill(v.data, v.len, 13));
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    /* trimmed memory is usable again */
    ck_assert_int_gt(churn(t_pool), 0);
    t_assert_healthy(t_pool);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "setget", 60, true, {
              test_set_get_zero_copy, test_get_from_other_process,
              test_len_zero_and_null_args, test_set_ex_options,
              test_pins_and_double_release, test_release_copy_keeps_other_pin,
              test_release_zeroed_and_forged } },
        { "delete", 60, true, {
              test_delete_while_pinned, test_delete_pinned_by_other_process,
              test_stale_after_slot_reuse, test_double_delete_two_processes,
          } },
        { "dref", 60, true, {
              test_malformed_drefs, test_dref_text, test_dref_parse_errors,
          } },
        { "reserve", 60, true, {
              test_reserve_publish, test_reserve_abort,
              test_reserve_close_returns_memory, test_reserve_errors } },
        { "owner", 60, true, {
              test_owner_nonexistent, test_owner_other_worker } },
        { "full", 60, true, { test_arena_full, test_table_full, test_trim } },
        { .name = NULL }
    };
    return t_main("object", cases);
}
