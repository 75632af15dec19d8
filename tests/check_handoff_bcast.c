/* SPDX-License-Identifier: MIT */
/*
 * check_handoff_bcast.c - broadcast channels with real processes:
 *
 *   subscribers    the subscriber count is exact: handles of several
 *                  processes, closed, killed (gone once reaped), left open
 *                  at mempool_close(), inherited by a forked child (which
 *                  gets MEMPOOL_EFORKED and whose close changes nothing), a
 *                  slot taken over by a new process, a channel destroyed
 *                  and made again under the same name; the same number in
 *                  mempool_chan_list() and in the stats JSON.
 *   exact          2 publisher processes x 3 subscriber processes, a small
 *                  ring (overruns happen): each subscriber sees every
 *                  publisher's items in order, received + dropped accounts
 *                  for every item for every subscriber, and when everyone
 *                  let go nothing is left (fsck, no object).
 *   wakes          subscribers of other processes blocked in recv (no
 *                  timeout) wake with -EPIPE when a third process destroys
 *                  the channel; a stopped (SIGSTOP) subscriber delays
 *                  nobody and, continued, gets -EOVERFLOW once and reads on.
 */
#include "helpers.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>

static const mempool_put_options rco = { 0, 0, MEMPOOL_PUT_REFCOUNTED };
static int rep_fd = -1, go_fd = -1, go_wfd = -1;
static int open_go[8], n_open_go;   /* the parent's go ends, for children */

/* The "subscribers" figure of channel @p name in the stats JSON. */
static long json_subscribers(mempool *p, const char *name)
{
    char *doc = NULL;
    cJSON *root, *chans, *c;
    long n = -1;
    ck_assert_int_gt(mempool_stats_json(p, &doc), 0);
    root = cJSON_Parse(doc);
    ck_assert_ptr_nonnull(root);
    chans = cJSON_GetObjectItem(root, "channels");
    cJSON_ArrayForEach(c, chans) {
        cJSON *nm = cJSON_GetObjectItem(c, "name");
        if (cJSON_IsString(nm) && strcmp(nm->valuestring, name) == 0)
            n = (long)cJSON_GetObjectItem(c, "subscribers")->valuedouble;
    }
    cJSON_Delete(root);
    free(doc);
    return n;
}

static void expect_subs(mempool *p, const char *name, uint32_t n,
                        const char *when)
{
    uint32_t got = t_chan_info(p, name, NULL).subscribers;
    ck_assert_msg(got == n, "%s: %u subscribers, want %u", when, got, n);
    ck_assert_msg(json_subscribers(p, name) == (long)n, "%s: stats JSON "
                  "says %ld subscribers, want %u", when,
                  json_subscribers(p, name), n);
}

/* --------------------------------------------------------- subscribers */

/* Open arg subscriber handles of "sx", report, wait for "go"; then close
 * them all (arg > 0), close the pool leaving them open (arg < 0), or wait
 * to be killed. */
