/* SPDX-License-Identifier: MIT */
/*
 * check_handoff.c - the semantics of issue 12's handoff primitives, each
 * with real processes where another process is the point: get_wait
 * (publish, abort, writer death, timeouts), names (bind, replace, drop,
 * list, waiting, refcounted names holding a reference, plain names
 * vanishing with their object, names outliving their creator), references
 * in flight (give, take, TTL expiry freeing the object) and the forked
 * child's answer. Channels are in check_handoff_chan.c, kills at every
 * step in check_handoff_crash.c.
 */
#include "helpers.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

static const mempool_put_options rco = { 0, 0, MEMPOOL_PUT_REFCOUNTED };

static mempool_dref set_rc(mempool *p, const char *s)
{
    mempool_dref r;
    ASSERT_RC(mempool_put_ex(p, s, strlen(s) + 1, &rco, &r), 0);
    return r;
}

static void expect_str(mempool *p, mempool_dref r, const char *s)
{
    mempool_view v;
    ASSERT_RC(mempool_get(p, r, &v), 0);
    ck_assert_str_eq((const char *)v.data, s);
    ASSERT_RC(mempool_release(p, &v), 0);
}

/* ------------------------------------------------------------- get_wait */


static int go_fd = -1, rep_fd = -1, go_wfd = -1;

/* Reserve, report the DRef, wait for "go", then publish/abort/die. */
static int reserver(void *arg)
{
    int mode = (int)(intptr_t)arg;
    mempool *p;
    mempool_dref r;
    void *buf;
    close(go_wfd);                   /* so the parent's close is EOF */
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_reserve(p, 64, NULL, &buf, &r), 0);
    memcpy(buf, "published", 10);
    T_CHILD_EQ(t_send_dref(rep_fd, r), 0);
    T_CHILD_EQ(t_wait_fd(go_fd, T_WAIT_S), 0);
    t_sleep_ms(30);                      /* let the parent sleep in get_wait */
    if (mode == 0)
        T_CHILD_EQ(mempool_publish(p, r), 0);
    else if (mode == 1)
        T_CHILD_EQ(mempool_abort(p, r), 0);
    else
        raise(SIGKILL);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

static pid_t start_reserver(int mode, mempool_dref *r, int *go_w)
{
    int rep[2], go[2];
    pid_t pid;
    t_pipe(rep);
    t_pipe(go);
    rep_fd = rep[1];
    go_fd = go[0];
    go_wfd = go[1];
    pid = t_fork(reserver, (void *)(intptr_t)mode);
    close(rep[1]);
    close(go[0]);
    ASSERT_RC(t_recv_dref(rep[0], r, T_WAIT_S), 0);
    close(rep[0]);
    *go_w = go[1];
    return pid;
}

START_TEST(test_get_wait_publish)
{
    mempool_view v;
    mempool_dref r;
    int go;
    pid_t pid = start_reserver(0, &r, &go);
    ASSERT_RC(mempool_get(t_pool, r, &v), -ENOENT);      /* as today */
    ASSERT_RC(mempool_get_wait(t_pool, r, &v, 0), -ETIMEDOUT);
    ASSERT_RC(mempool_get_wait(t_pool, r, &v, 20), -ETIMEDOUT);
    close(go);
    ASSERT_RC(mempool_get_wait(t_pool, r, &v, -1), 0);
    ck_assert_str_eq((const char *)v.data, "published");
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    t_wait_ok(pid);
    /* Published: at once, timeout or not. */
    ASSERT_RC(mempool_get_wait(t_pool, r, &v, 0), 0);
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    ASSERT_RC(mempool_delete(t_pool, r), 0);
    ASSERT_RC(mempool_get_wait(t_pool, r, &v, 100), -ENOENT);
    t_assert_healthy(t_pool);
}
END_TEST

START_TEST(test_get_wait_abort_and_death)
{
    for (int mode = 1; mode <= 2; mode++) {
        mempool_view v;
        mempool_dref r;
        int go;
        double t0;
        pid_t pid = start_reserver(mode, &r, &go);
        close(go);
        t0 = t_now_s();
        ASSERT_RC(mempool_get_wait(t_pool, r, &v, 10000), -ENOENT);
        ck_assert_msg(t_now_s() - t0 < 5.0, "woke after %.2f s", t_now_s() - t0);
        if (mode == 1)
            t_wait_ok(pid);
        else
            ck_assert_int_eq(t_wait(pid, T_WAIT_S), 128 + SIGKILL);
    }
    t_assert_healthy(t_pool);
}
END_TEST

