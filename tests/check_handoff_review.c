/* SPDX-License-Identifier: MIT */
/*
 * check_handoff_review.c - a hostile review of the handoff wake-up
 * protocol (src/handoff/sleepers.h: checking / counted waiters, the DRY
 * mark) with real processes:
 *
 *   - the DRY mark set by a signal that found only a stale counted waiter
 *     (stopped at wait.counted, its futex value old) must be cleared by
 *     the next waiter that counts itself: that one is woken by the next
 *     send, and so is the stale one once continued (queue and name_get);
 *   - a sender killed after its item is in the ring but before it woke
 *     anyone (send.committed) must not leave a receiver already asleep
 *     waiting for ever next to that item;
 *   - many producers and consumers on a small ring, random timeouts on
 *     both sides, random SIGSTOP / SIGCONT of everyone: every item
 *     received exactly once, the pool healthy and empty at the end;
 *   - the same with consumers SIGKILLed at random: every item received at
 *     most once, at most one lost per kill, no reference leaked.
 *
 * No timing assertions: a lost wake-up shows as a child that never ends,
 * found by a generous watchdog (t_wait with T_WAIT_S) and reported.
 */
#include "helpers.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>

static const mempool_put_options rco = { 0, 0, MEMPOOL_PUT_REFCOUNTED };
static char fp_spec[64];

static mempool_dref new_item(uint64_t x)
{
    mempool_dref r;
    ASSERT_RC(mempool_put_ex(t_pool, &x, sizeof(x), &rco, &r), 0);
    return r;
}

/* ---- the DRY mark -------------------------------------------------------- */

/* Child: one receive on "d" without a deadline (the failpoint in
 * fp_spec if @p arg); 0 when it got an item. A lost wake-up: it never
 * returns, the parent's watchdog says so. */
static int receiver(void *arg)
{
    mempool *p;
    mempool_chan *c;
    mempool_dref r;
    if (arg)
        setenv("MEMPOOL_FAILPOINT", fp_spec, 1);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_chan_open(p, "d", 0, 0, &c), 0);
    T_CHILD_EQ(mempool_chan_recv(c, &r, -1), 0);
    T_CHILD_EQ(mempool_unref(p, r), 0);
    mempool_chan_close(c);
    mempool_close(p);
    return 0;
}

/* Send one item and take it back: with only a stale counted waiter (X,
 * stopped before FUTEX_WAIT), the send's FUTEX_WAKE finds nobody and
 * marks the count DRY. */
static void send_and_take_back(mempool_chan *c)
{
    mempool_dref r;
    ASSERT_RC(mempool_chan_send(c, new_item(1), 0), 0);
    ASSERT_RC(mempool_chan_recv(c, &r, 0), 0);
    ASSERT_RC(mempool_unref(t_pool, r), 0);
}

START_TEST(test_dry_then_sleeper)
{
    mempool_chan *c;
    pid_t x, y;
    ASSERT_RC(mempool_chan_open(t_pool, "d", 8, MEMPOOL_CHAN_CREATE, &c), 0);
    snprintf(fp_spec, sizeof fp_spec, "wait.counted=stop@1");
    x = t_fork(receiver, fp_spec);
    t_await_stopped(x, fp_spec);                 /* counted, old futex value */
    send_and_take_back(c);            /* DRY */
    send_and_take_back(c);            /* DRY already: no system call */
    /* Y counts itself after the mark: the next send must wake it. */
    y = t_fork(receiver, NULL);
    t_await_receivers("d", 2);
    ASSERT_RC(mempool_chan_send(c, new_item(2), 0), 0);
    t_wait_ok(y);
    /* Only X counted again: mark it DRY once more, then continue X. Its
     * FUTEX_WAIT finds the word moved; it looks, counts itself anew
     * (clearing the mark) and sleeps: the next send wakes it. */
    send_and_take_back(c);
    ASSERT_RC(kill(x, SIGCONT), 0);
    t_await_receivers("d", 1);
    ASSERT_RC(mempool_chan_send(c, new_item(3), 0), 0);
    t_wait_ok(x);
    ck_assert_uint_eq(t_chan_info(t_pool, "d", NULL).depth, 0);
    ck_assert_uint_eq(t_chan_info(t_pool, "d", NULL).receivers_waiting, 0);
    ASSERT_RC(mempool_chan_close(c), 0);
    ASSERT_RC(mempool_chan_destroy(t_pool, "d"), 0);
    t_assert_healthy(t_pool);
}
END_TEST

