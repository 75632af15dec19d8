/* SPDX-License-Identifier: MIT */
/*
 * spill/failures.c - I/O that fails: injected write errors and ENOSPC (F36),
 * short writes, an unusable spill directory (F35), and io_uring denied by
 * seccomp (the pwrite fallback must behave exactly like io_uring).
 * Failpoints (MEMPOOL_FAILPOINT) and seccomp filters are only ever set in
 * forked children.
 */
#include "t_seccomp.h"
#include "fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ============================================ F. failures (children) */

/* What a failure child gets from its test (through t_fork's argument). */
struct fp_args {
    const char *failpoint;   /* MEMPOOL_FAILPOINT of the child (F36) */
    unsigned io;             /* the child's io_mode */
    int fd;                  /* the child reports here */
    mempool_dref spilled;    /* F35: an object spilled before */
};

/* F36: copy/move under an injected error return it; the object stays
 * resident, readable and charged; a set whose victim cannot be written
 * fails and leaves the victim alone; nothing is left on disk. */
static int fp_child(void *arg)
{
    const struct fp_args *a = arg;
    int want = strcmp(a->failpoint, "io.write") == 0 ? -EIO : -ENOSPC;
    struct mempool_stats s0, s;
    mempool_fileref f;
    mempool_dref r, x;
    mempool_view v;
    mempool *p;
    int nt;

    setenv("MEMPOOL_FAILPOINT", a->failpoint, 1);
    p = child_open(sp.name, 0, a->io, 0, 0);
    T_CHILD_ASSERT(p != NULL);
    T_CHILD_EQ(mempool_stats_get(p, &s0), 0);
    T_CHILD_EQ(try_set_bytes(p, 0, 5000, 11, &r), 0);
    T_CHILD_EQ(mempool_copy_to_disk(p, r, &f), want);
    T_CHILD_EQ(state_of(p, r), ST_MEM);
    T_CHILD_EQ(mempool_move_to_disk(p, r, &f), want);
    T_CHILD_EQ(state_of(p, r), ST_MEM);
    T_CHILD_EQ(mempool_get(p, r, &v), 0);
    T_CHILD_EQ(v.flags, V_MEM);
    T_CHILD_ASSERT(sp_check(v.data, 5000, 11));
    T_CHILD_EQ(mempool_release(p, &v), 0);
    T_CHILD_EQ(mempool_stats_get(p, &s), 0);
    T_CHILD_EQ(s.resident_bytes, s0.resident_bytes + 5000);
    T_CHILD_EQ(s.disk_bytes, s0.disk_bytes);
    T_CHILD_EQ(s.spills, s0.spills);
    T_CHILD_ASSERT(s.spill_errors >= s0.spill_errors + 2);
    T_CHILD_EQ(strcmp(s.io_backend, want_backend(a->io)), 0);
    T_CHILD_EQ(dir_files(sp.pdir, &nt), 0);
    T_CHILD_EQ(nt, 0);
    /* an eviction that cannot write */
    T_CHILD_EQ(mempool_limit_set(p, MEMPOOL_LIMIT_MEMSIZE, 8000), 0);
    s0 = s;
    T_CHILD_EQ(try_set_bytes(p, 0, 5000, 12, &x), want);
    T_CHILD_EQ(state_of(p, r), ST_MEM);
    T_CHILD_EQ(mempool_stats_get(p, &s), 0);
    T_CHILD_EQ(s.objects, s0.objects);
    T_CHILD_EQ(s.used_bytes, s0.used_bytes);
    T_CHILD_EQ(s.resident_bytes, s0.resident_bytes);
    T_CHILD_ASSERT(s.spill_errors >= s0.spill_errors + 1);
    T_CHILD_EQ(mempool_get(p, r, &v), 0);
    T_CHILD_ASSERT(sp_check(v.data, 5000, 11));
    T_CHILD_EQ(mempool_release(p, &v), 0);
    T_CHILD_EQ(dir_files(sp.pdir, &nt), 0);
    T_CHILD_EQ(nt, 0);
    T_CHILD_EQ(mempool_check(p, NULL, 0), 0);
    T_CHILD_EQ(t_send_dref(a->fd, r), 0);
    mempool_close(p);
    return 0;
}

