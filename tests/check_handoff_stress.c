/* SPDX-License-Identifier: MIT */
/*
 * check_handoff_stress.c - the handoff primitives hammered by threads of
 * one process on one handle, so ThreadSanitizer sees every access (the
 * multi-process tests are in check_handoff_chan.c; TSan cannot see
 * happens-before made in another process). Labelled "stress": the TSan
 * lane runs it.
 *
 *   queue      4 producer and 4 consumer threads, refcounted items, a
 *              small ring (senders and receivers both wait): every item
 *              received exactly once, in order per producer, and no object
 *              is left at the end.
 *   broadcast  2 publishers, 3 subscribers reading as fast as they can:
 *              each subscriber sees increasing sequence numbers per
 *              publisher; received + dropped accounts for every item.
 *   names      threads binding, replacing, reading and dropping a few
 *              names of refcounted objects at once; then nothing leaks.
 *   flight     threads giving and taking references of shared objects.
 */
#include "helpers.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static const mempool_put_options rco = { 0, 0, MEMPOOL_PUT_REFCOUNTED };

#define NP 4
#define NC 4
#define PER 3000

static mempool_chan *qc;
static _Atomic uint64_t got[NP], sum[NP];
static _Atomic int order_bad, errors;

static void *q_producer(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (uint64_t i = 0; i < PER; i++) {
        uint64_t x = ((uint64_t)id << 32) | i;
        mempool_dref r;
        if (mempool_put_ex(t_pool, &x, sizeof(x), &rco, &r) ||
            mempool_chan_send(qc, r, 60000))
            atomic_fetch_add(&errors, 1);
    }
    return NULL;
}

static void *q_consumer(void *arg)
{
    uint64_t last[NP];
    (void)arg;
    for (int i = 0; i < NP; i++)
        last[i] = UINT64_MAX;
    for (;;) {
        mempool_dref r;
        mempool_view v;
        uint64_t x;
        if (mempool_chan_recv(qc, &r, 60000)) {
            atomic_fetch_add(&errors, 1);
            return NULL;
        }
        if (mempool_get(t_pool, r, &v)) {
            atomic_fetch_add(&errors, 1);
            return NULL;
        }
        memcpy(&x, v.data, sizeof(x));
        mempool_release(t_pool, &v);
        if (mempool_unref(t_pool, r))
            atomic_fetch_add(&errors, 1);
        if (x == UINT64_MAX)
            return NULL;
        int id = (int)(x >> 32);
        uint64_t seq = x & 0xffffffffu;
        if (id < 0 || id >= NP) {
            atomic_fetch_add(&errors, 1);
            continue;
        }
        if (last[id] != UINT64_MAX && seq <= last[id])
            atomic_fetch_add(&order_bad, 1);
        last[id] = seq;
        atomic_fetch_add(&got[id], 1);
        atomic_fetch_add(&sum[id], seq);
    }
}

START_TEST(test_queue_threads)
{
    pthread_t p[NP], c[NC];
    ASSERT_RC(mempool_chan_open(t_pool, "tq", 16, MEMPOOL_CHAN_CREATE, &qc),
              0);
    for (int i = 0; i < NC; i++)
        pthread_create(&c[i], NULL, q_consumer, NULL);
    for (int i = 0; i < NP; i++)
        pthread_create(&p[i], NULL, q_producer, (void *)(intptr_t)i);
    for (int i = 0; i < NP; i++)
        pthread_join(p[i], NULL);
    for (int i = 0; i < NC; i++) {
        uint64_t x = UINT64_MAX;
        mempool_dref r;
        ASSERT_RC(mempool_put_ex(t_pool, &x, sizeof(x), &rco, &r), 0);
        ASSERT_RC(mempool_chan_send(qc, r, 60000), 0);
    }
    for (int i = 0; i < NC; i++)
        pthread_join(c[i], NULL);
    ck_assert_int_eq(errors, 0);
    ck_assert_int_eq(order_bad, 0);
    for (int i = 0; i < NP; i++) {
        ck_assert_uint_eq(got[i], PER);
        ck_assert_uint_eq(sum[i], (uint64_t)PER * (PER - 1) / 2);
    }
    ck_assert_uint_eq(t_stats(t_pool).objects, 0);
    ASSERT_RC(mempool_chan_close(qc), 0);
    t_assert_healthy(t_pool);
}
END_TEST

