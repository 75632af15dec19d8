/* SPDX-License-Identifier: MIT */
/*
 * check_handoff_wait.c - waiting, waking and exact accounting across
 * processes, beyond check_handoff.c and check_handoff_chan.c:
 *
 *   signals      every timed wait (queue send on a full channel, recv on
 *                an empty one, broadcast recv, name_get, get_wait) runs
 *                its whole timeout while signals (no SA_RESTART) rain on
 *                the waiting thread: EINTR is retried, never returned, and
 *                the wait is neither cut short nor much overrun (a wait
 *                the rain hardly reached is waited again); timeout 0
 *                never sleeps.
 *   name_get     several processes sleeping in name_get (no timeout) all
 *                wake when another process binds the name and dies at once;
 *                the name (and its reference) outlives the binder.
 *   get_wait     several processes sleeping on one reservation all wake:
 *                with the object when it is published, -ENOENT when it is
 *                aborted or its writer is killed.
 *   ttl          references in flight with a short TTL raced by taker
 *                processes: each is taken once or expires, never both,
 *                never neither; given = taken + expired; nothing is left.
 *   mpmc_kill    producers and consumers of one queue, one producer and
 *                one consumer SIGKILLed mid-run: every item is received at
 *                most once, and every item sent is received, found in the
 *                channel, or was in the killed consumer's hands (at most
 *                one); every object is gone once drained (fsck clean).
 */
#include "helpers.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static const mempool_put_options rco = { 0, 0, MEMPOOL_PUT_REFCOUNTED };
static int rep_fd = -1, go_fd = -1, go_wfd = -1;

static void *shared_map(size_t len)
{
    void *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert(m != MAP_FAILED);
    memset(m, 0, len);
    return m;
}

/* ------------------------------------------------------------- signals */

static _Atomic uint64_t sigs;
static _Atomic int rain_stop;

static void on_sig(int s)
{
    (void)s;
    atomic_fetch_add(&sigs, 1);
}

static void *rain(void *arg)
{
    pthread_t target = *(pthread_t *)arg;
    while (!atomic_load(&rain_stop)) {
        pthread_kill(target, SIGUSR1);
        t_sleep_ms(1);
    }
    return NULL;
}

/* @p rc must be -ETIMEDOUT after about @p ms. */
static void expect_timed(int rc, double t0, int ms, const char *what)
{
    double took = t_now_s() - t0;
    ck_assert_msg(rc == -ETIMEDOUT, "%s: %d (%s), want -ETIMEDOUT", what, rc,
                  mempool_strerror(rc));
    ck_assert_msg(took >= ms / 1000.0 - 0.002, "%s: woke after %.3f s of "
                  "a %d ms wait", what, took, ms);
    ck_assert_msg(took < ms / 1000.0 + 5.0, "%s: took %.3f s for %d ms",
                  what, took, ms);
}

/* The timed waits of the signals case, one op each. */
enum wop { W_QRECV, W_QSEND, W_BRECV, W_NAME, W_GET_WAIT, W_OPS };
static const char *const wop_name[W_OPS] = {
    "queue recv", "queue send", "broadcast recv", "name_get", "get_wait" };

struct wctx {
    mempool_chan *q, *full, *b;  /* empty queue, full queue, broadcast */
    mempool_dref r, res;         /* an object to send, a reservation */
};

static int wop_call(const struct wctx *x, enum wop op, int ms)
{
    mempool_dref out;
    mempool_view v;
    switch (op) {
    case W_QRECV:
        return mempool_chan_recv(x->q, &out, ms);
    case W_QSEND:
        return mempool_chan_send(x->full, x->r, ms);
    case W_BRECV:
        return mempool_chan_recv(x->b, &out, ms);
    case W_NAME:
        return mempool_name_get(t_pool, "never", &out, ms);
    default:
        return mempool_get_wait(t_pool, x->res, &v, ms);
    }
}

/* Signals one wait must have taken for it to count (the rain thread sends
 * one a millisecond: about 150 in a 150 ms wait on a quiet machine). */
#define RAIN_MIN 10
#define RAIN_TRIES 40

/* Wait @p op for @p ms in the rain: it must time out, whole, every time.
 * A wait the rain hardly reached (its thread kept off the CPU: a loaded
 * 2-CPU machine gave it 7-95 signals in a whole 750 ms run) tested
 * nothing, so it is waited again - never one that answered wrong. */