START_TEST(test_f36_failpoints)
{
    static const char *const fps[2] = { "io.write", "io.nospc" };
    mempool *p;
    mempool_dref r, y;
    struct fp_args a = { fps[_i & 1], (unsigned)_i >> 1, -1, { 0, 0 } };
    int fds[2];

    p = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU, a.io);
    t_pipe(fds);
    a.fd = fds[1];
    t_wait_ok(t_fork(fp_child, &a));
    close(fds[1]);
    ASSERT_RC(t_recv_dref(fds[0], &r, T_WAIT_S), 0);
    close(fds[0]);
    /* without the failpoint (this process), spilling works again */
    ASSERT_STATE(p, r, ST_MEM);
    expect_bytes(p, r, 5000, 11, V_MEM);
    ASSERT_RC(mempool_move_to_disk(p, r, NULL), 0);
    ASSERT_STATE(p, r, ST_DISK);
    expect_bytes(p, r, 5000, 11, V_DISK);
    ASSERT_RC(mempool_limit_set(p, MEMPOOL_LIMIT_MEMSIZE, 8000), 0);
    y = set_bytes(p, 0, 5000, 13, 0);
    ASSERT_RC(mempool_limit_set(p, MEMPOOL_LIMIT_MEMSIZE, 8000), 0);
    (void)set_bytes(p, 0, 5000, 14, 0);
    ASSERT_STATE(p, y, ST_DISK);
    expect_bytes(p, y, 5000, 13, V_DISK);
    ASSERT_FILES(sp.pdir, 2, 0);
    ck_assert_uint_ge(t_stats(p).spill_errors, 3);
    t_assert_healthy(p);
}
END_TEST

/* io.short: every write is cut to 4096 bytes; files are still complete. */
static int short_child(void *arg)
{
    static const size_t lens[3] = { 1 * MiB + 7, 100000, 17 * MiB + 1 };
    const struct fp_args *a = arg;
    mempool *p;

    setenv("MEMPOOL_FAILPOINT", "io.short", 1);
    p = child_open(sp.name, 0, a->io, 0, 0);
    T_CHILD_ASSERT(p != NULL);
    for (int i = 0; i < 3; i++) {
        mempool_dref r;
        mempool_view v;

        T_CHILD_EQ(try_set_bytes(p, 0, lens[i], 60 + (uint64_t)i, &r), 0);
        T_CHILD_EQ(mempool_move_to_disk(p, r, NULL), 0);
        T_CHILD_EQ(mempool_get(p, r, &v), 0);
        T_CHILD_EQ(v.flags, V_DISK);
        T_CHILD_EQ(v.len, lens[i]);
        T_CHILD_ASSERT(sp_check(v.data, lens[i], 60 + (uint64_t)i));
        T_CHILD_EQ(mempool_release(p, &v), 0);
        T_CHILD_EQ(t_send_dref(a->fd, r), 0);
        T_CHILD_EQ(t_send_u64(a->fd, lens[i]), 0);
    }
    mempool_close(p);
    return 0;
}

START_TEST(test_fp_short_writes)
{
    struct fp_args a = { "io.short", (unsigned)_i, -1, { 0, 0 } };
    mempool *p;
    int fds[2];

    p = sp_create(64 * MiB, 0, MEMPOOL_POLICY_LRU, a.io);
    t_pipe(fds);
    a.fd = fds[1];
    t_wait_ok(t_fork(short_child, &a));
    close(fds[1]);
    for (int i = 0; i < 3; i++) {
        mempool_dref r;
        mempool_fileref f;
        uint64_t len;

        ASSERT_RC(t_recv_dref(fds[0], &r, T_WAIT_S), 0);
        ASSERT_RC(t_recv_u64(fds[0], &len, T_WAIT_S), 0);
        ASSERT_STATE(p, r, ST_DISK);
        expect_bytes(p, r, len, 60 + (uint64_t)i, V_DISK);
        ASSERT_RC(mempool_move_to_disk(p, r, &f), 0);
        check_fileref(&f, len);
    }
    close(fds[0]);
    ASSERT_FILES(sp.pdir, 3, 0);
    t_assert_healthy(p);
}
END_TEST

/* F35: the spill directory cannot be used (a file where it should be):
 * writes fail, victims stay resident and readable, nothing changes. */
