/* SPDX-License-Identifier: MIT */
/*
 * check_io_prealloc.c - the I/O engine's preallocation of large spill
 * files (src/spill/io.c, file_prealloc()): a payload of MP_IO_PREALLOC
 * bytes or more gets all its blocks in one fallocate() before its first
 * write, which is what brings a spill write past write(2) of the same
 * bytes on ext4 (mempool-bench --section spill).
 *
 *   blocks    a large file written by each backend maps back byte for
 *             byte and, on ext4 and xfs, has no delayed-allocation extent
 *             right after the write (FIEMAP without a sync): its blocks
 *             were allocated up front. (Writeback could only turn delayed
 *             extents into real ones, never the other way.)
 *   refused   with the "io.falloc" failpoint fallocate() is refused as on a
 *             file system without it: large files are written without it,
 *             whole and correct, by each backend.
 *   full      a real full file system: a 2 MiB tmpfs mounted in a private
 *             mount namespace (root only; skipped with a note elsewhere).
 *             A 4 MiB payload fails with -ENOSPC and leaves no file and no
 *             temp file; a 1.5 MiB one (preallocated) and a 64 KiB one
 *             (not) then fit and map back.
 *
 * White-box (mempool__io_* internals), so it links the library's objects
 * and has its own main(); each test works in a private directory under a
 * per-binary mkdtemp() root that main() removes.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers_base.h"
#include <mempool/mempool.h>
#include "io_impl.h"
#include "t_spillfile.h"

#define EXT4_MAGIC_ 0xEF53
#define XFS_MAGIC_  0x58465342

static char root[64];            /* per binary, removed by main() */
static char t_dir[128];          /* per test */
static int  t_dfd = -1;
static const uint64_t t_uuid[2] = { 0x1122334455667788ull,
                                    0x8877665544332211ull };

static void setup(void)
{
    t_sf_dir_make(root, t_dir, sizeof t_dir, &t_dfd);
}

static void teardown(void)
{
    t_sf_dir_drop(t_dir, &t_dfd);
    unsetenv("MEMPOOL_FAILPOINT");
}

/* Write @p len bytes of @p buf as @p name of @p dfd through an engine of
 * backend mode @p m (0: MP_IO_AUTO, io_uring where the kernel allows it;
 * 1: pwrite) and map it back with every chunk checked. @return the
 * write's result, or 1 if the file did not map back. */
static int write_back(int dfd, int m, const char *name, const uint8_t *buf,
                      uint64_t len)
{
    int rc = t_sf_write(dfd, m ? MP_IO_PWRITE : MP_IO_AUTO, name, buf, len,
                        t_uuid);

    if (rc == 0 && t_sf_map(dfd, name, t_uuid, true, buf, len) != 0)
        rc = 1;
    return rc;
}

/* ------------------------------------------------------------ blocks */

/* Bytes of @p name covered by extents, and how many extents are delayed
 * (no block yet). @return false if the file system has no FIEMAP. */
static bool extents(const char *name, uint64_t *mapped, unsigned *delalloc)
{
    enum { N = 256 };
    struct fiemap *fm = calloc(1, sizeof *fm + N * sizeof(struct fiemap_extent));
    int fd = openat(t_dfd, name, O_RDONLY | O_CLOEXEC);
    bool ok;

    ck_assert_ptr_nonnull(fm);
    ck_assert_int_ge(fd, 0);
    fm->fm_length = FIEMAP_MAX_OFFSET;
    fm->fm_extent_count = N;            /* no FIEMAP_FLAG_SYNC: as it is */
    ok = ioctl(fd, FS_IOC_FIEMAP, fm) == 0;
    *mapped = 0;
    *delalloc = 0;
    for (unsigned i = 0; ok && i < fm->fm_mapped_extents; i++) {
        *mapped += fm->fm_extents[i].fe_length;
        if (fm->fm_extents[i].fe_flags & FIEMAP_EXTENT_DELALLOC)
            (*delalloc)++;
    }
    close(fd);
    free(fm);
    return ok;
}

