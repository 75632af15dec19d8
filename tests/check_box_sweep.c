/* SPDX-License-Identifier: MIT */
/*
 * check_box_sweep.c - the box sweep against a LIVE taker (src/core/
 * box_hazard.c, "taking"): a receiver stopped at recv.taken (the ring slot taken, its
 * box not yet freed) holds a box no record references. A reap's sweep
 * must leave that box alone: freed, the box is claimed again by later
 * sends of the same object, and after 128 claims one of them has the
 * stopped receiver's word (7-bit nonce); the receiver, continued, frees
 * that live box, the item is lost and the next receive finds a ring naming
 * a free box (MEMPOOL_ECORRUPT). And a taker killed there leaves an orphan
 * the sweep does free (delivered with its reference, exactly once).
 * The same for the other takers: a broadcast sender stopped after
 * overwriting a slot, a name replacer or dropper after the record's CAS.
 *
 * INTERNAL: it reads the box words (layout.h) to find the taken box and
 * to send until a claim of that box aliases the receiver's word.
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

/* Bits a receiver's free of its taken box compares (chan_item.c:
 * mempool__chan_free_taken ignores the state and who fields). */
#define SAME (~((UINT64_C(3) << 15) | (UINT64_C(0x7f) << 8)))
#define SENDS 300                /* > 128: every nonce comes round */

/* If the sweep freed box @p b (not @p spared): send x until a new claim
 * of b holds a word the stopped receiver's free would take (its bits of
 * @p bw0), and leave that one in the ring; true if that happened. Spared,
 * b stays the receiver's: send and receive as many items anyway. */
static bool send_until_alias(mempool_chan *c, mempool_dref x, uint32_t b,
                             uint64_t bw0, bool spared)
{
    for (int i = 0; i < SENDS; i++) {
        uint64_t w;
        mempool_dref r;
        t_send_ref(c, x);
        w = atomic_load(&t_pool->boxw[b]);
        if (!spared && (w & SAME) == (bw0 & SAME))
            return true;
        ASSERT_RC(mempool_chan_recv(c, &r, 10000), 0);
        ASSERT_RC(mempool_unref(t_pool, r), 0);
    }
    t_send_ref(c, x);
    return false;
}

START_TEST(test_sweep_spares_live_taker)
{
    mempool_chan *c;
    mempool_dref x, r;
    uint64_t v = 42, bw0;
    uint32_t b;
    bool aliased, spared;
    pid_t t, d;
    int rc;

    ASSERT_RC(mempool_chan_open(t_pool, "q", 8, MEMPOOL_CHAN_CREATE, &c), 0);
    ASSERT_RC(mempool_put_ex(t_pool, &v, sizeof(v), &rco, &x), 0);
    t_send_ref(c, x);
    b = t_only_box(t_pool);
    bw0 = atomic_load(&t_pool->boxw[b]);
    t = t_fork(t_stopped_receiver, (void *)"q");
    t_await_stopped(t, "recv.taken");               /* slot taken, box b not yet freed */
    d = t_fork(t_dies, NULL);
    t_wait_ok(d);
    ck_assert_int_ge(mempool_reap(t_pool), 1);        /* a sweep */
    spared = atomic_load(&t_pool->boxw[b]) == bw0;
    aliased = send_until_alias(c, x, b, bw0, spared);
    ASSERT_RC(kill(t, SIGCONT), 0);
    t_wait_ok(t);
    /* The item sent last is still in the ring, whole. */
    rc = mempool_chan_recv(c, &r, 10000);
    ck_assert_msg(spared && rc == 0, "the sweep %s box %u of a live "
                  "receiver; a claim %s its word; the receive: %d",
                  spared ? "spared" : "freed", b,
                  aliased ? "aliased" : "never aliased", rc);
    ck_assert(r.off == x.off && r.gen == x.gen);
    ASSERT_RC(mempool_unref(t_pool, r), 0);
    ck_assert_int_eq(mempool_chan_recv(c, &r, 0), -ETIMEDOUT);
    ASSERT_RC(mempool_unref(t_pool, x), 0);
    ASSERT_RC(mempool_chan_close(c), 0);
    ASSERT_RC(mempool_chan_destroy(t_pool, "q"), 0);
    t_assert_healthy(t_pool);
}
END_TEST

