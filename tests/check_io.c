/* SPDX-License-Identifier: MIT */
/*
 * check_io.c - white-box tests of the spill file format and the I/O engine
 * (src/spill.h): crc32c, headers, both backends writing files that map back
 * byte for byte, many requests at once, durable mode, the io.write /
 * io.nospc / io.short failpoints, every way a file can be bad
 * (docs/scenarios.md S38, S40-S43) and the fallback to pwrite under a
 * seccomp filter that refuses io_uring_setup (S35, and S39 approximated
 * with ENOSYS).
 *
 * It links the library's objects (mempool_objects) to reach mempool__*
 * internals, so it has its own main() instead of helpers.c (which links the
 * shared library). Each test gets a private directory under a per-binary
 * mkdtemp() root that main() removes after the run, so a test that fails
 * before its teardown leaves nothing behind either.
 *
 * Backend modes of the loop tests: 0 = MP_IO_AUTO (io_uring where the
 * kernel allows it), 1 = MP_IO_PWRITE, 2 = MP_IO_AUTO with MEMPOOL_IO=pwrite.
 * Without io_uring on the machine, mode 0 runs with pwrite and the one
 * io_uring-only assertion is skipped with a note on stderr.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers_base.h"
#include "t_seccomp.h"
#include <mempool/mempool.h>
#include "io_impl.h"
#include "t_spillfile.h"

static char io_root[64];          /* per binary, removed by main() */
static char t_dir[128];           /* per test */
static int  t_dfd = -1;
static const uint64_t t_uuid[2] = { 0x0123456789abcdefull,
                                    0xfedcba9876543210ull };

/* ------------------------------------------------------------- helpers */

static void setup(void)
{
    snprintf(t_dir, sizeof t_dir, "%s/t-XXXXXX", io_root);
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
    unsetenv("MEMPOOL_IO");
}

static bool uring_available(void)
{
    static int state; /* 0 unknown, 1 yes, 2 no */
    struct io_uring r;

    if (state == 0) {
        state = io_uring_queue_init(2, &r, 0) == 0 ? 1 : 2;
        if (state == 1)
            io_uring_queue_exit(&r);
    }
    return state == 1;
}

static void fill(uint8_t *b, size_t len, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;

    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b[i] = (uint8_t)(x >> 24);
    }
}

static uint8_t *payload(size_t len, uint64_t seed)
{
    uint8_t *b = malloc(len ? len : 1);

    ck_assert_ptr_nonnull(b);
    fill(b, len, seed);
    return b;
}

/* Open an engine in backend mode @p m (see the file comment). */
static mp_io *open_mode(int m)
{
    mp_io *io = NULL;

    if (m == 2)
        setenv("MEMPOOL_IO", "pwrite", 1);
    ck_assert_int_eq(mempool__io_open(&io, m == 1 ? MP_IO_PWRITE : MP_IO_AUTO),
                     0);
    if (m == 2)
        unsetenv("MEMPOOL_IO");
    if (m != 0)
        ck_assert_str_eq(mempool__io_backend(io), "pwrite");
    else if (uring_available())
        ck_assert_str_eq(mempool__io_backend(io), "io_uring");
    else
        fprintf(stderr, "check_io: io_uring unavailable here; mode 0 runs "
                "with %s\n", mempool__io_backend(io));
    return io;
}

static void req_init(mp_io_req *r, int dfd, const char *name,
                     const void *buf, uint64_t len, uint32_t idx, bool durable)
{
    memset(r, 0, sizeof *r);
    r->dirfd = dfd;
    r->name = name;
    r->payload = buf;
    r->len = len;
    r->durable = durable;
    mempool__file_header(&r->hdr, t_uuid, idx, idx + 7, 42, 0, len);
}

/* Write one file synchronously. @return its result. */
static int write_one(mp_io *io, const char *name, const void *buf,
                     uint64_t len, uint32_t idx)
{
    mp_io_req r, *rp = &r;

    req_init(&r, t_dfd, name, buf, len, idx, false);
    ck_assert_int_eq(mempool__io_submit(io, &rp, 1), 0);
    ck_assert_int_eq(mempool__io_wait(io, &rp, 1), 0);
    return r.result;
}

