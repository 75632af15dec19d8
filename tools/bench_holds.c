/* SPDX-License-Identifier: MIT */
/*
 * bench_holds.c - the holds section of mempool-bench: what it costs a
 * worker to hold many references (mempool_options.max_refs, the sized cell
 * tables of src/core/pin.c).
 *
 * The worker holds H references (H refcounted 8 B objects, H = 0, 3,000,
 * 100,000) and then times get+release of one 64 B object and put+delete of
 * a 64 B object, beside the same figures at H = 0 in the same run (the
 * baseline; the ratio is H's median over it). Before the tables were sized
 * per pool a worker's holds past 2,048 of one bucket region spilled into a
 * 16 KiB overflow region that every get and delete then scanned; the
 * figures show whether holding many references slows the hot path.
 */
#include "bench.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HOLDS_BATCH 20000
#define HOLDS_REPS  15

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

struct holds_fig {
    double get_ns, put_ns;
};

static int hold_refs(mempool *p, int n)
{
    mempool_put_options po = { 0, 0, MEMPOOL_PUT_REFCOUNTED };
    for (int i = 0; i < n; i++) {
        mempool_dref r;
        int rc = mempool_put_ex(p, &i, sizeof i, &po, &r);
        if (rc)
            return rc;
    }
    return 0;
}

/* Medians of HOLDS_REPS batches, in ns per operation. */
static int measure(mempool *p, int reps, struct holds_fig *f)
{
    double g[HOLDS_REPS], s[HOLDS_REPS];
    char buf[64];
    mempool_dref r, x;
    mempool_view v;
    int rc;
    memset(buf, 7, sizeof buf);
    if ((rc = mempool_put(p, buf, sizeof buf, &r)))
        return rc;
    for (int k = 0; k < reps; k++) {
        double t = now_ns();
        for (int i = 0; i < HOLDS_BATCH; i++) {
            if ((rc = mempool_get(p, r, &v)) ||
                (rc = mempool_release(p, &v)))
                return rc;
        }
        g[k] = (now_ns() - t) / HOLDS_BATCH;
        t = now_ns();
        for (int i = 0; i < HOLDS_BATCH / 4; i++) {
            if ((rc = mempool_put(p, buf, sizeof buf, &x)) ||
                (rc = mempool_delete(p, x)))
                return rc;
        }
        s[k] = (now_ns() - t) / (HOLDS_BATCH / 4.0);
    }
    f->get_ns = bench_median(g, reps);
    f->put_ns = bench_median(s, reps);
    return 0;
}

static int one(int held, int reps, struct holds_fig *f)
{
    char name[64];
    mempool_options o;
    mempool *p;
    int rc;
    snprintf(name, sizeof name, "bench-holds-%d", (int)getpid());
    mempool_options_init(&o);
    o.flags = MEMPOOL_OPEN_CREATE | MEMPOOL_OPEN_EXCL;
    o.arena_bytes = 256ull << 20;
    o.max_objects = 262144;
    o.max_refs = 131072;
    o.spiller = 0;
    if ((rc = mempool_open(name, &o, &p)))
        return rc;
    rc = hold_refs(p, held);
    if (!rc)
        rc = measure(p, reps, f);
    mempool_close(p);
    mempool_destroy(name);
    return rc;
}

int bench_holds(const struct holds_opts *o)
{
    static const int held[] = { 0, 3000, 100000 };
    struct holds_fig f[3];
    int reps = o->quick ? 3 : HOLDS_REPS, rc;
    char a[32], b[32];
    for (int i = 0; i < 3; i++) {
        fprintf(stderr, "mempool-bench: holds: %d references ...\n", held[i]);
        if ((rc = one(held[i], reps, &f[i])))
            return rc;
    }
    printf("\n### Holding many references (max_refs 131072; baseline: the "
           "same worker holding none)\n\n"
           "| references held | get+release (64 B) | vs 0 held | "
           "put+delete (64 B) | vs 0 held |\n|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < 3; i++)
        printf("| %d | %s | %.2f× | %s | %.2f× |\n", held[i],
               bench_fmt_ns(f[i].get_ns, a, sizeof a),
               f[i].get_ns / f[0].get_ns,
               bench_fmt_ns(f[i].put_ns, b, sizeof b),
               f[i].put_ns / f[0].put_ns);
    return 0;
}