/* The same receiver killed there instead: its announcement counts for
 * nothing, the box is an orphan the reap frees, the item is delivered
 * (its reference went with the dead receiver's cell) and not in the ring. */
START_TEST(test_sweep_frees_dead_taker)
{
    mempool_chan *c;
    mempool_dref x, r;
    uint64_t v = 43;
    uint32_t b;
    pid_t t;

    ASSERT_RC(mempool_chan_open(t_pool, "q", 8, MEMPOOL_CHAN_CREATE, &c), 0);
    ASSERT_RC(mempool_put_ex(t_pool, &v, sizeof(v), &rco, &x), 0);
    t_send_ref(c, x);
    b = t_only_box(t_pool);
    t = t_fork(t_stopped_receiver, (void *)"q");
    t_await_stopped(t, "recv.taken");
    ASSERT_RC(kill(t, SIGKILL), 0);
    ck_assert_int_eq(t_wait(t, T_WAIT_S), 128 + SIGKILL);
    ck_assert_int_ge(mempool_reap(t_pool), 1);
    ck_assert_uint_eq(atomic_load(&t_pool->boxw[b]), 0);
    ck_assert_int_eq(mempool_chan_recv(c, &r, 0), -ETIMEDOUT);
    ASSERT_RC(mempool_unref(t_pool, x), 0);   /* the last reference */
    ck_assert_int_eq(mempool_ref(t_pool, x), -ENOENT);
    ASSERT_RC(mempool_chan_close(c), 0);
    ASSERT_RC(mempool_chan_destroy(t_pool, "q"), 0);
    t_assert_healthy(t_pool);
}
END_TEST

/* ---- the other takers: broadcast overwrite, name replace, name drop ---- */

enum { T_BCAST, T_REPLACE, T_DROP };
static const char *const points[] = {
    "bcast.overwrote=stop@1", "name.bound=stop@1", "name.dropped=stop@1"
};
static mempool_dref shared_y;

/* Child: let go of the record's box holding x (overwrite the broadcast
 * slot with y, rebind the name to y, drop the name), stopped right after
 * that CAS, before it drops the box. */
static int other_taker(void *arg)
{
    int kind = (int)(intptr_t)arg;
    mempool *p;
    mempool_chan *c;
    setenv("MEMPOOL_FAILPOINT", points[kind], 1);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    if (kind == T_BCAST) {
        T_CHILD_EQ(mempool_chan_open(p, "b", 0, MEMPOOL_CHAN_BROADCAST, &c),
                   0);
        T_CHILD_EQ(mempool_ref(p, shared_y), 0);
        T_CHILD_EQ(mempool_chan_send(c, shared_y, -1), 0);
        mempool_chan_close(c);
    } else if (kind == T_REPLACE) {
        T_CHILD_EQ(mempool_name_put(p, "n", shared_y, MEMPOOL_NAME_REPLACE),
                   0);
    } else {
        T_CHILD_EQ(mempool_name_drop(p, "n"), 0);
    }
    mempool_close(p);
    return 0;
}

/* The record of x's box let go of it, its taker stopped before dropping
 * it: a reap's sweep must leave it to the taker. */
