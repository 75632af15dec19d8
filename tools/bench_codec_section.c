/* SPDX-License-Identifier: MIT */
/*
 * bench_codec_section.c - mempool-bench's codec section: what typed objects
 * cost next to the obvious alternative, handing the same encoded bytes over
 * with write() and read() into a malloc'd buffer, measured in the same run.
 *
 * Objects: a string column of ROWS elements (0..23 bytes each, NULs and
 * UTF-8 inside, every 10th missing) and a table of ROWS rows (int64,
 * float64, bits, 20-byte records and that string column). ROWS is
 * 1,000,000, or 100,000 with --quick.
 *
 *   set_obj     mempool_put_obj(): reserve, encode in place, publish
 *   get_obj     mempool_get_obj() + mempool_release(): pin and decode,
 *               which checks every offset (O(rows)) and copies nothing
 *   hand-over   set_obj + get_obj, the sum of their medians
 *   fresh       the same get_obj + release, the first one in a process
 *               forked for that one measurement (its mapping of the arena
 *               has no page-table entries for the object yet)
 *   spilled     the object moved to disk (mempool_move_to_disk); the first
 *               get_obj + release in a fresh process maps the file, checks
 *               the payload crc32c (or not, with MEMPOOL_OPEN_NOVERIFY) and
 *               decodes; then the same get_obj again, the mapping cached
 *               (page cache warm: the file was just written)
 * Baselines, with the object's encoded bytes:
 *   pipe        a writer process write()s them into a pipe (1 MiB pipe
 *               buffer where allowed); this process read()s them into a
 *               malloc'd buffer, reused and prefaulted (the baseline), or
 *               malloc'd for each hand-over (above glibc's 32 MiB mmap
 *               threshold a fresh mapping, page faults included)
 *   file        write() them to a new file in the temp dir (page cache, no
 *               fsync) and read() them back into the same kinds of buffer
 *
 * set_obj, get_obj and the four baselines run interleaved, once per round;
 * the figures are medians over the rounds (the fresh-process figures over
 * the probes), and the ratios are of those medians. The arena is filled and
 * emptied once first and each object is set once untimed, so sets run warm
 * as in the core section. The pool (bench-codec-PID) keeps its spill files
 * in a temp dir under --dir (else /var/tmp, else /tmp); it is destroyed and
 * the temp dir removed at the end.
 */
#include "bench.h"
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MIB      (1ull << 20)
#define ARENA    (256 * MIB)
#define MAX_REPS 16

struct cplan {
    uint64_t rows;
    int      reps;   /* interleaved rounds */
    int      probes; /* fresh processes per fresh-process figure */
    int      again;  /* gets again in each spilled probe */
};

static const struct cplan quick_plan = {100000, 3, 2, 20};
static const struct cplan full_plan = {1000000, 9, 5, 50};

/* ---- the objects ------------------------------------------------------- */

struct data {
    uint64_t       *offs;
    uint8_t        *blob, *valid, *flag, *rec;
    int64_t        *id;
    double         *price;
    mempool_strings s;
    mempool_column  c[5];
    mempool_table   t;
};

static void data_free(struct data *d)
{
    free(d->offs);
    free(d->blob);
    free(d->valid);
    free(d->flag);
    free(d->rec);
    free(d->id);
    free(d->price);
}

/* The string column: 0..23 bytes from a piece with NULs and UTF-8, every
 * 10th element missing. */
static void make_column(struct data *d, uint64_t rows)
{
    static const char pieces[] = "ab\0c\xc3\xa9\xe2\x82\xac-xyz0123456789";
    uint64_t x = 88172645463325252ull, at = 0;
    d->offs[0] = 0;
    for (uint64_t i = 0; i < rows; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint64_t len = i % 10 == 9 ? 0 : x % 24;
        for (uint64_t k = 0; k < len; k++)
            d->blob[at++] = (uint8_t)pieces[((x >> 8) + k) %
                                            (sizeof pieces - 1)];
        if (i % 10 != 9)
            d->valid[i / 8] |= (uint8_t)(1u << (i % 8));
        d->offs[i + 1] = at;
    }
    d->s = (mempool_strings){rows, d->offs, d->blob, d->valid};
}

