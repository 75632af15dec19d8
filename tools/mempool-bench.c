/* SPDX-License-Identifier: MIT */
/*
 * mempool-bench.c - measure mempool next to baselines run in the same
 * process tree, and print markdown tables ready to paste into the README.
 * Seven sections (--section core|spill|codec|handoff|fresh|scale|holds|all,
 * default all),
 * each with its own pool; a machine line comes first.
 *
 * core: set, get (from another process) and delete for a few object sizes.
 *   set      mempool_put() from a prefaulted private buffer; the baseline is
 *            memcpy() into a prefaulted shm mapping (shm_open, ftruncate,
 *            mmap, every page touched) at the same object stride.
 *   get      in a forked child that received the DRefs over a pipe:
 *            mempool_get(), read the first and last byte, mempool_release();
 *            the baseline reads the same two bytes through a bare pointer
 *            into the shared mapping.
 *   delete   mempool_delete(); there is no baseline.
 * Latencies: set and delete of small objects (< 64 KiB) are timed in
 * batches of 1000 ops and each batch gives one per-op sample, so
 * clock_gettime() costs nothing; larger ones are timed per op. get does not
 * scale with the size (it reads two bytes), so it is batched at every size,
 * cycling over the objects alive. Median and p99 are over those samples.
 * Throughput: ops/s of get from 1 child, and from 2 children at once, each
 * on its own objects; GB/s of set.
 *
 * Both sides are measured warm: the arena is filled and emptied once before
 * timing, as the baseline mapping is prefaulted, and the children do one
 * untimed pass before every timed one. (A fresh pool's first pass pays page
 * faults and tmpfs page zeroing; `mempool demo` shows that cold figure.)
 * The children and their pipe protocol live in bench_child.c and bench.h.
 * The pool has a unique name (bench-PID) and is destroyed at the end; the
 * baseline shm object is unlinked as soon as it is mapped.
 *
 * spill: spill throughput against write(2), first-byte latency of gets of
 * spilled objects, cold read-back against a plain mmap, and get tails while
 * something spills; bench_spill.c says how.
 *
 * codec: set_obj and get_obj of a 1M-element string column and a 1M-row
 * table (also of a spilled table, in a fresh process) against handing the
 * same bytes over with write() + read() into a malloc'd buffer, through a
 * pipe and through a file; bench_codec_section.c says how.
 *
 * handoff: channel ping-pong and streams, get_wait and name_get against
 * pipes carrying DRefs or payloads; bench_handoff.c says how.
 *
 * fresh: what a new process sees (first set into pages it never mapped,
 * first read of an object) and 1 vs 2 process throughput of get and set;
 * bench_fresh.c says how.
 *
 * scale: set, random get, delete and a set that must spill at 1e3 .. 2.5e5
 * live objects against raw shared memory and write(2), and how far the
 * spilled victims are from the exact LRU choice; bench_scale.c says how.
 */
#include "bench.h"
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#define KIB (1ull << 10)
#define MIB (1ull << 20)
#define GIB (1ull << 30)
#define MAX_SIZES  8
#define NKIDS      2
#define GET_BATCH  1000 /* get costs the same at any size: always batched */

/* ---- options and plan -------------------------------------------------- */

enum {
    SECTION_CORE = 1, SECTION_SPILL = 2, SECTION_CODEC = 4,
    SECTION_HANDOFF = 8, SECTION_FRESH = 16, SECTION_SCALE = 32,
    SECTION_HOLDS = 64, SECTION_ALL = 127
};

struct options {
    bool        quick;
    int         sections; /* SECTION_* bits */
    const char *dir;      /* --dir: where the spill section writes */
    long        stream;   /* --stream: objects per handoff stream run */
    int         nsizes;
    uint64_t    sizes[MAX_SIZES];
};

/* How one size is run; see plan_for(). */
struct plan {
    uint64_t size;
    uint64_t batch;   /* ops per latency sample */
    uint64_t round;   /* objects alive per child at once */
    uint64_t total;   /* set/delete ops in the latency phase */
    uint64_t get_ops; /* get ops per latency round (batches of GET_BATCH) */
    uint64_t passes;  /* passes over a round in a throughput run */
    int      repeats; /* throughput runs; the median is kept */
};

