/* SPDX-License-Identifier: MIT */
/*
 * bench_fresh.c - mempool-bench's "fresh" section: what a new process
 * sees, and how throughput scales from 1 to 2 processes (issue 11).
 *
 * The core section measures warm: its arena and its baseline mapping are
 * touched before timing. Here every figure comes from a child forked for
 * it, which opens the pool itself (a new mapping: no page of it is in the
 * child's page tables) and pre-touches nothing of the pool:
 *
 *   set, new pool     the child creates a pool and sets one object: the
 *                     pages are new to tmpfs as well (allocated, zeroed)
 *                     and to the child's page tables.
 *   set, used pages   the pool already exists and its pages were written
 *                     by an earlier (deleted) object: only the child's page
 *                     tables are cold.
 *     baseline: memcpy of the same bytes into a malloc'd buffer the child
 *     touched first (median of 3), in the same child; below 32 MiB each
 *     copy goes to another part of a 128 MiB touched buffer, so that the
 *     destination is not in the cache (the arena's is not either).
 *     The ahead and inline rows: the same set from a handle opened with
 *     MEMPOOL_OPEN_BACK_AHEAD (the helper thread of backahead.c even when
 *     no CPU looks free) and MEMPOOL_OPEN_BACK_INLINE (none: the caller
 *     zeroes and copies alone, as before backahead.c). Under the table, the CPU time
 *     of the child (getrusage, helper thread included) across each set,
 *     and how many children of the first three rows paid the host's faults
 *     (over 3x the row's least CPU time), with the others' median set.
 *     The reserve row: the same set into a new pool the child created
 *     with MEMPOOL_OPEN_RESERVE (its pages backed, huge where allowed, at
 *     open; the open time is printed as a note under the table).
 *     The floor row: a brand-new pool's 64 MiB set against memcpy into
 *     never-touched anonymous memory (2 MiB-aligned, MADV_HUGEPAGE), which
 *     pays the same kernel zeroing of new pages the pool's chunks do.
 *   first read        a consumer child gets a 64 MiB object another process
 *                     set and sums every byte; baseline: its second read of
 *                     the same view.
 *   open              a child creates a new 1 GiB pool (mempool_open);
 *                     baseline: the floor of any shm pool, open + ftruncate
 *                     + mmap + munmap of a new 1 GiB shm object.
 *   1 vs 2 procs      one child, then two at once (started together), each
 *                     doing set+delete of 64 B, get+release of its own 64 B
 *                     object, or get+release of one 64 B object both read;
 *                     the 2-process figure is the sum of the two rates and
 *                     the baseline is the 1-process one; for set+delete
 *                     also the CPU time per op (getrusage) of 2 against 1,
 *                     which shows a line both write while they overlap.
 * Medians over a few rounds (each round a new child). Results travel to
 * the parent over a pipe.
 */
#include "bench.h"
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define MIB (1ull << 20)

static char shared_pool[64];

/* Open pool @p name with @p flags (creating: CREATE | EXCL and more). */
static mempool *open_flags(const char *name, uint64_t arena, uint32_t flags)
{
    mempool_options o;
    mempool *p = NULL;
    mempool_options_init(&o);
    o.arena_bytes = arena;
    o.spiller = 0;
    o.flags = flags;
    return mempool_open(name, &o, &p) < 0 ? NULL : p;
}

static mempool *attach(const char *name, uint64_t arena, bool create)
{
    return open_flags(name, arena,
                      create ? MEMPOOL_OPEN_CREATE | MEMPOOL_OPEN_EXCL : 0);
}

static void *touched(size_t n, int c)
{
    void *b = malloc(n);
    if (b)
        memset(b, c, n);
    return b;
}

/* ---- running one measurement in a fresh child ---------------------------- */

/* A child's figures: subject, baseline, a note (or 0), and the CPU time
 * of the subject (or 0). */
#define NOUT 4

typedef int (*child_fn)(const void *arg, double out[NOUT]);