START_TEST(test_get_wait_args)
{
    mempool_view v;
    mempool_dref bad = { 1, 1 }, r;
    ASSERT_RC(mempool_get_wait(t_pool, bad, &v, 0), -EINVAL);
    ASSERT_RC(mempool_put(t_pool, "x", 2, &r), 0);
    ASSERT_RC(mempool_get_wait(t_pool, r, NULL, 0), -EINVAL);
    ASSERT_RC(mempool_get_wait(NULL, r, &v, 0), -EINVAL);
}
END_TEST

/* Another thread of the same handle publishes our reservation. */
static void *publish_later(void *arg)
{
    t_sleep_ms(30);
    mempool_publish(t_pool, *(mempool_dref *)arg);
    return NULL;
}

START_TEST(test_get_wait_same_handle_thread)
{
    mempool_view v;
    mempool_dref r;
    pthread_t th;
    void *buf;
    ASSERT_RC(mempool_reserve(t_pool, 8, NULL, &buf, &r), 0);
    memcpy(buf, "thread", 7);
    ck_assert_int_eq(pthread_create(&th, NULL, publish_later, &r), 0);
    ASSERT_RC(mempool_get_wait(t_pool, r, &v, 10000), 0);
    ck_assert_str_eq((const char *)v.data, "thread");
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    pthread_join(th, NULL);
}
END_TEST

/* ---------------------------------------------------------------- names */

static int count_fn(const char *name, mempool_dref r, void *arg)
{
    (void)r;
    if (strncmp(name, "list-", 5) == 0)
        (*(int *)arg)++;
    return 0;
}

static int stop_fn(const char *name, mempool_dref r, void *arg)
{
    (void)name;
    (void)r;
    return ++*(int *)arg == 2 ? 42 : 0;
}

START_TEST(test_names_basic)
{
    mempool_dref a, b, out;
    char longname[300];
    int n = 0;

    ASSERT_RC(mempool_put(t_pool, "alpha", 6, &a), 0);
    ASSERT_RC(mempool_put(t_pool, "beta", 5, &b), 0);
    ASSERT_RC(mempool_name_get(t_pool, "n1", &out, 0), -ETIMEDOUT);
    ASSERT_RC(mempool_name_put(t_pool, "n1", a, 0), 0);
    ASSERT_RC(mempool_name_get(t_pool, "n1", &out, 0), 0);
    ck_assert(out.off == a.off && out.gen == a.gen);
    ASSERT_RC(mempool_name_put(t_pool, "n1", b, 0), -EEXIST);
    ASSERT_RC(mempool_name_put(t_pool, "n1", b, MEMPOOL_NAME_REPLACE), 0);
    ASSERT_RC(mempool_name_get(t_pool, "n1", &out, -1), 0);
    ck_assert(out.off == b.off && out.gen == b.gen);
    ASSERT_RC(mempool_name_drop(t_pool, "n1"), 0);
    ASSERT_RC(mempool_name_drop(t_pool, "n1"), -ENOENT);
    ASSERT_RC(mempool_name_get(t_pool, "n1", &out, 20), -ETIMEDOUT);

    /* Names: 1..255 bytes of anything but NUL. */
    memset(longname, 'x', sizeof(longname));
    longname[255] = '\0';
    ASSERT_RC(mempool_name_put(t_pool, longname, a, 0), 0);
    ASSERT_RC(mempool_name_get(t_pool, longname, &out, 0), 0);
    longname[255] = 'x';
    longname[256] = '\0';
    ASSERT_RC(mempool_name_put(t_pool, longname, a, 0), -EINVAL);
    ASSERT_RC(mempool_name_put(t_pool, "", a, 0), -EINVAL);
    ASSERT_RC(mempool_name_put(t_pool, NULL, a, 0), -EINVAL);
    ASSERT_RC(mempool_name_put(t_pool, "\xff\x01 weird/name", a, 0), 0);
    ASSERT_RC(mempool_name_get(t_pool, "\xff\x01 weird/name", &out, 0), 0);
    ASSERT_RC(mempool_name_put(t_pool, "n2", a, 0x80), -EINVAL);
    ASSERT_RC(mempool_name_get(t_pool, "n2", NULL, 0), -EINVAL);

    /* Listing, and a callback that stops it. */
    for (int i = 0; i < 5; i++) {
        char nm[32];
        snprintf(nm, sizeof(nm), "list-%d", i);
        ASSERT_RC(mempool_name_put(t_pool, nm, i % 2 ? a : b, 0), 0);
    }
    ASSERT_RC(mempool_name_list(t_pool, count_fn, &n), 0);
    ck_assert_int_eq(n, 5);
    n = 0;
    ASSERT_RC(mempool_name_list(t_pool, stop_fn, &n), 42);
    ASSERT_RC(mempool_name_list(t_pool, NULL, NULL), -EINVAL);

    /* A deleted object: -ENOENT to bind, and its names go with it. */
    ASSERT_RC(mempool_delete(t_pool, a), 0);
    ASSERT_RC(mempool_name_put(t_pool, "n3", a, 0), -ENOENT);
    ASSERT_RC(mempool_name_get(t_pool, "list-1", &out, 0), -ETIMEDOUT);
    n = 0;
    ASSERT_RC(mempool_name_list(t_pool, count_fn, &n), 0);
    ck_assert_int_eq(n, 3);
    ASSERT_RC(mempool_name_drop(t_pool, "list-3"), -ENOENT);
    ASSERT_RC(mempool_name_put(t_pool, "list-1", b, 0), 0);  /* rebinds */
    t_assert_healthy(t_pool);
}
END_TEST

