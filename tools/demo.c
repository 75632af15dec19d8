/* SPDX-License-Identifier: MIT */
/*
 * demo.c - `mempool demo`: one producer and several consumer processes share
 * objects through a pool, end to end, and check every byte.
 *
 * The producer creates a fresh pool, sets objects of mixed sizes (64 B to
 * 64 MiB) cut from a deterministic pseudo-random pattern, and hands each
 * DRef to the consumers round-robin through one pool channel per consumer
 * ("demo.<i>", mempool_chan_send: no side channel carries the objects).
 * Each consumer is this same binary re-executed as the hidden subcommand
 * `demo-consumer`, so it is a separate program with its own mapping, not a
 * forked copy. A consumer receives the DRef (mempool_chan_recv), gets the
 * object zero-copy, computes the checksum over the shared bytes, releases
 * it and writes "INDEX SUM DREF M|D LEN CHECKSUM" on a shared report pipe
 * (lines are shorter than PIPE_BUF, so concurrent writes never
 * interleave); the producer compares length and checksum with what it
 * wrote. The producer deletes an object once its consumer has answered,
 * and keeps the bytes in flight under half the arena, which is the flow
 * control. At the end it destroys the channels, and the consumers' recv
 * returns -EPIPE.
 *
 * The producer's max_memsize (128 MiB by default) is smaller than the bytes
 * it keeps in flight, so its sets spill its least recently used unpinned
 * objects to files in the spill directory (".mempool/<pool>" under the
 * working directory unless --spill-dir says otherwise), and consumers that
 * come to such an object read it from the mapped file: each consumer says
 * whether its view was MEMPOOL_VIEW_MEMORY or MEMPOOL_VIEW_DISK, and the
 * summary shows those counts next to the pool's spill figures
 * (mempool_stats: spills, spill_bytes, restores, disk_bytes).
 *
 * A second phase hands tables to the same consumers through the same
 * channels:
 * typed objects set with mempool_put_obj(), some spilled, decoded with
 * mempool_get_obj() and aggregated zero-copy; demo_table.c says how.
 *
 * At the end it prints the figures, checks that the arena's usage and the
 * bytes on disk are back to zero, and destroys the pool (which removes its
 * spill directory; a ".mempool" the demo created is removed too if empty).
 * The exit code is 0 only if everything verified.
 */
#include "demo.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEMO_MIN_SIZE      64ull
#define DEMO_MAX_SIZE      (64ull << 20)
#define DEMO_PATTERN_BYTES (DEMO_MAX_SIZE + 4096)
#define DEMO_ARENA_BYTES   (1ull << 30)
#define DEMO_MAX_MEMSIZE   (128ull << 20) /* producer's limit by default */
#define DEMO_SPILL_DIR     ".mempool"      /* the library's default */

/* Object k's size: the first is the smallest, the second the largest, the
 * rest log-uniform in between with a random tail so most are not powers of
 * two. */
static uint64_t object_size(long k)
{
    if (k == 0)
        return DEMO_MIN_SIZE;
    if (k == 1)
        return DEMO_MAX_SIZE;
    uint64_t seed = (uint64_t)k, r = demo_splitmix64(&seed);
    uint64_t lo = DEMO_MIN_SIZE << (r % 21);
    uint64_t size = lo + (r >> 8) % lo;
    return size < DEMO_MAX_SIZE ? size : DEMO_MAX_SIZE;
}

/* Object k's bytes start at an odd offset into the pattern, so every object
 * differs and sources are misaligned. */
static const unsigned char *object_bytes(const struct demo *d, long k)
{
    return d->pattern + ((uint64_t)k * 8191u) % 4096u;
}

static int fill_pattern(struct demo *d)
{
    d->pattern = malloc(DEMO_PATTERN_BYTES);
    if (d->pattern == NULL)
        return -ENOMEM;
    uint64_t seed = 42;
    for (size_t i = 0; i < DEMO_PATTERN_BYTES; i += 8) {
        uint64_t w = demo_splitmix64(&seed);
        memcpy(d->pattern + i, &w, sizeof w);
    }
    return 0;
}