static uint64_t round_budget(const struct options *o)
{
    return o->quick ? 32 * MIB : 128 * MIB;
}

static struct plan plan_for(const struct options *o, uint64_t size)
{
    struct plan pl = {.size = size, .batch = size < 64 * KIB ? 1000 : 1};
    uint64_t round = round_budget(o) / size;
    round = round > MAX_ROUND ? MAX_ROUND : round < 1 ? 1 : round;
    pl.round = round < pl.batch ? pl.batch : round / pl.batch * pl.batch;
    uint64_t samples;
    if (pl.batch > 1) {
        samples = o->quick ? 10 : 100;
    } else {
        samples = (o->quick ? 256 * MIB : 2 * GIB) / size;
        uint64_t lo = o->quick ? 3 : 8, hi = o->quick ? 50 : 500;
        samples = samples < lo ? lo : samples > hi ? hi : samples;
    }
    pl.total = samples * pl.batch;
    uint64_t rounds = (pl.total + pl.round - 1) / pl.round;
    uint64_t get_samples = o->quick ? 10 : 100;
    pl.get_ops = GET_BATCH * ((get_samples + rounds - 1) / rounds);
    uint64_t target = o->quick ? 50000 : 500000;
    pl.passes = (target + pl.round - 1) / pl.round;
    pl.repeats = o->quick ? 1 : 3;
    return pl;
}

/* ---- samples ----------------------------------------------------------- */

/* Per-op latency samples in ns, plus the totals for a rate. */
struct metric {
    double  *v;
    size_t   n, cap;
    uint64_t ops, ns, bytes;
};

static int metric_add(struct metric *m, uint64_t ns, uint64_t ops,
                      uint64_t bytes)
{
    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 256;
        double *v = realloc(m->v, cap * sizeof *v);
        if (v == NULL)
            return -ENOMEM;
        m->v = v;
        m->cap = cap;
    }
    m->v[m->n++] = (double)ns / (double)ops;
    m->ops += ops;
    m->ns += ns;
    m->bytes += bytes;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank quantile @p q of the samples (sorts them). */
static double quantile(struct metric *m, double q)
{
    if (m->n == 0)
        return NAN;
    qsort(m->v, m->n, sizeof *m->v, cmp_double);
    size_t rank = (size_t)ceil(q * (double)m->n);
    return m->v[rank > 0 ? rank - 1 : 0];
}

/* ---- the benchmark's state --------------------------------------------- */

struct bench {
    struct options o;
    char           pool[64];
    mempool       *p;
    unsigned char *src;      /* source of every set, prefaulted */
    uint64_t       src_len;
    unsigned char *bare;     /* the baseline's shared mapping */
    uint64_t       bare_len;
    mempool_dref  *drefs;    /* NKIDS * MAX_ROUND */
    struct kid     kid[NKIDS];
};

/* ---- parent side: children --------------------------------------------- */

static int start_kid(struct bench *b, int idx)
{
    int job[2], res[2];
    if (pipe2(job, O_CLOEXEC) < 0)
        return -errno;
    if (pipe2(res, O_CLOEXEC) < 0) {
        int err = -errno;
        close(job[0]);
        close(job[1]);
        return err;
    }
    pid_t pid = fork();
    if (pid == 0) {
        for (int i = 0; i < idx; i++) { /* earlier kids' parent ends */
            close(b->kid[i].job_fd);
            close(b->kid[i].res_fd);
        }
        close(job[1]);
        close(res[0]);
        struct kid me = {0, job[0], res[1]};
        bench_child_main(b->pool, &me, b->drefs, b->bare);
    }
    close(job[0]);
    close(res[1]);
    b->kid[idx] = (struct kid){pid, job[1], res[0]};
    return pid < 0 ? -errno : 0;
}

/* Ask every started child to quit (or kill it) and reap it. @return the
 * number that failed. */
