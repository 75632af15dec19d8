/* SPDX-License-Identifier: MIT */
/*
 * check_crc32c.c - every way src/util/crc32c.c computes crc32c (the table,
 * the sse4.2 crc32 instruction, VPCLMULQDQ folding) against known vectors
 * and against the table on every alignment and on the lengths where the
 * ways switch (16- and 128-byte blocks, MP_CRC_FOLD_MIN, the sse4.2 way's
 * 48 KiB rounds, spill chunks of 1 MiB), chained and from a non-zero
 * start. A way the CPU lacks is reported and its assertions fall back to
 * the table (mempool__crc32c_by() takes the table then), so the test runs
 * everywhere; the way the dispatcher chose is printed.
 *
 * White-box (calls mempool__* internals), so it links the library's objects.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers_base.h"
#include "crc32c.h"
#include "t_spillfile.h"

static const char *const way_name[] = { "table", "sse4.2", "vpclmulqdq" };

/* _i: the way (MP_CRC_*). */
START_TEST(test_vectors)
{
    static const char v[] = "123456789";
    uint8_t z[32], ff[32], inc[32], dec[32], big[512];
    int w = _i;

    if (!mempool__crc32c_has(w))
        fprintf(stderr, "check_crc32c: this CPU has no %s way\n",
                way_name[w]);
    ck_assert_uint_eq(mempool__crc32c_by(w, 0, v, 9), 0xE3069283u);
    ck_assert_uint_eq(mempool__crc32c_by(w, 0, NULL, 0), 0);
    for (int i = 0; i < 32; i++) {      /* RFC 3720 B.4 vectors */
        z[i] = 0;
        ff[i] = 0xff;
        inc[i] = (uint8_t)i;
        dec[i] = (uint8_t)(31 - i);
    }
    ck_assert_uint_eq(mempool__crc32c_by(w, 0, z, 32), 0x8A9136AAu);
    ck_assert_uint_eq(mempool__crc32c_by(w, 0, ff, 32), 0x62A8AB43u);
    ck_assert_uint_eq(mempool__crc32c_by(w, 0, inc, 32), 0x46DD794Eu);
    ck_assert_uint_eq(mempool__crc32c_by(w, 0, dec, 32), 0x113FDB5Cu);
    /* Long enough for the fold way: 512 zero bytes, and 0..255 twice
     * (values from an independent bitwise implementation). */
    memset(big, 0, sizeof big);
    ck_assert_uint_eq(mempool__crc32c_by(w, 0, big, 512), 0x30FCEDC0u);
    for (int i = 0; i < 512; i++)
        big[i] = (uint8_t)i;
    ck_assert_uint_eq(mempool__crc32c_by(w, 0, big, 512), 0xAE10EE5Au);
}
END_TEST

/* Every alignment, every length up to 700 and the block edges after. */
START_TEST(test_against_table)
{
    int w = _i;
    uint8_t *b = t_sf_pattern(4096 + 64, 1 + (uint64_t)w);
    static const size_t edges[] = { 1023, 1024, 1025, 1151, 1152, 1153,
                                    2047, 2048, 2049, 4095, 4096 };

    for (size_t off = 0; off < 64; off++) {
        for (size_t len = 0; len <= 700; len++)
            ck_assert_msg(mempool__crc32c_by(w, 7, b + off, len) ==
                              mempool__crc32c_sw(7, b + off, len),
                          "%s: offset %zu length %zu", way_name[w], off, len);
        for (size_t e = 0; e < sizeof edges / sizeof edges[0]; e++)
            ck_assert_uint_eq(mempool__crc32c_by(w, 0, b + off, edges[e]),
                              mempool__crc32c_sw(0, b + off, edges[e]));
    }
    free(b);
}
END_TEST

/* Large buffers: spill chunks (1 MiB), odd sizes around them and the
 * sse4.2 way's 3 x 16 KiB rounds, from a non-zero start. */
START_TEST(test_large)
{
    int w = _i;
    size_t max = 3 * MiB + 333;
    uint8_t *b = t_sf_pattern(max + 8, 100 + (uint64_t)w);
    static const size_t lens[] = { 48 * 1024 - 1, 48 * 1024, 48 * 1024 + 1,
                                   64 * 1024 + 17, MiB - 1, MiB, MiB + 1,
                                   MiB + 77, 3 * MiB + 333 };

    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
        for (size_t off = 0; off < 8; off += 3)
            ck_assert_msg(mempool__crc32c_by(w, 0xDEADBEEFu, b + off,
                                             lens[i]) ==
                              mempool__crc32c_sw(0xDEADBEEFu, b + off,
                                                 lens[i]),
                          "%s: length %zu offset %zu", way_name[w], lens[i],
                          off);
    free(b);
}
END_TEST

/* crc(crc(a), b) == crc(a || b) for cuts inside and across fold blocks,
 * the ways mixed (the dispatcher mixes them by length). */
START_TEST(test_chain)
{
    int w = _i;
    size_t len = 5000;
    uint8_t *b = t_sf_pattern(len, 7);
    uint32_t whole = mempool__crc32c_sw(0, b, len);

    for (size_t cut = 0; cut <= len; cut += (cut < 300 ? 1 : 97)) {
        uint32_t a = mempool__crc32c_by(w, 0, b, cut);

        ck_assert_uint_eq(mempool__crc32c_by(w, a, b + cut, len - cut),
                          whole);
        ck_assert_uint_eq(mempool__crc32c(mempool__crc32c_sw(0, b, cut),
                                          b + cut, len - cut), whole);
    }
    free(b);
}
END_TEST

/* One flipped bit anywhere in a 1 MiB + 5 buffer changes the crc of the
 * way the dispatcher uses (a crc catches every single-bit error). */
START_TEST(test_flip_detected)
{
    size_t len = MiB + 5;
    uint8_t *b = t_sf_pattern(len, 11);
    uint32_t good = mempool__crc32c(0, b, len);
    static const size_t at[] = { 0, 1, 127, 128, 255, 256, 4096, 65535,
                                 MiB - 1, MiB, MiB + 4 };

    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            b[at[i]] ^= (uint8_t)(1u << bit);
            ck_assert_uint_ne(mempool__crc32c(0, b, len), good);
            b[at[i]] ^= (uint8_t)(1u << bit);
        }
    }
    ck_assert_uint_eq(mempool__crc32c(0, b, len), good);
    free(b);
}
END_TEST

static Suite *crc_suite(void)
{
    Suite *s = suite_create("crc32c");
    TCase *tc = tcase_create("ways");

    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_vectors, MP_CRC_TABLE, MP_CRC_FOLD + 1);
    tcase_add_loop_test(tc, test_against_table, MP_CRC_SSE42,
                        MP_CRC_FOLD + 1);
    tcase_add_loop_test(tc, test_large, MP_CRC_SSE42, MP_CRC_FOLD + 1);
    tcase_add_loop_test(tc, test_chain, MP_CRC_TABLE, MP_CRC_FOLD + 1);
    tcase_add_test(tc, test_flip_detected);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(crc_suite());
    int failed;

    fprintf(stderr, "check_crc32c: mempool__crc32c uses %s\n",
            mempool__crc32c_way());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
