/* SPDX-License-Identifier: MIT */
/*
 * t_writer.h - the dead writer of the get_wait tests (check_wait_dead,
 * check_review10): a process that reserves objects (never publishing
 * them), hands their DRefs to the test over a pipe and waits to be
 * killed. Include after helpers.h.
 */
#ifndef T_WRITER_H
#define T_WRITER_H

#include <unistd.h>

static int t_writer_n;          /* reservations the writer makes */
static int t_writer_fd[2];      /* its DRefs come back through here */

static int t_writer(void *arg)
{
    mempool *q;
    (void)arg;
    if (t_attach(t_name, &q) < 0)
        return 10;
    for (int i = 0; i < t_writer_n; i++) {
        void *buf;
        mempool_dref r;
        if (mempool_reserve(q, 64, NULL, &buf, &r) < 0 ||
            t_send_dref(t_writer_fd[1], r) < 0)
            return 11;
    }
    for (int i = 0; i < 120; i++)
        sleep(1);                      /* killed meanwhile */
    return 12;
}

/* Start a writer of @p n reservations, their DRefs in @p refs. */
static pid_t t_writer_start(mempool_dref *refs, int n)
{
    pid_t w;
    t_writer_n = n;
    t_pipe(t_writer_fd);
    w = t_fork(t_writer, NULL);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(t_recv_dref(t_writer_fd[0], &refs[i], T_WAIT_S), 0);
    return w;
}

#endif /* T_WRITER_H */
