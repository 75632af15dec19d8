/* SPDX-License-Identifier: MIT */
/*
 * check_streamcopy.c - mempool__copy_stream() (src/util/streamcopy.c), the
 * streaming-store copy of large puts into new memory, against memcpy():
 * every destination alignment within a cache line and a few source ones,
 * on the lengths where it switches (below its 4 KiB minimum it is
 * memcpy(); a head up to the next 64-byte line, whole lines, a tail),
 * and a copy of 2 MiB + 5 bytes. Each copy lands between guard bytes
 * that must stay untouched, and the source must be unchanged.
 *
 * White-box (calls a mempool__* internal), so it links the library's objects.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "streamcopy.h"

#define GUARD 128u
#define BIG ((2u << 20) + 5u)

/* Source bytes that differ at every offset of a line and between lines. */
static void pattern(uint8_t *b, size_t n, unsigned seed)
{
    uint32_t x = seed * 2654435761u + 1u;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b[i] = (uint8_t)x;
    }
}

/* Are @p n bytes at @p b all guard bytes? */
static bool guarded(const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0xA5)
            return false;
    return true;
}

/* Copy @p n bytes from @p soff into a buffer at @p doff and check it. */
static void one(uint8_t *src, uint8_t *dst, size_t cap, size_t soff,
                size_t doff, size_t n)
{
    uint8_t *d = dst + GUARD + doff;
    size_t used = GUARD + doff + n + GUARD;
    ck_assert_uint_le(used, cap);
    memset(dst, 0xA5, used);
    mempool__copy_stream(d, src + soff, n);
    ck_assert_msg(memcmp(d, src + soff, n) == 0,
                  "bytes differ: len %zu, dst +%zu, src +%zu", n, doff, soff);
    ck_assert_msg(guarded(dst, GUARD + doff), "wrote before dst: len %zu +%zu",
                  n, doff);
    ck_assert_msg(guarded(d + n, GUARD), "wrote past the end: len %zu +%zu",
                  n, doff);
}

START_TEST(test_alignments)
{
    static const size_t lens[] = { 0, 1, 63, 64, 65, 4095, 4096, 4097,
                                   4096 + 63, 4096 + 64, 8191, 65536 + 17 };
    size_t cap = 2 * GUARD + 64 + 65536 + 64;
    uint8_t *src = malloc(65536 + 128), *dst = aligned_alloc(64, cap + 64);
    ck_assert_ptr_nonnull(src);
    ck_assert_ptr_nonnull(dst);
    pattern(src, 65536 + 128, 1);
    for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++)
        for (size_t doff = 0; doff < 64; doff++)
            for (size_t soff = 0; soff < 24; soff += 7)
                one(src, dst, cap, soff, doff, lens[l]);
    free(src);
    free(dst);
}
END_TEST

START_TEST(test_big)
{
    size_t cap = 2 * GUARD + 64 + BIG;
    uint8_t *src = malloc(BIG + 64), *copy = malloc(BIG + 64);
    uint8_t *dst = aligned_alloc(64, (cap + 63) & ~(size_t)63);
    ck_assert_ptr_nonnull(src);
    ck_assert_ptr_nonnull(copy);
    ck_assert_ptr_nonnull(dst);
    pattern(src, BIG + 64, 2);
    memcpy(copy, src, BIG + 64);
    one(src, dst, cap, 3, 0, BIG);
    one(src, dst, cap, 0, 17, BIG);
    ck_assert(memcmp(copy, src, BIG + 64) == 0);   /* source untouched */
    free(src);
    free(copy);
    free(dst);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("streamcopy");
    TCase *tc = tcase_create("copy");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_alignments);
    tcase_add_test(tc, test_big);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