/* Map @p name with every check and compare it with @p buf. */
static void check_file(const char *name, const uint8_t *buf, uint64_t len,
                       uint32_t idx)
{
    mp_file_map m;
    struct stat st;

    ck_assert_int_eq(fstatat(t_dfd, name, &st, AT_SYMLINK_NOFOLLOW), 0);
    ck_assert_uint_eq((uint64_t)st.st_size, MP_FILE_HDR + len);
    ck_assert_uint_eq(st.st_mode & 07777, 0600);
    ck_assert_int_eq(mempool__file_map(t_dfd, name, t_uuid, idx, idx + 7,
                                       true, &m), 0);
    ck_assert_uint_eq(m.len, len);
    ck_assert_uint_eq(m.type, 42);
    ck_assert_ptr_nonnull(m.data);
    ck_assert_msg(len == 0 || memcmp(m.data, buf, len) == 0,
                  "%s: payload differs", name);
    if (len == 0)
        ck_assert_ptr_null(m.map);
    mempool__file_unmap(&m);
}

static void assert_no_tmp(void)
{
    int tmps;

    t_sf_dir_entries(t_dfd, &tmps);
    ck_assert_int_eq(tmps, 0);
}

/* ------------------------------------------------------------- crc32c */

START_TEST(test_crc32c)
{
    static const char v[] = "123456789";
    uint8_t z[32], ff[32], inc[32], dec[32];
    uint8_t *big = payload(1 * MiB + 77, 3);

    ck_assert_uint_eq(mempool__crc32c(0, v, 9), 0xE3069283u);
    ck_assert_uint_eq(mempool__crc32c_sw(0, v, 9), 0xE3069283u);
    for (size_t cut = 0; cut <= 9; cut++)
        ck_assert_uint_eq(mempool__crc32c(mempool__crc32c(0, v, cut),
                                          v + cut, 9 - cut), 0xE3069283u);
    for (int i = 0; i < 32; i++) {      /* RFC 3720 B.4 vectors */
        z[i] = 0;
        ff[i] = 0xff;
        inc[i] = (uint8_t)i;
        dec[i] = (uint8_t)(31 - i);
    }
    ck_assert_uint_eq(mempool__crc32c(0, z, 32), 0x8A9136AAu);
    ck_assert_uint_eq(mempool__crc32c(0, ff, 32), 0x62A8AB43u);
    ck_assert_uint_eq(mempool__crc32c(0, inc, 32), 0x46DD794Eu);
    ck_assert_uint_eq(mempool__crc32c(0, dec, 32), 0x113FDB5Cu);
    ck_assert_uint_eq(mempool__crc32c(0, NULL, 0), 0);
    for (size_t off = 0; off < 9; off++)         /* every alignment */
        for (size_t len = 0; len < 300; len += 7)
            ck_assert_uint_eq(mempool__crc32c(0, big + off, len),
                              mempool__crc32c_sw(0, big + off, len));
    ck_assert_uint_eq(mempool__crc32c(0, big + 1, 1 * MiB + 76),
                      mempool__crc32c_sw(0, big + 1, 1 * MiB + 76));
    fprintf(stderr, "check_io: crc32c uses %s\n", mempool__crc32c_way());
    free(big);
}
END_TEST

START_TEST(test_header_layout)
{
    uint8_t buf[100];
    mp_file_header h;
    uint8_t *b = (uint8_t *)&h;
    uint32_t u32;
    uint64_t u64;

    fill(buf, sizeof buf, 9);
    mempool__file_header(&h, t_uuid, 5, 6, 7, MP_FILE_SAVED, 100);
    ck_assert_int_eq(memcmp(b, "MPSPILL1", 8), 0);
    memcpy(&u32, b + 8, 4);
    ck_assert_uint_eq(u32, 2);
    memcpy(&u32, b + 12, 4);
    ck_assert_uint_eq(u32, 4096);
    memcpy(&u64, b + 16, 8);
    ck_assert_uint_eq(u64, t_uuid[0]);
    memcpy(&u32, b + 36, 4);
    ck_assert_uint_eq(u32, 6);
    memcpy(&u64, b + 40, 8);
    ck_assert_uint_eq(u64, 100);
    memcpy(&u32, b + 52, 4);
    ck_assert_uint_eq(u32, MP_FILE_SAVED);
    memcpy(&u32, b + 56, 4);
    ck_assert_uint_eq(u32, 20);                  /* 1 MiB chunks */
    /* one chunk crc at 64; header crc: the block with bytes 60..63 zero */
    {
        uint8_t blk[MP_FILE_HDR], zero[MP_FILE_HDR] = { 0 };

        mempool__file_block(blk, &h, buf);
        memcpy(&u32, blk + 64, 4);
        ck_assert_uint_eq(u32, mempool__crc32c(0, buf, 100));
        ck_assert_int_eq(memcmp(blk + 68, zero, MP_FILE_HDR - 68), 0);
        memcpy(&u32, blk + 60, 4);
        memset(blk + 60, 0, 4);
        ck_assert_uint_eq(u32, mempool__crc32c(0, blk, sizeof blk));
    }
}
END_TEST

/* ------------------------------------------------------ writing files */

