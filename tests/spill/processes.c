/* SPDX-License-Identifier: MIT */
/*
 * spill/processes.c - spilled objects and other processes: reads from a forked
 * child and from an exec'd one (check_spill --peer-get), a remote pin
 * killed (G41), moves of objects others pin, refcounted spills, readers
 * during eviction, every worker killed (B12), the background spiller.
 */
#include "fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* =================================================== other processes */

static const size_t xp_len[3] = { 100, 200000, 5 * MiB + 1 };

static int xp_child(void *arg)
{
    const mempool_dref *xp_r = arg;         /* the 3 spilled objects */
    mempool *p = child_open(sp.name, 0, MEMPOOL_IO_AUTO, 0, 0);
    struct mempool_stats s;

    T_CHILD_ASSERT(p != NULL);
    for (int i = 0; i < 3; i++) {
        mempool_view v;

        T_CHILD_EQ(mempool_get(p, xp_r[i], &v), 0);
        T_CHILD_EQ(v.flags, V_DISK);
        T_CHILD_EQ(v.len, xp_len[i]);
        T_CHILD_ASSERT(sp_check(v.data, xp_len[i], 30 + (uint64_t)i));
        T_CHILD_EQ(mempool_release(p, &v), 0);
        T_CHILD_EQ(state_of(p, xp_r[i]), ST_DISK);
    }
    T_CHILD_EQ(mempool_stats_get(p, &s), 0);
    T_CHILD_ASSERT(s.restores >= 3);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

/* @p arg: char[3][64], the DRef, length and checksum arguments. */
static int exec_peer(void *arg)
{
    char (*peer_args)[64] = arg;

    execl("/proc/self/exe", "check_spill", "--peer-get", sp.name,
          peer_args[0], peer_args[1], peer_args[2], sp.dir, (char *)NULL);
    fprintf(stderr, "exec /proc/self/exe: %s\n", strerror(errno));
    return 127;
}

/* A spilled object is read, mapped, from a forked child and from an
 * exec'd process that shares nothing with us. */
START_TEST(test_cross_process_read)
{
    mempool *p = sp_create(32 * MiB, 0, MEMPOOL_POLICY_LRU, MEMPOOL_IO_AUTO);
    mempool_dref xp_r[3];
    char peer_args[3][64];
    unsigned char *buf;
    int st;

    for (int i = 0; i < 3; i++) {
        xp_r[i] = set_bytes(p, 0, xp_len[i], 30 + (uint64_t)i, 0);
        ASSERT_RC(mempool_move_to_disk(p, xp_r[i], NULL), 0);
    }
    t_wait_ok(t_fork(xp_child, xp_r));
    buf = malloc(xp_len[2]);
    ck_assert_ptr_nonnull(buf);
    sp_fill(buf, xp_len[2], 32);
    ck_assert_int_eq(mempool_dref_format(xp_r[2], peer_args[0], 64), 33);
    snprintf(peer_args[1], 64, "%zu", xp_len[2]);
    snprintf(peer_args[2], 64, "%016" PRIx64, sp_sum(buf, xp_len[2]));
    st = t_wait(t_fork(exec_peer, peer_args), T_WAIT_S);
    ck_assert_msg(st == 0, "peer exited %d", st);
    /* negative control */
    snprintf(peer_args[2], 64, "%016" PRIx64, sp_sum(buf, xp_len[2]) ^ 1);
    st = t_wait(t_fork(exec_peer, peer_args), T_WAIT_S);
    ck_assert_msg(st == 1, "peer with a wrong sum exited %d", st);
    free(buf);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(t_pins(p, xp_r[i]), 0);
    ck_assert_int_eq(mempool_reap(p), 0);
    t_assert_healthy(p);
}
END_TEST

/* G41 for a mapped view: a remote worker pins a spilled object and is
 * killed; the reaper drops the pin; delete then removes the file. */
START_TEST(test_g41_remote_pin_killed)
{
    mempool *p = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU,
                           MEMPOOL_IO_AUTO);
    struct t_remote w;
    mempool_fileref f;
    mempool_dref r = set_bytes(p, 0, 50000, 3, 0);

    ASSERT_RC(mempool_move_to_disk(p, r, &f), 0);
    t_remote_start(&w, sp.name);
    ASSERT_RC(t_remote_call(&w, T_R_GET, &r, 2), 0);
    ck_assert_int_eq(t_pins(p, r), 2);
    ASSERT_RC(t_remote_call(&w, T_R_VERIFY, NULL, 0), 2);
    t_remote_kill(&w);
    ck_assert_int_ge(mempool_reap(p), 1);
    ck_assert_int_eq(t_pins(p, r), 0);
    ASSERT_STATE(p, r, ST_DISK);
    expect_bytes(p, r, 50000, 3, V_DISK);
    ASSERT_RC(mempool_delete(p, r), 0);
    ck_assert(!exists(f.path));
    ck_assert_uint_eq(t_stats(p).objects, 0);
    t_assert_healthy(p);
}
END_TEST

/*
 * G39 across processes: move_to_disk of an object another process pins
 * frees its memory at that process's last release (loop 0) - or, if that
 * process is killed instead, when the reaper drops its pins (loop 1).
 */