static int subscriber(void *arg)
{
    int n = (int)(intptr_t)arg, k = n < 0 ? -n : n;
    mempool_chan *c[8];
    mempool *p;
    for (int i = 0; i < n_open_go; i++)
        close(open_go[i]);          /* so each parent close is an EOF */
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    for (int i = 0; i < k; i++)
        T_CHILD_EQ(mempool_chan_open(p, "sx", 0, MEMPOOL_CHAN_BROADCAST,
                                     &c[i]), 0);
    T_CHILD_EQ(t_send_u64(rep_fd, (uint64_t)mempool_worker_id(p)), 0);
    T_CHILD_EQ(t_wait_fd(go_fd, T_WAIT_S), 0);
    if (n > 0)
        for (int i = 0; i < k; i++)
            T_CHILD_EQ(mempool_chan_close(c[i]), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

struct sub_proc {
    pid_t pid;
    int go;                 /* write end: close it to let the child go on */
    uint64_t wid;
};

static void start_sub(struct sub_proc *s, int arg)
{
    int rep[2], go[2];
    t_pipe(rep);
    t_pipe(go);
    rep_fd = rep[1];
    go_fd = go[0];
    go_wfd = go[1];
    ck_assert_int_lt(n_open_go, 8);
    open_go[n_open_go++] = go[1];
    s->pid = t_fork(subscriber, (void *)(intptr_t)arg);
    close(rep[1]);
    close(go[0]);
    ASSERT_RC(t_recv_u64(rep[0], &s->wid, T_WAIT_S), 0);
    close(rep[0]);
    s->go = go[1];
}

static mempool_chan *fork_sub;

static int forked_close(void *arg)
{
    mempool_dref r, out;
    (void)arg;
    T_CHILD_EQ(mempool_put(t_pool, "x", 2, &r), MEMPOOL_EFORKED);
    r = (mempool_dref){ 1, 1 };
    T_CHILD_EQ(mempool_chan_recv(fork_sub, &out, 0), MEMPOOL_EFORKED);
    T_CHILD_EQ(mempool_chan_send(fork_sub, r, 0), MEMPOOL_EFORKED);
    T_CHILD_EQ(mempool_chan_close(fork_sub), 0);
    return 0;
}

START_TEST(test_subscribers_exact)
{
    struct sub_proc a, b, c, d;
    mempool_chan *mine, *old;

    ASSERT_RC(mempool_chan_open(t_pool, "sx", 8,
                                MEMPOOL_CHAN_CREATE | MEMPOOL_CHAN_BROADCAST,
                                &mine), 0);
    expect_subs(t_pool, "sx", 1, "ours");
    start_sub(&b, 2);               /* will be killed (lowest slot) */
    start_sub(&a, 3);               /* closes its three */
    start_sub(&c, -2);              /* closes the pool, not the handles */
    expect_subs(t_pool, "sx", 8, "four processes");

    /* A forked child's copy of our handle: EFORKED, its close is no
     * unsubscribe. */
    fork_sub = mine;
    t_wait_ok(t_fork(forked_close, NULL));
    expect_subs(t_pool, "sx", 8, "after a forked child closed our handle");

    close(a.go);
    t_wait_ok(a.pid);
    expect_subs(t_pool, "sx", 5, "three closed");
    ck_assert_int_eq(t_kill(b.pid), SIGKILL);
    close(b.go);
    expect_subs(t_pool, "sx", 5, "killed, not yet reaped");
    ASSERT_RC(mempool_reap(t_pool), 1);
    expect_subs(t_pool, "sx", 3, "killed and reaped");
    close(c.go);
    t_wait_ok(c.pid);
    expect_subs(t_pool, "sx", 1, "pool closed with handles open");

    /* b's slot, taken over by a new process: none of b's count comes back */
    start_sub(&d, 1);
    ck_assert_uint_eq(d.wid, b.wid);
    expect_subs(t_pool, "sx", 2, "a new process on the killed one's slot");
    close(d.go);
    t_wait_ok(d.pid);
    expect_subs(t_pool, "sx", 1, "its one closed");

    /* Another incarnation of "sx": old handles count for nothing there,
     * and closing them does not touch its count. */
    old = mine;
    ASSERT_RC(mempool_chan_destroy(t_pool, "sx"), 0);
    ASSERT_RC(mempool_chan_open(t_pool, "sx", 8,
                                MEMPOOL_CHAN_CREATE | MEMPOOL_CHAN_BROADCAST,
                                &mine), 0);
    expect_subs(t_pool, "sx", 1, "made again");
    ASSERT_RC(mempool_chan_close(old), 0);
    expect_subs(t_pool, "sx", 1, "old handle closed");
    ASSERT_RC(mempool_chan_close(mine), 0);
    expect_subs(t_pool, "sx", 0, "none");
    ASSERT_RC(mempool_chan_close(mine = NULL), -EINVAL);
    /* Queue channels have no subscribers. */
    ASSERT_RC(mempool_chan_open(t_pool, "qx", 4, MEMPOOL_CHAN_CREATE, &old),
              0);
    ck_assert_uint_eq(t_chan_info(t_pool, "qx", NULL).subscribers, 0);
    ASSERT_RC(mempool_chan_close(old), 0);
    t_assert_healthy(t_pool);
}
END_TEST

/* ---------------------------------------------- many processes, exact */

#define NPUB 2
#define NSUB 3
#define PER 2000
#define RING 16

struct tally {
    _Atomic int ready;
    _Atomic int done;                  /* publishers finished */
    _Atomic uint64_t got[NSUB];        /* items received per subscriber */
    _Atomic uint64_t overflows[NSUB];  /* -EOVERFLOW answers */
    _Atomic int order_errors, other_errors;
};
static struct tally *tl;

static int bpublisher(void *arg)
{
    int id = (int)(intptr_t)arg;
    mempool *p;
    mempool_chan *c;
    close(go_wfd);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_chan_open(p, "bx", 0, MEMPOOL_CHAN_BROADCAST, &c), 0);
    T_CHILD_EQ(t_wait_fd(go_fd, T_WAIT_S), 0);
    for (uint64_t i = 0; i < PER; i++) {
        uint64_t x = ((uint64_t)id << 32) | i;
        mempool_dref r;
        T_CHILD_EQ(mempool_put_ex(p, &x, sizeof(x), &rco, &r), 0);
        T_CHILD_EQ(mempool_chan_send(c, r, 0), 0);     /* never waits */
        if (i % 64 == 0)
            sched_yield();              /* let subscribers keep up a bit */
    }
    T_CHILD_EQ(mempool_chan_close(c), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    atomic_fetch_add(&tl->done, 1);
    return 0;
}

static int bsubscriber(void *arg)
{
    int id = (int)(intptr_t)arg;
    uint64_t last[NPUB];
    mempool *p;
    mempool_chan *c;
    for (int i = 0; i < NPUB; i++)
        last[i] = UINT64_MAX;
    close(go_wfd);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_chan_open(p, "bx", 0, MEMPOOL_CHAN_BROADCAST, &c), 0);
    atomic_fetch_add(&tl->ready, 1);
    for (;;) {
        mempool_dref r;
        mempool_view v;
        uint64_t x;
        int rc = mempool_chan_recv(c, &r, 50);
        if (rc == -ETIMEDOUT && atomic_load(&tl->done) == NPUB &&
            (rc = mempool_chan_recv(c, &r, 0)) == -ETIMEDOUT)
            break;                      /* all published, all seen */
        if (rc == -ETIMEDOUT)
            continue;
        if (rc == -EOVERFLOW) {
            atomic_fetch_add(&tl->overflows[id], 1);
            continue;
        }
        T_CHILD_EQ(rc, 0);
        T_CHILD_EQ(mempool_get(p, r, &v), 0);
        memcpy(&x, v.data, sizeof(x));
        T_CHILD_EQ(mempool_release(p, &v), 0);
        T_CHILD_EQ(mempool_unref(p, r), 0);
        if ((x >> 32) >= NPUB) {
            atomic_fetch_add(&tl->other_errors, 1);
            continue;
        }
        if (last[x >> 32] != UINT64_MAX &&
            (x & 0xffffffffu) <= last[x >> 32])
            atomic_fetch_add(&tl->order_errors, 1);
        last[x >> 32] = x & 0xffffffffu;
        atomic_fetch_add(&tl->got[id], 1);
    }
    T_CHILD_EQ(mempool_chan_close(c), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

START_TEST(test_bcast_exact)
{
    pid_t pp[NPUB], sp[NSUB];
    mempool_chan *c;
    mempool_chan_info in;
    uint64_t base = t_stats(t_pool).objects, got = 0;
    int go[2];

    tl = mmap(NULL, sizeof(*tl), PROT_READ | PROT_WRITE,
              MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ck_assert(tl != MAP_FAILED);
    memset(tl, 0, sizeof(*tl));
    ASSERT_RC(mempool_chan_open(t_pool, "bx", RING,
                                MEMPOOL_CHAN_CREATE | MEMPOOL_CHAN_BROADCAST,
                                &c), 0);
    t_pipe(go);
    go_fd = go[0];
    go_wfd = go[1];
    for (int i = 0; i < NSUB; i++)
        sp[i] = t_fork(bsubscriber, (void *)(intptr_t)i);
    while (atomic_load(&tl->ready) < NSUB)
        t_sleep_ms(1);              /* every subscriber opened first */
    for (int i = 0; i < NPUB; i++)
        pp[i] = t_fork(bpublisher, (void *)(intptr_t)i);
    close(go[0]);
    close(go[1]);                   /* publishers: go */
    for (int i = 0; i < NPUB; i++)
        t_wait_ok(pp[i]);
    for (int i = 0; i < NSUB; i++)
        t_wait_ok(sp[i]);
    in = t_chan_info(t_pool, "bx", NULL);
    ck_assert_int_eq(tl->order_errors, 0);
    ck_assert_int_eq(tl->other_errors, 0);
    ck_assert_uint_eq(in.sent, NPUB * PER);
    for (int i = 0; i < NSUB; i++)
        got += tl->got[i];
    ck_assert_uint_eq(in.received, got);
    /* Every subscriber accounts for every item: received or dropped. */
    ck_assert_msg(got + in.dropped == (uint64_t)NSUB * NPUB * PER,
                  "received %" PRIu64 " + dropped %" PRIu64 " != %d",
                  got, in.dropped, NSUB * NPUB * PER);
    for (int i = 0; i < NSUB; i++)
        ck_assert_msg(tl->got[i] == NPUB * PER || tl->overflows[i] > 0,
                      "subscriber %d lost items without -EOVERFLOW", i);
    ck_assert_uint_eq(in.subscribers, 1);
    ck_assert_uint_eq(in.depth, RING);
    ck_assert_uint_eq(in.refs, RING);
    /* The ring holds the last RING items; destroying drops them. */
    ASSERT_RC(mempool_chan_destroy(t_pool, "bx"), 0);
    ASSERT_RC(mempool_chan_close(c), 0);
    ck_assert_uint_eq(t_stats(t_pool).objects, base);
    t_assert_healthy(t_pool);
    munmap(tl, sizeof(*tl));
}
END_TEST

/* --------------------------------------------------- waking and stopping */

static int sleeper(void *arg)
{
    mempool *p;
    mempool_chan *c;
    mempool_dref r;
    (void)arg;
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_chan_open(p, "bw", 0, MEMPOOL_CHAN_BROADCAST, &c), 0);
    T_CHILD_EQ(mempool_chan_recv(c, &r, -1), -EPIPE);
    T_CHILD_EQ(mempool_chan_recv(c, &r, 0), -EPIPE);
    T_CHILD_EQ(mempool_chan_close(c), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

static int destroy_bw(void *arg)
{
    mempool *p;
    (void)arg;
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_chan_destroy(p, "bw"), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

START_TEST(test_bcast_destroy_wakes)
{
    mempool_chan *c;
    pid_t s[3];
    double t0;
    ASSERT_RC(mempool_chan_open(t_pool, "bw", 4,
                                MEMPOOL_CHAN_CREATE | MEMPOOL_CHAN_BROADCAST,
                                &c), 0);
    for (int i = 0; i < 3; i++)
        s[i] = t_fork(sleeper, NULL);
    for (int k = 0; k < 10000 &&
                    t_chan_info(t_pool, "bw", NULL).receivers_waiting < 3; k++)
        t_sleep_ms(1);
    ck_assert_uint_eq(t_chan_info(t_pool, "bw", NULL).receivers_waiting, 3);
    t0 = t_now_s();
    t_wait_ok(t_fork(destroy_bw, NULL));
    for (int i = 0; i < 3; i++)
        t_wait_ok(s[i]);
    ck_assert_msg(t_now_s() - t0 < 10.0, "woke after %.2f s", t_now_s() - t0);
    ASSERT_RC(mempool_chan_close(c), 0);
    t_assert_healthy(t_pool);
}
END_TEST

/* A subscriber stopped for a while: publishing and the other subscriber
 * go on at full speed; continued, it gets -EOVERFLOW once, then the ring. */
static int slow_sub(void *arg)
{
    mempool *p;
    mempool_chan *c;
    mempool_dref r;
    int rc, n = 0, ovf = 0;
    (void)arg;
    close(go_wfd);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_chan_open(p, "bs", 0, MEMPOOL_CHAN_BROADCAST, &c), 0);
    T_CHILD_EQ(t_send_u64(rep_fd, 1), 0);
    T_CHILD_EQ(t_wait_fd(go_fd, T_WAIT_S), 0);   /* we are stopped here */
    while ((rc = mempool_chan_recv(c, &r, 0)) != -ETIMEDOUT) {
        if (rc == -EOVERFLOW) {
            ovf++;
            continue;
        }
        T_CHILD_EQ(rc, 0);
        T_CHILD_EQ(mempool_unref(p, r), 0);
        n++;
    }
    T_CHILD_EQ(ovf, 1);
    T_CHILD_EQ(n, 4);                /* the ring's worth */
    T_CHILD_EQ(mempool_chan_close(c), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

START_TEST(test_bcast_stopped_subscriber)
{
    mempool_chan *pub, *other;
    mempool_dref r;
    uint64_t one;
    int rep[2], go[2];
    double t0;
    pid_t s;

    ASSERT_RC(mempool_chan_open(t_pool, "bs", 4,
                                MEMPOOL_CHAN_CREATE | MEMPOOL_CHAN_BROADCAST,
                                &pub), 0);
    ASSERT_RC(mempool_chan_open(t_pool, "bs", 0, MEMPOOL_CHAN_BROADCAST,
                                &other), 0);
    t_pipe(rep);
    t_pipe(go);
    rep_fd = rep[1];
    go_fd = go[0];
    go_wfd = go[1];
    s = t_fork(slow_sub, NULL);
    close(rep[1]);
    close(go[0]);
    ASSERT_RC(t_recv_u64(rep[0], &one, T_WAIT_S), 0);
    kill(s, SIGSTOP);
    t0 = t_now_s();
    for (uint64_t i = 0; i < 100; i++) {
        mempool_dref out;
        ASSERT_RC(mempool_put_ex(t_pool, &i, sizeof(i), &rco, &r), 0);
        ASSERT_RC(mempool_chan_send(pub, r, 0), 0);
        ASSERT_RC(mempool_chan_recv(other, &out, 0), 0);
        ck_assert(out.off == r.off && out.gen == r.gen);
        ASSERT_RC(mempool_unref(t_pool, out), 0);
    }
    ck_assert_msg(t_now_s() - t0 < 10.0, "a stopped subscriber slowed us: "
                  "%.2f s", t_now_s() - t0);
    close(go[1]);
    kill(s, SIGCONT);
    t_wait_ok(s);
    close(rep[0]);
    ck_assert_uint_eq(t_chan_info(t_pool, "bs", NULL).dropped, 96);
    ASSERT_RC(mempool_chan_destroy(t_pool, "bs"), 0);
    ASSERT_RC(mempool_chan_close(pub), 0);
    ASSERT_RC(mempool_chan_close(other), 0);
    ck_assert_uint_eq(t_stats(t_pool).objects, 0);
    t_assert_healthy(t_pool);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "subscribers", 60, true, { test_subscribers_exact } },
        { "exact", 120, true, { test_bcast_exact } },
        { "wakes", 60, true, {
              test_bcast_destroy_wakes, test_bcast_stopped_subscriber } },
        { .name = NULL }
    };
    return t_main("handoff_bcast", cases);
}