static int unwritable_child(void *arg)
{
    const struct fp_args *args = arg;
    mempool *p = child_open(sp.name, 0, MEMPOOL_IO_AUTO, 0, 0);
    struct mempool_stats s0, s;
    mempool_dref a, x;
    mempool_view v;

    T_CHILD_ASSERT(p != NULL);
    T_CHILD_EQ(mempool_limit_set(p, MEMPOOL_LIMIT_MEMSIZE, 8000), 0);
    T_CHILD_EQ(try_set_bytes(p, 0, 5000, 21, &a), 0);
    T_CHILD_EQ(mempool_stats_get(p, &s0), 0);
    T_CHILD_ASSERT(try_set_bytes(p, 0, 5000, 22, &x) < 0);
    T_CHILD_ASSERT(mempool_copy_to_disk(p, a, NULL) < 0);
    T_CHILD_ASSERT(mempool_move_to_disk(p, a, NULL) < 0);
    T_CHILD_EQ(mempool_stats_get(p, &s), 0);
    T_CHILD_EQ(s.objects, s0.objects);
    T_CHILD_EQ(s.used_bytes, s0.used_bytes);
    T_CHILD_EQ(s.resident_bytes, s0.resident_bytes);
    T_CHILD_EQ(state_of(p, a), ST_MEM);
    T_CHILD_EQ(mempool_get(p, a, &v), 0);
    T_CHILD_ASSERT(sp_check(v.data, 5000, 21));
    T_CHILD_EQ(mempool_release(p, &v), 0);
    /* the object spilled before cannot be read now, but no crash */
    T_CHILD_ASSERT(mempool_get(p, args->spilled, &v) < 0);
    T_CHILD_EQ(mempool_check(p, NULL, 0), 0);
    T_CHILD_EQ(t_send_dref(args->fd, a), 0);
    mempool_close(p);
    return 0;
}

START_TEST(test_f35_unusable_dir)
{
    mempool *p = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU,
                           MEMPOOL_IO_AUTO);
    struct fp_args args = { NULL, MEMPOOL_IO_AUTO, -1, { 0, 0 } };
    char away[700];
    mempool_dref a;
    int fds[2];

    args.spilled = set_bytes(p, 0, 3000, 20, 0);
    ASSERT_RC(mempool_move_to_disk(p, args.spilled, NULL), 0);
    snprintf(away, sizeof away, "%s.away", sp.pdir);
    ck_assert_int_eq(rename(sp.pdir, away), 0);
    spit(sp.pdir, "not a directory", 15);
    t_pipe(fds);
    args.fd = fds[1];
    t_wait_ok(t_fork(unwritable_child, &args));
    close(fds[1]);
    ASSERT_RC(t_recv_dref(fds[0], &a, T_WAIT_S), 0);
    close(fds[0]);
    ck_assert_int_eq(unlink(sp.pdir), 0);
    ck_assert_int_eq(rename(away, sp.pdir), 0);
    ASSERT_FILES(sp.pdir, 1, 0);
    ASSERT_RC(mempool_move_to_disk(p, a, NULL), 0);
    expect_bytes(p, a, 5000, 21, V_DISK);
    expect_bytes(p, args.spilled, 3000, 20, V_DISK);
    t_assert_healthy(p);
}
END_TEST

/* ------------------------------------------- io_uring -> pwrite fallback */

#define SC_N 12

struct sc_digest {
    char     backend[12];
    int32_t  rc[SC_N];
    uint32_t state[SC_N];
    uint32_t flags[SC_N];
    uint64_t sum[SC_N];
    uint64_t resident, disk, spills, spill_bytes, objects;
};

static size_t sc_len(int i)
{
    return i == SC_N - 1 ? 1 * MiB + 5 : 9000 + 1000 * (size_t)i;
}

/* The same steps in any process; the digest records every outcome. */
static void sc_scenario(mempool *p, struct sc_digest *d)
{
    mempool_dref r[SC_N];
    struct mempool_stats s;

    memset(d, 0, sizeof *d);
    memset(r, 0, sizeof r);
    mempool_limit_set(p, MEMPOOL_LIMIT_MEMSIZE, 40000);
    for (int i = 0; i < SC_N - 1; i++)
        d->rc[i] = try_set_bytes(p, 0, sc_len(i), 700 + (uint64_t)i, &r[i]);
    d->rc[0] |= mempool_move_to_disk(p, r[0], NULL);
    d->rc[SC_N - 2] |= mempool_copy_to_disk(p, r[SC_N - 2], NULL);
    mempool_limit_set(p, MEMPOOL_LIMIT_MEMSIZE, 0);
    d->rc[SC_N - 1] = try_set_bytes(p, 0, sc_len(SC_N - 1),
                                    700 + (uint64_t)(SC_N - 1), &r[SC_N - 1]);
    d->rc[SC_N - 1] |= mempool_move_to_disk(p, r[SC_N - 1], NULL);
    for (int i = 0; i < SC_N; i++) {
        mempool_view v;

        d->state[i] = state_of(p, r[i]);
        if (mempool_get(p, r[i], &v) == 0) {
            d->sum[i] = sp_sum(v.data, v.len);
            d->flags[i] = v.flags;
            mempool_release(p, &v);
        }
    }
    mempool_flush(p);
    mempool_stats_get(p, &s);
    memcpy(d->backend, s.io_backend, sizeof d->backend);
    d->resident = s.resident_bytes;
    d->disk = s.disk_bytes;
    d->spills = s.spills;
    d->spill_bytes = s.spill_bytes;
    d->objects = s.objects;
}

