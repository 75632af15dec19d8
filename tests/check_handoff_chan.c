/* SPDX-License-Identifier: MIT */
/*
 * check_handoff_chan.c - channels with real processes: FIFO order,
 * bounded capacity and timeouts, references travelling with items, destroy
 * waking every waiter with -EPIPE and dropping the items' references, many
 * producers and consumers with exact accounting at the end, broadcast
 * (every subscriber gets every item; overrun gives -EOVERFLOW once and a
 * dropped count), and SIGSTOPped senders and receivers that must not block
 * the others.
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
#include <sys/wait.h>
#include <time.h>

static const mempool_put_options rco = { 0, 0, MEMPOOL_PUT_REFCOUNTED };

static mempool_dref set_u64(mempool *p, uint64_t x, bool rc)
{
    mempool_dref r;
    ASSERT_RC(mempool_put_ex(p, &x, sizeof(x), rc ? &rco : NULL, &r), 0);
    return r;
}

static uint64_t read_u64(mempool *p, mempool_dref r)
{
    mempool_view v;
    uint64_t x;
    ASSERT_RC(mempool_get(p, r, &v), 0);
    memcpy(&x, v.data, sizeof(x));
    ASSERT_RC(mempool_release(p, &v), 0);
    return x;
}


/* ------------------------------------------------------------ queue */

START_TEST(test_queue_basic)
{
    mempool_chan *c, *c2;
    mempool_dref r[6], out;
    mempool_chan_info in;

    ASSERT_RC(mempool_chan_open(t_pool, "q", 4, 0, &c), -ENOENT);
    ASSERT_RC(mempool_chan_open(t_pool, "q", 0, MEMPOOL_CHAN_CREATE, &c),
              -EINVAL);
    ASSERT_RC(mempool_chan_open(t_pool, "q", 1u << 30, MEMPOOL_CHAN_CREATE,
                                &c), -EINVAL);
    ASSERT_RC(mempool_chan_open(t_pool, "q", 4, 0x40, &c), -EINVAL);
    ASSERT_RC(mempool_chan_open(t_pool, "", 4, MEMPOOL_CHAN_CREATE, &c),
              -EINVAL);
    ASSERT_RC(mempool_chan_open(t_pool, "q", 4, MEMPOOL_CHAN_CREATE, &c), 0);
    ASSERT_RC(mempool_chan_open(t_pool, "q", 99, 0, &c2), 0);  /* attach */
    {
        mempool_chan *c3;
        ASSERT_RC(mempool_chan_open(t_pool, "q", 4, MEMPOOL_CHAN_BROADCAST,
                                    &c3), -EINVAL);   /* not its mode */
    }
    for (int i = 0; i < 6; i++)
        r[i] = set_u64(t_pool, (uint64_t)i, false);
    for (int i = 0; i < 4; i++)
        ASSERT_RC(mempool_chan_send(c, r[i], 0), 0);
    ASSERT_RC(mempool_chan_send(c, r[4], 0), -ETIMEDOUT);      /* full */
    ASSERT_RC(mempool_chan_send(c, r[4], 30), -ETIMEDOUT);
    in = t_chan_info(t_pool, "q", NULL);
    ck_assert_uint_eq(in.capacity, 4);
    ck_assert_uint_eq(in.depth, 4);
    ck_assert_uint_eq(in.sent, 4);
    ck_assert_uint_eq(in.refs, 0);
    for (int i = 0; i < 4; i++) {
        ASSERT_RC(mempool_chan_recv(c2, &out, 0), 0);
        ck_assert(out.off == r[i].off && out.gen == r[i].gen);  /* FIFO */
    }
    ASSERT_RC(mempool_chan_recv(c, &out, 0), -ETIMEDOUT);      /* empty */
    ASSERT_RC(mempool_chan_recv(c, &out, 30), -ETIMEDOUT);
    /* Wrap around the ring a few times. */
    for (int k = 0; k < 20; k++) {
        ASSERT_RC(mempool_chan_send(c, r[k % 6], 0), 0);
        ASSERT_RC(mempool_chan_send(c2, r[(k + 1) % 6], 0), 0);
        ASSERT_RC(mempool_chan_recv(c, &out, 0), 0);
        ck_assert(out.off == r[k % 6].off);
        ASSERT_RC(mempool_chan_recv(c, &out, 0), 0);
        ck_assert(out.off == r[(k + 1) % 6].off);
    }
    in = t_chan_info(t_pool, "q", NULL);
    ck_assert_uint_eq(in.depth, 0);
    ck_assert_uint_eq(in.sent, 44);
    ck_assert_uint_eq(in.received, 44);
    /* A plain DRef travels as is, even once deleted. */
    ASSERT_RC(mempool_chan_send(c, r[5], 0), 0);
    ASSERT_RC(mempool_delete(t_pool, r[5]), 0);
    ASSERT_RC(mempool_chan_recv(c, &out, 0), 0);
    ck_assert(out.off == r[5].off && out.gen == r[5].gen);
    ASSERT_RC(mempool_chan_send(c, r[5], 0), -ENOENT);
    ASSERT_RC(mempool_chan_recv(c, NULL, 0), -EINVAL);
    ASSERT_RC(mempool_chan_close(c2), 0);
    ASSERT_RC(mempool_chan_close(c), 0);
    ASSERT_RC(mempool_chan_close(NULL), -EINVAL);
    t_assert_healthy(t_pool);
}
END_TEST

