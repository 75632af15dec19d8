/* SPDX-License-Identifier: MIT */
/*
 * bench_spill.c - mempool-bench's spill section: what spilling costs next to
 * what the kernel and the disk do on their own, measured in the same run.
 *
 *   throughput  resident 64 MiB objects given to mempool_move_to_disk() one
 *               by one (crc32c, write "<idx>-<gen>.tmp", rename, free the
 *               memory) through a handle on MEMPOOL_IO_AUTO (stats.io_backend
 *               says what ran) and one on MEMPOOL_IO_PWRITE; and sets of
 *               64 MiB past the setter's max_memsize, each of which spills
 *               one victim. Baseline: write(2) of the same bytes, from the
 *               same arena pages, to a new file in the same directory
 *               (4096 header bytes + payload, no fsync: spill files are a
 *               cache and are not synced); with fdatasync for context.
 *               Rounds alternate which backend goes first; the figures are
 *               medians of per-file GB/s.
 *   first byte  a get of a spilled 4 KiB, 1 MiB and 64 MiB object, from the
 *               call to its first byte read, in a process forked for that
 *               one measurement (its handle has no mapping yet), with the
 *               default payload crc check and with MEMPOOL_OPEN_NOVERIFY;
 *               then the same get again (mapping cached). Baseline: open +
 *               mmap + first payload byte of the same file. Page cache warm
 *               (just written) and dropped.
 *   read-back   get + read of every byte + release of the spilled 64 MiB
 *               object in a fresh process, against open + mmap + read of
 *               every byte of the same file; page cache dropped and warm.
 *   tails       each get+touch+release of 64 B resident objects timed on its
 *               own in a reader process: idle, while another process sets
 *               16 MiB objects past its max_memsize (each set spills one),
 *               and while the pool's background spiller keeps the arena
 *               under its high watermark against a process that fills it.
 *
 * Dropping the page cache needs no privilege: fdatasync the file (dirty
 * pages cannot be dropped), posix_fadvise(POSIX_FADV_DONTNEED), and ask
 * mincore() how much stayed resident; the worst case is printed. Nothing
 * maps the file then: gets of spilled objects run only in probe processes,
 * which have exited.
 *
 * Where: a temp dir under --dir, else /var/tmp, the working directory or
 * /tmp, the first that is not tmpfs (a RAM disk says nothing about disks);
 * its filesystem is printed. The pool (bench-spill-PID) keeps its spill
 * files there and is destroyed at the end, then the temp dir is removed.
 */
#include "bench.h"
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define KIB        (1ull << 10)
#define MIB        (1ull << 20)
#define BIG        (64 * MIB)   /* throughput and read-back objects */
#define HDR        4096u        /* a spill file's header block */
#define ARENA      (512 * MIB)
#define NSIZES     3            /* first-byte sizes */
#define MAX_SAMP   64
#define DIST_SIZE  (16 * MIB)   /* the disturbers' objects */
#define DIST_RING  64
#define LAT_COUNT  1024         /* 64 B objects the latency reader cycles */
#define TMPFS_MAGIC_ 0x01021994
#define RAMFS_MAGIC_ 0x858458f6

/* ---- plan and state ------------------------------------------------------ */

struct plan {
    int      rounds, sync_files;        /* throughput: rotations, synced */
    int      warm, cold;                /* probes per first-byte cell */
    int      reads;                     /* read-back samples per cell */
    int      reps;                      /* latency runs per condition */
    uint64_t lat_ns;                    /* length of one latency run */
};

static const struct plan quick_plan = {1, 1, 3, 2, 2, 1, 400000000};
static const struct plan full_plan = {4, 3, 11, 5, 5, 3, 1500000000};

/* Samples of one figure (ns, or GB/s for rates) and totals for a rate. */
struct samples {
    double   v[MAX_SAMP * 4];
    int      n;
    uint64_t bytes, ns;
};

struct spilled {      /* an object made for the first-byte and read tests */
    mempool_dref r;
    uint64_t     len;
    char         path[PATH_MAX];
};

