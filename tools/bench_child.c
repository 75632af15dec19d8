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
 *
 * The spill section (bench_spill.c) has two more kinds of reader here:
 *   probe    a process forked for one measurement, so its handle has no
 *            cached file mapping yet: time a get of a spilled object to its
 *            first byte (then the same get again, now cached), or a get
 *            plus a read of every byte;
 *   latency  a long-lived worker that times each get+touch+release of
 *            64-byte objects on its own and keeps the times in a
 *            log-linear histogram, for tails (p99) while something else
 *            spills.
 */
#include "bench.h"
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* ---- histogram ---------------------------------------------------------- */

static unsigned hist_bucket(uint64_t v)
{
    if (v < HIST_LIN)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= 6 */
    unsigned m = (unsigned)(v >> (e - 5)) & (HIST_SUB - 1);
    return HIST_LIN + (e - 6) * HIST_SUB + m;
}

/* The middle of bucket @p b. */
static double hist_mid(unsigned b)
{
    if (b < HIST_LIN)
        return b;
    unsigned e = (b - HIST_LIN) / HIST_SUB + 6, m = (b - HIST_LIN) % HIST_SUB;
    double lo = (double)((HIST_SUB + (uint64_t)m) << (e - 5));
    return lo + (double)(1ull << (e - 5)) / 2;
}

void hist_add(struct hist *h, uint64_t ns)
{
    h->b[hist_bucket(ns)]++;
    h->n++;
    h->max = ns > h->max ? ns : h->max;
}

void hist_merge(struct hist *into, const struct hist *h)
{
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        into->b[i] += h->b[i];
    into->n += h->n;
    into->max = h->max > into->max ? h->max : into->max;
}

double hist_quantile(const struct hist *h, double q)
{
    if (h->n == 0)
        return NAN;
    uint64_t rank = (uint64_t)ceil(q * (double)h->n), seen = 0;
    rank = rank ? rank : 1;
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        if ((seen += h->b[i]) >= rank)
            return fmin(hist_mid(i), (double)h->max);
    return (double)h->max;
}

/* ---- probes of spilled objects ------------------------------------------ */

uint64_t bench_sum(const void *p, size_t n)
{
    const unsigned char *c = p;
    uint64_t a[4] = {0, 0, 0, 0}, w;
    size_t i = 0;
    for (; i + 32 <= n; i += 32)
        for (int k = 0; k < 4; k++) {
            memcpy(&w, c + i + 8 * k, sizeof w);
            a[k] += w;
        }
    for (; i < n; i++)
        a[0] += c[i];
    return a[0] + a[1] + a[2] + a[3];
}

/* Get @p r and read its first byte: the time from the call to the byte. */
static int first_byte(mempool *p, mempool_dref r, double *ns,
                      uint64_t *sum, uint32_t *flags)
{
    mempool_view v;
    uint64_t t0 = cli_now_ns();
    int rc = mempool_get(p, r, &v);
    if (rc < 0)
        return rc;
    *sum += ((const volatile unsigned char *)v.data)[0];
    *ns = (double)(cli_now_ns() - t0);
    if (flags != NULL)
        *flags = v.flags;
    return mempool_release(p, &v);
}

static int probe_first_byte(mempool *p, const struct probe_job *j,
                            struct probe_result *out)
{
    int rc = first_byte(p, j->r, &out->first_ns, &out->sum, &out->view_flags);
    uint64_t n = j->repeats < 4096 ? j->repeats : 4096;
    double *again = malloc((n ? n : 1) * sizeof *again);
    if (again == NULL)
        return -ENOMEM;
    for (uint64_t i = 0; i < n && rc == 0; i++)
        rc = first_byte(p, j->r, &again[i], &out->sum, NULL);
    out->again_ns = rc == 0 ? bench_median(again, (int)n) : NAN;
    free(again);
    return rc;
}

static int probe_read_all(mempool *p, const struct probe_job *j,
                          struct probe_result *out)
{
    mempool_view v;
    uint64_t t0 = cli_now_ns();
    int rc = mempool_get(p, j->r, &v);
    if (rc < 0)
        return rc;
    out->sum += bench_sum(v.data, v.len);
    out->view_flags = v.flags;
    rc = mempool_release(p, &v);
    out->read_ns = (double)(cli_now_ns() - t0);
    return rc;
}

/* get_file + every byte + release of @p path; @p ns gets the time. */
static int file_read_all(mempool *p, const char *path, double *ns,
                         struct probe_result *out)
{
    mempool_fileref f;
    mempool_view v;
    memset(&f, 0, sizeof f);
    snprintf(f.path, sizeof f.path, "%s", path);
    uint64_t t0 = cli_now_ns();
    int rc = mempool_get_file(p, &f, &v);
    if (rc < 0)
        return rc;
    out->sum += bench_sum(v.data, v.len);
    out->view_flags = v.flags;
    rc = mempool_release(p, &v);
    *ns = (double)(cli_now_ns() - t0);
    return rc;
}