static void other_case(int kind)
{
    mempool_chan *c = NULL;
    mempool_dref x;
    uint64_t v = 44, u = 45, w0;
    uint32_t b;
    bool spared;
    pid_t t, d;

    ASSERT_RC(mempool_put_ex(t_pool, &v, sizeof(v), &rco, &x), 0);
    ASSERT_RC(mempool_put_ex(t_pool, &u, sizeof(u), &rco, &shared_y), 0);
    if (kind == T_BCAST) {
        ASSERT_RC(mempool_chan_open(t_pool, "b", 1, MEMPOOL_CHAN_CREATE |
                                    MEMPOOL_CHAN_BROADCAST, &c), 0);
        t_send_ref(c, x);
    } else {
        ASSERT_RC(mempool_name_put(t_pool, "n", x, 0), 0);
    }
    b = t_only_box(t_pool);
    w0 = atomic_load(&t_pool->boxw[b]);
    t = t_fork(other_taker, (void *)(intptr_t)kind);
    t_await_stopped(t, points[kind]);
    d = t_fork(t_dies, NULL);
    t_wait_ok(d);
    ck_assert_int_ge(mempool_reap(t_pool), 1);        /* a sweep */
    spared = atomic_load(&t_pool->boxw[b]) == w0;
    ASSERT_RC(kill(t, SIGCONT), 0);
    t_wait_ok(t);
    ck_assert_msg(spared, "%s: the sweep freed box %u of a live taker",
                  points[kind], b);
    if (c) {
        ASSERT_RC(mempool_chan_close(c), 0);
        ASSERT_RC(mempool_chan_destroy(t_pool, "b"), 0);
    } else if (kind == T_REPLACE) {
        ASSERT_RC(mempool_name_drop(t_pool, "n"), 0);
    }
    ASSERT_RC(mempool_unref(t_pool, x), 0);
    ASSERT_RC(mempool_unref(t_pool, shared_y), 0);
    t_assert_healthy(t_pool);
}

START_TEST(test_sweep_spares_bcast_overwriter) { other_case(T_BCAST); }
END_TEST
START_TEST(test_sweep_spares_name_replacer) { other_case(T_REPLACE); }
END_TEST
START_TEST(test_sweep_spares_name_dropper) { other_case(T_DROP); }
END_TEST

/* Our own slot's announcement words damaged in shared memory (all four
 * busy for good): a receive waits the peer bound, then takes its item
 * unannounced - it does not hang, and nothing is lost or leaked. */
START_TEST(test_damaged_announce_words)
{
    _Atomic uint64_t *t = t_pool->slots[t_pool->slot].box_taking;
    mempool_chan *c;
    mempool_dref x, r;

    ASSERT_RC(mempool_chan_open(t_pool, "d", 4, MEMPOOL_CHAN_CREATE, &c), 0);
    ASSERT_RC(mempool_put_ex(t_pool, "x", 1, &rco, &x), 0);
    ASSERT_RC(mempool_chan_send(c, x, 10000), 0);       /* our reference */
    for (unsigned k = 0; k < MP_TAKING; k++)
        atomic_store(&t[k], UINT64_C(0xdead));
    ASSERT_RC(mempool_chan_recv(c, &r, 10000), 0);
    for (unsigned k = 0; k < MP_TAKING; k++) {
        ck_assert_uint_eq(atomic_load(&t[k]), UINT64_C(0xdead));
        atomic_store(&t[k], 0);
    }
    ck_assert_uint_eq(r.off, x.off);
    ck_assert_uint_eq(r.gen, x.gen);
    ASSERT_RC(mempool_unref(t_pool, r), 0);
    ASSERT_RC(mempool_chan_close(c), 0);
    ASSERT_RC(mempool_chan_destroy(t_pool, "d"), 0);
    t_assert_healthy(t_pool);
    ck_assert_uint_eq(t_stats(t_pool).objects, 0);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "sweep", 120, true, {
              test_sweep_spares_live_taker, test_sweep_frees_dead_taker,
              test_sweep_spares_bcast_overwriter,
              test_sweep_spares_name_replacer, test_sweep_spares_name_dropper,
              test_damaged_announce_words } },
        { .name = NULL }
    };
    return t_main("box_sweep", cases);
}