START_TEST(test_names_refcounted)
{
    mempool_dref a = set_rc(t_pool, "rc-a"), b = set_rc(t_pool, "rc-b"), out;
    mempool_info in;

    ASSERT_RC(mempool_name_put(t_pool, "held", a, 0), 0);
    ASSERT_RC(mempool_info_get(t_pool, a, &in), 0);
    ck_assert_uint_eq(in.refs, 2);          /* ours and the name's */
    ASSERT_RC(mempool_unref(t_pool, a), 0); /* ours: the name keeps it */
    expect_str(t_pool, a, "rc-a");
    ASSERT_RC(mempool_info_get(t_pool, a, &in), 0);
    ck_assert_uint_eq(in.refs, 1);
    /* Replacing drops the name's reference: a had no other. */
    ASSERT_RC(mempool_name_put(t_pool, "held", b, MEMPOOL_NAME_REPLACE), 0);
    ASSERT_RC(mempool_info_get(t_pool, a, &in), -ENOENT);
    ASSERT_RC(mempool_unref(t_pool, b), 0);
    ASSERT_RC(mempool_name_get(t_pool, "held", &out, 0), 0);
    expect_str(t_pool, out, "rc-b");
    ASSERT_RC(mempool_name_drop(t_pool, "held"), 0);       /* the last */
    ASSERT_RC(mempool_info_get(t_pool, b, &in), -ENOENT);
    ck_assert_uint_eq(t_stats(t_pool).objects, 0);
    t_assert_healthy(t_pool);
}
END_TEST

static int name_putter(void *arg)
{
    mempool *p;
    mempool_dref r;
    int how = (int)(intptr_t)arg;
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_put_ex(p, "from-child", 11, &rco, &r), 0);
    if (how == 1)
        t_sleep_ms(50);                  /* the parent is waiting by now */
    T_CHILD_EQ(mempool_name_put(p, "child-name", r, 0), 0);
    T_CHILD_EQ(mempool_put(p, "plain", 6, &r), 0);
    T_CHILD_EQ(mempool_name_put(p, "child-plain", r, 0), 0);
    if (how == 2)
        raise(SIGKILL);              /* dies holding its own reference */
    T_CHILD_EQ(mempool_close(p), 0); /* its reference goes */
    return 0;
}

START_TEST(test_names_survive_creator)
{
    for (int how = 0; how <= 2; how++) {
        mempool_dref out;
        pid_t pid = t_fork(name_putter, (void *)(intptr_t)how);
        ASSERT_RC(mempool_name_get(t_pool, "child-name", &out, 30000), 0);
        if (how == 2)
            ck_assert_int_eq(t_wait(pid, T_WAIT_S), 128 + SIGKILL);
        else
            t_wait_ok(pid);
        mempool_reap(t_pool);
        expect_str(t_pool, out, "from-child");
        ck_assert_int_eq(t_refs(t_pool, out), 1);         /* the name's */
        ASSERT_RC(mempool_name_get(t_pool, "child-plain", &out, 0), 0);
        expect_str(t_pool, out, "plain");
        t_assert_healthy(t_pool);
        ASSERT_RC(mempool_name_drop(t_pool, "child-name"), 0);
        ASSERT_RC(mempool_delete(t_pool, out), 0);
        ASSERT_RC(mempool_name_get(t_pool, "child-plain", &out, 0),
                  -ETIMEDOUT);
        ck_assert_uint_eq(t_stats(t_pool).objects, 0);
    }
}
END_TEST

