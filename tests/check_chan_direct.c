/* SPDX-License-Identifier: MIT */
/*
 * check_chan_direct.c - plain objects in queue channels travel as direct
 * items, in their sender's records instead of boxes (chan_direct.c):
 *
 *   - more plain items of one sender in rings than it has records: the
 *     rest go in boxes, every item comes out once, in order, and the
 *     records are taken again afterwards;
 *   - a sender that died (and one that closed) with items in the ring:
 *     the next process in its worker slot must not reuse those records -
 *     every item comes out as sent;
 *   - threads of one handle sending and receiving plain items at once
 *     (labelled "stress": the TSan lane sees the records and their busy
 *     marks), exactly once each, nothing left.
 *
 * The kill at every step (send.direct, recv.direct) is in
 * check_handoff_crash (its channel "cp").
 */
#include "helpers.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define BIG_ARENA (128ull << 20)     /* 2048 ring slots: more than the
                                        1024 records of a sender */

static bool same(mempool_dref a, mempool_dref b)
{
    return a.off == b.off && a.gen == b.gen;
}

/* The 8-byte tag object @p r holds (must be live). */
static uint64_t tag_of(mempool *p, mempool_dref r)
{
    mempool_view v;
    uint64_t tag = UINT64_MAX;
    if (mempool_get(p, r, &v) == 0) {
        if (v.len == sizeof(tag))
            memcpy(&tag, v.data, sizeof(tag));
        mempool_release(p, &v);
    }
    return tag;
}

START_TEST(test_more_than_records)
{
    enum { N = 1500 };
    static mempool_dref sent[N];
    char name[T_NAME_LEN];
    mempool *p;
    mempool_chan *c;
    mempool_dref r;

    t_pool_name(name, "direct");
    ASSERT_RC(t_open(name, BIG_ARENA, &p), 0);
    ASSERT_RC(mempool_chan_open(p, "many", 2000, MEMPOOL_CHAN_CREATE, &c), 0);
    for (int round = 0; round < 2; round++) {
        for (uint64_t i = 0; i < N; i++) {
            ASSERT_RC(mempool_put(p, &i, sizeof(i), &sent[i]), 0);
            ASSERT_RC(mempool_chan_send(c, sent[i], 0), 0);
        }
        ck_assert_uint_eq(t_chan_info(p, "many", NULL).depth, N);
        t_assert_healthy(p);           /* direct and boxed slots alike */
        for (uint64_t i = 0; i < N; i++) {
            ASSERT_RC(mempool_chan_recv(c, &r, 0), 0);
            ck_assert_msg(same(r, sent[i]), "item %" PRIu64 " of round %d "
                          "came out as another", i, round);
            ck_assert_uint_eq(tag_of(p, r), i);
            ASSERT_RC(mempool_delete(p, r), 0);
        }
        ASSERT_RC(mempool_chan_recv(c, &r, 0), -ETIMEDOUT);
    }
    ck_assert_uint_eq(t_stats(p).objects, 0);
    t_assert_healthy(p);
    ASSERT_RC(mempool_chan_close(c), 0);
    ASSERT_RC(mempool_close(p), 0);
    ASSERT_RC(mempool_destroy(name), 0);
}
END_TEST

/* ------------------------------------------------- successors in a slot */

#define PER 6
static uint64_t child_base;
static bool child_closes;

/* Attach, send PER plain items tagged child_base + i, then close or die
 * without closing (its slot reaped by the next attach). */
static int sender_child(void *arg)
{
    mempool *p;
    mempool_chan *c;
    (void)arg;
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_chan_open(p, "succ", 0, 0, &c), 0);
    for (uint64_t i = 0; i < PER; i++) {
        uint64_t tag = child_base + i;
        mempool_dref r;
        T_CHILD_EQ(mempool_put(p, &tag, sizeof(tag), &r), 0);
        T_CHILD_EQ(mempool_chan_send(c, r, 0), 0);
    }
    if (child_closes) {
        T_CHILD_EQ(mempool_chan_close(c), 0);
        T_CHILD_EQ(mempool_close(p), 0);
    }
    _exit(0);
}

