/* SPDX-License-Identifier: MIT */
/*
 * bench_handoff.c - mempool-bench --section handoff: handing objects from
 * one process to another, each figure beside a baseline of the same run.
 *
 *   ping-pong   64 B object, two processes, receivers asleep: one round
 *               trip = A sends the DRef, B receives, gets and releases it,
 *               sends it back, A receives, gets and releases it. Channel
 *               (the reference travels both ways) against a pipe carrying
 *               the 16-byte DRef (same gets and releases: only the
 *               transport differs) and a pipe carrying the 64 B payload
 *               itself (no pool at all).
 *   stream 1→1  a producer puts 64 B objects and sends them; a consumer
 *               receives, gets, releases and deletes them. Objects/s
 *               against the same with the DRefs going through a pipe; and
 *               the channel with refcounted objects (the reference travels,
 *               the consumer's unref frees).
 *   stream 4×4  the channel stream with 4 producers and 4 consumers on one
 *               channel (the machine's cores are shared by all 8).
 *   CPU/object  the streams' CPU time (user + system, all their processes,
 *               each from "go" to its end: getrusage) per object: the wall
 *               rate of 1→1 is 1 or 4 M/s by whether the two processes
 *               share a CPU; the CPU time says what an object costs.
 *   get_wait    publish → wake-up of a process asleep in mempool_get_wait()
 *               against publish, then a write → wake-up of a process asleep
 *               in read() on a pipe, which then gets the object: the same
 *               work but the wake-up (both release the object, then stamp:
 *               CLOCK_MONOTONIC stamps in shared memory).
 *   name_get    of a bound name, in a loop, against mempool_get+release of
 *               the object it names.
 *
 * Medians: ping-pong and streams over batches (1000 round trips / the run
 * split in 10), wake-ups over single trials. The pool is bench-handoff-PID,
 * destroyed at the end.
 */
#include "bench.h"
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 5          /* interleaved rounds (1 with --quick) */

static char pool[64];
static const mempool_put_options rco = { .flags = MEMPOOL_PUT_REFCOUNTED };

static uint64_t now_ns(void)
{
    return cli_now_ns();
}

static mempool *attach(void)
{
    mempool_options o;
    mempool *p = NULL;
    mempool_options_init(&o);
    o.flags = 0;
    o.spiller = 0;
    if (mempool_open(pool, &o, &p) < 0)
        _exit(3);
    return p;
}

static mempool_chan *chan(mempool *p, const char *name)
{
    mempool_chan *c = NULL;
    if (mempool_chan_open(p, name, 1024, MEMPOOL_CHAN_CREATE, &c) < 0)
        _exit(4);
    return c;
}

static void touch(mempool *p, mempool_dref r)
{
    mempool_view v;
    if (mempool_get(p, r, &v) < 0)
        _exit(5);
    (void)*(volatile const char *)v.data;
    mempool_release(p, &v);
}

static void rd(int fd, void *b, size_t n)
{
    if (cli_read_all(fd, b, n) < 0)
        _exit(6);
}

static void wr(int fd, const void *b, size_t n)
{
    if (cli_write_all(fd, b, n) < 0)
        _exit(7);
}

static int wait_kids(pid_t *k, int n)
{
    int bad = 0;
    for (int i = 0; i < n; i++) {
        int st;
        if (waitpid(k[i], &st, 0) != k[i] || !WIFEXITED(st) ||
            WEXITSTATUS(st) != 0)
            bad++;
    }
    return bad ? -ECHILD : 0;
}

/* ---- ping-pong ------------------------------------------------------------ */

enum { PP_CHAN, PP_PIPE_DREF, PP_PIPE_64 };