START_TEST(test_names_fill)
{
    mempool_dref r, out;
    char nm[32];
    int i, rc = 0;
    ASSERT_RC(mempool_put(t_pool, "x", 2, &r), 0);
    for (i = 0; i < 100000 && rc == 0; i++) {
        snprintf(nm, sizeof(nm), "fill-%d", i);
        rc = mempool_name_put(t_pool, nm, r, 0);
    }
    ASSERT_RC(rc, -ENOSPC);
    ck_assert_int_ge(i, 256);
    /* Every bound one is found; dropping makes room again. */
    for (int k = 0; k < i - 1; k++) {
        snprintf(nm, sizeof(nm), "fill-%d", k);
        ASSERT_RC(mempool_name_get(t_pool, nm, &out, 0), 0);
    }
    ASSERT_RC(mempool_name_drop(t_pool, "fill-7"), 0);
    ASSERT_RC(mempool_name_put(t_pool, "another", r, 0), 0);
    ASSERT_RC(mempool_name_get(t_pool, "another", &out, 0), 0);
    t_assert_healthy(t_pool);
}
END_TEST

/* --------------------------------------------------------------- flight */

static int giver(void *arg)
{
    mempool *p;
    mempool_dref r;
    int ttl = (int)(intptr_t)arg;
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_put_ex(p, "given", 6, &rco, &r), 0);
    T_CHILD_EQ(mempool_ref_give(p, r, ttl), 0);
    T_CHILD_EQ(mempool_ref_give(p, r, ttl), -EINVAL);  /* none left */
    T_CHILD_EQ(t_send_dref(rep_fd, r), 0);
    raise(SIGKILL);                  /* right after give: still alive */
    return 0;
}

START_TEST(test_flight_give_take)
{
    mempool_dref r, p1;
    mempool_info in;
    int rep[2];
    pid_t pid;

    t_pipe(rep);
    rep_fd = rep[1];
    pid = t_fork(giver, (void *)(intptr_t)-1);
    close(rep[1]);
    ASSERT_RC(t_recv_dref(rep[0], &r, T_WAIT_S), 0);
    close(rep[0]);
    ck_assert_int_eq(t_wait(pid, T_WAIT_S), 128 + SIGKILL);
    ASSERT_RC(mempool_reap(t_pool), 1);
    ASSERT_RC(mempool_info_get(t_pool, r, &in), 0);
    ck_assert_uint_eq(in.refs, 1);               /* in flight */
    t_assert_healthy(t_pool);
    ASSERT_RC(mempool_ref_take(t_pool, r), 0);
    ASSERT_RC(mempool_ref_take(t_pool, r), -ENOENT);
    expect_str(t_pool, r, "given");
    ASSERT_RC(mempool_unref(t_pool, r), 0);      /* the last */
    ASSERT_RC(mempool_info_get(t_pool, r, &in), -ENOENT);

    ASSERT_RC(mempool_put(t_pool, "plain", 6, &p1), 0);
    ASSERT_RC(mempool_ref_give(t_pool, p1, -1), -EINVAL);
    ASSERT_RC(mempool_ref_take(t_pool, p1), -ENOENT);
    r = set_rc(t_pool, "two");
    ASSERT_RC(mempool_ref(t_pool, r), 0);
    ASSERT_RC(mempool_ref_give(t_pool, r, -1), 0);
    ASSERT_RC(mempool_ref_give(t_pool, r, -1), 0);
    ASSERT_RC(mempool_ref_give(t_pool, r, -1), -EINVAL);
    ck_assert_int_eq(t_refs(t_pool, r), 2);
    ASSERT_RC(mempool_ref_take(t_pool, r), 0);
    ASSERT_RC(mempool_ref_take(t_pool, r), 0);
    ASSERT_RC(mempool_unref(t_pool, r), 0);
    ASSERT_RC(mempool_unref(t_pool, r), 0);
    ASSERT_RC(mempool_info_get(t_pool, r, &in), -ENOENT);
    ck_assert_uint_eq(t_stats(t_pool).objects, 1);
    t_assert_healthy(t_pool);
}
END_TEST

/* The giver's TTL: long enough that the first look usually comes before
 * it (that look is skipped when it did not). */
#define TTL_MS 300