static mempool_column array_col(const char *name, uint32_t dtype,
                                const void *data, uint64_t rows,
                                uint64_t esz)
{
    return (mempool_column){
        .name = name, .type = MEMPOOL_TYPE_ARRAY,
        .array = {.dtype = dtype, .ndim = 1, .shape = {rows},
                  .elem_size = esz, .data = data}};
}

static void make_table(struct data *d, uint64_t rows)
{
    for (uint64_t i = 0; i < rows; i++) {
        d->id[i] = (int64_t)i;
        d->price[i] = (double)i * 0.25;
        d->flag[i / 8] |= (uint8_t)((i % 3 == 0) << (i % 8));
    }
    memset(d->rec, 0x5a, rows * 20);
    d->c[0] = array_col("id", MEMPOOL_DTYPE_INT64, d->id, rows, 0);
    d->c[1] = array_col("price", MEMPOOL_DTYPE_FLOAT64, d->price, rows, 0);
    d->c[2] = array_col("flag", MEMPOOL_DTYPE_BITS, d->flag, rows, 0);
    d->c[3] = array_col("rec", MEMPOOL_DTYPE_RECORD, d->rec, rows, 20);
    d->c[4] = (mempool_column){.name = "name", .type = MEMPOOL_TYPE_STRINGS,
                               .strings = d->s};
    d->t = (mempool_table){.nrows = rows, .ncols = 5, .cols = d->c};
}

static int make_data(struct data *d, uint64_t rows)
{
    d->offs = malloc((rows + 1) * sizeof *d->offs);
    d->blob = malloc(rows * 24);
    d->valid = calloc(rows / 8 + 1, 1);
    d->flag = calloc(rows / 8 + 1, 1);
    d->rec = malloc(rows * 20);
    d->id = malloc(rows * sizeof *d->id);
    d->price = malloc(rows * sizeof *d->price);
    if (!d->offs || !d->blob || !d->valid || !d->flag || !d->rec || !d->id ||
        !d->price)
        return -ENOMEM;
    make_column(d, rows);
    make_table(d, rows);
    return 0;
}

/* ---- state and samples ------------------------------------------------- */

enum {
    K_PIPE, K_PIPE_NEW, K_FILE, K_FILE_NEW, K_SET, K_GET, K_FRESH, K_SPILL,
    K_SPILL_NOVERIFY, K_SPILL_AGAIN, K_N
};

struct cres {                   /* one object's samples, ns */
    double   v[K_N][MAX_REPS];
    int      n[K_N];
    uint64_t len;               /* encoded bytes */
};

struct codec {
    struct cplan   pl;
    char           dir[PATH_MAX];
    char           pool[64];
    mempool       *p;
    struct data    d;
    unsigned char *enc;  /* the object's encoded bytes, a private copy */
    unsigned char *buf;  /* the baselines' reused buffer, prefaulted */
    uint64_t       len;
    struct kid     writer; /* job_fd: lengths to write; res_fd: the data */
};

union decoded {
    mempool_strings s;
    mempool_table   t;
};

static void add(struct cres *r, int k, double ns)
{
    if (r->n[k] < MAX_REPS)
        r->v[k][r->n[k]++] = ns;
}

static double med(struct cres *r, int k)
{
    return bench_median(r->v[k], r->n[k]);
}

/* ---- baselines --------------------------------------------------------- */

/* The writer's life: for each length read from @p ctl, write that many
 * bytes of @p src to @p out; a length of 0 or end of file ends it. */
_Noreturn static void writer_main(const unsigned char *src, int ctl, int out)
{
    uint64_t len;
    int rc = 0;
    while (rc == 0 && cli_read_all(ctl, &len, sizeof len) == 0 && len > 0)
        rc = cli_write_all(out, src, len);
    _exit(rc == 0 ? 0 : 1);
}

static int start_writer(struct codec *c)
{
    int ctl[2], data[2];
    if (pipe2(ctl, O_CLOEXEC) < 0)
        return -errno;
    if (pipe2(data, O_CLOEXEC) < 0) {
        close(ctl[0]);
        close(ctl[1]);
        return -errno;
    }
    fcntl(data[1], F_SETPIPE_SZ, 1 << 20); /* best effort */
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(ctl[1]);
        close(data[0]);
        writer_main(c->enc, ctl[0], data[1]);
    }
    close(ctl[0]);
    close(data[1]);
    c->writer = (struct kid){pid, ctl[1], data[0]};
    return pid < 0 ? -errno : 0;
}