static int stop_kids(struct bench *b, bool kill_them)
{
    int failed = 0;
    for (int i = 0; i < NKIDS; i++) {
        struct kid *k = &b->kid[i];
        if (k->pid <= 0)
            continue;
        struct job quit = {.op = JOB_QUIT};
        if (kill_them || cli_write_all(k->job_fd, &quit, sizeof quit) < 0)
            kill(k->pid, SIGKILL);
        close(k->job_fd);
        close(k->res_fd);
        int st = 0;
        while (waitpid(k->pid, &st, 0) < 0 && errno == EINTR)
            ;
        failed += !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        k->pid = 0;
    }
    return failed;
}

/* Send job @p j (and its DRefs) to child @p k. */
static int send_job(struct kid *k, const struct job *j,
                    const mempool_dref *drefs)
{
    int rc = cli_write_all(k->job_fd, j, sizeof *j);
    if (rc == 0 && !j->bare)
        rc = cli_write_all(k->job_fd, drefs, j->count * sizeof *drefs);
    return rc;
}

/* Receive child @p k's result; samples go to @p m when it is not NULL. */
static int recv_result(struct kid *k, struct metric *m, uint64_t batch,
                       uint64_t *elapsed)
{
    struct job_result res;
    int rc = cli_read_all(k->res_fd, &res, sizeof res);
    if (rc < 0)
        return rc;
    if (res.nsamples > MAX_ROUND)
        return -EPROTO;
    double *v = malloc(res.nsamples * sizeof *v + 1);
    if (v == NULL)
        return -ENOMEM;
    rc = cli_read_all(k->res_fd, v, res.nsamples * sizeof *v);
    for (uint64_t i = 0; i < res.nsamples && rc == 0 && m != NULL; i++)
        rc = metric_add(m, (uint64_t)llround(v[i] * (double)batch), batch, 0);
    free(v);
    *elapsed = res.elapsed_ns;
    return rc < 0 ? rc : res.err;
}

/* Run jobs @p j[0..nkids) on children at once: send, wait until all are
 * ready, start all, collect. @p elapsed gets the slowest child's time. */
static int run_kids(struct bench *b, int nkids, const struct job *j,
                    struct metric *m, uint64_t *elapsed)
{
    int rc = 0;
    for (int i = 0; i < nkids && rc == 0; i++)
        rc = send_job(&b->kid[i], &j[i], b->drefs + (uint64_t)i * MAX_ROUND);
    char c;
    for (int i = 0; i < nkids && rc == 0; i++)
        rc = cli_read_all(b->kid[i].res_fd, &c, 1);
    for (int i = 0; i < nkids && rc == 0; i++)
        rc = cli_write_all(b->kid[i].job_fd, "G", 1);
    *elapsed = 0;
    for (int i = 0; i < nkids && rc == 0; i++) {
        uint64_t e = 0;
        rc = recv_result(&b->kid[i], m, j[i].batch ? j[i].batch : 1, &e);
        *elapsed = e > *elapsed ? e : *elapsed;
    }
    return rc;
}

/* ---- parent side: one size --------------------------------------------- */

struct results {
    struct metric set, bare_set, get, bare_get, del;
    double get_ops[2], bare_ops[2]; /* ops/s with 1 and 2 children */
};

/* Set objects [first, first+n) of the DRef array, timing batches into @p m
 * (NULL: untimed). */
static int do_sets(struct bench *b, const struct plan *pl, uint64_t first,
                   uint64_t n, struct metric *m)
{
    for (uint64_t i = 0; i < n; i += pl->batch) {
        uint64_t t0 = cli_now_ns();
        for (uint64_t k = i; k < i + pl->batch; k++) {
            int rc = mempool_put(b->p, b->src, pl->size, &b->drefs[first + k]);
            if (rc < 0)
                return rc;
        }
        uint64_t ns = cli_now_ns() - t0;
        if (m != NULL && metric_add(m, ns, pl->batch, pl->batch * pl->size))
            return -ENOMEM;
    }
    return 0;
}

static int do_bare_sets(struct bench *b, const struct plan *pl, uint64_t n,
                        struct metric *m)
{
    for (uint64_t i = 0; i < n; i += pl->batch) {
        uint64_t t0 = cli_now_ns();
        for (uint64_t k = i; k < i + pl->batch; k++)
            memcpy(b->bare + k * pl->size, b->src, pl->size);
        uint64_t ns = cli_now_ns() - t0;
        if (metric_add(m, ns, pl->batch, pl->batch * pl->size))
            return -ENOMEM;
    }
    return 0;
}

