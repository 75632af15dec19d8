/* SPDX-License-Identifier: MIT */
/*
 * check_handoff_subs.c - broadcast subscriptions hammered by threads of
 * one handle, so ThreadSanitizer sees every access (labelled "stress": the
 * TSan lane runs it). Threads open and close subscriber handles of one
 * channel as fast as they can while publishers send refcounted items and
 * long-lived subscribers read them, and another thread destroys and
 * re-creates a second channel whose handles the openers also churn.
 * Afterwards the subscriber count is exactly the number of handles still
 * open (per incarnation), every long-lived subscriber saw increasing
 * numbers per publisher with received + lost = sent, and once everything
 * is closed and destroyed no object is left (fsck clean).
 */
#include "helpers.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static const mempool_put_options rco = { 0, 0, MEMPOOL_PUT_REFCOUNTED };

#define NOPEN 3            /* threads opening and closing handles */
#define NPUB 2
#define NSUB 2
#define PER 3000
#define KEEP 5             /* handles each opener keeps open at the end */

static _Atomic int errors, pubs_done;
static mempool_chan *kept[NOPEN][KEEP];   /* the openers' handles left open */
static _Atomic uint64_t got[NSUB], lost[NSUB];

static void *opener(void *arg)
{
    mempool_chan **keep = kept[(intptr_t)arg];
    for (int i = 0; i < 1500; i++) {
        mempool_chan *c, *d;
        if (mempool_chan_open(t_pool, "sb", 0, MEMPOOL_CHAN_BROADCAST, &c))
            atomic_fetch_add(&errors, 1);
        else
            mempool_chan_close(c);
        /* The churned channel may be gone or be another incarnation. */
        if (mempool_chan_open(t_pool, "churn", 0, MEMPOOL_CHAN_BROADCAST,
                              &d) == 0)
            mempool_chan_close(d);
    }
    for (int i = 0; i < KEEP; i++)
        if (mempool_chan_open(t_pool, "sb", 0, MEMPOOL_CHAN_BROADCAST,
                              &keep[i]))
            atomic_fetch_add(&errors, 1);
    return NULL;            /* the KEEP handles stay open: counted below */
}

static void *churner(void *arg)
{
    (void)arg;
    for (int i = 0; i < 300; i++) {
        mempool_chan *c;
        if (mempool_chan_open(t_pool, "churn", 4, MEMPOOL_CHAN_CREATE |
                              MEMPOOL_CHAN_BROADCAST, &c) == 0)
            mempool_chan_close(c);
        (void)mempool_chan_destroy(t_pool, "churn");
    }
    return NULL;
}

