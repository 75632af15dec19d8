/* SPDX-License-Identifier: MIT */
/*
 * check_handoff_look.c - channel and name_get sleepers without a timer:
 * a counted sleep with neither deadline nor cap asks its handle's keeper
 * thread to look again for it after MP_SL_LOOK_NS (src/handoff/keeper.c,
 * mempool__keep_look) instead of arming a 5 s timer itself.
 *
 *   many        more receiver threads asleep in one process than the
 *               keeper has places (the rest sleep with the cap): every
 *               one gets its item.
 *   name        a name_get asleep untimed gets the name once bound.
 *   failpoints  (failpoint builds) a sender killed between its ring
 *               commit and its wake-up (send.committed=kill) leaves a
 *               receiver asleep untimed next to the item: the keeper's
 *               look wakes it (one receiver: two threads starting the
 *               keeper at once leave one of them capped, which would pass
 *               without the look); the same with keep.start=eio (no
 *               keeper: the capped sleep finds it);
 *               a receiver killed or stopped right after registering its
 *               look (keep.looked=kill / stop) costs the others nothing
 *               and, continued, the stopped one gets an item.
 *
 * No timing assertions: a lost wake-up shows as a child that never ends,
 * found by the watchdog (t_wait with T_WAIT_S) and reported.
 */
#include "helpers.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define MANY 80                /* more than the keeper's 64 places */

static const mempool_put_options rco = { 0, 0, MEMPOOL_PUT_REFCOUNTED };

/* Put a refcounted object and send it: our reference goes with it. */
static void send_item(mempool_chan *c, uint64_t x)
{
    mempool_dref r;
    ASSERT_RC(mempool_put_ex(t_pool, &x, sizeof(x), &rco, &r), 0);
    ASSERT_RC(mempool_chan_send(c, r, -1), 0);
}

struct rx {
    mempool_chan *c;
    mempool *p;
    int rc;
};

/* One receive without a deadline; its result in rc. */
static void *rx_thread(void *arg)
{
    struct rx *x = arg;
    mempool_dref r;
    x->rc = mempool_chan_recv(x->c, &r, -1);
    if (x->rc == 0)
        x->rc = mempool_unref(x->p, r);
    return NULL;
}

/* Child: @p n receiver threads on channel "k", each one untimed receive
 * (the failpoint spec in the environment variable T_SPEC, if any);
 * 0 when every one got an item. */
static int receivers(void *arg)
{
    int n = (int)(intptr_t)arg, bad = 0;
    const char *spec = getenv("T_SPEC");
    pthread_t th[MANY];
    struct rx x[MANY];
    mempool *p;
    mempool_chan *c;
    if (spec)
        setenv("MEMPOOL_FAILPOINT", spec, 1);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_chan_open(p, "k", 0, 0, &c), 0);
    for (int i = 0; i < n; i++) {
        x[i] = (struct rx){ c, p, -1 };
        T_CHILD_EQ(pthread_create(&th[i], NULL, rx_thread, &x[i]), 0);
    }
    for (int i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        bad += x[i].rc != 0;
    }
    mempool_chan_close(c);
    mempool_close(p);
    return bad ? 10 : 0;
}

static pid_t receivers_start(int n, const char *spec)
{
    pid_t k;
    if (spec)
        setenv("T_SPEC", spec, 1);
    k = t_fork(receivers, (void *)(intptr_t)n);
    unsetenv("T_SPEC");
    return k;
}

static void chan_end(mempool_chan *c)
{
    ck_assert_uint_eq(t_chan_info(t_pool, "k", NULL).depth, 0);
    ASSERT_RC(mempool_chan_close(c), 0);
    ASSERT_RC(mempool_chan_destroy(t_pool, "k"), 0);
    t_assert_healthy(t_pool);
}

START_TEST(test_many)
{
    mempool_chan *c;
    pid_t k;
    ASSERT_RC(mempool_chan_open(t_pool, "k", 128, MEMPOOL_CHAN_CREATE, &c),
              0);
    k = receivers_start(MANY, NULL);
    t_await_receivers("k", MANY);
    for (int i = 0; i < MANY; i++)
        send_item(c, (uint64_t)i);
    t_wait_ok(k);
    chan_end(c);
}
END_TEST