/* ---- consumer side ----------------------------------------------------- */

/* Read object @p r: its length and checksum go back to the producer, who
 * knows what they must be. @p where gets 'M' if the bytes were in the
 * arena, 'D' if in a mapped spill file. */
static bool consume_bytes(mempool *p, mempool_dref r, uint64_t *len,
                          uint64_t *sum, char *where)
{
    mempool_view v;
    int rc = mempool_get(p, r, &v);
    if (rc < 0) {
        cli_error("demo-consumer", rc, "get");
        return false;
    }
    *len = v.len;
    *sum = cli_checksum(v.data, v.len);
    *where = (v.flags & MEMPOOL_VIEW_DISK) ? 'D' : 'M';
    rc = mempool_release(p, &v);
    if (rc < 0)
        cli_error("demo-consumer", rc, "release");
    return rc == 0;
}

/* Answer one object: "INDEX SUM DREF M|D LEN CHECKSUM" for bytes, "INDEX
 * T DREF M|D AGGREGATES" (or "INDEX BAD DREF ?") for a table. */
static bool answer(mempool *p, const char *idx, mempool_dref r, char *report,
                   size_t len)
{
    char text[MEMPOOL_DREF_STRLEN] = "-", line[64], where = '?', table[192];
    uint64_t n = 0, sum = 0;
    mempool_info in;
    bool ok;
    mempool_dref_format(r, text, sizeof text);
    if (mempool_info_get(p, r, &in) == 0 && in.type == MEMPOOL_TYPE_TABLE) {
        snprintf(line, sizeof line, "T %s", text);
        ok = demo_table_consume(p, line, table, sizeof table);
        snprintf(report, len, "%s %s\n", idx, table);
    } else {
        ok = consume_bytes(p, r, &n, &sum, &where);
        snprintf(report, len, "%s %s %s %c %" PRIu64 " %" PRIx64 "\n", idx,
                 ok ? "SUM" : "BAD", text, where, n, sum);
    }
    return ok;
}

/* Receive from our channel until the producer destroys it (-EPIPE). */
static int consumer_loop(mempool *p, const char *idx, mempool_chan *c,
                         int out)
{
    char report[256];
    int failures = 0, rc;
    mempool_dref r;
    while ((rc = mempool_chan_recv(c, &r, DEMO_STALL_MS)) == 0) {
        failures += !answer(p, idx, r, report, sizeof report);
        if (cli_write_all(out, report, strlen(report)) < 0)
            return CLI_FAIL;
    }
    if (rc != -EPIPE) {
        cli_error("demo-consumer", rc, "recv");
        return CLI_FAIL;
    }
    return failures == 0 ? CLI_OK : CLI_FAIL;
}

/* mempool demo-consumer POOL INDEX OUT_FD (started by the producer): its
 * objects come through channel "demo.<INDEX>", its answers go to OUT_FD. */
int cmd_demo_consumer(int argc, char **argv)
{
    long out_fd, idx;
    if (argc != 4 || cli_parse_count(argv[2], 0, DEMO_MAX_CONSUMERS, &idx) ||
        cli_parse_count(argv[3], 0, 1 << 20, &out_fd))
        return cli_usage_error("demo-consumer", "internal command of 'demo'");
    mempool_options o;
    mempool_options_init(&o);
    o.flags = 0;
    mempool *p;
    mempool_chan *c = NULL;
    char name[32];
    snprintf(name, sizeof name, "demo.%ld", idx);
    int rc = mempool_open(argv[1], &o, &p);
    if (rc == 0 && (rc = mempool_chan_open(p, name, 0, 0, &c)) < 0)
        mempool_close(p);
    if (rc < 0) {
        cli_error("demo-consumer", rc, argv[1]);
        return CLI_FAIL;
    }
    int status = consumer_loop(p, argv[2], c, (int)out_fd);
    mempool_chan_close(c);
    mempool_close(p);
    return status;
}

/* ---- producer side ----------------------------------------------------- */

