/* SPDX-License-Identifier: MIT */
/*
 * check_fork.c - a handle must not be used in a fork()ed child.
 *
 * Issue semantic 10: every call on the parent's handle in a child returns
 * MEMPOOL_EFORKED and changes nothing; mempool_close() there only frees the
 * child's memory; the child opens its own handle and works normally. Also
 * docs/scenarios.md S19/S20: a child that inherited a handle does not keep
 * its parent's worker alive after the parent dies, and a child's exit does not
 * make the parent look dead.
 */
#include "helpers.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

static mempool_dref g_obj, g_rsv, g_rc;
static mempool_view g_view;
static int g_fd = -1;

#define EF MEMPOOL_EFORKED

/* Child: every call on the inherited handle is refused. */
static int child_inherited_refused(void *arg)
{
    mempool *p = t_pool;
    mempool_put_options o = { 0, 0, MEMPOOL_PUT_REFCOUNTED };
    mempool_dref r = { 0, 0 };
    mempool_view v = g_view, w;
    mempool_info in;
    struct mempool_stats s;
    void *buf = NULL;
    bool close_it = arg != NULL;

    T_CHILD_EQ(mempool_put(p, "x", 1, &r), EF);
    T_CHILD_EQ(mempool_put_ex(p, "x", 1, &o, &r), EF);
    T_CHILD_EQ(mempool_get(p, g_obj, &w), EF);
    T_CHILD_EQ(mempool_release(p, &v), EF);
    T_CHILD_EQ(mempool_delete(p, g_obj), EF);
    T_CHILD_EQ(mempool_ref(p, g_rc), EF);
    T_CHILD_EQ(mempool_unref(p, g_rc), EF);
    T_CHILD_EQ(mempool_info_get(p, g_obj, &in), EF);
    T_CHILD_EQ(mempool_reserve(p, 10, NULL, &buf, &r), EF);
    T_CHILD_EQ(mempool_publish(p, g_rsv), EF);
    T_CHILD_EQ(mempool_abort(p, g_rsv), EF);
    T_CHILD_EQ(mempool_reap(p), EF);
    T_CHILD_EQ(mempool_worker_id(p), EF);
    T_CHILD_EQ(mempool_check(p, NULL, 0), EF);
    T_CHILD_EQ(mempool_trim(p), EF);
    T_CHILD_EQ(mempool_stats_get(p, &s), EF);
    /* the parent's bytes are still mapped and readable in the child */
    T_CHILD_ASSERT(t_check_fill(g_view.data, g_view.len, 21));
    if (close_it)
        T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

/* Child: opens its own handle and shares objects with the parent. */
static int child_opens_own(void *arg)
{
    mempool *q = NULL;
    mempool_view v;
    mempool_dref r;
    int parent_id = *(int *)arg;

    T_CHILD_EQ(t_attach(t_name, &q), 0);
    T_CHILD_ASSERT(mempool_worker_id(q) >= 1);
    T_CHILD_ASSERT(mempool_worker_id(q) != parent_id);
    T_CHILD_EQ(mempool_get(q, g_obj, &v), 0);
    T_CHILD_ASSERT(t_check_fill(v.data, v.len, 21));
    T_CHILD_ASSERT(t_in_pool_mapping(t_name, v.data, v.len));
    T_CHILD_EQ(mempool_release(q, &v), 0);
    T_CHILD_EQ(mempool_put(q, "from the child", 14, &r), 0);
    T_CHILD_EQ(t_send_dref(g_fd, r), 0);
    /* the inherited handle is still refused next to the new one */
    T_CHILD_EQ(mempool_worker_id(t_pool), EF);
    T_CHILD_EQ(mempool_close(q), 0);
    return 0;
}

static void make_parent_state(void)
{
    char buf[3333];
    void *rb;
    mempool_put_options o = { 0, 0, MEMPOOL_PUT_REFCOUNTED };

    t_fill(buf, sizeof buf, 21);
    ASSERT_RC(mempool_put(t_pool, buf, sizeof buf, &g_obj), 0);
    ASSERT_RC(mempool_get(t_pool, g_obj, &g_view), 0);
    ASSERT_RC(mempool_reserve(t_pool, 1000, NULL, &rb, &g_rsv), 0);
    memset(rb, 0x77, 1000);
    ASSERT_RC(mempool_put_ex(t_pool, "rc", 2, &o, &g_rc), 0);
}

/* After children played with the parent's handle, the parent's state is
 * exactly as it was and its handle works. */
static void assert_parent_state(const struct mempool_stats *s0, int id)
{
    struct mempool_stats s = t_stats(t_pool);
    mempool_view v;

    ck_assert_int_eq(mempool_worker_id(t_pool), id);
    ck_assert_uint_eq(s.workers, 1);
    ck_assert_uint_eq(s.objects, s0->objects);
    ck_assert_uint_eq(s.used_bytes, s0->used_bytes);
    ASSERT_RC(mempool_reap(t_pool), 0);
    ck_assert_int_eq(t_pins(t_pool, g_obj), 1);
    ck_assert_int_eq(t_refs(t_pool, g_rc), 1);
    ck_assert(t_check_fill(g_view.data, g_view.len, 21));
    ASSERT_RC(mempool_get(t_pool, g_rsv, &v), -ENOENT);
    t_assert_healthy(t_pool);
}

static void finish_parent_state(void)
{
    mempool_view v;

    ASSERT_RC(mempool_publish(t_pool, g_rsv), 0);
    ASSERT_RC(mempool_get(t_pool, g_rsv, &v), 0);
    ck_assert_uint_eq(v.len, 1000);
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    ASSERT_RC(mempool_release(t_pool, &g_view), 0);
    ASSERT_RC(mempool_unref(t_pool, g_rc), 0);
    ck_assert_int_eq(t_pins(t_pool, g_obj), 0);
    t_assert_healthy(t_pool);
}

START_TEST(test_forked_handle_refused)
{
    struct mempool_stats s0;
    int id = mempool_worker_id(t_pool);

    make_parent_state();
    s0 = t_stats(t_pool);
    t_wait_ok(t_fork(child_inherited_refused, NULL));
    assert_parent_state(&s0, id);
    finish_parent_state();
}
END_TEST

START_TEST(test_forked_close_frees_only_child)
{
    struct mempool_stats s0;
    int id = mempool_worker_id(t_pool);

    make_parent_state();
    s0 = t_stats(t_pool);
    t_wait_ok(t_fork(child_inherited_refused, (void *)1));
    assert_parent_state(&s0, id);
    finish_parent_state();
}
END_TEST

START_TEST(test_forked_child_opens_own)
{
    struct mempool_stats s0;
    int id = mempool_worker_id(t_pool), fds[2];
    mempool_dref r;
    mempool_view v;

    make_parent_state();
    s0 = t_stats(t_pool);
    t_pipe(fds);
    g_fd = fds[1];
    {
        pid_t pid = t_fork(child_opens_own, &id);

        close(fds[1]);
        ck_assert_int_eq(t_recv_dref(fds[0], &r, T_WAIT_S), 0);
        t_wait_ok(pid);
    }
    close(fds[0]);
    ASSERT_RC(mempool_get(t_pool, r, &v), 0);
    ck_assert_mem_eq(v.data, "from the child", 14);
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    ASSERT_RC(mempool_delete(t_pool, r), 0);
    assert_parent_state(&s0, id);
    finish_parent_state();
}
END_TEST

static int child_idle(void *arg)
{
    uint64_t x;

    (void)arg;
    (void)t_recv_u64(g_fd, &x, T_WAIT_S);
    return 0;
}

/* A child that inherited the handle and dies (killed or exiting) does not
 * make the live parent look dead. */
START_TEST(test_child_death_keeps_parent_alive)
{
    struct mempool_stats s0;
    int id = mempool_worker_id(t_pool), fds[2], k;

    make_parent_state();
    s0 = t_stats(t_pool);
    t_pipe(fds);
    g_fd = fds[0];
    for (k = 0; k < 3; k++) {
        pid_t pid = t_fork(child_idle, NULL);

        if (k == 0) {
            ck_assert_int_eq(t_kill(pid), SIGKILL);
        } else if (k == 1) {
            ck_assert_int_eq(t_send_u64(fds[1], 1), 0);
            t_wait_ok(pid);
        } else {
            t_wait_ok(t_fork(child_inherited_refused, (void *)1));
            ck_assert_int_eq(t_kill(pid), SIGKILL);
        }
        assert_parent_state(&s0, id);
    }
    close(fds[0]);
    close(fds[1]);
    finish_parent_state();
}
END_TEST

/* S19: M attaches, pins, forks a long-lived grandchild G (which inherits
 * M's handle and descriptors) and is SIGKILLed. M must read as dead. */
static int g_up = -1;

static int middle(void *arg)
{
    mempool *q = NULL;
    mempool_view v;
    pid_t g;
    uint64_t x;

    (void)arg;
    T_CHILD_EQ(t_attach(t_name, &q), 0);
    T_CHILD_EQ(mempool_get(q, g_obj, &v), 0);
    T_CHILD_EQ(mempool_get(q, g_obj, &v), 0);
    g = fork();
    T_CHILD_ASSERT(g >= 0);
    if (g == 0) {
        /* Report from G itself: its fork handlers have run by now. Between
         * fork() and those handlers G still shares M's lock description,
         * so a kill of M inside that window is only noticed once G runs. */
        T_CHILD_EQ(t_send_u64(g_up, (uint64_t)getpid()), 0);
        (void)t_recv_u64(g_fd, &x, 600.0); /* idle until killed */
        _exit(0);
    }
    (void)t_recv_u64(g_fd, &x, 600.0); /* idle until killed */
    _exit(0);
}

START_TEST(test_dead_parent_not_kept_alive_by_child)
{
    int up[2], idle[2];
    uint64_t g;
    pid_t m;
    char buf[100];

    t_fill(buf, sizeof buf, 21);
    ASSERT_RC(mempool_put(t_pool, buf, sizeof buf, &g_obj), 0);
    t_pipe(up);
    t_pipe(idle);
    g_up = up[1];
    g_fd = idle[0];
    m = t_fork(middle, NULL);
    ck_assert_int_eq(t_recv_u64(up[0], &g, T_WAIT_S), 0);
    ck_assert_uint_eq(t_stats(t_pool).workers, 2);
    ck_assert_int_eq(t_pins(t_pool, g_obj), 2);
    ck_assert_int_eq(t_kill(m), SIGKILL);
    /* the grandchild still holds everything M's process had open */
    ck_assert_int_eq(kill((pid_t)g, 0), 0);
    ASSERT_RC(mempool_reap(t_pool), 1);
    ck_assert_int_eq(t_pins(t_pool, g_obj), 0);
    ck_assert_uint_eq(t_stats(t_pool).workers, 1);
    t_assert_healthy(t_pool);
    kill((pid_t)g, SIGKILL);
    close(up[0]);
    close(up[1]);
    close(idle[0]);
    close(idle[1]);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "fork", 60, true, {
              test_forked_handle_refused, test_forked_close_frees_only_child,
              test_forked_child_opens_own, test_child_death_keeps_parent_alive,
              test_dead_parent_not_kept_alive_by_child } },
        { .name = NULL }
    };
    return t_main("fork", cases);
}