START_TEST(test_queue_limits)
{
    mempool_chan *c[70];
    char nm[32];
    int i, rc = 0;
    for (i = 0; i < 70; i++) {
        snprintf(nm, sizeof(nm), "lim-%d", i);
        rc = mempool_chan_open(t_pool, nm, 2, MEMPOOL_CHAN_CREATE, &c[i]);
        if (rc)
            break;
    }
    ASSERT_RC(rc, -ENOSPC);
    ck_assert_int_eq(i, 64);
    ASSERT_RC(mempool_chan_destroy(t_pool, "lim-3"), 0);
    ASSERT_RC(mempool_chan_destroy(t_pool, "lim-3"), -ENOENT);
    ASSERT_RC(mempool_chan_open(t_pool, "again", 2, MEMPOOL_CHAN_CREATE,
                                &c[64]), 0);
    /* The ring is shared: a huge channel does not fit next to others. */
    ASSERT_RC(mempool_chan_destroy(t_pool, "lim-4"), 0);
    ASSERT_RC(mempool_chan_open(t_pool, "huge", 1020, MEMPOOL_CHAN_CREATE,
                                &c[65]), -ENOSPC);
    for (int k = 0; k < 65; k++)     /* destroyed ones too: frees them */
        ASSERT_RC(mempool_chan_close(c[k]), 0);
    t_assert_healthy(t_pool);
}
END_TEST

START_TEST(test_queue_refs_travel)
{
    mempool_chan *c;
    mempool_dref r, out, p1;
    mempool_info in;

    ASSERT_RC(mempool_chan_open(t_pool, "rq", 8, MEMPOOL_CHAN_CREATE, &c), 0);
    r = set_u64(t_pool, 7, true);
    ASSERT_RC(mempool_chan_send(c, r, 0), 0);
    ASSERT_RC(mempool_unref(t_pool, r), -EINVAL);   /* moved: we hold none */
    ASSERT_RC(mempool_info_get(t_pool, r, &in), 0);
    ck_assert_uint_eq(in.refs, 1);                  /* the channel's */
    ASSERT_RC(mempool_chan_send(c, r, 0), -EINVAL); /* none to move */
    ck_assert_uint_eq(t_chan_info(t_pool, "rq", NULL).refs, 1);
    ASSERT_RC(mempool_chan_recv(c, &out, 0), 0);
    ck_assert_uint_eq(read_u64(t_pool, out), 7);
    ck_assert_int_eq(t_refs(t_pool, out), 1);       /* ours now */
    ASSERT_RC(mempool_unref(t_pool, out), 0);
    ASSERT_RC(mempool_info_get(t_pool, r, &in), -ENOENT);

    /* Destroy drops the references of what is left; plain items stay. */
    r = set_u64(t_pool, 8, true);
    p1 = set_u64(t_pool, 9, false);
    ASSERT_RC(mempool_chan_send(c, r, 0), 0);
    ASSERT_RC(mempool_chan_send(c, p1, 0), 0);
    ASSERT_RC(mempool_chan_destroy(t_pool, "rq"), 0);
    ASSERT_RC(mempool_info_get(t_pool, r, &in), -ENOENT);
    ck_assert_uint_eq(read_u64(t_pool, p1), 9);
    ASSERT_RC(mempool_chan_send(c, p1, 0), -EPIPE);
    ASSERT_RC(mempool_chan_recv(c, &out, 0), -EPIPE);
    /* A new channel of that name is another channel. */
    {
        mempool_chan *c2;
        ASSERT_RC(mempool_chan_open(t_pool, "rq", 8, MEMPOOL_CHAN_CREATE,
                                    &c2), 0);
        ASSERT_RC(mempool_chan_send(c2, p1, 0), 0);
        ASSERT_RC(mempool_chan_recv(c, &out, 0), -EPIPE);
        ASSERT_RC(mempool_chan_recv(c2, &out, 0), 0);
        ASSERT_RC(mempool_chan_close(c2), 0);
    }
    ASSERT_RC(mempool_chan_close(c), 0);
    ASSERT_RC(mempool_delete(t_pool, p1), 0);
    ck_assert_uint_eq(t_stats(t_pool).objects, 0);
    t_assert_healthy(t_pool);
}
END_TEST