/* Child: mempool_name_get of the name in @p arg, no deadline; the
 * failpoint in fp_spec when the name is "n.x". */
static int name_waiter(void *arg)
{
    const char *name = arg;
    mempool *p;
    mempool_dref r;
    if (!strcmp(name, "n.x"))
        setenv("MEMPOOL_FAILPOINT", fp_spec, 1);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_name_get(p, name, &r, -1), 0);   /* no reference */
    mempool_close(p);
    return 0;
}

START_TEST(test_dry_name_get)
{
    mempool_dref r;
    pid_t x, y;
    snprintf(fp_spec, sizeof fp_spec, "wait.counted=stop@1");
    x = t_fork(name_waiter, "n.x");
    t_await_stopped(x, fp_spec);
    /* Binds X does not wait for: the first marks names DRY. */
    for (int i = 0; i < 3; i++) {
        char nm[16];
        snprintf(nm, sizeof nm, "n.o%d", i);
        r = new_item((uint64_t)i);
        ASSERT_RC(mempool_name_put(t_pool, nm, r, 0), 0);
        ASSERT_RC(mempool_unref(t_pool, r), 0);
    }
    y = t_fork(name_waiter, "n.y");
    /* Y asleep (there is no count to watch from here for names): give
     * it time to count itself; if it has not yet, it finds the name. */
    t_sleep_ms(100);
    r = new_item(9);
    ASSERT_RC(mempool_name_put(t_pool, "n.y", r, 0), 0);
    ASSERT_RC(mempool_unref(t_pool, r), 0);
    t_wait_ok(y);
    ASSERT_RC(kill(x, SIGCONT), 0);
    t_sleep_ms(100);
    r = new_item(10);
    ASSERT_RC(mempool_name_put(t_pool, "n.x", r, 0), 0);
    ASSERT_RC(mempool_unref(t_pool, r), 0);
    t_wait_ok(x);
    t_assert_healthy(t_pool);
}
END_TEST

/* ---- a sender dead between commit and wake-up -------------------------- */

/* The channel of t_child_send_killed, the sender killed after its item
 * is in the ring, before it woke anyone. */
static char killed_chan[] = "d";

START_TEST(test_sender_killed_after_commit)
{
    mempool_chan *c;
    pid_t x, s;
    ASSERT_RC(mempool_chan_open(t_pool, "d", 8, MEMPOOL_CHAN_CREATE, &c), 0);
    x = t_fork(receiver, NULL);
    t_await_receivers("d", 1);
    s = t_fork(t_child_send_killed, killed_chan);
    ck_assert_int_eq(t_wait(s, T_WAIT_S), 128 + SIGKILL);
    /* The item is in the ring; the receiver asleep next to it must find
     * it without another send. */
    t_wait_ok(x);
    ck_assert_uint_eq(t_chan_info(t_pool, "d", NULL).depth, 0);
    ck_assert_int_eq(mempool_reap(t_pool), 1);     /* the dead sender */
    ASSERT_RC(mempool_chan_close(c), 0);
    ASSERT_RC(mempool_chan_destroy(t_pool, "d"), 0);
    t_assert_healthy(t_pool);
}
END_TEST

/* ---- box nonces ------------------------------------------------------------ */

static mempool_dref shared_x;

/* Child: a fresh handle sends shared_x once (its first box). */
static int resender(void *arg)
{
    mempool *p;
    mempool_chan *c;
    (void)arg;
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_chan_open(p, "a", 0, 0, &c), 0);
    T_CHILD_EQ(mempool_ref(p, shared_x), 0);
    T_CHILD_EQ(mempool_chan_send(c, shared_x, -1), 0);
    mempool_chan_close(c);
    mempool_close(p);
    return 0;
}

/* A receiver stopped between taking the slot and freeing the box: a reap
 * meanwhile sweeps that box (HELD, in no record), and a fresh handle's
 * first send of the same object claims the same box. Its word must not
 * equal the stopped receiver's (the nonce tells them apart), or the
 * receiver, continued, frees the new box while it sits in the ring: the
 * item is lost and the ring names a free box (MEMPOOL_ECORRUPT). Fresh
 * handles whose nonces all started at 0 made exactly that word. */