/* ---- broadcast ----------------------------------------------------------- */

#define BP 2
#define BPER 4000
#define BS 3
static _Atomic int pubs_done;
static _Atomic uint64_t b_received, b_lost_reports;

static void *b_pub(void *arg)
{
    int id = (int)(intptr_t)arg;
    mempool_chan *c;
    if (mempool_chan_open(t_pool, "tb", 0, MEMPOOL_CHAN_BROADCAST, &c)) {
        atomic_fetch_add(&errors, 1);
        return NULL;
    }
    for (uint64_t i = 0; i < BPER; i++) {
        uint64_t x = ((uint64_t)id << 32) | i;
        mempool_dref r;
        if (mempool_put_ex(t_pool, &x, sizeof(x), &rco, &r) ||
            mempool_chan_send(c, r, 0))
            atomic_fetch_add(&errors, 1);
    }
    mempool_chan_close(c);
    atomic_fetch_add(&pubs_done, 1);
    return NULL;
}

static void *b_sub(void *arg)
{
    mempool_chan *c = arg;
    uint64_t last[BP] = { UINT64_MAX, UINT64_MAX };
    for (;;) {
        mempool_dref r;
        mempool_view v;
        uint64_t x;
        int rc = mempool_chan_recv(c, &r, 20);
        /* Done once all are published and a look after that finds
         * nothing: a timeout before the last sends (publishers off the
         * CPU for 20 ms) followed by pubs_done would leave items unread */
        if (rc == -ETIMEDOUT && atomic_load(&pubs_done) == BP &&
            (rc = mempool_chan_recv(c, &r, 0)) == -ETIMEDOUT)
            break;
        if (rc == -EOVERFLOW) {
            atomic_fetch_add(&b_lost_reports, 1);
            continue;
        }
        if (rc == -ETIMEDOUT)
            continue;
        if (rc || mempool_get(t_pool, r, &v)) {
            atomic_fetch_add(&errors, 1);
            break;
        }
        memcpy(&x, v.data, sizeof(x));
        mempool_release(t_pool, &v);
        mempool_unref(t_pool, r);
        int id = (int)(x >> 32);
        if (id < 0 || id >= BP ||
            (last[id] != UINT64_MAX && (x & 0xffffffffu) <= last[id]))
            atomic_fetch_add(&order_bad, 1);
        else
            last[id] = x & 0xffffffffu;
        atomic_fetch_add(&b_received, 1);
    }
    return NULL;
}

static int find_chan(const mempool_chan_info *ci, void *arg)
{
    if (strcmp(ci->name, "tb") == 0) {
        *(mempool_chan_info *)arg = *ci;
        return 1;
    }
    return 0;
}

START_TEST(test_broadcast_threads)
{
    pthread_t p[BP], s[BS];
    mempool_chan *sub[BS], *own;
    mempool_chan_info in;
    ASSERT_RC(mempool_chan_open(t_pool, "tb", 32,
                                MEMPOOL_CHAN_CREATE | MEMPOOL_CHAN_BROADCAST,
                                &own), 0);
    for (int i = 0; i < BS; i++) {
        ASSERT_RC(mempool_chan_open(t_pool, "tb", 0, MEMPOOL_CHAN_BROADCAST,
                                    &sub[i]), 0);
        pthread_create(&s[i], NULL, b_sub, sub[i]);
    }
    for (int i = 0; i < BP; i++)
        pthread_create(&p[i], NULL, b_pub, (void *)(intptr_t)i);
    for (int i = 0; i < BP; i++)
        pthread_join(p[i], NULL);
    for (int i = 0; i < BS; i++)
        pthread_join(s[i], NULL);
    ck_assert_int_eq(errors, 0);
    ck_assert_int_eq(order_bad, 0);
    ASSERT_RC(mempool_chan_list(t_pool, find_chan, &in), 1);
    /* Each subscriber either received or lost every item. */
    ck_assert_uint_eq(in.received + in.dropped, (uint64_t)BS * BP * BPER);
    ck_assert_uint_eq(in.received, b_received);
    ASSERT_RC(mempool_chan_destroy(t_pool, "tb"), 0);
    for (int i = 0; i < BS; i++)
        ASSERT_RC(mempool_chan_close(sub[i]), 0);
    ASSERT_RC(mempool_chan_close(own), 0);
    ck_assert_uint_eq(t_stats(t_pool).objects, 0);
    t_assert_healthy(t_pool);
}
END_TEST

