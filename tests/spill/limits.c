/* SPDX-License-Identifier: MIT */
/*
 * spill/limits.c - limits and victims: the dry-run table (B7), a two-worker
 * limit (B10), eviction order under LRU and MRU (E24-E29), objects larger
 * than any limit (E30), deleting both copies (E32), all pinned (E33), the
 * disk limit (E34), a pinned victim (G40) and arena pressure.
 */
#include "fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ==================================================== B. basic store */

/*
 * B7 [14]. E(n) = what admitting n bytes would evict; there is no dry run
 * in the API, so each question gets a fresh pool (limit 20) where the steps
 * are replayed and n bytes are really set. Returns bit 0 = a spilled, bit 1
 * = b spilled. Steps: 1 set a (10 B), 2 set b (10 B), 3 get(a).
 */
static unsigned b7_evicts(int steps, uint64_t n, int *set_rc)
{
    char name[T_NAME_LEN];
    mempool_options o;
    mempool *p;
    mempool_dref a = { 0, 0 }, b = { 0, 0 }, x;
    unsigned mask = 0;

    t_pool_name(name, NULL);
    sp_opts(&o, SMALL_ARENA, 20, MEMPOOL_POLICY_LRU, MEMPOOL_IO_AUTO);
    p = sp_open_as(name, &o);
    if (steps >= 1)
        a = set_bytes(p, 0, 10, 1, 0);
    if (steps >= 2)
        b = set_bytes(p, 0, 10, 2, 0);
    if (steps >= 3)
        expect_bytes(p, a, 10, 1, V_MEM);
    *set_rc = try_set_bytes(p, 0, n, 3, &x);
    if (steps >= 1 && state_of(p, a) == ST_DISK)
        mask |= 1;
    if (steps >= 2 && state_of(p, b) == ST_DISK)
        mask |= 2;
    t_assert_healthy(p);
    sp_close(p);
    ASSERT_RC(mempool_destroy(name), 0);
    return mask;
}

#define E(steps, n, want) \
    do { \
        int rc_; \
        unsigned m_ = b7_evicts((steps), (n), &rc_); \
        ck_assert_msg(rc_ == 0, "E(%d) after %d steps: set = %d", (int)(n), \
                      (steps), rc_); \
        ck_assert_msg(m_ == (want), "E(%d) after %d steps evicted %#x, " \
                      "want %#x", (int)(n), (steps), m_, (unsigned)(want)); \
    } while (0)

START_TEST(test_b7_dry_run)
{
    int rc;

    E(0, 20, 0u);
    ck_assert_uint_eq(b7_evicts(0, 21, &rc), 0);
    ASSERT_RC(rc, -E2BIG);
    E(1, 10, 0u);
    E(1, 11, 1u);
    E(2, 0, 0u);
    E(2, 1, 1u);
    E(2, 10, 1u);
    E(2, 11, 3u);
    E(3, 1, 2u);
    E(3, 10, 2u);
    E(3, 11, 3u);
}
END_TEST

/*
 * B10 [17]: limit 80, owner W2 (a second handle), setter W1.
 */
