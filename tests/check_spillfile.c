/* SPDX-License-Identifier: MIT */
/*
 * check_spillfile.c - the chunked spill file format (version 2, spill.h):
 * per-chunk crc32c in the header, written chunk by chunk by both backends,
 * checked chunk by chunk on map.
 *
 *   format    chunk shift and count for lengths up to 2^64 - 1 (never more
 *             than 1008 chunks); a version 1 file (one payload crc) is
 *             still read and checked; the chunk table is covered by the
 *             header crc, and bytes after it must be zero.
 *   flips     a file of 5 chunks and a bit, written by each backend: a byte
 *             flipped at the start, middle and end of each chunk makes a
 *             verifying map MEMPOOL_ECORRUPT (a non-verifying one maps, as
 *             documented); put back, it maps again. Through the public API
 *             too: a fresh handle's get of the spilled object answers
 *             MEMPOOL_ECORRUPT for each flipped chunk, never wrong bytes,
 *             and the right bytes once repaired; mempool_check() names it.
 *   kills     (failpoint builds) a worker SIGKILLed at "spill.chunk" (in
 *             the middle of a multi-chunk file) or "spill.sealed" (every
 *             chunk written, header not) leaves no temp file once reaped,
 *             the object resident with its bytes, the pool healthy, and a
 *             later move_to_disk writes a good file; "spill.chunk=eio"
 *             fails the write with -EIO and leaves nothing behind.
 *
 * White-box (calls mempool__* internals), so it links the library's objects.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers_base.h"
#include <mempool/mempool.h>
#include "io_impl.h"
#include "t_spillfile.h"

#define T_CHUNK  (1ull << 20)
#define T_LEN    (5 * T_CHUNK + 1)        /* 6 chunks, the last 1 byte */

static char root[64];                    /* per binary, removed by main() */
static char t_dir[128];                  /* per test */
static int  t_dfd = -1;
static const uint64_t t_uuid[2] = { 0x1111222233334444ull,
                                    0x5555666677778888ull };

static void setup(void)
{
    t_sf_dir_make(root, t_dir, sizeof t_dir, &t_dfd);
}

static void teardown(void)
{
    t_sf_dir_drop(t_dir, &t_dfd);
    unsetenv("MEMPOOL_FAILPOINT");
}

static int write_file(int mode, const char *name, const uint8_t *buf,
                      uint64_t len)
{
    return t_sf_write(t_dfd, mode, name, buf, len, t_uuid);
}

static int map_verify(const char *name, bool verify, const uint8_t *want,
                      uint64_t len)
{
    return t_sf_map(t_dfd, name, t_uuid, verify, want, len);
}

/* ------------------------------------------------------------- format */

START_TEST(test_chunk_shift)
{
    static const uint64_t lens[] = {
        0, 1, T_CHUNK, T_CHUNK + 1, 1008 * T_CHUNK, 1008 * T_CHUNK + 1,
        2016 * T_CHUNK, 2016 * T_CHUNK + 1, 1ull << 40, (1ull << 62) + 5,
        UINT64_MAX };
    mp_file_header h;

    for (unsigned i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        uint64_t n, cb;

        mempool__file_header(&h, t_uuid, 1, 2, 3, 0, lens[i]);
        n = mempool__file_chunks(&h);
        cb = mempool__file_chunk_bytes(&h);
        ck_assert_uint_ge(h.chunk_shift, 20);
        ck_assert_uint_le(h.chunk_shift, 63);
        ck_assert_uint_le(n, MP_FILE_MAXCHUNKS);
        if (lens[i] == 0) {
            ck_assert_uint_eq(n, 0);
            continue;
        }
        /* n chunks cover the length, n - 1 do not; the shift is least */
        ck_assert_uint_eq((lens[i] - 1) / cb, n - 1);
        if (h.chunk_shift > 20)
            ck_assert_uint_gt((lens[i] - 1) >> (h.chunk_shift - 1),
                              MP_FILE_MAXCHUNKS - 1);
    }
    mempool__file_header(&h, t_uuid, 1, 2, 3, 0, 1008 * T_CHUNK);
    ck_assert_uint_eq(h.chunk_shift, 20);
    mempool__file_header(&h, t_uuid, 1, 2, 3, 0, 1008 * T_CHUNK + 1);
    ck_assert_uint_eq(h.chunk_shift, 21);
}
END_TEST