/* B's side: echo n items back. */
static void pp_echo(int kind, long n, int in, int out)
{
    mempool *p = kind == PP_PIPE_64 ? NULL : attach();
    mempool_chan *ping = p && kind == PP_CHAN ? chan(p, "ping") : NULL;
    mempool_chan *pong = p && kind == PP_CHAN ? chan(p, "pong") : NULL;
    char buf[64];
    mempool_dref r;
    wr(out, "R", 1);
    for (long i = 0; i < n; i++) {
        if (kind == PP_CHAN) {
            if (mempool_chan_recv(ping, &r, -1) < 0)
                _exit(8);
            touch(p, r);
            if (mempool_chan_send(pong, r, -1) < 0)
                _exit(9);
        } else if (kind == PP_PIPE_DREF) {
            rd(in, &r, sizeof r);
            touch(p, r);
            wr(out, &r, sizeof r);
        } else {
            rd(in, buf, sizeof buf);
            wr(out, buf, sizeof buf);
        }
    }
    _exit(0);
}

/* Median ns per round trip over batches of 1000. */
static int pingpong(mempool *p, int kind, long n, double *med)
{
    int a2b[2], b2a[2];
    long nb = n / 1000;
    double *v = calloc((size_t)nb, sizeof(double));
    mempool_chan *ping = NULL, *pong = NULL;
    mempool_dref r;
    char buf[64] = { 1 }, c;
    pid_t k;
    int rc;

    if (!v)
        return -ENOMEM;
    if (pipe(a2b) || pipe(b2a)) {
        rc = -errno;
        free(v);
        return rc;
    }
    if ((k = fork()) == 0) {
        close(a2b[1]);
        close(b2a[0]);
        pp_echo(kind, n, a2b[0], b2a[1]);
    }
    close(a2b[0]);
    close(b2a[1]);
    rd(b2a[0], &c, 1);
    if (kind == PP_CHAN) {
        ping = chan(p, "ping");
        pong = chan(p, "pong");
    }
    if (kind != PP_PIPE_64 &&
        mempool_put_ex(p, buf, sizeof buf, kind == PP_CHAN ? &rco : NULL,
                       &r) < 0) {
        free(v);
        return -ENOMEM;
    }
    for (long b = 0; b < nb; b++) {
        uint64_t t0 = now_ns();
        for (int i = 0; i < 1000; i++) {
            if (kind == PP_CHAN) {
                if (mempool_chan_send(ping, r, -1) < 0 ||
                    mempool_chan_recv(pong, &r, -1) < 0) {
                    free(v);
                    return -EIO;
                }
                touch(p, r);
            } else if (kind == PP_PIPE_DREF) {
                wr(a2b[1], &r, sizeof r);
                rd(b2a[0], &r, sizeof r);
                touch(p, r);
            } else {
                wr(a2b[1], buf, sizeof buf);
                rd(b2a[0], buf, sizeof buf);
            }
        }
        v[b] = (double)(now_ns() - t0) / 1000.0;
    }
    close(a2b[1]);
    close(b2a[0]);
    rc = wait_kids(&k, 1);
    if (kind == PP_CHAN) {
        mempool_unref(p, r);
        mempool_chan_close(ping);
        mempool_chan_close(pong);
    } else if (kind == PP_PIPE_DREF) {
        mempool_delete(p, r);
    }
    *med = bench_median(v, (int)nb);
    free(v);
    return rc;
}

/* ---- streams -------------------------------------------------------------- */

/* Wait for "go": the parent closes the pipe's write end (which the child
 * closed its own copy of), so every child sees end of file at once. */
static void await_go(int go_r, int go_w)
{
    char g;
    close(go_w);
    (void)!read(go_r, &g, 1);
}

/* Stream kinds: the channel with plain objects (deleted by the consumer),
 * a pipe of DRefs with the same, the channel with refcounted objects (the
 * reference travels; the consumer's unref frees). */
enum { ST_CHAN = 0, ST_PIPE = 1, ST_CHAN_RC = 2 };

/* CPU time (user + system) of this process so far, ns. */
static double self_cpu_ns(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru))
        return 0;
    return ((double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec) * 1e9 +
           ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) * 1e3;
}

/* Each stream process's CPU time from "go" to its end, ns (shared with
 * the parent; attach and channel open are not in it). */
static double *st_cpu;

