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
 *               share a CPU; the CPU time says what an object costs
 *               (also of the refcounted 1→1 against the plain one).
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
#include <sched.h>
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

/* ---- placement ------------------------------------------------------------ */

/* Where the two processes of a latency figure run. Left to the scheduler,
 * the same pair makes 5 µs round trips when it shares a CPU and 30 µs when
 * it does not (each wake-up of an idle vCPU is a trip through the
 * hypervisor), and a pipe (whose writer wakes its reader with a sync hint:
 * "run it here") lands on one CPU more often than a futex does: the free
 * figure of a run says mostly where each pair landed. So each latency is
 * also measured with both processes pinned, the same way for the channel
 * and its baselines: both on one CPU, and one on each of two. The library
 * never pins; only this bench does. */
enum { PL_FREE, PL_ONE, PL_TWO, PL_N };

static const char *const pl_name[PL_N] = {
    "unpinned", "both pinned to one CPU", "pinned to two CPUs"
};
static cpu_set_t pl_all;              /* the affinity we started with */
static int pl_cpu[2] = { -1, -1 };    /* the first two CPUs of it */

static void pl_init(void)
{
    int k = 0;
    if (sched_getaffinity(0, sizeof pl_all, &pl_all))
        return;
    for (int c = 0; c < CPU_SETSIZE && k < 2; c++)
        if (CPU_ISSET(c, &pl_all))
            pl_cpu[k++] = c;
}

/* Can placement @p pl be made here (two CPUs needs two)? */
static bool pl_ok(int pl)
{
    return pl == PL_FREE || (pl == PL_ONE ? pl_cpu[0] >= 0 : pl_cpu[1] >= 0);
}

/* Pin the caller, side @p side (0 the parent, 1 the child) of placement
 * @p pl; PL_FREE gives back the whole starting set. */
static void pl_pin(int pl, int side)
{
    cpu_set_t one;
    if (pl == PL_FREE) {
        sched_setaffinity(0, sizeof pl_all, &pl_all);
        return;
    }
    CPU_ZERO(&one);
    CPU_SET(pl_cpu[pl == PL_TWO ? side : 0], &one);
    sched_setaffinity(0, sizeof one, &one);
}

/* Shared with the child: where it ran last, and its wake-up stamps. */
struct shared {
    volatile uint64_t t1;             /* wake-ups: the sleeper's stamp */
    volatile double cpu_ns;           /* ... its CPU time per trial */
    volatile int cpu;                 /* the child's CPU, last seen */
};

static struct shared *shared_map(void)
{
    struct shared *s = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return s == MAP_FAILED ? NULL : s;
}

/* One latency figure of one run: the median, the share of its batches
 * (trials) in which both processes were on one CPU, and (wake-ups) the
 * sleeper's CPU time per trial. */
struct lat {
    double ns, one, cpu;
};

/* ---- ping-pong ------------------------------------------------------------ */

enum { PP_CHAN, PP_PIPE_DREF, PP_PIPE_64, PP_N };

#define PP_BATCH 100      /* round trips per timed batch */

/* B's side: echo n items back, saying where it runs. */
static void pp_echo(int kind, long n, int in, int out, struct shared *sh)
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
            sh->cpu = sched_getcpu();
            if (mempool_chan_send(pong, r, -1) < 0)
                _exit(9);
        } else if (kind == PP_PIPE_DREF) {
            rd(in, &r, sizeof r);
            touch(p, r);
            sh->cpu = sched_getcpu();
            wr(out, &r, sizeof r);
        } else {
            rd(in, buf, sizeof buf);
            sh->cpu = sched_getcpu();
            wr(out, buf, sizeof buf);
        }
    }
    _exit(0);
}

/* A's side: one round trip of @p kind. */
static int pp_trip(mempool *p, int kind, mempool_chan *ping,
                   mempool_chan *pong, int out, int in, mempool_dref *r)
{
    char buf[64] = { 1 };
    if (kind == PP_CHAN) {
        if (mempool_chan_send(ping, *r, -1) < 0 ||
            mempool_chan_recv(pong, r, -1) < 0)
            return -EIO;
        touch(p, *r);
    } else if (kind == PP_PIPE_DREF) {
        wr(out, r, sizeof *r);
        rd(in, r, sizeof *r);
        touch(p, *r);
    } else {
        wr(out, buf, sizeof buf);
        rd(in, buf, sizeof buf);
    }
    return 0;
}