START_TEST(test_b10_limit_80)
{
    unsigned io = (unsigned)_i;
    mempool *p1 = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU, io);
    mempool *p2 = sp_attach(80, io);
    int w2 = mempool_worker_id(p2);
    mempool_dref r1, r2, r3, r4, r5, r6;
    struct mempool_stats s;
    mempool_view v;
    mempool_info in;

    ck_assert_int_ge(w2, 1);
    ck_assert_int_ne(w2, mempool_worker_id(p1));
    ck_assert_str_eq(t_stats(p1).io_backend, "");
    /* (a) 16 + 24 + 40 = 80 = the limit: all resident */
    r1 = set_i64(p1, w2, 2, 0);
    r2 = set_i64(p1, w2, 3, 0);
    r3 = set_i64(p1, w2, 5, MEMPOOL_PUT_DESTROY_ON_EVICT);
    s = t_stats(p1);
    ck_assert_uint_eq(s.resident_bytes, 80);
    ck_assert_uint_eq(s.spills, 0);
    ck_assert_uint_eq(s.disk_bytes, 0);
    ASSERT_STATE(p1, r1, ST_MEM);
    ASSERT_STATE(p1, r2, ST_MEM);
    ASSERT_STATE(p1, r3, ST_MEM);
    ASSERT_RC(mempool_info_get(p1, r1, &in), 0);
    ck_assert_int_eq(in.owner, w2);
    /* (b) r4 = 8: 88 > 80, r1 (the LRU) is spilled */
    r4 = set_i64(p1, w2, 1, 0);
    ASSERT_STATE(p1, r1, ST_DISK);
    ASSERT_STATE(p1, r2, ST_MEM);
    ASSERT_STATE(p1, r3, ST_MEM);
    ASSERT_STATE(p1, r4, ST_MEM);
    s = t_stats(p1);
    ck_assert_uint_eq(s.resident_bytes, 72);
    ck_assert_uint_eq(s.disk_bytes, 16);
    ck_assert_uint_eq(s.spills, 1);
    ck_assert_uint_eq(s.spill_bytes, 16);
    ASSERT_FILES(sp.pdir, 1, 0);
    ASSERT_BACKEND(p1, io);
    ck_assert_str_eq(t_stats(p2).io_backend, "");   /* W2 never wrote */
    /* (c) W1 reads r2: order r2, r4, r3 */
    expect_i64(p1, r2, 3, V_MEM);
    /* (d) r3 is destroy-on-evict: r5 destroys it, never writes it */
    r5 = set_i64(p1, w2, 2, 0);
    ASSERT_RC(mempool_get(p1, r3, &v), -ENOENT);
    ASSERT_RC(mempool_info_get(p1, r3, &in), -ENOENT);
    ASSERT_STATE(p1, r4, ST_MEM);
    ASSERT_STATE(p1, r2, ST_MEM);
    s = t_stats(p1);
    ck_assert_uint_eq(s.resident_bytes, 48);
    ck_assert_uint_eq(s.spills, 1);
    ASSERT_FILES(sp.pdir, 1, 0);
    /* (e) r6: 64, no eviction */
    r6 = set_i64(p1, w2, 2, 0);
    s = t_stats(p1);
    ck_assert_uint_eq(s.resident_bytes, 64);
    ck_assert_uint_eq(s.spills, 1);
    /* (f) everything reads back, r1 mapped from its file, from W1 and W2 */
    expect_i64(p1, r1, 2, V_DISK);
    expect_i64(p2, r1, 2, V_DISK);
    expect_i64(p1, r2, 3, V_MEM);
    expect_i64(p1, r4, 1, V_MEM);
    expect_i64(p1, r5, 2, V_MEM);
    expect_i64(p1, r6, 2, V_MEM);
    ASSERT_STATE(p1, r1, ST_DISK);        /* a get does not copy it back */
    s = t_stats(p1);
    ck_assert_uint_eq(s.resident_bytes, 64);
    ck_assert_uint_eq(s.disk_bytes, 16);
    ck_assert_uint_eq(s.spills, 1);
    ck_assert_uint_eq(s.restores, 2);
    ck_assert_uint_eq(s.spill_errors, 0);
    ck_assert_uint_eq(s.objects, 5);
    t_assert_healthy(p1);
    {
        mempool_dref ord[] = { r6, r5, r4, r2 };
        uint64_t len[] = { 16, 16, 8, 24 };

        assert_order(p1, p2, MEMPOOL_POLICY_LRU, ord, len, 4);
    }
    t_assert_healthy(p1);
}
END_TEST

/* =============================================== E. limits and order */

/*
 * E24-E27, E29 [44-47, 49] under LRU and MRU: limit 80, disk limit 80000,
 * owner W2. (Promotion, E27's second half and E28, does not exist.)
 */
