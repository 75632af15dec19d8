/* SPDX-License-Identifier: MIT */
/*
 * bench_child.c - the reader side of mempool-bench: a forked child that
 * opens its own worker on the pool and times gets (or bare reads) of objects
 * the parent set, as bench.h's protocol describes.
 *
 * A timed pass does, per object, mempool_get(), a read of the first and last
 * byte and mempool_release(); the baseline pass reads the same two bytes
 * through a plain pointer into the shared baseline mapping. The loop is the
 * same for both so the ratio compares only the work that differs.
 */
#include "bench.h"
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static volatile unsigned bench_sink; /* keeps the touches */

/* One get+touch+release, or one bare touch, of object @p i. */
static inline int child_op(mempool *p, const struct job *j,
                           const mempool_dref *drefs,
                           const unsigned char *bare, uint64_t i,
                           unsigned *acc)
{
    if (j->bare) {
        const volatile unsigned char *d = bare + j->bare_off + i * j->size;
        *acc += d[0] + d[j->size - 1];
        return 0;
    }
    mempool_view v;
    int rc = mempool_get(p, drefs[i], &v);
    if (rc < 0)
        return rc;
    const volatile unsigned char *d = v.data;
    *acc += d[0] + d[v.len - 1];
    return mempool_release(p, &v);
}

/* Run @p j's ops, recording one sample per batch into @p out (may be NULL
 * for an untimed warm-up). */
static int child_run(mempool *p, const struct job *j,
                     const mempool_dref *drefs, const unsigned char *bare,
                     double *out, uint64_t *nout)
{
    uint64_t total = j->count * j->passes, done = 0, n = 0;
    uint64_t batch = j->batch ? j->batch : total;
    unsigned acc = 0;
    while (done < total) {
        uint64_t todo = total - done < batch ? total - done : batch;
        uint64_t t0 = cli_now_ns();
        for (uint64_t k = 0; k < todo; k++) {
            int rc = child_op(p, j, drefs, bare, (done + k) % j->count, &acc);
            if (rc < 0)
                return rc;
        }
        if (out != NULL)
            out[n++] = (double)(cli_now_ns() - t0) / (double)todo;
        done += todo;
    }
    bench_sink += acc;
    if (nout != NULL)
        *nout = n;
    return 0;
}

/* Serve one job: read its DRefs, warm up, say ready, wait for go, run timed,
 * send the samples. */
static int child_job(mempool *p, const struct kid *k, const struct job *j,
                     mempool_dref *drefs, const unsigned char *bare,
                     double *samples)
{
    int rc = 0;
    uint64_t batch = j->batch ? j->batch : j->count * j->passes;
    if (j->count == 0 || j->count > MAX_ROUND || j->size == 0 ||
        j->passes == 0 || (j->count * j->passes + batch - 1) / batch > MAX_ROUND)
        return -EPROTO; /* the samples would not fit */
    if (!j->bare)
        rc = cli_read_all(k->job_fd, drefs, j->count * sizeof *drefs);
    struct job_result res = {0};
    if (rc == 0)
        res.err = child_run(p, j, drefs, bare, NULL, NULL);
    char go = 'R';
    if (rc == 0)
        rc = cli_write_all(k->res_fd, &go, 1);
    if (rc == 0)
        rc = cli_read_all(k->job_fd, &go, 1);
    if (rc < 0)
        return rc;
    uint64_t t0 = cli_now_ns();
    if (res.err == 0)
        res.err = child_run(p, j, drefs, bare, samples, &res.nsamples);
    res.elapsed_ns = cli_now_ns() - t0;
    rc = cli_write_all(k->res_fd, &res, sizeof res);
    if (rc == 0)
        rc = cli_write_all(k->res_fd, samples, res.nsamples * sizeof *samples);
    return rc;
}

void bench_child_main(const char *pool, const struct kid *k,
                      mempool_dref *drefs, const unsigned char *bare)
{
    mempool_options o;
    mempool_options_init(&o);
    o.flags = 0;
    mempool *p;
    int rc = mempool_open(pool, &o, &p);
    double *samples = malloc(MAX_ROUND * sizeof *samples);
    struct job j;
    while (rc == 0 && samples != NULL &&
           cli_read_all(k->job_fd, &j, sizeof j) == 0 && j.op == JOB_GET)
        rc = child_job(p, k, &j, drefs, bare, samples);
    if (rc < 0)
        fprintf(stderr, "mempool-bench: reader %d: %s\n", (int)getpid(),
                mempool_strerror(rc));
    if (rc == 0)
        mempool_close(p);
    _exit(rc == 0 && samples != NULL ? 0 : 1);
}
