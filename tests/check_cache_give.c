/* SPDX-License-Identifier: MIT */
/*
 * check_cache_give.c - a small object deleted by another worker than its
 * owner goes into the owner's allocator cache (wcache.c, mempool__cache_
 * give; batched by the deleter's stash, handback.c), so a stream's
 * consumer feeds its producer's sets without the allocator lock.
 *
 * given: once the deleter's stash is handed back (stats read it out), the
 * entry is CACHED by the owner (next generation, the old DRef -ENOENT at
 * once), the owner's charges drop by the object, and the owner's next set
 * of that class takes the same entry; also when the owner's class is full
 * (a batch goes back to the pool first).
 * stopped owner (failpoints): the owner stopped inside its cache lock
 * does not hold up the delete nor the hand-back (which frees under the
 * allocator lock), and the owner completes after SIGCONT. killed giver
 * (failpoints): a deleter killed inside the owner's cache lock while it
 * hands its stash back (cache.recached) leaves the cache to be repaired by
 * its next holder: check clean, the owner's charges exact, every object
 * accounted for.
 */
#include "helpers.h"
#include "layout.h"                /* mp_entry: its word */

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const uint8_t *arena;
static size_t arena_len;

static uint64_t word_of(mempool_dref r)
{
    ck_assert_uint_le((r.off & MEMPOOL_DREF_ENTRY_BITS) + sizeof(mp_entry), arena_len);
    return atomic_load((_Atomic uint64_t *)(uintptr_t)(arena + (r.off & MEMPOOL_DREF_ENTRY_BITS)));
}

START_TEST(test_given_to_owner)
{
    struct t_remote a;
    mempool_dref r, n;
    mempool_view v;
    mempool *p;
    uint64_t w, before;
    int wa;

    t_pool_name(t_name, "cgive");
    ck_assert_int_eq(t_open(t_name, T_ARENA_BYTES, &p), 0);
    arena = t_map_arena(t_name, &arena_len);
    t_remote_start(&a, t_name);
    wa = (int)t_remote_call(&a, T_R_WID, &r, 0);
    ck_assert_int_gt(wa, 0);
    ck_assert_int_eq(t_remote_call(&a, T_R_SET, &r, 64), 0);
    before = t_worker_objects(p, wa);
    ck_assert_int_eq(mempool_get(p, r, &v), 0);
    ck_assert_int_eq(mempool_release(p, &v), 0);
    ck_assert_int_eq(mempool_delete(p, r), 0);          /* not ours */
    ck_assert_int_eq(mempool_get(p, r, &v), -ENOENT);
    ck_assert_uint_eq(t_worker_objects(p, wa), before - 1);   /* handed back */
    w = word_of(r);
    ck_assert_uint_eq(MP_W_ST(w), MP_ST_CACHED);
    ck_assert_uint_eq(MP_W_WHO(w), (unsigned)wa);
    ck_assert_uint_eq(MP_W_GEN(w), (uint32_t)r.gen + 1);
    ck_assert_int_eq(t_remote_call(&a, T_R_SET, &n, 64), 0);
    ck_assert_uint_eq(n.off, r.off);                    /* taken back */
    ck_assert_uint_eq(t_worker_objects(p, wa), before);
    ck_assert_int_eq(mempool_delete(p, n), 0);
    ck_assert_int_eq(t_remote_quit(&a), 0);
    t_assert_healthy(p);
    ck_assert_uint_eq(t_stats(p).objects, 0);
    munmap((void *)(uintptr_t)arena, arena_len);
    mempool_close(p);
    mempool_destroy(t_name);
}
END_TEST

/* More deletes than the owner's class holds: a full class gives a batch
 * back to the pool under the allocator lock, and each entry still goes to
 * the owner's cache. */
START_TEST(test_given_to_full_class)
{
    enum { N = 3 * 128 };              /* mp_wc_cap(class of 100 B) */
    struct t_remote a;
    mempool_dref r[N], n;
    mempool *p;
    uint64_t before;
    int wa;

    t_pool_name(t_name, "cgive");
    ck_assert_int_eq(t_open(t_name, T_ARENA_BYTES, &p), 0);
    arena = t_map_arena(t_name, &arena_len);
    t_remote_start(&a, t_name);
    wa = (int)t_remote_call(&a, T_R_WID, &n, 0);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(t_remote_call(&a, T_R_SET, &r[i], 100), 0);
    before = t_worker_objects(p, wa);
    for (int i = 0; i < N; i++) {
        uint64_t w;
        ck_assert_int_eq(mempool_delete(p, r[i]), 0);
        ck_assert_uint_eq(t_worker_objects(p, wa), before - (uint64_t)i - 1);
        w = word_of(r[i]);
        ck_assert_msg(MP_W_ST(w) == MP_ST_CACHED && MP_W_WHO(w) == (unsigned)wa,
                      "delete %d: word %llx", i, (unsigned long long)w);
    }
    t_assert_healthy(p);
    ck_assert_int_eq(t_remote_quit(&a), 0);
    t_assert_healthy(p);
    ck_assert_uint_eq(t_stats(p).objects, 0);
    munmap((void *)(uintptr_t)arena, arena_len);
    mempool_close(p);
    mempool_destroy(t_name);
}
END_TEST