/* A version 1 file (whole-payload crc), as earlier releases saved them. */
START_TEST(test_v1_read)
{
    uint8_t *buf = t_sf_pattern(T_LEN, 7), blk[MP_FILE_HDR] = { 0 };
    mp_file_header h;
    int fd;

    mempool__file_header(&h, t_uuid, 3, 4, 5, MP_FILE_SAVED, T_LEN);
    h.version = 1;
    h.payload_crc = mempool__crc32c(0, buf, T_LEN);
    memcpy(blk, &h, sizeof h);
    mempool__file_seal(blk);
    fd = openat(t_dfd, "v1", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, blk, sizeof blk, 0), (ssize_t)sizeof blk);
    ck_assert_int_eq(pwrite(fd, buf, T_LEN, MP_FILE_HDR), (ssize_t)T_LEN);
    close(fd);
    ck_assert_int_eq(map_verify("v1", true, buf, T_LEN), 0);
    t_sf_flip(t_dfd, "v1", MP_FILE_HDR + 3 * T_CHUNK);
    ck_assert_int_eq(map_verify("v1", true, buf, T_LEN), MEMPOOL_ECORRUPT);
    ck_assert_int_eq(map_verify("v1", false, buf, T_LEN), 0);
    free(buf);
}
END_TEST

/* The chunk table is part of the header: a flip there is caught without
 * verify; so is a non-zero byte after the table (header crc fixed). */
START_TEST(test_table_flip)
{
    uint8_t *buf = t_sf_pattern(T_LEN, 8), blk[MP_FILE_HDR];
    int fd;

    ck_assert_int_eq(write_file(MP_IO_PWRITE, "f", buf, T_LEN), 0);
    for (uint64_t i = 0; i < 6; i++) {
        t_sf_flip(t_dfd, "f", 64 + 4 * i + (i & 3));
        ck_assert_int_eq(map_verify("f", false, buf, T_LEN),
                         MEMPOOL_ECORRUPT);
        t_sf_flip(t_dfd, "f", 64 + 4 * i + (i & 3));
    }
    fd = openat(t_dfd, "f", O_RDWR | O_CLOEXEC);
    ck_assert_int_eq(pread(fd, blk, sizeof blk, 0), (ssize_t)sizeof blk);
    blk[64 + 4 * 6] = 1;                    /* just after the table */
    mempool__file_seal(blk);
    ck_assert_int_eq(pwrite(fd, blk, sizeof blk, 0), (ssize_t)sizeof blk);
    close(fd);
    ck_assert_int_eq(map_verify("f", false, buf, T_LEN), MEMPOOL_ECORRUPT);
    free(buf);
}
END_TEST

/* -------------------------------------------------------------- flips */

/* Offsets (in the payload) of the first, a middle and the last byte of
 * each chunk of a T_LEN payload. */
static unsigned chunk_offsets(uint64_t *offs)
{
    unsigned n = 0;

    for (uint64_t c = 0; c * T_CHUNK < T_LEN; c++) {
        uint64_t a = c * T_CHUNK, z = a + T_CHUNK - 1;

        if (z >= T_LEN)
            z = T_LEN - 1;
        offs[n++] = a;
        if (z > a) {
            offs[n++] = a + (z - a) / 2 + 1;
            offs[n++] = z;
        }
    }
    return n;
}

/* _i: 0 io_uring (or pwrite where refused), 1 pwrite. */
START_TEST(test_flip_each_chunk)
{
    uint8_t *buf = t_sf_pattern(T_LEN, 9);
    uint64_t offs[32];
    unsigned n = chunk_offsets(offs);

    ck_assert_int_eq(write_file(_i ? MP_IO_PWRITE : MP_IO_AUTO, "f", buf,
                                T_LEN), 0);
    t_sf_flips_caught(t_dfd, "f", t_uuid, buf, T_LEN, offs, n);
    free(buf);
}
END_TEST