static void rain_wait(const struct wctx *x, enum wop op, int ms)
{
    uint64_t got = 0;
    for (int i = 0; i < RAIN_TRIES && got < RAIN_MIN; i++) {
        uint64_t s0 = atomic_load(&sigs);
        double t0 = t_now_s();
        expect_timed(wop_call(x, op, ms), t0, ms, wop_name[op]);
        got = atomic_load(&sigs) - s0;
    }
    ck_assert_msg(got >= RAIN_MIN, "%s: no wait of %d took %d signals",
                  wop_name[op], RAIN_TRIES, RAIN_MIN);
}

START_TEST(test_timeouts_under_signals)
{
    struct sigaction sa;
    pthread_t me = pthread_self(), th;
    struct wctx x;
    mempool_dref out;
    mempool_view v;
    void *buf;
    const int ms = 150;
    double t0;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sig;         /* no SA_RESTART: syscalls see EINTR */
    sigemptyset(&sa.sa_mask);
    ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
    ASSERT_RC(mempool_chan_open(t_pool, "tq", 2, MEMPOOL_CHAN_CREATE, &x.q),
              0);
    ASSERT_RC(mempool_chan_open(t_pool, "tf", 1, MEMPOOL_CHAN_CREATE,
                                &x.full), 0);
    ASSERT_RC(mempool_chan_open(t_pool, "tb", 2, MEMPOOL_CHAN_CREATE |
                                MEMPOOL_CHAN_BROADCAST, &x.b), 0);
    ASSERT_RC(mempool_put(t_pool, "x", 2, &x.r), 0);
    ASSERT_RC(mempool_chan_send(x.full, x.r, 0), 0);
    ASSERT_RC(mempool_reserve(t_pool, 8, NULL, &buf, &x.res), 0);

    atomic_store(&rain_stop, 0);
    ck_assert_int_eq(pthread_create(&th, NULL, rain, &me), 0);
    for (int op = 0; op < W_OPS; op++)
        rain_wait(&x, (enum wop)op, ms);
    /* 0 never sleeps. */
    t0 = t_now_s();
    ASSERT_RC(mempool_chan_recv(x.q, &out, 0), -ETIMEDOUT);
    ASSERT_RC(mempool_chan_send(x.full, x.r, 0), -ETIMEDOUT);
    ASSERT_RC(mempool_chan_recv(x.b, &out, 0), -ETIMEDOUT);
    ASSERT_RC(mempool_name_get(t_pool, "never", &out, 0), -ETIMEDOUT);
    ASSERT_RC(mempool_get_wait(t_pool, x.res, &v, 0), -ETIMEDOUT);
    ck_assert_msg(t_now_s() - t0 < 2.0, "timeout 0 slept %.3f s",
                  t_now_s() - t0);
    atomic_store(&rain_stop, 1);
    pthread_join(th, NULL);
    ASSERT_RC(mempool_abort(t_pool, x.res), 0);
    ASSERT_RC(mempool_chan_close(x.q), 0);
    ASSERT_RC(mempool_chan_close(x.full), 0);
    ASSERT_RC(mempool_chan_close(x.b), 0);
    t_assert_healthy(t_pool);
}
END_TEST

/* ------------------------------------------------------------ name_get */