#ifdef T_FAILPOINTS
/* The owner: set one object and hand it over, then set again with
 * cache.popped=stop@2 armed (it stops inside its own cache lock), and
 * hand that one over once continued. */
static int stopping_owner(void *arg)
{
    int fd = *(int *)arg;
    char buf[64];
    mempool_dref r;
    mempool *p;
    setenv("MEMPOOL_FAILPOINT", "cache.popped=stop@2", 1);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    memset(buf, 7, sizeof buf);
    T_CHILD_EQ(mempool_put(p, buf, sizeof buf, &r), 0);
    T_CHILD_EQ(t_send_dref(fd, r), 0);
    T_CHILD_EQ(mempool_put(p, buf, sizeof buf, &r), 0);
    T_CHILD_EQ(t_send_dref(fd, r), 0);
    mempool_close(p);
    return 0;
}

START_TEST(test_owner_stopped_in_its_lock)
{
    mempool_dref r1, r2;
    mempool_view v;
    mempool *p;
    int fds[2];
    pid_t k;

    t_pool_name(t_name, "cgive");
    ck_assert_int_eq(t_open(t_name, T_ARENA_BYTES, &p), 0);
    t_pipe(fds);
    k = t_fork(stopping_owner, &fds[1]);
    ck_assert_int_eq(t_recv_dref(fds[0], &r1, T_WAIT_S), 0);
    t_await_stopped(k, "cache.popped");
    /* Its lock is held by a stopped process: the delete stashes it, and
     * the hand-back frees it under the allocator lock instead of
     * waiting. */
    ck_assert_int_eq(mempool_delete(p, r1), 0);
    ck_assert_int_eq(mempool_get(p, r1, &v), -ENOENT);
    (void)t_stats(p);
    ck_assert_int_eq(kill(k, SIGCONT), 0);
    ck_assert_int_eq(t_recv_dref(fds[0], &r2, T_WAIT_S), 0);
    ck_assert_int_eq(t_wait(k, T_WAIT_S), 0);
    ck_assert_int_eq(mempool_get(p, r2, &v), 0);
    ck_assert_int_eq(mempool_release(p, &v), 0);
    ck_assert_int_eq(mempool_delete(p, r2), 0);
    ck_assert_int_eq(mempool_reap(p), 0);
    t_assert_healthy(p);
    ck_assert_uint_eq(t_stats(p).objects, 0);
    close(fds[0]);
    close(fds[1]);
    mempool_close(p);
    mempool_destroy(t_name);
}
END_TEST

/* A deleter of another worker's object, killed inside that worker's
 * cache lock (handing its stash back: a stats read) with the entry
 * CACHED but not listed. */
static int killed_giver(void *arg)
{
    mempool_dref *r = arg;
    struct mempool_stats st;
    mempool *p;
    setenv("MEMPOOL_FAILPOINT", "cache.recached=kill@1", 1);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_delete(p, *r), 0);
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    (void)mempool_stats_get(p, &st);
    return 3;                          /* not killed: the test fails */
}

START_TEST(test_giver_killed_in_owner_lock)
{
    struct t_remote a;
    mempool_dref r, keep[8], n;
    mempool *p;
    uint64_t before;
    int wa;

    t_pool_name(t_name, "cgive");
    ck_assert_int_eq(t_open(t_name, T_ARENA_BYTES, &p), 0);
    t_remote_start(&a, t_name);
    wa = (int)t_remote_call(&a, T_R_WID, &r, 0);
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(t_remote_call(&a, T_R_SET, &keep[i], 64), 0);
    ck_assert_int_eq(t_remote_call(&a, T_R_SET, &r, 64), 0);
    before = t_worker_objects(p, wa);
    ck_assert_int_eq(t_wait(t_fork(killed_giver, &r), T_WAIT_S), 128 + SIGKILL);
    ck_assert_int_eq(mempool_reap(p), 1);
    /* The owner's next sets take its lock from the dead giver: repaired
     * (the lost entry listed again), charges recounted. */
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(t_remote_call(&a, T_R_SET, &n, 64), 0);
        ck_assert_int_eq(t_remote_call(&a, T_R_DELETE, &n, 0), 0);
    }
    ck_assert_int_eq(mempool_delete(p, r), -ENOENT);
    ck_assert_uint_eq(t_worker_objects(p, wa), before - 1);
    t_assert_healthy(p);
    for (int i = 0; i < 8; i++)
        ck_assert_int_eq(mempool_delete(p, keep[i]), 0);
    ck_assert_uint_eq(t_worker_objects(p, wa), before - 9);
    ck_assert_int_eq(t_remote_quit(&a), 0);
    t_assert_healthy(p);
    ck_assert_uint_eq(t_stats(p).objects, 0);
    mempool_close(p);
    mempool_destroy(t_name);
}
END_TEST
#endif

int main(void)
{
    const struct t_case cases[] = {
        { "cache_give", 120, false, {
              test_given_to_owner, test_given_to_full_class,
#ifdef T_FAILPOINTS
              test_owner_stopped_in_its_lock, test_giver_killed_in_owner_lock,
#endif
          } },
        { .name = NULL }
    };
    return t_main("cache_give", cases);
}