static const uint64_t t_sizes[] = { 0, 1, 4095, 4096, 1 * MiB + 3, 64 * MiB };
#define N_SIZES (sizeof t_sizes / sizeof t_sizes[0])

START_TEST(test_roundtrip)
{
    mp_io *io = open_mode(_i);

    for (unsigned i = 0; i < N_SIZES; i++) {
        char name[32];
        uint8_t *buf = payload(t_sizes[i], i + 100);

        snprintf(name, sizeof name, "f%u", i);
        ck_assert_int_eq(write_one(io, name, buf, t_sizes[i], i), 0);
        check_file(name, buf, t_sizes[i], i);
        free(buf);
    }
    assert_no_tmp();
    mempool__io_close(io);
}
END_TEST

/* Both backends write the same bytes. */
START_TEST(test_identical)
{
    mp_io *a = open_mode(0), *b = open_mode(1);
    uint64_t len = 17 * MiB + 5;
    uint8_t *buf = payload(len, 77);
    mp_file_map ma, mb;

    ck_assert_int_eq(write_one(a, "a", buf, len, 1), 0);
    ck_assert_int_eq(write_one(b, "b", buf, len, 1), 0);
    ck_assert_int_eq(mempool__file_map(t_dfd, "a", NULL, 0, 0, true, &ma), 0);
    ck_assert_int_eq(mempool__file_map(t_dfd, "b", NULL, 0, 0, true, &mb), 0);
    ck_assert_uint_eq(ma.maplen, mb.maplen);
    ck_assert_int_eq(memcmp(ma.map, mb.map, ma.maplen), 0);
    mempool__file_unmap(&ma);
    mempool__file_unmap(&mb);
    mempool__io_close(a);
    mempool__io_close(b);
    free(buf);
}
END_TEST

/* --------------------------------------------------- many at once */

#define T_THREADS 4
#define T_PER_THREAD 48

struct t_batch {
    mp_io     *io;
    unsigned   base;
    mp_io_req  reqs[T_PER_THREAD];
    char       names[T_PER_THREAD][24];
    uint8_t   *bufs[T_PER_THREAD];
    uint64_t   lens[T_PER_THREAD];
};

static uint64_t many_len(unsigned k)
{
    if (k % 97 == 13)
        return 33 * MiB + 1;             /* several payload chunks */
    return (uint64_t)(k * 7919u) % (300 * KiB);
}

/* Submit in groups of 8 (a group per call), then wait for all. */
static void *many_thread(void *arg)
{
    struct t_batch *b = arg;
    mp_io_req *rp[T_PER_THREAD];

    for (unsigned i = 0; i < T_PER_THREAD; i++) {
        unsigned k = b->base + i;

        b->lens[i] = many_len(k);
        b->bufs[i] = payload(b->lens[i], k);
        snprintf(b->names[i], sizeof b->names[i], "m%u", k);
        req_init(&b->reqs[i], t_dfd, b->names[i], b->bufs[i], b->lens[i],
                 k, false);
        rp[i] = &b->reqs[i];
    }
    for (unsigned i = 0; i < T_PER_THREAD; i += 8)
        if (mempool__io_submit(b->io, rp + i, 8) != 0)
            return (void *)1;
    mempool__io_wait(b->io, rp, T_PER_THREAD);
    return NULL;
}

START_TEST(test_many)
{
    mp_io *io = open_mode(_i);
    static struct t_batch b[T_THREADS];
    pthread_t th[T_THREADS];
    int tmps;

    for (unsigned t = 0; t < T_THREADS; t++) {
        b[t].io = io;
        b[t].base = t * T_PER_THREAD;
        ck_assert_int_eq(pthread_create(&th[t], NULL, many_thread, &b[t]), 0);
    }
    for (unsigned t = 0; t < T_THREADS; t++) {
        void *ret;

        ck_assert_int_eq(pthread_join(th[t], &ret), 0);
        ck_assert_ptr_null(ret);
    }
    ck_assert_int_eq(mempool__io_drain(io), 0);
    for (unsigned t = 0; t < T_THREADS; t++)
        for (unsigned i = 0; i < T_PER_THREAD; i++) {
            ck_assert_int_eq(b[t].reqs[i].result, 0);
            check_file(b[t].names[i], b[t].bufs[i], b[t].lens[i],
                       b[t].base + i);
            free(b[t].bufs[i]);
        }
    ck_assert_int_eq(t_sf_dir_entries(t_dfd, &tmps), T_THREADS * T_PER_THREAD);
    ck_assert_int_eq(tmps, 0);
    mempool__io_close(io);
}
END_TEST