START_TEST(test_e24_policy_order)
{
    unsigned policy = (unsigned)_i & 1, io = (unsigned)_i >> 1;
    bool lru = policy == MEMPOOL_POLICY_LRU;
    mempool *p1 = sp_create(SMALL_ARENA, 0, policy, io);
    mempool *p2 = sp_attach(80, io);
    int w2 = mempool_worker_id(p2);
    mempool_dref r1, r2, r3, r4, spilled;
    struct mempool_stats s;
    mempool_fileref f;
    int sn;

    ASSERT_RC(mempool_limit_set(p2, MEMPOOL_LIMIT_DISKSIZE, 80000), 0);
    r1 = set_i64(p1, w2, 2, 0);
    r2 = set_i64(p1, w2, 3, 0);
    r3 = set_i64(p1, w2, 5, 0);
    ck_assert_uint_eq(t_stats(p1).resident_bytes, 80);
    /* E25: r4 (16) makes 96 */
    r4 = set_i64(p1, w2, 2, 0);
    spilled = lru ? r1 : r3;
    sn = lru ? 2 : 5;
    ASSERT_STATE(p1, spilled, ST_DISK);
    ASSERT_STATE(p1, r2, ST_MEM);
    ASSERT_STATE(p1, r4, ST_MEM);
    ASSERT_STATE(p1, lru ? r3 : r1, ST_MEM);
    s = t_stats(p1);
    ck_assert_uint_eq(s.resident_bytes, lru ? 80 : 56);
    ck_assert_uint_eq(s.disk_bytes, (uint64_t)sn * 8);
    ck_assert_uint_eq(s.spills, 1);
    /* E26: get(r2) */
    expect_i64(p1, r2, 3, V_MEM);
    /* E27: get of the spilled one maps it; charges and arena unchanged */
    expect_i64(p1, spilled, sn, V_DISK);
    expect_i64(p2, spilled, sn, V_DISK);
    ASSERT_STATE(p1, spilled, ST_DISK);
    ck_assert_uint_eq(t_stats(p1).resident_bytes, s.resident_bytes);
    ck_assert_uint_eq(t_stats(p1).used_bytes, s.used_bytes);
    ck_assert_uint_eq(t_stats(p1).disk_bytes, s.disk_bytes);
    /* its file, without a rewrite */
    ASSERT_RC(mempool_move_to_disk(p1, spilled, &f), 0);
    check_fileref(&f, (uint64_t)sn * 8);
    ck_assert_uint_eq(t_stats(p1).spills, 1);
    /* E29: delete the spilled one: disk drops by its size, file gone */
    ASSERT_RC(mempool_delete(p1, spilled), 0);
    ck_assert(!exists(f.path));
    ck_assert_uint_eq(t_stats(p1).disk_bytes, 0);
    ck_assert_uint_eq(t_stats(p1).resident_bytes, s.resident_bytes);
    ASSERT_RC(mempool_get(p1, spilled, &(mempool_view){ 0 }), -ENOENT);
    t_assert_healthy(p1);
    /* the order: LRU r2, r4, r3; MRU r2, r4, r1 */
    {
        mempool_dref ord[3] = { r2, r4, lru ? r3 : r1 };
        uint64_t len[3] = { 24, 16, lru ? 40 : 16 };

        assert_order(p1, p2, policy, ord, len, 3);
    }
    ck_assert_uint_eq(t_stats(p1).spills, 4);
    t_assert_healthy(p1);
}
END_TEST

/* Total equal to the limit is allowed; lowering the limit spills nothing
 * until the next set; 0 = no limit; len > limit = -E2BIG. */
