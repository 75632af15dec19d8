/* SPDX-License-Identifier: MIT */
/*
 * t_wbpool.h - the pool of a white-box handoff suite (check_handoff_spin,
 * check_handoff_yield). Those link the library's objects, not the helpers
 * library (helpers_base.h says why), so helpers.h's fixture and t_attach()
 * are not theirs; this is the one copy of what they had each:
 *
 *   P            the test's handle on a pool t-T_WB_TAG-PID of 32 MiB
 *                without a spiller, created by the checked fixture
 *                t_wb_setup() and destroyed by t_wb_teardown();
 *   t_wb_attach  another handle on it (any process), or NULL;
 *   t_wb_echo    the echo side of a ping-pong on two of its channels.
 *
 * Define T_WB_TAG (a string) before including it, once per suite.
 */
#ifndef T_WBPOOL_H
#define T_WBPOOL_H

#include <check.h>
#include <stdio.h>
#include <unistd.h>

#include <mempool/mempool.h>

static char t_wb_name[64];
static mempool *P;

static void t_wb_setup(void)
{
    mempool_options o;
    snprintf(t_wb_name, sizeof t_wb_name, "t-%s-%d", T_WB_TAG,
             (int)getpid());
    (void)mempool_destroy(t_wb_name);
    mempool_options_init(&o);
    o.arena_bytes = 32ull << 20;
    o.flags = MEMPOOL_OPEN_CREATE;
    o.spiller = 0;
    ck_assert_int_eq(mempool_open(t_wb_name, &o, &P), 0);
}

static void t_wb_teardown(void)
{
    mempool_close(P);
    mempool_destroy(t_wb_name);
}

static mempool *t_wb_attach(void)
{
    mempool_options o;
    mempool *p = NULL;
    mempool_options_init(&o);
    o.flags = 0;
    o.spiller = 0;
    return mempool_open(t_wb_name, &o, &p) == 0 ? p : NULL;
}

/* The echo side's trips: @p trips times receive on @p in, check the
 * object (an int 42), send it back on @p out; then close both and @p q.
 * 0, or 3 (receive or check failed) / 4 (send failed), its exit status. */
static int t_wb_echo(mempool *q, mempool_chan *in, mempool_chan *out,
                     int trips)
{
    for (int i = 0; i < trips; i++) {
        mempool_view v;
        mempool_dref r;
        if (mempool_chan_recv(in, &r, 60000) ||
            mempool_get(q, r, &v) || *(const int *)v.data != 42)
            return 3;
        mempool_release(q, &v);
        if (mempool_chan_send(out, r, 60000))
            return 4;
    }
    mempool_chan_close(in);
    mempool_chan_close(out);
    mempool_close(q);
    return 0;
}

#endif /* T_WBPOOL_H */