/* Fork; the child runs @p fn and sends its two figures. Start gate: when
 * @p gate is a pipe, the child reports ready and waits for one byte. */
static pid_t spawn(child_fn fn, const void *arg, int res[2], int gate[2])
{
    if (pipe(res) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        double out[NOUT] = { 0, 0, 0, 0 };
        char c;
        close(res[0]);
        if (gate) {
            close(gate[1]);
            if (cli_write_all(res[1], "R", 1) || cli_read_all(gate[0], &c, 1))
                _exit(1);
        }
        int rc = fn(arg, out);
        if (rc == 0)
            rc = cli_write_all(res[1], out, sizeof out);
        _exit(rc == 0 ? 0 : 1);
    }
    close(res[1]);
    return pid;
}

static int collect(pid_t pid, int fd, double out[NOUT])
{
    int st = 0, rc = cli_read_all(fd, out, NOUT * sizeof(double));
    close(fd);
    if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
        rc = rc ? rc : -ECHILD;
    return rc;
}

/* Run @p fn in @p n (1 or 2) children started at once; out[k] = the sum
 * of their figure k. */
static int run_children(int n, child_fn fn, const void *const *arg,
                        double out[NOUT])
{
    int gate[2], res[2][2], rc = 0;
    pid_t pid[2];
    char c;
    for (int k = 0; k < NOUT; k++)
        out[k] = 0;                   /* also when nothing runs */
    if (pipe(gate) < 0)
        return -errno;
    for (int i = 0; i < n; i++)
        pid[i] = spawn(fn, arg[i], res[i], gate);
    close(gate[0]);
    for (int i = 0; i < n; i++)
        if (pid[i] < 0 || cli_read_all(res[i][0], &c, 1))
            rc = -ECHILD;
    for (int i = 0; i < n && rc == 0; i++)
        if (cli_write_all(gate[1], "G", 1))
            rc = -EPIPE;
    close(gate[1]);
    for (int i = 0; i < n; i++) {
        double o[NOUT];
        int r = pid[i] > 0 ? collect(pid[i], res[i][0], o) : -ECHILD;
        rc = rc ? rc : r;
        for (int k = 0; k < NOUT && r == 0; k++)
            out[k] += o[k];
    }
    return rc;
}

/* ---- cold set -------------------------------------------------------------- */

struct cold_set {
    uint64_t size;
    int      round;
    bool     new_pool; /* create the pool in the child */
    bool     fresh;    /* baseline: memcpy into never-touched memory */
    bool     reserve;  /* new pool opened with MEMPOOL_OPEN_RESERVE */
    uint32_t back;     /* MEMPOOL_OPEN_BACK_INLINE or _AHEAD, or 0 */
};

static double cpu_ns(void);

/* The floor of any first write of new memory: memcpy into anonymous
 * memory nobody touched yet, 2 MiB-aligned and MADV_HUGEPAGE, so the
 * kernel zeroes (and maps) one huge page per 2 MiB as the copy faults -
 * the work a brand-new pool's chunks cost too. ns, or -1. */
static double fresh_copy(const unsigned char *src, size_t n)
{
    size_t len = n + 2 * MIB;
    uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return -1;
    uint8_t *a = (uint8_t *)(((uintptr_t)m + 2 * MIB - 1) &
                             ~(uintptr_t)(2 * MIB - 1));
    (void)madvise(a, n, MADV_HUGEPAGE);
    uint64_t t0 = cli_now_ns();
    memcpy(a, src, n);
    double ns = (double)(cli_now_ns() - t0);
    munmap(m, len);
    return ns;
}

/* out[0] = ns of the first set, out[1] = ns of memcpy into touched
 * memory, out[2] = ns of opening (creating) a new pool, out[3] = CPU ns
 * of the set (the whole process: a large set's helper thread too) */