static void st_done(int me, double c0)
{
    if (st_cpu)
        st_cpu[me] = self_cpu_ns() - c0;
    _exit(0);
}

/* Producer number @p me: n objects of 64 B. */
static void producer(int me, int kind, long n, int go, int go_w, int out)
{
    mempool *p = attach();
    mempool_chan *c = kind != ST_PIPE ? chan(p, "stream") : NULL;
    char buf[64] = { 2 };
    double c0;
    await_go(go, go_w);
    c0 = self_cpu_ns();
    for (long i = 0; i < n; i++) {
        mempool_dref r;
        if (mempool_put_ex(p, buf, sizeof buf,
                           kind == ST_CHAN_RC ? &rco : NULL, &r))
            _exit(10);
        if (kind != ST_PIPE ? mempool_chan_send(c, r, -1) < 0
                            : cli_write_all(out, &r, sizeof r) < 0)
            _exit(11);
    }
    st_done(me, c0);
}

static void consumer(int me, int kind, long n, int go, int go_w, int in)
{
    mempool *p = attach();
    mempool_chan *c = kind != ST_PIPE ? chan(p, "stream") : NULL;
    double c0;
    await_go(go, go_w);
    c0 = self_cpu_ns();
    for (long i = 0; i < n; i++) {
        mempool_dref r;
        if (kind != ST_PIPE ? mempool_chan_recv(c, &r, -1) < 0
                            : cli_read_all(in, &r, sizeof r) < 0)
            _exit(12);
        touch(p, r);
        if (kind == ST_CHAN_RC ? mempool_unref(p, r) : mempool_delete(p, r))
            _exit(13);
    }
    st_done(me, c0);
}

/* np producers and as many consumers; objects/s of the whole run, and
 * the CPU time all of them spent per object in *@p cpu (ns): the wall
 * rate of two processes depends on whether they share a CPU, this does
 * much less. */
static int stream(int kind, int np, long n, double *rate, double *cpu)
{
    int go[2], data[2];
    pid_t k[16];
    uint64_t t0;
    double sum = 0;
    long done;
    int rc;

    if (!st_cpu) {
        st_cpu = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (st_cpu == MAP_FAILED) {
            st_cpu = NULL;
            return -ENOMEM;
        }
    }
    if (pipe(go) || pipe(data))
        return -errno;
    for (int i = 0; i < np; i++) {
        if ((k[i] = fork()) == 0)
            producer(i, kind, n / np, go[0], go[1], data[1]);
        if ((k[np + i] = fork()) == 0)
            consumer(np + i, kind, n / np, go[0], go[1], data[0]);
    }
    close(data[0]);
    close(data[1]);
    usleep(200000);                  /* attached and waiting on "go" */
    t0 = now_ns();
    close(go[1]);                    /* everyone reads end of file: go */
    rc = wait_kids(k, 2 * np);
    done = n / np * np;              /* whole rounds of every process */
    *rate = (double)done * 1e9 / (double)(now_ns() - t0);
    for (int i = 0; i < 2 * np; i++)
        sum += st_cpu[i];
    *cpu = sum / (double)done;
    close(go[0]);
    return rc;
}

/* ---- wake-ups ------------------------------------------------------------- */

struct stamp {
    volatile uint64_t t1;
};

/* The sleeper: for each trial, take the next reservation, say ready,
 * sleep (in get_wait, or in read() on the pipe, then get), release the
 * object, stamp the wake-up. Both ways end with the object got and
 * released, as a reader wants it. */
static void wake_child(bool pipe_kind, int trials, int in, int out,
                       struct stamp *st)
{
    mempool *q = attach();
    for (int i = 0; i < trials; i++) {
        mempool_dref r;
        mempool_view view;
        char c;
        rd(in, &r, sizeof r);           /* the next reservation */
        wr(out, "R", 1);
        if (pipe_kind) {
            rd(in, &c, 1);
            if (mempool_get(q, r, &view) < 0)
                _exit(14);
        } else if (mempool_get_wait(q, r, &view, -1) < 0) {
            _exit(14);
        }
        mempool_release(q, &view);
        st->t1 = now_ns();
        wr(out, "D", 1);
    }
    _exit(0);
}

