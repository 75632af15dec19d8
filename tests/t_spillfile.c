/* SPDX-License-Identifier: MIT */
/*
 * t_spillfile.c - helpers of the white-box spill file suites (see
 * t_spillfile.h).
 */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers_base.h"
#include <mempool/mempool.h>
#include "io_impl.h"
#include "t_spillfile.h"

void t_sf_dir_make(const char *root, char *dir, size_t len, int *dfd)
{
    snprintf(dir, len, "%s/t-XXXXXX", root);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    *dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_ge(*dfd, 0);
}

void t_sf_dir_drop(const char *dir, int *dfd)
{
    close(*dfd);
    *dfd = -1;
    t_rm_tree(dir);
}

uint8_t *t_sf_pattern(size_t len, uint64_t seed)
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

int t_sf_write(int dfd, int mode, const char *name, const uint8_t *buf,
               uint64_t len, const uint64_t uuid[2])
{
    mp_io *io;
    mp_io_req r, *rp = &r;

    ck_assert_int_eq(mempool__io_open(&io, mode), 0);
    memset(&r, 0, sizeof r);
    r.dirfd = dfd;
    r.name = name;
    r.payload = buf;
    r.len = len;
    mempool__file_header(&r.hdr, uuid, 3, 4, 5, 0, len);
    ck_assert_int_eq(mempool__io_submit(io, &rp, 1), 0);
    ck_assert_int_eq(mempool__io_wait(io, &rp, 1), 0);
    mempool__io_close(io);
    return r.result;
}

int t_sf_map(int dfd, const char *name, const uint64_t uuid[2], bool verify,
             const uint8_t *want, uint64_t len)
{
    mp_file_map m;
    int rc = mempool__file_map(dfd, name, uuid, 3, 4, verify, &m);

    if (rc == 0) {
        ck_assert_uint_eq(m.len, len);
        if (verify && len)
            ck_assert_int_eq(memcmp(m.data, want, len), 0);
        mempool__file_unmap(&m);
    }
    return rc;
}

void t_sf_flip(int dfd, const char *name, uint64_t off)
{
    int fd = openat(dfd, name, O_RDWR | O_CLOEXEC);
    uint8_t b;

    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pread(fd, &b, 1, (off_t)off), 1);
    b ^= 0x5a;
    ck_assert_int_eq(pwrite(fd, &b, 1, (off_t)off), 1);
    close(fd);
}

void t_sf_flips_caught(int dfd, const char *name, const uint64_t uuid[2],
                       const uint8_t *want, uint64_t len,
                       const uint64_t *offs, unsigned n)
{
    ck_assert_int_eq(t_sf_map(dfd, name, uuid, true, want, len), 0);
    for (unsigned i = 0; i < n; i++) {
        t_sf_flip(dfd, name, MP_FILE_HDR + offs[i]);
        ck_assert_msg(t_sf_map(dfd, name, uuid, true, want, len) ==
                          MEMPOOL_ECORRUPT,
                      "length %llu: flip at payload byte %llu not caught",
                      (unsigned long long)len, (unsigned long long)offs[i]);
        ck_assert_int_eq(t_sf_map(dfd, name, uuid, false, want, len), 0);
        t_sf_flip(dfd, name, MP_FILE_HDR + offs[i]);
        ck_assert_int_eq(t_sf_map(dfd, name, uuid, true, want, len), 0);
    }
}

struct mempool *t_sf_pool_open(const char *name, const char *spill_dir,
                               bool create)
{
    mempool_options o;
    mempool *p = NULL;

    mempool_options_init(&o);
    o.arena_bytes = 64 * MiB;
    o.spill_dir = spill_dir;
    o.spiller = 0;
    o.flags = create ? MEMPOOL_OPEN_CREATE | MEMPOOL_OPEN_EXCL : 0;
    ck_assert_int_eq(mempool_open(name, &o, &p), 0);
    return p;
}

int t_sf_dir_entries(int dfd, int *tmps)
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
