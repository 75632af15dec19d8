/* SPDX-License-Identifier: MIT */
/*
 * bench_spill_read.c - the spill section's first byte and read-back of spilled
 * objects, each in a process forked for it, against open + mmap of the same
 * file, with the page cache warm and dropped (see bench_spill.c).
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

/* Run @p fn(@p arg, @p out) in a process forked for it alone; its @p len
 * bytes of @p out come back through a pipe. @return 0 or -errno. */
static int in_fresh_process(void (*fn)(const void *arg, void *out),
                            const void *arg, void *out, size_t len)
{
    int fds[2];
    memset(out, 0, len);             /* no garbage if no child answers */
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        unsigned char buf[512];
        close(fds[0]);
        fn(arg, buf);
        _exit(cli_write_all(fds[1], buf, len) == 0 ? 0 : 1);
    }
    close(fds[1]);
    int rc = pid < 0 ? -errno : cli_read_all(fds[0], out, len);
    close(fds[0]);
    int st = 0;
    while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return rc;
}

/* The read-back baseline in a fresh process: ns of plain_read() of every
 * byte, or -1. */
static void plain_child(const void *arg, void *out)
{
    uint64_t sum = 0;
    double ns = -1;
    if (plain_read(arg, true, &ns, &sum) < 0)
        ns = -1;
    memcpy(out, &ns, sizeof ns);
}

static int plain_read_fresh(const struct spilled *o, double *ns)
{
    int rc = in_fresh_process(plain_child, o, ns, sizeof *ns);
    return rc < 0 ? rc : *ns < 0 ? -EIO : 0;
}

struct probe_arg {
    const char             *pool;
    const struct probe_job *j;
};

static void probe_child(const void *arg, void *out)
{
    const struct probe_arg *a = arg;
    struct probe_result r;
    bench_probe(a->pool, a->j, &r);
    memcpy(out, &r, sizeof r);
}

/* Run @p j in a process forked for it alone. */
static int run_probe(struct spill *s, const struct probe_job *j,
                     struct probe_result *res)
{
    _Static_assert(sizeof(struct probe_result) <= 512, "in_fresh_process");
    struct probe_arg a = {s->pool, j};
    int rc = in_fresh_process(probe_child, &a, res, sizeof *res);
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
    int rc = f == NULL ? -ENOMEM
                       : mempool_put(s->h[H_SRC], s->src, len, &o->r);
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
            smp_add(&c[mode], pr.first_ns);
        if (rc == 0 && !cold)
            smp_add(&c[FB_AGAIN], pr.again_ns);
    }
    double ns = 0;
    if (rc == 0 && cold)
        rc = drop_cache(s, o);
    if (rc == 0)
        rc = plain_read(o, false, &ns, &sum);
    if (rc == 0)
        smp_add(&c[FB_PLAIN], ns);
    return rc;
}

static int first_byte(struct spill *s, struct fb_results *r)
{
    int rc = 0;
    spill_progress("first byte");
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
    double v = smp_med(m);
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
        double v = smp_med(&r->c[si][0][kind]);
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
                   ns_cell(&x[k], k == FB_PLAIN ? 0 : smp_med(&x[FB_PLAIN]), w,
                           sizeof w),
                   ns_cell(&y[k], k == FB_PLAIN ? 0 : smp_med(&y[FB_PLAIN]), c,
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

enum { RB_VERIFY, RB_NOVERIFY, RB_AGAIN, RB_PLAIN, RB_KINDS };

struct rb_results {
    struct samples c[2][RB_KINDS]; /* [warm][kind], GB/s */
};

static int rb_one(struct spill *s, bool warm, int kind, struct rb_results *r)
{
    const struct spilled *o = &s->obj[NSIZES - 1];
    if (kind == RB_AGAIN && !warm)
        return 0; /* its first read would warm the cache */
    int rc = warm ? 0 : drop_cache(s, o);
    double ns = 0;
    if (rc == 0 && kind == RB_PLAIN) {
        rc = plain_read_fresh(o, &ns);
    } else if (rc == 0) {
        struct probe_job j = {.op = kind == RB_AGAIN ? PROBE_FILE_AGAIN
                                                     : PROBE_READ_ALL,
                              .noverify = kind == RB_NOVERIFY, .r = o->r,
                              .path = o->path};
        struct probe_result pr;
        rc = run_probe(s, &j, &pr);
        ns = pr.read_ns;
    }
    if (rc == 0)
        smp_add(&r->c[warm][kind], (double)o->len / ns);
    return rc;
}

static int read_back(struct spill *s, struct rb_results *r)
{
    int rc = 0;
    spill_progress("read-back");
    for (int k = 0; k < s->pl.reads && rc == 0; k++)
        for (int warm = 0; warm < 2 && rc == 0; warm++)
            for (int kind = 0; kind < RB_KINDS && rc == 0; kind++)
                rc = rb_one(s, warm, kind, r);
    return rc;
}

static const char *gbs_cell(const struct samples *m, double base, char *buf,
                            size_t len)
{
    double v = smp_med(m);
    if (m->n == 0)
        snprintf(buf, len, "–");
    else if (base > 0)
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
        "get_file + read + release of the same file a second time in a "
        "fresh process's handle (its verdict: unchanged, not checked "
        "again)",
        "plain open + mmap + read, fresh process (**baseline**)"};
    printf("\n#### Read-back of every byte of a spilled 64 MiB object "
           "(GB/s, median; %% of baseline)\n\n");
    printf("| operation | page cache dropped | page cache warm |\n");
    printf("|---|---:|---:|\n");
    for (int k = 0; k < RB_KINDS; k++) {
        char a[48], b[48];
        bool base = k == RB_PLAIN;
        printf("| %s | %s | %s |\n", kind[k],
               gbs_cell(&r->c[0][k], base ? 0 : smp_med(&r->c[0][RB_PLAIN]), a,
                        sizeof a),
               gbs_cell(&r->c[1][k], base ? 0 : smp_med(&r->c[1][RB_PLAIN]), b,
                        sizeof b));
    }
    for (int warm = 1; warm >= 0; warm--) {
        double b = smp_med(&r->c[warm][RB_PLAIN]);
        double v = smp_med(&r->c[warm][RB_VERIFY]);
        double nv = smp_med(&r->c[warm][RB_NOVERIFY]);
        printf("%sTarget ≥ 90 %% of the baseline, page cache %s: default "
               "%.0f %% (**%s**), NOVERIFY %.0f %% (**%s**).", warm ? "\n" : " ",
               warm ? "warm" : "dropped", 100 * v / b,
               v >= 0.9 * b ? "met" : "missed", 100 * nv / b,
               nv >= 0.9 * b ? "met" : "missed");
    }
    printf("\n");
    printf("\nPage cache dropped with fdatasync + "
           "posix_fadvise(POSIX_FADV_DONTNEED) before each cold sample: "
           "at most %.1f %% of the file was still resident after %d drops "
           "(mincore).\n", 100 * s->resident, s->drops);
}

int spill_first_byte(struct spill *s)
{
    static struct fb_results fb; /* large; one run per process */
    int rc = first_byte(s, &fb);
    if (rc == 0)
        print_first_byte(s, &fb);
    return rc;
}

int spill_read_back(struct spill *s)
{
    static struct rb_results rb;
    int rc = read_back(s, &rb);
    if (rc == 0)
        print_read_back(s, &rb);
    return rc;
}