static int stop_writer(struct codec *c)
{
    struct kid *k = &c->writer;
    int st = 0;
    if (k->pid <= 0)
        return 0;
    close(k->job_fd);
    close(k->res_fd);
    while (waitpid(k->pid, &st, 0) < 0 && errno == EINTR)
        ;
    k->pid = 0;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -ECHILD;
}

/* The receiving end: the reused buffer, or a new one (@p fresh). */
static unsigned char *recv_buf(struct codec *c, bool fresh)
{
    return fresh ? malloc(c->len) : c->buf;
}

/* The writer sends the bytes through the pipe; read them all. */
static int pipe_once(struct codec *c, bool fresh, double *ns)
{
    uint64_t t0 = cli_now_ns();
    unsigned char *dst = recv_buf(c, fresh);
    int rc = dst == NULL ? -ENOMEM : 0;
    if (rc == 0)
        rc = cli_write_all(c->writer.job_fd, &c->len, sizeof c->len);
    if (rc == 0)
        rc = cli_read_all(c->writer.res_fd, dst, c->len);
    *ns = (double)(cli_now_ns() - t0);
    if (fresh)
        free(dst);
    return rc;
}

/* Write the bytes to a new file, read them back; the unlink is not
 * timed. */
static int file_once(struct codec *c, bool fresh, double *ns)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/handover", c->dir);
    uint64_t t0 = cli_now_ns();
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int rc = fd < 0 ? -errno : cli_write_all(fd, c->enc, c->len);
    if (rc == 0 && lseek(fd, 0, SEEK_SET) < 0)
        rc = -errno;
    unsigned char *dst = rc == 0 ? recv_buf(c, fresh) : NULL;
    if (rc == 0 && dst == NULL)
        rc = -ENOMEM;
    if (rc == 0)
        rc = cli_read_all(fd, dst, c->len);
    if (fd >= 0)
        close(fd);
    *ns = (double)(cli_now_ns() - t0);
    if (fresh)
        free(dst);
    unlink(path);
    return rc;
}

/* ---- mempool ----------------------------------------------------------- */

/* One timed set_obj, then one timed get_obj + release; then delete. */
static int set_get_once(struct codec *c, uint32_t type, const void *obj,
                        struct cres *r)
{
    mempool_dref ref;
    mempool_view v;
    union decoded out;
    uint64_t t0 = cli_now_ns();
    int rc = mempool_put_obj(c->p, type, obj, NULL, &ref);
    uint64_t t1 = cli_now_ns();
    if (rc < 0)
        return rc;
    rc = mempool_get_obj(c->p, ref, type, &out, &v);
    if (rc == 0)
        rc = mempool_release(c->p, &v);
    uint64_t t2 = cli_now_ns();
    add(r, K_SET, (double)(t1 - t0));
    add(r, K_GET, (double)(t2 - t1));
    int rc2 = mempool_delete(c->p, ref);
    return rc < 0 ? rc : rc2;
}

/* One round: set_obj and get_obj, then the four baselines. */
static int one_round(struct codec *c, uint32_t type, const void *obj,
                     struct cres *r)
{
    double ns[4];
    int rc = set_get_once(c, type, obj, r);
    if (rc == 0)
        rc = pipe_once(c, false, &ns[0]);
    if (rc == 0)
        rc = pipe_once(c, true, &ns[1]);
    if (rc == 0)
        rc = file_once(c, false, &ns[2]);
    if (rc == 0)
        rc = file_once(c, true, &ns[3]);
    for (int k = 0; k < 4 && rc == 0; k++)
        add(r, K_PIPE + k, ns[k]);
    return rc;
}

/* ---- fresh-process probes ---------------------------------------------- */

struct cprobe {
    int32_t  err;
    uint32_t flags;    /* of the first view */
    double   first_ns; /* the first get_obj + release */
    double   again_ns; /* median of the gets after it */
};