/* One trial from the waker's side: ns from publish (then, for the pipe,
 * its write) to the sleeper's stamp in *@p ns. */
static int wake_trial(mempool *p, bool pipe_kind, int to_b, int to_a,
                      struct stamp *st, double *ns)
{
    mempool_dref r = { 0, 0 };
    void *buf;
    uint64_t t0;
    char c;
    if (mempool_reserve(p, 64, NULL, &buf, &r) < 0)
        return -ENOMEM;
    wr(to_b, &r, sizeof r);
    rd(to_a, &c, 1);
    usleep(200);                        /* it is asleep by now */
    t0 = now_ns();
    if (mempool_publish(p, r) < 0)
        return -EIO;
    if (pipe_kind)
        wr(to_b, "G", 1);
    rd(to_a, &c, 1);
    *ns = (double)(st->t1 - t0);
    mempool_delete(p, r);
    return 0;
}

static int wakeups(mempool *p, bool pipe_kind, int trials, double *med)
{
    struct stamp *st = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    double *v = calloc((size_t)trials, sizeof(double));
    int to_b[2], to_a[2];
    pid_t k;
    int rc = 0;

    if (st == MAP_FAILED || !v || pipe(to_b) || pipe(to_a)) {
        free(v);
        if (st != MAP_FAILED)
            munmap(st, 4096);
        return -ENOMEM;
    }
    if ((k = fork()) == 0)
        wake_child(pipe_kind, trials, to_b[0], to_a[1], st);
    for (int i = 0; i < trials && rc == 0; i++)
        rc = wake_trial(p, pipe_kind, to_b[1], to_a[0], st, &v[i]);
    if (rc == 0) {
        rc = wait_kids(&k, 1);
        *med = bench_median(v, trials);
    }
    free(v);
    munmap(st, 4096);
    close(to_b[0]);
    close(to_b[1]);
    close(to_a[0]);
    close(to_a[1]);
    return rc;
}

/* ---- name_get --------------------------------------------------------------- */

static int name_get(mempool *p, long n, double *name_ns, double *get_ns)
{
    mempool_dref r, out;
    char buf[64] = { 3 };
    uint64_t t0;
    if (mempool_put(p, buf, sizeof buf, &r) < 0 ||
        mempool_name_put(p, "bench/some-object", r, 0) < 0)
        return -ENOMEM;
    t0 = now_ns();
    for (long i = 0; i < n; i++)
        if (mempool_name_get(p, "bench/some-object", &out, 0) < 0)
            return -EIO;
    *name_ns = (double)(now_ns() - t0) / (double)n;
    t0 = now_ns();
    for (long i = 0; i < n; i++)
        touch(p, r);
    *get_ns = (double)(now_ns() - t0) / (double)n;
    mempool_name_drop(p, "bench/some-object");
    mempool_delete(p, r);
    return 0;
}

/* ---- the section ------------------------------------------------------------ */

static void row(const char *what, double ns, const char *base, double bns)
{
    char a[32], b[32];
    printf("| %s | %s | %s | %s | %.2f× |\n", what,
           bench_fmt_ns(ns, a, sizeof a), base, bench_fmt_ns(bns, b, sizeof b),
           ns / bns);
}

static void rate_row(const char *what, double r, const char *base, double br)
{
    char a[32], b[32];
    printf("| %s | %s/s | %s | %s/s | %.2f× |\n", what,
           bench_fmt_rate(r, a, sizeof a), base,
           bench_fmt_rate(br, b, sizeof b), r / br);
}

