/* SPDX-License-Identifier: MIT */
/*
 * bench_spill_tp.c - the spill section's throughput: 64 MiB objects moved to
 * disk and set past max_memsize through each backend, against write(2) of
 * the same bytes in the same step (see bench_spill.c).
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

/* ---- throughput ------------------------------------------------------------- */

/*
 * A step times six writes of 64 MiB back to back, in an order that
 * rotates from step to step: the baseline write(2), move_to_disk through
 * each backend, a set past max_memsize through each backend, and - for
 * context, since the spill engine preallocates large files - fallocate()
 * of the whole file followed by the same write(2) calls. Each is
 * compared with the baseline of its own step, and the table gives the
 * median of those ratios: on a VM whose page allocation speed changes by
 * 10× from one second to the next (host faults on guest pages), only
 * neighbours are comparable.
 */
enum { OP_BASE, OP_MOVE, OP_MOVE_PW, OP_LIMIT, OP_LIMIT_PW, OP_FALLOC,
       OP_N };

struct tp_results {
    struct samples gbs[OP_N];   /* per-file GB/s */
    struct samples ratio[OP_N]; /* GB/s over the same step's baseline */
    struct samples sync;        /* write(2) + fdatasync */
};

struct tp_state {
    mempool_dref src, mv[2];  /* resident objects of H_SRC */
    mempool_dref lim[2][2];   /* the two resident objects of each limited
                                 handle, oldest first */
};

/* Write 4096 zero bytes and @p len bytes at @p data to a new file @p path
 * (fallocate()d first with @p falloc, fdatasynced with @p sync); @p ns gets
 * the time, open to close. */
static int write_file(const char *path, const void *data, uint64_t len,
                      bool falloc, bool sync, uint64_t *ns)
{
    static const unsigned char zero[HDR];
    uint64_t t0 = cli_now_ns();
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int rc = fd < 0 ? -errno : 0;
    if (rc == 0 && falloc && fallocate(fd, 0, 0, (off_t)(HDR + len)) < 0 &&
        errno != EOPNOTSUPP)
        rc = -errno;
    if (rc == 0)
        rc = cli_write_all(fd, zero, HDR);
    if (rc == 0)
        rc = cli_write_all(fd, data, len);
    if (rc == 0 && sync && fdatasync(fd) < 0)
        rc = -errno;
    if (fd >= 0 && close(fd) < 0 && rc == 0)
        rc = -errno;
    *ns = cli_now_ns() - t0;
    unlink(path);
    return rc;
}

/* The baseline: object @p r's bytes, read from the arena through a view,
 * written to a file of our own, which is then removed. */
static int op_write(struct spill *s, mempool_dref r, bool falloc, bool sync,
                    uint64_t *ns)
{
    char path[PATH_MAX + 32];
    mempool_view v;
    int rc = mempool_get(s->h[H_SRC], r, &v);
    if (rc < 0)
        return rc;
    snprintf(path, sizeof path, "%s/write-%d", s->dir, (int)getpid());
    rc = write_file(path, v.data, v.len, falloc, sync, ns);
    mempool_release(s->h[H_SRC], &v);
    return rc;
}

/* Handle @p h moves resident object @p r to disk; it is deleted after. */
static int op_move(struct spill *s, int h, mempool_dref r, uint64_t *ns)
{
    uint64_t t0 = cli_now_ns();
    int rc = mempool_move_to_disk(s->h[h], r, NULL);
    *ns = cli_now_ns() - t0;
    spill_note_backend(s, h);
    return rc == 0 ? mempool_delete(s->h[H_SRC], r) : rc;
}

/* Handle @p h, holding two objects at its limit of two, sets a third: the
 * set spills the older one, which is then deleted. */
static int op_limit(struct spill *s, struct tp_state *t, int h, uint64_t *ns)
{
    mempool_dref r;
    uint64_t t0 = cli_now_ns();
    int rc = mempool_put(s->h[h], s->src, BIG, &r);
    *ns = cli_now_ns() - t0;
    if (rc == 0)
        rc = mempool_delete(s->h[h], t->lim[h][0]);
    t->lim[h][0] = t->lim[h][1];
    t->lim[h][1] = r;
    return rc;
}

static int tp_op(struct spill *s, struct tp_state *t, int op, uint64_t *ns)
{
    switch (op) {
    case OP_BASE:
    case OP_FALLOC:
        return op_write(s, t->src, op == OP_FALLOC, false, ns);
    case OP_MOVE:
    case OP_MOVE_PW:
        return op_move(s, op - OP_MOVE, t->mv[op - OP_MOVE], ns);
    default:
        return op_limit(s, t, op - OP_LIMIT, ns);
    }
}

static int tp_step(struct spill *s, struct tp_state *t, int step,
                   struct tp_results *r)
{
    uint64_t ns[OP_N] = {0};
    int rc = mempool_put(s->h[H_SRC], s->src, BIG, &t->src);
    for (int i = 0; i < 2 && rc == 0; i++)
        rc = mempool_put(s->h[H_SRC], s->src, BIG, &t->mv[i]);
    for (int k = 0; k < OP_N && rc == 0; k++) {
        int op = (step + k) % OP_N;
        rc = tp_op(s, t, op, &ns[op]);
    }
    if (rc == 0)
        rc = mempool_delete(s->h[H_SRC], t->src);
    double base = (double)(HDR + BIG) / (double)ns[OP_BASE];
    for (int op = 0; op < OP_N && rc == 0; op++) {
        smp_add_rate(&r->gbs[op], HDR + BIG, ns[op]);
        smp_add(&r->ratio[op], (double)(HDR + BIG) / (double)ns[op] / base);
    }
    return rc;
}

