/* SPDX-License-Identifier: MIT */
/*
 * check_bind.c - an attacher binds the geometry it checked, not what the
 * live header says a moment later (found by session 7's hostile review).
 *
 * In a pool of mode 0666 every user may write the arena, header included.
 * mempool_open() reads the header into a copy, checks the copy (layout
 * recomputed and compared), maps the arena - and used to set the handle's
 * region pointers and counts (rings, boxes, names, direct records) from
 * the LIVE header after that. A writer between the check and the bind
 * handed the attacher a ring count it never checked: every later channel
 * call then indexed past its region.
 *
 *   rebound geometry  a child attaches with attach.checked=stop; while it
 *             is stopped between the check and the bind, the parent
 *             doubles the live header's ring count; the child, let go,
 *             must hold the checked count and ring pointer, and work.
 *
 * Needs a -DMEMPOOL_FAILPOINTS=ON build (registered only there).
 */
#include "helpers.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"           /* white box: the handle's bound regions */

static uint32_t want_nring;     /* set before the fork */
static uint64_t want_ring_off;


/* The child: attach through the stop, then check what it bound. */
static int child(void *arg)
{
    mempool_chan *c;
    mempool_dref r;
    mempool *p;
    (void)arg;
    setenv("MEMPOOL_FAILPOINT", "attach.checked=stop@1", 1);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    T_CHILD_EQ(p->nring, want_nring);
    T_CHILD_EQ((uint64_t)((uint8_t *)p->ring - p->base), want_ring_off);
    T_CHILD_EQ(mempool_chan_open(p, "b", 4, MEMPOOL_CHAN_CREATE, &c), 0);
    T_CHILD_EQ(mempool_put(p, "x", 1, &r), 0);
    T_CHILD_EQ(mempool_chan_send(c, r, 0), 0);
    T_CHILD_EQ(mempool_chan_close(c), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

START_TEST(test_rebound_geometry)
{
    size_t len;
    mp_header *h = (mp_header *)(void *)t_map_arena_rw(t_name, &len);
    pid_t c;

    ck_assert(h != NULL);
    want_nring = h->nring;
    want_ring_off = h->ring_off;
    c = t_fork(child, NULL);
    t_await_stopped(c, "attach.checked");
    h->nring = want_nring * 2;   /* unchecked: past the ring's region */
    ck_assert_int_eq(kill(c, SIGCONT), 0);
    t_wait_ok(c);
    h->nring = want_nring;       /* the pool's own again, for teardown */
    munmap(h, len);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "bind", 60, true, { test_rebound_geometry } },
        { .name = NULL }
    };
    return t_main("bind", cases);
}
