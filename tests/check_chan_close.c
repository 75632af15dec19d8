/* SPDX-License-Identifier: MIT */
/*
 * check_chan_close.c - the take window of a channel's close (chan.c,
 * close_ring(), run by mempool_chan_destroy() and by whoever finishes a
 * dead destroyer's work): a ring slot is CLOSED with its item taken out,
 * and the item's box is not yet dropped (failpoint chan.closed, once per
 * item). Every item of the channel is held twice - by the ring and by us -
 * so each must end with exactly our reference: one more is a leak, one
 * fewer a reference dropped twice, none an item lost.
 *
 *   kill   the destroyer SIGKILLed at every hit of chan.closed (each item
 *          of a queue and of a broadcast channel), finished by its reaper
 *          or by the next directory locker (then the dead destroyer's
 *          taken box is an orphan its reaper frees): exact references,
 *          the channel gone, the ring free, fsck clean.
 *   stop   the destroyer stopped there with the second item taken: a
 *          reap's sweep spares that box (its live taker drops it), the
 *          channel answers -EPIPE / -ENOENT meanwhile; continued, the
 *          destroy finishes with exact references.
 *
 * Needs a -DMEMPOOL_FAILPOINTS=ON build.
 */
#include "helpers.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

static const mempool_put_options rco = { 0, 0, MEMPOOL_PUT_REFCOUNTED };

#define NITEMS 3
static char fp_spec[64];