static int do_deletes(struct bench *b, const struct plan *pl, uint64_t n,
                      struct metric *m)
{
    for (uint64_t i = 0; i < n; i += pl->batch) {
        uint64_t t0 = cli_now_ns();
        for (uint64_t k = i; k < i + pl->batch; k++) {
            int rc = mempool_delete(b->p, b->drefs[k]);
            if (rc < 0)
                return rc;
        }
        uint64_t ns = cli_now_ns() - t0;
        if (m != NULL && metric_add(m, ns, pl->batch, 0))
            return -ENOMEM;
    }
    return 0;
}

/* One latency round of @p n objects: set, bare set, get, bare get, delete. */
static int latency_round(struct bench *b, const struct plan *pl, uint64_t n,
                         struct results *r)
{
    struct job j = {.op = JOB_GET, .size = pl->size, .count = n,
                    .batch = GET_BATCH,
                    .passes = (pl->get_ops + n - 1) / n};
    uint64_t e;
    int rc = do_sets(b, pl, 0, n, &r->set);
    if (rc == 0)
        rc = do_bare_sets(b, pl, n, &r->bare_set);
    if (rc == 0)
        rc = run_kids(b, 1, &j, &r->get, &e);
    j.bare = 1;
    if (rc == 0)
        rc = run_kids(b, 1, &j, &r->bare_get, &e);
    if (rc == 0)
        rc = do_deletes(b, pl, n, &r->del);
    return rc;
}

/* Get ops/s with @p nkids children, each on its own round of objects. */
static int throughput_run(struct bench *b, const struct plan *pl, int nkids,
                          bool bare, double *ops)
{
    struct job j[NKIDS];
    for (int i = 0; i < nkids; i++)
        j[i] = (struct job){.op = JOB_GET, .bare = bare, .size = pl->size,
                            .count = pl->round, .batch = 0,
                            .passes = pl->passes,
                            .bare_off = (uint64_t)i * pl->round * pl->size};
    uint64_t elapsed;
    int rc = run_kids(b, nkids, j, NULL, &elapsed);
    *ops = (double)(nkids * pl->round * pl->passes) * 1e9 /
           (double)(elapsed ? elapsed : 1);
    return rc;
}

/* The median over repeats of each of the four throughput figures. */
static int throughput(struct bench *b, const struct plan *pl,
                      struct results *r)
{
    for (int i = 0; i < NKIDS; i++) {
        int rc = do_sets(b, pl, (uint64_t)i * MAX_ROUND, pl->round, NULL);
        if (rc < 0)
            return rc;
    }
    double v[4][5];
    int rc = 0;
    for (int rep = 0; rep < pl->repeats && rc == 0; rep++) {
        rc = throughput_run(b, pl, 1, false, &v[0][rep]);
        if (rc == 0)
            rc = throughput_run(b, pl, 2, false, &v[1][rep]);
        if (rc == 0)
            rc = throughput_run(b, pl, 1, true, &v[2][rep]);
        if (rc == 0)
            rc = throughput_run(b, pl, 2, true, &v[3][rep]);
    }
    for (int i = 0; i < NKIDS && rc == 0; i++)
        for (uint64_t k = 0; k < pl->round && rc == 0; k++)
            rc = mempool_delete(b->p, b->drefs[(uint64_t)i * MAX_ROUND + k]);
    if (rc < 0)
        return rc;
    r->get_ops[0] = bench_median(v[0], pl->repeats);
    r->get_ops[1] = bench_median(v[1], pl->repeats);
    r->bare_ops[0] = bench_median(v[2], pl->repeats);
    r->bare_ops[1] = bench_median(v[3], pl->repeats);
    return 0;
}

static int bench_size(struct bench *b, uint64_t size, struct results *r)
{
    struct plan pl = plan_for(&b->o, size);
    int rc = 0;
    for (uint64_t done = 0; done < pl.total && rc == 0; done += pl.round) {
        uint64_t n = pl.total - done < pl.round ? pl.total - done : pl.round;
        rc = latency_round(b, &pl, n, r);
    }
    return rc == 0 ? throughput(b, &pl, r) : rc;
}

