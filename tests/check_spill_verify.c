/* SPDX-License-Identifier: MIT */
/*
 * check_spill_verify.c - a verifying map of a spill file catches a flipped
 * byte wherever the crc32c code takes a different path: in the last,
 * partial chunk of a payload, at the edges of crc32c_fold.c's 128-byte
 * rounds, its 16-byte blocks and its byte tail, and in a last chunk too
 * short for the fold way (the sse4.2 or table way then). Each file is
 * written by each backend, so the writer's checksums (computed chunk by
 * chunk by the engine) and the reader's agree on every path, and a flipped
 * byte is MEMPOOL_ECORRUPT - never data - through mempool__file_map() and
 * through a fresh handle's mempool_get() of the spilled object; put back,
 * the exact bytes come back. Without verification the same file maps (as
 * documented for MEMPOOL_OPEN_NOVERIFY).
 *
 * White-box (calls mempool__* internals), so it links the library's objects.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers_base.h"
#include <mempool/mempool.h>
#include "io_impl.h"
#include "t_spillfile.h"

static char root[64];                    /* per binary, removed by main() */
static char t_dir[128];                  /* per test */
static int  t_dfd = -1;
static const uint64_t t_uuid[2] = { 0x0123456789abcdefull,
                                    0xfedcba9876543210ull };

/* Payload lengths: the last chunk 1000 bytes (fold rounds, 16-byte
 * blocks and 8 tail bytes), 300 (one fold round plus blocks), 200 (below
 * MP_CRC_FOLD_MIN: the sse4.2/table way), 4095 (one byte short of a page),
 * and whole chunks only. */
static const uint64_t lens[] = { 3 * MiB + 1000, 2 * MiB + 300, MiB + 200,
                                 MiB + 4095, 2 * MiB };
#define N_LENS (sizeof lens / sizeof lens[0])

static void setup(void)
{
    t_sf_dir_make(root, t_dir, sizeof t_dir, &t_dfd);
}

static void teardown(void)
{
    t_sf_dir_drop(t_dir, &t_dfd);
}

/* Payload offsets to flip in the last chunk of @p len (start of the chunk
 * @p from): its first byte, the edges of 128-byte rounds and 16-byte
 * blocks, and its last bytes. @return how many. */
static unsigned tail_offsets(uint64_t len, uint64_t *offs)
{
    static const uint64_t rel[] = { 0, 1, 127, 128, 255, 256, 767, 895,
                                    896, 911, 912, 991, 992, 999, 4094 };
    uint64_t from = (len - 1) & ~(MiB - 1);
    unsigned n = 0;

    for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++)
        if (from + rel[i] < len)
            offs[n++] = from + rel[i];
    offs[n++] = len - 1;
    offs[n++] = from - 1;               /* the chunk before, its end */
    return n;
}

/* _i: length index * 2 + backend (0 auto, 1 pwrite). */
START_TEST(test_flip_last_chunk)
{
    uint64_t len = lens[_i / 2], offs[24];
    uint8_t *buf = t_sf_pattern(len, 77 + (uint64_t)_i);
    unsigned n = tail_offsets(len, offs);

    ck_assert_int_eq(t_sf_write(t_dfd, _i % 2 ? MP_IO_PWRITE : MP_IO_AUTO,
                                "f", buf, len, t_uuid), 0);
    t_sf_flips_caught(t_dfd, "f", t_uuid, buf, len, offs, n);
    free(buf);
}
END_TEST

static mempool *open_pool(const char *name, bool create)
{
    return t_sf_pool_open(name, root, create);
}

/* A fresh handle's get of the spilled object: MEMPOOL_ECORRUPT and no
 * data while a byte is flipped, the exact bytes once put back. */
static void get_expect(const char *name, mempool_dref r, const uint8_t *buf,
                       uint64_t len, bool corrupt)
{
    mempool *q = open_pool(name, false);
    mempool_view v;

    memset(&v, 0, sizeof v);
    if (corrupt) {
        ck_assert_int_eq(mempool_get(q, r, &v), MEMPOOL_ECORRUPT);
        ck_assert_ptr_null(v.data);
    } else {
        ck_assert_int_eq(mempool_get(q, r, &v), 0);
        ck_assert(v.flags & MEMPOOL_VIEW_DISK);
        ck_assert_uint_eq(v.len, len);
        ck_assert_int_eq(memcmp(v.data, buf, len), 0);
        ck_assert_int_eq(mempool_release(q, &v), 0);
    }
    ck_assert_int_eq(mempool_close(q), 0);
}

START_TEST(test_get_flipped_last_chunk)
{
    uint64_t len = lens[0], offs[24];
    uint8_t *buf = t_sf_pattern(len, 5);
    unsigned n = tail_offsets(len, offs);
    mempool_fileref f;
    char name[64], dir[sizeof f.path];
    mempool_dref r;
    mempool *p;
    int dfd;

    snprintf(name, sizeof name, "t-spillverify-%d", (int)getpid());
    p = open_pool(name, true);
    ck_assert_int_eq(mempool_put(p, buf, len, &r), 0);
    ck_assert_int_eq(mempool_move_to_disk(p, r, &f), 0);
    snprintf(dir, sizeof dir, "%s", f.path);
    *strrchr(dir, '/') = '\0';
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_ge(dfd, 0);
    for (unsigned i = 0; i < n; i += 3) {
        t_sf_flip(dfd, strrchr(f.path, '/') + 1, MP_FILE_HDR + offs[i]);
        get_expect(name, r, buf, len, true);
        t_sf_flip(dfd, strrchr(f.path, '/') + 1, MP_FILE_HDR + offs[i]);
        get_expect(name, r, buf, len, false);
    }
    close(dfd);
    ck_assert_int_eq(mempool_close(p), 0);
    ck_assert_int_eq(mempool_destroy(name), 0);
    free(buf);
}
END_TEST

static Suite *verify_suite(void)
{
    Suite *s = suite_create("spill_verify");
    TCase *tc = tcase_create("flips");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_flip_last_chunk, 0, (int)(2 * N_LENS));
    tcase_add_test(tc, test_get_flipped_last_chunk);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return t_run_in_dir(verify_suite(), root, sizeof root, "spillverify");
}