int bench_handoff(const struct handoff_opts *ho)
{
    long rt = ho->quick ? 2000 : 10000, n = ho->quick ? 20000 : 200000;
    int trials = ho->quick ? 100 : 1000;
    double pp_chan, pp_dref, pp_64, s1, s1p, s1r, s4, w_get, w_pipe, ng, gg;
    double c1, c1p, c4;
    mempool_options o;
    mempool *p;
    int rc;

    snprintf(pool, sizeof pool, "bench-handoff-%d", (int)getpid());
    mempool_options_init(&o);
    o.arena_bytes = 256ull << 20;
    o.spiller = 0;
    o.flags = MEMPOOL_OPEN_CREATE | MEMPOOL_OPEN_EXCL;
    if ((rc = mempool_open(pool, &o, &p)) < 0)
        return rc;
    /* Interleaved rounds, each figure the median of its rounds, so a
     * burst of load from other processes hits both sides alike. */
    double v[9][ROUNDS], cv[3][ROUNDS], unused;
    int nr = ho->quick ? 1 : ROUNDS;
    for (int k = 0; k < nr; k++) {
        fprintf(stderr, "mempool-bench: handoff: round %d/%d ...\n", k + 1,
                nr);
        if ((rc = pingpong(p, PP_CHAN, rt, &v[0][k])) ||
            (rc = pingpong(p, PP_PIPE_DREF, rt, &v[1][k])) ||
            (rc = pingpong(p, PP_PIPE_64, rt, &v[2][k])) ||
            (rc = stream(ST_CHAN, 1, n, &v[3][k], &cv[0][k])) ||
            (rc = stream(ST_PIPE, 1, n, &v[4][k], &cv[1][k])) ||
            (rc = stream(ST_CHAN_RC, 1, n, &v[5][k], &unused)) ||
            (rc = stream(ST_CHAN, 4, n, &v[6][k], &cv[2][k])) ||
            (rc = wakeups(p, false, trials, &v[7][k])) ||
            (rc = wakeups(p, true, trials, &v[8][k])))
            goto out;
    }
    pp_chan = bench_median(v[0], nr);
    pp_dref = bench_median(v[1], nr);
    pp_64 = bench_median(v[2], nr);
    s1 = bench_median(v[3], nr);
    s1p = bench_median(v[4], nr);
    s1r = bench_median(v[5], nr);
    s4 = bench_median(v[6], nr);
    c1 = bench_median(cv[0], nr);
    c1p = bench_median(cv[1], nr);
    c4 = bench_median(cv[2], nr);
    w_get = bench_median(v[7], nr);
    w_pipe = bench_median(v[8], nr);
    if ((rc = name_get(p, n, &ng, &gg)))
        goto out;
    printf("\n### handoff (64 B objects, 2 processes unless noted)\n\n");
    printf("| operation | mempool | baseline | baseline value | ratio |\n");
    printf("|---|---|---|---|---|\n");
    row("ping-pong round trip, channel (send, recv, get, release ×2)",
        pp_chan, "pipe carrying the DRef (same gets)", pp_dref);
    row("ping-pong round trip, channel", pp_chan,
        "pipe carrying the 64 B payload", pp_64);
    rate_row("stream 1→1: put, send, recv, get, release, delete", s1,
             "pipe carrying DRefs (same put, get, release, delete)", s1p);
    rate_row("stream 1→1, refcounted: the reference travels, unref frees",
             s1r, "pipe carrying DRefs (plain, delete)", s1p);
    rate_row("stream 4×4 on one channel (plain, delete)", s4,
             "the 1→1 channel stream", s1);
    row("stream 1→1, CPU time per object (both processes)", c1,
        "pipe carrying DRefs (same put, get, release, delete)", c1p);
    row("stream 4×4, CPU time per object (all 8 processes)", c4,
        "the 1→1 channel stream", c1);
    row("wake-up after publish, get_wait (+ release)", w_get,
        "publish, pipe write → read wakes, get (+ release)", w_pipe);
    row("name_get of a bound name", ng, "get + release of its object", gg);
    printf("\nMedians of %d interleaved rounds of %ld round trips, %ld "
           "objects per stream, %d wake-ups.\n", nr, rt, n, trials);
out:
    mempool_close(p);
    mempool_destroy(pool);
    return rc;
}