START_TEST(test_box_reuse_nonce)
{
    mempool_chan *c;
    mempool_dref r;
    pid_t t, d, g;
    uint64_t v = 42;
    ASSERT_RC(mempool_chan_open(t_pool, "a", 8, MEMPOOL_CHAN_CREATE, &c), 0);
    ASSERT_RC(mempool_put_ex(t_pool, &v, sizeof(v), &rco, &shared_x), 0);
    ASSERT_RC(mempool_ref(t_pool, shared_x), 0);
    ASSERT_RC(mempool_chan_send(c, shared_x, 0), 0);  /* our first box */
    t = t_fork(t_stopped_receiver, (void *)"a");
    snprintf(fp_spec, sizeof fp_spec, "recv.taken=stop@1");
    t_await_stopped(t, fp_spec);
    d = t_fork(t_dies, NULL);
    t_wait_ok(d);
    ck_assert_int_ge(mempool_reap(t_pool), 1);        /* sweeps the box */
    g = t_fork(resender, NULL);
    t_wait_ok(g);
    ASSERT_RC(kill(t, SIGCONT), 0);
    t_wait_ok(t);
    ASSERT_RC(mempool_chan_recv(c, &r, 10000), 0);
    ck_assert(r.off == shared_x.off && r.gen == shared_x.gen);
    ASSERT_RC(mempool_unref(t_pool, r), 0);
    ASSERT_RC(mempool_unref(t_pool, shared_x), 0);
    ASSERT_RC(mempool_chan_close(c), 0);
    ASSERT_RC(mempool_chan_destroy(t_pool, "a"), 0);
    t_assert_healthy(t_pool);
}
END_TEST

/* ---- randomized stress --------------------------------------------------- */

#define NPROD 4
#define NCONS 4
#define PER   1500
#define POISON UINT64_MAX

struct board {
    _Atomic uint32_t got[NPROD * PER];   /* receipts per item */
    _Atomic uint32_t bad;                /* unexpected errors */
};

static struct board *bd;

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Random timeout: mostly short (0, 1, 3 ms: timeouts racing wake-ups),
 * sometimes long, sometimes none. */
static int64_t rnd_timeout(uint64_t *s)
{
    static const int64_t t[] = { 0, 1, 1, 3, 3, 20, 200, -1 };
    return t[rnd(s) % 8];
}

static int producer(void *arg)
{
    int id = (int)(intptr_t)arg;
    uint64_t s = 0x9e3779b97f4a7c15u * (uint64_t)(id + 1);
    mempool *p;
    mempool_chan *c;
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_chan_open(p, "s", 0, 0, &c), 0);
    for (uint64_t i = 0; i < PER; i++) {
        uint64_t x = (uint64_t)id * PER + i;
        mempool_dref r;
        int rc;
        T_CHILD_EQ(mempool_put_ex(p, &x, sizeof(x), &rco, &r), 0);
        while ((rc = mempool_chan_send(c, r, rnd_timeout(&s))) ==
               -ETIMEDOUT)
            ;                         /* still ours: try again */
        if (rc)
            atomic_fetch_add(&bd->bad, 1);
    }
    mempool_chan_close(c);
    mempool_close(p);
    return 0;
}

static int consumer(void *arg)
{
    uint64_t s = 0xda942042e4dd58b5u * (uint64_t)((intptr_t)arg + 1);
    mempool *p;
    mempool_chan *c;
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_chan_open(p, "s", 0, 0, &c), 0);
    for (;;) {
        mempool_dref r;
        mempool_view v;
        uint64_t x;
        int rc = mempool_chan_recv(c, &r, rnd_timeout(&s));
        if (rc == -ETIMEDOUT)
            continue;
        if (rc || mempool_get(p, r, &v)) {
            atomic_fetch_add(&bd->bad, 1);
            return 2;
        }
        memcpy(&x, v.data, sizeof(x));
        mempool_release(p, &v);
        if (x != POISON && x < NPROD * PER)
            atomic_fetch_add(&bd->got[x], 1);
        else if (x != POISON)
            atomic_fetch_add(&bd->bad, 1);
        T_CHILD_EQ(mempool_unref(p, r), 0);
        if (x == POISON)
            break;
    }
    mempool_chan_close(c);
    mempool_close(p);
    return 0;
}