static int name_waiter(void *arg)
{
    mempool *p;
    mempool_dref r;
    mempool_view v;
    (void)arg;
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(t_send_u64(rep_fd, 1), 0);
    T_CHILD_EQ(mempool_name_get(p, "late", &r, -1), 0);
    T_CHILD_EQ(mempool_get(p, r, &v), 0);
    T_CHILD_ASSERT(strcmp(v.data, "bound late") == 0);
    T_CHILD_EQ(mempool_release(p, &v), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

static int bind_and_die(void *arg)
{
    mempool *p;
    mempool_dref r;
    (void)arg;
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_put_ex(p, "bound late", 11, &rco, &r), 0);
    T_CHILD_EQ(mempool_name_put(p, "late", r, 0), 0);
    raise(SIGKILL);                  /* with its own reference */
    return 0;
}

START_TEST(test_name_get_sleepers_wake)
{
    enum { NW = 3 };
    pid_t w[NW], b;
    int rep[2];
    uint64_t one;
    mempool_dref r;
    double t0;

    t_pipe(rep);
    rep_fd = rep[1];
    for (int i = 0; i < NW; i++)
        w[i] = t_fork(name_waiter, NULL);
    close(rep[1]);
    for (int i = 0; i < NW; i++)
        ASSERT_RC(t_recv_u64(rep[0], &one, T_WAIT_S), 0);
    close(rep[0]);
    t_sleep_ms(50);                  /* asleep in name_get by now */
    t0 = t_now_s();
    b = t_fork(bind_and_die, NULL);
    ck_assert_int_eq(t_wait(b, T_WAIT_S), 128 + SIGKILL);
    for (int i = 0; i < NW; i++)
        t_wait_ok(w[i]);
    ck_assert_msg(t_now_s() - t0 < 10.0, "woke after %.2f s", t_now_s() - t0);
    ASSERT_RC(mempool_reap(t_pool), 1);
    ASSERT_RC(mempool_name_get(t_pool, "late", &r, 0), 0);
    ck_assert_int_eq(t_refs(t_pool, r), 1);          /* the name's own */
    ASSERT_RC(mempool_name_drop(t_pool, "late"), 0);
    ck_assert_int_eq(t_refs(t_pool, r), -1);
    ck_assert_uint_eq(t_stats(t_pool).objects, 0);
    t_assert_healthy(t_pool);
}
END_TEST

/* ------------------------------------------------------------ get_wait */

static mempool_dref wait_for;

static int gw_waiter(void *arg)
{
    int want = (int)(intptr_t)arg;
    mempool *p;
    mempool_view v;
    int rc;
    close(go_wfd);                  /* the writer's go is the parent's */
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(t_send_u64(rep_fd, 1), 0);
    rc = mempool_get_wait(p, wait_for, &v, 30000);
    T_CHILD_EQ(rc, want);
    if (rc == 0) {
        T_CHILD_ASSERT(memcmp(v.data, "sealed", 7) == 0);
        T_CHILD_EQ(mempool_release(p, &v), 0);
    }
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

/* The writer: reserve, report, wait for go, then 0 publish / 1 abort /
 * 2 die. */
static int gw_writer(void *arg)
{
    int how = (int)(intptr_t)arg;
    mempool *p;
    mempool_dref r;
    void *buf;
    close(go_wfd);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_reserve(p, 16, NULL, &buf, &r), 0);
    memcpy(buf, "sealed", 7);
    T_CHILD_EQ(t_send_dref(rep_fd, r), 0);
    T_CHILD_EQ(t_wait_fd(go_fd, T_WAIT_S), 0);
    if (how == 2)
        raise(SIGKILL);
    T_CHILD_EQ(how ? mempool_abort(p, r) : mempool_publish(p, r), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

START_TEST(test_get_wait_sleepers_wake)
{
    enum { NW = 3 };
    for (int how = 0; how < 3; how++) {
        int rep[2], go[2], wrep[2];
        pid_t wr, w[NW];
        uint64_t one;
        double t0;

        t_pipe(rep);
        t_pipe(go);
        rep_fd = rep[1];
        go_fd = go[0];
        go_wfd = go[1];
        wr = t_fork(gw_writer, (void *)(intptr_t)how);
        close(rep[1]);
        close(go[0]);
        ASSERT_RC(t_recv_dref(rep[0], &wait_for, T_WAIT_S), 0);
        close(rep[0]);
        t_pipe(wrep);
        rep_fd = wrep[1];
        for (int i = 0; i < NW; i++)
            w[i] = t_fork(gw_waiter, (void *)(intptr_t)(how ? -ENOENT : 0));
        close(wrep[1]);
        for (int i = 0; i < NW; i++)
            ASSERT_RC(t_recv_u64(wrep[0], &one, T_WAIT_S), 0);
        close(wrep[0]);
        t_sleep_ms(50);
        t0 = t_now_s();
        close(go[1]);
        for (int i = 0; i < NW; i++)
            t_wait_ok(w[i]);
        ck_assert_msg(t_now_s() - t0 < 10.0, "how %d: woke after %.2f s", how,
                      t_now_s() - t0);
        if (how == 2)
            ck_assert_int_eq(t_wait(wr, T_WAIT_S), 128 + SIGKILL);
        else
            t_wait_ok(wr);
        mempool_reap(t_pool);
        if (how == 0)
            ASSERT_RC(mempool_delete(t_pool, wait_for), 0);
        t_assert_healthy(t_pool);
    }
}
END_TEST

/* ----------------------------------------------------------------- ttl */

#define NT 200
#define NTAKERS 2

struct ttl_tally {
    mempool_dref r[NT];
    _Atomic int taken[NT];
};
static struct ttl_tally *tt;

static int taker(void *arg)
{
    uint64_t seed = (uint64_t)(intptr_t)arg * 7919 + 1;
    mempool *p;
    double t0;
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    t0 = t_now_s();
    while (t_now_s() - t0 < 0.06) {
        int i = (int)(t_rand(&seed) % NT);
        int rc = mempool_ref_take(p, tt->r[i]);
        T_CHILD_ASSERT(rc == 0 || rc == -ENOENT);
        if (rc == 0) {
            atomic_fetch_add(&tt->taken[i], 1);
            T_CHILD_EQ(mempool_unref(p, tt->r[i]), 0);   /* the last */
        }
    }
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

START_TEST(test_ttl_race)
{
    struct mempool_stats s0 = t_stats(t_pool), s1;
    pid_t tk[NTAKERS];
    int taken = 0;

    tt = shared_map(sizeof(*tt));
    for (int i = 0; i < NT; i++) {
        uint64_t x = (uint64_t)i;
        ASSERT_RC(mempool_put_ex(t_pool, &x, sizeof x, &rco, &tt->r[i]), 0);
        ASSERT_RC(mempool_ref_give(t_pool, tt->r[i], 5 + i % 40), 0);
    }
    for (int i = 0; i < NTAKERS; i++)
        tk[i] = t_fork(taker, (void *)(intptr_t)i);
    for (int i = 0; i < NTAKERS; i++)
        t_wait_ok(tk[i]);
    t_sleep_ms(60);                  /* every TTL is past */
    mempool_reap(t_pool);            /* sweeps the expired */
    for (int i = 0; i < NT; i++) {
        ck_assert_msg(tt->taken[i] <= 1, "reference %d taken %d times", i,
                      tt->taken[i]);
        taken += tt->taken[i];
        ck_assert_msg(t_refs(t_pool, tt->r[i]) == -1, "object %d left", i);
    }
    s1 = t_stats(t_pool);
    ck_assert_uint_eq(s1.flight_given - s0.flight_given, NT);
    ck_assert_uint_eq(s1.flight_taken - s0.flight_taken, (uint64_t)taken);
    ck_assert_uint_eq(s1.flight_expired - s0.flight_expired,
                      (uint64_t)(NT - taken));
    ck_assert_uint_eq(s1.flight_refs, 0);
    ck_assert_uint_eq(s1.objects, 0);
    t_assert_healthy(t_pool);
    munmap(tt, sizeof(*tt));
}
END_TEST

/* ----------------------------------------------------------- mpmc_kill */

#define KP 3
#define KC 3
#define KPER 1500
#define KCAP 16

/* Per item (producer, seq): 1 sending, 2 sent; receptions counted. */
struct mk_tally {
    _Atomic uint8_t state[KP][KPER];
    _Atomic uint8_t recvd[KP][KPER];
    _Atomic int bad;
};
static struct mk_tally *mk;

static int mk_producer(void *arg)
{
    int id = (int)(intptr_t)arg;
    mempool *p;
    mempool_chan *c;
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_chan_open(p, "mk", 0, 0, &c), 0);
    for (uint32_t i = 0; i < KPER; i++) {
        uint64_t x = ((uint64_t)id << 32) | i;
        mempool_dref r;
        T_CHILD_EQ(mempool_put_ex(p, &x, sizeof x, &rco, &r), 0);
        atomic_store(&mk->state[id][i], 1);
        T_CHILD_EQ(mempool_chan_send(c, r, 60000), 0);
        atomic_store(&mk->state[id][i], 2);
        if (id == 0 && i % 50 == 0)
            t_sleep_ms(1);          /* still running when it is killed */
    }
    if (id == 0)            /* on a loaded machine it may send everything */
        for (;;)            /* before the parent looks: wait for the kill */
            pause();
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

/* Receive until -EPIPE; the item in hand is logged after recv returns. */
static int mk_consumer(void *arg)
{
    mempool *p;
    mempool_chan *c;
    (void)arg;
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_chan_open(p, "mk", 0, 0, &c), 0);
    for (;;) {
        mempool_dref r;
        mempool_view v;
        uint64_t x;
        int rc = mempool_chan_recv(c, &r, 60000);
        if (rc == -EPIPE)
            break;
        T_CHILD_EQ(rc, 0);
        T_CHILD_EQ(mempool_get(p, r, &v), 0);
        memcpy(&x, v.data, sizeof x);
        T_CHILD_EQ(mempool_release(p, &v), 0);
        if ((x >> 32) >= KP || (x & 0xffffffffu) >= KPER)
            atomic_fetch_add(&mk->bad, 1);
        else
            atomic_fetch_add(&mk->recvd[x >> 32][x & 0xffffffffu], 1);
        T_CHILD_EQ(mempool_unref(p, r), 0);
    }
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

START_TEST(test_mpmc_kill)
{
    pid_t pp[KP], cp[KC];
    mempool_chan *c;
    mempool_dref r;
    int drained = 0, unaccounted = 0, rc;

    mk = shared_map(sizeof(*mk));
    ASSERT_RC(mempool_chan_open(t_pool, "mk", KCAP, MEMPOOL_CHAN_CREATE, &c),
              0);
    for (int i = 0; i < KC; i++)
        cp[i] = t_fork(mk_consumer, NULL);
    for (int i = 0; i < KP; i++)
        pp[i] = t_fork(mk_producer, (void *)(intptr_t)i);
    /* Kill producer 0 and consumer 0 somewhere in the middle. */
    while (atomic_load(&mk->state[0][KPER / 3]) == 0)
        t_sleep_ms(1);
    ck_assert_int_eq(t_kill(pp[0]), SIGKILL);
    ck_assert_int_eq(t_kill(cp[0]), SIGKILL);
    for (int i = 1; i < KP; i++)
        t_wait_ok(pp[i]);
    mempool_reap(t_pool);
    /* Let the live consumers drain, then stop them (destroy would drop the
     * rest: take what is left ourselves first). */
    t_sleep_ms(200);
    {
        mempool_chan *probe;
        ASSERT_RC(mempool_chan_open(t_pool, "mk", 0, 0, &probe), 0);
        while ((rc = mempool_chan_recv(probe, &r, 100)) == 0) {
            mempool_view v;
            uint64_t x;
            ASSERT_RC(mempool_get(t_pool, r, &v), 0);
            memcpy(&x, v.data, sizeof x);
            ASSERT_RC(mempool_release(t_pool, &v), 0);
            atomic_fetch_add(&mk->recvd[x >> 32][x & 0xffffffffu], 1);
            ASSERT_RC(mempool_unref(t_pool, r), 0);
            drained++;
        }
        ASSERT_RC(rc, -ETIMEDOUT);
        ASSERT_RC(mempool_chan_close(probe), 0);
    }
    ASSERT_RC(mempool_chan_destroy(t_pool, "mk"), 0);   /* consumers: -EPIPE */
    for (int i = 1; i < KC; i++)
        t_wait_ok(cp[i]);
    ck_assert_int_eq(mk->bad, 0);
    for (int id = 0; id < KP; id++)
        for (int i = 0; i < KPER; i++) {
            int st = mk->state[id][i], n = mk->recvd[id][i];
            ck_assert_msg(n <= 1, "item %d.%d received %d times", id, i, n);
            ck_assert_msg(n == 0 || st >= 1, "item %d.%d received, never "
                          "sent", id, i);
            if (st == 2 && n == 0)
                unaccounted++;        /* in the killed consumer's hands */
            /* Only the killed producer's last send may be cut short. */
            ck_assert_msg(st != 1 || id == 0, "item %d.%d: send never "
                          "returned", id, i);
        }
    ck_assert_msg(unaccounted <= 1, "%d sent items lost (the killed "
                  "consumer held at most one)", unaccounted);
    ck_assert_uint_eq(t_stats(t_pool).objects, 0);      /* nothing leaked */
    ASSERT_RC(mempool_chan_close(c), 0);
    t_assert_healthy(t_pool);
    (void)drained;
    munmap(mk, sizeof(*mk));
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "signals", 60, true, { test_timeouts_under_signals } },
        { "wake", 60, true, {
              test_name_get_sleepers_wake, test_get_wait_sleepers_wake } },
        { "ttl", 60, true, { test_ttl_race } },
        { "mpmc_kill", 120, true, { test_mpmc_kill } },
        { .name = NULL }
    };
    return t_main("handoff_wait", cases);
}