/* One submit of more requests than a batch holds, then drain only. */
START_TEST(test_drain)
{
    enum { N = 3 * MP_IO_BATCH + 5 };
    mp_io *io = open_mode(_i);
    static mp_io_req reqs[N];
    mp_io_req *rp[N];
    static char names[N][16];
    uint8_t *buf = payload(70 * KiB, 5);

    for (unsigned i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "d%u", i);
        req_init(&reqs[i], t_dfd, names[i], buf, (i * 131u) % (70 * KiB), i,
                 false);
        rp[i] = &reqs[i];
    }
    ck_assert_int_eq(mempool__io_submit(io, rp, N), 0);
    ck_assert_int_eq(mempool__io_drain(io), 0);
    for (unsigned i = 0; i < N; i++) {
        ck_assert_int_eq(reqs[i].done, 1);
        ck_assert_int_eq(reqs[i].result, 0);
        check_file(names[i], buf, reqs[i].len, i);
    }
    mempool__io_close(io);
    free(buf);
}
END_TEST

START_TEST(test_durable)
{
    mp_io *io = open_mode(_i);
    uint8_t *buf = payload(2 * MiB + 9, 11);
    mp_io_req r[2], *rp[2] = { &r[0], &r[1] };
    int cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    req_init(&r[0], t_dfd, "dur", buf, 2 * MiB + 9, 3, true);
    ck_assert_int_ge(cwd, 0);
    ck_assert_int_eq(chdir(t_dir), 0);          /* AT_FDCWD as dirfd */
    req_init(&r[1], AT_FDCWD, "cwd", buf, 5, 4, true);
    ck_assert_int_eq(mempool__io_submit(io, rp, 2), 0);
    ck_assert_int_eq(mempool__io_wait(io, rp, 2), 0);
    ck_assert_int_eq(r[0].result, 0);
    ck_assert_int_eq(r[1].result, 0);
    ck_assert_int_eq(fchdir(cwd), 0);
    close(cwd);
    ck_assert_uint_gt(r[0].ns, 0);
    check_file("dur", buf, 2 * MiB + 9, 3);
    check_file("cwd", buf, 5, 4);
    assert_no_tmp();
    mempool__io_close(io);
    free(buf);
}
END_TEST

START_TEST(test_bad_requests)
{
    static const char *bad[] = { "", "a/b", ".", "..", NULL };
    mp_io *io = open_mode(1), *none = NULL;
    char longname[NAME_MAX + 1];
    mp_io_req r, *rp = &r;
    uint8_t b = 1;
    int tmps;

    ck_assert_int_eq(mempool__io_open(&none, 7), -EINVAL);
    ck_assert_int_eq(mempool__io_open(NULL, MP_IO_AUTO), -EINVAL);
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        req_init(&r, t_dfd, bad[i], &b, 1, 0, false);
        ck_assert_int_eq(mempool__io_submit(io, &rp, 1), -EINVAL);
    }
    memset(longname, 'x', NAME_MAX - 3);        /* no room for ".tmp" */
    longname[NAME_MAX - 3] = 0;
    req_init(&r, t_dfd, longname, &b, 1, 0, false);
    ck_assert_int_eq(mempool__io_submit(io, &rp, 1), -EINVAL);
    req_init(&r, t_dfd, "ok", &b, 1, 0, false);
    r.payload = NULL;
    ck_assert_int_eq(mempool__io_submit(io, &rp, 1), -EINVAL);
    req_init(&r, -5, "ok", &b, 1, 0, false);
    ck_assert_int_eq(mempool__io_submit(io, &rp, 1), -EINVAL);
    ck_assert_int_eq(mempool__io_submit(io, &rp, 0), 0);
    ck_assert_int_eq(mempool__io_drain(io), 0);
    ck_assert_int_eq(t_sf_dir_entries(t_dfd, &tmps), 0);
    mempool__io_close(io);
}
END_TEST

/* A stale "<name>.tmp" we did not create: -EEXIST, and it is left alone. */
START_TEST(test_stale_tmp)
{
    mp_io *io = open_mode(_i);
    uint8_t buf[10] = { 1 }, got[4];
    int fd = openat(t_dfd, "s.tmp", O_WRONLY | O_CREAT | O_EXCL, 0600);

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "old!", 4), 4);
    close(fd);
    ck_assert_int_eq(write_one(io, "s", buf, sizeof buf, 1), -EEXIST);
    fd = openat(t_dfd, "s.tmp", O_RDONLY);
    ck_assert_int_eq(read(fd, got, 4), 4);
    ck_assert_int_eq(memcmp(got, "old!", 4), 0);
    close(fd);
    ck_assert_int_eq(faccessat(t_dfd, "s", F_OK, 0), -1);
    mempool__io_close(io);
}
END_TEST

