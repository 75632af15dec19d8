/* SPDX-License-Identifier: MIT */
/*
 * check_handback_owner.c - when the deleter's stash (src/core/handback.c)
 * hands entries back: per owner, once MP_STASH_BATCH of one owner wait,
 * or all of them once the stash is within MP_STASH_SLACK of full - not at
 * every MP_STASH_BATCH entries whatever their owners (a consumer of four
 * producers gave each about 8 entries per hold of its cache lock).
 *
 * owners: three remote owners' objects deleted by us in turn, 10 each
 * (fewer than a batch of any one owner): all 30 wait in our stash (its
 * hint in our cache, stash_n, says so), DELETED. 22 more of the first
 * owner (32 of it, 52 in all): its 32 go back into its cache, the others'
 * 20 still wait. Then the other two in turn up to the slack (56 in the
 * stash, still fewer than a batch of either): everything goes.
 * Every object is gone, the owners' sets take the entries back, the pool
 * checks clean and holds nothing.
 */
#include "helpers.h"
#include "layout.h"                /* mp_header, mp_wcache, mp_entry */

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>

enum { NOWN = 3, PER = 64 };

/* Our stash's length, as its hint in our cache says (no stats read: a
 * stats read empties the stash). */
static uint32_t stash_n(const uint8_t *arena, int me)
{
    const mp_header *h = (const void *)arena;
    const mp_wcache *wc =
        (const mp_wcache *)(const void *)(arena + h->wcache_off) + (me - 1);
    return atomic_load(&((mp_wcache *)(uintptr_t)wc)->stash_n);
}

/* Entry word of @p r in the arena. */
static uint64_t word_of(const uint8_t *arena, mempool_dref r)
{
    return atomic_load((_Atomic uint64_t *)(uintptr_t)(
        arena + (r.off & MEMPOOL_DREF_ENTRY_BITS)));
}

static int cached_by(const uint8_t *arena, const mempool_dref *r, int n,
                     int wid)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        uint64_t w = word_of(arena, r[i]);
        k += MP_W_ST(w) == MP_ST_CACHED && MP_W_WHO(w) == (unsigned)wid;
    }
    return k;
}

START_TEST(test_owners)
{
    struct t_remote a[NOWN];
    mempool_dref r[NOWN][PER], n;
    int wid[NOWN], next[NOWN] = { 0 }, me;
    const uint8_t *arena;
    size_t arena_len;
    mempool *p;

    t_pool_name(t_name, "hbowner");
    ck_assert_int_eq(t_open(t_name, T_ARENA_BYTES, &p), 0);
    arena = t_map_arena(t_name, &arena_len);
    me = mempool_worker_id(p);
    ck_assert_int_gt(me, 0);
    for (int o = 0; o < NOWN; o++) {
        t_remote_start(&a[o], t_name);
        wid[o] = (int)t_remote_call(&a[o], T_R_WID, &n, 0);
        for (int i = 0; i < PER; i++)
            ck_assert_int_eq(t_remote_call(&a[o], T_R_SET, &r[o][i], 64), 0);
    }
    /* 10 of each in turn: 30 (a stash handing back at every
     * MP_STASH_BATCH would have given at 32; see below), 10 per owner. */
    for (int i = 0; i < 10; i++)
        for (int o = 0; o < NOWN; o++)
            ck_assert_int_eq(mempool_delete(p, r[o][next[o]++]), 0);
    ck_assert_uint_eq(stash_n(arena, me), 3 * 10);
    for (int o = 0; o < NOWN; o++) {
        ck_assert_int_eq(cached_by(arena, r[o], next[o], wid[o]), 0);
        ck_assert_int_eq(mempool_get(p, r[o][0], &(mempool_view){ 0 }),
                         -ENOENT);
    }
    /* 22 more of the first owner (52 in all): its batch goes back,
     * alone. */
    for (int i = 0; i < 22; i++)
        ck_assert_int_eq(mempool_delete(p, r[0][next[0]++]), 0);
    ck_assert_uint_eq(stash_n(arena, me), 2 * 10);
    ck_assert_int_eq(cached_by(arena, r[0], next[0], wid[0]),
                     MP_STASH_BATCH);
    ck_assert_int_eq(cached_by(arena, r[1], next[1], wid[1]), 0);
    ck_assert_int_eq(cached_by(arena, r[2], next[2], wid[2]), 0);
    /* The other two in turn up to the slack: everything goes. */
    for (int o = 1; stash_n(arena, me) < MP_STASH_MAX - MP_STASH_SLACK - 1;
         o = 3 - o)
        ck_assert_int_eq(mempool_delete(p, r[o][next[o]++]), 0);
    ck_assert_int_lt(next[1], MP_STASH_BATCH);   /* no batch of one owner */
    ck_assert_int_lt(next[2], MP_STASH_BATCH);
    ck_assert_int_eq(mempool_delete(p, r[1][next[1]++]), 0);
    ck_assert_uint_eq(stash_n(arena, me), 0);
    for (int o = 0; o < NOWN; o++)
        ck_assert_int_eq(cached_by(arena, r[o], next[o], wid[o]), next[o]);
    /* The rest, then every object is gone and the owners charged nothing. */
    for (int o = 0; o < NOWN; o++)
        while (next[o] < PER)
            ck_assert_int_eq(mempool_delete(p, r[o][next[o]++]), 0);
    for (int o = 0; o < NOWN; o++)
        ck_assert_uint_eq(t_worker_objects(p, wid[o]), 0);    /* stats: flushed */
    ck_assert_uint_eq(stash_n(arena, me), 0);
    t_assert_healthy(p);
    for (int o = 0; o < NOWN; o++) {
        for (int i = 0; i < 4; i++) {          /* its sets take them back */
            ck_assert_int_eq(t_remote_call(&a[o], T_R_SET, &n, 64), 0);
            ck_assert_int_eq(t_remote_call(&a[o], T_R_DELETE, &n, 0), 0);
        }
        ck_assert_int_eq(t_remote_quit(&a[o]), 0);
    }
    t_assert_healthy(p);
    ck_assert_uint_eq(t_stats(p).objects, 0);
    munmap((void *)(uintptr_t)arena, arena_len);
    mempool_close(p);
    mempool_destroy(t_name);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "owner", 120, false, { test_owners } },
        { .name = NULL }
    };
    return t_main("handback_owner", cases);
}
