/* SPDX-License-Identifier: MIT */
/*
 * check_fsck_live.c - mempool_check() (fsck) on a live pool: while other
 * processes move entries between their allocator caches (src/core/wcache.c)
 * and the pool, a check must report no corruption that is not there.
 *
 * churn: three workers attach, set/get/release/delete objects of 1..700
 * bytes (pops, recaches, refills, flushes of every small class) and close
 * again (a close flushes the whole cache), over and over, while an observer
 * handle and a worker handle run mempool_check() in a loop. Every check
 * must be 0; the first that is not fails the test with its reason.
 *
 * cross: producer workers set small objects and pass their DRefs through a
 * pipe to consumer workers, which get and delete them (a delete of another
 * worker's object takes the locked path while the owner pops and recaches
 * on its own lock); producers also delete some of their own. The parent
 * checks in a loop.
 *
 * The checks run as fast as they can (no sleeps) to hit the short windows,
 * for RUN_S seconds and at least MIN_CHECKS checks: the workers run until
 * the parent's checks are done (a shared flag), not until a clock time -
 * under ThreadSanitizer on a loaded machine the forks and attaches took
 * most of the seconds and each check took over one, and the case failed
 * with 2 checks. Nothing asserts on time.
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
#include <time.h>
#include <unistd.h>

#define RUN_S 3
#define MIN_CHECKS 4

static uint64_t now_s(void)
{
    return (uint64_t)time(NULL);
}

/* Set by the parent when its checks are done: the workers stop. */
static _Atomic int *stop;

/* Whether a worker whose parent checks until @p end stops: when told, or
 * T_WAIT_S later on its own (a failed check ends the parent's test
 * without telling). */
static bool stopping(uint64_t end)
{
    return atomic_load(stop) || now_s() >= end + T_WAIT_S;
}

/* Check @p p in a loop until @p end and at least MIN_CHECKS times; fail
 * at the first report. */
static void check_loop(mempool *a, mempool *b, uint64_t end)
{
    uint64_t n = 0;
    char why[512];
    while (now_s() < end || n < MIN_CHECKS) {
        mempool *p = n % 2 ? b : a;
        int rc = mempool_check(p, why, sizeof why);
        ck_assert_msg(rc == 0, "check %llu (%s handle): %d (%s): %s",
                      (unsigned long long)n, p == a ? "observer" : "worker",
                      rc, mempool_strerror(rc), why);
        n++;
    }
}

/* Check through observer @p obs until @p end, then stop the @p nkids
 * workers, wait for them and assert that the pool is healthy and empty. */
static void check_until_done(mempool *obs, uint64_t end, const pid_t *kids,
                             int nkids)
{
    check_loop(obs, t_pool, end);
    atomic_store(stop, 1);
    for (int i = 0; i < nkids; i++)
        t_wait_ok(kids[i]);
    munmap((void *)stop, sizeof *stop);
    ASSERT_RC(mempool_close(obs), 0);
    t_assert_healthy(t_pool);
    ck_assert_uint_eq(t_stats(t_pool).objects, 0);
}

/* ----------------------------------------------------------------- churn */

/* Attach, hammer small objects for a while, close; again until the
 * parent says stop. */
static int churn(void *arg)
{
    uint64_t end = *(uint64_t *)arg, i = 0;
    char buf[700];
    memset(buf, 'c', sizeof buf);
    while (!stopping(end)) {
        mempool *p;
        T_CHILD_EQ(t_attach(t_name, &p), 0);
        for (int k = 0; k < 300 && !stopping(end); k++) {
            mempool_dref r[4];
            mempool_view v;
            /* Keep a few live so a class fills (flushes) and empties
             * (refills) as sizes move. */
            for (int j = 0; j < 4; j++)
                T_CHILD_EQ(mempool_put(p, buf, 1 + i++ % sizeof buf, &r[j]),
                           0);
            T_CHILD_EQ(mempool_get(p, r[0], &v), 0);
            T_CHILD_EQ(mempool_release(p, &v), 0);
            for (int j = 0; j < 4; j++)
                T_CHILD_EQ(mempool_delete(p, r[j]), 0);
        }
        T_CHILD_EQ(mempool_close(p), 0);
    }
    return 0;
}