static mempool *open_pool(const char *name, bool create)
{
    return t_sf_pool_open(name, root, create);
}

static void pool_name(char *buf, size_t len, const char *what)
{
    snprintf(buf, len, "t-spillfile-%s-%d", what, (int)getpid());
}

/* The spilled object's file, opened for flipping (dirfd of its dir). */
static int file_dir(mempool *p)
{
    struct mempool_stats st;
    int fd;

    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    ck_assert_int_eq(mempool_stats_get(p, &st), 0);
    fd = open(st.spill_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_ge(fd, 0);
    return fd;
}

/* Public API: a fresh handle (no cached mapping) gets MEMPOOL_ECORRUPT for
 * a flip in any chunk, and the right bytes once it is put back. */
START_TEST(test_get_flipped_chunk)
{
    char name[64], why[256], *base;
    uint8_t *buf = t_sf_pattern(T_LEN, 10);
    uint64_t offs[32];
    unsigned n = chunk_offsets(offs);
    mempool_fileref f;
    mempool_dref r;
    mempool *p, *q;
    int dfd;

    pool_name(name, sizeof name, "get");
    p = open_pool(name, true);
    ck_assert_int_eq(mempool_put(p, buf, T_LEN, &r), 0);
    ck_assert_int_eq(mempool_move_to_disk(p, r, &f), 0);
    base = strrchr(f.path, '/') + 1;
    dfd = file_dir(p);
    for (unsigned i = 0; i < n; i++) {
        mempool_view v;

        t_sf_flip(dfd, base, MP_FILE_HDR + offs[i]);
        q = open_pool(name, false);
        memset(&v, 0, sizeof v);
        ck_assert_int_eq(mempool_get(q, r, &v), MEMPOOL_ECORRUPT);
        ck_assert_ptr_null(v.data);
        ck_assert_int_eq(mempool_close(q), 0);
        ck_assert_int_eq(mempool_check(p, why, sizeof why), MEMPOOL_ECORRUPT);
        t_sf_flip(dfd, base, MP_FILE_HDR + offs[i]);
        q = open_pool(name, false);
        ck_assert_int_eq(mempool_get(q, r, &v), 0);
        ck_assert(v.flags & MEMPOOL_VIEW_DISK);
        ck_assert_uint_eq(v.len, T_LEN);
        ck_assert_int_eq(memcmp(v.data, buf, T_LEN), 0);
        ck_assert_int_eq(mempool_release(q, &v), 0);
        ck_assert_int_eq(mempool_close(q), 0);
    }
    ck_assert_int_eq(mempool_check(p, why, sizeof why), 0);
    close(dfd);
    ck_assert_int_eq(mempool_close(p), 0);
    ck_assert_int_eq(mempool_destroy(name), 0);
    free(buf);
}
END_TEST

/* -------------------------------------------------------------- kills */

#ifdef MEMPOOL_FAILPOINTS
/* Names in the spill dir of @p p ending in ".tmp", and all of them. */
static int dir_count(mempool *p, int *tmps)
{
    int fd = file_dir(p), n = 0;
    DIR *d = fdopendir(fd);
    struct dirent *e;

    ck_assert_ptr_nonnull(d);
    *tmps = 0;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);

        if (e->d_name[0] == '.')
            continue;
        n++;
        if (l > 4 && strcmp(e->d_name + l - 4, ".tmp") == 0)
            (*tmps)++;
    }
    closedir(d);
    return n;
}