/* Take one consumer's answer: count it and delete the object. */
static int handle_report(struct demo *d)
{
    char line[256], status[8], text[MEMPOOL_DREF_STRLEN + 1], where;
    uint64_t len, sum;
    int idx;
    int rc = demo_next_report(d, line, sizeof line);
    if (rc < 0)
        return rc;
    if (sscanf(line, "%d %7s %33s %c %" SCNu64 " %" SCNx64, &idx, status,
               text, &where, &len, &sum) != 6 ||
        idx < 1 || idx > d->nconsumers)
        return -EPROTO;
    for (int s = 0; s < DEMO_MAX_INFLIGHT; s++) {
        struct inflight *f = &d->fl[s];
        if (f->consumer != idx - 1 || strcmp(f->text, text) != 0)
            continue;
        struct consumer *c = &d->c[idx - 1];
        /* The consumer says what it read; we know what we wrote. */
        bool ok = strcmp(status, "SUM") == 0 && len == f->len &&
                  sum == f->sum;
        c->objects++;
        c->bytes += f->len;
        c->bad += !ok;
        c->disk_views += where == 'D';
        c->disk_bytes += where == 'D' ? f->len : 0;
        d->verified += ok;
        d->bad += !ok;
        mempool_dref r;
        rc = mempool_dref_parse(f->text, &r);
        if (rc == 0)
            rc = mempool_delete(d->p, r);
        d->flight_bytes -= f->len;
        d->nflight--;
        f->consumer = -1;
        return rc;
    }
    return -EPROTO;
}

/* Record object @p k (DRef @p r, @p len bytes) as in flight to its
 * consumer; its line is sent by send_pending(). */
static void add_inflight(struct demo *d, long k, mempool_dref r, uint64_t len)
{
    int s = 0;
    while (d->fl[s].consumer >= 0)
        s++; /* a free slot exists: the caller waited for one */
    struct inflight *f = &d->fl[s];
    mempool_dref_format(r, f->text, sizeof f->text);
    f->len = len;
    f->sum = cli_checksum(object_bytes(d, k), len);
    f->consumer = (int)(k % d->nconsumers);
    f->sent = false;
    d->nflight++;
    d->flight_bytes += len;
}

/* Send each consumer the DRefs of its new objects, through its channel. */
static int send_pending(struct demo *d)
{
    int rc = 0;
    for (int s = 0; s < DEMO_MAX_INFLIGHT && rc == 0; s++) {
        struct inflight *f = &d->fl[s];
        mempool_dref r;
        if (f->consumer < 0 || f->sent)
            continue;
        rc = mempool_dref_parse(f->text, &r);
        if (rc == 0)
            rc = demo_send(d, f->consumer, r);
        f->sent = true;
    }
    return rc;
}

/* Does an object of @p len bytes fit in the flight window? */
static bool fits(const struct demo *d, uint64_t len)
{
    return d->nflight < DEMO_MAX_INFLIGHT &&
           (d->nflight == 0 || d->flight_bytes + len <= d->budget);
}

/* Set object @p k; if memory is short, hand out what is pending and take
 * an answer first (fragmentation, or every victim pinned). */
static int produce_one(struct demo *d, long k)
{
    uint64_t len = object_size(k);
    mempool_dref r;
    int rc;
    for (;;) {
        rc = mempool_put(d->p, object_bytes(d, k), len, &r);
        if (rc != -ENOMEM || d->nflight == 0)
            break;
        rc = send_pending(d);
        if (rc == 0)
            rc = handle_report(d);
        if (rc < 0)
            return rc;
    }
    if (rc < 0)
        return rc;
    struct mempool_stats st;
    if (mempool_stats_get(d->p, &st) == 0 && st.disk_bytes > d->peak_disk)
        d->peak_disk = st.disk_bytes;
    d->produced++;
    d->sent_bytes += len;
    d->smallest = len < d->smallest ? len : d->smallest;
    d->largest = len > d->largest ? len : d->largest;
    add_inflight(d, k, r, len);
    return 0;
}

/* Batches: set objects while they fit in the flight window (past the
 * producer's max_memsize, so the earlier ones spill), then hand them all
 * out and wait until every one is verified and deleted. */
