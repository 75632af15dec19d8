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
#include <dirent.h>
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

#define MiB (1ull << 20)
#define EXT4_MAGIC_ 0xEF53
#define XFS_MAGIC_  0x58465342

static char root[64];            /* per binary, removed by main() */
static char t_dir[128];          /* per test */
static int  t_dfd = -1;
static const uint64_t t_uuid[2] = { 0x1122334455667788ull,
                                    0x8877665544332211ull };

static void setup(void)
{
    snprintf(t_dir, sizeof t_dir, "%s/t-XXXXXX", root);
    ck_assert_ptr_nonnull(mkdtemp(t_dir));
    t_dfd = open(t_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_ge(t_dfd, 0);
}

static void teardown(void)
{
    close(t_dfd);
    t_dfd = -1;
    t_rm_tree(t_dir);
    unsetenv("MEMPOOL_FAILPOINT");
}

static uint8_t *payload(size_t len, uint64_t seed)
{
    uint8_t *b = malloc(len ? len : 1);
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;

    ck_assert_ptr_nonnull(b);
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b[i] = (uint8_t)(x >> 24);
    }
    return b;
}

/* Mode 0: MP_IO_AUTO (io_uring where the kernel allows it), 1: pwrite. */
static mp_io *open_mode(int m)
{
    mp_io *io = NULL;

    ck_assert_int_eq(mempool__io_open(&io, m ? MP_IO_PWRITE : MP_IO_AUTO), 0);
    return io;
}

/* Write @p len bytes of @p buf as file @p name of directory @p dfd. */
static int write_one(mp_io *io, int dfd, const char *name, const void *buf,
                     uint64_t len, uint32_t idx)
{
    mp_io_req r, *rp = &r;

    memset(&r, 0, sizeof r);
    r.dirfd = dfd;
    r.name = name;
    r.payload = buf;
    r.len = len;
    mempool__file_header(&r.hdr, t_uuid, idx, idx + 3, 7, 0, len);
    if (mempool__io_submit(io, &rp, 1) != 0 ||
        mempool__io_wait(io, &rp, 1) != 0)
        return -EINVAL;                  /* a bad request: a test bug */
    return r.result;
}

/* Does @p name map with every chunk checked and hold @p buf? (No
 * assertions: the full-disk child calls it too.) */
static bool file_ok(int dfd, const char *name, const uint8_t *buf,
                    uint64_t len, uint32_t idx)
{
    mp_file_map m;
    bool ok;

    if (mempool__file_map(dfd, name, t_uuid, idx, idx + 3, true, &m) != 0)
        return false;
    ok = m.len == len && memcmp(m.data, buf, len) == 0;
    mempool__file_unmap(&m);
    return ok;
}

static void check_file(int dfd, const char *name, const uint8_t *buf,
                       uint64_t len, uint32_t idx)
{
    ck_assert_msg(file_ok(dfd, name, buf, len, idx), "%s: does not map back",
                  name);
}

/* Entries of @p dfd, and how many end in ".tmp". */
static int dir_entries(int dfd, int *tmps)
{
    DIR *d = fdopendir(openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    struct dirent *e;
    int n = 0;

    ck_assert_ptr_nonnull(d);
    *tmps = 0;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);

        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        n++;
        if (l > 4 && !strcmp(e->d_name + l - 4, ".tmp"))
            (*tmps)++;
    }
    closedir(d);
    return n;
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
    uint8_t *buf = payload(len, 1);
    mp_io *io = open_mode(_i);
    struct statfs sf;
    unsigned delalloc;

    ck_assert_int_eq(write_one(io, t_dfd, "big", buf, len, 1), 0);
    check_file(t_dfd, "big", buf, len, 1);
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
    mempool__io_close(io);
    free(buf);
}
END_TEST

/* ----------------------------------------------------------- refused */

/* _i: backend mode. */
START_TEST(test_refused)
{
    static const uint64_t lens[] = { MP_IO_PREALLOC - 1, MP_IO_PREALLOC,
                                     5 * MiB + 3 };
    mp_io *io;
    int tmps;

    setenv("MEMPOOL_FAILPOINT", "io.falloc", 1);
    io = open_mode(_i);
    for (unsigned i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        char name[16];
        uint8_t *buf = payload(lens[i], i + 10);

        snprintf(name, sizeof name, "f%u", i);
        ck_assert_int_eq(write_one(io, t_dfd, name, buf, lens[i], i), 0);
        check_file(t_dfd, name, buf, lens[i], i);
        free(buf);
    }
    ck_assert_int_eq(dir_entries(t_dfd, &tmps), 3);
    ck_assert_int_eq(tmps, 0);
    mempool__io_close(io);
}
END_TEST

/* -------------------------------------------------------------- full */

/* In a child: a private mount namespace with a 2 MiB tmpfs on t_dir.
 * @return 0 if it passed, 77 if it could not set up, else the failed
 * step. */
static int full_child(int mode)
{
    uint8_t *big = payload(4 * MiB, 3), *mid = payload(3 * MiB / 2, 4),
            *small = payload(64 * 1024, 5);
    mp_io *io = NULL;
    int dfd, tmps;

    if (unshare(CLONE_NEWNS) != 0 ||
        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", t_dir, "tmpfs", 0, "size=2m,mode=0700") != 0)
        return 77;
    dfd = open(t_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || mempool__io_open(&io, mode ? MP_IO_PWRITE : MP_IO_AUTO))
        return 2;
    if (write_one(io, dfd, "big", big, 4 * MiB, 1) != -ENOSPC)
        return 3;
    if (dir_entries(dfd, &tmps) != 0)
        return 4;                        /* nothing left behind */
    if (write_one(io, dfd, "mid", mid, 3 * MiB / 2, 2) != 0 ||
        !file_ok(dfd, "mid", mid, 3 * MiB / 2, 2))
        return 5;
    if (unlinkat(dfd, "mid", 0) != 0 ||
        write_one(io, dfd, "small", small, 64 * 1024, 3) != 0 ||
        !file_ok(dfd, "small", small, 64 * 1024, 3))
        return 6;
    mempool__io_close(io);
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
    SRunner *sr;
    int failed;

    snprintf(root, sizeof root, "/tmp/mempool-check-prealloc-XXXXXX");
    if (!mkdtemp(root)) {
        perror("check_io_prealloc: mkdtemp");
        return 77;
    }
    sr = srunner_create(prealloc_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    t_rm_tree(root);
    return failed ? 1 : 0;
}