struct spill {
    struct plan    pl;
    char           dir[PATH_MAX]; /* our temp dir */
    char           fs[640];       /* what it is on */
    bool           ram;           /* tmpfs: no disk behind it */
    char           pool[64];
    mempool       *h[3];          /* see open_pool() */
    char           backend[2][16];
    unsigned char *src;           /* BIG bytes of pattern */
    struct spilled obj[NSIZES];
    double         resident;      /* worst page-cache share after a drop */
    int            drops;
};

static void add(struct samples *s, double v)
{
    if (s->n < (int)(sizeof s->v / sizeof s->v[0]))
        s->v[s->n++] = v;
}

/* A file of @p bytes written in @p ns: one GB/s sample. */
static void add_rate(struct samples *s, uint64_t bytes, uint64_t ns)
{
    add(s, (double)bytes / (double)(ns ? ns : 1));
    s->bytes += bytes;
    s->ns += ns;
}

static double med(const struct samples *s)
{
    double v[sizeof s->v / sizeof s->v[0]];
    memcpy(v, s->v, (size_t)s->n * sizeof *v);
    return bench_median(v, s->n);
}

static void progress(const char *what)
{
    fprintf(stderr, "mempool-bench: spill: %s ...\n", what);
}

/* ---- where the files go --------------------------------------------------- */

/* "ext4 on /dev/vda, mounted on /" for the mount holding @p dir. */
static void describe_fs(const char *dir, char *out, size_t len)
{
    struct stat st;
    char line[4096], mnt[PATH_MAX], best[PATH_MAX] = "?", type[64] = "?",
         src[256] = "?";
    size_t best_len = 0;
    FILE *f = stat(dir, &st) == 0 ? fopen("/proc/self/mountinfo", "r") : NULL;
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        unsigned maj, mnr;
        char *dash = strstr(line, " - ");
        if (dash == NULL ||
            sscanf(line, "%*d %*d %u:%u %*s %4095s", &maj, &mnr, mnt) != 3 ||
            makedev(maj, mnr) != st.st_dev)
            continue;
        size_t n = strlen(mnt);
        bool under = strncmp(dir, mnt, n) == 0 &&
                     (dir[n] == '/' || dir[n] == '\0' || n == 1);
        if (under && n >= best_len &&
            sscanf(dash + 3, "%63s %255s", type, src) == 2) {
            best_len = n;
            snprintf(best, sizeof best, "%s", mnt);
        }
    }
    if (f != NULL)
        fclose(f);
    snprintf(out, len, "%s on %s, mounted on %s", type, src, best);
}

/* Make our temp dir under @p parent, unless it is tmpfs and @p any is
 * false. */
static int try_dir(struct spill *s, const char *parent, bool any)
{
    struct statfs sf;
    char real[PATH_MAX];
    if (realpath(parent, real) == NULL || statfs(real, &sf) < 0)
        return -errno;
    bool ram = sf.f_type == TMPFS_MAGIC_ || sf.f_type == RAMFS_MAGIC_;
    if (ram && !any)
        return -EXDEV;
    int n = snprintf(s->dir, sizeof s->dir, "%s/mempool-bench.XXXXXX",
                     strcmp(real, "/") == 0 ? "" : real);
    if (n < 0 || (size_t)n >= sizeof s->dir)
        return -ENAMETOOLONG;
    if (mkdtemp(s->dir) == NULL)
        return -errno;
    s->ram = ram;
    describe_fs(s->dir, s->fs, sizeof s->fs);
    return 0;
}

static int make_dir(struct spill *s, const char *want)
{
    static const char *const cands[] = {"/var/tmp", ".", "/tmp"};
    if (want != NULL)
        return try_dir(s, want, true);
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++)
            if (try_dir(s, cands[i], pass == 1) == 0)
                return 0;
    return -ENOENT;
}

/* ---- the pool --------------------------------------------------------------- */

/* Three workers: [0] MEMPOOL_IO_AUTO and [1] MEMPOOL_IO_PWRITE do the
 * timed writes; [2] (the creator) owns the objects the others move, so
 * that their own limits see only what the test gives them. */