static int cold_set_child(const void *arg, double out[NOUT])
{
    const struct cold_set *a = arg;
    char name[80];
    /* The baseline's destination is touched but, like the arena's, not in
     * the cache: small copies go to slices 40 MiB apart of a 128 MiB
     * buffer (a 1 MiB memcpy into a cache-hot buffer is ~2x faster than
     * into any memory it did not just write). */
    bool small = a->size < 32 * MIB;
    size_t dlen = small ? 128 * MIB : a->size;
    unsigned char *src = touched(a->size, 7), *dst = touched(dlen, 1);
    mempool *p = NULL;
    mempool_dref r;
    double base[3];
    uint64_t t0;
    int rc = -ENOMEM;

    if (!src || !dst)
        goto out;
    for (int i = 0; i < 3; i++) {
        unsigned char *d = dst + (small ? (size_t)i * 40 * MIB : 0);
        t0 = cli_now_ns();
        memcpy(d, src, a->size);
        base[i] = (double)(cli_now_ns() - t0);
        if (a->fresh)
            base[i] = fresh_copy(src, a->size);
    }
    out[1] = bench_median(base, 3);
    snprintf(name, sizeof name, "%s-c%d", shared_pool, a->round);
    t0 = cli_now_ns();
    p = a->new_pool ? open_flags(name, 2 * a->size + 16 * MIB,
                                 MEMPOOL_OPEN_CREATE | MEMPOOL_OPEN_EXCL |
                                 (a->reserve ? MEMPOOL_OPEN_RESERVE : 0) |
                                 a->back)
                    : attach(shared_pool, 0, false);
    out[2] = (double)(cli_now_ns() - t0);
    rc = -ENOENT;
    if (!p)
        goto out;
    double c0 = cpu_ns();
    t0 = cli_now_ns();
    rc = mempool_put(p, src, a->size, &r);
    out[0] = (double)(cli_now_ns() - t0);
    out[3] = cpu_ns() - c0;
    if (rc == 0)
        rc = mempool_delete(p, r);
    mempool_close(p);
    if (a->new_pool)
        mempool_destroy(name);
out:
    free(src);
    free(dst);
    return rc < 0 ? rc : 0;
}

/* ---- a fresh consumer's first and second read ------------------------------ */

/* out[0] = ns of get + first full read, out[1] = ns of the second read */
static int first_read_child(const void *arg, double out[NOUT])
{
    const mempool_dref *r = arg;
    mempool *p = attach(shared_pool, 0, false);
    mempool_view v;
    volatile uint64_t sink;
    if (!p)
        return -ENOENT;
    uint64_t t0 = cli_now_ns();
    int rc = mempool_get(p, *r, &v);
    if (rc == 0) {
        sink = bench_sum(v.data, v.len);
        out[0] = (double)(cli_now_ns() - t0);
        t0 = cli_now_ns();
        sink = bench_sum(v.data, v.len);
        out[1] = (double)(cli_now_ns() - t0);
        (void)sink;
        rc = mempool_release(p, &v);
    }
    mempool_close(p);
    return rc < 0 ? rc : 0;
}

/* ---- opening a new 1 GiB pool ------------------------------------------------ */

/* out[0] = ns of mempool_open() creating a 1 GiB pool, out[1] = ns of the
 * floor: open + ftruncate + mmap + munmap of a new 1 GiB shm object */
static int open_child(const void *arg, double out[NOUT])
{
    char name[80], path[128];
    const int *round = arg;
    snprintf(name, sizeof name, "%s-o%d", shared_pool, *round);
    snprintf(path, sizeof path, "/dev/shm/%s-floor", name);
    uint64_t t0 = cli_now_ns();
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    void *m = MAP_FAILED;
    if (fd >= 0 && ftruncate(fd, (off_t)(1024 * MIB)) == 0)
        m = mmap(NULL, 1024 * MIB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m != MAP_FAILED)
        munmap(m, 1024 * MIB);
    out[1] = (double)(cli_now_ns() - t0);
    if (fd >= 0)
        close(fd);
    unlink(path);
    if (m == MAP_FAILED)
        return -EIO;
    t0 = cli_now_ns();
    mempool *p = attach(name, 1024 * MIB, true);
    out[0] = (double)(cli_now_ns() - t0);
    if (!p)
        return -ENOENT;
    mempool_close(p);
    mempool_destroy(name);
    return 0;
}