static void *publisher(void *arg)
{
    int id = (int)(intptr_t)arg;
    mempool_chan *c;
    if (mempool_chan_open(t_pool, "sb", 0, MEMPOOL_CHAN_BROADCAST, &c)) {
        atomic_fetch_add(&errors, 1);
        return NULL;
    }
    for (uint64_t i = 0; i < PER; i++) {
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

static void *reader(void *arg)
{
    int id = (int)(intptr_t)arg;
    mempool_chan *c = NULL;
    uint64_t last[NPUB];
    for (int i = 0; i < NPUB; i++)
        last[i] = UINT64_MAX;
    if (mempool_chan_open(t_pool, "sb", 0, MEMPOOL_CHAN_BROADCAST, &c)) {
        atomic_fetch_add(&errors, 1);
        return NULL;
    }
    for (;;) {
        mempool_dref r;
        mempool_view v;
        uint64_t x;
        int rc = mempool_chan_recv(c, &r, 20);
        if (rc == -ETIMEDOUT && atomic_load(&pubs_done) == NPUB &&
            (rc = mempool_chan_recv(c, &r, 0)) == -ETIMEDOUT)
            break;
        if (rc == -ETIMEDOUT)
            continue;
        if (rc == -EOVERFLOW) {
            atomic_fetch_add(&lost[id], 1);
            continue;
        }
        if (rc || mempool_get(t_pool, r, &v)) {
            atomic_fetch_add(&errors, 1);
            break;
        }
        memcpy(&x, v.data, sizeof(x));
        mempool_release(t_pool, &v);
        mempool_unref(t_pool, r);
        if ((x >> 32) >= NPUB ||
            (last[x >> 32] != UINT64_MAX && (x & 0xffffffffu) <= last[x >> 32]))
            atomic_fetch_add(&errors, 1);
        else
            last[x >> 32] = x & 0xffffffffu;
        atomic_fetch_add(&got[id], 1);
    }
    mempool_chan_close(c);
    return NULL;
}

static int info_subs(const char *name)
{
    bool found;
    mempool_chan_info in = t_chan_info(t_pool, name, &found);
    return found ? (int)in.subscribers : -1;
}

START_TEST(test_subscriber_churn)
{
    pthread_t o[NOPEN], ch, pb[NPUB], rd[NSUB];
    mempool_chan *mine;
    mempool_chan_info in;
    uint64_t total = 0;

    ASSERT_RC(mempool_chan_open(t_pool, "sb", 64, MEMPOOL_CHAN_CREATE |
                                MEMPOOL_CHAN_BROADCAST, &mine), 0);
    for (int i = 0; i < NSUB; i++)
        ck_assert_int_eq(pthread_create(&rd[i], NULL, reader,
                                        (void *)(intptr_t)i), 0);
    while (info_subs("sb") < 1 + NSUB)
        t_sleep_ms(1);              /* readers subscribed before any send */
    for (int i = 0; i < NOPEN; i++)
        ck_assert_int_eq(pthread_create(&o[i], NULL, opener,
                                        (void *)(intptr_t)i), 0);
    ck_assert_int_eq(pthread_create(&ch, NULL, churner, NULL), 0);
    for (int i = 0; i < NPUB; i++)
        ck_assert_int_eq(pthread_create(&pb[i], NULL, publisher,
                                        (void *)(intptr_t)i), 0);
    for (int i = 0; i < NPUB; i++)
        pthread_join(pb[i], NULL);
    for (int i = 0; i < NOPEN; i++)
        pthread_join(o[i], NULL);
    pthread_join(ch, NULL);
    for (int i = 0; i < NSUB; i++)
        pthread_join(rd[i], NULL);
    ck_assert_int_eq(atomic_load(&errors), 0);
    /* Ours and the openers' kept ones; readers and publishers closed. */
    ck_assert_int_eq(info_subs("sb"), 1 + NOPEN * KEEP);
    for (int i = 0; i < NOPEN; i++)
        for (int k = 0; k < KEEP; k++)
            ASSERT_RC(mempool_chan_close(kept[i][k]), 0);
    ck_assert_int_eq(info_subs("sb"), 1);
    ck_assert_int_le(info_subs("churn"), 0);
    in = t_chan_info(t_pool, "sb", NULL);
    for (int i = 0; i < NSUB; i++)
        total += got[i];
    ck_assert_uint_eq(in.sent, NPUB * PER);
    ck_assert_uint_eq(in.received, total);
    /* Only the readers receive (and so only they can lose items), and
     * they subscribed before the first send: each accounts for every item. */
    ck_assert_uint_eq(total + in.dropped, (uint64_t)NSUB * NPUB * PER);
    ASSERT_RC(mempool_chan_destroy(t_pool, "sb"), 0);
    ck_assert_int_eq(info_subs("sb"), -1);
    ASSERT_RC(mempool_chan_close(mine), 0);
    (void)mempool_chan_destroy(t_pool, "churn");
    ck_assert_uint_eq(t_stats(t_pool).objects, 0);
    t_assert_healthy(t_pool);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "churn", 240, true, { test_subscriber_churn } },
        { .name = NULL }
    };
    return t_main("handoff_subs", cases);
}