/* What sc_child gets from sc_run. */
struct sc_args {
    const char *pool;        /* open this pool */
    bool deny_uring;         /* under a seccomp filter denying io_uring */
    int fd;                  /* send the digest here */
};

static int sc_child(void *arg)
{
    const struct sc_args *a = arg;
    struct sc_digest d;
    mempool *p;

#if defined(__x86_64__)
    if (a->deny_uring) {
        T_CHILD_EQ(t_deny_uring_setup(EPERM), 0);
        T_CHILD_ASSERT(!uring_usable());
    }
#endif
    p = child_open(a->pool, 0, MEMPOOL_IO_AUTO, 0, 0);
    T_CHILD_ASSERT(p != NULL);
    sc_scenario(p, &d);
    T_CHILD_EQ(mempool_check(p, NULL, 0), 0);
    T_CHILD_EQ(t_send(a->fd, &d, sizeof d), 0);
    mempool_close(p);
    return 0;
}

static void sc_run(const char *pool, bool filter, struct sc_digest *d)
{
    struct sc_args a = { pool, filter, -1 };
    int fds[2];

    t_pipe(fds);
    a.fd = fds[1];
    t_wait_ok(t_fork(sc_child, &a));
    close(fds[1]);
    ASSERT_RC(t_recv(fds[0], d, sizeof *d, T_WAIT_S), 0);
    close(fds[0]);
}

START_TEST(test_seccomp_fallback)
{
#if defined(__x86_64__)
    const char *other = sp_extra_name();
    mempool_options o;
    mempool *pa, *pb;
    struct sc_digest a, b;

    sp_opts(&o, SMALL_ARENA, 0, MEMPOOL_POLICY_LRU, MEMPOOL_IO_AUTO);
    pa = sp_open(&o);
    pb = sp_open_as(other, &o);
    sc_run(sp.name, false, &a);
    sc_run(other, true, &b);
    ck_assert_str_eq(b.backend, "pwrite");
    ck_assert_str_eq(a.backend, want_backend(MEMPOOL_IO_AUTO));
    for (int i = 0; i < SC_N; i++) {
        uint64_t want;
        unsigned char *buf = malloc(sc_len(i));

        ck_assert_ptr_nonnull(buf);
        sp_fill(buf, sc_len(i), 700 + (uint64_t)i);
        want = sp_sum(buf, sc_len(i));
        free(buf);
        ck_assert_msg(a.rc[i] == 0 && b.rc[i] == 0, "step %d: %d / %d", i,
                      a.rc[i], b.rc[i]);
        ck_assert_msg(a.state[i] == b.state[i], "object %d: state %#x with "
                      "%s, %#x with pwrite", i, a.state[i], a.backend,
                      b.state[i]);
        ck_assert_msg(a.flags[i] == b.flags[i], "object %d: view flags %u "
                      "with %s, %u with pwrite", i, a.flags[i], a.backend,
                      b.flags[i]);
        ck_assert_msg(a.sum[i] == want && b.sum[i] == want,
                      "object %d reads differently", i);
    }
    ck_assert_uint_eq(a.resident, b.resident);
    ck_assert_uint_eq(a.disk, b.disk);
    ck_assert_uint_eq(a.spills, b.spills);
    ck_assert_uint_eq(a.spill_bytes, b.spill_bytes);
    ck_assert_uint_eq(a.objects, b.objects);
    ck_assert_uint_gt(a.spills, 2);
    /* and the parent reads the fallback's files */
    ASSERT_RC(mempool_check(pb, NULL, 0), 0);
    t_assert_healthy(pa);
#else
    fprintf(stderr, "check_spill: the seccomp case is x86-64 only\n");
#endif
}
END_TEST

void spill_failures_tests(Suite *s)
{
    TCase *tc;

    tc = sp_tcase(s, "failures", 90);
    tcase_add_loop_test(tc, test_f36_failpoints, 0, 4);
    tcase_add_loop_test(tc, test_fp_short_writes, 0, 2);
    tcase_add_test(tc, test_f35_unusable_dir);
    tcase_add_test(tc, test_seccomp_fallback);
}