START_TEST(test_churn)
{
    uint64_t end = now_s() + RUN_S;
    pid_t kids[3];
    mempool *obs = t_observe(t_name);

    stop = t_shared_map(sizeof *stop);
    for (int i = 0; i < 3; i++)
        kids[i] = t_fork(churn, &end);
    check_until_done(obs, end, kids, 3);
}
END_TEST

/* ----------------------------------------------------------------- cross */

/* Producer -> consumer: DRefs (@p fd); consumer -> producer: one byte per
 * delete (@p ack), so at most WINDOW objects are in flight. */
#define WINDOW 256
struct xargs {
    uint64_t end;       /* the parent's checks' */
    int fd;             /* producer: write end; consumer: read end */
    int ack;            /* producer: read end; consumer: write end */
    int other[2];       /* the pipes' other ends: closed in the child (a
                         * consumer holding the write end never sees EOF) */
};

static void close_other(struct xargs *a)
{
    close(a->other[0]);
    close(a->other[1]);
}

static int producer(void *arg)
{
    struct xargs *a = arg;
    mempool *p;
    char buf[512];
    uint64_t i = 0, sent = 0;
    memset(buf, 'p', sizeof buf);
    close_other(a);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    while (!stopping(a->end)) {
        mempool_dref r;
        uint64_t len = 1 + i++ % sizeof buf;
        T_CHILD_EQ(mempool_put(p, buf, len, &r), 0);
        if (i % 3 == 0) {
            T_CHILD_EQ(mempool_delete(p, r), 0);    /* our own: recached */
        } else {
            char b;
            T_CHILD_EQ(t_send_dref(a->fd, r), 0);
            if (++sent > WINDOW)
                T_CHILD_EQ(t_recv(a->ack, &b, 1, T_WAIT_S), 0);
        }
    }
    close(a->fd);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

static int consumer(void *arg)
{
    struct xargs *a = arg;
    mempool *p;
    mempool_dref r;
    close_other(a);
    signal(SIGPIPE, SIG_IGN);            /* acks after the producer ended */
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    /* Until the producer closes its end: every DRef it sent is deleted. */
    while (t_recv_dref(a->fd, &r, T_WAIT_S) == 0) {
        mempool_view v;
        T_CHILD_EQ(mempool_get(p, r, &v), 0);
        T_CHILD_EQ(mempool_release(p, &v), 0);
        T_CHILD_EQ(mempool_delete(p, r), 0);
        (void)t_send(a->ack, "a", 1);    /* fails once the producer ends */
    }
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

START_TEST(test_cross)
{
    uint64_t end = now_s() + RUN_S;
    struct xargs pa[2], ca[2];
    pid_t kids[4];
    mempool *obs = t_observe(t_name);

    stop = t_shared_map(sizeof *stop);
    for (int i = 0; i < 2; i++) {
        int d[2], k[2];
        t_pipe(d);
        t_pipe(k);
        pa[i] = (struct xargs){ end, d[1], k[0], { d[0], k[1] } };
        ca[i] = (struct xargs){ end, d[0], k[1], { d[1], k[0] } };
        kids[2 * i] = t_fork(consumer, &ca[i]);
        kids[2 * i + 1] = t_fork(producer, &pa[i]);
        for (int j = 0; j < 2; j++) {
            close(d[j]);
            close(k[j]);
        }
    }
    check_until_done(obs, end, kids, 4);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("fsck_live");
    TCase *tc = t_tcase(s, "live", 120);
    tcase_add_loop_test(tc, test_churn, 0, 3);
    tcase_add_loop_test(tc, test_cross, 0, 3);
    return s;
}

int main(void)
{
    return t_run(suite(), "fscklive");
}