START_TEST(test_move_pinned_by_other)
{
    mempool *p = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU,
                           MEMPOOL_IO_AUTO);
    struct t_remote w;
    mempool_dref r = set_bytes(p, 0, 50000, 6, 0);

    t_remote_start(&w, sp.name);
    ASSERT_RC(t_remote_call(&w, T_R_GET, &r, 1), 0);
    ASSERT_RC(mempool_move_to_disk(p, r, NULL), 0);
    ASSERT_STATE(p, r, ST_BOTH);
    ck_assert_uint_eq(t_stats(p).resident_bytes, 50000);
    ck_assert_uint_eq(t_stats(p).disk_bytes, 50000);
    if (_i == 0) {
        ASSERT_RC(t_remote_call(&w, T_R_RELEASE_ALL, NULL, 0), 1);
        ck_assert_int_eq(t_remote_quit(&w), 0);
    } else {
        t_remote_kill(&w);
        ck_assert_int_ge(mempool_reap(p), 1);
        ck_assert_int_eq(t_pins(p, r), 0);
    }
    ck_assert_msg(state_of(p, r) == ST_DISK &&
                  t_stats(p).resident_bytes == 0,
                  "move_to_disk of an object pinned by a %s process: state "
                  "%#x, resident %" PRIu64 " after its pin went",
                  _i == 0 ? "releasing" : "killed", state_of(p, r),
                  t_stats(p).resident_bytes);
    expect_bytes(p, r, 50000, 6, V_DISK);
    t_assert_healthy(p);
}
END_TEST

/* Refcounted objects spill like any other; the last unref of a spilled
 * one deletes it and its file. */
START_TEST(test_refcounted_spilled)
{
    mempool *p = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU,
                           MEMPOOL_IO_AUTO);
    mempool *q = sp_attach(48, MEMPOOL_IO_AUTO);
    int wq = mempool_worker_id(q);
    mempool_dref a, b, c;
    mempool_fileref f;

    a = set_i64(p, wq, 2, MEMPOOL_PUT_REFCOUNTED);
    b = set_i64(p, wq, 2, MEMPOOL_PUT_REFCOUNTED);
    c = set_i64(p, wq, 4, MEMPOOL_PUT_REFCOUNTED);   /* 64 > 48: a goes */
    ASSERT_STATE(p, a, ST_DISK);
    ASSERT_STATE(p, b, ST_MEM);
    ASSERT_STATE(p, c, ST_MEM);
    ASSERT_RC(mempool_move_to_disk(p, a, &f), 0);
    ASSERT_RC(mempool_ref(q, a), 0);
    ck_assert_int_eq(t_refs(p, a), 2);
    expect_i64(q, a, 2, V_DISK);
    ASSERT_RC(mempool_unref(p, a), 0);
    ASSERT_STATE(p, a, ST_DISK);
    ck_assert(exists(f.path));
    ASSERT_RC(mempool_unref(q, a), 0);
    ASSERT_STATE(p, a, ST_GONE);
    ck_assert_msg(!exists(f.path), "last unref kept the file %s", f.path);
    ck_assert_uint_eq(t_stats(p).disk_bytes, 0);
    ASSERT_RC(mempool_move_to_disk(p, b, NULL), 0);
    ASSERT_RC(mempool_unref(p, b), 0);
    ASSERT_RC(mempool_unref(p, c), 0);
    ck_assert_uint_eq(t_stats(p).objects, 0);
    ck_assert_uint_eq(t_stats(p).resident_bytes, 0);
    ASSERT_FILES(sp.pdir, 0, 0);
    t_assert_healthy(p);
}
END_TEST

/* Readers in another process never see a wrong byte or an error while
 * their objects are evicted, moved and copied under them. */
enum { CR_N = 32 };
static const size_t cr_len = 64 * KiB;

