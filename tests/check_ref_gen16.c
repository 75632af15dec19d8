/* SPDX-License-Identifier: MIT */
/*
 * check_ref_gen16.c - reference cells keep 16 bits of the generation
 * (src/core/pin.c). A reference cell added for an object that died
 * meanwhile stays in its adder's table until the adder sees the entry
 * dead and takes it back (mempool_ref: ref.added, then the re-check). If
 * the adder is held up that long while the entry comes round 65,536
 * generations, the stale cell has the key of the entry's new object; a
 * reference another thread of the same worker then takes on that object
 * bumps the stale cell instead of adding one - and, before the fix, did
 * not mark the worker a holder of that generation (holders word, pin.c),
 * so a refcount check read no table of that worker and freed the object
 * under the thread that holds it. And once the adder takes its stale
 * cell back, the count it leaves is that thread's alone: nobody checked
 * the object again, and it outlived its last reference.
 *
 *   wrapped  thread A of a child: mempool_ref(x) stopped between its
 *            holders mark and its cell (holders.marked) while x is freed,
 *            then parked at ref.added with its stale cell (only A waits:
 *            the failpoint's park action) while the parent cycles x's
 *            entry to the generation 65,536 on and puts y there; thread B
 *            of the same child refs y; the parent drops its own reference
 *            of y: y must live (B holds it); B unrefs, A is let go and
 *            ends: y must be gone.
 *
 * Needs a -DMEMPOOL_FAILPOINTS=ON build. A stays parked until the parent
 * lets it go, so no step depends on how fast the others run.
 */
#include "helpers.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>

static const mempool_put_options rco = { 0, 0, MEMPOOL_PUT_REFCOUNTED };

#define MAXCYCLE (1u << 22)          /* puts to come round 65,536 gens */

static mempool_dref x;               /* set before the fork */
static int cmd_fd = -1, rep_fd = -1;
static int park_fd = -1;             /* A's end of the park socket */
static mempool *wp;                  /* the child's handle, both threads */

/* Thread B: ref y (sent by the parent), say how; unref it when told. */
static void *thread_b(void *arg)
{
    mempool_dref y;
    uint64_t go;
    (void)arg;
    T_CHILD_EQ(t_recv_dref(cmd_fd, &y, T_WAIT_S), 0);
    T_CHILD_EQ(t_send_u64(rep_fd, (uint64_t)(int64_t)mempool_ref(wp, y)), 0);
    T_CHILD_EQ(t_recv_u64(cmd_fd, &go, T_WAIT_S), 0);
    T_CHILD_EQ(t_send_u64(rep_fd, (uint64_t)(int64_t)mempool_unref(wp, y)),
               0);
    return NULL;
}

/* The child: thread A refs x with the failpoints armed. */
static int child(void *arg)
{
    pthread_t b;
    char fp[80];
    (void)arg;
    snprintf(fp, sizeof fp, "holders.marked=stop@1,ref.added=park:%d@1",
             park_fd);
    setenv("MEMPOOL_FAILPOINT", fp, 1);
    T_CHILD_EQ(t_attach(t_name, &wp), 0);
    T_CHILD_EQ(pthread_create(&b, NULL, thread_b, NULL), 0);
    T_CHILD_EQ(mempool_ref(wp, x), -ENOENT);     /* x died meanwhile */
    T_CHILD_EQ(pthread_join(b, NULL), 0);
    T_CHILD_EQ(mempool_close(wp), 0);
    return 0;
}

/* Put and drop refcounted objects until one lands in x's entry with a
 * generation of the same low 16 bits (not x's own): that one, held. */
static mempool_dref come_round(void)
{
    for (uint32_t i = 0; i < MAXCYCLE; i++) {
        mempool_dref r;
        ASSERT_RC(mempool_put_ex(t_pool, "y", 2, &rco, &r), 0);
        if (((r.off ^ x.off) & MEMPOOL_DREF_ENTRY_BITS) == 0 && r.gen != x.gen &&
            ((r.gen ^ x.gen) & 0xffff) == 0)
            return r;
        ASSERT_RC(mempool_unref(t_pool, r), 0);
    }
    ck_abort_msg("x's entry did not come round in %u puts", MAXCYCLE);
    return x;
}

START_TEST(test_wrapped)
{
    uint64_t objects0 = t_stats(t_pool).objects, v;
    mempool_view view;
    mempool_dref y;
    int cmd[2], rep[2], sv[2], rc;
    char byte;
    pid_t c;

    ASSERT_RC(mempool_put_ex(t_pool, "x", 2, &rco, &x), 0);
    t_pipe(cmd);
    t_pipe(rep);
    cmd_fd = cmd[0];
    rep_fd = rep[1];
    ASSERT_RC(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    park_fd = sv[1];
    c = t_fork(child, NULL);
    close(cmd[0]);
    close(rep[1]);
    close(sv[1]);
    t_await_stopped(c, "holders.marked");    /* marked, no cell yet */
    ASSERT_RC(mempool_unref(t_pool, x), 0);  /* the last: x is freed */
    ck_assert_int_eq(mempool_ref(t_pool, x), -ENOENT);
    ASSERT_RC(kill(c, SIGCONT), 0);          /* A's stale cell, then parked */
    ASSERT_RC(t_recv(sv[0], &byte, 1, T_WAIT_S), 0);
    y = come_round();
    ASSERT_RC(t_send_dref(cmd[1], y), 0);
    ASSERT_RC(t_recv_u64(rep[0], &v, T_WAIT_S), 0);
    ck_assert_int_eq((int64_t)v, 0);         /* B holds y */
    ASSERT_RC(mempool_unref(t_pool, y), 0);  /* ours, not the last */
    rc = mempool_get(t_pool, y, &view);
    ck_assert_msg(rc == 0, "y was freed under the reference of thread B "
                  "(a bump of a stale cell, its worker not a holder): %d",
                  rc);
    ASSERT_RC(mempool_release(t_pool, &view), 0);
    ASSERT_RC(t_send_u64(cmd[1], 1), 0);
    ASSERT_RC(t_recv_u64(rep[0], &v, T_WAIT_S), 0);
    ck_assert_int_eq((int64_t)v, 0);         /* B's unref */
    ASSERT_RC(t_send(sv[0], "g", 1), 0);     /* A: let go */
    t_wait_ok(c);                            /* A took its cell back */
    close(cmd[1]);
    close(rep[0]);
    close(sv[0]);
    ck_assert_msg(mempool_get(t_pool, y, &view) == -ENOENT, "y outlived "
                  "its last reference");
    ck_assert_uint_eq(t_stats(t_pool).objects, objects0);
    t_assert_healthy(t_pool);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "gen16", 120, true, { test_wrapped } },
        { .name = NULL }
    };
    return t_main("ref_gen16", cases);
}