static int decode_once(mempool *p, mempool_dref r, uint32_t type,
                       double *ns, uint32_t *flags)
{
    union decoded out;
    mempool_view v;
    uint64_t t0 = cli_now_ns();
    int rc = mempool_get_obj(p, r, type, &out, &v);
    if (rc < 0)
        return rc;
    *flags = v.flags;
    rc = mempool_release(p, &v);
    *ns = (double)(cli_now_ns() - t0);
    return rc;
}

/* In a process forked for it: attach, decode @p r once, then @p again
 * times more. */
static void probe(const char *pool, mempool_dref r, uint32_t type,
                  bool noverify, int again, struct cprobe *res)
{
    double v[64];
    uint32_t flags;
    mempool_options o;
    mempool_options_init(&o);
    o.flags = noverify ? MEMPOOL_OPEN_NOVERIFY : 0;
    o.spiller = 0;
    mempool *p;
    memset(res, 0, sizeof *res);
    int rc = mempool_open(pool, &o, &p);
    if (rc == 0) {
        rc = decode_once(p, r, type, &res->first_ns, &res->flags);
        again = again < 64 ? again : 64;
        for (int i = 0; i < again && rc == 0; i++)
            rc = decode_once(p, r, type, &v[i], &flags);
        res->again_ns = rc == 0 ? bench_median(v, again) : NAN;
        mempool_close(p);
    }
    res->err = rc;
}

/* Run a probe in a new process; its first view must have @p want. */
static int run_probe(struct codec *c, mempool_dref r, uint32_t type,
                     bool noverify, uint32_t want, struct cprobe *res)
{
    int fds[2];
    *res = (struct cprobe){ 0 };     /* no garbage if no child answers */
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        struct cprobe mine;
        close(fds[0]);
        probe(c->pool, r, type, noverify, c->pl.again, &mine);
        _exit(cli_write_all(fds[1], &mine, sizeof mine) == 0 ? 0 : 1);
    }
    close(fds[1]);
    int rc = pid < 0 ? -errno : cli_read_all(fds[0], res, sizeof *res);
    close(fds[0]);
    int st = 0;
    while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (rc == 0 && res->err == 0 && !(res->flags & want))
        rc = -EPROTO; /* in memory where a file was expected, or so */
    return rc < 0 ? rc : res->err;
}

/* Fresh-process figures of the object resident and spilled. */
static int probes(struct codec *c, uint32_t type, const void *obj,
                  struct cres *r)
{
    mempool_dref mem, disk;
    struct cprobe pr;
    int rc = mempool_put_obj(c->p, type, obj, NULL, &mem);
    if (rc < 0)
        return rc;
    rc = mempool_put_obj(c->p, type, obj, NULL, &disk);
    if (rc == 0)
        rc = mempool_move_to_disk(c->p, disk, NULL);
    for (int i = 0; i < c->pl.probes && rc == 0; i++) {
        rc = run_probe(c, mem, type, false, MEMPOOL_VIEW_MEMORY, &pr);
        if (rc == 0)
            add(r, K_FRESH, pr.first_ns);
        if (rc == 0)
            rc = run_probe(c, disk, type, false, MEMPOOL_VIEW_DISK, &pr);
        if (rc == 0) {
            add(r, K_SPILL, pr.first_ns);
            add(r, K_SPILL_AGAIN, pr.again_ns);
            rc = run_probe(c, disk, type, true, MEMPOOL_VIEW_DISK, &pr);
        }
        if (rc == 0)
            add(r, K_SPILL_NOVERIFY, pr.first_ns);
    }
    mempool_delete(c->p, mem);
    mempool_delete(c->p, disk);
    return rc;
}

/* ---- one object -------------------------------------------------------- */

/* Set the object once untimed and keep a copy of its encoded bytes for the
 * baselines; prefault the reused buffer. */
static int encode_copy(struct codec *c, uint32_t type, const void *obj)
{
    mempool_dref r;
    mempool_view v;
    int rc = mempool_put_obj(c->p, type, obj, NULL, &r);
    if (rc < 0)
        return rc;
    rc = mempool_get(c->p, r, &v);
    if (rc == 0) {
        c->len = v.len;
        c->enc = malloc(v.len);
        c->buf = malloc(v.len);
        if (c->enc != NULL && c->buf != NULL) {
            memcpy(c->enc, v.data, v.len);
            memset(c->buf, 0, v.len);
        } else {
            rc = -ENOMEM;
        }
        mempool_release(c->p, &v);
    }
    int rc2 = mempool_delete(c->p, r);
    return rc < 0 ? rc : rc2;
}

