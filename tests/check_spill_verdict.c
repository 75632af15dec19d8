/* SPDX-License-Identifier: MIT */
/*
 * check_spill_verdict.c - a handle remembers the files it checked whole
 * (mapcache.c's verdicts, keyed by spill.h's mp_file_id) and maps them
 * again without the payload pass - but never a file changed since: a
 * flipped byte written after the check (which moves the file's ctime) is
 * still MEMPOOL_ECORRUPT, through mempool__file_map_seen() and through
 * the public mempool_get_file(). A file whose ctime is younger than
 * MP_FILE_SETTLE_NS when it is checked gets no verdict.
 *
 * White-box (calls mempool__* internals), so it links the library's objects.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "helpers_base.h"
#include <mempool/mempool.h>
#include "io_impl.h"
#include "t_spillfile.h"

static char root[64];                    /* per binary, removed by main() */
static char t_dir[128];                  /* per test */
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
}

/* Past MP_FILE_SETTLE_NS, so the file's ctime is old enough for a verdict
 * and a change after now gets a later ctime even with coarse timestamps. */
static void settle(void)
{
    struct timespec ts = { 0, 3 * MP_FILE_SETTLE_NS / 2 };

    nanosleep(&ts, NULL);
}

/* The seen() hook of the test: one remembered id. */
struct memo {
    mp_file_id id;
    bool       have;
    unsigned   asked;
};

static bool memo_seen(void *ctx, const mp_file_id *id)
{
    struct memo *m = ctx;

    m->asked++;
    return m->have && memcmp(&m->id, id, sizeof *id) == 0;
}

static int map_seen(struct memo *memo, bool verify, mp_file_map *out)
{
    return mempool__file_map_seen(t_dfd, "f", t_uuid, 3, 4, verify,
                                  memo_seen, memo, out);
}

START_TEST(test_seen_skips_only_unchanged)
{
    uint64_t len = 3 * MiB + 77;
    uint8_t *buf = t_sf_pattern(len, 9);
    struct memo memo = { .have = false };
    mp_file_map m;

    ck_assert_int_eq(t_sf_write(t_dfd, MP_IO_AUTO, "f", buf, len, t_uuid), 0);
    settle();
    /* Not seen: checked whole, and settled, so a verdict may be kept. */
    ck_assert_int_eq(map_seen(&memo, true, &m), 0);
    ck_assert(m.checked);
    ck_assert(m.settled);
    ck_assert_uint_eq(memo.asked, 1);
    memo.id = m.id;
    memo.have = true;
    mempool__file_unmap(&m);
    /* Seen, unchanged: mapped without the payload pass, same bytes. */
    ck_assert_int_eq(map_seen(&memo, true, &m), 0);
    ck_assert(!m.checked);
    ck_assert_int_eq(memcmp(m.data, buf, len), 0);
    mempool__file_unmap(&m);
    /* Changed after the verdict (a payload byte flipped with pwrite):
     * another id, so checked again, and caught. */
    t_sf_flip(t_dfd, "f", MP_FILE_HDR + len / 2);
    ck_assert_int_eq(map_seen(&memo, true, &m), MEMPOOL_ECORRUPT);
    ck_assert_ptr_null(m.data);
    /* Put back: a new id again, checked, and good. */
    settle();
    t_sf_flip(t_dfd, "f", MP_FILE_HDR + len / 2);
    ck_assert_int_eq(map_seen(&memo, true, &m), 0);
    ck_assert(m.checked);
    ck_assert(memcmp(&m.id, &memo.id, sizeof m.id) != 0);
    mempool__file_unmap(&m);
    /* Without verify nothing is checked and the hook is not needed. */
    memo.asked = 0;
    ck_assert_int_eq(map_seen(&memo, false, &m), 0);
    ck_assert(!m.checked);
    ck_assert_uint_eq(memo.asked, 0);
    mempool__file_unmap(&m);
    free(buf);
}
END_TEST

/* A file checked right after it was written has an unsettled ctime. */
START_TEST(test_fresh_file_not_settled)
{
    uint64_t len = MiB + 5;
    uint8_t *buf = t_sf_pattern(len, 10);
    mp_file_map m;

    ck_assert_int_eq(t_sf_write(t_dfd, MP_IO_PWRITE, "f", buf, len, t_uuid),
                     0);
    t_sf_flip(t_dfd, "f", MP_FILE_HDR);      /* ctime: now */
    t_sf_flip(t_dfd, "f", MP_FILE_HDR);
    ck_assert_int_eq(mempool__file_map(t_dfd, "f", t_uuid, 3, 4, true, &m),
                     0);
    ck_assert(m.checked);
    ck_assert(!m.settled);
    mempool__file_unmap(&m);
    free(buf);
}
END_TEST

static void get_file_expect(mempool *p, const mempool_fileref *f,
                            const uint8_t *buf, uint64_t len, int want)
{
    mempool_view v;

    memset(&v, 0, sizeof v);
    ck_assert_int_eq(mempool_get_file(p, f, &v), want);
    if (want != 0) {
        ck_assert_ptr_null(v.data);
        return;
    }
    ck_assert_uint_eq(v.len, len);
    ck_assert_int_eq(memcmp(v.data, buf, len), 0);
    ck_assert_int_eq(mempool_release(p, &v), 0);
}

/* mempool_get_file() again and again: the second map of an unchanged file
 * is served from the verdict, and a byte flipped in between is caught. */
START_TEST(test_get_file_again)
{
    uint64_t len = 2 * MiB + 300;
    uint8_t *buf = t_sf_pattern(len, 11);
    mempool_fileref f;
    char name[64], path[sizeof f.path];
    mempool_dref r;
    mempool *p;
    int dfd;

    snprintf(name, sizeof name, "t-spillverdict-%d", (int)getpid());
    p = t_sf_pool_open(name, root, true);
    ck_assert_int_eq(mempool_put(p, buf, len, &r), 0);
    snprintf(path, sizeof path, "%s/saved", t_dir);
    ck_assert_int_eq(mempool_save_to_disk(p, r, path, &f), 0);
    dfd = t_dfd;
    settle();
    for (int round = 0; round < 3; round++) {
        get_file_expect(p, &f, buf, len, 0);
        get_file_expect(p, &f, buf, len, 0);      /* from the verdict */
        t_sf_flip(dfd, "saved", MP_FILE_HDR + len - 1 - (uint64_t)round);
        get_file_expect(p, &f, buf, len, MEMPOOL_ECORRUPT);
        get_file_expect(p, &f, buf, len, MEMPOOL_ECORRUPT);
        t_sf_flip(dfd, "saved", MP_FILE_HDR + len - 1 - (uint64_t)round);
        settle();
    }
    get_file_expect(p, &f, buf, len, 0);
    ck_assert_int_eq(mempool_close(p), 0);
    ck_assert_int_eq(mempool_destroy(name), 0);
    free(buf);
}
END_TEST

static Suite *verdict_suite(void)
{
    Suite *s = suite_create("spill_verdict");
    TCase *tc = tcase_create("verdicts");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_seen_skips_only_unchanged);
    tcase_add_test(tc, test_fresh_file_not_settled);
    tcase_add_test(tc, test_get_file_again);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return t_run_in_dir(verdict_suite(), root, sizeof root, "spillverdict");
}