static int produce_all(struct demo *d)
{
    int rc = 0;
    for (long k = 0; k < d->nobjects && rc == 0;) {
        do
            rc = produce_one(d, k++);
        while (rc == 0 && k < d->nobjects && fits(d, object_size(k)));
        if (rc == 0)
            rc = send_pending(d);
        while (rc == 0 && d->nflight > 0)
            rc = handle_report(d);
    }
    return rc;
}

/* ---- report ------------------------------------------------------------ */

static void print_consumers(const struct demo *d)
{
    char a[32];
    for (int i = 0; i < d->nconsumers; i++) {
        const struct consumer *c = &d->c[i];
        printf("  consumer %-2d %" PRIu64 " objects, %s, %" PRIu64 " bad: "
               "%" PRIu64 " from memory, %" PRIu64 " from disk\n", i + 1,
               c->objects, cli_fmt_bytes(c->bytes, a, sizeof a), c->bad,
               c->objects - c->disk_views, c->disk_views);
    }
}

/* The pool's spill figures next to what the consumers saw. */
static void print_spilling(const struct demo *d, const struct mempool_stats *s)
{
    char a[32], b[32], c[32];
    uint64_t views = 0, bytes = 0;
    for (int i = 0; i < d->nconsumers; i++) {
        views += d->c[i].disk_views;
        bytes += d->c[i].disk_bytes;
    }
    printf("  spilled     %" PRIu64 " objects, %s (%s; at most %s at once) "
           "to %s\n", s->spills, cli_fmt_bytes(s->spill_bytes, a, sizeof a),
           s->io_backend[0] ? s->io_backend : "no writes",
           cli_fmt_bytes(d->peak_disk, b, sizeof b), d->spill_path);
    printf("  restored    %" PRIu64 " objects, %s read from spill files, "
           "zero-copy (stats.restores %" PRIu64 ")\n", views,
           cli_fmt_bytes(bytes, c, sizeof c), s->restores);
}

static void print_summary(const struct demo *d, const struct mempool_stats *s,
                          double secs)
{
    char a[32], b[32], c[32], e[32];
    printf("mempool demo: pool '%s', %s arena, %d consumer processes, "
           "producer max_memsize %s\n", d->pool,
           cli_fmt_bytes(DEMO_ARENA_BYTES, a, sizeof a), d->nconsumers,
           d->max_memsize ? cli_fmt_bytes(d->max_memsize, b, sizeof b)
                          : "none");
    printf("  objects     %ld of %ld set, %s .. %s each, %s in total, up to "
           "%s in flight\n", d->produced, d->nobjects,
           cli_fmt_bytes(d->smallest, a, sizeof a),
           cli_fmt_bytes(d->largest, b, sizeof b),
           cli_fmt_bytes(d->sent_bytes, c, sizeof c),
           cli_fmt_bytes(d->budget, e, sizeof e));
    printf("  throughput  %.2f GB/s, %.0f objects/s (%.2f s from first set "
           "to last delete, fresh pool)\n", (double)d->sent_bytes / secs / 1e9,
           (double)d->produced / secs, secs);
    print_consumers(d);
    print_spilling(d, s);
    printf("  verified    %" PRIu64 " of %ld checksums matched\n",
           d->verified, d->nobjects);
}

/* Check that all memory and every spill file came back and the pool is
 * consistent. */
static bool back_to_zero(mempool *p)
{
    struct mempool_stats s;
    char why[256] = "", used[32], disk[32];
    int rc = mempool_reap(p); /* consumers that crashed leave pins behind */
    if (rc > 0)
        printf("  reaped      %d dead consumer worker(s)\n", rc);
    rc = mempool_stats_get(p, &s);
    if (rc < 0) {
        cli_error("demo", rc, "stats");
        return false;
    }
    int chk = mempool_check(p, why, sizeof why);
    bool zero = s.used_bytes == 0 && s.objects == 0 &&
                s.resident_bytes == 0 && s.disk_bytes == 0;
    printf("  arena       used %s, %" PRIu64 " objects, %s in spill files "
           "after the deletes: %s; check %s%s%s\n",
           cli_fmt_bytes(s.used_bytes, used, sizeof used), s.objects,
           cli_fmt_bytes(s.disk_bytes, disk, sizeof disk),
           zero ? "back to zero" : "NOT back to zero",
           chk == 0 ? "ok" : mempool_strerror(chk), why[0] ? ": " : "", why);
    return zero && chk == 0;
}