static int run_object(struct codec *c, const char *name, uint32_t type,
                      const void *obj, struct cres *r)
{
    fprintf(stderr, "mempool-bench: codec: %s ...\n", name);
    int rc = encode_copy(c, type, obj);
    if (rc == 0)
        rc = start_writer(c);
    for (int i = 0; i < c->pl.reps && rc == 0; i++)
        rc = one_round(c, type, obj, r);
    if (rc == 0)
        rc = probes(c, type, obj, r);
    int rc2 = stop_writer(c);
    r->len = c->len;
    free(c->enc);
    free(c->buf);
    c->enc = c->buf = NULL;
    return rc < 0 ? rc : rc2;
}

/* ---- output ------------------------------------------------------------ */

/* "0.021×" or "1.9×": @p ns over @p base. */
static const char *ratio(double ns, double base, char *buf, size_t len)
{
    double x = ns / base;
    if (!(base > 0) || isnan(ns))
        snprintf(buf, len, "–");
    else
        snprintf(buf, len, "%.*g×", x >= 1 ? 3 : 2, x);
    return buf;
}

static void row(const char *obj, const char *op, double ns, uint64_t bytes,
                double pipe, double file)
{
    char t[24], g[24] = "–", rp[24] = "–", rf[24] = "–";
    if (bytes > 0)
        snprintf(g, sizeof g, "%.2f", (double)bytes / ns);
    if (pipe > 0)
        ratio(ns, pipe, rp, sizeof rp);
    if (file > 0)
        ratio(ns, file, rf, sizeof rf);
    printf("| %s | %s | %s | %s | %s | %s |\n", obj, op,
           bench_fmt_ns(ns, t, sizeof t), g, rp, rf);
}

static void print_object(const char *what, struct cres *r, int again)
{
    static const char *const op[K_N] = {
        "pipe: another process write()s, read() into a reused malloc'd "
        "buffer (**baseline**)",
        "pipe: the same, into a new malloc'd buffer each time",
        "file: write() a new file, read() it into a reused malloc'd buffer "
        "(**baseline**)",
        "file: the same, into a new malloc'd buffer each time",
        "set_obj: reserve, encode in place, publish",
        "get_obj + release, same process, after the set (checks every "
        "offset, copies nothing)",
        "get_obj + release, first in a fresh process",
        "spilled: get_obj + release, first in a fresh process (map, payload "
        "crc32c, decode)",
        "spilled: the same with MEMPOOL_OPEN_NOVERIFY",
        NULL /* K_SPILL_AGAIN: formatted below */};
    char obj[64], mb[24], again_op[96];
    snprintf(mb, sizeof mb, "%.1f MB", (double)r->len / 1e6);
    snprintf(obj, sizeof obj, "%s, %s", what, mb);
    snprintf(again_op, sizeof again_op, "spilled: get_obj + release again, "
             "mapping cached (median of %d)", again);
    double pipe = med(r, K_PIPE), file = med(r, K_FILE);
    for (int k = 0; k < K_N; k++) {
        bool base = k == K_PIPE || k == K_FILE;
        bool moves = k <= K_SET; /* rows that copy every byte */
        row(obj, op[k] ? op[k] : again_op, med(r, k), moves ? r->len : 0,
            base ? 0 : pipe, base ? 0 : file);
        if (k == K_GET)
            row(obj, "set_obj + get_obj: the whole hand-over (sum of the "
                "medians)", med(r, K_SET) + med(r, K_GET), 0, pipe, file);
    }
}

