/* SPDX-License-Identifier: MIT */
/*
 * check_review7.c - a hostile review of session 7's landings: the data
 * hint in a DRef (src/core/dhint.h).
 *
 *   hint everywhere  every call that takes a DRef, given one whose hint
 *             names another object's block (or garbage, or nothing),
 *             acts on the object its entry bits name, never the hinted
 *             one: get, get_wait, info, share, ref/unref, give/
 *             take, name_put, chan_send, copy/move to disk, delete.
 */
#include "helpers.h"

#include <errno.h>
#include <string.h>

#define ENTRY MEMPOOL_DREF_ENTRY_BITS

static const mempool_put_options rco = { 0, 0, MEMPOOL_PUT_REFCOUNTED };

static mempool_dref with_hint(mempool_dref r, uint64_t hint)
{
    r.off = (r.off & ENTRY) | (hint & ~ENTRY);
    return r;
}

/* The view of @p r must be @p len bytes of @p c. */
static void view_is(const mempool_view *v, int c, size_t len)
{
    ck_assert_uint_eq(v->len, len);
    for (size_t i = 0; i < len; i++)
        ck_assert_int_eq(((const unsigned char *)v->data)[i], c);
}

static void get_is(mempool *p, mempool_dref r, int c, size_t len)
{
    mempool_view v;
    ASSERT_RC(mempool_get(p, r, &v), 0);
    view_is(&v, c, len);
    ASSERT_RC(mempool_release(p, &v), 0);
    ASSERT_RC(mempool_get_wait(p, r, &v, 0), 0);
    view_is(&v, c, len);
    ASSERT_RC(mempool_release(p, &v), 0);
}

START_TEST(test_hint_everywhere)
{
    enum { N = 6 };
    mempool_dref r[N], rc1, out;
    mempool_info in;
    mempool_chan *ch;
    unsigned char buf[300];
    uint64_t share;
    /* The hints a caller may pass: each other object's, garbage, none. */
    uint64_t forged[N + 2];

    for (int i = 0; i < N; i++) {
        memset(buf, 'a' + i, sizeof buf);
        ASSERT_RC(mempool_put(t_pool, buf, (size_t)(64 + 40 * i), &r[i]), 0);
        forged[i] = r[i].off;
    }
    forged[N] = ~ENTRY;
    forged[N + 1] = 0;
    memset(buf, 'z', sizeof buf);
    ASSERT_RC(mempool_put_ex(t_pool, buf, 128, &rco, &rc1), 0);

    for (int i = 0; i < N; i++)
        for (int h = 0; h < N + 2; h++) {
            mempool_dref f = with_hint(r[i], forged[h]);
            size_t len = (size_t)(64 + 40 * i);
            get_is(t_pool, f, 'a' + i, len);
            ASSERT_RC(mempool_info_get(t_pool, f, &in), 0);
            ck_assert_uint_eq(in.len, len);
        }
    /* the refcounted one through every reference call, hint of r[0] */
    {
        mempool_dref f = with_hint(rc1, r[0].off);
        get_is(t_pool, f, 'z', 128);
        ASSERT_RC(mempool_ref(t_pool, f), 0);
        ck_assert_int_eq(t_refs(t_pool, rc1), 2);
        ASSERT_RC(mempool_unref(t_pool, f), 0);
        ASSERT_RC(mempool_share_get(t_pool, f, &share), 0);
        ASSERT_RC(mempool_ref(t_pool, rc1), 0);
        ASSERT_RC(mempool_ref_give(t_pool, f, 10000), 0);
        ASSERT_RC(mempool_ref_take(t_pool, with_hint(rc1, ~ENTRY)), 0);
        ASSERT_RC(mempool_unref(t_pool, rc1), 0);
        ck_assert_int_eq(t_refs(t_pool, rc1), 1);
    }
    /* names and channels: the object named, not the hinted */
    ASSERT_RC(mempool_name_put(t_pool, "r7-hint", with_hint(r[1], r[2].off),
                               0), 0);
    ASSERT_RC(mempool_name_get(t_pool, "r7-hint", &out, 0), 0);
    ck_assert(mempool_dref_equal(out, r[1]));
    get_is(t_pool, out, 'b', 104);
    ASSERT_RC(mempool_name_drop(t_pool, "r7-hint"), 0);
    ASSERT_RC(mempool_chan_open(t_pool, "r7-q", 8, MEMPOOL_CHAN_CREATE, &ch),
              0);
    ASSERT_RC(mempool_chan_send(ch, with_hint(r[3], r[4].off), 0), 0);
    ASSERT_RC(mempool_chan_send(ch, with_hint(rc1, r[4].off), 0), 0);
    ASSERT_RC(mempool_chan_recv(ch, &out, 0), 0);
    ck_assert(mempool_dref_equal(out, r[3]));
    get_is(t_pool, out, 'd', 184);
    ASSERT_RC(mempool_chan_recv(ch, &out, 0), 0);
    ck_assert(mempool_dref_equal(out, rc1));
    /* the send moved our reference to the receiver: drop it */
    ASSERT_RC(mempool_unref(t_pool, out), 0);
    ASSERT_RC(mempool_chan_close(ch), 0);
    /* to disk and back through a hint of another object: its own bytes */
    ASSERT_RC(mempool_copy_to_disk(t_pool, with_hint(r[4], r[5].off), NULL),
              0);
    ASSERT_RC(mempool_move_to_disk(t_pool, with_hint(r[5], r[4].off), NULL),
              0);
    for (int h = 0; h < N + 2; h++) {
        get_is(t_pool, with_hint(r[5], forged[h]), 'f', 264);
        get_is(t_pool, with_hint(r[4], forged[h]), 'e', 224);
    }
    /* delete through a forged hint deletes the named object only */
    ASSERT_RC(mempool_delete(t_pool, with_hint(r[0], r[1].off)), 0);
    ASSERT_RC(mempool_get(t_pool, with_hint(r[0], r[0].off),
                          &(mempool_view){ 0 }), -ENOENT);
    get_is(t_pool, with_hint(r[1], r[0].off), 'b', 104);
    /* the hint bits alone name nothing */
    ASSERT_RC(mempool_get(t_pool, (mempool_dref){ r[1].off & ~ENTRY, r[1].gen },
                          &(mempool_view){ 0 }), -EINVAL);
    for (int i = 1; i < N; i++)
        ASSERT_RC(mempool_delete(t_pool, r[i]), 0);
    ASSERT_RC(mempool_get(t_pool, rc1, &(mempool_view){ 0 }), -ENOENT);
    t_assert_healthy(t_pool);
}
END_TEST

static Suite *review7_suite(void)
{
    Suite *s = suite_create("review7");
    TCase *tc = t_tcase(s, "review7", 120);
    tcase_add_test(tc, test_hint_everywhere);
    return s;
}

int main(void)
{
    return t_run(review7_suite(), "review7");
}