enum { H_AUTO, H_PWRITE, H_SRC, NHANDLES };

static int open_pool(struct spill *s)
{
    mempool_options o;
    mempool_options_init(&o);
    snprintf(s->pool, sizeof s->pool, "bench-spill-%d", (int)getpid());
    o.flags = MEMPOOL_OPEN_CREATE | MEMPOOL_OPEN_EXCL;
    o.arena_bytes = ARENA;
    o.spill_dir = s->dir;
    o.spiller = 0; /* no background spiller until the tails test wants one */
    int rc = mempool_open(s->pool, &o, &s->h[H_SRC]);
    o.flags = 0;
    if (rc == 0)
        rc = mempool_open(s->pool, &o, &s->h[H_AUTO]);
    o.io_mode = MEMPOOL_IO_PWRITE;
    return rc < 0 ? rc : mempool_open(s->pool, &o, &s->h[H_PWRITE]);
}

static int stats(mempool *p, struct mempool_stats *st)
{
    memset(st, 0, sizeof *st);
    st->size = sizeof *st;
    return mempool_stats_get(p, st);
}

/* Remember what backend handle @p i ran, once it has written. */
static void note_backend(struct spill *s, int i)
{
    struct mempool_stats st;
    if (s->backend[i][0] == '\0' && stats(s->h[i], &st) == 0)
        snprintf(s->backend[i], sizeof s->backend[i], "%s", st.io_backend);
}

/* ---- throughput ------------------------------------------------------------- */

/*
 * A step times five writes of 64 MiB back to back, in an order that
 * rotates from step to step: the baseline write(2), move_to_disk through
 * each backend, and a set past max_memsize through each backend. Each is
 * compared with the baseline of its own step, and the table gives the
 * median of those ratios: on a VM whose page allocation speed changes by
 * 10× from one second to the next (host faults on guest pages), only
 * neighbours are comparable.
 */
enum { OP_BASE, OP_MOVE, OP_MOVE_PW, OP_LIMIT, OP_LIMIT_PW, OP_N };

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
 * (and fdatasync it with @p sync); @p ns gets the time, open to close. */
static int write_file(const char *path, const void *data, uint64_t len,
                      bool sync, uint64_t *ns)
{
    static const unsigned char zero[HDR];
    uint64_t t0 = cli_now_ns();
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int rc = fd < 0 ? -errno : cli_write_all(fd, zero, HDR);
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
static int op_write(struct spill *s, mempool_dref r, bool sync, uint64_t *ns)
{
    char path[PATH_MAX + 32];
    mempool_view v;
    int rc = mempool_get(s->h[H_SRC], r, &v);
    if (rc < 0)
        return rc;
    snprintf(path, sizeof path, "%s/write-%d", s->dir, (int)getpid());
    rc = write_file(path, v.data, v.len, sync, ns);
    mempool_release(s->h[H_SRC], &v);
    return rc;
}

/* Handle @p h moves resident object @p r to disk; it is deleted after. */
static int op_move(struct spill *s, int h, mempool_dref r, uint64_t *ns)
{
    uint64_t t0 = cli_now_ns();
    int rc = mempool_move_to_disk(s->h[h], r, NULL);
    *ns = cli_now_ns() - t0;
    note_backend(s, h);
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
        return op_write(s, t->src, false, ns);
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
        add_rate(&r->gbs[op], HDR + BIG, ns[op]);
        add(&r->ratio[op], (double)(HDR + BIG) / (double)ns[op] / base);
    }
    return rc;
}

/* Give each limited handle its limit and two resident objects (or, with
 * @p end, take them back). */