/* ---- command ----------------------------------------------------------- */

static const char demo_usage[] =
    "Usage: mempool demo [--consumers N] [--objects N] [--tables N]\n"
    "                    [--pool NAME] [--max-memsize BYTES]\n"
    "                    [--spill-dir DIR]\n"
    "Create a pool, have one producer set objects of 64 B to 64 MiB and N\n"
    "consumer processes (default 3) get and verify them zero-copy, print\n"
    "throughput, per-consumer counts and spill figures, and destroy the\n"
    "pool. The producer's --max-memsize (default 128M; 0 = none, else at\n"
    "least 64M) is below the data in flight, so it spills objects to\n"
    "--spill-dir (default .mempool in the working directory) and consumers\n"
    "read some from disk. Default --objects 256; default pool name\n"
    "demo-PID. Then the producer sets --tables tables (default 8, 0 skips\n"
    "them) of 1M rows, an int64 and a string column, with mempool_put_obj;\n"
    "some spill, and the consumers decode them with mempool_get_obj and\n"
    "aggregate them zero-copy. Exits 0 only if every object and every\n"
    "table's aggregates verified and the arena's usage and the bytes on\n"
    "disk returned to zero.\n";

/* Option @p opt of `mempool demo` with its value @p v into @p d: NULL, or
 * what is wrong with it. */
static const char *demo_option(struct demo *d, const char *opt,
                               const char *v)
{
    long n;
    uint64_t m;
    if (strcmp(opt, "--consumers") == 0) {
        if (cli_parse_count(v, 1, DEMO_MAX_CONSUMERS, &n) < 0)
            return "--consumers wants 1..32";
        d->nconsumers = (int)n;
    } else if (strcmp(opt, "--objects") == 0) {
        if (cli_parse_count(v, 1, 1000000, &n) < 0)
            return "--objects wants 1..1000000";
        d->nobjects = n;
    } else if (strcmp(opt, "--tables") == 0) {
        if (cli_parse_count(v, 0, DEMO_MAX_TABLES, &n) < 0)
            return "--tables wants 0..64";
        d->t.want = n;
    } else if (strcmp(opt, "--pool") == 0) {
        d->pool = v;
    } else if (strcmp(opt, "--spill-dir") == 0) {
        d->spill_dir = v;
    } else if (strcmp(opt, "--max-memsize") == 0) {
        if (cli_parse_size(v, &m) < 0 || (m != 0 && m < DEMO_MAX_SIZE))
            return "--max-memsize wants 0 or at least 64M";
        d->max_memsize = m;
    } else {
        return "unexpected argument";
    }
    return NULL;
}

static int parse_demo_args(struct demo *d, int argc, char **argv)
{
    for (int i = 1; i < argc; i += 2) {   /* options come in pairs */
        const char *bad;
        if (cli_is_help(argv[i])) {
            fputs(demo_usage, stdout);
            return 1;
        }
        if (i + 1 >= argc)
            return cli_usage_error("demo", "unexpected argument");
        if ((bad = demo_option(d, argv[i], argv[i + 1])))
            return cli_usage_error("demo", bad);
    }
    return 0;
}

static void demo_init(struct demo *d)
{
    memset(d, 0, sizeof *d);
    d->nconsumers = 3;
    d->nobjects = 256;
    d->t.want = DEMO_TABLES;
    d->report_fd = -1;
    d->smallest = UINT64_MAX;
    d->budget = DEMO_ARENA_BYTES / 2;
    d->spill_dir = DEMO_SPILL_DIR;
    d->max_memsize = DEMO_MAX_MEMSIZE;
    for (int i = 0; i < DEMO_MAX_CONSUMERS; i++)
        d->c[i].ch = NULL;
    for (int s = 0; s < DEMO_MAX_INFLIGHT; s++)
        d->fl[s].consumer = -1;
}