START_TEST(test_flight_ttl_frees)
{
    mempool_dref r;
    mempool_info in;
    int rep[2], rc;
    double t0;
    pid_t pid;

    t_pipe(rep);
    rep_fd = rep[1];
    t0 = t_now_s();                  /* the give is later: due after t0 + TTL */
    pid = t_fork(giver, (void *)(intptr_t)TTL_MS);
    close(rep[1]);
    ASSERT_RC(t_recv_dref(rep[0], &r, T_WAIT_S), 0);
    close(rep[0]);
    ck_assert_int_eq(t_wait(pid, T_WAIT_S), 128 + SIGKILL);
    mempool_reap(t_pool);
    rc = mempool_info_get(t_pool, r, &in);
    if (t_now_s() - t0 < TTL_MS / 1000.0)
        ASSERT_RC(rc, 0);            /* not yet due */
    else                             /* a loaded machine: maybe due */
        fprintf(stderr, "test_flight_ttl_frees: slow, TTL passed before "
                "the first look\n");
    t_sleep_ms(TTL_MS + 70);
    ASSERT_RC(mempool_ref_take(t_pool, r), -ENOENT);  /* expired */
    ASSERT_RC(mempool_info_get(t_pool, r, &in), -ENOENT);
    ck_assert_uint_eq(t_stats(t_pool).objects, 0);

    /* Expired with nobody asking: the next sweep (here mempool_reap()). */
    r = set_rc(t_pool, "ttl");
    ASSERT_RC(mempool_ref_give(t_pool, r, 10), 0);
    t_sleep_ms(40);
    mempool_reap(t_pool);
    ASSERT_RC(mempool_info_get(t_pool, r, &in), -ENOENT);
    ck_assert_uint_eq(t_stats(t_pool).objects, 0);
    t_assert_healthy(t_pool);
}
END_TEST

/* ----------------------------------------------------------------- fork */

static mempool_chan *fork_chan;

static int forked_calls(void *arg)
{
    mempool_dref r = *(mempool_dref *)arg, out;
    mempool_view v;
    mempool_chan *c;
    /* A channel handle opened by the parent answers EFORKED too. */
    T_CHILD_EQ(mempool_chan_send(fork_chan, r, 0), MEMPOOL_EFORKED);
    T_CHILD_EQ(mempool_chan_recv(fork_chan, &out, 0), MEMPOOL_EFORKED);
    T_CHILD_EQ(mempool_chan_close(fork_chan), 0);   /* frees our copy */
    T_CHILD_EQ(mempool_get_wait(t_pool, r, &v, 0), MEMPOOL_EFORKED);
    T_CHILD_EQ(mempool_name_put(t_pool, "f", r, 0), MEMPOOL_EFORKED);
    T_CHILD_EQ(mempool_name_get(t_pool, "f", &out, 0), MEMPOOL_EFORKED);
    T_CHILD_EQ(mempool_name_drop(t_pool, "f"), MEMPOOL_EFORKED);
    T_CHILD_EQ(mempool_ref_give(t_pool, r, 0), MEMPOOL_EFORKED);
    T_CHILD_EQ(mempool_ref_take(t_pool, r), MEMPOOL_EFORKED);
    T_CHILD_EQ(mempool_chan_open(t_pool, "c", 4, MEMPOOL_CHAN_CREATE, &c),
               MEMPOOL_EFORKED);
    T_CHILD_EQ(mempool_chan_destroy(t_pool, "c"), MEMPOOL_EFORKED);
    return 0;
}

START_TEST(test_forked_child)
{
    mempool_dref r = set_rc(t_pool, "f"), out;
    ASSERT_RC(mempool_chan_open(t_pool, "fc", 4, MEMPOOL_CHAN_CREATE,
                                &fork_chan), 0);
    t_wait_ok(t_fork(forked_calls, &r));
    /* The parent's handle still works: nothing was sent. */
    ASSERT_RC(mempool_chan_recv(fork_chan, &out, 0), -ETIMEDOUT);
    ASSERT_RC(mempool_chan_send(fork_chan, r, 0), 0);
    ASSERT_RC(mempool_chan_recv(fork_chan, &out, 0), 0);
    ASSERT_RC(mempool_chan_close(fork_chan), 0);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "get_wait", 60, true, {
              test_get_wait_publish, test_get_wait_abort_and_death,
              test_get_wait_args, test_get_wait_same_handle_thread } },
        { "names", 120, true, {
              test_names_basic, test_names_refcounted,
              test_names_survive_creator, test_names_fill } },
        { "flight", 60, true, {
              test_flight_give_take, test_flight_ttl_frees, test_forked_child,
          } },
        { .name = NULL }
    };
    return t_main("handoff", cases);
}