/* Child: name_get of "look.n" without a deadline; 0 when it got it. */
static int name_waiter(void *arg)
{
    mempool *p;
    mempool_dref r;
    (void)arg;
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_name_get(p, "look.n", &r, -1), 0);
    mempool_close(p);
    return 0;
}

START_TEST(test_name)
{
    mempool_dref r;
    uint64_t x = 3;
    pid_t k = t_fork(name_waiter, NULL);
    t_sleep_ms(200);                  /* most likely asleep by now */
    ASSERT_RC(mempool_put_ex(t_pool, &x, sizeof(x), &rco, &r), 0);
    ASSERT_RC(mempool_name_put(t_pool, "look.n", r, 0), 0);
    ASSERT_RC(mempool_unref(t_pool, r), 0);
    t_wait_ok(k);
    ASSERT_RC(mempool_name_drop(t_pool, "look.n"), 0);
    t_assert_healthy(t_pool);
}
END_TEST

#ifdef MEMPOOL_FAILPOINTS

/* The channel of t_child_send_killed, the sender killed after its item
 * is in the ring, before it woke anyone. */
static char killed_chan[] = "k";

/* A receiver (failpoint @p spec) asleep untimed when a sender dies
 * between commit and wake-up finds the item (the keeper's look, or the
 * capped sleep without a keeper). */
static void killed_sender_case(const char *spec)
{
    mempool_chan *c;
    pid_t k, s;
    ASSERT_RC(mempool_chan_open(t_pool, "k", 8, MEMPOOL_CHAN_CREATE, &c), 0);
    k = receivers_start(1, spec);
    t_await_receivers("k", 1);
    s = t_fork(t_child_send_killed, killed_chan);
    ck_assert_int_eq(t_wait(s, T_WAIT_S), 128 + SIGKILL);
    /* The item is in the ring and nobody was woken for it. */
    {
        double t0 = t_now_s();
        while (t_chan_info(t_pool, "k", NULL).depth != 0) {
            ck_assert_msg(t_now_s() - t0 < T_WAIT_S,
                          "%s: nobody looked again", spec ? spec : "keeper");
            t_sleep_ms(10);
        }
    }
    t_wait_ok(k);
    ck_assert_int_eq(mempool_reap(t_pool), 1);     /* the dead sender */
    chan_end(c);
}

START_TEST(test_killed_sender)
{
    killed_sender_case(NULL);
}
END_TEST

START_TEST(test_killed_sender_no_keeper)
{
    killed_sender_case("keep.start=eio");
}
END_TEST

/* A receiver killed or stopped just after registering its look: items
 * sent meanwhile reach another receiver; a stopped one, continued, gets
 * the next. */
static void looked_case(const char *spec, bool stop)
{
    mempool_chan *c;
    pid_t k, o;
    ASSERT_RC(mempool_chan_open(t_pool, "k", 8, MEMPOOL_CHAN_CREATE, &c), 0);
    k = receivers_start(1, spec);
    if (stop) {
        t_await_stopped(k, spec);
    } else {
        int st = t_wait(k, T_WAIT_S);
        ck_assert_msg(st == 128 + SIGKILL, "%s: receiver ended with %d", spec,
                      st);
    }
    o = receivers_start(1, NULL);
    send_item(c, 7);
    t_wait_ok(o);
    if (stop) {
        ASSERT_RC(kill(k, SIGCONT), 0);
        send_item(c, 8);
        t_wait_ok(k);
    } else {
        ck_assert_int_ge(mempool_reap(t_pool), 0);  /* the killed one */
    }
    chan_end(c);
}

START_TEST(test_looked_kill)
{
    looked_case("keep.looked=kill@1", false);
}
END_TEST

START_TEST(test_looked_stop)
{
    looked_case("keep.looked=stop@1", true);
}
END_TEST
#endif

int main(void)
{
    const struct t_case cases[] = {
        { "look", 120, true, { test_many, test_name } },
#ifdef MEMPOOL_FAILPOINTS
        { "look_failpoints", 120, true, {
              test_killed_sender, test_killed_sender_no_keeper,
              test_looked_kill, test_looked_stop } },
#endif
        { .name = NULL }
    };
    return t_main("handoff_look", cases);
}