/* -------------------------------------------------------- failpoints */

static void fail_all(int mode, const char *fp, int want)
{
    static const uint64_t lens[] = { 0, 1, 5 * MiB, 20 * MiB + 1 };
    uint8_t *buf = payload(20 * MiB + 1, 1);
    mp_io_req r[4], *rp[4];
    char names[4][8];
    mp_io *io;
    int tmps;

    setenv("MEMPOOL_FAILPOINT", fp, 1);
    io = open_mode(mode);
    for (unsigned i = 0; i < 4; i++) {
        snprintf(names[i], sizeof names[i], "x%u", i);
        req_init(&r[i], t_dfd, names[i], buf, lens[i], i, i == 3);
        rp[i] = &r[i];
    }
    ck_assert_int_eq(mempool__io_submit(io, rp, 4), 0);
    ck_assert_int_eq(mempool__io_wait(io, rp, 4), 0);
    for (unsigned i = 0; i < 4; i++)
        ck_assert_int_eq(r[i].result, want);
    ck_assert_int_eq(t_sf_dir_entries(t_dfd, &tmps), 0); /* no file, no .tmp */
    mempool__io_close(io);
    free(buf);
}

START_TEST(test_fp_write)
{
    fail_all(_i, "io.write", -EIO);
}
END_TEST

START_TEST(test_fp_nospc)
{
    fail_all(_i, "alloc.after_claim, io.nospc", -ENOSPC);
}
END_TEST

START_TEST(test_fp_short)
{
    static const uint64_t lens[] = { 0, 1, 4095, 4096, 4097, 1 * MiB + 3 };
    mp_io *io;

    setenv("MEMPOOL_FAILPOINT", "io.short", 1);
    io = open_mode(_i);
    for (unsigned i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        char name[16];
        uint8_t *buf = payload(lens[i], i);

        snprintf(name, sizeof name, "s%u", i);
        ck_assert_int_eq(write_one(io, name, buf, lens[i], i), 0);
        check_file(name, buf, lens[i], i);
        free(buf);
    }
    /* 4097: 1 continuation; 1 MiB + 3: a 1 MiB chunk (255 of them), then
     * a 3-byte chunk */
    ck_assert_uint_ge(mempool__io_resubmits(io), 256);
    assert_no_tmp();
    mempool__io_close(io);
}
END_TEST

/* A name list naming nothing of ours changes nothing. */
START_TEST(test_fp_other)
{
    uint8_t *buf = payload(9000, 2);
    mp_io *io;

    setenv("MEMPOOL_FAILPOINT", "io.writex,xio.short,io", 1);
    io = open_mode(_i);
    ck_assert_int_eq(write_one(io, "o", buf, 9000, 1), 0);
    ck_assert_uint_eq(mempool__io_resubmits(io), 0);
    check_file("o", buf, 9000, 1);
    mempool__io_close(io);
    free(buf);
}
END_TEST

/* The ring breaks in the middle of a batch (io.ring, mode 0): the engine
 * waits for what the kernel took, finishes with pwrite and stays there. */
START_TEST(test_fp_ring)
{
    enum { N = 40 };
    uint64_t len = 5 * MiB + 1;
    uint8_t *buf = payload(len, 6);
    static mp_io_req r[N];
    static char names[N][8];
    mp_io_req *rp[N];
    mp_io *io;

    setenv("MEMPOOL_FAILPOINT", "io.ring", 1);
    io = open_mode(0);
    for (unsigned i = 0; i < N; i++) {      /* 3 writes each: > 64 */
        snprintf(names[i], sizeof names[i], "r%u", i);
        req_init(&r[i], t_dfd, names[i], buf, len, i, false);
        rp[i] = &r[i];
    }
    ck_assert_int_eq(mempool__io_submit(io, rp, N), 0);
    ck_assert_int_eq(mempool__io_wait(io, rp, N), 0);
    ck_assert_str_eq(mempool__io_backend(io), "pwrite");
    for (unsigned i = 0; i < N; i++) {
        ck_assert_int_eq(r[i].result, 0);
        check_file(names[i], buf, len, i);
    }
    ck_assert_int_eq(write_one(io, "after", buf, 10, 99), 0);
    check_file("after", buf, 10, 99);
    assert_no_tmp();
    mempool__io_close(io);
    free(buf);
}
END_TEST

/* ------------------------------------------------------ bad files */

#define T_LEN (1 * MiB + 3)

/* Write "good" (T_LEN bytes, idx 1) with pwrite. */
static uint8_t *write_good(void)
{
    mp_io *io = open_mode(1);
    uint8_t *buf = payload(T_LEN, 8);

    ck_assert_int_eq(write_one(io, "good", buf, T_LEN, 1), 0);
    mempool__io_close(io);
    return buf;
}

