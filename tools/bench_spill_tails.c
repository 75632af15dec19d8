/* SPDX-License-Identifier: MIT */
/*
 * bench_spill_tails.c - the spill section's latency tails: 64 B gets timed one
 * by one in a reader process, idle and while other processes make the pool
 * spill (see bench_spill.c).
 */
#include "bench_spill.h"
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- disturbers --------------------------------------------------------------- */

enum { DIST_NONE, DIST_LIMIT, DIST_BG, DIST_BG_PWRITE, DIST_CONDS };

struct disturber {
    pid_t pid;
    int   ctl; /* parent writes (or closes) to stop it */
    int   rdy; /* child writes 'R' once it has spilled */
};

/* Background mode: bytes that may still be set before the arena is 97 %
 * full, and the pool's spill count. mempool_stats_get() reads every worker's
 * pin table, so it is called every 20 ms, not per set: polled in a loop it
 * would itself slow the reader down. */
static uint64_t room_left(mempool *p, uint64_t *spills)
{
    struct mempool_stats st;
    if (spill_stats(p, &st) < 0)
        return 0;
    *spills = st.spills;
    uint64_t cap = st.data_bytes / 100 * 97;
    return st.used_bytes < cap ? cap - st.used_bytes : 0;
}

/* The disturber's loop: set DIST_SIZE objects, keeping at most a ring of
 * them alive, until the parent says stop; say 'R' after the first spill.
 * Limit mode sets flat out (each set spills the owner's oldest resident
 * object); background mode sets while the arena has room, leaving the
 * spilling to the pool's spiller. */
static int dist_loop(mempool *p, const unsigned char *src, int mode, int ctl,
                     int rdy)
{
    mempool_dref ring[DIST_RING];
    int cap = mode == DIST_LIMIT ? 4 : DIST_RING, head = 0, alive = 0, rc = 0;
    uint64_t spills0 = 0, spills = 0, sets = 0, room = 0, poll_at = 0;
    bool ready = false, bg = mode >= DIST_BG;
    if (bg)
        room_left(p, &spills0);
    struct pollfd pf = {.fd = ctl, .events = POLLIN};
    while (rc == 0 && poll(&pf, 1, 0) == 0) {
        if (bg && cli_now_ns() >= poll_at) {
            room = room_left(p, &spills);
            poll_at = cli_now_ns() + 20000000;
        }
        if (!ready && (bg ? spills > spills0 : sets > 2)) {
            ready = true;
            rc = cli_write_all(rdy, "R", 1);
        }
        if (bg && room < DIST_SIZE) {
            nanosleep(&(struct timespec){0, 1000000}, NULL);
            continue;
        }
        if (alive == cap) {
            rc = mempool_delete(p, ring[head]);
            head = (head + 1) % cap;
            alive--;
        }
        if (rc == 0)
            rc = mempool_put(p, src, DIST_SIZE, &ring[(head + alive) % cap]);
        alive += rc == 0;
        room -= bg ? DIST_SIZE : 0;
        sets++;
    }
    for (int i = 0; i < alive; i++)
        mempool_delete(p, ring[(head + i) % cap]);
    return rc;
}

_Noreturn static void dist_main(const struct spill *s, int mode, int ctl,
                                int rdy)
{
    mempool_options o;
    mempool_options_init(&o);
    o.flags = 0;
    o.spiller = mode >= DIST_BG;
    o.io_mode = mode == DIST_BG_PWRITE ? MEMPOOL_IO_PWRITE : MEMPOOL_IO_AUTO;
    o.max_memsize = mode == DIST_LIMIT ? 2 * DIST_SIZE : 0;
    mempool *p;
    int rc = mempool_open(s->pool, &o, &p);
    if (rc == 0) {
        rc = dist_loop(p, s->src, mode, ctl, rdy);
        mempool_close(p);
    }
    if (rc < 0)
        fprintf(stderr, "mempool-bench: disturber: %s\n",
                mempool_strerror(rc));
    _exit(rc == 0 ? 0 : 1);
}

/* Start a disturber and wait (up to 10 s) until it has spilled. */
static int dist_start(struct spill *s, int mode, struct disturber *d)
{
    int ctl[2], rdy[2];
    if (pipe2(ctl, O_CLOEXEC) < 0)
        return -errno;
    if (pipe2(rdy, O_CLOEXEC) < 0) {
        close(ctl[0]);
        close(ctl[1]);
        return -errno;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(ctl[1]);
        close(rdy[0]);
        dist_main(s, mode, ctl[0], rdy[1]);
    }
    close(ctl[0]);
    close(rdy[1]);
    *d = (struct disturber){pid, ctl[1], rdy[0]};
    if (pid < 0)
        return -errno;
    struct pollfd pf = {.fd = d->rdy, .events = POLLIN};
    char c;
    if (poll(&pf, 1, 10000) != 1 || read(d->rdy, &c, 1) != 1)
        return -ETIMEDOUT;
    return 0;
}

static int dist_stop(struct disturber *d)
{
    int st = 0;
    if (d->pid <= 0)
        return 0;
    close(d->ctl);
    close(d->rdy);
    while (waitpid(d->pid, &st, 0) < 0 && errno == EINTR)
        ;
    d->pid = 0;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -ECHILD;
}

/* ---- tails ------------------------------------------------------------------------ */

struct lat_results {
    struct hist h[DIST_CONDS];
    uint64_t    spills[DIST_CONDS], bytes[DIST_CONDS], ns[DIST_CONDS];
    uint64_t    disk_views;
};

