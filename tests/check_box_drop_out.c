/* SPDX-License-Identifier: MIT */
/*
 * check_box_drop_out.c - a box dropped out of its record while its writer
 * commits it (src/core/box.c, mempool__box_drop_out). A broadcast send
 * that overwrites a slot drops the box it replaced; that box's own sender
 * may not have reached box_commit yet (its item is in the ring, the box
 * still PREP). If the writer's PREP -> HELD lands between the dropper's
 * load of the box word and its CAS, the CAS fails: one try (the code
 * before session 6's fix) left the box HELD in no record, its object held
 * for good ("box held by no record"), which only TSan stress runs caught,
 * about one run in 50. Here both hands are held exactly there:
 *
 *   writer   a child publishing x into a 1-slot broadcast channel,
 *            stopped (SIGSTOP) at send.committed: x's box in the ring,
 *            still PREP;
 *   dropper  a child publishing y into the same slot, parked at
 *            box.dropping_out (park: the failpoint waits on a socket):
 *            the slot now holds y, x's box word read while PREP;
 *   then     the writer continues (its commit makes the box HELD); then
 *            the dropper continues with its stale PREP word.
 *
 * x's box must be dropped, x freed (nobody else holds it): the pool's
 * object count is back to y's alone and mempool_check() finds nothing.
 * Both children stay attached until the parent has looked: a reap of
 * either (closed or dead) sweeps orphans, which would free such a box
 * and hide the leak.
 *
 * The same race through a name rebind (names.c): the writer binds name
 * "n" to x and is stopped at name.unlocked (the record names x's box,
 * still PREP, the lock released); the dropper rebinds "n" to y
 * (MEMPOOL_NAME_REPLACE) and parks in the drop of x's box. Each drops
 * its own reference after its put, so x's box alone holds x.
 *
 * Needs a -DMEMPOOL_FAILPOINTS=ON build.
 */
#include "helpers.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static const mempool_put_options rco = { 0, 0, MEMPOOL_PUT_REFCOUNTED };
static int park_fd = -1;            /* the dropper's end of the socket */
static int done_fd = -1;            /* a byte: our send returned */
static int go_fd = -1;              /* readable once the parent looked */

/* Publish one refcounted object of our own under failpoint spec @p fp:
 * into broadcast channel "b" (its only reference moves to the ring), or
 * with @p by_name bound to name "n" (then our reference dropped: the
 * binding's box holds it alone); say so, and stay attached until the
 * parent says go. */