static int cr_reader(void *arg)
{
    const mempool_dref *cr_r = arg;         /* CR_N objects */
    mempool *p = child_open(sp.name, 0, MEMPOOL_IO_AUTO, 0, 0);
    uint64_t rs = (uint64_t)getpid();

    T_CHILD_ASSERT(p != NULL);
    for (int k = 0; k < 4000; k++) {
        int i = (int)(t_rand(&rs) % CR_N);
        mempool_view v;

        T_CHILD_EQ(mempool_get(p, cr_r[i], &v), 0);
        T_CHILD_EQ(v.len, cr_len);
        T_CHILD_ASSERT(sp_check(v.data, cr_len, 900 + (uint64_t)i));
        T_CHILD_EQ(mempool_release(p, &v), 0);
    }
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

START_TEST(test_readers_during_eviction)
{
    unsigned io = (unsigned)_i;
    mempool *p = sp_create(32 * MiB, 512 * KiB, MEMPOOL_POLICY_LRU, io);
    uint64_t rs = 12345;
    mempool_dref cr_r[CR_N];
    bool reaped = false;
    pid_t pid;
    int st = -1;

    for (int i = 0; i < CR_N; i++)
        cr_r[i] = set_bytes(p, 0, cr_len, 900 + (uint64_t)i, 0);
    pid = t_fork(cr_reader, cr_r);
    for (int k = 0; k < 400; k++) {
        int i = (int)(t_rand(&rs) % CR_N);
        mempool_dref t;

        if (waitpid(pid, &st, WNOHANG) == pid) {
            reaped = true;
            break;
        }
        switch (k % 4) {
        case 0:
            ASSERT_RC(mempool_move_to_disk(p, cr_r[i], NULL), 0);
            break;
        case 1:
            ASSERT_RC(mempool_copy_to_disk(p, cr_r[i], NULL), 0);
            break;
        default:
            t = set_bytes(p, 0, cr_len, 1, 0);
            ASSERT_RC(mempool_delete(p, t), 0);
            break;
        }
    }
    if (!reaped)
        st = t_wait(pid, T_WAIT_S);
    else
        st = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    ck_assert_msg(st == 0, "reader failed (%d)", st);
    for (int i = 0; i < CR_N; i++)
        expect_bytes(p, cr_r[i], cr_len, 900 + (uint64_t)i, 0);
    ck_assert_uint_gt(t_stats(p).spills, 0);
    t_assert_healthy(p);
}
END_TEST

/* B12: every worker killed; the next open reaps them and the spilled and
 * resident objects are all still there. */
static int ak_child(void *arg)
{
    const int *fd = arg;                    /* report the DRefs here */
    mempool *p = child_open(sp.name, 20000, MEMPOOL_IO_AUTO, 0, 0);

    T_CHILD_ASSERT(p != NULL);
    for (int i = 0; i < 4; i++) {
        mempool_dref r;

        T_CHILD_EQ(try_set_bytes(p, 0, 8000, 80 + (uint64_t)i, &r), 0);
        T_CHILD_EQ(t_send_dref(*fd, r), 0);
    }
    for (;;)
        pause();
}

START_TEST(test_all_workers_killed)
{
    mempool *p = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU,
                           MEMPOOL_IO_AUTO);
    mempool_dref r[4];
    int fds[2], disk = 0;
    pid_t pid;

    sp_close(p);                      /* the pool stays */
    t_pipe(fds);
    pid = t_fork(ak_child, &fds[1]);
    close(fds[1]);
    for (int i = 0; i < 4; i++)
        ASSERT_RC(t_recv_dref(fds[0], &r[i], T_WAIT_S), 0);
    close(fds[0]);
    ck_assert_int_eq(t_kill(pid), SIGKILL);
    p = sp_attach(0, MEMPOOL_IO_AUTO);
    t_assert_healthy(p);
    for (int i = 0; i < 4; i++) {
        unsigned st = state_of(p, r[i]);

        disk += st == ST_DISK;
        expect_bytes(p, r[i], 8000, 80 + (uint64_t)i,
                     st == ST_DISK ? V_DISK : V_MEM);
    }
    ck_assert_int_eq(disk, 2);
    ASSERT_FILES(sp.pdir, 2, 0);
    t_assert_healthy(p);
}
END_TEST

/* The elected spiller keeps the arena under its high watermark (85%) when
 * nobody sets anything. */
START_TEST(test_background_spiller)
{
    enum { N = 200 };
    mempool_options o;
    mempool *p;
    mempool_dref r[N];
    struct mempool_stats s;
    const size_t len = 128 * KiB;
    int n = 0;
    bool ok = false;

    sp_opts(&o, 16 * MiB, 0, MEMPOOL_POLICY_LRU, MEMPOOL_IO_AUTO);
    o.spiller = 1;
    p = sp_open(&o);
    ck_assert(poll_spiller(p, mempool_worker_id(p), 20.0));
    s = t_stats(p);
    while (n < N && s.used_bytes < s.data_bytes / 100 * 92 &&
           s.used_bytes + 2 * len < s.data_bytes) {
        r[n] = set_bytes(p, 0, len, 3000 + (uint64_t)n, 0);
        n++;
        s = t_stats(p);
    }
    for (int i = 0; i < 4000 && !ok; i++) {
        s = t_stats(p);
        ok = s.used_bytes <= s.data_bytes / 100 * 85 && s.spills > 0;
        if (!ok)
            usleep(5000);
    }
    ck_assert_msg(ok, "arena at %" PRIu64 " of %" PRIu64 " bytes, %" PRIu64
                  " spills", s.used_bytes, s.data_bytes, s.spills);
    for (int i = 0; i < n; i++)
        expect_bytes(p, r[i], len, 3000 + (uint64_t)i, 0);
    t_assert_healthy(p);
}
END_TEST

void spill_processes_tests(Suite *s)
{
    TCase *tc;

    tc = sp_tcase(s, "processes", 90);
    tcase_add_test(tc, test_cross_process_read);
    tcase_add_test(tc, test_g41_remote_pin_killed);
    tcase_add_loop_test(tc, test_move_pinned_by_other, 0, 2);
    tcase_add_test(tc, test_refcounted_spilled);
    tcase_add_loop_test(tc, test_readers_during_eviction, 0, 2);
    tcase_add_test(tc, test_all_workers_killed);
    tcase_add_test(tc, test_background_spiller);
}
