/* SPDX-License-Identifier: MIT */
/*
 * check_flight_alias.c - the word a flight taker or expirer holds
 * (src/handoff/flight.c, src/core/box_hazard.c "hazards"). mempool_ref_take()
 * and the expiry sweep read a reference in flight's box word, judge the
 * box, and take or drop it with a CAS on the word they read. Stopped (or
 * just preempted) between the two, they hold a word that another taker or
 * expirer may free meanwhile; the box is then claimed again by later
 * sends of the same object, and a box word has only a 7-bit nonce (a HELD
 * flight box and a HELD channel box of one object look alike), so after
 * 128 claims one of them is the very word the stopped one holds:
 * continued, it frees that live channel box - the item in the ring is
 * lost, the ring names a free box and the next receive fails. Fixed as
 * the sweep's hazard was: they announce the box as a hazard before they
 * look again, and no claim keeps a box a hazard names.
 *
 *   stopped_expirer  an expirer stopped at take.expiring on an expired
 *                    reference in flight, the same reference expired by
 *                    another, T_ALIAS_SENDS sends of the same object,
 *                    the expirer continued: the last item is received
 *                    whole, the references are exact, the pool checks
 *                    clean.
 *   killed_expirer   the same expirer killed there: its hazard spares
 *                    nothing, its reaper clears it, nothing leaks.
 *   stopped_taker    a taker stopped at take.celled (its cell added, the
 *                    box not yet freed), the reference taken by another,
 *                    the sends, the taker continued: it finds nothing to
 *                    take (-ENOENT), the last item is received whole.
 *
 * INTERNAL: it reads the box words (layout.h) to find the box and to send
 * until a claim of it has the stopped one's word. Needs failpoints.
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

static mempool_dref shared_x;    /* the object (set before the forks) */

/* Child: attach and run the expiry sweep (mempool_reap's), stopping at
 * the first expired reference in flight it judges. */
static int expirer(void *arg)
{
    mempool *p;
    (void)arg;
    setenv("MEMPOOL_FAILPOINT", "take.expiring=stop@1", 1);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_ASSERT(mempool_reap(p) >= 0);
    mempool_close(p);
    return 0;
}

/* Child: take x back from flight, stopping with its cell added. By the
 * time it goes on another has taken the one reference in flight: nothing
 * to take. Exit status 2 if it took something anyway (a channel's box). */
static int taker(void *arg)
{
    mempool *p;
    int rc;
    (void)arg;
    setenv("MEMPOOL_FAILPOINT", "take.celled=stop@1", 1);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    rc = mempool_ref_take(p, shared_x);
    mempool_close(p);
    return rc == -ENOENT ? 0 : 2;
}

/* x, with one reference of ours and one given with @p ttl_ms into flight:
 * its flight box through @p b and its word through @p w0; channel "q". */
static void give_x(mempool_chan **c, int64_t ttl_ms, uint32_t *b,
                   uint64_t *w0)
{
    uint64_t v = 47;
    ASSERT_RC(mempool_chan_open(t_pool, "q", 8, MEMPOOL_CHAN_CREATE, c), 0);
    ASSERT_RC(mempool_put_ex(t_pool, &v, sizeof(v), &rco, &shared_x), 0);
    ASSERT_RC(mempool_ref(t_pool, shared_x), 0);
    ASSERT_RC(mempool_ref_give(t_pool, shared_x, ttl_ms), 0);
    *b = t_only_box(t_pool);
    *w0 = atomic_load(&t_pool->boxw[*b]);
}

/* The sends (the stopped one holds word @p w0 of box @p b), the stopped
 * @p pid continued, the last item received whole; true if b held w0
 * again while it was stopped. */
static bool alias_round(mempool_chan *c, uint32_t b, uint64_t w0, pid_t pid)
{
    bool aliased = t_send_until_alias(c, shared_x, b, w0);
    mempool_dref r;
    int rc, st;
    ASSERT_RC(kill(pid, SIGCONT), 0);
    st = t_wait(pid, T_WAIT_S);
    rc = mempool_chan_recv(c, &r, 10000);
    ck_assert_msg(rc == 0, "the stopped one freed a live box %u (a later "
                  "claim %s its word); the receive: %d", b,
                  aliased ? "had" : "never had", rc);
    ck_assert(r.off == shared_x.off && r.gen == shared_x.gen);
    ASSERT_RC(mempool_unref(t_pool, r), 0);
    ck_assert_msg(st == 0, "the stopped one ended with %d (2: it took a "
                  "channel's box)", st);
    return aliased;
}