/* A child moves @p r to disk with @p fp set; returns its wait status. */
static int child_move(const char *name, mempool_dref r, const char *fp,
                      int *rc_out)
{
    int fds[2], st = 0, rc = 1;
    pid_t pid;

    ck_assert_int_eq(pipe(fds), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        mempool *c;
        mempool_options o;

        close(fds[0]);
        setenv("MEMPOOL_FAILPOINT", fp, 1);
        mempool_options_init(&o);
        o.spiller = 0;
        o.flags = 0;
        if (mempool_open(name, &o, &c) != 0)
            _exit(3);
        rc = mempool_move_to_disk(c, r, NULL);
        if (write(fds[1], &rc, sizeof rc) != (ssize_t)sizeof rc)
            _exit(4);
        mempool_close(c);
        _exit(0);
    }
    close(fds[1]);
    *rc_out = 1;
    if (read(fds[0], rc_out, sizeof *rc_out) != (ssize_t)sizeof *rc_out)
        *rc_out = 1;
    close(fds[0]);
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    return st;
}

static const char *const kill_points[] = {
    "spill.chunk=kill@1", "spill.chunk=kill@3", "spill.chunk=kill@6",
    "spill.sealed=kill", "spill.chunk=eio@4", "spill.sealed=eio" };

/* _i: which of kill_points. */
START_TEST(test_kill_mid_file)
{
    const char *fp = kill_points[_i];
    bool kill = strstr(fp, "kill") != NULL;
    char name[64], why[256];
    uint8_t *buf = t_sf_pattern(T_LEN, 11);
    mempool_view v;
    mempool_dref r;
    mempool *p;
    int st, rc, tmps, files;

    pool_name(name, sizeof name, "kill");
    p = open_pool(name, true);
    ck_assert_int_eq(mempool_put(p, buf, T_LEN, &r), 0);
    st = child_move(name, r, fp, &rc);
    if (kill) {
        ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
                      "%s: child not killed (status %d)", fp, st);
    } else {
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                      "%s: child status %d", fp, st);
        ck_assert_int_eq(rc, -EIO);
    }
    ck_assert_int_ge(mempool_reap(p), 0);
    files = dir_count(p, &tmps);
    ck_assert_msg(tmps == 0 && files == 0, "%s: %d files (%d tmp) left", fp,
                  files, tmps);
    ck_assert_int_eq(mempool_check(p, why, sizeof why), 0);
    ck_assert_int_eq(mempool_get(p, r, &v), 0);
    ck_assert(!(v.flags & MEMPOOL_VIEW_DISK));
    ck_assert_int_eq(memcmp(v.data, buf, T_LEN), 0);
    ck_assert_int_eq(mempool_release(p, &v), 0);
    /* a later spill writes a good file */
    ck_assert_int_eq(mempool_move_to_disk(p, r, NULL), 0);
    files = dir_count(p, &tmps);
    ck_assert_int_eq(files, 1);
    ck_assert_int_eq(tmps, 0);
    ck_assert_int_eq(mempool_check(p, why, sizeof why), 0);
    ck_assert_int_eq(mempool_close(p), 0);
    p = open_pool(name, false);
    ck_assert_int_eq(mempool_get(p, r, &v), 0);
    ck_assert(v.flags & MEMPOOL_VIEW_DISK);
    ck_assert_int_eq(memcmp(v.data, buf, T_LEN), 0);
    ck_assert_int_eq(mempool_release(p, &v), 0);
    ck_assert_int_eq(mempool_close(p), 0);
    ck_assert_int_eq(mempool_destroy(name), 0);
    free(buf);
}
END_TEST
#endif

static Suite *spillfile_suite(void)
{
    Suite *s = suite_create("spillfile");
    TCase *tc = tcase_create("format");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_chunk_shift);
    tcase_add_test(tc, test_v1_read);
    tcase_add_test(tc, test_table_flip);
    suite_add_tcase(s, tc);
    tc = tcase_create("flips");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_flip_each_chunk, 0, 2);
    tcase_add_test(tc, test_get_flipped_chunk);
    suite_add_tcase(s, tc);
#ifdef MEMPOOL_FAILPOINTS
    tc = tcase_create("kills");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_kill_mid_file, 0,
                        (int)(sizeof kill_points / sizeof kill_points[0]));
    suite_add_tcase(s, tc);
#endif
    return s;
}

int main(void)
{
    return t_run_in_dir(spillfile_suite(), root, sizeof root, "spillfile");
}