static int map_good(bool verify)
{
    mp_file_map m;
    int ret = mempool__file_map(t_dfd, "good", t_uuid, 1, 8, verify, &m);

    if (ret == 0)
        mempool__file_unmap(&m);
    else
        ck_assert_ptr_null(m.map);
    return ret;
}

static void flip_bit(uint64_t off, int bit)
{
    int fd = openat(t_dfd, "good", O_RDWR);
    uint8_t b;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, &b, 1, (off_t)off), 1);
    b ^= (uint8_t)(1u << bit);
    ck_assert_int_eq(pwrite(fd, &b, 1, (off_t)off), 1);
    close(fd);
}

START_TEST(test_map_good)
{
    uint8_t *buf = write_good();
    mp_file_map m;

    ck_assert_int_eq(map_good(true), 0);
    ck_assert_int_eq(map_good(false), 0);
    ck_assert_int_eq(mempool__file_map(t_dfd, "good", NULL, 0, 0, true, &m),
                     0);
    ck_assert_uint_eq(m.hdr.idx, 1);
    ck_assert_uint_eq(m.maplen, MP_FILE_HDR + T_LEN);
    ck_assert_ptr_eq(m.data, (uint8_t *)m.map + MP_FILE_HDR);
    /* unlinking a mapped file leaves the mapping readable */
    ck_assert_int_eq(unlinkat(t_dfd, "good", 0), 0);
    ck_assert_int_eq(memcmp(m.data, buf, T_LEN), 0);
    mempool__file_unmap(&m);
    mempool__file_unmap(&m);                     /* twice is harmless */
    ck_assert_ptr_null(m.map);
    free(buf);
}
END_TEST

START_TEST(test_map_truncated)
{
    static const off_t sizes[] = { 0, 1, 100, 4095, 4096, 4097,
                                   MP_FILE_HDR + T_LEN - 1,
                                   MP_FILE_HDR + T_LEN + 1 };
    uint8_t *buf = write_good();
    int fd = openat(t_dfd, "good", O_RDWR);

    ck_assert_int_ge(fd, 0);
    for (unsigned i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        ck_assert_int_eq(ftruncate(fd, sizes[i]), 0);
        ck_assert_int_eq(map_good(true), MEMPOOL_ECORRUPT);
        ck_assert_int_eq(map_good(false), MEMPOOL_ECORRUPT);
    }
    close(fd);
    free(buf);
}
END_TEST

START_TEST(test_map_payload_flip)
{
    static const uint64_t offs[] = { 0, 4095, 4096, T_LEN / 2, T_LEN - 1 };
    uint8_t *buf = write_good();

    for (unsigned i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        flip_bit(MP_FILE_HDR + offs[i], (int)i % 8);
        ck_assert_int_eq(map_good(true), MEMPOOL_ECORRUPT);
        ck_assert_int_eq(map_good(false), 0);    /* documented: no verify */
        flip_bit(MP_FILE_HDR + offs[i], (int)i % 8);
        ck_assert_int_eq(map_good(true), 0);
    }
    free(buf);
}
END_TEST

START_TEST(test_map_header_flip)
{
    static const uint64_t offs[] = { 0, 7, 8, 12, 16, 31, 32, 36, 40, 47, 48,
                                     52, 56, 60, 63, 64, 2000, 4095 };
    uint8_t *buf = write_good();

    for (unsigned i = 0; i < sizeof offs / sizeof offs[0]; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            flip_bit(offs[i], bit);
            ck_assert_msg(map_good(false) == MEMPOOL_ECORRUPT,
                          "flip at %u bit %d not caught", (unsigned)offs[i],
                          bit);
            flip_bit(offs[i], bit);
        }
    }
    ck_assert_int_eq(map_good(true), 0);
    free(buf);
}
END_TEST

START_TEST(test_map_identity)
{
    uint8_t *buf = write_good();
    uint64_t other[2] = { t_uuid[0], t_uuid[1] ^ 1 };
    mp_file_map m;

    ck_assert_int_eq(mempool__file_map(t_dfd, "good", other, 1, 8, true, &m),
                     MEMPOOL_ECORRUPT);
    other[0] ^= 1;
    other[1] ^= 1;
    ck_assert_int_eq(mempool__file_map(t_dfd, "good", other, 1, 8, true, &m),
                     MEMPOOL_ECORRUPT);
    ck_assert_int_eq(mempool__file_map(t_dfd, "good", t_uuid, 2, 8, true, &m),
                     MEMPOOL_ECORRUPT);          /* wrong index */
    ck_assert_int_eq(mempool__file_map(t_dfd, "good", t_uuid, 1, 9, true, &m),
                     MEMPOOL_ECORRUPT);          /* stale generation */
    ck_assert_int_eq(map_good(true), 0);
    free(buf);
}
END_TEST