START_TEST(test_limit_edges)
{
    unsigned io = (unsigned)_i;
    mempool *p = sp_create(SMALL_ARENA, 100, MEMPOOL_POLICY_LRU, io);
    mempool_dref a, b, c, d, e;
    mempool_view v;

    a = set_bytes(p, 0, 60, 1, 0);
    b = set_bytes(p, 0, 40, 2, 0);
    ck_assert_uint_eq(t_stats(p).resident_bytes, 100);
    ck_assert_uint_eq(t_stats(p).spills, 0);
    ASSERT_RC(mempool_limit_set(p, MEMPOOL_LIMIT_MEMSIZE, 50), 0);
    ASSERT_STATE(p, a, ST_MEM);
    ASSERT_STATE(p, b, ST_MEM);
    ck_assert_uint_eq(t_stats(p).resident_bytes, 100);
    c = set_bytes(p, 0, 10, 3, 0);        /* 110 - 50 = 60: a covers it */
    ASSERT_STATE(p, a, ST_DISK);
    ASSERT_STATE(p, b, ST_MEM);
    ASSERT_STATE(p, c, ST_MEM);
    ck_assert_uint_eq(t_stats(p).resident_bytes, 50);
    ASSERT_RC(mempool_limit_set(p, MEMPOOL_LIMIT_MEMSIZE, 0), 0);
    d = set_bytes(p, 0, 100000, 4, 0);
    ASSERT_STATE(p, b, ST_MEM);
    ck_assert_uint_eq(t_stats(p).resident_bytes, 100050);
    ASSERT_RC(mempool_limit_set(p, MEMPOOL_LIMIT_MEMSIZE, 64), 0);
    ASSERT_RC(try_set_bytes(p, 0, 65, 5, &e), -E2BIG);
    ASSERT_RC(mempool_reserve(p, 65, NULL, &(void *){ NULL }, &e), -E2BIG);
    e = set_bytes(p, 0, 64, 5, 0);        /* everything else goes */
    ASSERT_STATE(p, b, ST_DISK);
    ASSERT_STATE(p, c, ST_DISK);
    ASSERT_STATE(p, d, ST_DISK);
    ck_assert_uint_eq(t_stats(p).resident_bytes, 64);
    expect_bytes(p, a, 60, 1, V_DISK);
    expect_bytes(p, d, 100000, 4, V_DISK);
    expect_bytes(p, e, 64, 5, V_MEM);
    /* a reservation counts as soon as it is made */
    {
        void *buf = NULL;
        mempool_dref rr;

        ASSERT_RC(mempool_reserve(p, 64, NULL, &buf, &rr), 0);
        ASSERT_STATE(p, e, ST_DISK);
        memset(buf, 7, 64);
        ASSERT_RC(mempool_publish(p, rr), 0);
        ASSERT_RC(mempool_get(p, rr, &v), 0);
        ck_assert_uint_eq(v.flags, V_MEM);
        ASSERT_RC(mempool_release(p, &v), 0);
    }
    t_assert_healthy(p);
}
END_TEST

/* E30 [50, 51]: over the limit -> -E2BIG, and nothing changed. */
START_TEST(test_e30_too_big)
{
    unsigned io = (unsigned)_i;
    mempool *p1 = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU, io);
    mempool *p2 = sp_attach(80, io);
    int w2 = mempool_worker_id(p2);
    mempool_dref r1, r2, r3, r4, x;
    struct mempool_stats s0, s1;

    ASSERT_RC(mempool_limit_set(p2, MEMPOOL_LIMIT_DISKSIZE, 80000), 0);
    r1 = set_i64(p1, w2, 2, 0);
    r2 = set_i64(p1, w2, 3, 0);
    r3 = set_i64(p1, w2, 5, 0);
    r4 = set_i64(p1, w2, 2, 0);             /* r1 spilled */
    s0 = t_stats(p1);
    ASSERT_RC(try_set_bytes(p1, w2, 88, 1, &x), -E2BIG);
    ASSERT_RC(try_set_bytes(p1, w2, 80008, 1, &x), -E2BIG);
    s1 = t_stats(p1);
    ck_assert_uint_eq(s1.objects, s0.objects);
    ck_assert_uint_eq(s1.resident_bytes, s0.resident_bytes);
    ck_assert_uint_eq(s1.disk_bytes, s0.disk_bytes);
    ck_assert_uint_eq(s1.used_bytes, s0.used_bytes);
    ck_assert_uint_eq(s1.spills, s0.spills);
    ASSERT_FILES(sp.pdir, 1, 0);
    ASSERT_STATE(p1, r1, ST_DISK);
    t_assert_healthy(p1);
    {
        mempool_dref ord[3] = { r4, r3, r2 };
        uint64_t len[3] = { 16, 40, 24 };

        assert_order(p1, p2, MEMPOOL_POLICY_LRU, ord, len, 3);
    }
}
END_TEST

/* E32 [53]: two 80-byte objects, the second evicting the first; deleting
 * both leaves exactly 0 resident and 0 on disk. */