static int destroyer(void *arg)
{
    mempool *p;
    (void)arg;
    setenv("MEMPOOL_FAILPOINT", fp_spec, 1);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_chan_destroy(p, "kc"), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

/* Channel "kc" holding NITEMS refcounted items, each also referenced by
 * us (so the ring's reference shows in the count). */
static mempool_chan *fill(bool bcast, mempool_dref *items)
{
    mempool_chan *c;
    ASSERT_RC(mempool_chan_open(t_pool, "kc", bcast ? NITEMS + 1 : NITEMS,
                                MEMPOOL_CHAN_CREATE |
                                    (bcast ? MEMPOOL_CHAN_BROADCAST : 0),
                                &c), 0);
    for (int k = 0; k < NITEMS; k++) {
        uint64_t x = 100 + (uint64_t)k;
        ASSERT_RC(mempool_put_ex(t_pool, &x, sizeof(x), &rco, &items[k]), 0);
        ASSERT_RC(mempool_ref(t_pool, items[k]), 0);
        ASSERT_RC(mempool_chan_send(c, items[k], 0), 0);   /* one moves */
        ck_assert_int_eq(t_refs(t_pool, items[k]), 2);
    }
    return c;
}

/* Each item has exactly our reference; then they go, and the channel is
 * gone with its whole ring range. */
static void verify(mempool_chan *c, const mempool_dref *items,
                   uint64_t objects0, const char *what)
{
    mempool_chan *w;
    for (int k = 0; k < NITEMS; k++) {
        long n = t_refs(t_pool, items[k]);
        ck_assert_msg(n == 1, "%s: item %d has %ld references, want ours "
                      "only (2: leaked, -1: dropped twice)", what, k, n);
        ASSERT_RC(mempool_unref(t_pool, items[k]), 0);
    }
    ASSERT_RC(mempool_chan_send(c, items[0], 0), -EPIPE);
    ASSERT_RC(mempool_chan_close(c), 0);
    ASSERT_RC(mempool_chan_destroy(t_pool, "kc"), -ENOENT);
    ck_assert_uint_eq(t_stats(t_pool).objects, objects0);
    t_assert_healthy(t_pool);
    /* The ring is whole again: a channel as large as it fits. */
    ASSERT_RC(mempool_chan_open(t_pool, "whole", 1024, MEMPOOL_CHAN_CREATE,
                                &w), 0);
    ASSERT_RC(mempool_chan_close(w), 0);
    ASSERT_RC(mempool_chan_destroy(t_pool, "whole"), 0);
}

/* _i: hit n (NITEMS of them, then one past: not reached) x kind (queue,
 * broadcast) x finisher (reaper, next directory locker). */
START_TEST(test_close_kill)
{
    int n = 1 + _i / 4, st;
    bool bcast = (_i / 2) % 2, by_locker = _i % 2;
    uint64_t objects0 = t_stats(t_pool).objects;
    mempool_dref items[NITEMS];
    mempool_chan *c, *c2;
    char what[96];
    pid_t d;

    snprintf(what, sizeof what, "chan.closed@%d, %s, %s", n,
             bcast ? "broadcast" : "queue",
             by_locker ? "next locker" : "reaper");
    c = fill(bcast, items);
    snprintf(fp_spec, sizeof fp_spec, "chan.closed@%d", n);
    d = t_fork(destroyer, NULL);
    st = t_wait(d, T_WAIT_S);
    ck_assert_msg(st == (n <= NITEMS ? 128 + SIGKILL : 0), "%s: the "
                  "destroyer ended with %d", what, st);
    ASSERT_RC(mempool_chan_open(t_pool, "kc", 0,
                                bcast ? MEMPOOL_CHAN_BROADCAST : 0, &c2),
              -ENOENT);
    if (n <= NITEMS) {
        /* Items before n dropped, n taken (its box held, an orphan now),
         * the rest still in the ring: none dropped twice, none lost. */
        for (int k = 0; k < NITEMS; k++)
            ck_assert_msg(t_refs(t_pool, items[k]) == (k < n - 1 ? 1 : 2),
                          "%s: item %d has %ld references", what, k,
                          t_refs(t_pool, items[k]));
    }
    if (by_locker) {
        ASSERT_RC(mempool_chan_open(t_pool, "locker", 1, MEMPOOL_CHAN_CREATE,
                                    &c2), 0);
        ASSERT_RC(mempool_chan_close(c2), 0);
        ASSERT_RC(mempool_chan_destroy(t_pool, "locker"), 0);
        /* The ring is closed: only the dead destroyer's taken box is
         * left, for its reaper. */
        for (int k = 0; k < NITEMS; k++)
            ck_assert_int_eq(t_refs(t_pool, items[k]),
                             k == n - 1 ? 2 : 1);
    }
    ck_assert_int_ge(mempool_reap(t_pool), n <= NITEMS ? 1 : 0);
    verify(c, items, objects0, what);
}
END_TEST

START_TEST(test_close_stop)
{
    bool bcast = _i;
    uint64_t objects0 = t_stats(t_pool).objects;
    mempool_dref items[NITEMS], r;
    mempool_chan *c, *c2;
    pid_t d, k;

    c = fill(bcast, items);
    snprintf(fp_spec, sizeof fp_spec, "chan.closed=stop@2");
    d = t_fork(destroyer, NULL);
    t_await_stopped(d, "chan.closed");
    /* A reap's sweep: the second item's box is taken out of its slot by a
     * live destroyer, which drops it itself. */
    k = t_fork(t_dies, NULL);
    t_wait_ok(k);
    ck_assert_int_ge(mempool_reap(t_pool), 1);
    ck_assert_int_eq(t_refs(t_pool, items[0]), 1);
    ck_assert_int_eq(t_refs(t_pool, items[1]), 2);
    ck_assert_int_eq(t_refs(t_pool, items[2]), 2);
    /* The channel is going: no send, no receive, no open. */
    ASSERT_RC(mempool_chan_send(c, items[0], 0), -EPIPE);
    ASSERT_RC(mempool_chan_recv(c, &r, 0), -EPIPE);
    ASSERT_RC(mempool_chan_open(t_pool, "kc", 0,
                                bcast ? MEMPOOL_CHAN_BROADCAST : 0, &c2),
              -ENOENT);
    ASSERT_RC(kill(d, SIGCONT), 0);
    t_wait_ok(d);
    verify(c, items, objects0, bcast ? "stop, broadcast" : "stop, queue");
}
END_TEST

static Suite *close_suite(void)
{
    Suite *s = suite_create("chan_close");
    TCase *tc = t_tcase(s, "kill", 120);
    tcase_add_loop_test(tc, test_close_kill, 0, 4 * (NITEMS + 1));
    tc = t_tcase(s, "stop", 60);
    tcase_add_loop_test(tc, test_close_stop, 0, 2);
    return s;
}

int main(void)
{
    return t_run(close_suite(), "chan_close");
}