/* x has our reference only once the ring and flight are empty. */
static void finish(mempool_chan *c)
{
    mempool_dref r, x = shared_x;
    ck_assert_int_eq(mempool_chan_recv(c, &r, 0), -ETIMEDOUT);
    ck_assert_int_eq(mempool_ref_take(t_pool, x), -ENOENT);
    ck_assert_int_eq(t_refs(t_pool, x), 1);
    ASSERT_RC(mempool_unref(t_pool, x), 0);   /* the last reference */
    ck_assert_int_eq(mempool_ref(t_pool, x), -ENOENT);
    ASSERT_RC(mempool_chan_close(c), 0);
    ASSERT_RC(mempool_chan_destroy(t_pool, "q"), 0);
    ck_assert_uint_eq(atomic_load(&t_pool->hand->sweeping), 0);
    t_assert_healthy(t_pool);
    ck_assert_uint_eq(t_stats(t_pool).objects, 0);
}

/* A reference given with a 1 ms TTL, expired by now; an expirer stopped
 * on it. */
static pid_t stopped_expirer(mempool_chan **c, uint32_t *b, uint64_t *w0)
{
    pid_t e;
    give_x(c, 1, b, w0);
    t_sleep_ms(20);
    e = t_fork(expirer, NULL);
    t_await_stopped(e, "take.expiring");   /* about to drop b by w0 */
    return e;
}

START_TEST(test_stopped_expirer)
{
    mempool_chan *c;
    uint64_t w0;
    uint32_t b;
    pid_t e = stopped_expirer(&c, &b, &w0);

    /* Another expiry sweep drops the same reference. */
    ck_assert_int_ge(mempool_reap(t_pool), 0);
    ck_assert_uint_eq(atomic_load(&t_pool->boxw[b]), 0);
    ck_assert_int_eq(t_refs(t_pool, shared_x), 1);
    ck_assert_msg(!alias_round(c, b, w0, e), "box %u was claimed again "
                  "under a stopped expirer's hazard", b);
    finish(c);
}
END_TEST

START_TEST(test_killed_expirer)
{
    mempool_chan *c;
    mempool_dref r;
    uint64_t w0;
    uint32_t b;
    pid_t e = stopped_expirer(&c, &b, &w0);

    ck_assert_int_eq(t_kill(e), SIGKILL);
    ck_assert_int_ge(mempool_reap(t_pool), 0);
    ck_assert_uint_eq(atomic_load(&t_pool->boxw[b]), 0);   /* expired */
    /* Its hazard counts for nothing now: b is claimed again. */
    ck_assert_msg(t_send_until_alias(c, shared_x, b, w0), "box %u is "
                  "spared for a dead expirer", b);
    ASSERT_RC(mempool_chan_recv(c, &r, 10000), 0);
    ASSERT_RC(mempool_unref(t_pool, r), 0);
    /* It stopped in its slot claim's reap (its slot not yet active): the
     * next claim of that slot reaps it, here a worker that dies at once. */
    t_wait_ok(t_fork(t_dies, NULL));
    ck_assert_int_ge(mempool_reap(t_pool), 1);
    finish(c);
}
END_TEST

START_TEST(test_stopped_taker)
{
    mempool_chan *c;
    uint64_t w0;
    uint32_t b;
    pid_t t;

    give_x(&c, -1, &b, &w0);
    t = t_fork(taker, NULL);
    t_await_stopped(t, "take.celled");     /* about to free b by w0 */
    ASSERT_RC(mempool_ref_take(t_pool, shared_x), 0);   /* we take it */
    ASSERT_RC(mempool_unref(t_pool, shared_x), 0);
    ck_assert_uint_eq(atomic_load(&t_pool->boxw[b]), 0);
    ck_assert_msg(!alias_round(c, b, w0, t), "box %u was claimed again "
                  "under a stopped taker's hazard", b);
    finish(c);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "alias", 120, true, {
              test_stopped_expirer, test_killed_expirer, test_stopped_taker,
          } },
        { .name = NULL }
    };
    return t_main("flight_alias", cases);
}