START_TEST(test_e32_delete_both)
{
    unsigned io = (unsigned)_i;
    mempool *p1 = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU, io);
    mempool *p2 = sp_attach(80, io);
    int w2 = mempool_worker_id(p2);
    mempool_dref a, b;
    struct mempool_stats s;

    a = set_bytes(p1, w2, 80, 1, 0);
    b = set_bytes(p1, w2, 80, 2, 0);
    ASSERT_STATE(p1, a, ST_DISK);
    ASSERT_STATE(p1, b, ST_MEM);
    s = t_stats(p1);
    ck_assert_uint_eq(s.resident_bytes, 80);
    ck_assert_uint_eq(s.disk_bytes, 80);
    ASSERT_RC(mempool_delete(p2, a), 0);
    ASSERT_RC(mempool_delete(p1, b), 0);
    s = t_stats(p1);
    ck_assert_uint_eq(s.resident_bytes, 0);
    ck_assert_uint_eq(s.disk_bytes, 0);
    ck_assert_uint_eq(s.objects, 0);
    ASSERT_FILES(sp.pdir, 0, 0);
    t_assert_healthy(p1);
}
END_TEST

/* E33: everything pinned -> -ENOMEM after the bounded wait, nothing
 * spilled; release r1 and the same set spills r1. */
START_TEST(test_e33_all_pinned)
{
    unsigned io = (unsigned)_i;
    mempool_options o;
    mempool *p1, *p2;
    mempool_dref r1, r2, r3, x;
    mempool_view v1, v2, v3;
    struct mempool_stats s0, s1;
    int w2;

    sp_opts(&o, SMALL_ARENA, 0, MEMPOOL_POLICY_LRU, io);
    o.evict_wait_ms = 30;
    p1 = sp_open(&o);
    p2 = sp_attach(80, io);
    w2 = mempool_worker_id(p2);
    r1 = set_i64(p1, w2, 2, 0);
    r2 = set_i64(p1, w2, 3, 0);
    r3 = set_i64(p1, w2, 5, 0);
    ASSERT_RC(mempool_get(p1, r1, &v1), 0);
    ASSERT_RC(mempool_get(p1, r2, &v2), 0);
    ASSERT_RC(mempool_get(p1, r3, &v3), 0);
    s0 = t_stats(p1);
    ASSERT_RC(try_set_bytes(p1, w2, 8, 1, &x), -ENOMEM);
    s1 = t_stats(p1);
    ck_assert_uint_eq(s1.objects, s0.objects);
    ck_assert_uint_eq(s1.resident_bytes, 80);
    ck_assert_uint_eq(s1.used_bytes, s0.used_bytes);
    ck_assert_uint_eq(s1.spills, 0);
    ck_assert_uint_eq(s1.disk_bytes, 0);
    ASSERT_STATE(p1, r1, ST_MEM);
    ASSERT_STATE(p1, r2, ST_MEM);
    ASSERT_STATE(p1, r3, ST_MEM);
    ASSERT_FILES(sp.pdir, 0, 0);
    ASSERT_RC(mempool_release(p1, &v1), 0);
    ASSERT_RC(try_set_bytes(p1, w2, 8, 1, &x), 0);
    ASSERT_STATE(p1, r1, ST_DISK);
    ASSERT_STATE(p1, r2, ST_MEM);
    ASSERT_STATE(p1, r3, ST_MEM);
    ck_assert_uint_eq(t_stats(p1).resident_bytes, 72);
    ASSERT_RC(mempool_release(p1, &v2), 0);
    ASSERT_RC(mempool_release(p1, &v3), 0);
    expect_i64(p1, r1, 2, V_DISK);
    t_assert_healthy(p1);
}
END_TEST

/* E34: disk limit 100 with 96 on disk: a set needing a 16-byte spill
 * fails with -ENOSPC and changes nothing; so do move and copy. */
