/* SPDX-License-Identifier: MIT */
/*
 * check_review6.c - a hostile review of session 6's landings.
 *
 * giver stopped in the owner's cache lock: another worker frees a small
 * object of ours into our allocator cache (wcache.c give_back; since
 * session 6 refcounted ones too) and is SIGSTOPped there, holding our
 * cache lock. Our own sets and our close waited for that lock without a
 * bound - the close under the allocator lock, so every worker's next
 * allocation stalled too - until the stopped process was continued. Now
 * they wait the peer bound at most and go around the cache (a set from
 * the allocator, a close leaves its charges owed).
 */
#include "helpers.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef T_FAILPOINTS
/* What the owner's thread does while the giver is stopped. */
enum { OP_PUT = 1, OP_CLOSE = 2 };

struct owner_op {
    mempool *p;
    int op;
    mempool_dref mine;   /* OP_PUT: an object of ours to delete first */
    int del_rc, put_rc;
    _Atomic int done;
};

static void *owner_run(void *arg)
{
    struct owner_op *o = arg;
    char buf[64];
    mempool_dref r;
    memset(buf, 3, sizeof buf);
    if (o->op == OP_PUT) {
        o->del_rc = mempool_delete(o->p, o->mine);
        o->put_rc = mempool_put(o->p, buf, sizeof buf, &r);
        if (o->put_rc == 0)
            o->put_rc = mempool_delete(o->p, r);
    } else {
        mempool_close(o->p);
    }
    atomic_store(&o->done, 1);
    return NULL;
}

/* Did the owner's step end within @p s seconds? (A watchdog, not a
 * measurement: the bound is 5 s, a hang is forever.) */
static bool ended_within(struct owner_op *o, double s)
{
    struct timespec ts = { 0, 10 * 1000 * 1000 };
    for (double t = 0; t < s; t += 0.01) {
        if (atomic_load(&o->done))
            return true;
        nanosleep(&ts, NULL);
    }
    return atomic_load(&o->done) != 0;
}

/* Attach, delete the owner's object with cache.recached=stop@1 armed:
 * stopped inside the owner's cache lock, the entry CACHED, not listed. */
static int stopped_giver(void *arg)
{
    mempool_dref *r = arg;
    mempool *p;
    setenv("MEMPOOL_FAILPOINT", "cache.recached=stop@1", 1);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_delete(p, *r), 0);
    mempool_close(p);
    return 0;
}

/* Our object given back into our cache by a giver that stops there;
 * then @p op of ours, which must end while it is still stopped. */
static void giver_stopped(int op)
{
    struct owner_op o = { .p = NULL };
    mempool_dref r, keep;
    pthread_t th;
    mempool *p, *q;
    char buf[64];
    pid_t k;
    bool ended;

    t_pool_name(t_name, "review6");
    ck_assert_int_eq(t_open(t_name, T_ARENA_BYTES, &p), 0);
    memset(buf, 1, sizeof buf);
    /* Our cache of this class now holds a refill's rest. */
    ck_assert_int_eq(mempool_put(p, buf, sizeof buf, &keep), 0);
    ck_assert_int_eq(mempool_put(p, buf, sizeof buf, &o.mine), 0);
    ck_assert_int_eq(mempool_put(p, buf, sizeof buf, &r), 0);
    k = t_fork(stopped_giver, &r);
    t_await_stopped(k, "cache.recached");
    o.p = p;
    o.op = op;
    ck_assert_int_eq(pthread_create(&th, NULL, owner_run, &o), 0);
    ended = ended_within(&o, 40.0);
    ck_assert_int_eq(kill(k, SIGCONT), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_msg(ended, "our %s waited for a stopped giver",
                  op == OP_PUT ? "put" : "close");
    ck_assert_int_eq(t_wait(k, T_WAIT_S), 0);
    ck_assert_int_eq(t_open(t_name, T_ARENA_BYTES, &q), 0);
    if (op == OP_PUT) {
        /* The delete frees around our cache; the put may answer -EAGAIN
         * (documented: a stopped peer holds a lock of ours) or, had the
         * class been refilled meanwhile, succeed. */
        ck_assert_int_eq(o.del_rc, 0);
        ck_assert_msg(o.put_rc == 0 || o.put_rc == -EAGAIN, "put: %d",
                      o.put_rc);
        ck_assert_int_eq(mempool_put(p, buf, sizeof buf, &r), 0);
        ck_assert_int_eq(mempool_delete(p, r), 0);
        mempool_close(p);
    } else {
        ck_assert_int_eq(mempool_delete(q, o.mine), 0);
    }
    ck_assert_int_eq(mempool_delete(q, keep), 0);
    (void)mempool_reap(q);
    t_assert_healthy(q);
    ck_assert_uint_eq(t_stats(q).objects, 0);
    mempool_close(q);
    mempool_destroy(t_name);
}

START_TEST(test_put_while_giver_stopped)
{
    giver_stopped(OP_PUT);
}
END_TEST

START_TEST(test_close_while_giver_stopped)
{
    giver_stopped(OP_CLOSE);
}
END_TEST
#endif

int main(void)
{
    const struct t_case cases[] = {
        { "review6", 240, false, {
#ifdef T_FAILPOINTS
              test_put_while_giver_stopped, test_close_while_giver_stopped,
#endif
          } },
        { .name = NULL }
    };
    return t_main("review6", cases);
}