/* SIGSTOP one random child for a moment (or SIGKILL a consumer, with
 * @p kills left), until every producer is done or the watchdog fires.
 * The number of consumers killed. */
static int chaos(pid_t *prod, pid_t *cons, int kills, uint64_t *s)
{
    bool done[NPROD] = { false };
    int left = NPROD, killed = 0;
    double t0 = t_now_s();
    while (left) {
        int k = (int)(rnd(s) % (NPROD + NCONS));
        pid_t v = k < NPROD ? prod[k] : cons[k - NPROD];
        ck_assert_msg(t_now_s() - t0 < 4 * T_WAIT_S,
                      "stress stuck: %d producers not done", left);
        if (k >= NPROD && kills && rnd(s) % 8 == 0) {
            if (kill(v, SIGKILL) == 0) {
                ck_assert_int_eq(t_wait(v, T_WAIT_S), 128 + SIGKILL);
                cons[k - NPROD] = t_fork(consumer, (void *)(intptr_t)k);
                killed++;
                kills--;
            }
        } else if (!(k < NPROD && done[k])) {
            kill(v, SIGSTOP);
            t_sleep_ms((int)(rnd(s) % 5));
            kill(v, SIGCONT);
        }
        t_sleep_ms((int)(rnd(s) % 4));
        for (int i = 0; i < NPROD; i++) {
            int st;
            if (!done[i] && waitpid(prod[i], &st, WNOHANG) == prod[i]) {
                ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
                              "producer %d ended %#x", i, st);
                done[i] = true;
                left--;
            }
        }
    }
    return killed;
}

static void stress(int kills, uint32_t cap)
{
    uint64_t s = 0x1234567u + (uint64_t)kills;
    struct mempool_stats st;
    mempool_chan *c;
    pid_t prod[NPROD], cons[NCONS];
    int killed, lost = 0;

    bd = mmap(NULL, sizeof *bd, PROT_READ | PROT_WRITE,
              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert(bd != MAP_FAILED);
    ASSERT_RC(mempool_chan_open(t_pool, "s", cap, MEMPOOL_CHAN_CREATE, &c), 0);
    for (int i = 0; i < NCONS; i++)
        cons[i] = t_fork(consumer, (void *)(intptr_t)(i + NPROD));
    for (int i = 0; i < NPROD; i++)
        prod[i] = t_fork(producer, (void *)(intptr_t)i);
    killed = chaos(prod, cons, kills, &s);
    for (int i = 0; i < NCONS; i++)
        ASSERT_RC(mempool_chan_send(c, new_item(POISON), 60000), 0);
    for (int i = 0; i < NCONS; i++)
        t_wait_ok(cons[i]);
    ck_assert_uint_eq(atomic_load(&bd->bad), 0);
    for (uint32_t i = 0; i < NPROD * PER; i++) {
        uint32_t g = atomic_load(&bd->got[i]);
        ck_assert_msg(g <= 1, "item %u received %u times", i, g);
        lost += g == 0;
    }
    /* A consumer killed between its receive and its tally loses that
     * one item (its reference reaped with it); nothing else is lost. */
    ck_assert_msg(lost <= killed, "%d items lost, %d consumers killed",
                  lost, killed);
    ck_assert_uint_eq(t_chan_info(t_pool, "s", NULL).depth, 0);
    ASSERT_RC(mempool_chan_close(c), 0);
    ASSERT_RC(mempool_chan_destroy(t_pool, "s"), 0);
    t_assert_healthy(t_pool);
    /* Every reference is gone: no object outlived its last holder. */
    ASSERT_RC(mempool_stats_get(t_pool, &st), 0);
    ck_assert_uint_eq(st.objects, 0);
    munmap(bd, sizeof *bd);
}

START_TEST(test_stress_stop_cont)
{
    stress(0, 8);
}
END_TEST

/* A ring too small to batch: its senders do not nap, every receive
 * bumps and wakes them. */
START_TEST(test_stress_small_ring)
{
    stress(0, 2);
}
END_TEST

START_TEST(test_stress_kill)
{
    stress(6, 8);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "wake", 300, true, {
              test_dry_then_sleeper, test_dry_name_get,
              test_sender_killed_after_commit, test_box_reuse_nonce,
              test_stress_stop_cont, test_stress_small_ring, test_stress_kill,
          } },
        { .name = NULL }
    };
    return t_main("handoff_review", cases);
}