/* ---- output ------------------------------------------------------------ */

/* One table row; ops2 <= 0 and ratio <= 0 print as "–", and GB/s only when
 * the metric moved bytes. */
static void print_row(const char *size, const char *op, struct metric *m,
                      double ops1, double ops2, double ratio)
{
    char med[24], p99[24], o1[24], o2[24], gbs[24] = "–", rat[24] = "–";
    if (m->bytes > 0)
        bench_fmt_rate((double)m->bytes / (double)m->ns, gbs, sizeof gbs);
    if (ratio > 0)
        snprintf(rat, sizeof rat, "%.1f×", ratio);
    printf("| %s | %s | %s | %s | %s | %s | %s | %s |\n", size, op,
           bench_fmt_ns(quantile(m, 0.5), med, sizeof med),
           bench_fmt_ns(quantile(m, 0.99), p99, sizeof p99),
           bench_fmt_rate(ops1, o1, sizeof o1),
           bench_fmt_rate(ops2, o2, sizeof o2), gbs, rat);
}

static double rate(const struct metric *m)
{
    return m->ns ? (double)m->ops * 1e9 / (double)m->ns : 0;
}

static void print_rows(uint64_t size, struct results *r)
{
    char sz[32];
    cli_fmt_bytes(size, sz, sizeof sz);
    double set_ratio = quantile(&r->set, 0.5) / quantile(&r->bare_set, 0.5);
    double get_ratio = quantile(&r->get, 0.5) / quantile(&r->bare_get, 0.5);
    print_row(sz, "set", &r->set, rate(&r->set), 0, set_ratio);
    print_row(sz, "bare: memcpy into shm", &r->bare_set, rate(&r->bare_set),
              0, 0);
    print_row(sz, "get+touch+release (other process)", &r->get,
              r->get_ops[0], r->get_ops[1], get_ratio);
    print_row(sz, "bare: pointer read (other process)", &r->bare_get,
              r->bare_ops[0], r->bare_ops[1], 0);
    print_row(sz, "delete", &r->del, rate(&r->del), 0, 0);
}

static void cpu_model(char *buf, size_t len)
{
    snprintf(buf, len, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && colon != NULL) {
            snprintf(buf, len, "%s", colon + 2);
            buf[strcspn(buf, "\n")] = '\0';
            break;
        }
    }
    if (f != NULL)
        fclose(f);
}

/* The machine line: version, CPUs, CPU model, memory, kernel. */
static void print_machine(const struct options *o)
{
    struct utsname u;
    char model[128], mem[32];
    cpu_model(model, sizeof model);
    if (uname(&u) < 0)
        snprintf(u.release, sizeof u.release, "?");
    uint64_t ram = (uint64_t)sysconf(_SC_PHYS_PAGES) *
                   (uint64_t)sysconf(_SC_PAGESIZE);
    printf("mempool-bench %s: %ld CPUs (nproc), %s, %s RAM, Linux %s%s\n",
           mempool_version(), sysconf(_SC_NPROCESSORS_ONLN), model,
           cli_fmt_bytes(ram, mem, sizeof mem), u.release,
           o->quick ? " (--quick: few iterations, numbers are rough)" : "");
}

static void print_header(void)
{
    printf("\n### set, get, delete\n\n");
    printf("| size | operation | median | p99 | ops/s 1 proc | ops/s 2 procs "
           "| GB/s | mempool/bare (median) |\n");
    printf("|---:|---|---:|---:|---:|---:|---:|---:|\n");
}

static void print_footer(void)
{
    printf("\nLatencies are per operation, from batches of 1000 ops (set and "
           "delete of objects of 64 KiB and more: single ops). get reads the "
           "first and last byte. Both the arena and the bare mapping were "
           "touched once before timing, so first-touch page faults are not "
           "in these figures. ops/s with 2 procs is the sum of two "
           "processes each reading its own objects at once. \"bare\" is the "
           "same work on a plain prefaulted shm mapping, without mempool.\n");
}

