/* SPDX-License-Identifier: MIT */
/*
 * check_lock_owner.c - who a waiter for the allocator lock judges gone
 * (alloc.c holder_gone), with real processes.
 *
 *   inconsistent  the lock's holder D is SIGKILLed inside it; the next
 *                 locker R gets it EOWNERDEAD, so its owner word reads
 *                 INT_MAX (glibc's and rlock.c's "inconsistent") while R
 *                 rebuilds - and R's rebuild waits for the cache lock of
 *                 worker C, stopped inside its cache (cache.popped), with
 *                 R's own bound of 10 minutes. A third worker's set waits
 *                 its bound in one-second steps, judging the holder after
 *                 each: the owner word names no thread (INT_MAX), the lock
 *                 word names R, alive. It must answer -EAGAIN (a stopped
 *                 holder: try again), not MEMPOOL_ECORRUPT (a holder that
 *                 does not exist), which kill(INT_MAX, 0) would have said.
 *                 Then C goes on, R's rebuild and set finish, fsck clean.
 *   planted_live a user who may write the pool plants a live thread's
 *                TID (ours: we never unlock it) in the allocator lock word
 *                while a spill write is at its end (spill.written), whose
 *                last step waited for that lock without a bound: the
 *                writer waited for ever. Now it waits the bound and rolls
 *                the write back: -EAGAIN, the object as it was (in memory,
 *                no file), and a later move_to_disk works.
 *
 * INTERNAL: it reads the lock's owner word (layout.h). Needs a
 * -DMEMPOOL_FAILPOINTS=ON build.
 */
#include "helpers.h"

#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "internal.h"

#define BIG (64u * 1024u)              /* a page run: the allocator lock */

static char big[BIG];
static int rep_fd = -1;

/* C: stops inside its fourth small set's pop, holding its cache lock;
 * continued, finishes and closes. */