static int tp_limits(struct spill *s, struct tp_state *t, bool end)
{
    int rc = 0;
    for (int h = 0; h < 2 && rc == 0; h++) {
        rc = mempool_limit_set(s->h[h], MEMPOOL_LIMIT_MEMSIZE, end ? 0 : 2 * BIG);
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
    progress("throughput");
    int rc = stats(s->h[H_SRC], &a);
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
            rc = op_write(s, t.src, true, &ns);
        if (rc == 0)
            rc = mempool_delete(s->h[H_SRC], t.src);
        if (rc == 0)
            add_rate(&r->sync, HDR + BIG, ns);
    }
    if (rc == 0)
        rc = stats(s->h[H_SRC], &b);
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
    double g = med(m), x = ratio ? med(ratio) : NAN;
    if (ratio != NULL)
        snprintf(q, sizeof q, "%.0f %%", 100 * x);
    if (target)
        snprintf(goal, sizeof goal, "≥ 80 %%: %s",
                 x >= 0.8 ? "**met**" : "**missed**");
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
        tp_row("move_to_disk: crc32c + write + rename + free", be[h],
               &t->gbs[OP_MOVE + h], &t->ratio[OP_MOVE + h], true);
    for (int h = 0; h < 2; h++)
        tp_row("set past max_memsize: copy in + spill one victim", be[h],
               &t->gbs[OP_LIMIT + h], &t->ratio[OP_LIMIT + h], false);
    tp_row("write(2) + fdatasync (context: the device)", "kernel", &t->sync,
           NULL, false);
}

/* ---- page cache and plain mappings ------------------------------------------ */

/* Share of the first @p len bytes of @p fd that are in the page cache. */
static double resident_share(int fd, uint64_t len)
{
    size_t pages = (size_t)((len + 4095) / 4096), in = 0;
    unsigned char *vec = malloc(pages);
    void *m = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    if (vec != NULL && m != MAP_FAILED && mincore(m, len, vec) == 0)
        for (size_t i = 0; i < pages; i++)
            in += vec[i] & 1;
    else
        in = pages; /* unknown: assume the worst */
    if (m != MAP_FAILED)
        munmap(m, len);
    free(vec);
    return (double)in / (double)pages;
}

/* Write @p o's file back and drop it from the page cache. */
static int drop_cache(struct spill *s, const struct spilled *o)
{
    int fd = open(o->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = fdatasync(fd) < 0 ? -errno : 0;
    if (rc == 0)
        rc = -posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    double share = resident_share(fd, HDR + o->len);
    s->resident = share > s->resident ? share : s->resident;
    s->drops++;
    close(fd);
    return rc;
}

/* The baseline: open + mmap @p o's file and read its first payload byte
 * (@p all: every payload byte); @p ns is the time to that point (the
 * munmap after it is not counted). */
static int plain_read(const struct spilled *o, bool all, double *ns,
                      uint64_t *sum)
{
    uint64_t t0 = cli_now_ns();
    int fd = open(o->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    void *m = mmap(NULL, HDR + o->len, PROT_READ, MAP_SHARED, fd, 0);
    int rc = m == MAP_FAILED ? -errno : 0;
    close(fd);
    if (rc < 0)
        return rc;
    const volatile unsigned char *d = (const unsigned char *)m + HDR;
    *sum += all ? bench_sum((const void *)d, o->len) : d[0];
    *ns = (double)(cli_now_ns() - t0);
    munmap(m, HDR + o->len);
    return 0;
}

/* Run @p j in a process forked for it alone. */
static int run_probe(struct spill *s, const struct probe_job *j,
                     struct probe_result *res)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        struct probe_result r;
        close(fds[0]);
        bench_probe(s->pool, j, &r);
        _exit(cli_write_all(fds[1], &r, sizeof r) == 0 ? 0 : 1);
    }
    close(fds[1]);
    int rc = pid < 0 ? -errno : cli_read_all(fds[0], res, sizeof *res);
    close(fds[0]);
    int st = 0;
    while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (rc == 0 && !(res->view_flags & MEMPOOL_VIEW_DISK) && res->err == 0)
        rc = -EPROTO; /* the object should have been on disk */
    return rc < 0 ? rc : res->err;
}

/* ---- first byte ---------------------------------------------------------------- */