/* Batches of PP_BATCH round trips: their median ns per round trip. */
static int pp_batches(mempool *p, int kind, long n, int out, int in,
                      struct shared *sh, struct lat *res)
{
    long nb = n / PP_BATCH, one = 0;
    double *v = calloc((size_t)nb, sizeof(double));
    mempool_chan *ping = NULL, *pong = NULL;
    char buf[64] = { 1 };
    mempool_dref r = { 0, 0 };
    int rc = 0;

    if (!v)
        return -ENOMEM;
    if (kind == PP_CHAN) {
        ping = chan(p, "ping");
        pong = chan(p, "pong");
    }
    if (kind != PP_PIPE_64 &&
        mempool_put_ex(p, buf, sizeof buf, kind == PP_CHAN ? &rco : NULL,
                       &r) < 0)
        rc = -ENOMEM;
    for (long b = 0; b < nb && rc == 0; b++) {
        uint64_t t0 = now_ns();
        for (int i = 0; i < PP_BATCH && rc == 0; i++)
            rc = pp_trip(p, kind, ping, pong, out, in, &r);
        v[b] = (double)(now_ns() - t0) / PP_BATCH;
        one += sh->cpu == sched_getcpu();
    }
    if (kind == PP_CHAN) {
        mempool_unref(p, r);
        mempool_chan_close(ping);
        mempool_chan_close(pong);
    } else if (kind == PP_PIPE_DREF) {
        mempool_delete(p, r);
    }
    res->ns = bench_median(v, (int)nb);
    res->one = (double)one / (double)nb;
    free(v);
    return rc;
}

/* n round trips of @p kind between this process and a child, placed as
 * @p pl. */