static int cache_holder(void *unused)
{
    char buf[100] = { 0 };
    mempool *p;
    mempool_dref r;
    (void)unused;
    T_CHILD_EQ(setenv("MEMPOOL_FAILPOINT", "cache.popped=stop@4", 1), 0);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    for (int i = 0; i < 4; i++) {
        T_CHILD_EQ(mempool_put(p, buf, sizeof buf, &r), 0);
        T_CHILD_EQ(mempool_delete(p, r), 0);
    }
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

/* D: dies holding the allocator lock. */
static int dies_locked(void *unused)
{
    mempool *p;
    mempool_dref r;
    (void)unused;
    T_CHILD_EQ(setenv("MEMPOOL_FAILPOINT", "alloc.locked=kill@1", 1), 0);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    (void)mempool_put(p, big, sizeof big, &r);
    return 1;                          /* not killed: the test fails */
}

/* R: the next locker, rebuilding; waits for C for up to 10 minutes. It
 * opens before D dies (an open then would claim D's slot and rebuild in
 * the claim's reap, before its options apply), and sets on a byte on fd
 * arg. */
static int rebuilder(void *arg)
{
    mempool_options o;
    mempool *p;
    mempool_dref r;
    t_options(&o, T_ARENA_BYTES);
    o.flags = 0;
    o.evict_wait_ms = 600000;
    T_CHILD_EQ(mempool_open(t_name, &o, &p), 0);
    T_CHILD_EQ(t_send_u64(rep_fd, 1), 0);
    T_CHILD_EQ(t_wait_fd((int)(intptr_t)arg, T_WAIT_S), 0);
    T_CHILD_EQ(mempool_put(p, big, sizeof big, &r), 0);
    T_CHILD_EQ(mempool_delete(p, r), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

static int lock_owner(void)
{
    return __atomic_load_n(&t_pool->h->alloc_lock.__data.__owner,
                           __ATOMIC_RELAXED);
}

START_TEST(test_inconsistent)
{
    uint64_t objects0 = t_stats(t_pool).objects;
    uint64_t used0 = t_stats(t_pool).used_bytes;
    double end = t_now_s() + T_WAIT_S;
    mempool_dref r;
    uint64_t v;
    int rep[2], go[2];
    pid_t c, d, rb;

    c = t_fork(cache_holder, NULL);
    t_await_stopped(c, "cache.popped");
    t_pipe(rep);
    t_pipe(go);
    rep_fd = rep[1];
    rb = t_fork(rebuilder, (void *)(intptr_t)go[0]);
    close(go[0]);
    ASSERT_RC(t_recv_u64(rep[0], &v, T_WAIT_S), 0);
    d = t_fork(dies_locked, NULL);
    ck_assert_int_eq(t_wait(d, T_WAIT_S), 128 + SIGKILL);
    ASSERT_RC(t_send_u64(go[1], 1), 0);
    while (lock_owner() != INT_MAX) {  /* R made it its own: rebuilding */
        ck_assert_msg(t_now_s() < end, "the next locker never rebuilt");
        t_sleep_ms(1);
    }
    /* Our bound (5 s) ends long before R's: the holder is alive. */
    ASSERT_RC(mempool_put(t_pool, big, sizeof big, &r), -EAGAIN);
    ck_assert_int_eq(lock_owner(), INT_MAX);      /* R still rebuilding */
    ASSERT_RC(kill(c, SIGCONT), 0);
    t_wait_ok(c);
    t_wait_ok(rb);
    close(rep[0]);
    close(rep[1]);
    close(go[1]);
    (void)mempool_reap(t_pool);                   /* D, if R did not */
    t_assert_settled(t_pool, objects0, used0);
}
END_TEST

/* A worker stopped at the end of a spill write of object r (its DRef
 * from fd arg); continued, its move_to_disk's result goes over rep_fd. */
static int end_writer(void *arg)
{
    mempool *q;
    mempool_dref r;
    setenv("MEMPOOL_FAILPOINT", "spill.written=stop@1", 1);
    T_CHILD_EQ(t_attach(t_name, &q), 0);
    T_CHILD_EQ(t_recv_dref((int)(intptr_t)arg, &r, T_WAIT_S), 0);
    T_CHILD_EQ(t_send_u64(rep_fd, (uint64_t)(int64_t)
                          mempool_move_to_disk(q, r, NULL)), 0);
    T_CHILD_EQ(mempool_close(q), 0);
    return 0;
}

START_TEST(test_planted_live)
{
    mp_header *h;
    mempool_dref r = t_put_fill(t_pool, BIG, 7);
    uint64_t v;
    size_t len;
    int rep[2], in[2];
    pid_t c;
    h = (mp_header *)(void *)t_map_arena_rw(t_name, &len);
    ck_assert_ptr_nonnull(h);
    t_pipe(rep);
    t_pipe(in);
    rep_fd = rep[1];
    c = t_fork(end_writer, (void *)(intptr_t)in[0]);
    close(in[0]);
    ASSERT_RC(t_send_dref(in[1], r), 0);
    t_await_stopped(c, "spill.written");
    ck_assert_int_eq(__atomic_load_n(&h->alloc_lock.__data.__lock,
                                     __ATOMIC_RELAXED), 0);
    __atomic_store_n(&h->alloc_lock.__data.__owner, (int)getpid(),
                     __ATOMIC_RELAXED);
    __atomic_store_n(&h->alloc_lock.__data.__lock, (int)getpid(),
                     __ATOMIC_RELAXED);      /* alive, never lets go */
    ck_assert_int_eq(kill(c, SIGCONT), 0);
    ASSERT_RC(t_recv_u64(rep[0], &v, T_WAIT_S), 0);
    __atomic_store_n(&h->alloc_lock.__data.__lock, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&h->alloc_lock.__data.__owner, 0, __ATOMIC_RELAXED);
    munmap(h, len);
    ck_assert_int_eq((int64_t)v, -EAGAIN);
    t_wait_ok(c);
    t_expect_fill(t_pool, r, BIG, 7);             /* as it was */
    t_assert_healthy(t_pool);
    ASSERT_RC(mempool_move_to_disk(t_pool, r, NULL), 0);
    t_expect_fill(t_pool, r, BIG, 7);
    ASSERT_RC(mempool_delete(t_pool, r), 0);
    t_assert_healthy(t_pool);
    close(rep[0]);
    close(rep[1]);
    close(in[1]);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "lock_owner", 120, true, { test_inconsistent, test_planted_live } },
        { .name = NULL }
    };
    return t_main("lock_owner", cases);
}