/* The file read whole twice in one handle: the second map finds the
 * handle's verdict (checked whole, unchanged) and skips the check. */
static int probe_file_again(mempool *p, const struct probe_job *j,
                            struct probe_result *out)
{
    double first;
    int rc = file_read_all(p, j->path, &first, out);
    return rc < 0 ? rc : file_read_all(p, j->path, &out->read_ns, out);
}

void bench_probe(const char *pool, const struct probe_job *j,
                 struct probe_result *out)
{
    memset(out, 0, sizeof *out);
    mempool_options o;
    mempool_options_init(&o);
    o.flags = j->noverify ? MEMPOOL_OPEN_NOVERIFY : 0;
    o.spiller = 0;
    mempool *p;
    int rc = mempool_open(pool, &o, &p);
    if (rc == 0) {
        rc = j->op == PROBE_READ_ALL     ? probe_read_all(p, j, out)
             : j->op == PROBE_FILE_AGAIN ? probe_file_again(p, j, out)
                                         : probe_first_byte(p, j, out);
        mempool_close(p);
    }
    out->err = rc;
}

/* ---- the latency reader ------------------------------------------------- */

/* Time each get+touch+release on its own for @p run_ns (@p h NULL: one
 * untimed pass over the objects). */
static int lat_run(mempool *p, const mempool_dref *drefs, uint64_t count,
                   uint64_t run_ns, struct hist *h, uint64_t *disk)
{
    uint64_t end = cli_now_ns() + run_ns, t1 = 0;
    unsigned acc = 0;
    for (uint64_t i = 0; h != NULL ? t1 < end : i < count; i++) {
        mempool_view v;
        uint64_t t0 = cli_now_ns();
        int rc = mempool_get(p, drefs[i % count], &v);
        if (rc < 0)
            return rc;
        acc += ((const volatile unsigned char *)v.data)[0];
        *disk += !(v.flags & MEMPOOL_VIEW_MEMORY);
        if ((rc = mempool_release(p, &v)) < 0)
            return rc;
        t1 = cli_now_ns();
        if (h != NULL)
            hist_add(h, t1 - t0);
    }
    bench_sink += acc;
    return 0;
}

/* Untimed passes until the parent's 'G' arrives: the objects stay the most
 * recently used while the parent starts a disturber. */
static int lat_wait_go(mempool *p, const struct kid *k,
                       const mempool_dref *drefs, uint64_t count, int *err)
{
    struct pollfd pf = {.fd = k->job_fd, .events = POLLIN};
    uint64_t untimed = 0;
    char go;
    while (*err == 0) {
        int n = poll(&pf, 1, 0);
        if (n < 0 && errno != EINTR)
            return -errno;
        if (n > 0)
            break;
        *err = lat_run(p, drefs, count, 0, NULL, &untimed);
    }
    return cli_read_all(k->job_fd, &go, 1);
}

static int lat_job(mempool *p, const struct kid *k, const struct lat_job *j,
                   const mempool_dref *drefs, uint64_t count,
                   struct lat_result *res)
{
    memset(res, 0, sizeof *res);
    int rc = cli_write_all(k->res_fd, "R", 1);
    if (rc == 0)
        rc = lat_wait_go(p, k, drefs, count, &res->err);
    if (rc == 0 && res->err == 0)
        res->err = lat_run(p, drefs, count, j->run_ns, &res->h,
                           &res->disk_views);
    return rc == 0 ? cli_write_all(k->res_fd, res, sizeof *res) : rc;
}

void bench_lat_main(const char *pool, const struct kid *k,
                    const mempool_dref *drefs, uint64_t count)
{
    mempool_options o;
    mempool_options_init(&o);
    o.flags = 0;
    o.spiller = 0;
    mempool *p;
    int rc = count == 0 ? -EINVAL : mempool_open(pool, &o, &p);
    struct lat_result *res = malloc(sizeof *res);
    struct lat_job j;
    while (rc == 0 && res != NULL &&
           cli_read_all(k->job_fd, &j, sizeof j) == 0 && j.op != 0)
        rc = lat_job(p, k, &j, drefs, count, res);
    if (rc < 0)
        fprintf(stderr, "mempool-bench: latency reader: %s\n",
                mempool_strerror(rc));
    if (rc == 0 && count > 0)
        mempool_close(p);
    _exit(rc == 0 && res != NULL ? 0 : 1);
}
