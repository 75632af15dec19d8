/* SPDX-License-Identifier: MIT */
/*
 * check_dref_hint.c - the data hint in a DRef's spare offset bits
 * (src/core/dhint.h, issue 11 target 6): DRefs the library makes carry
 * one; the text form keeps all 128 bits; mempool_dref_equal() and every
 * operation look only at the entry and generation; and a hint that is
 * stale (the object was spilled and read back, its slot reused) or forged
 * (pointing at another object's block, outside the arena, or zeroed) is
 * never read through: the get gives the object's own bytes at its own
 * block. Whether the hint is faster: mempool-bench --section scale.
 */
#include "helpers.h"

#include <errno.h>
#include <string.h>

#define ENTRY MEMPOOL_DREF_ENTRY_BITS

/* @p r with its hint bits replaced by @p hint (the spare bits only). */
static mempool_dref with_hint(mempool_dref r, uint64_t hint)
{
    r.off = (r.off & ENTRY) | (hint & ~ENTRY);
    return r;
}

/* Get through @p r: must be the object of @p want (its bytes, memset to
 * @p c, @p len long) at the block a hint-free get finds. */
static void get_is(mempool_dref r, mempool_dref want, int c, size_t len)
{
    mempool_view v, w;
    ASSERT_RC(mempool_get(t_pool, with_hint(want, 0), &w), 0);
    ASSERT_RC(mempool_get(t_pool, r, &v), 0);
    ck_assert_ptr_eq(v.data, w.data);
    ck_assert_uint_eq(v.len, len);
    for (size_t i = 0; i < len; i++)
        ck_assert_int_eq(((const unsigned char *)v.data)[i], c);
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    ASSERT_RC(mempool_release(t_pool, &w), 0);
}

START_TEST(test_minted_and_equal)
{
    mempool_dref a, b, back, n;
    char txt[MEMPOOL_DREF_STRLEN];
    unsigned char buf[64];

    memset(buf, 1, sizeof buf);
    ASSERT_RC(mempool_put(t_pool, buf, sizeof buf, &a), 0);
    memset(buf, 2, sizeof buf);
    ASSERT_RC(mempool_put(t_pool, buf, sizeof buf, &b), 0);
    ck_assert_uint_ne(a.off & ~ENTRY, 0);           /* hinted */
    ck_assert_uint_ne(a.off & ~ENTRY, b.off & ~ENTRY);
    /* text round trip: all 128 bits */
    ck_assert_int_eq(mempool_dref_format(a, txt, sizeof txt), 33);
    ASSERT_RC(mempool_dref_parse(txt, &back), 0);
    ck_assert(back.off == a.off && back.gen == a.gen);
    /* equality: entry and generation only */
    ck_assert(mempool_dref_equal(a, with_hint(a, 0)));
    ck_assert(mempool_dref_equal(a, with_hint(a, ~ENTRY)));
    ck_assert(!mempool_dref_equal(a, b));
    back = a;
    back.gen ^= 1;
    ck_assert(!mempool_dref_equal(a, back));
    /* a name gives back a DRef of the same object, hinted too */
    ASSERT_RC(mempool_name_put(t_pool, "hint-a", with_hint(a, 0), 0), 0);
    ASSERT_RC(mempool_name_get(t_pool, "hint-a", &n, 0), 0);
    ck_assert(mempool_dref_equal(n, a));
    ck_assert_uint_eq(n.off, a.off);                /* not moved: same hint */
    get_is(n, a, 1, 64);
    ASSERT_RC(mempool_name_drop(t_pool, "hint-a"), 0);
    ASSERT_RC(mempool_delete(t_pool, a), 0);
    ASSERT_RC(mempool_delete(t_pool, b), 0);
    t_assert_healthy(t_pool);
}
END_TEST

START_TEST(test_forged_never_read)
{
    mempool_dref a, b;
    unsigned char buf[200];

    memset(buf, 7, sizeof buf);
    ASSERT_RC(mempool_put(t_pool, buf, 64, &a), 0);
    memset(buf, 9, sizeof buf);
    ASSERT_RC(mempool_put(t_pool, buf, 200, &b), 0);
    get_is(a, a, 7, 64);                            /* its own hint */
    get_is(with_hint(a, b.off), a, 7, 64);          /* b's block */
    get_is(with_hint(b, a.off), b, 9, 200);
    get_is(with_hint(a, 0), a, 7, 64);              /* none */
    get_is(with_hint(a, ~ENTRY), a, 7, 64);         /* past the arena */
    for (uint64_t h = 1; h < 64; h += 5)            /* low bits only */
        get_is(with_hint(a, h), a, 7, 64);
    /* delete through a forged hint: the same object */
    ASSERT_RC(mempool_delete(t_pool, with_hint(a, b.off)), 0);
    ASSERT_RC(mempool_get(t_pool, a, &(mempool_view){ 0 }), -ENOENT);
    ASSERT_RC(mempool_delete(t_pool, b), 0);
    t_assert_healthy(t_pool);
}
END_TEST

START_TEST(test_stale_after_move_and_reuse)
{
    mempool_dref a, filler, c;
    unsigned char buf[64];
    mempool_view v;

    memset(buf, 3, sizeof buf);
    ASSERT_RC(mempool_put(t_pool, buf, sizeof buf, &a), 0);
    /* spilled: the block is freed and taken by another object */
    ASSERT_RC(mempool_move_to_disk(t_pool, a, NULL), 0);
    memset(buf, 4, sizeof buf);
    ASSERT_RC(mempool_put(t_pool, buf, sizeof buf, &filler), 0);
    /* the old hint may now name filler's block: still a's bytes */
    ASSERT_RC(mempool_get(t_pool, a, &v), 0);
    for (size_t i = 0; i < 64; i++)
        ck_assert_int_eq(((const unsigned char *)v.data)[i], 3);
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    /* slot reuse: a's DRef is stale whatever its hint */
    ASSERT_RC(mempool_delete(t_pool, a), 0);
    memset(buf, 5, sizeof buf);
    ASSERT_RC(mempool_put(t_pool, buf, sizeof buf, &c), 0);
    ASSERT_RC(mempool_get(t_pool, a, &v), -ENOENT);
    ASSERT_RC(mempool_get(t_pool, with_hint(a, c.off), &v), -ENOENT);
    get_is(c, c, 5, 64);
    ASSERT_RC(mempool_delete(t_pool, c), 0);
    ASSERT_RC(mempool_delete(t_pool, filler), 0);
    t_assert_healthy(t_pool);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "dref_hint", 60, true, {
              test_minted_and_equal, test_forged_never_read,
              test_stale_after_move_and_reuse } },
        { .name = NULL }
    };
    return t_main("dref_hint", cases);
}