/* _i: backend mode. */
START_TEST(test_blocks_up_front)
{
    uint64_t len = 3 * MiB + 5, mapped;
    uint8_t *buf = t_sf_pattern(len, 1);
    struct statfs sf;
    unsigned delalloc;

    ck_assert_int_eq(write_back(t_dfd, _i, "big", buf, len), 0);
    ck_assert_int_eq(fstatfs(t_dfd, &sf), 0);
    if ((sf.f_type == EXT4_MAGIC_ || sf.f_type == XFS_MAGIC_) &&
        extents("big", &mapped, &delalloc)) {
        ck_assert_msg(delalloc == 0, "%u delayed extents: not preallocated",
                      delalloc);
        ck_assert_uint_ge(mapped, MP_FILE_HDR + len);
    } else {
        fprintf(stderr, "check_io_prealloc: %s is not ext4/xfs (or has no "
                "FIEMAP): extent check skipped\n", t_dir);
    }
    free(buf);
}
END_TEST

/* ----------------------------------------------------------- refused */

/* _i: backend mode. */
START_TEST(test_refused)
{
    static const uint64_t lens[] = { MP_IO_PREALLOC - 1, MP_IO_PREALLOC,
                                     5 * MiB + 3 };
    int tmps;

    setenv("MEMPOOL_FAILPOINT", "io.falloc", 1);
    for (unsigned i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        char name[16];
        uint8_t *buf = t_sf_pattern(lens[i], i + 10);

        snprintf(name, sizeof name, "f%u", i);
        ck_assert_int_eq(write_back(t_dfd, _i, name, buf, lens[i]), 0);
        free(buf);
    }
    ck_assert_int_eq(t_sf_dir_entries(t_dfd, &tmps), 3);
    ck_assert_int_eq(tmps, 0);
}
END_TEST

/* -------------------------------------------------------------- full */

/* In a child: a private mount namespace with a 2 MiB tmpfs on t_dir.
 * @return 0 if it passed, 77 if it could not set up, else the failed
 * step (1: an assertion of a t_sf_* helper). */
static int full_child(int mode)
{
    uint8_t *big = t_sf_pattern(4 * MiB, 3),
            *mid = t_sf_pattern(3 * MiB / 2, 4),
            *small = t_sf_pattern(64 * 1024, 5);
    int dfd, tmps;

    if (unshare(CLONE_NEWNS) != 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", t_dir, "tmpfs", 0, "size=2m,mode=0700") != 0)
        return 77;
    dfd = open(t_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return 2;
    if (write_back(dfd, mode, "big", big, 4 * MiB) != -ENOSPC)
        return 3;
    if (t_sf_dir_entries(dfd, &tmps) != 0)
        return 4;                        /* nothing left behind */
    if (write_back(dfd, mode, "mid", mid, 3 * MiB / 2) != 0)
        return 5;
    if (unlinkat(dfd, "mid", 0) != 0 ||
        write_back(dfd, mode, "small", small, 64 * 1024) != 0)
        return 6;
    return 0;
}

/* _i: backend mode. */
START_TEST(test_full_fs)
{
    pid_t pid = fork();
    int st;

    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(full_child(_i));
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st), "child status %d", st);
    if (WEXITSTATUS(st) == 77) {
        fprintf(stderr, "check_io_prealloc: cannot mount a tmpfs in a "
                "private namespace here (not root?): full-disk case "
                "skipped\n");
        return;
    }
    ck_assert_msg(WEXITSTATUS(st) == 0, "full fs: step %d failed",
                  WEXITSTATUS(st));
}
END_TEST

static Suite *prealloc_suite(void)
{
    Suite *s = suite_create("io_prealloc");
    TCase *tc = tcase_create("prealloc");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_blocks_up_front, 0, 2);
    tcase_add_loop_test(tc, test_refused, 0, 2);
    tcase_add_loop_test(tc, test_full_fs, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return t_run_in_dir(prealloc_suite(), root, sizeof root, "prealloc");
}