START_TEST(test_successor_keeps_items)
{
    mempool_chan *c;
    mempool_dref r;

    ASSERT_RC(mempool_chan_open(t_pool, "succ", 64, MEMPOOL_CHAN_CREATE, &c),
              0);
    /* Four senders one after another, likely in the same worker slot:
     * dying or closing, each leaves its items (in its records) behind. */
    for (int k = 0; k < 4; k++) {
        child_base = (uint64_t)k * 100;
        child_closes = k % 2;
        t_wait_ok(t_fork(sender_child, NULL));
        ck_assert_int_ge(mempool_reap(t_pool), 0);
    }
    for (int k = 0; k < 4; k++)
        for (uint64_t i = 0; i < PER; i++) {
            ASSERT_RC(mempool_chan_recv(c, &r, 0), 0);
            ck_assert_uint_eq(tag_of(t_pool, r), (uint64_t)k * 100 + i);
            ASSERT_RC(mempool_delete(t_pool, r), 0);
        }
    ASSERT_RC(mempool_chan_recv(c, &r, 0), -ETIMEDOUT);
    ck_assert_uint_eq(t_stats(t_pool).objects, 0);
    t_assert_healthy(t_pool);
    ASSERT_RC(mempool_chan_close(c), 0);
}
END_TEST

/* ------------------------------------------------ threads of one handle */

#define NSEND 4
#define NRECV 2
#define EACH 4000
static _Atomic uint8_t seen[NSEND * EACH];
static _Atomic int errors;
static mempool_chan *tq;

static void *t_sender(void *arg)
{
    uint64_t base = (uint64_t)(intptr_t)arg * EACH;
    for (uint64_t i = 0; i < EACH; i++) {
        uint64_t tag = base + i;
        mempool_dref r;
        if (mempool_put(t_pool, &tag, sizeof(tag), &r) ||
            mempool_chan_send(tq, r, 60000))
            atomic_fetch_add(&errors, 1);
    }
    return NULL;
}

static void *t_receiver(void *arg)
{
    (void)arg;
    for (int i = 0; i < NSEND * EACH / NRECV; i++) {
        mempool_dref r;
        uint64_t tag;
        if (mempool_chan_recv(tq, &r, 60000)) {
            atomic_fetch_add(&errors, 1);
            continue;
        }
        tag = tag_of(t_pool, r);
        if (tag >= NSEND * EACH || atomic_fetch_add(&seen[tag], 1))
            atomic_fetch_add(&errors, 1);    /* a stranger, or twice */
        if (mempool_delete(t_pool, r))
            atomic_fetch_add(&errors, 1);
    }
    return NULL;
}

START_TEST(test_threads_exactly_once)
{
    pthread_t th[NSEND + NRECV];
    mempool_dref r;

    ASSERT_RC(mempool_chan_open(t_pool, "thr", 32, MEMPOOL_CHAN_CREATE, &tq),
              0);
    for (intptr_t i = 0; i < NSEND; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, t_sender, (void *)i), 0);
    for (int i = 0; i < NRECV; i++)
        ck_assert_int_eq(pthread_create(&th[NSEND + i], NULL, t_receiver,
                                        NULL), 0);
    for (int i = 0; i < NSEND + NRECV; i++)
        pthread_join(th[i], NULL);
    ck_assert_int_eq(atomic_load(&errors), 0);
    for (int i = 0; i < NSEND * EACH; i++)
        ck_assert_msg(atomic_load(&seen[i]) == 1, "item %d seen %d times", i,
                      atomic_load(&seen[i]));
    ASSERT_RC(mempool_chan_recv(tq, &r, 0), -ETIMEDOUT);
    ck_assert_uint_eq(t_stats(t_pool).objects, 0);
    t_assert_healthy(t_pool);
    ASSERT_RC(mempool_chan_close(tq), 0);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "many", 120, false, { test_more_than_records } },
        { "succ", 120, true, { test_successor_keeps_items } },
        { "threads", 240, true, { test_threads_exactly_once } },
        { .name = NULL }
    };
    return t_main("chan_direct", cases);
}