/* ---- 1 vs 2 processes ------------------------------------------------------ */

enum { TP_SETDEL, TP_GET_OWN, TP_GET_SHARED };

struct tp {
    int          mode;
    uint64_t     ops;
    mempool_dref shared; /* TP_GET_SHARED */
};

/* CPU time of this process (a fresh child: its own work only), ns. */
static double cpu_ns(void)
{
    struct rusage u;
    if (getrusage(RUSAGE_SELF, &u))
        return 0;
    return (double)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e9 +
           (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e3;
}

/* out[0] = ops/s of this child, out[1] = its CPU ns per op (a line two
 * processes both write shows as more CPU per op while they overlap;
 * less load-sensitive than their wall-clock rates) */
static int tp_child(const void *arg, double out[NOUT])
{
    const struct tp *a = arg;
    static const char src[64] = "bench";
    mempool *p = attach(shared_pool, 0, false);
    mempool_dref r = a->shared;
    mempool_view v;
    int rc = 0;
    if (!p)
        return -ENOENT;
    if (a->mode == TP_GET_OWN)
        rc = mempool_put(p, src, sizeof src, &r);
    uint64_t t0 = cli_now_ns();
    double c0 = cpu_ns();
    for (uint64_t i = 0; i < a->ops && rc == 0; i++) {
        if (a->mode == TP_SETDEL) {
            rc = mempool_put(p, src, sizeof src, &r);
            if (rc == 0)
                rc = mempool_delete(p, r);
        } else if ((rc = mempool_get(p, r, &v)) == 0) {
            rc = mempool_release(p, &v);
        }
    }
    out[0] = (double)a->ops * 1e9 / (double)(cli_now_ns() - t0);
    out[1] = (cpu_ns() - c0) / (double)a->ops;
    if (a->mode == TP_GET_OWN && rc == 0)
        rc = mempool_delete(p, r);
    mempool_close(p);
    return rc < 0 ? rc : 0;
}

/* ---- the section ----------------------------------------------------------- */

struct row {
    const char *what, *base_what, *target;
    double      v, base;  /* medians */
    double      note;     /* median of the children's third figure */
    bool        rate;     /* ops/s (higher is better), else ns */
    bool        inverse;  /* ratio = v / base (first read), else base / v */
    double      cpu;      /* median of their fourth figure (CPU ns) */
    int         hostf;    /* children whose CPU ns > HOSTF_X x the least */
    double      v_quiet;  /* median subject of the other children */
};

/* A set that took this many times the CPU time of its row's cheapest
 * child met the host's faults: the kernel's zeroing (clear_page_erms)
 * touching guest memory the host had discarded (free page reporting;
 * docs/design.md, session 6). Counted apart, so that a row's median can be
 * told from the host's share of it. */
#define HOSTF_X 3.0

/* r->hostf and r->v_quiet from the children's subject @p v and CPU @p c. */
static void host_faults(struct row *r, const double *v, const double *c,
                        int rounds)
{
    double least = c[0], quiet[8];
    int nq = 0;
    for (int i = 1; i < rounds; i++)
        least = c[i] < least ? c[i] : least;
    for (int i = 0; i < rounds; i++)
        if (c[i] <= HOSTF_X * least)
            quiet[nq++] = v[i];
    r->hostf = rounds - nq;
    r->v_quiet = nq ? bench_median(quiet, nq) : 0;
}

static void print_row(const struct row *r)
{
    char a[32], b[32];
    double ratio = r->rate || r->inverse ? r->v / r->base : r->base / r->v;
    if (r->rate) {
        bench_fmt_rate(r->v, a, sizeof a);
        bench_fmt_rate(r->base, b, sizeof b);
    } else {
        bench_fmt_ns(r->v, a, sizeof a);
        bench_fmt_ns(r->base, b, sizeof b);
    }
    printf("| %s | %s%s | %s: %s%s | %.2f× | %s |\n", r->what, a,
           r->rate ? "/s" : "", r->base_what, b, r->rate ? "/s" : "", ratio,
           r->target);
}

/* Run @p fn once per round, each time in a new child given args[i]; the
 * medians of its two figures (subject, baseline) go into @p r. */
static int child_rounds(int rounds, child_fn fn, const void *const *args,
                        struct row *r)
{
    double v[8], b[8], n[8], c[8];
    for (int i = 0; i < rounds; i++) {
        double o[NOUT];
        int rc = run_children(1, fn, &args[i], o);
        if (rc)
            return rc;
        v[i] = o[0];
        b[i] = o[1];
        n[i] = o[2];
        c[i] = o[3];
    }
    r->v = bench_median(v, rounds);
    r->base = bench_median(b, rounds);
    r->note = bench_median(n, rounds);
    r->cpu = bench_median(c, rounds);
    host_faults(r, v, c, rounds);
    return 0;
}

static int opens(int rounds, struct row *r)
{
    int round[8];
    const void *args[8];
    for (int i = 0; i < rounds; i++) {
        round[i] = i;
        args[i] = &round[i];
    }
    return child_rounds(rounds, open_child, args, r);
}

/* @p how: 'n' new pool, 'f' new pool against fresh memory, 'r' new pool
 * opened with MEMPOOL_OPEN_RESERVE, 'i' new pool, the set backing without
 * a helper thread (MEMPOOL_OPEN_BACK_INLINE), 'a' with one even if no CPU
 * looks free (MEMPOOL_OPEN_BACK_AHEAD), 'u' used pages */
static int cold_sets(int rounds, uint64_t size, char how, struct row *r)
{
    struct cold_set a[8];
    const void *args[8];
    for (int i = 0; i < rounds; i++) {
        a[i] = (struct cold_set){ .size = size, .round = i,
                                  .new_pool = how != 'u', .fresh = how == 'f',
                                  .reserve = how == 'r',
                                  .back = how == 'i' ?
                                      MEMPOOL_OPEN_BACK_INLINE :
                                      how == 'a' ? MEMPOOL_OPEN_BACK_AHEAD :
                                      0 };
        args[i] = &a[i];
    }
    return child_rounds(rounds, cold_set_child, args, r);
}

static int first_reads(mempool *p, int rounds, struct row *r)
{
    unsigned char *src = touched(64 * MIB, 3);
    mempool_dref d;
    double v[8], b[8];
    int rc = src ? mempool_put(p, src, 64 * MIB, &d) : -ENOMEM;
    free(src);
    for (int i = 0; i < rounds && rc == 0; i++) {
        const void *arg = &d;
        double o[NOUT];
        rc = run_children(1, first_read_child, &arg, o);
        v[i] = o[0];
        b[i] = o[1];
    }
    if (rc == 0) {
        r->v = bench_median(v, rounds);
        r->base = bench_median(b, rounds);
        rc = mempool_delete(p, d);
    }
    return rc;
}

/* @p r: ops/s of 2 processes against 1; @p cpu (or NULL): their mean CPU
 * time per op against 1's. */
static int scaling(mempool *p, int rounds, uint64_t ops, int mode,
                   struct row *r, struct row *cpu)
{
    struct tp a = { mode, ops, { 0, 0 } }, b2 = a;
    static const char src[64] = "shared";
    const void *args[2] = { &a, &b2 };
    double one[8], two[8], cpu1[8], cpu2[8];
    int rc = 0;
    if (mode == TP_GET_SHARED &&
        (rc = mempool_put(p, src, sizeof src, &a.shared)) < 0)
        return rc;
    b2.shared = a.shared;
    for (int i = 0; i < rounds && rc == 0; i++) {
        double o[NOUT];
        if ((rc = run_children(1, tp_child, args, o)))
            break;
        one[i] = o[0];
        cpu1[i] = o[1];
        if ((rc = run_children(2, tp_child, args, o)))
            break;
        two[i] = o[0];
        cpu2[i] = o[1] / 2;           /* run_children sums the children */
    }
    if (mode == TP_GET_SHARED)
        mempool_delete(p, a.shared);
    if (rc)
        return rc;
    r->v = bench_median(two, rounds);
    r->base = bench_median(one, rounds);
    if (cpu) {
        cpu->v = bench_median(cpu2, rounds);
        cpu->base = bench_median(cpu1, rounds);
    }
    return 0;
}

int bench_fresh(const struct fresh_opts *o)
{
    int rounds = o->quick ? 2 : 5;
    uint64_t ops = o->quick ? 200000 : 2000000;
    struct row rows[] = {
        { "64 MiB set, fresh process, new pool", "memcpy into touched memory",
          "≥ 0.8× (target 3)", 0, 0, 0, false, false, 0, 0, 0 },
        { "64 MiB set, fresh process, new pool, with the helper thread "
          "even if no CPU looks free (MEMPOOL_OPEN_BACK_AHEAD)",
          "memcpy into touched memory", "≥ 0.8× (target 3)", 0, 0, 0, false,
          false, 0, 0, 0 },
        { "64 MiB set, fresh process, new pool, without the helper thread "
          "(MEMPOOL_OPEN_BACK_INLINE)", "memcpy into touched memory",
          "(the single-threaded set)", 0, 0, 0, false, false, 0, 0, 0 },
        { "64 MiB set, fresh process, new pool opened with "
          "MEMPOOL_OPEN_RESERVE", "memcpy into touched memory",
          "≥ 0.8× (target 3, opt-in)", 0, 0, 0, false, false, 0, 0, 0 },
        { "64 MiB set, fresh process, new pool", "memcpy into fresh "
          "(untouched, THP) anonymous memory", "the floor: zeroing + copy",
          0, 0, 0, false, false, 0, 0, 0 },
        { "64 MiB set, fresh process, used pages", "memcpy into touched memory",
          "≥ 0.8× (target 3)", 0, 0, 0, false, false, 0, 0, 0 },
        { "1 MiB set, fresh process, new pool", "memcpy into touched memory",
          "≥ 0.7× (target 3)", 0, 0, 0, false, false, 0, 0, 0 },
        { "1 MiB set, fresh process, used pages", "memcpy into touched memory",
          "≥ 0.7× (target 3)", 0, 0, 0, false, false, 0, 0, 0 },
        { "64 MiB get + first full read, fresh consumer", "its second read",
          "≤ 1.25× (target 3)", 0, 0, 0, false, true, 0, 0, 0 },
        { "open (create) a new 1 GiB pool", "open+ftruncate+mmap of a 1 GiB "
          "shm object", "≤ 20 ms (target 3)", 0, 0, 0, false, true, 0, 0, 0 },
        { "64 B get+release, 2 procs (own objects)", "1 proc",
          "≥ 1.8× (target 1)", 0, 0, 0, true, false, 0, 0, 0 },
        { "64 B get+release, 2 procs (one shared object)", "1 proc",
          "≥ 1.8× (target 1)", 0, 0, 0, true, false, 0, 0, 0 },
        { "64 B set+delete, 2 procs", "1 proc", "≥ 1.6× (target 2)", 0, 0, 0,
          true, false, 0, 0, 0 },
        { "CPU per 64 B set+delete, 2 procs (getrusage)", "1 proc",
          "≈ 1.0×: no line both write", 0, 0, 0, false, true, 0, 0, 0 },
    };
    mempool *p;
    int rc;

    snprintf(shared_pool, sizeof shared_pool, "bench-fresh-%d", (int)getpid());
    if (!(p = attach(shared_pool, 256 * MIB, true)))
        return -ENOENT;
    fprintf(stderr, "mempool-bench: fresh ...\n");
    /* The used-pages rows set into pages this warm-up wrote. */
    unsigned char *warm = touched(128 * MIB, 5);
    mempool_dref d;
    rc = warm ? mempool_put(p, warm, 128 * MIB, &d) : -ENOMEM;
    free(warm);
    if (rc == 0)
        rc = mempool_delete(p, d);
    if (rc == 0)
        rc = cold_sets(rounds, 64 * MIB, 'n', &rows[0]);
    if (rc == 0)
        rc = cold_sets(rounds, 64 * MIB, 'a', &rows[1]);
    if (rc == 0)
        rc = cold_sets(rounds, 64 * MIB, 'i', &rows[2]);
    if (rc == 0)
        rc = cold_sets(rounds, 64 * MIB, 'r', &rows[3]);
    if (rc == 0)
        rc = cold_sets(rounds, 64 * MIB, 'f', &rows[4]);
    if (rc == 0)
        rc = cold_sets(rounds, 64 * MIB, 'u', &rows[5]);
    if (rc == 0)
        rc = cold_sets(rounds, MIB, 'n', &rows[6]);
    if (rc == 0)
        rc = cold_sets(rounds, MIB, 'u', &rows[7]);
    if (rc == 0)
        rc = first_reads(p, rounds, &rows[8]);
    if (rc == 0)
        rc = opens(rounds, &rows[9]);
    if (rc == 0)
        rc = scaling(p, rounds, ops, TP_GET_OWN, &rows[10], NULL);
    if (rc == 0)
        rc = scaling(p, rounds, ops, TP_GET_SHARED, &rows[11], NULL);
    if (rc == 0)
        rc = scaling(p, rounds, ops / 4, TP_SETDEL, &rows[12],
                     &rows[13]);
    mempool_close(p);
    mempool_destroy(shared_pool);
    if (rc)
        return rc;
    printf("\n### fresh processes, and 1 vs 2 processes\n\n"
           "| figure | mempool | baseline (same run) | ratio | target |\n"
           "|---|---:|---:|---:|---|\n");
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        print_row(&rows[i]);
    printf("\nEach figure is the median of %d rounds, each in a new child "
           "that opened the pool itself and pre-touched none of it. "
           "Ratios: memcpy time / set time (higher is better), first read / "
           "second read and open / its floor (lower is better), 2-process "
           "ops/s / 1-process "
           "ops/s, and CPU per op of 2 processes / 1 (1.0: they share no "
           "line they write; less load-sensitive than ops/s, but only as "
           "far as the two ran at once).\n",
           rounds);
    printf("\nOpening the reserved pool of row 4 (144 MiB, "
           "MEMPOOL_OPEN_RESERVE: every page backed and zeroed at open) took "
           "%.1f ms (median); the lazy one of row 1, %.1f ms.\n",
           rows[3].note / 1e6, rows[0].note / 1e6);
    printf("\nRow 1 starts the helper thread (the kernel zeroes the block's "
           "chunks on it while the caller copies) only when a CPU is free "
           "(/proc/loadavg); row 2 always, row 3 never. CPU time of the set "
           "(getrusage of the whole child, helper included; medians): row 1 "
           "%.2f ms, row 2 %.2f ms, row 3 %.2f ms, row 4 %.2f ms (zeroing "
           "paid at open); the memcpy baseline is one thread, CPU = "
           "wall.\n", rows[0].cpu / 1e6, rows[1].cpu / 1e6,
           rows[2].cpu / 1e6, rows[3].cpu / 1e6);
    printf("\nChildren of rows 1-3 whose set took over %.0f× the CPU time of "
           "the row's cheapest (the host faulting in guest memory it had "
           "discarded, under the kernel's zeroing), and the median set of "
           "the others: row 1 %d of %d, %.2f ms; row 2 %d, %.2f ms; row 3 "
           "%d, %.2f ms.\n", HOSTF_X, rows[0].hostf, rounds,
           rows[0].v_quiet / 1e6, rows[1].hostf, rows[1].v_quiet / 1e6,
           rows[2].hostf, rows[2].v_quiet / 1e6);
    return 0;
}