static const uint64_t fb_sizes[NSIZES] = {4 * KIB, MIB, BIG};
enum { FB_VERIFY, FB_NOVERIFY, FB_AGAIN, FB_PLAIN, FB_KINDS };

struct fb_results {
    struct samples c[NSIZES][2][FB_KINDS]; /* [size][cold][kind] */
};

static int make_spilled(struct spill *s, uint64_t len, struct spilled *o)
{
    mempool_fileref *f = malloc(sizeof *f);
    int rc = f == NULL ? -ENOMEM : mempool_put(s->h[H_SRC], s->src, len, &o->r);
    if (rc == 0)
        rc = mempool_move_to_disk(s->h[H_AUTO], o->r, f);
    if (rc == 0)
        snprintf(o->path, sizeof o->path, "%s", f->path);
    o->len = len;
    free(f);
    return rc;
}

/* One sample of every first-byte figure of object @p si. */
static int fb_sample(struct spill *s, int si, bool cold, struct fb_results *r)
{
    const struct spilled *o = &s->obj[si];
    struct samples *c = r->c[si][cold];
    int rc = 0;
    uint64_t sum = 0;
    for (int mode = FB_VERIFY; mode <= FB_NOVERIFY && rc == 0; mode++) {
        struct probe_job j = {.op = PROBE_FIRST_BYTE,
                              .noverify = mode == FB_NOVERIFY, .r = o->r,
                              .repeats = cold ? 0 : 200};
        struct probe_result pr;
        if (cold)
            rc = drop_cache(s, o);
        if (rc == 0)
            rc = run_probe(s, &j, &pr);
        if (rc == 0)
            add(&c[mode], pr.first_ns);
        if (rc == 0 && !cold)
            add(&c[FB_AGAIN], pr.again_ns);
    }
    double ns;
    if (rc == 0 && cold)
        rc = drop_cache(s, o);
    if (rc == 0)
        rc = plain_read(o, false, &ns, &sum);
    if (rc == 0)
        add(&c[FB_PLAIN], ns);
    return rc;
}

static int first_byte(struct spill *s, struct fb_results *r)
{
    int rc = 0;
    progress("first byte");
    for (int si = 0; si < NSIZES && rc == 0; si++)
        rc = make_spilled(s, fb_sizes[si], &s->obj[si]);
    for (int si = 0; si < NSIZES && rc == 0; si++) {
        for (int k = 0; k < s->pl.warm && rc == 0; k++)
            rc = fb_sample(s, si, false, r);
        for (int k = 0; k < s->pl.cold && rc == 0; k++)
            rc = fb_sample(s, si, true, r);
    }
    return rc;
}

/* "1.23 ms (4.5×)": a median and its ratio to @p base. */
static const char *ns_cell(const struct samples *m, double base, char *buf,
                           size_t len)
{
    char t[24];
    double v = med(m);
    if (m->n == 0)
        snprintf(buf, len, "–");
    else if (base > 0)
        snprintf(buf, len, "%s (%.*g×)", bench_fmt_ns(v, t, sizeof t),
                 v / base >= 1 ? 3 : 2, v / base);
    else
        snprintf(buf, len, "%s", bench_fmt_ns(v, t, sizeof t));
    return buf;
}

/* "23.1 µs .. 27.3 µs (**met**)": a first-byte figure over the sizes,
 * against the target "independent of size, tens of µs". */