/* ---- setup and teardown ------------------------------------------------ */

static uint64_t max_round_bytes(const struct options *o)
{
    uint64_t most = 0;
    for (int i = 0; i < o->nsizes; i++) {
        struct plan pl = plan_for(o, o->sizes[i]);
        most = pl.round * pl.size > most ? pl.round * pl.size : most;
    }
    return most;
}

/* Map @p len bytes of a fresh shm object, touch every page, unlink it. */
static int map_bare(struct bench *b, uint64_t len)
{
    char name[64];
    snprintf(name, sizeof name, "/mempool-bench-bare.%d", (int)getpid());
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return -errno;
    int rc = ftruncate(fd, (off_t)len) < 0 ? -errno : 0;
    void *m = rc ? MAP_FAILED : mmap(NULL, len, PROT_READ | PROT_WRITE,
                                     MAP_SHARED, fd, 0);
    if (rc == 0 && m == MAP_FAILED)
        rc = -errno;
    close(fd);
    shm_unlink(name);
    if (rc < 0)
        return rc;
    b->bare = m;
    b->bare_len = len;
    for (uint64_t off = 0; off < len; off += 4096)
        b->bare[off] = 1;
    return 0;
}

/* Touch the whole arena once in this process, as the baseline's mapping is,
 * by filling it with 1 MiB objects and deleting them: the tables then show
 * steady state, not first-touch page faults. */
static int prefault_pool(struct bench *b, uint64_t arena)
{
    uint64_t most = arena / MIB, n = 0;
    mempool_dref *r = most ? malloc(most * sizeof *r) : NULL;
    void *zero = calloc(1, MIB);
    int rc = 0;
    if (!most || !r || !zero) {
        free(zero);
        free(r);
        return most ? -ENOMEM : 0;
    }
    while (n < most && (rc = mempool_put(b->p, zero, MIB, &r[n])) == 0)
        n++;
    if (rc == -ENOMEM || rc == -ENOSPC)
        rc = 0; /* full: done */
    for (uint64_t i = 0; i < n && rc == 0; i++)
        rc = mempool_delete(b->p, r[i]);
    free(zero);
    free(r);
    return rc;
}

static int setup(struct bench *b)
{
    uint64_t round_bytes = max_round_bytes(&b->o);
    snprintf(b->pool, sizeof b->pool, "bench-%d", (int)getpid());
    mempool_options o;
    mempool_options_init(&o);
    o.flags = MEMPOOL_OPEN_CREATE | MEMPOOL_OPEN_EXCL;
    o.arena_bytes = b->o.quick ? 512 * MIB : GIB;
    if (o.arena_bytes < 4 * round_bytes)
        o.arena_bytes = 4 * round_bytes;
    b->src_len = 0;
    for (int i = 0; i < b->o.nsizes; i++)
        b->src_len = b->o.sizes[i] > b->src_len ? b->o.sizes[i] : b->src_len;
    b->src = malloc(b->src_len ? b->src_len : 1);
    b->drefs = calloc(NKIDS * MAX_ROUND, sizeof *b->drefs);
    if (b->src == NULL || b->drefs == NULL)
        return -ENOMEM;
    memset(b->src, 0xa5, b->src_len);
    int rc = map_bare(b, NKIDS * round_bytes);
    if (rc < 0)
        return rc;
    rc = mempool_open(b->pool, &o, &b->p);
    return rc < 0 ? rc : prefault_pool(b, o.arena_bytes);
}

/* ---- command line ------------------------------------------------------ */