/* Give each limited handle its limit and two resident objects (or, with
 * @p end, take them back). */
static int tp_limits(struct spill *s, struct tp_state *t, bool end)
{
    int rc = 0;
    for (int h = 0; h < 2 && rc == 0; h++) {
        rc = mempool_limit_set(s->h[h], MEMPOOL_LIMIT_MEMSIZE,
                               end ? 0 : 2 * BIG);
        for (int i = 0; i < 2 && rc == 0; i++)
            rc = end ? mempool_delete(s->h[h], t->lim[h][i])
                     : mempool_put(s->h[h], s->src, BIG, &t->lim[h][i]);
    }
    return rc;
}

static int throughput(struct spill *s, struct tp_results *r)
{
    struct tp_state t;
    struct mempool_stats a, b;
    int steps = s->pl.rounds * OP_N;
    spill_progress("throughput");
    int rc = spill_stats(s->h[H_SRC], &a);
    if (rc == 0)
        rc = tp_limits(s, &t, false);
    for (int i = 0; i < steps && rc == 0; i++)
        rc = tp_step(s, &t, i, r);
    if (rc == 0)
        rc = tp_limits(s, &t, true);
    for (int i = 0; i < s->pl.sync_files && rc == 0; i++) {
        uint64_t ns = 0;
        rc = mempool_put(s->h[H_SRC], s->src, BIG, &t.src);
        if (rc == 0)
            rc = op_write(s, t.src, false, true, &ns);
        if (rc == 0)
            rc = mempool_delete(s->h[H_SRC], t.src);
        if (rc == 0)
            smp_add_rate(&r->sync, HDR + BIG, ns);
    }
    if (rc == 0)
        rc = spill_stats(s->h[H_SRC], &b);
    if (rc == 0 && b.spills - a.spills != (uint64_t)steps * 4)
        fprintf(stderr, "mempool-bench: spill: %" PRIu64 " files written, "
                "expected %d\n", b.spills - a.spills, steps * 4);
    return rc;
}

static const char *backend_name(const struct spill *s, int h, char *buf,
                                size_t len)
{
    const char *ran = s->backend[h][0] ? s->backend[h] : "?";
    if (h == H_AUTO)
        snprintf(buf, len, "auto → %s", ran);
    else
        snprintf(buf, len, "pwrite%s", strcmp(ran, "pwrite") ? " (?)" : "");
    return buf;
}

/* One row; @p ratio NULL for the baseline rows. */
static void tp_row(const char *op, const char *be, const struct samples *m,
                   const struct samples *ratio, bool target)
{
    char per[24], q[24] = "–", goal[32] = "";
    double g = smp_med(m), x = ratio ? smp_med(ratio) : NAN;
    if (ratio != NULL)
        snprintf(q, sizeof q, "%.0f %%", 100 * x);
    if (target)
        snprintf(goal, sizeof goal, "≥ 90 %%: %s",
                 x >= 0.9 ? "**met**" : "**missed**");
    printf("| %s | %s | %d | %s | %.2f | %.2f | %s | %s |\n", op, be, m->n,
           bench_fmt_ns((double)(HDR + BIG) / g, per, sizeof per), g,
           (double)m->bytes / (double)m->ns, q, goal);
}

static void print_throughput(const struct spill *s, const struct tp_results *t)
{
    char be[2][32];
    backend_name(s, H_AUTO, be[0], sizeof be[0]);
    backend_name(s, H_PWRITE, be[1], sizeof be[1]);
    printf("\n#### Spill throughput (64 MiB objects)\n\n");
    printf("| operation | backend | files | per file (median) | GB/s (median) "
           "| GB/s (all files) | vs write(2) (median of same-step ratios) "
           "| target |\n");
    printf("|---|---|---:|---:|---:|---:|---:|---|\n");
    tp_row("write(2) 4 KiB + 64 MiB to a new file, no fsync (**baseline**)",
           "kernel", &t->gbs[OP_BASE], NULL, false);
    for (int h = 0; h < 2; h++)
        tp_row("move_to_disk: chunked crc32c + write + rename + free", be[h],
               &t->gbs[OP_MOVE + h], &t->ratio[OP_MOVE + h], true);
    for (int h = 0; h < 2; h++)
        tp_row("set past max_memsize: copy in + spill one victim", be[h],
               &t->gbs[OP_LIMIT + h], &t->ratio[OP_LIMIT + h], false);
    tp_row("fallocate + write(2), no fsync (context: what the engine does "
           "before its writes)", "kernel", &t->gbs[OP_FALLOC],
           &t->ratio[OP_FALLOC], false);
    tp_row("write(2) + fdatasync (context: the device)", "kernel", &t->sync,
           NULL, false);
}

static struct tp_results tp_res; /* one run per process */

int spill_throughput_run(struct spill *s)
{
    return throughput(s, &tp_res);
}

void spill_throughput_print(const struct spill *s)
{
    print_throughput(s, &tp_res);
}