START_TEST(test_e34_disk_limit)
{
    unsigned io = (unsigned)_i;
    mempool *p1 = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU, io);
    mempool *p2 = sp_attach(80, io);
    int w2 = mempool_worker_id(p2);
    mempool_dref a, b, sm, c, x;
    struct mempool_stats s0, s1;

    ASSERT_RC(mempool_limit_set(p2, MEMPOOL_LIMIT_DISKSIZE, 100), 0);
    a = set_bytes(p1, w2, 48, 1, 0);
    b = set_bytes(p1, w2, 48, 2, 0);         /* a spilled: disk 48 */
    sm = set_bytes(p1, w2, 16, 3, 0);
    c = set_bytes(p1, w2, 48, 4, 0);         /* b spilled: disk 96 */
    ASSERT_STATE(p1, a, ST_DISK);
    ASSERT_STATE(p1, b, ST_DISK);
    ASSERT_STATE(p1, sm, ST_MEM);
    ASSERT_STATE(p1, c, ST_MEM);
    s0 = t_stats(p1);
    ck_assert_uint_eq(s0.disk_bytes, 96);
    ck_assert_uint_eq(s0.resident_bytes, 64);
    ASSERT_RC(try_set_bytes(p1, w2, 24, 5, &x), -ENOSPC);
    ASSERT_RC(mempool_move_to_disk(p1, sm, NULL), -ENOSPC);
    ASSERT_RC(mempool_copy_to_disk(p2, sm, NULL), -ENOSPC);
    s1 = t_stats(p1);
    ck_assert_uint_eq(s1.disk_bytes, 96);
    ck_assert_uint_eq(s1.resident_bytes, 64);
    ck_assert_uint_eq(s1.objects, s0.objects);
    ck_assert_uint_eq(s1.used_bytes, s0.used_bytes);
    ck_assert_uint_eq(s1.spills, s0.spills);
    ASSERT_STATE(p1, sm, ST_MEM);
    expect_bytes(p1, sm, 16, 3, V_MEM);
    ASSERT_FILES(sp.pdir, 2, 0);
    t_assert_healthy(p1);
    /* lifted: the same set spills (c: the read above made sm recent) */
    ASSERT_RC(mempool_limit_set(p2, MEMPOOL_LIMIT_DISKSIZE, 0), 0);
    ASSERT_RC(try_set_bytes(p1, w2, 24, 5, &x), 0);
    ASSERT_STATE(p1, c, ST_DISK);
    ASSERT_STATE(p1, sm, ST_MEM);
    expect_bytes(p1, c, 48, 4, V_DISK);
    ck_assert_uint_eq(t_stats(p1).disk_bytes, 144);
    t_assert_healthy(p1);
}
END_TEST

/* The disk limit also holds when one set needs several victims at once.
 * The set spills a (freeing 40 bytes), then finds b over the disk limit:
 * -ENOSPC (sp_opts' 5 s wait: a loaded machine's first spill outlasted
 * 10 ms and the set said -ENOMEM first). */
START_TEST(test_disk_limit_many_victims)
{
    unsigned io = (unsigned)_i;
    mempool_options o;
    mempool *p1, *p2;
    mempool_dref x, a, b, c;
    int rc, w2;

    sp_opts(&o, SMALL_ARENA, 0, MEMPOOL_POLICY_LRU, io);
    p1 = sp_open(&o);
    p2 = sp_attach(80, io);
    w2 = mempool_worker_id(p2);
    ASSERT_RC(mempool_limit_set(p2, MEMPOOL_LIMIT_DISKSIZE, 100), 0);
    x = set_bytes(p1, w2, 40, 1, 0);
    ASSERT_RC(mempool_move_to_disk(p1, x, NULL), 0);   /* disk 40 */
    a = set_bytes(p1, w2, 40, 2, 0);
    b = set_bytes(p1, w2, 40, 3, 0);                   /* resident 80 */
    rc = try_set_bytes(p1, w2, 80, 4, &c);             /* needs a and b */
    ck_assert_msg(t_stats(p1).disk_bytes <= 100,
                  "disk limit 100 overshot: disk_bytes %" PRIu64
                  " after a set that needed two victims (set = %d, a %#x, "
                  "b %#x)", t_stats(p1).disk_bytes, rc, state_of(p1, a),
                  state_of(p1, b));
    ASSERT_RC(rc, -ENOSPC);
    expect_bytes(p1, a, 40, 2, 0);
    expect_bytes(p1, b, 40, 3, 0);
    t_assert_healthy(p1);
}
END_TEST

/* G40 [69e]: a pinned object is skipped as a victim, and after its release
 * (which does not touch recency) it is the next one. */