static const char usage[] =
    "Usage: mempool-bench [--quick]\n"
    "                     [--section core|spill|codec|handoff|fresh|scale|\n"
    "                                holds|all]\n"
    "                     [--sizes LIST] [--dir DIR] [--stream N]\n"
    "Measure mempool against same-run baselines; print markdown tables.\n"
    "  core:  set, get+release from another process and delete against a\n"
    "         bare shm mapping, per size;\n"
    "  spill: spill throughput (io_uring and pwrite) against write(2) to the\n"
    "         same directory, first-byte latency of gets of spilled objects,\n"
    "         cold read-back against a plain mmap, and get tails while\n"
    "         another process spills;\n"
    "  codec: set_obj and get_obj of a 1M-element string column and a\n"
    "         1M-row table, also spilled, against write() + read() of the\n"
    "         same bytes through a pipe and a file;\n"
    "  handoff: channel ping-pong, 1→1 and 4×4 streams, get_wait wake-up\n"
    "         and name_get against pipes carrying DRefs or payloads;\n"
    "  fresh: first set and first read in a new process (no pre-touch)\n"
    "         against memcpy into touched memory and a second read, and\n"
    "         get and set throughput of 2 processes against 1.\n"
    "  scale: set, random get, delete and a set that must spill, at 1e3,\n"
    "         1e4, 1e5 and 2.5e5 live 64 B objects, against raw shared\n"
    "         memory and write(2); ranks of the victims chosen.\n"
    "  holds: get+release and put+delete while the worker holds 0, 3,000\n"
    "         and 100,000 references (the first is the baseline).\n"
    "  --quick         few iterations (CI smoke run, a few seconds; codec:\n"
    "                  100,000 rows)\n"
    "  --section S     core, spill, codec, handoff, fresh, scale, holds or\n"
    "                  all (default all)\n"
    "  --sizes LIST    core: comma-separated object sizes, suffixes K, M, G\n"
    "                  (default 64,4K,1M,64M; at most 8, each 1 B..256 MiB)\n"
    "  --dir DIR       spill, codec, scale: make the temp dir in DIR (default:\n"
    "                  /var/tmp, else the working directory (spill), else\n"
    "                  /tmp; spill prefers a disk to tmpfs)\n"
    "  --stream N      handoff: objects per stream run (default 1,000,000;\n"
    "                  --quick 20,000)\n";

static int parse_sizes(struct options *o, char *list)
{
    o->nsizes = 0;
    for (char *save, *tok = strtok_r(list, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        uint64_t v;
        if (o->nsizes == MAX_SIZES || cli_parse_size(tok, &v) < 0 || v == 0 ||
            v > 256 * MIB)
            return -EINVAL;
        o->sizes[o->nsizes++] = v;
    }
    return o->nsizes > 0 ? 0 : -EINVAL;
}

static int parse_section(struct options *o, const char *s)
{
    static const struct { const char *name; int bits; } names[] = {
        { "core", SECTION_CORE },       { "spill", SECTION_SPILL },
        { "codec", SECTION_CODEC },     { "handoff", SECTION_HANDOFF },
        { "fresh", SECTION_FRESH },     { "scale", SECTION_SCALE },
        { "holds", SECTION_HOLDS },     { "all", SECTION_ALL },
    };
    o->sections = 0;
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        if (strcmp(s, names[k].name) == 0)
            o->sections = names[k].bits;
    return o->sections ? 0 : -EINVAL;
}

/* @return 0 to run, 1 after --help, CLI_USAGE on a bad command line. */
static int parse_args(struct options *o, int argc, char **argv)
{
    static const uint64_t defaults[] = {64, 4 * KIB, MIB, 64 * MIB};
    o->nsizes = 4;
    o->sections = SECTION_ALL;
    memcpy(o->sizes, defaults, sizeof defaults);
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(usage, stdout);
            return 1;
        }
        bool ok = strcmp(argv[i], "--quick") == 0, more = i + 1 < argc;
        if (ok)
            o->quick = true;
        else if (strcmp(argv[i], "--sizes") == 0 && more)
            ok = parse_sizes(o, argv[++i]) == 0;
        else if (strcmp(argv[i], "--section") == 0 && more)
            ok = parse_section(o, argv[++i]) == 0;
        else if (strcmp(argv[i], "--stream") == 0 && more)
            ok = (o->stream = atol(argv[++i])) >= 1000 &&
                 o->stream <= 100000000;
        else if (strcmp(argv[i], "--dir") == 0 && more)
            ok = (o->dir = argv[++i])[0] != '\0';
        if (!ok) {
            fprintf(stderr, "mempool-bench: bad argument '%s'\n%s", argv[i],
                    usage);
            return CLI_USAGE;
        }
    }
    return 0;
}

