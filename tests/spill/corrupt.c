/* SPDX-License-Identifier: MIT */
/*
 * spill/corrupt.c - damaged spill files: every kind of damage is an error
 * (MEMPOOL_ECORRUPT), never a crash or wrong bytes, in this process and in
 * a fresh one.
 */
#include "fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ================================================ corrupt spill files */

START_TEST(test_corrupt_files)
{
    enum { N = 9, LEN = 10000 };
    mempool *p = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU,
                           MEMPOOL_IO_AUTO);
    mempool *nv;
    mempool_options o;
    mempool_fileref f[N];
    mempool_dref r[N], x;
    mempool_view v;
    unsigned char *buf;
    size_t blen;
    int i;
    /* 0 truncate, 1 payload flip, 2 header flip (length), 3 header flip
     * (padding), 4 another object's file, 5 deleted, 6 extended,
     * 7 symlink to a good file, 8 intact */
    const int want[N] = { MEMPOOL_ECORRUPT, MEMPOOL_ECORRUPT,
                          MEMPOOL_ECORRUPT, MEMPOOL_ECORRUPT,
                          MEMPOOL_ECORRUPT, -ENOENT, MEMPOOL_ECORRUPT,
                          MEMPOOL_ECORRUPT, 0 };

    for (i = 0; i < N; i++) {
        r[i] = set_bytes(p, 0, LEN, 40 + (uint64_t)i, 0);
        ASSERT_RC(mempool_move_to_disk(p, r[i], &f[i]), 0);
    }
    sp_opts(&o, SMALL_ARENA, 0, MEMPOOL_POLICY_LRU, MEMPOOL_IO_AUTO);
    o.flags = MEMPOOL_OPEN_NOVERIFY;
    nv = sp_open(&o);
    /* corrupt before anyone maps them */
    ck_assert_int_eq(truncate(f[0].path, FILE_HDR + LEN / 2), 0);
    flip_byte(f[1].path, FILE_HDR + 1234);
    flip_byte(f[2].path, 40);
    flip_byte(f[3].path, 2000);
    buf = slurp(f[8].path, &blen);
    spit(f[4].path, buf, blen);
    free(buf);
    ck_assert_int_eq(unlink(f[5].path), 0);
    {
        int fd = open(f[6].path, O_WRONLY | O_APPEND | O_CLOEXEC);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, "x", 1), 1);
        close(fd);
    }
    ck_assert_int_eq(unlink(f[7].path), 0);
    ck_assert_int_eq(symlink(f[8].path, f[7].path), 0);
    for (int round = 0; round < 2; round++) {
        for (i = 0; i < N; i++) {
            memset(&v, 0, sizeof v);
            ck_assert_msg(mempool_get(p, r[i], &v) == want[i],
                          "case %d: get = %d, want %d", i,
                          mempool_get(p, r[i], &v), want[i]);
            if (want[i] == 0) {
                ck_assert(sp_check(v.data, LEN, 40 + (uint64_t)i));
                ASSERT_RC(mempool_release(p, &v), 0);
            }
            ck_assert_int_eq(t_pins(p, r[i]), 0);
            ASSERT_STATE(p, r[i], ST_DISK);
        }
    }
    /* without payload verification the flipped byte goes unnoticed; the
     * header is still checked */
    for (i = 0; i < N; i++) {
        int rc = mempool_get(nv, r[i], &v);

        if (i == 1) {
            ASSERT_RC(rc, 0);
            ck_assert(!sp_check(v.data, LEN, 41));
            ASSERT_RC(mempool_release(nv, &v), 0);
        } else {
            ck_assert_msg(rc == want[i], "NOVERIFY case %d: get = %d", i,
                          rc);
            if (rc == 0)
                ASSERT_RC(mempool_release(nv, &v), 0);
        }
    }
    /* the pool keeps working; deletes remove what is there */
    x = set_bytes(p, 0, LEN, 99, 0);
    ASSERT_RC(mempool_move_to_disk(p, x, NULL), 0);
    expect_bytes(p, x, LEN, 99, V_DISK);
    for (i = 0; i < N - 1; i++)
        ASSERT_RC(mempool_delete(p, r[i]), 0);
    ck_assert(exists(f[8].path));
    ck_assert_uint_eq(t_stats(p).disk_bytes, 2 * LEN);
    ASSERT_FILES(sp.pdir, 2, 0);
    t_assert_healthy(p);
}
END_TEST

/* A fresh process meets a corrupt file: an error, no crash. */
static int corrupt_child(void *arg)
{
    const mempool_dref *r = arg;
    mempool *p = child_open(sp.name, 0, MEMPOOL_IO_AUTO, 0, 0);
    mempool_view v;

    T_CHILD_ASSERT(p != NULL);
    T_CHILD_EQ(mempool_get(p, *r, &v), MEMPOOL_ECORRUPT);
    /* the fsck verifies spill files too (issue 15 item 12) */
    T_CHILD_EQ(mempool_check(p, NULL, 0), MEMPOOL_ECORRUPT);
    mempool_close(p);
    return 0;
}

START_TEST(test_corrupt_other_process)
{
    mempool *p = sp_create(SMALL_ARENA, 0, MEMPOOL_POLICY_LRU,
                           MEMPOOL_IO_AUTO);
    mempool_fileref f;
    mempool_dref corrupt_r;

    corrupt_r = set_bytes(p, 0, 300000, 4, 0);
    ASSERT_RC(mempool_move_to_disk(p, corrupt_r, &f), 0);
    flip_byte(f.path, FILE_HDR + 299999);
    t_wait_ok(t_fork(corrupt_child, &corrupt_r));
    ck_assert_int_eq(truncate(f.path, 100), 0);
    t_wait_ok(t_fork(corrupt_child, &corrupt_r));
    ASSERT_RC(mempool_delete(p, corrupt_r), 0);
    ASSERT_FILES(sp.pdir, 0, 0);
    t_assert_healthy(p);
}
END_TEST

void spill_corrupt_tests(Suite *s)
{
    TCase *tc;

    tc = sp_tcase(s, "corrupt", 60);
    tcase_add_test(tc, test_corrupt_files);
    tcase_add_test(tc, test_corrupt_other_process);
}
