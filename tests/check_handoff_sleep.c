/* SPDX-License-Identifier: MIT */
/*
 * check_handoff_sleep.c - the handoff's sleepers count (src/handoff/
 * sleepers.h) with real processes on a shared page: a woken sleeper comes
 * off the count whichever end reports first, a waker that dies after its
 * FUTEX_WAKE or a sleeper killed asleep only ever make the count say more
 * (one spare wake-up, then the DRY mark; never a missed one), and wake-one
 * signals wake each sleeper once. Then the channel's use of it: a sender blocked on a full
 * channel that a receiver made room in without waking it (less than a
 * batch) finds the room by itself, and both counts are back to 0 after a
 * stream that made both sides sleep.
 */
#include "helpers.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#include "sleepers.h"

struct page {
    _Atomic uint32_t seq;
    _Atomic uint64_t sl;
    _Atomic uint32_t woken;          /* sleepers that saw mp_sleep() == 1 */
};

static struct page *page_new(void)
{
    struct page *pg = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                           MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(pg, MAP_FAILED);
    memset(pg, 0, sizeof(*pg));
    return pg;
}

/* Child: read the word, count ourselves, sleep once on the page's word (no deadline),
 * exit with 1 if a waker dequeued us, 0 if we came back another way. */
static int sleeper(void *arg)
{
    struct page *pg = arg;
    uint32_t s0;
    int rc;
    s0 = mp_sleep_seen(&pg->seq);
    rc = mp_sleep(&pg->seq, &pg->sl, s0, UINT64_MAX, 0);
    if (rc == 1)
        atomic_fetch_add(&pg->woken, 1);
    return rc == 1;
}

/* Until @p n sleepers are counted (they may not be in the kernel yet). */
static void await_count(struct page *pg, uint32_t n)
{
    double t0 = t_now_s();
    while (mp_sleepers(atomic_load(&pg->sl)) < n) {
        ck_assert_msg(t_now_s() - t0 < T_WAIT_S, "sleepers never counted");
        t_sleep_ms(1);
    }
    t_sleep_ms(20);                  /* most likely asleep by now */
}

/* Signal (wake one) until child @p pid is gone. */
static int signal_until_gone(struct page *pg, pid_t pid)
{
    double t0 = t_now_s();
    for (;;) {
        int st;
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
        ck_assert_msg(t_now_s() - t0 < T_WAIT_S, "sleeper never woke");
        mp_signal(&pg->seq, &pg->sl, 1);
        t_sleep_ms(1);
    }
}

START_TEST(test_count_back_to_zero)
{
    /* Whether the sleeper was dequeued or came back on the bumped word,
     * and whichever end reported first, the word ends exactly at 0. */
    struct page *pg = page_new();
    for (int i = 0; i < 20; i++) {
        pid_t k = t_fork(sleeper, pg);
        if (i % 2)
            await_count(pg, 1);       /* half asleep, half in the window */
        signal_until_gone(pg, k);
        ck_assert_uint_eq(atomic_load(&pg->sl) & 0x7fffffffu, 0); /* C, D */
    }
    ck_assert_uint_gt(atomic_load(&pg->woken), 0);
    munmap(pg, 4096);
}
END_TEST

START_TEST(test_dead_waker_overcounts_never_under)
{
    /* A waker killed right after its FUTEX_WAKE never reports: the woken
     * sleeper's own report still takes it off the count. */
    struct page *pg = page_new();
    pid_t k = t_fork(sleeper, pg);
    int woken;
    await_count(pg, 1);
    for (;;) {
        atomic_fetch_add(&pg->seq, 1);
        woken = mp_futex_wake(&pg->seq, 1);   /* no report: "died" here */
        if (woken || waitpid(k, NULL, WNOHANG) == k)
            break;                   /* (else it was not asleep yet) */
        t_sleep_ms(1);
    }
    if (woken) {
        ck_assert_int_eq(t_wait(k, T_WAIT_S), 1);
        ck_assert_uint_eq(mp_sleepers(atomic_load(&pg->sl)), 0);
        ck_assert_uint_ne(atomic_load(&pg->sl), 0);   /* C 1, D -1 */
    }
    /* A sleeper killed asleep stays counted: a spare wake-up, no hang. */
    memset(pg, 0, sizeof(*pg));
    k = t_fork(sleeper, pg);
    await_count(pg, 1);
    t_kill(k);
    ck_assert_uint_eq(mp_sleepers(atomic_load(&pg->sl)), 1);
    mp_signal(&pg->seq, &pg->sl, 1);
    ck_assert_uint_eq(mp_sleepers(atomic_load(&pg->sl)), 1);
    /* That FUTEX_WAKE found nobody, and the dead one read the word
     * before the bump: DRY, later signals make no system call... */
    ck_assert(mp_sleepers_dry(atomic_load(&pg->sl)));
    /* ...until someone counts itself, who is then woken as ever. */
    k = t_fork(sleeper, pg);
    await_count(pg, 2);
    ck_assert(!mp_sleepers_dry(atomic_load(&pg->sl)));
    ck_assert_int_eq(signal_until_gone(pg, k), 1);
    ck_assert_uint_eq(mp_sleepers(atomic_load(&pg->sl)), 1);
    munmap(pg, 4096);
}
END_TEST