/* ---- names and flight ------------------------------------------------------ */

static void *names_main(void *arg)
{
    uint64_t seed = (uint64_t)(intptr_t)arg + 1;
    for (int i = 0; i < 3000; i++) {
        char nm[16];
        mempool_dref r, out;
        uint64_t k = t_rand(&seed);
        snprintf(nm, sizeof(nm), "n%d", (int)(k % 4));
        switch ((k >> 8) % 4) {
        case 0:
        case 1:
            if (mempool_put_ex(t_pool, &k, sizeof(k), &rco, &r)) {
                atomic_fetch_add(&errors, 1);
                break;
            }
            if (mempool_name_put(t_pool, nm, r, (k >> 16) & 1 ?
                                 MEMPOOL_NAME_REPLACE : 0) == -ENOSPC)
                atomic_fetch_add(&errors, 1);
            mempool_unref(t_pool, r);
            break;
        case 2:
            if (mempool_name_get(t_pool, nm, &out, 0) == 0 &&
                mempool_ref(t_pool, out) == 0) {
                mempool_view v;
                if (mempool_get(t_pool, out, &v) == 0)
                    mempool_release(t_pool, &v);
                mempool_unref(t_pool, out);
            }
            break;
        default:
            mempool_name_drop(t_pool, nm);
        }
    }
    return NULL;
}

static mempool_dref shared[4];

static void *flight_main(void *arg)
{
    uint64_t seed = (uint64_t)(intptr_t)arg + 7;
    int held[4] = { 0 };
    for (int i = 0; i < 4000; i++) {
        int k = (int)(t_rand(&seed) % 4);
        if (held[k] && (t_rand(&seed) & 1)) {
            if (mempool_ref_give(t_pool, shared[k], -1) == 0)
                held[k]--;
        } else if (mempool_ref_take(t_pool, shared[k]) == 0) {
            held[k]++;
        }
    }
    for (int k = 0; k < 4; k++)
        while (held[k]-- > 0)
            if (mempool_ref_give(t_pool, shared[k], -1))
                atomic_fetch_add(&errors, 1);
    return NULL;
}

START_TEST(test_names_flight_threads)
{
    pthread_t t[8];
    for (int k = 0; k < 4; k++) {
        uint64_t x = (uint64_t)k;
        ASSERT_RC(mempool_put_ex(t_pool, &x, sizeof(x), &rco, &shared[k]), 0);
        for (int j = 0; j < 3; j++)
            ASSERT_RC(mempool_ref(t_pool, shared[k]), 0);
        for (int j = 0; j < 4; j++)
            ASSERT_RC(mempool_ref_give(t_pool, shared[k], -1), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, names_main, (void *)(intptr_t)i);
    for (int i = 4; i < 8; i++)
        pthread_create(&t[i], NULL, flight_main, (void *)(intptr_t)i);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    ck_assert_int_eq(errors, 0);
    t_assert_healthy(t_pool);
    /* Every reference given is in flight again: take and drop them all. */
    for (int k = 0; k < 4; k++) {
        int n = 0;
        while (mempool_ref_take(t_pool, shared[k]) == 0) {
            ASSERT_RC(mempool_unref(t_pool, shared[k]), 0);
            n++;
        }
        ck_assert_int_eq(n, 4);
    }
    for (int k = 0; k < 4; k++) {
        char nm[16];
        snprintf(nm, sizeof(nm), "n%d", k);
        mempool_name_drop(t_pool, nm);
    }
    ck_assert_uint_eq(t_stats(t_pool).objects, 0);
    t_assert_healthy(t_pool);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "threads", 300, true, {
              test_queue_threads, test_broadcast_threads,
              test_names_flight_threads } },
        { .name = NULL }
    };
    return t_main("hstress", cases);
}