static int pingpong(mempool *p, int kind, int pl, long n, struct lat *res)
{
    struct shared *sh = shared_map();
    int a2b[2], b2a[2], rc;
    pid_t k;
    char c;

    n -= n % PP_BATCH;               /* whole batches, both sides */
    if (!sh)
        return -ENOMEM;
    if (pipe(a2b) || pipe(b2a)) {
        rc = -errno;
        munmap(sh, 4096);
        return rc;
    }
    pl_pin(pl, 0);
    if ((k = fork()) == 0) {
        pl_pin(pl, 1);
        close(a2b[1]);
        close(b2a[0]);
        pp_echo(kind, n, a2b[0], b2a[1], sh);
    }
    close(a2b[0]);
    close(b2a[1]);
    rd(b2a[0], &c, 1);
    rc = pp_batches(p, kind, n, a2b[1], b2a[0], sh, res);
    close(a2b[1]);
    close(b2a[0]);
    if (rc)
        kill(k, SIGKILL);            /* it may wait on the channel */
    if (wait_kids(&k, 1) && rc == 0)
        rc = -ECHILD;
    pl_pin(PL_FREE, 0);
    munmap(sh, 4096);
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

/* The sleeper: for each trial, take the next reservation, say ready,
 * sleep (in get_wait, or in read() on the pipe, then get), release the
 * object, stamp the wake-up. Both ways end with the object got and
 * released, as a reader wants it. Its CPU time per trial (all its
 * threads, the bench's pipe messages included: the same both ways) over
 * the trials after the first tenth says what a wait costs the sleeper:
 * a sleeper that burns more is less often run at once by its wake-up
 * (wait.c, writer_dead()). */
static void wake_child(bool pipe_kind, int trials, int in, int out,
                       struct shared *st)
{
    mempool *q = attach();
    int skip = trials / 10;
    double c0 = 0;
    for (int i = 0; i < trials; i++) {
        if (i == skip)
            c0 = self_cpu_ns();
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
        st->cpu = sched_getcpu();
        if (i == trials - 1)           /* before the parent's last read */
            st->cpu_ns = (self_cpu_ns() - c0) / (trials - skip);
        wr(out, "D", 1);
    }
    _exit(0);
}

/* One trial from the waker's side: ns from publish (then, for the pipe,
 * its write) to the sleeper's stamp in *@p ns; whether both ran on one
 * CPU in *@p one. */
static int wake_trial(mempool *p, bool pipe_kind, int to_b, int to_a,
                      struct shared *st, double *ns, bool *one)
{
    mempool_dref r = { 0, 0 };
    void *buf;
    uint64_t t0;
    int cpu;
    char c;
    if (mempool_reserve(p, 64, NULL, &buf, &r) < 0)
        return -ENOMEM;
    wr(to_b, &r, sizeof r);
    rd(to_a, &c, 1);
    usleep(200);                        /* it is asleep by now */
    cpu = sched_getcpu();
    t0 = now_ns();
    if (mempool_publish(p, r) < 0)
        return -EIO;
    if (pipe_kind)
        wr(to_b, "G", 1);
    rd(to_a, &c, 1);
    *ns = (double)(st->t1 - t0);
    *one = st->cpu == cpu;
    mempool_delete(p, r);
    return 0;
}

static int wakeups(mempool *p, bool pipe_kind, int pl, int trials,
                   struct lat *res)
{
    struct shared *st = shared_map();
    double *v = calloc((size_t)trials, sizeof(double));
    int to_b[2], to_a[2], one = 0;
    pid_t k;
    int rc = 0;

    if (!st || !v || pipe(to_b) || pipe(to_a)) {
        free(v);
        if (st)
            munmap(st, 4096);
        return -ENOMEM;
    }
    pl_pin(pl, 0);
    if ((k = fork()) == 0) {
        pl_pin(pl, 1);
        wake_child(pipe_kind, trials, to_b[0], to_a[1], st);
    }
    for (int i = 0; i < trials && rc == 0; i++) {
        bool same = false;
        rc = wake_trial(p, pipe_kind, to_b[1], to_a[0], st, &v[i], &same);
        one += same;
    }
    if (rc)
        kill(k, SIGKILL);
    if (wait_kids(&k, 1) && rc == 0)
        rc = -ECHILD;
    pl_pin(PL_FREE, 0);
    res->ns = bench_median(v, trials);
    res->one = (double)one / trials;
    res->cpu = st->cpu_ns;
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

/* The latency figures of every round, by placement. */
struct lat_runs {
    struct lat pp[PL_N][PP_N][ROUNDS];
    struct lat wk[PL_N][2][ROUNDS];   /* [0] get_wait, [1] pipe */
};

/* One round of the latency figures: every placement, the channel and its
 * baselines back to back. */
static int lat_round(mempool *p, bool quick, struct lat_runs *lr, int k)
{
    long rt = quick ? 2000 : 10000;
    int trials = quick ? 100 : 500, rc = 0;
    for (int pl = 0; pl < PL_N && rc == 0; pl++) {
        if (!pl_ok(pl))
            continue;
        for (int kind = 0; kind < PP_N && rc == 0; kind++)
            rc = pingpong(p, kind, pl, pl == PL_TWO ? rt / 3 : rt,
                          &lr->pp[pl][kind][k]);
        if (rc == 0)
            rc = wakeups(p, false, pl, trials, &lr->wk[pl][0][k]);
        if (rc == 0)
            rc = wakeups(p, true, pl, trials, &lr->wk[pl][1][k]);
    }
    return rc;
}

/* The median latency of @p n rounds, and their mean share on one CPU. */
static struct lat lat_median(const struct lat *r, int n)
{
    double v[ROUNDS], c[ROUNDS], one = 0;
    for (int i = 0; i < n; i++) {
        v[i] = r[i].ns;
        c[i] = r[i].cpu;
        one += r[i].one;
    }
    return (struct lat){ bench_median(v, n), one / n, bench_median(c, n) };
}

static void lat_rows(const struct lat_runs *lr, int nr)
{
    char what[256];
    for (int pl = 0; pl < PL_N; pl++) {
        struct lat c, d, b, g, w;
        if (!pl_ok(pl))
            continue;
        c = lat_median(lr->pp[pl][PP_CHAN], nr);
        d = lat_median(lr->pp[pl][PP_PIPE_DREF], nr);
        b = lat_median(lr->pp[pl][PP_PIPE_64], nr);
        g = lat_median(lr->wk[pl][0], nr);
        w = lat_median(lr->wk[pl][1], nr);
        snprintf(what, sizeof what, "ping-pong round trip, channel (send, "
                 "recv, get, release ×2), %s", pl_name[pl]);
        if (pl == PL_FREE)
            snprintf(what + strlen(what), sizeof what - strlen(what),
                     " (one CPU: %.0f%% of its batches, the pipe's %.0f%%)",
                     100 * c.one, 100 * d.one);
        row(what, c.ns, "pipe carrying the DRef (same gets)", d.ns);
        snprintf(what, sizeof what, "ping-pong round trip, channel, %s",
                 pl_name[pl]);
        row(what, c.ns, "pipe carrying the 64 B payload", b.ns);
        snprintf(what, sizeof what, "wake-up after publish, get_wait "
                 "(+ release), %s", pl_name[pl]);
        if (pl == PL_FREE)
            snprintf(what + strlen(what), sizeof what - strlen(what),
                     " (one CPU: %.0f%% of trials, the pipe's %.0f%%)",
                     100 * g.one, 100 * w.one);
        row(what, g.ns, "publish, pipe write → read wakes, get (+ release)",
            w.ns);
        if (pl == PL_FREE)
            row("get_wait sleeper's CPU time per wake-up trial (its "
                "process), unpinned", g.cpu, "the pipe reader's", w.cpu);
    }
}

int bench_handoff(const struct handoff_opts *ho)
{
    /* A stream run long enough for its steady state: two unpinned
     * processes that start on one CPU share it until the load balancer
     * parts them, which took a good part of a 200,000-object run (~30
     * ms; the default up to session 9): 1->1 at 200,000 objects 4.8-7.4
     * M/s unpinned but ~10 pinned apart, at 1,000,000 8.5-9.2 unpinned
     * (session 10, same build). --stream N measures other lengths. */
    long n = ho->stream ? ho->stream : ho->quick ? 20000 : 1000000;
    double s1, s1p, s1r, s4, ng, gg, c1, c1p, c1r, c4;
    struct lat_runs *lr = calloc(1, sizeof *lr);
    mempool_options o;
    mempool *p;
    int rc;

    if (!lr)
        return -ENOMEM;
    pl_init();
    snprintf(pool, sizeof pool, "bench-handoff-%d", (int)getpid());
    mempool_options_init(&o);
    o.arena_bytes = 256ull << 20;
    o.spiller = 0;
    o.flags = MEMPOOL_OPEN_CREATE | MEMPOOL_OPEN_EXCL;
    if ((rc = mempool_open(pool, &o, &p)) < 0) {
        free(lr);
        return rc;
    }
    /* Interleaved rounds, each figure the median of its rounds, so a
     * burst of load from other processes hits both sides alike. */
    double v[4][ROUNDS], cv[4][ROUNDS];
    int nr = ho->quick ? 1 : ROUNDS;
    for (int k = 0; k < nr; k++) {
        fprintf(stderr, "mempool-bench: handoff: round %d/%d ...\n", k + 1,
                nr);
        if ((rc = lat_round(p, ho->quick, lr, k)) ||
            (rc = stream(ST_CHAN, 1, n, &v[0][k], &cv[0][k])) ||
            (rc = stream(ST_PIPE, 1, n, &v[1][k], &cv[1][k])) ||
            (rc = stream(ST_CHAN_RC, 1, n, &v[2][k], &cv[3][k])) ||
            (rc = stream(ST_CHAN, 4, n, &v[3][k], &cv[2][k])))
            goto out;
    }
    s1 = bench_median(v[0], nr);
    s1p = bench_median(v[1], nr);
    s1r = bench_median(v[2], nr);
    s4 = bench_median(v[3], nr);
    c1 = bench_median(cv[0], nr);
    c1p = bench_median(cv[1], nr);
    c4 = bench_median(cv[2], nr);
    c1r = bench_median(cv[3], nr);
    if ((rc = name_get(p, n, &ng, &gg)))
        goto out;
    printf("\n### handoff (64 B objects, 2 processes unless noted)\n\n");
    printf("| operation | mempool | baseline | baseline value | ratio |\n");
    printf("|---|---|---|---|---|\n");
    lat_rows(lr, nr);
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
    row("stream 1→1 refcounted, CPU time per object (both processes)", c1r,
        "the plain 1→1 channel stream", c1);
    row("name_get of a bound name", ng, "get + release of its object", gg);
    printf("\nMedians of %d interleaved rounds: ping-pong over batches of "
           "%d round trips (%ld a run, a third of that on two CPUs), %d "
           "wake-ups a run, %ld objects per stream. \"one CPU\": the share "
           "of batches (trials) that ended with both processes on one "
           "CPU.\n", nr, PP_BATCH, ho->quick ? 2000L : 10000L,
           ho->quick ? 100 : 500, n);
out:
    free(lr);
    mempool_close(p);
    mempool_destroy(pool);
    return rc;
}