START_TEST(test_wake_one_each)
{
    /* Four sleepers, wake-one signals: each signal that finds sleepers
     * wakes one, every sleeper wakes, and the count ends at 0. */
    struct page *pg = page_new();
    pid_t k[4];
    for (int i = 0; i < 4; i++)
        k[i] = t_fork(sleeper, pg);
    await_count(pg, 4);
    for (int i = 0; i < 4; i++)
        signal_until_gone(pg, k[i]);
    ck_assert_uint_eq(atomic_load(&pg->sl) & 0x7fffffffu, 0);  /* C, D */
    munmap(pg, 4096);
}
END_TEST

/* ---- the channel's use ------------------------------------------------ */


static int blocked_sender(void *arg)
{
    mempool *p;
    mempool_chan *c;
    mempool_dref r;
    char b[8] = { 9 };
    (void)arg;
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_chan_open(p, "nap", 0, 0, &c), 0);
    T_CHILD_EQ(mempool_put(p, b, sizeof(b), &r), 0);
    T_CHILD_EQ(mempool_chan_send(c, r, -1), 0);     /* blocks: full */
    mempool_chan_close(c);
    mempool_close(p);
    return 0;
}

START_TEST(test_sender_finds_room)
{
    /* Capacity 16: receivers wake a sender once 4 slots are free. Take one
     * item only: no wake-up comes, the sender's nap finds the slot. */
    mempool_chan *c;
    mempool_dref r;
    char b[8] = { 1 };
    pid_t k;
    double t0;
    ASSERT_RC(mempool_chan_open(t_pool, "nap", 16, MEMPOOL_CHAN_CREATE, &c),
              0);
    for (int i = 0; i < 16; i++) {
        ASSERT_RC(mempool_put(t_pool, b, sizeof(b), &r), 0);
        ASSERT_RC(mempool_chan_send(c, r, 0), 0);
    }
    k = t_fork(blocked_sender, NULL);
    t0 = t_now_s();
    while (t_chan_info(t_pool, "nap", NULL).senders_waiting == 0) {
        ck_assert_msg(t_now_s() - t0 < T_WAIT_S, "sender never slept");
        t_sleep_ms(1);
    }
    ASSERT_RC(mempool_chan_recv(c, &r, 0), 0);
    ASSERT_RC(mempool_delete(t_pool, r), 0);
    t0 = t_now_s();
    t_wait_ok(k);
    ck_assert_msg(t_now_s() - t0 < 5.0, "sender took %.3f s to find room",
                  t_now_s() - t0);
    ck_assert_uint_eq(t_chan_info(t_pool, "nap", NULL).depth, 16);
    ck_assert_uint_eq(t_chan_info(t_pool, "nap", NULL).senders_waiting, 0);
    while (mempool_chan_recv(c, &r, 0) == 0)
        ASSERT_RC(mempool_delete(t_pool, r), 0);
    ASSERT_RC(mempool_chan_close(c), 0);
    t_assert_healthy(t_pool);
}
END_TEST

#define STREAM_N 20000

static int stream_producer(void *arg)
{
    mempool *p;
    mempool_chan *c;
    (void)arg;
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_chan_open(p, "stream", 0, 0, &c), 0);
    for (uint64_t i = 0; i < STREAM_N; i++) {
        mempool_dref r;
        T_CHILD_EQ(mempool_put(p, &i, sizeof(i), &r), 0);
        T_CHILD_EQ(mempool_chan_send(c, r, -1), 0);
        if (i % 4096 == 0)
            t_sleep_ms(2);           /* let the receiver run dry */
    }
    mempool_chan_close(c);
    mempool_close(p);
    return 0;
}

START_TEST(test_stream_counts_settle)
{
    /* A small ring and a receiver that pauses: both sides sleep many
     * times. Every item arrives in order, and no sleeper stays counted. */
    mempool_chan *c;
    pid_t k;
    ASSERT_RC(mempool_chan_open(t_pool, "stream", 8, MEMPOOL_CHAN_CREATE, &c),
              0);
    k = t_fork(stream_producer, NULL);
    for (uint64_t i = 0; i < STREAM_N; i++) {
        mempool_dref r;
        mempool_view v;
        uint64_t x;
        ASSERT_RC(mempool_chan_recv(c, &r, 30000), 0);
        ASSERT_RC(mempool_get(t_pool, r, &v), 0);
        memcpy(&x, v.data, sizeof(x));
        ASSERT_RC(mempool_release(t_pool, &v), 0);
        ck_assert_uint_eq(x, i);
        ASSERT_RC(mempool_delete(t_pool, r), 0);
        if (i % 5000 == 0)
            t_sleep_ms(2);           /* let the sender fill it */
    }
    t_wait_ok(k);
    ck_assert_uint_eq(t_chan_info(t_pool, "stream", NULL).senders_waiting, 0);
    ck_assert_uint_eq(t_chan_info(t_pool, "stream", NULL).receivers_waiting, 0);
    ck_assert_uint_eq(t_chan_info(t_pool, "stream", NULL).received, STREAM_N);
    ASSERT_RC(mempool_chan_close(c), 0);
    t_assert_healthy(t_pool);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "sleepers", 120, false, {
              test_count_back_to_zero, test_dead_waker_overcounts_never_under,
              test_wake_one_each } },
        { "chan", 120, true, {
              test_sender_finds_room, test_stream_counts_settle } },
        { .name = NULL }
    };
    return t_main("handoff_sleep", cases);
}