/* One latency run of the reader @p k under condition @p cond. */
static int lat_run_one(struct spill *s, struct kid *k, int cond,
                       struct lat_results *L, struct lat_result *res)
{
    struct disturber d = {0};
    struct mempool_stats a, b;
    struct lat_job j = {.op = 1, .run_ns = s->pl.lat_ns};
    char c;
    int rc = cli_write_all(k->job_fd, &j, sizeof j);
    if (rc == 0)
        rc = cli_read_all(k->res_fd, &c, 1);
    if (rc == 0 && cond != DIST_NONE)
        rc = dist_start(s, cond, &d);
    if (rc == 0)
        rc = spill_stats(s->h[H_SRC], &a);
    uint64_t t0 = cli_now_ns();
    if (rc == 0)
        rc = cli_write_all(k->job_fd, "G", 1);
    if (rc == 0)
        rc = cli_read_all(k->res_fd, res, sizeof *res);
    L->ns[cond] += cli_now_ns() - t0;
    if (rc == 0)
        rc = spill_stats(s->h[H_SRC], &b);
    int rc2 = dist_stop(&d);
    if (rc == 0)
        rc = res->err < 0 ? res->err : rc2;
    if (rc == 0) {
        hist_merge(&L->h[cond], &res->h);
        L->spills[cond] += b.spills - a.spills;
        L->bytes[cond] += b.spill_bytes - a.spill_bytes;
        L->disk_views += res->disk_views;
    }
    return rc;
}

static int start_reader(struct spill *s, struct kid *k,
                        const mempool_dref *drefs)
{
    int job[2], res[2];
    if (pipe2(job, O_CLOEXEC) < 0)
        return -errno;
    if (pipe2(res, O_CLOEXEC) < 0) {
        close(job[0]);
        close(job[1]);
        return -errno;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(job[1]);
        close(res[0]);
        struct kid me = {0, job[0], res[1]};
        bench_lat_main(s->pool, &me, drefs, LAT_COUNT);
    }
    close(job[0]);
    close(res[1]);
    *k = (struct kid){pid, job[1], res[0]};
    return pid < 0 ? -errno : 0;
}

static int stop_reader(struct kid *k)
{
    struct lat_job quit = {0};
    int st = 0;
    if (k->pid <= 0)
        return 0;
    cli_write_all(k->job_fd, &quit, sizeof quit);
    close(k->job_fd);
    close(k->res_fd);
    while (waitpid(k->pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -ECHILD;
}

static int tails(struct spill *s, struct lat_results *L)
{
    static mempool_dref drefs[LAT_COUNT];
    static const unsigned char small[64] = {1};
    struct lat_result *res = malloc(sizeof *res);
    struct kid k = {0};
    int rc = res == NULL ? -ENOMEM : 0;
    spill_progress("tails");
    for (int i = 0; i < LAT_COUNT && rc == 0; i++)
        rc = mempool_put(s->h[H_SRC], small, sizeof small, &drefs[i]);
    if (rc == 0)
        rc = start_reader(s, &k, drefs);
    for (int r = 0; r < s->pl.reps && rc == 0; r++)
        for (int cond = 0; cond < DIST_CONDS && rc == 0; cond++)
            rc = lat_run_one(s, &k, cond, L, res);
    int rc2 = stop_reader(&k);
    for (int i = 0; i < LAT_COUNT; i++)
        mempool_delete(s->h[H_SRC], drefs[i]);
    free(res);
    return rc < 0 ? rc : rc2;
}

static void print_tails(const struct lat_results *L)
{
    char bg[2][160];
    const char *cond[DIST_CONDS] = {
        "idle (**baseline**)",
        "another process sets 16 MiB objects past its max_memsize "
        "(each set spills one, auto I/O)", bg[0], bg[1]};
    for (int i = 0; i < 2; i++)
        snprintf(bg[i], sizeof bg[i], "the background spiller (%s) keeps "
                 "the arena under 85 %% while another process fills it",
                 i == 0 ? "auto" : "pwrite");
    double base = hist_quantile(&L->h[0], 0.99);
    printf("\n#### get+touch+release of a 64 B resident object while "
           "spilling (other process, each op timed)\n\n");
    printf("| condition | ops | median | p99 | p99.9 | max | p99 vs idle "
           "| target | spilled meanwhile |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---|---|\n");
    for (int c = 0; c < DIST_CONDS; c++) {
        const struct hist *h = &L->h[c];
        char n[24], q[4][24], ratio[24] = "–", goal[32] = "", sp[96] = "–",
             by[24];
        double p99 = hist_quantile(h, 0.99);
        if (c > 0) {
            snprintf(ratio, sizeof ratio, "%.2f×", p99 / base);
            snprintf(goal, sizeof goal, "≤ 2×: %s",
                     p99 <= 2 * base ? "**met**" : "**missed**");
            snprintf(sp, sizeof sp, "%" PRIu64 " files, %s, %.2f GB/s",
                     L->spills[c], cli_fmt_bytes(L->bytes[c], by, sizeof by),
                     (double)L->bytes[c] / (double)(L->ns[c] ? L->ns[c] : 1));
        }
        printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", cond[c],
               bench_fmt_rate((double)h->n, n, sizeof n),
               bench_fmt_ns(hist_quantile(h, 0.5), q[0], sizeof q[0]),
               bench_fmt_ns(p99, q[1], sizeof q[1]),
               bench_fmt_ns(hist_quantile(h, 0.999), q[2], sizeof q[2]),
               bench_fmt_ns((double)h->max, q[3], sizeof q[3]), ratio, goal,
               sp);
    }
    if (L->disk_views > 0)
        printf("\n%" PRIu64 " of the reader's gets found its object spilled "
               "(served from disk).\n", L->disk_views);
}

int spill_tails(struct spill *s)
{
    static struct lat_results lat; /* large; one run per process */
    int rc = tails(s, &lat);
    if (rc == 0)
        print_tails(&lat);
    return rc;
}