/* Rewrite the header block of "good" after @p edit, with a valid crc. */
static void forge(void (*edit)(mp_file_header *h))
{
    int fd = openat(t_dfd, "good", O_RDWR);
    uint8_t blk[MP_FILE_HDR];
    mp_file_header h;

    ck_assert_int_eq(pread(fd, blk, sizeof blk, 0), (ssize_t)sizeof blk);
    memcpy(&h, blk, sizeof h);
    edit(&h);
    h.header_crc = 0;
    memcpy(blk, &h, sizeof h);
    h.header_crc = mempool__crc32c(0, blk, sizeof blk);
    memcpy(blk, &h, sizeof h);
    ck_assert_int_eq(pwrite(fd, blk, sizeof blk, 0), (ssize_t)sizeof blk);
    close(fd);
}

static void ed_version(mp_file_header *h) { h->version = 3; }
static void ed_shift(mp_file_header *h) { h->chunk_shift = 21; }
static void ed_hdrbytes(mp_file_header *h) { h->header_bytes = 8192; }
static void ed_huge(mp_file_header *h) { h->len = UINT64_MAX - 100; }
static void ed_longer(mp_file_header *h) { h->len += 4096; }
static void ed_none(mp_file_header *h) { (void)h; }

START_TEST(test_map_forged)
{
    static void (*const edits[])(mp_file_header *) = {
        ed_version, ed_hdrbytes, ed_huge, ed_longer, ed_shift };
    uint8_t *buf = write_good();

    forge(ed_none);                              /* the forger is right */
    ck_assert_int_eq(map_good(true), 0);
    for (unsigned i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        mp_io *io = open_mode(1);

        unlinkat(t_dfd, "good", 0);
        ck_assert_int_eq(write_one(io, "good", buf, T_LEN, 1), 0);
        mempool__io_close(io);
        forge(edits[i]);
        ck_assert_int_eq(map_good(false), MEMPOOL_ECORRUPT);
    }
    free(buf);
}
END_TEST

START_TEST(test_map_symlink)
{
    uint8_t *buf = write_good();
    mp_file_map m;

    ck_assert_int_eq(symlinkat("good", t_dfd, "link"), 0);
    ck_assert_int_eq(symlinkat("/etc/passwd", t_dfd, "passwd"), 0);
    ck_assert_int_eq(mempool__file_map(t_dfd, "link", t_uuid, 1, 8, true, &m),
                     MEMPOOL_ECORRUPT);
    ck_assert_int_eq(mempool__file_map(t_dfd, "passwd", NULL, 0, 0, true, &m),
                     MEMPOOL_ECORRUPT);
    ck_assert_ptr_null(m.map);
    free(buf);
}
END_TEST

START_TEST(test_map_missing_and_odd)
{
    mp_file_map m;

    ck_assert_int_eq(mempool__file_map(t_dfd, "nope", t_uuid, 1, 8, true, &m),
                     -ENOENT);
    ck_assert_int_eq(mkdirat(t_dfd, "dir", 0700), 0);
    ck_assert_int_eq(mempool__file_map(t_dfd, "dir", NULL, 0, 0, true, &m),
                     MEMPOOL_ECORRUPT);
    ck_assert_int_eq(mkfifoat(t_dfd, "fifo", 0600), 0);  /* must not block */
    ck_assert_int_eq(mempool__file_map(t_dfd, "fifo", NULL, 0, 0, true, &m),
                     MEMPOOL_ECORRUPT);
    ck_assert_int_eq(mempool__file_map(t_dfd, "", NULL, 0, 0, true, &m),
                     -EINVAL);
    ck_assert_int_eq(mempool__file_map(t_dfd, "x", NULL, 0, 0, true, NULL),
                     -EINVAL);
}
END_TEST

START_TEST(test_map_empty)
{
    mp_io *io = open_mode(1);
    mp_file_map m;

    ck_assert_int_eq(write_one(io, "e", "", 0, 2), 0);
    ck_assert_int_eq(mempool__file_map(t_dfd, "e", t_uuid, 2, 9, true, &m), 0);
    ck_assert_ptr_null(m.map);
    ck_assert_uint_eq(m.maplen, 0);
    ck_assert_ptr_nonnull(m.data);
    ck_assert_uint_eq(m.len, 0);
    mempool__file_unmap(&m);
    mempool__io_close(io);
}
END_TEST

/* ------------------------------------------------------- seccomp */