/* Where the pool's spill files go: <spill_dir>/<pool>, made absolute the
 * way the library does. Notes whether spill_dir exists yet. */
static void spill_path(struct demo *d)
{
    char cwd[2048] = ".";
    struct stat st;
    d->made_dir = stat(d->spill_dir, &st) < 0;
    if (d->spill_dir[0] != '/' && getcwd(cwd, sizeof cwd) == NULL)
        snprintf(cwd, sizeof cwd, ".");
    snprintf(d->spill_path, sizeof d->spill_path, "%s%s%s/%s",
             d->spill_dir[0] == '/' ? "" : cwd,
             d->spill_dir[0] == '/' ? "" : "/", d->spill_dir, d->pool);
}

static int create_pool(struct demo *d)
{
    mempool_options o;
    mempool_options_init(&o);
    o.arena_bytes = DEMO_ARENA_BYTES;
    o.flags = MEMPOOL_OPEN_CREATE | MEMPOOL_OPEN_EXCL;
    o.max_memsize = d->max_memsize;
    o.spill_dir = d->spill_dir;
    spill_path(d);
    int rc = mempool_open(d->pool, &o, &d->p);
    if (rc < 0) {
        char what[MEMPOOL_NAME_MAX + 32];
        snprintf(what, sizeof what, "create pool '%s'", d->pool);
        cli_error("demo", rc, what);
    }
    return rc;
}

static void pool_stats(mempool *p, struct mempool_stats *s)
{
    if (mempool_stats_get(p, s) < 0)
        memset(s, 0, sizeof *s);
}

/* Run the producer against started consumers: the bytes phase, then the
 * table phase; true if all went well. */
static bool run_producer(struct demo *d)
{
    struct mempool_stats s, after;
    uint64_t t0 = cli_now_ns();
    int rc = produce_all(d);
    double secs = (double)(cli_now_ns() - t0) / 1e9;
    if (rc < 0)
        cli_error("demo", rc, "producer");
    pool_stats(d->p, &s);
    int trc = rc == 0 ? demo_tables_run(d) : 0;
    if (trc < 0)
        cli_error("demo", trc, "producer, table phase");
    pool_stats(d->p, &after);
    int failed = demo_consumers_stop(d, rc < 0 || trc < 0);
    if (failed > 0)
        fprintf(stderr, "mempool demo: %d consumer(s) failed\n", failed);
    print_summary(d, &s, secs > 0 ? secs : 1e-9);
    demo_tables_print(d, &s, &after);
    bool zero = back_to_zero(d->p);
    return rc == 0 && trc == 0 && failed == 0 && zero && d->bad == 0 &&
           d->verified == (uint64_t)d->nobjects && d->t.bad == 0 &&
           d->t.verified == d->t.want;
}

int cmd_demo(int argc, char **argv)
{
    static struct demo d; /* large; one per process */
    char name[32];
    demo_init(&d);
    int rc = parse_demo_args(&d, argc, argv);
    if (rc != 0)
        return rc == 1 ? CLI_OK : rc;
    if (d.pool == NULL) {
        snprintf(name, sizeof name, "demo-%d", (int)getpid());
        d.pool = name;
    }
    signal(SIGPIPE, SIG_IGN); /* a dead consumer shows as EPIPE */
    if (fill_pattern(&d) < 0 || create_pool(&d) < 0) {
        free(d.pattern);
        return CLI_FAIL;
    }
    bool ok = false;
    rc = demo_consumers_start(&d);
    if (rc < 0) {
        cli_error("demo", rc, "start consumers");
        demo_consumers_stop(&d, true);
    } else {
        ok = run_producer(&d);
    }
    close(d.report_fd);
    mempool_close(d.p);
    rc = mempool_destroy(d.pool);
    if (rc < 0)
        cli_error("demo", rc, "destroy pool");
    if (d.made_dir)
        rmdir(d.spill_dir); /* ours, if the pool left it empty */
    free(d.pattern);
    printf("demo %s\n", ok && rc == 0 ? "OK" : "FAILED");
    return ok && rc == 0 ? CLI_OK : CLI_FAIL;
}