static void fb_target(const struct fb_results *r, int kind, const char *what)
{
    double lo = INFINITY, hi = 0;
    char a[24], b[24];
    for (int si = 0; si < NSIZES; si++) {
        double v = med(&r->c[si][0][kind]);
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    printf("%s %s .. %s (**%s**)", what, bench_fmt_ns(lo, a, sizeof a),
           bench_fmt_ns(hi, b, sizeof b),
           hi <= 2 * lo + 5000 && hi < 100000 ? "met" : "missed");
}

static void print_first_byte(const struct spill *s, const struct fb_results *r)
{
    static const char *const kind[FB_KINDS] = {
        "get, payload crc checked (default), fresh process",
        "get with MEMPOOL_OPEN_NOVERIFY, fresh process",
        "get again, mapping cached (median of 200)",
        "plain open + mmap + read (**baseline**)"};
    printf("\n#### First byte of a spilled object (call to first byte read; "
           "median, × baseline)\n\n");
    printf("| size | operation | page cache warm | page cache dropped |\n");
    printf("|---:|---|---:|---:|\n");
    for (int si = 0; si < NSIZES; si++)
        for (int k = 0; k < FB_KINDS; k++) {
            char sz[24], w[48], c[48];
            const struct samples *x = r->c[si][0], *y = r->c[si][1];
            cli_fmt_bytes(s->obj[si].len, sz, sizeof sz);
            printf("| %s | %s | %s | %s |\n", sz, kind[k],
                   ns_cell(&x[k], k == FB_PLAIN ? 0 : med(&x[FB_PLAIN]), w,
                           sizeof w),
                   ns_cell(&y[k], k == FB_PLAIN ? 0 : med(&y[FB_PLAIN]), c,
                           sizeof c));
        }
    printf("\nTarget \"independent of size, tens of µs\", 4 KiB .. 64 MiB, "
           "page cache warm, first map:");
    fb_target(r, FB_VERIFY, " default");
    fb_target(r, FB_NOVERIFY, "; NOVERIFY");
    fb_target(r, FB_AGAIN, "; mapping cached");
    printf(".\n");
}

/* ---- read-back ------------------------------------------------------------------ */

enum { RB_VERIFY, RB_NOVERIFY, RB_PLAIN, RB_KINDS };

struct rb_results {
    struct samples c[2][RB_KINDS]; /* [warm][kind], GB/s */
};

static int rb_one(struct spill *s, bool warm, int kind, struct rb_results *r)
{
    const struct spilled *o = &s->obj[NSIZES - 1];
    int rc = warm ? 0 : drop_cache(s, o);
    double ns = 0;
    uint64_t sum = 0;
    if (rc == 0 && kind == RB_PLAIN) {
        rc = plain_read(o, true, &ns, &sum);
    } else if (rc == 0) {
        struct probe_job j = {.op = PROBE_READ_ALL,
                              .noverify = kind == RB_NOVERIFY, .r = o->r};
        struct probe_result pr;
        rc = run_probe(s, &j, &pr);
        ns = pr.read_ns;
    }
    if (rc == 0)
        add(&r->c[warm][kind], (double)o->len / ns);
    return rc;
}

static int read_back(struct spill *s, struct rb_results *r)
{
    int rc = 0;
    progress("read-back");
    for (int k = 0; k < s->pl.reads && rc == 0; k++)
        for (int warm = 0; warm < 2 && rc == 0; warm++)
            for (int kind = 0; kind < RB_KINDS && rc == 0; kind++)
                rc = rb_one(s, warm, kind, r);
    return rc;
}

static const char *gbs_cell(const struct samples *m, double base, char *buf,
                            size_t len)
{
    double v = med(m);
    if (base > 0)
        snprintf(buf, len, "%.2f (%.0f %%)", v, 100 * v / base);
    else
        snprintf(buf, len, "%.2f", v);
    return buf;
}

static void print_read_back(const struct spill *s, const struct rb_results *r)
{
    static const char *const kind[RB_KINDS] = {
        "get (payload crc checked, default) + read + release, fresh process",
        "get with MEMPOOL_OPEN_NOVERIFY + read + release, fresh process",
        "plain open + mmap + read (**baseline**)"};
    printf("\n#### Read-back of every byte of a spilled 64 MiB object "
           "(GB/s, median; %% of baseline)\n\n");
    printf("| operation | page cache dropped | page cache warm |\n");
    printf("|---|---:|---:|\n");
    for (int k = 0; k < RB_KINDS; k++) {
        char a[48], b[48];
        bool base = k == RB_PLAIN;
        printf("| %s | %s | %s |\n", kind[k],
               gbs_cell(&r->c[0][k], base ? 0 : med(&r->c[0][RB_PLAIN]), a,
                        sizeof a),
               gbs_cell(&r->c[1][k], base ? 0 : med(&r->c[1][RB_PLAIN]), b,
                        sizeof b));
    }
    printf("\nPage cache dropped with fdatasync + "
           "posix_fadvise(POSIX_FADV_DONTNEED) before each cold sample: "
           "at most %.1f %% of the file was still resident after %d drops "
           "(mincore).\n", 100 * s->resident, s->drops);
}

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
    if (stats(p, &st) < 0)
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
        rc = stats(s->h[H_SRC], &a);
    uint64_t t0 = cli_now_ns();
    if (rc == 0)
        rc = cli_write_all(k->job_fd, "G", 1);
    if (rc == 0)
        rc = cli_read_all(k->res_fd, res, sizeof *res);
    L->ns[cond] += cli_now_ns() - t0;
    if (rc == 0)
        rc = stats(s->h[H_SRC], &b);
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
    progress("tails");
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

/* ---- the section ------------------------------------------------------------------- */

static void print_intro(const struct spill *s)
{
    char arena[24];
    printf("\n### Spilling\n\nspill dir %s: %s%s; arena %s; "
           "MEMPOOL_IO_AUTO ran %s\n", s->dir, s->fs,
           s->ram ? " (tmpfs: RAM, not a disk; use --dir)" : "",
           cli_fmt_bytes(ARENA, arena, sizeof arena),
           s->backend[0][0] ? s->backend[0] : "?");
}

static void print_notes(void)
{
    printf("\nThroughput: per file, open to close for write(2), the whole "
           "call for move_to_disk and set; bytes are the file's (4 KiB "
           "header + payload). Each step runs the five 64 MiB writes back to "
           "back, in an order that rotates from step to step. "
           "First byte and read-back run each get in a process forked for "
           "it, so the handle maps the file anew; the baseline maps the "
           "same file (its munmap is not timed). Tails: each op is timed "
           "with two clock reads, whose cost is in every figure.\n\n");
}

static int run_all(struct spill *s)
{
    static struct tp_results tp;
    static struct fb_results fb;
    static struct rb_results rb;
    static struct lat_results lat;
    int rc = throughput(s, &tp);
    if (rc < 0)
        return rc;
    print_intro(s);
    print_throughput(s, &tp);
    fflush(stdout);
    if ((rc = first_byte(s, &fb)) < 0)
        return rc;
    print_first_byte(s, &fb);
    fflush(stdout);
    if ((rc = read_back(s, &rb)) < 0)
        return rc;
    print_read_back(s, &rb);
    fflush(stdout);
    if ((rc = tails(s, &lat)) < 0)
        return rc;
    print_tails(&lat);
    print_notes();
    return 0;
}

static int fill_src(struct spill *s)
{
    uint64_t x = 0x9e3779b97f4a7c15ull;
    s->src = malloc(BIG);
    if (s->src == NULL)
        return -ENOMEM;
    for (uint64_t i = 0; i < BIG; i += 8) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        memcpy(s->src + i, &x, sizeof x);
    }
    return 0;
}

int bench_spill(const struct spill_opts *o)
{
    static struct spill s;
    s.pl = o->quick ? quick_plan : full_plan;
    int rc = make_dir(&s, o->dir);
    if (rc < 0) {
        fprintf(stderr, "mempool-bench: spill: no temp dir%s%s: %s\n",
                o->dir ? " in " : "", o->dir ? o->dir : "",
                mempool_strerror(rc));
        return rc;
    }
    rc = fill_src(&s);
    if (rc == 0)
        rc = open_pool(&s);
    if (rc == 0)
        rc = run_all(&s);
    for (int i = 0; i < NHANDLES; i++)
        if (s.h[i] != NULL)
            mempool_close(s.h[i]);
    if (s.h[H_SRC] != NULL)
        mempool_destroy(s.pool);
    if (rmdir(s.dir) < 0)
        fprintf(stderr, "mempool-bench: spill: rmdir %s: %s\n", s.dir,
                strerror(errno));
    free(s.src);
    return rc;
}