#define C_ASSERT(c) \
    do { \
        if (!(c)) { \
            fprintf(stderr, "seccomp child: %s:%d: failed: %s\n", __FILE__, \
                    __LINE__, #c); \
            _exit(1); \
        } \
    } while (0)

#if defined(__x86_64__)
static void seccomp_child(int err)
{
    uint64_t len = 1 * MiB + 3;
    uint8_t *buf = malloc(len);
    struct io_uring r;
    mp_io *io = NULL;
    mp_io_req q, *qp = &q;
    mp_file_map m;

    C_ASSERT(buf);
    fill(buf, len, 4);
    C_ASSERT(t_deny_uring_setup(err) == 0);
    C_ASSERT(io_uring_queue_init(2, &r, 0) == -err);   /* filter works */
    C_ASSERT(mempool__io_open(&io, MP_IO_AUTO) == 0);
    C_ASSERT(strcmp(mempool__io_backend(io), "pwrite") == 0);
    req_init(&q, t_dfd, "sc", buf, len, 3, true);
    C_ASSERT(mempool__io_submit(io, &qp, 1) == 0);
    C_ASSERT(mempool__io_wait(io, &qp, 1) == 0);
    C_ASSERT(q.result == 0);
    C_ASSERT(mempool__file_map(t_dfd, "sc", t_uuid, 3, 10, true, &m) == 0);
    C_ASSERT(m.len == len && memcmp(m.data, buf, len) == 0);
    mempool__file_unmap(&m);
    mempool__io_close(io);
    free(buf);
    _exit(0);
}
#endif

/* Loop 0: EPERM (Docker's profile, io_uring_disabled); 1: ENOSYS (an old
 * kernel or qemu-user). Forks so the filter never outlives the case, even
 * with CK_FORK=no. */
START_TEST(test_seccomp_fallback)
{
#if defined(__x86_64__)
    int err = _i == 0 ? EPERM : ENOSYS, st;
    pid_t pid = fork();

    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        seccomp_child(err);
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                  "seccomp child failed (status 0x%x)", st);
    assert_no_tmp();
#else
    fprintf(stderr, "check_io: seccomp case is x86-64 only; skipped\n");
#endif
}
END_TEST

/* ------------------------------------------------------------- main */

static TCase *tcase(Suite *s, const char *name, double timeout)
{
    TCase *tc = tcase_create(name);

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, timeout);
    suite_add_tcase(s, tc);
    return tc;
}

static Suite *io_suite(void)
{
    Suite *s = suite_create("io");
    TCase *tc = tcase(s, "format", 60);

    tcase_add_test(tc, test_crc32c);
    tcase_add_test(tc, test_header_layout);
    tc = tcase(s, "write", 240);
    tcase_add_loop_test(tc, test_roundtrip, 0, 3);
    tcase_add_test(tc, test_identical);
    tcase_add_loop_test(tc, test_many, 0, 2);
    tcase_add_loop_test(tc, test_drain, 0, 2);
    tcase_add_loop_test(tc, test_durable, 0, 2);
    tcase_add_test(tc, test_bad_requests);
    tcase_add_loop_test(tc, test_stale_tmp, 0, 2);
    tc = tcase(s, "failpoints", 120);
    tcase_add_loop_test(tc, test_fp_write, 0, 2);
    tcase_add_loop_test(tc, test_fp_nospc, 0, 2);
    tcase_add_loop_test(tc, test_fp_short, 0, 2);
    tcase_add_loop_test(tc, test_fp_other, 0, 2);
    tcase_add_test(tc, test_fp_ring);
    tc = tcase(s, "files", 60);
    tcase_add_test(tc, test_map_good);
    tcase_add_test(tc, test_map_truncated);
    tcase_add_test(tc, test_map_payload_flip);
    tcase_add_test(tc, test_map_header_flip);
    tcase_add_test(tc, test_map_identity);
    tcase_add_test(tc, test_map_forged);
    tcase_add_test(tc, test_map_symlink);
    tcase_add_test(tc, test_map_missing_and_odd);
    tcase_add_test(tc, test_map_empty);
    tc = tcase(s, "seccomp", 60);
    tcase_add_loop_test(tc, test_seccomp_fallback, 0, 2);
    return s;
}

int main(void)
{
    SRunner *sr;
    int failed;

    snprintf(io_root, sizeof io_root, "/tmp/mempool-check-io-XXXXXX");
    if (!mkdtemp(io_root)) {
        perror("check_io: mkdtemp");
        return 77;
    }
    if (!uring_available())
        fprintf(stderr, "check_io: io_uring unavailable: io_uring "
                "assertions skipped, pwrite covers every case\n");
    sr = srunner_create(io_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    t_rm_tree(io_root);
    return failed ? 1 : 0;
}
