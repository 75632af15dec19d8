/* SPDX-License-Identifier: MIT */
/*
 * check_chan_fan.c - many producers and many consumers on one queue
 * channel, the pattern of mempool-bench's "stream 4×4" row: plain 64 B
 * objects put by 4 producers, received, read and deleted by 4 consumers
 * (so each consumer deletes objects of every producer: the allocator's
 * cross-process hand-back), with a small ring so that both sides keep
 * falling asleep and waking each other (sleepers.h).
 *
 *   procs    4 producer and 4 consumer processes: every item received
 *            exactly once, in send order per producer as each consumer
 *            sees them, the channel's sent and received counts exact, no
 *            object left, the pool checks clean.
 *   stopped  (failpoint builds) the same with one consumer stopped at
 *            its first counted sleep (wait.counted): the other three do
 *            it all, though it stays counted asleep; continued, it finds
 *            its futex word moved and leaves without sleeping.
 *   threads  4 producer and 4 consumer threads of one handle (labelled
 *            "stress": the TSan lane sees every access), the same checks.
 *
 * Kills at every wait step (wait.checking, wait.counted) are in
 * check_handoff_waiters and check_handoff_crash.
 */
#include "helpers.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define NP 4
#define NC 4
#define PER 3000
#define TOTAL (NP * PER)
#define CAP 8

/* What every party shares: the items seen, the total received, faults. */
struct fan {
    _Atomic uint32_t seen[TOTAL];
    _Atomic uint64_t received;
    _Atomic uint32_t started;       /* consumers that took an item */
    struct t_note note;
};

static struct fan *fan;

/* One item: producer @p me's @p seq-th, 64 bytes tagged with its number. */
static int put_item(mempool *p, int me, int seq, mempool_dref *r)
{
    uint64_t buf[8] = { (uint64_t)me * PER + (uint64_t)seq };
    return mempool_put(p, buf, sizeof buf, r);
}

static int produce(mempool *p, mempool_chan *c, int me)
{
    for (int i = 0; i < PER; i++) {
        mempool_dref r;
        int rc, tries = 0;
        /* -EAGAIN: an allocator lock's holder was stopped past the
         * peer bound (a loaded machine's long preemption): try again. */
        while ((rc = put_item(p, me, i, &r)) == -EAGAIN && ++tries < 100)
            usleep(1000);
        if (rc == 0 && (rc = mempool_chan_send(c, r, 60000)) != 0)
            (void)mempool_delete(p, r);
        if (rc) {
            t_note_bug(&fan->note, "put or send", rc);
            return 1;
        }
    }
    return 0;
}

/* One received item: its tag, seen once, in order for its producer. */
static void took(mempool *p, mempool_dref r, int64_t *last)
{
    mempool_view v;
    uint64_t tag = UINT64_MAX;
    int rc = mempool_get(p, r, &v);
    if (rc == 0) {
        if (v.len == 64)
            memcpy(&tag, v.data, sizeof tag);
        mempool_release(p, &v);
    }
    if (rc || tag >= TOTAL) {
        t_note_bug(&fan->note, "a stranger item", rc ? rc : (long long)tag);
        return;
    }
    if (atomic_fetch_add(&fan->seen[tag], 1))
        t_note_bug(&fan->note, "an item received twice", (long long)tag);
    if ((int64_t)(tag % PER) <= last[tag / PER])
        t_note_bug(&fan->note, "out of order for its producer",
                   (long long)tag);
    last[tag / PER] = (int64_t)(tag % PER);
    if ((rc = mempool_delete(p, r)))
        t_note_bug(&fan->note, "delete", rc);
}

/* Receive until every item is in; -ETIMEDOUT only means look again. */
static int consume(mempool *p, mempool_chan *c)
{
    int64_t last[NP];
    bool first = true;
    for (int i = 0; i < NP; i++)
        last[i] = -1;
    while (atomic_load(&fan->received) < TOTAL &&
           !atomic_load(&fan->note.failed)) {
        mempool_dref r;
        int rc = mempool_chan_recv(c, &r, 100);
        if (rc == -ETIMEDOUT)
            continue;
        if (rc) {
            t_note_bug(&fan->note, "recv", rc);
            return 1;
        }
        took(p, r, last);
        atomic_fetch_add(&fan->received, 1);
        if (first)
            atomic_fetch_add(&fan->started, 1);
        first = false;
    }
    return 0;
}

/* A child: producer (arg < NP) or consumer, on its own handle. */
static int party(void *arg)
{
    intptr_t me = (intptr_t)arg;
    mempool *p;
    mempool_chan *c;
    int rc;
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_chan_open(p, "fan", CAP, 0, &c), 0);
    rc = me < NP ? produce(p, c, (int)me) : consume(p, c);
    mempool_chan_close(c);
    mempool_close(p);
    return rc;
}