/* A sender that closes (or dies) right after send: the object lives. */
static int send_and_go(void *arg)
{
    mempool *p;
    mempool_chan *c;
    mempool_dref r;
    uint64_t x = 99;
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_chan_open(p, "sg", 4, MEMPOOL_CHAN_CREATE, &c), 0);
    T_CHILD_EQ(mempool_put_ex(p, &x, sizeof(x), &rco, &r), 0);
    T_CHILD_EQ(mempool_chan_send(c, r, 0), 0);
    if (arg)
        raise(SIGKILL);
    T_CHILD_EQ(mempool_chan_close(c), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

START_TEST(test_queue_sender_goes)
{
    for (int die = 0; die < 2; die++) {
        mempool_chan *c;
        mempool_dref out;
        pid_t pid = t_fork(send_and_go, die ? (void *)1 : NULL);
        if (die)
            ck_assert_int_eq(t_wait(pid, T_WAIT_S), 128 + SIGKILL);
        else
            t_wait_ok(pid);
        mempool_reap(t_pool);
        ASSERT_RC(mempool_chan_open(t_pool, "sg", 4, 0, &c), 0);
        ASSERT_RC(mempool_chan_recv(c, &out, 1000), 0);
        ck_assert_uint_eq(read_u64(t_pool, out), 99);
        ASSERT_RC(mempool_unref(t_pool, out), 0);
        ck_assert_uint_eq(t_stats(t_pool).objects, 0);
        ASSERT_RC(mempool_chan_close(c), 0);
        t_assert_healthy(t_pool);
    }
}
END_TEST

/* Waiters in send and recv, in threads: destroy wakes them with -EPIPE. */
struct waiter {
    mempool_chan *c;
    bool send;
    mempool_dref r;
    int rc;
    double waited;
};

static void *wait_main(void *arg)
{
    struct waiter *w = arg;
    double t0 = t_now_s();
    mempool_dref out;
    w->rc = w->send ? mempool_chan_send(w->c, w->r, -1)
                    : mempool_chan_recv(w->c, &out, -1);
    w->waited = t_now_s() - t0;
    return NULL;
}

START_TEST(test_destroy_wakes)
{
    mempool_chan *e, *f;
    struct waiter w[4];
    pthread_t th[4];
    mempool_dref r = set_u64(t_pool, 1, false);

    ASSERT_RC(mempool_chan_open(t_pool, "empty", 2, MEMPOOL_CHAN_CREATE, &e),
              0);
    ASSERT_RC(mempool_chan_open(t_pool, "full", 1, MEMPOOL_CHAN_CREATE, &f),
              0);
    ASSERT_RC(mempool_chan_send(f, r, 0), 0);
    for (int i = 0; i < 4; i++) {
        w[i] = (struct waiter){ i < 2 ? e : f, i >= 2, r, 1, 0 };
        ck_assert_int_eq(pthread_create(&th[i], NULL, wait_main, &w[i]), 0);
    }
    /* Until all four sleep: a fixed 100 ms was not always enough on a
     * loaded machine (ASan ctest -j3 beside other lanes: 0 receivers
     * counted after it). */
    for (double t0 = t_now_s();
         (t_chan_info(t_pool, "empty", NULL).receivers_waiting < 2 ||
          t_chan_info(t_pool, "full", NULL).senders_waiting < 2) &&
         t_now_s() - t0 < T_WAIT_S;)
        t_sleep_ms(1);
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(w[i].rc, 1);                /* still waiting */
    ck_assert_uint_eq(t_chan_info(t_pool, "empty", NULL).receivers_waiting, 2);
    ck_assert_uint_eq(t_chan_info(t_pool, "full", NULL).senders_waiting, 2);
    ASSERT_RC(mempool_chan_destroy(t_pool, "empty"), 0);
    ASSERT_RC(mempool_chan_destroy(t_pool, "full"), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ASSERT_RC(w[i].rc, -EPIPE);
    }
    ASSERT_RC(mempool_chan_close(e), 0);
    ASSERT_RC(mempool_chan_close(f), 0);
    t_assert_healthy(t_pool);
}
END_TEST

/* ----------------------------------------- many producers and consumers */

#define NP 4
#define NC 4
#define PER 1500

struct tally {
    _Atomic uint64_t got[NP];          /* items received per producer */
    _Atomic uint64_t sum[NP];          /* sum of their sequence numbers */
    _Atomic int order_errors;
};
static struct tally *tl;

static int producer(void *arg)
{
    int id = (int)(intptr_t)arg;
    mempool *p;
    mempool_chan *c;
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_chan_open(p, "mpmc", 64, 0, &c), 0);
    for (uint64_t i = 0; i < PER; i++) {
        uint64_t x = ((uint64_t)id << 32) | i;
        mempool_dref r;
        int rc;
        T_CHILD_EQ(mempool_put_ex(p, &x, sizeof(x), &rco, &r), 0);
        rc = mempool_chan_send(c, r, 60000);
        T_CHILD_EQ(rc, 0);
    }
    T_CHILD_EQ(mempool_chan_close(c), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

static int consumer(void *arg)
{
    mempool *p;
    mempool_chan *c;
    uint64_t last[NP];
    (void)arg;
    for (int i = 0; i < NP; i++)
        last[i] = UINT64_MAX;
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_chan_open(p, "mpmc", 64, 0, &c), 0);
    for (;;) {
        mempool_dref r;
        mempool_view v;
        uint64_t x;
        int rc = mempool_chan_recv(c, &r, 60000);
        if (rc == -EPIPE)
            break;
        T_CHILD_EQ(rc, 0);
        T_CHILD_EQ(mempool_get(p, r, &v), 0);
        memcpy(&x, v.data, sizeof(x));
        T_CHILD_EQ(mempool_release(p, &v), 0);
        T_CHILD_EQ(mempool_unref(p, r), 0);       /* the last: deleted */
        if (x == UINT64_MAX)
            break;                               /* poison pill */
        {
            int id = (int)(x >> 32);
            uint64_t seq = x & 0xffffffffu;
            T_CHILD_ASSERT(id >= 0 && id < NP);
            /* Per producer, one consumer sees increasing numbers. */
            if (last[id] != UINT64_MAX && seq <= last[id])
                atomic_fetch_add(&tl->order_errors, 1);
            last[id] = seq;
            atomic_fetch_add(&tl->got[id], 1);
            atomic_fetch_add(&tl->sum[id], seq);
        }
    }
    T_CHILD_EQ(mempool_chan_close(c), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

START_TEST(test_mpmc_exact)
{
    pid_t pp[NP], cp[NC];
    mempool_chan *c;
    uint64_t base = t_stats(t_pool).objects;
    mempool_chan_info in;

    tl = mmap(NULL, sizeof(*tl), PROT_READ | PROT_WRITE,
              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert(tl != MAP_FAILED);
    memset(tl, 0, sizeof(*tl));
    ASSERT_RC(mempool_chan_open(t_pool, "mpmc", 64, MEMPOOL_CHAN_CREATE, &c),
              0);
    for (int i = 0; i < NC; i++)
        cp[i] = t_fork(consumer, NULL);
    for (int i = 0; i < NP; i++)
        pp[i] = t_fork(producer, (void *)(intptr_t)i);
    for (int i = 0; i < NP; i++)
        t_wait_ok(pp[i]);
    for (int i = 0; i < NC; i++) {
        uint64_t x = UINT64_MAX;
        mempool_dref r;
        ASSERT_RC(mempool_put_ex(t_pool, &x, sizeof(x), &rco, &r), 0);
        ASSERT_RC(mempool_chan_send(c, r, 60000), 0);
    }
    for (int i = 0; i < NC; i++)
        t_wait_ok(cp[i]);
    for (int i = 0; i < NP; i++) {
        ck_assert_uint_eq(tl->got[i], PER);
        ck_assert_uint_eq(tl->sum[i], (uint64_t)PER * (PER - 1) / 2);
    }
    ck_assert_int_eq(tl->order_errors, 0);
    in = t_chan_info(t_pool, "mpmc", NULL);
    ck_assert_uint_eq(in.sent, NP * PER + NC);
    ck_assert_uint_eq(in.received, NP * PER + NC);
    ck_assert_uint_eq(in.depth, 0);
    ck_assert_uint_eq(t_stats(t_pool).objects, base);    /* no leak */
    ASSERT_RC(mempool_chan_close(c), 0);
    t_assert_healthy(t_pool);
    munmap(tl, sizeof(*tl));
}
END_TEST

/* ------------------------------------------------------------ broadcast */

START_TEST(test_broadcast)
{
    mempool_chan *pub, *s1, *s2, *late;
    mempool_dref r[12], out;
    mempool_chan_info in;

    ASSERT_RC(mempool_chan_open(t_pool, "b", 4,
                                MEMPOOL_CHAN_CREATE | MEMPOOL_CHAN_BROADCAST,
                                &pub), 0);
    ASSERT_RC(mempool_chan_open(t_pool, "b", 0, 0, &s1), -EINVAL); /* mode */
    ASSERT_RC(mempool_chan_open(t_pool, "b", 0, MEMPOOL_CHAN_BROADCAST, &s1),
              0);
    ASSERT_RC(mempool_chan_open(t_pool, "b", 0, MEMPOOL_CHAN_BROADCAST, &s2),
              0);
    for (int i = 0; i < 12; i++)
        r[i] = set_u64(t_pool, (uint64_t)i, true);
    ASSERT_RC(mempool_chan_recv(s1, &out, 0), -ETIMEDOUT);
    for (int i = 0; i < 3; i++)
        ASSERT_RC(mempool_chan_send(pub, r[i], 0), 0);
    /* Both get all three, each with its own reference. */
    for (int i = 0; i < 3; i++) {
        ASSERT_RC(mempool_chan_recv(s1, &out, 0), 0);
        ck_assert_uint_eq(read_u64(t_pool, out), (uint64_t)i);
        ASSERT_RC(mempool_chan_recv(s2, &out, 0), 0);
        ck_assert_uint_eq(read_u64(t_pool, out), (uint64_t)i);
        /* ring + s1 + s2 (the sender's moved into the ring) */
        ck_assert_int_eq(t_refs(t_pool, r[i]), 3);
    }
    ASSERT_RC(mempool_chan_recv(s2, &out, 0), -ETIMEDOUT);
    ASSERT_RC(mempool_chan_open(t_pool, "b", 0, MEMPOOL_CHAN_BROADCAST,
                                &late), 0);
    /* Senders never wait: 9 more into a ring of 4; r[0..4] leave it. */
    for (int i = 3; i < 12; i++)
        ASSERT_RC(mempool_chan_send(pub, r[i], 0), 0);
    ck_assert_int_eq(t_refs(t_pool, r[0]), 2);     /* s1 + s2 only */
    ASSERT_RC(mempool_chan_recv(s1, &out, 0), -EOVERFLOW);  /* lost 3..7 */
    for (int i = 8; i < 12; i++) {
        ASSERT_RC(mempool_chan_recv(s1, &out, 0), 0);
        ck_assert_uint_eq(read_u64(t_pool, out), (uint64_t)i);
    }
    ASSERT_RC(mempool_chan_recv(s1, &out, 0), -ETIMEDOUT);
    /* The late subscriber opened after item 2: lost 3..7 too. */
    ASSERT_RC(mempool_chan_recv(late, &out, 0), -EOVERFLOW);
    ASSERT_RC(mempool_chan_recv(late, &out, 0), 0);
    ck_assert_uint_eq(read_u64(t_pool, out), 8);
    in = t_chan_info(t_pool, "b", NULL);
    ck_assert_uint_eq(in.flags, MEMPOOL_CHAN_BROADCAST);
    ck_assert_uint_eq(in.dropped, 10);
    ck_assert_uint_eq(in.sent, 12);
    ck_assert_uint_eq(in.depth, 4);
    ck_assert_uint_eq(in.refs, 4);
    ck_assert_uint_eq(in.subscribers, 4);
    t_assert_healthy(t_pool);
    ASSERT_RC(mempool_chan_destroy(t_pool, "b"), 0);
    ASSERT_RC(mempool_chan_recv(s2, &out, 0), -EPIPE);
    /* What is left: s1's references (0..2, 8..11), s2's (0..2), late's (8) */
    ck_assert_int_eq(t_refs(t_pool, r[5]), -1);     /* gone with the ring */
    ck_assert_int_eq(t_refs(t_pool, r[9]), 1);
    ck_assert_int_eq(t_refs(t_pool, r[8]), 2);
    ASSERT_RC(mempool_chan_close(pub), 0);
    ASSERT_RC(mempool_chan_close(s1), 0);
    ASSERT_RC(mempool_chan_close(s2), 0);
    ASSERT_RC(mempool_chan_close(late), 0);
    t_assert_healthy(t_pool);
}
END_TEST

/* ---------------------------------------------------- stopped processes */

static int pingpong(void *arg)
{
    mempool *p;
    mempool_chan *c;
    bool send_side = arg != NULL;
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_chan_open(p, "stop", 8, 0, &c), 0);
    for (uint64_t i = 0;; i++) {
        mempool_dref r;
        if (send_side) {
            T_CHILD_EQ(mempool_put_ex(p, &i, sizeof(i), &rco, &r), 0);
            int rc = mempool_chan_send(c, r, 100);
            if (rc == -ETIMEDOUT) {
                T_CHILD_EQ(mempool_unref(p, r), 0);
                continue;
            }
            T_CHILD_EQ(rc, 0);
        } else {
            int rc = mempool_chan_recv(c, &r, 100);
            if (rc == -ETIMEDOUT)
                continue;
            T_CHILD_EQ(rc, 0);
            T_CHILD_EQ(mempool_unref(p, r), 0);
        }
    }
    return 0;
}

/* Stop a busy sender and a busy receiver at random moments, many times:
 * each time, this process must still send and receive at once. (Only the
 * channel calls: a peer stopped inside the allocator lock would hold up a
 * set or the free of a last unref, which is the allocator's business; so
 * objects are made before and references dropped after the stop.) */
START_TEST(test_stopped_peers)
{
    enum { ROUNDS = 30, KEEP = 64 };
    mempool_chan *c;
    pid_t s, r;
    uint64_t seed = 12345;
    mempool_dref held[KEEP];

    ASSERT_RC(mempool_chan_open(t_pool, "stop", 8, MEMPOOL_CHAN_CREATE, &c),
              0);
    s = t_fork(pingpong, (void *)1);
    r = t_fork(pingpong, NULL);
    for (int k = 0; k < ROUNDS; k++) {
        mempool_dref x = set_u64(t_pool, 1u << 31, true), out;
        int nheld = 0, rc;
        double t0;
        nanosleep(&(struct timespec){ 0,
                  (long)(t_rand(&seed) % 3000000) }, NULL);
        kill(s, SIGSTOP);
        kill(r, SIGSTOP);
        t0 = t_now_s();
        /* Make room if full, then our item goes in and comes out. */
        while ((rc = mempool_chan_send(c, x, 0)) == -ETIMEDOUT &&
               nheld < KEEP) {
            ASSERT_RC(mempool_chan_recv(c, &out, 0), 0);
            held[nheld++] = out;
        }
        ASSERT_RC(rc, 0);
        for (;;) {
            bool mine;
            ck_assert_int_lt(nheld, KEEP);
            ASSERT_RC(mempool_chan_recv(c, &out, 0), 0);
            mine = out.off == x.off && out.gen == x.gen;
            held[nheld++] = out;
            if (mine)
                break;
        }
        /* A wait for a stopped peer lasts the peer bound; a loaded 2-CPU
         * machine kept a thread off the CPU for over a second, so the
         * line is drawn just below the bound (as check_hang's). */
        ck_assert_msg(t_now_s() - t0 < MEMPOOL_PEER_WAIT_MS / 1000.0 * 0.9,
                      "blocked %.3f s by stopped peers", t_now_s() - t0);
        kill(s, SIGCONT);
        kill(r, SIGCONT);
        for (int i = 0; i < nheld; i++)
            ASSERT_RC(mempool_unref(t_pool, held[i]), 0);
    }
    t_kill(s);
    t_kill(r);
    mempool_reap(t_pool);
    {   /* Drain; then every object is gone: nothing leaked. */
        mempool_dref out;
        while (mempool_chan_recv(c, &out, 0) == 0)
            ASSERT_RC(mempool_unref(t_pool, out), 0);
    }
    ck_assert_uint_eq(t_stats(t_pool).objects, 0);
    ASSERT_RC(mempool_chan_close(c), 0);
    t_assert_healthy(t_pool);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "queue", 120, true, {
              test_queue_basic, test_queue_limits, test_queue_refs_travel,
              test_queue_sender_goes, test_destroy_wakes } },
        { "mpmc", 300, true, { test_mpmc_exact } },
        { "broadcast", 60, true, { test_broadcast } },
        { "stopped", 120, true, { test_stopped_peers } },
        { .name = NULL }
    };
    return t_main("handoff_chan", cases);
}