START_TEST(test_g40_pinned_victim)
{
    unsigned io = (unsigned)_i;
    mempool *p1 = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU, io);
    mempool *p2 = sp_attach(80, io);
    int w2 = mempool_worker_id(p2);
    mempool_dref r1, r2, r3, r4, r5, r6;
    mempool_view v1;

    r1 = set_i64(p1, w2, 2, 0);
    ASSERT_RC(mempool_get(p1, r1, &v1), 0);
    r2 = set_i64(p1, w2, 3, 0);
    r3 = set_i64(p1, w2, 5, 0);
    r4 = set_i64(p1, w2, 5, 0);               /* 120: r1 skipped */
    ASSERT_STATE(p1, r1, ST_MEM);
    ASSERT_STATE(p1, r2, ST_DISK);
    ASSERT_STATE(p1, r3, ST_DISK);
    ASSERT_STATE(p1, r4, ST_MEM);
    ck_assert_uint_eq(t_stats(p1).resident_bytes, 56);
    ASSERT_RC(mempool_release(p1, &v1), 0);
    r5 = set_i64(p1, w2, 5, 0);               /* 96: r1 goes */
    ASSERT_STATE(p1, r1, ST_DISK);
    ASSERT_STATE(p1, r4, ST_MEM);
    ck_assert_uint_eq(t_stats(p1).resident_bytes, 80);
    r6 = set_i64(p1, w2, 5, 0);               /* 120: r4 goes */
    ASSERT_STATE(p1, r4, ST_DISK);
    ASSERT_STATE(p1, r5, ST_MEM);
    ASSERT_STATE(p1, r6, ST_MEM);
    expect_i64(p1, r1, 2, V_DISK);
    expect_i64(p2, r2, 3, V_DISK);
    expect_i64(p2, r3, 5, V_DISK);
    ck_assert_uint_eq(t_stats(p1).resident_bytes, 80);
    ck_assert_uint_eq(t_stats(p1).disk_bytes, 16 + 24 + 40 + 40);
    t_assert_healthy(p1);
    {
        mempool_dref ord[2] = { r6, r5 };
        uint64_t len[2] = { 40, 40 };

        assert_order(p1, p2, MEMPOOL_POLICY_LRU, ord, len, 2);
    }
}
END_TEST

/* When the arena itself is short, anyone's objects are spilled: two
 * workers without limits store twice the arena and read it all back. */
START_TEST(test_arena_pressure)
{
    enum { N = 64 };
    unsigned io = (unsigned)_i;
    const size_t len = 256 * KiB;
    mempool *p1 = sp_create(8 * MiB, 0, MEMPOOL_POLICY_LRU, io);
    mempool *p2 = sp_attach(0, io);
    mempool_dref r[N];
    struct mempool_stats s;
    int i, disk = 0;

    for (i = 0; i < N; i++)
        r[i] = set_bytes(i % 2 ? p2 : p1, 0, len, 500 + (uint64_t)i, 0);
    s = t_stats(p1);
    ck_assert_uint_gt(s.spills, 0);
    ck_assert_uint_le(s.used_bytes, s.data_bytes);
    for (i = 0; i < N; i++) {
        unsigned st = state_of(p1, r[i]);

        ck_assert(st == ST_DISK || (st & ST_MEM));
        disk += st == ST_DISK;
        expect_bytes(i % 3 ? p1 : p2, r[i], len, 500 + (uint64_t)i, 0);
    }
    ck_assert_int_gt(disk, N / 3);
    t_assert_healthy(p1);
}
END_TEST

void spill_limits_tests(Suite *s)
{
    TCase *tc;

    tc = sp_tcase(s, "limits", 60);
    tcase_add_test(tc, test_b7_dry_run);
    tcase_add_loop_test(tc, test_b10_limit_80, 0, 2);
    tcase_add_loop_test(tc, test_e24_policy_order, 0, 4);
    tcase_add_loop_test(tc, test_limit_edges, 0, 2);
    tcase_add_loop_test(tc, test_e30_too_big, 0, 2);
    tcase_add_loop_test(tc, test_e32_delete_both, 0, 2);
    tcase_add_loop_test(tc, test_e33_all_pinned, 0, 2);
    tcase_add_loop_test(tc, test_e34_disk_limit, 0, 2);
    tcase_add_loop_test(tc, test_disk_limit_many_victims, 0, 2);
    tcase_add_loop_test(tc, test_g40_pinned_victim, 0, 2);
    tcase_add_loop_test(tc, test_arena_pressure, 0, 2);
}
