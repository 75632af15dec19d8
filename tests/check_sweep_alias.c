/* SPDX-License-Identifier: MIT */
/*
 * check_sweep_alias.c - the box sweep's own word (src/core/box_sweep.c, "the
 * sweep's hazard"). A sweep reads box b's word, finds b an orphan, and
 * frees it with a CAS on the word it read. Stopped (or just preempted)
 * between the two, it holds a word that another sweep may free meanwhile;
 * the box is then claimed again by later sends of the same object, and a
 * box word has only a 7-bit nonce, so after 128 claims one of them is the
 * very word the stopped sweep holds: continued, it frees that live box -
 * the item in the ring is lost, the ring names a free box and the next
 * receive fails (MEMPOOL_ECORRUPT). Fixed by a hazard: the sweep announces
 * b before it looks again and frees, and no claim keeps a box a sweeping
 * worker announces, so the word it CASes is the box it judged.
 *
 *   stopped_sweeper  a sweeper stopped at box.sweeping on a dead
 *                    receiver's orphan, another sweep, T_ALIAS_SENDS sends of
 *                    the same object (every nonce comes round), the sweeper
 *                    continued: the last item is received whole, the
 *                    references are exact, the pool checks clean.
 *   killed_sweeper   the same sweeper killed there: its reaper frees the
 *                    orphan it left (and its hazard goes), nothing leaks.
 *
 * INTERNAL: it reads the box words (layout.h) to find the box and to send
 * until a claim of it has the stopped sweeper's word. Needs failpoints.
 */
#include "helpers.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "internal.h"
#include "handoff_helpers.h"

static const mempool_put_options rco = { 0, 0, MEMPOOL_PUT_REFCOUNTED };

/* Child: attach and reap, stopping in the first sweep that finds an orphan
 * (at its slot claim or in mempool_reap, whichever meets it first). */
static int sweeper(void *arg)
{
    mempool *p;
    (void)arg;
    setenv("MEMPOOL_FAILPOINT", "box.sweeping=stop@1", 1);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_ASSERT(mempool_reap(p) >= 0);
    mempool_close(p);
    return 0;
}

/* An orphan: x's box taken out of the ring by a receiver killed before it
 * freed it (recv.taken); its slot not reaped yet. The box's index and
 * word through @p b and @p w0. */
static void make_orphan(mempool_chan **c, mempool_dref *x, uint32_t *b,
                        uint64_t *w0)
{
    uint64_t v = 46;
    pid_t t;
    ASSERT_RC(mempool_chan_open(t_pool, "q", 8, MEMPOOL_CHAN_CREATE, c), 0);
    ASSERT_RC(mempool_put_ex(t_pool, &v, sizeof(v), &rco, x), 0);
    t_send_ref(*c, *x);
    *b = t_only_box(t_pool);
    *w0 = atomic_load(&t_pool->boxw[*b]);
    t = t_fork(t_stopped_receiver, (void *)"q");
    t_await_stopped(t, "recv.taken");
    ASSERT_RC(kill(t, SIGKILL), 0);
    ck_assert_int_eq(t_wait(t, T_WAIT_S), 128 + SIGKILL);
}

/* x has our reference only once the ring is empty; then it goes. */
static void finish(mempool_chan *c, mempool_dref x)
{
    mempool_dref r;
    ck_assert_int_eq(mempool_chan_recv(c, &r, 0), -ETIMEDOUT);
    ck_assert_int_eq(t_refs(t_pool, x), 1);
    ASSERT_RC(mempool_unref(t_pool, x), 0);   /* the last reference */
    ck_assert_int_eq(mempool_ref(t_pool, x), -ENOENT);
    ASSERT_RC(mempool_chan_close(c), 0);
    ASSERT_RC(mempool_chan_destroy(t_pool, "q"), 0);
    t_assert_healthy(t_pool);
    ck_assert_uint_eq(t_stats(t_pool).objects, 0);
}

START_TEST(test_stopped_sweeper)
{
    mempool_chan *c;
    mempool_dref x, r;
    uint64_t w0;
    uint32_t b;
    bool aliased;
    pid_t s, d;
    int rc;

    make_orphan(&c, &x, &b, &w0);
    s = t_fork(sweeper, NULL);
    t_await_stopped(s, "box.sweeping");     /* about to free b by w0 */
    /* Another sweep (a claim's, a reap's) meets the same orphan. */
    d = t_fork(t_dies, NULL);
    t_wait_ok(d);
    ck_assert_int_ge(mempool_reap(t_pool), 1);
    aliased = t_send_until_alias(c, x, b, w0);
    ASSERT_RC(kill(s, SIGCONT), 0);
    t_wait_ok(s);
    /* The item sent last is still in the ring, whole. */
    rc = mempool_chan_recv(c, &r, 10000);
    ck_assert_msg(rc == 0, "the stopped sweep freed a live box %u (a later "
                  "claim %s its word); the receive: %d", b,
                  aliased ? "had" : "never had", rc);
    ck_assert(r.off == x.off && r.gen == x.gen);
    ck_assert_msg(!aliased, "box %u was claimed again under a stopped "
                  "sweep's hazard", b);
    ck_assert_uint_eq(atomic_load(&t_pool->boxw[b]), 0);  /* it freed b */
    ASSERT_RC(mempool_unref(t_pool, r), 0);
    ck_assert_uint_eq(atomic_load(&t_pool->hand->sweeping), 0);
    finish(c, x);
}
END_TEST

START_TEST(test_killed_sweeper)
{
    mempool_chan *c;
    mempool_dref x;
    uint64_t w0;
    uint32_t b;
    pid_t s;

    make_orphan(&c, &x, &b, &w0);
    s = t_fork(sweeper, NULL);
    t_await_stopped(s, "box.sweeping");
    ASSERT_RC(kill(s, SIGKILL), 0);
    ck_assert_int_eq(t_wait(s, T_WAIT_S), 128 + SIGKILL);
    ck_assert_int_ge(mempool_reap(t_pool), 1);    /* the sweeper's reaper */
    ck_assert_uint_eq(atomic_load(&t_pool->boxw[b]), 0);
    ck_assert_uint_eq(atomic_load(&t_pool->hand->sweeping), 0);
    finish(c, x);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "alias", 120, true, { test_stopped_sweeper, test_killed_sweeper } },
        { .name = NULL }
    };
    return t_main("sweep_alias", cases);
}