static int run_all(struct bench *b)
{
    static struct results r[MAX_SIZES];
    int rc = 0;
    for (int i = 0; i < b->o.nsizes && rc == 0; i++) {
        char sz[32];
        fprintf(stderr, "mempool-bench: core: %s ...\n",
                cli_fmt_bytes(b->o.sizes[i], sz, sizeof sz));
        rc = bench_size(b, b->o.sizes[i], &r[i]);
    }
    if (rc < 0)
        return rc;
    print_header();
    for (int i = 0; i < b->o.nsizes; i++)
        print_rows(b->o.sizes[i], &r[i]);
    print_footer();
    return 0;
}

/* The core section: its own pool and reader children. */
static int run_core(struct bench *b)
{
    int rc = setup(b);
    const char *what = "setup";
    for (int i = 0; i < NKIDS && rc == 0; i++)
        rc = start_kid(b, i);
    if (rc == 0) {
        what = "benchmark";
        rc = run_all(b);
    }
    if (rc < 0)
        fprintf(stderr, "mempool-bench: core %s: %s\n", what,
                mempool_strerror(rc));
    int failed = stop_kids(b, rc < 0);
    if (b->p != NULL) {
        mempool_close(b->p);
        mempool_destroy(b->pool);
    }
    if (failed > 0)
        fprintf(stderr, "mempool-bench: %d child process(es) failed\n", failed);
    return rc < 0 ? rc : failed > 0 ? -ECHILD : 0;
}

int main(int argc, char **argv)
{
    static struct bench b;
    int rc = parse_args(&b.o, argc, argv);
    if (rc != 0)
        return rc == 1 ? CLI_OK : rc;
    signal(SIGPIPE, SIG_IGN);
    print_machine(&b.o);
    fflush(stdout);
    int core = 0, spill = 0, codec = 0;
    if (b.o.sections & SECTION_CORE)
        core = run_core(&b);
    fflush(stdout);
    if (b.o.sections & SECTION_SPILL) {
        struct spill_opts so = {.quick = b.o.quick, .dir = b.o.dir};
        spill = bench_spill(&so);
        if (spill < 0)
            fprintf(stderr, "mempool-bench: spill: %s\n",
                    mempool_strerror(spill));
    }
    fflush(stdout);
    if (b.o.sections & SECTION_CODEC) {
        struct codec_opts co = {.quick = b.o.quick, .dir = b.o.dir};
        codec = bench_codec(&co);
        if (codec < 0)
            fprintf(stderr, "mempool-bench: codec: %s\n",
                    mempool_strerror(codec));
    }
    fflush(stdout);
    int handoff = 0;
    if (b.o.sections & SECTION_HANDOFF) {
        struct handoff_opts ho = {.quick = b.o.quick, .stream = b.o.stream};
        handoff = bench_handoff(&ho);
        if (handoff < 0)
            fprintf(stderr, "mempool-bench: handoff: %s\n",
                    mempool_strerror(handoff));
    }
    fflush(stdout);
    int fresh = 0;
    if (b.o.sections & SECTION_FRESH) {
        struct fresh_opts fo = {.quick = b.o.quick};
        fresh = bench_fresh(&fo);
        if (fresh < 0)
            fprintf(stderr, "mempool-bench: fresh: %s\n",
                    mempool_strerror(fresh));
    }
    fflush(stdout);
    int scale = 0;
    if (b.o.sections & SECTION_SCALE) {
        struct scale_opts so = {.quick = b.o.quick, .dir = b.o.dir};
        scale = bench_scale(&so);
        if (scale < 0)
            fprintf(stderr, "mempool-bench: scale: %s\n",
                    mempool_strerror(scale));
    }
    fflush(stdout);
    int holds = 0;
    if (b.o.sections & SECTION_HOLDS) {
        struct holds_opts ho = {.quick = b.o.quick};
        holds = bench_holds(&ho);
        if (holds < 0)
            fprintf(stderr, "mempool-bench: holds: %s\n",
                    mempool_strerror(holds));
    }
    return core == 0 && spill == 0 && codec == 0 && handoff == 0 &&
                   fresh == 0 && scale == 0 && holds == 0
               ? CLI_OK
               : CLI_FAIL;
}