static void print_section(const struct codec *c, struct cres r[2])
{
    printf("\n### Codecs\n\n%" PRIu64 " rows: a string column (0..23 bytes, "
           "NULs and UTF-8 inside, every 10th missing) and a table (int64, "
           "float64, bits, 20-byte records and that string column); medians "
           "of %d interleaved rounds, fresh-process figures of %d processes; "
           "spill dir %s\n\n", c->pl.rows, c->pl.reps, c->pl.probes, c->dir);
    printf("| object | operation | median | GB/s | × pipe | × file |\n");
    printf("|---|---|---:|---:|---:|---:|\n");
    print_object("strings", &r[0], c->pl.again);
    print_object("table", &r[1], c->pl.again);
    printf("\nEach figure is for the whole object. × pipe and × file are a "
           "median over the baseline's median (below 1: faster). The "
           "baselines move the encoded bytes the pool holds; their reader "
           "would still have to check the offsets, which get_obj includes, "
           "and get_obj copies nothing: consumers read the columns in "
           "place, in the arena or in the mapped file. The fresh-process "
           "rows include the page faults of a first touch; the spilled "
           "object's file is in the page cache. The \"again\" rows repeat "
           "a get back to back with warm CPU caches, so they can come out "
           "below the single get after a set. glibc serves a new buffer "
           "under its 32 MiB mmap threshold from the heap, pages still "
           "mapped, once one that size was freed, so below 32 MiB the two "
           "buffer rows cost about the same; above, each new buffer is a "
           "fresh mmap and pays its page faults.\n");
}

/* ---- setup ------------------------------------------------------------- */

/* Touch the arena once, as the core section does: reserve nearly all of
 * it, write it, give it back. */
static int prefault(mempool *p)
{
    struct mempool_stats st;
    mempool_dref r;
    void *buf;
    memset(&st, 0, sizeof st);
    int rc = mempool_stats_get(p, &st);
    if (rc < 0)
        return rc;
    uint64_t len = st.free_bytes > 2 * MIB ? st.free_bytes - MIB : MIB;
    rc = mempool_reserve(p, len, NULL, &buf, &r);
    if (rc < 0)
        return rc;
    memset(buf, 0, len);
    return mempool_abort(p, r);
}

static int make_dir(struct codec *c, const char *want)
{
    static const char *const cands[] = {"/var/tmp", "/tmp"};
    for (size_t i = 0; i < 2; i++) {
        const char *parent = want != NULL ? want : cands[i];
        snprintf(c->dir, sizeof c->dir, "%s/mempool-bench-codec.XXXXXX",
                 parent);
        if (mkdtemp(c->dir) != NULL)
            return 0;
        if (want != NULL)
            break;
    }
    c->dir[0] = '\0';
    return -errno;
}

static int open_pool(struct codec *c)
{
    mempool_options o;
    mempool_options_init(&o);
    snprintf(c->pool, sizeof c->pool, "bench-codec-%d", (int)getpid());
    o.flags = MEMPOOL_OPEN_CREATE | MEMPOOL_OPEN_EXCL;
    o.arena_bytes = ARENA;
    o.spill_dir = c->dir;
    o.spiller = 0;
    int rc = mempool_open(c->pool, &o, &c->p);
    return rc < 0 ? rc : prefault(c->p);
}

int bench_codec(const struct codec_opts *o)
{
    static struct codec c;
    static struct cres r[2];
    c.pl = o->quick ? quick_plan : full_plan;
    int rc = make_dir(&c, o->dir);
    if (rc < 0) {
        fprintf(stderr, "mempool-bench: codec: no temp dir%s%s: %s\n",
                o->dir ? " in " : "", o->dir ? o->dir : "",
                mempool_strerror(rc));
        return rc;
    }
    rc = make_data(&c.d, c.pl.rows);
    if (rc == 0)
        rc = open_pool(&c);
    if (rc == 0)
        rc = run_object(&c, "string column", MEMPOOL_TYPE_STRINGS, &c.d.s,
                        &r[0]);
    if (rc == 0)
        rc = run_object(&c, "table", MEMPOOL_TYPE_TABLE, &c.d.t, &r[1]);
    if (rc == 0)
        print_section(&c, r);
    if (c.p != NULL) {
        mempool_close(c.p);
        mempool_destroy(c.pool);
    }
    if (rmdir(c.dir) < 0)
        fprintf(stderr, "mempool-bench: codec: rmdir %s: %s\n", c.dir,
                strerror(errno));
    data_free(&c.d);
    return rc;
}