static int publish(const char *fp, bool by_name)
{
    mempool *p;
    mempool_chan *c = NULL;
    mempool_dref r;
    setenv("MEMPOOL_FAILPOINT", fp, 1);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(mempool_put_ex(p, "o", 1, &rco, &r), 0);
    if (by_name) {
        T_CHILD_EQ(mempool_name_put(p, "n", r, MEMPOOL_NAME_REPLACE), 0);
        T_CHILD_EQ(mempool_unref(p, r), 0);
    } else {
        T_CHILD_EQ(mempool_chan_open(p, "b", 0, MEMPOOL_CHAN_BROADCAST, &c),
                   0);
        T_CHILD_EQ(mempool_chan_send(c, r, -1), 0);
    }
    T_CHILD_EQ(t_send(done_fd, "s", 1), 0);
    T_CHILD_EQ(t_wait_fd(go_fd, T_WAIT_S), 0);
    if (c)
        T_CHILD_EQ(mempool_chan_close(c), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

/* The writer stops where its box is in the record, still PREP. */
static int writer(void *arg)
{
    bool by_name = arg != NULL;
    return publish(by_name ? "name.unlocked=stop@1" : "send.committed=stop@1",
                   by_name);
}

static int dropper(void *arg)
{
    char fp[64];
    snprintf(fp, sizeof fp, "box.dropping_out=park:%d@1", park_fd);
    return publish(fp, arg != NULL);
}

/* Both hands held between the dropper's load and CAS (top of the file),
 * through a channel slot or (@p by_name) a name record; the objects the
 * two children's publishing left in the pool (want: y's alone), the
 * pool's mempool_check() in *@p rc (@p why its reason). */
static uint64_t race(bool by_name, int *rc, char *why, size_t whylen)
{
    uint64_t objects0 = t_stats(t_pool).objects, objects;
    void *how = by_name ? (void *)"n" : NULL;
    const char *stop = by_name ? "name.unlocked" : "send.committed";
    char byte;
    int sv[2], done[2], go[2];
    pid_t w, d;

    t_pipe(done);
    t_pipe(go);
    done_fd = done[1];
    go_fd = go[0];
    w = t_fork(writer, how);
    t_await_stopped(w, stop);               /* x's box in its record, PREP */
    ck_assert_uint_eq(t_stats(t_pool).objects, objects0 + 1);
    ASSERT_RC(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    park_fd = sv[1];
    d = t_fork(dropper, how);
    close(sv[1]);
    /* Parked: the record holds y, the dropper read x's box word (PREP). */
    ASSERT_RC(t_recv(sv[0], &byte, 1, T_WAIT_S), 0);
    ASSERT_RC(kill(w, SIGCONT), 0);         /* PREP -> HELD */
    ASSERT_RC(t_recv(done[0], &byte, 1, T_WAIT_S), 0);   /* its publish */
    ASSERT_RC(t_send(sv[0], "go", 1), 0);   /* its CAS with the PREP word */
    ASSERT_RC(t_recv(done[0], &byte, 1, T_WAIT_S), 0);   /* dropped */
    *rc = mempool_check(t_pool, why, whylen);
    objects = t_stats(t_pool).objects - objects0;
    ASSERT_RC(t_send(go[1], "g", 1), 0);    /* both: close, detach */
    t_wait_ok(w);
    t_wait_ok(d);
    for (int i = 0; i < 2; i++) {
        close(go[i]);
        close(done[i]);
    }
    close(sv[0]);
    return objects;
}

START_TEST(test_writer_commits_under_drop)
{
    uint64_t objects0 = t_stats(t_pool).objects, objects;
    mempool_chan *c;
    char why[256];
    int rc;

    ASSERT_RC(mempool_chan_open(t_pool, "b", 1, MEMPOOL_CHAN_CREATE |
                                MEMPOOL_CHAN_BROADCAST, &c), 0);
    objects = race(false, &rc, why, sizeof why);
    ck_assert_msg(rc == 0, "after the drop: %d (%s)", rc, why);
    ck_assert_msg(objects == 1, "%llu objects, want y's alone: x's box was "
                  "left in no record", (unsigned long long)objects);
    ASSERT_RC(mempool_chan_close(c), 0);
    ASSERT_RC(mempool_chan_destroy(t_pool, "b"), 0);
    ck_assert_uint_eq(t_stats(t_pool).objects, objects0);
    t_assert_healthy(t_pool);
}
END_TEST

START_TEST(test_name_writer_commits_under_rebind)
{
    uint64_t objects0 = t_stats(t_pool).objects, objects;
    char why[256];
    int rc;

    objects = race(true, &rc, why, sizeof why);
    ck_assert_msg(rc == 0, "after the rebind: %d (%s)", rc, why);
    ck_assert_msg(objects == 1, "%llu objects, want y's alone: x's box was "
                  "left in no record", (unsigned long long)objects);
    ASSERT_RC(mempool_name_drop(t_pool, "n"), 0);
    ck_assert_uint_eq(t_stats(t_pool).objects, objects0);
    t_assert_healthy(t_pool);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "drop_out", 120, true, { test_writer_commits_under_drop,
                                   test_name_writer_commits_under_rebind } },
        { .name = NULL }
    };
    return t_main("box_drop_out", cases);
}