/* The end of a run: everything once, the counts exact, nothing left. */
static void check_all(mempool *p)
{
    mempool_chan_info ci;
    mempool_dref r;
    mempool_chan *c;
    ck_assert_msg(!atomic_load(&fan->note.failed), "%s", fan->note.why);
    ck_assert_uint_eq(atomic_load(&fan->received), TOTAL);
    for (int i = 0; i < TOTAL; i++)
        ck_assert_msg(atomic_load(&fan->seen[i]) == 1,
                      "item %d seen %u times", i, atomic_load(&fan->seen[i]));
    ci = t_chan_info(p, "fan", NULL);
    ck_assert_uint_eq(ci.sent, TOTAL);
    ck_assert_uint_eq(ci.received, TOTAL);
    ck_assert_uint_eq(ci.depth, 0);
    ASSERT_RC(mempool_chan_open(p, "fan", CAP, 0, &c), 0);
    ASSERT_RC(mempool_chan_recv(c, &r, 0), -ETIMEDOUT);
    ASSERT_RC(mempool_chan_close(c), 0);
    ck_assert_uint_eq(t_stats(p).objects, 0);
    t_assert_healthy(p);
}

static void fan_setup(void)
{
    mempool_chan *c;
    fan = t_shared_map(sizeof *fan);
    ASSERT_RC(mempool_chan_open(t_pool, "fan", CAP, MEMPOOL_CHAN_CREATE,
                                &c), 0);
    ASSERT_RC(mempool_chan_close(c), 0);
}

START_TEST(test_procs)
{
    pid_t k[NP + NC];
    fan_setup();
    for (intptr_t i = 0; i < NP + NC; i++)
        k[i] = t_fork(party, (void *)i);
    for (int i = 0; i < NP + NC; i++)
        t_wait_ok(k[i]);
    check_all(t_pool);
    munmap(fan, sizeof *fan);
}
END_TEST

#ifdef T_FAILPOINTS
/* Consumer NP, to be stopped at its first counted sleep (wait.counted:
 * inside recv, holding no slot, no item and no lock). */
static int stopped_party(void *arg)
{
    setenv("MEMPOOL_FAILPOINT", "wait.counted=stop@1", 1);
    return party(arg);
}

START_TEST(test_stopped_consumer)
{
    pid_t k[NP + NC];
    fan_setup();
    k[NP] = t_fork(stopped_party, (void *)(intptr_t)NP);
    t_await_stopped(k[NP], "wait.counted");
    for (intptr_t i = 0; i < NP + NC; i++)
        if (i != NP)
            k[i] = t_fork(party, (void *)i);
    /* The others do it all without it, though it stays counted asleep
     * (its wake-ups go to nobody until the word is marked DRY). */
    for (int i = 0; i < NP + NC; i++)
        if (i != NP)
            t_wait_ok(k[i]);
    ck_assert_uint_eq(atomic_load(&fan->received), TOTAL);
    ck_assert_uint_eq(atomic_load(&fan->started), NC - 1);
    /* Continued, it finds its futex word moved, takes itself off the
     * count without sleeping (sleepers.h), sees nothing left and ends. */
    ASSERT_RC(kill(k[NP], SIGCONT), 0);
    t_wait_ok(k[NP]);
    ck_assert_uint_eq(t_chan_info(t_pool, "fan", NULL).receivers_waiting, 0);
    check_all(t_pool);
    munmap(fan, sizeof *fan);
}
END_TEST
#endif

static mempool_chan *tc;

static void *t_party(void *arg)
{
    intptr_t me = (intptr_t)arg;
    (void)(me < NP ? produce(t_pool, tc, (int)me) : consume(t_pool, tc));
    return NULL;
}

START_TEST(test_threads)
{
    pthread_t th[NP + NC];
    fan_setup();
    ASSERT_RC(mempool_chan_open(t_pool, "fan", CAP, 0, &tc), 0);
    for (intptr_t i = 0; i < NP + NC; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, t_party, (void *)i), 0);
    for (int i = 0; i < NP + NC; i++)
        pthread_join(th[i], NULL);
    ASSERT_RC(mempool_chan_close(tc), 0);
    check_all(t_pool);
    munmap(fan, sizeof *fan);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "procs", 240, true, { test_procs } },
#ifdef T_FAILPOINTS
        { "stopped", 240, true, { test_stopped_consumer } },
#endif
        { "threads", 240, true, { test_threads } },
        { .name = NULL }
    };
    return t_main("chan_fan", cases);
}
