/* SPDX-License-Identifier: MIT */
/*
 * bench_scale.c - mempool-bench's scale section: how set, get, delete and a
 * set that must spill behave as the pool grows (issue 11, targets 4 and 6).
 *
 * At 1e3, 1e4, 1e5 and 2.5e5 live 64 B objects (--quick: 1e3 and 2e4), in
 * one pool, each figure beside a baseline run in the same process, batches
 * of the two interleaved:
 *
 *   set      mempool_put() of 64 B; raw: memcpy of 64 B into the next slot
 *            of a shared mapping plus the store of its offset into a 64 B
 *            index record (the same geometry: one index record and one
 *            64 B block per object, in shared memory).
 *   get      mempool_get() + read the first byte + mempool_release(), in a
 *            random order over all live objects (the DRefs read in order
 *            from an array permuted before the clock starts, as raw reads
 *            its keys: a random load of the caller's own DRef array is no
 *            part of a get, nor of a lookup); raw: load the object's
 *            index record, then the first byte of its block, in the same
 *            random order (two dependent loads per object, as a lookup
 *            through any index must do). Memory geometry as for set,
 *            on 2 MiB pages where the kernel gives them, like the arena.
 *            Three raw figures: independent lookups, which the CPU
 *            overlaps (several misses in flight); chained ones, where the
 *            next key is read from the block just found, so one lookup's
 *            misses end before the next one's start; and independent ones
 *            each bracketed by two locked exchanges (a pin's and an
 *            unpin's instructions, nothing else of a get), which still
 *            overlap: what keeps gets from overlapping is their length
 *            (docs/design.md). And gets of the other half of the objects, the next
 *            16 announced with mempool_prefetch() at every 16th get (a
 *            pipeline: the group after the one being read), against the
 *            independent raw lookups.
 *   delete   mempool_delete() in a random order; raw: clear the index
 *            record (there is nothing else to undo: a floor, not a peer).
 *   spilling set  the worker's limit equals what it holds, so every
 *            mempool_put() of 64 B first spills one victim; raw: what the
 *            victim's spill writes, done by hand: create a file in the same
 *            directory, write(2) the same 4096 + 64 bytes, close, rename.
 *            Beside it, the engine's own time per victim write
 *            (mempool_stats.spill_ns / spills).
 *   victim rank  after each of a few spilling sets, every object's state
 *            tells which one went to disk; its rank is the number of
 *            resident objects that were less recently used than it (0:
 *            exactly the LRU victim), shown as a share of those resident.
 *
 * The spill directory is a temp dir like the spill section's (--dir, else
 * /var/tmp, the working directory, /tmp). Latencies are medians of per-op
 * figures from batches of 1000 ops (spilling sets: single ops).
 */
#include "bench.h"
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25     /* Linux 6.1 */
#endif

#define OBJ      64u
#define HDRB     4096u
#define BATCH    1000u
#define MAXN     250000u
#define NSPILL   200u       /* timed spilling sets per size */
#define NRANK    32u        /* spilling sets whose victim is ranked */
#define MAXSAMP  4096u
#define PF_GROUP 16u       /* DRefs per mempool_prefetch() call */

static const uint32_t sizes_full[] = {1000, 10000, 100000, 250000};
static const uint32_t sizes_quick[] = {1000, 20000};

/* The raw baseline's shared mapping: index records, then 64 B blocks;
 * then the same again for the chained lookups (so that neither kind of
 * lookup finds lines the other just brought in). */
struct raw {
    unsigned char *map;
    size_t         len;
    uint64_t      *index;   /* record i: index[8 * i] = offset of block i */
    unsigned char *data;
    uint64_t      *index2;  /* chained lookups: the same layout */
    unsigned char *data2;
};

struct fig {
    double v[MAXSAMP];
    int    n;
};

struct row {
    double   set, set_raw, get, get_raw, get_dep, get_pf, get_lk, del, del_raw;
    double   spill, spill_raw, engine;
    double   rank_med, rank_max;          /* % of resident objects */
    uint32_t n;
    uint32_t rank_worst;                  /* objects */
};

struct scale {
    const struct scale_opts *o;
    char          dir[4200];
    char          pool[64];
    mempool      *p;
    struct raw    raw;
    mempool_dref *r;        /* MAXN + NSPILL + NRANK objects */
    mempool_dref *q;        /* get phase: q[i] = r[perm[i]] (untimed) */
    uint64_t     *seq;      /* last use of each, in our order of calls */
    uint8_t      *gone;     /* spilled (rank phase) */
    uint32_t     *perm;
    uint64_t      clock;    /* the last seq handed out */
    unsigned char src[OBJ];
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void fig_add(struct fig *f, uint64_t ns, uint64_t ops)
{
    if (f->n < (int)MAXSAMP)
        f->v[f->n++] = (double)ns / (double)ops;
}

static double fig_med(struct fig *f)
{
    return bench_median(f->v, f->n);
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void shuffle(uint32_t *a, uint32_t n, uint64_t *s)
{
    for (uint32_t i = 0; i < n; i++)
        a[i] = i;
    for (uint32_t i = n; i > 1; i--) {
        uint32_t j = (uint32_t)(rnd(s) % i), t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

/* ---- setup --------------------------------------------------------------- */

/* Map @p fd's w->len bytes at a 2 MiB-aligned address, as arena.c maps
 * the arena (a huge page needs an aligned virtual range). */
static int map_aligned(struct raw *w, int fd)
{
    size_t huge = (size_t)2 << 20;
    unsigned char *r = mmap(NULL, w->len + huge, PROT_NONE,
                            MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
                            0);
    if (r == MAP_FAILED)
        return -errno;
    uintptr_t a = ((uintptr_t)r + huge - 1) & ~(uintptr_t)(huge - 1);
    w->map = mmap((void *)a, w->len, PROT_READ | PROT_WRITE,
                  MAP_SHARED | MAP_FIXED, fd, 0);
    int rc = w->map == MAP_FAILED ? -errno : 0;
    if ((unsigned char *)a > r)                       /* the spare ends */
        munmap(r, (size_t)((unsigned char *)a - r));
    munmap((unsigned char *)a + w->len,
           (size_t)(r + w->len + huge - ((unsigned char *)a + w->len)));
    if (rc)
        w->map = NULL;
    return rc;
}

static int raw_open(struct raw *w)
{
    char name[64];
    snprintf(name, sizeof name, "/bench-scale-raw-%d", (int)getpid());
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return -errno;
    shm_unlink(name);
    w->len = (size_t)MAXN * 64 * 4;
    int rc = ftruncate(fd, (off_t)w->len) < 0 ? -errno : 0;
    if (rc == 0)
        rc = map_aligned(w, fd);
    close(fd);
    if (rc)
        return rc;
    memset(w->map, 1, w->len);                   /* touched, like the arena */
    /* The arena's page size too: 2 MiB pages where the kernel gives them
     * (backing.c collapses the pool's metadata and data chunks the same
     * way), else TLB misses a pool does not pay would slow raw down. */
    (void)madvise(w->map, w->len, MADV_COLLAPSE);
    w->index = (uint64_t *)w->map;
    w->data = w->map + (size_t)MAXN * 64;
    w->index2 = (uint64_t *)(w->map + (size_t)MAXN * 128);
    w->data2 = w->map + (size_t)MAXN * 192;
    for (size_t i = 0; i < MAXN; i++)
        w->index2[8 * i] = i * OBJ;
    return 0;
}

static int make_dir(struct scale *s)
{
    static const char *const cands[] = {"/var/tmp", ".", "/tmp"};
    for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++) {
        const char *parent = s->o->dir ? s->o->dir : cands[i];
        char real[4096];
        if (realpath(parent, real) == NULL)
            continue;
        int n = snprintf(s->dir, sizeof s->dir,
                         "%s/mempool-bench-scale.XXXXXX",
                         strcmp(real, "/") == 0 ? "" : real);
        if (n > 0 && (size_t)n < sizeof s->dir && mkdtemp(s->dir) != NULL)
            return 0;
        if (s->o->dir)
            break;
    }
    return errno ? -errno : -ENOENT;
}

static int open_pool(struct scale *s)
{
    mempool_options o;
    mempool_options_init(&o);
    snprintf(s->pool, sizeof s->pool, "bench-scale-%d", (int)getpid());
    o.flags = MEMPOOL_OPEN_CREATE | MEMPOOL_OPEN_EXCL;
    o.max_objects = MAXN + NSPILL + NRANK + 1024;
    o.arena_bytes = 96ull << 20;
    o.spill_dir = s->dir;
    o.spiller = 0;
    return mempool_open(s->pool, &o, &s->p);
}

/* ---- phases (each interleaves mempool and raw batches) -------------------- */

static int fill(struct scale *s, uint32_t n, struct fig *m, struct fig *raw)
{
    for (uint32_t b = 0; b < n; b += BATCH) {
        uint32_t e = b + BATCH < n ? b + BATCH : n;
        uint64_t t0 = now_ns();
        for (uint32_t i = b; i < e; i++) {
            int rc = mempool_put(s->p, s->src, OBJ, &s->r[i]);
            if (rc)
                return rc;
            s->seq[i] = ++s->clock;
        }
        uint64_t t1 = now_ns();
        for (uint32_t i = b; i < e; i++) {
            memcpy(s->raw.data + (size_t)i * OBJ, s->src, OBJ);
            __atomic_store_n(&s->raw.index[8 * (size_t)i], (uint64_t)i * OBJ,
                             __ATOMIC_RELEASE);
        }
        uint64_t t2 = now_ns();
        if (m) {
            fig_add(m, t1 - t0, e - b);
            fig_add(raw, t2 - t1, e - b);
        }
    }
    return 0;
}

/* Raw lookups one after another: block perm[i] names perm[i + 1], so each
 * lookup's index load waits for the previous data load (no overlap). */
static uint64_t raw_chain(struct scale *s, uint32_t k, uint32_t count)
{
    uint64_t sum = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint64_t off = __atomic_load_n(&s->raw.index2[8 * (size_t)k],
                                       __ATOMIC_ACQUIRE);
        uint32_t next;
        memcpy(&next, s->raw.data2 + off + 8, sizeof next);
        sum += s->raw.data2[off];
        k = next;
    }
    return sum;
}

/* Raw lookups perm[b..e) (of the half whose chained records were not
 * read this pass) through the chained copy, each bracketed by
 * two locked exchanges on a private word - what a pin and an unpin cost
 * a lookup, without the rest of a get: shows that the locked
 * instructions alone do not stop the misses of successive lookups from
 * overlapping (the length of a get does; docs/design.md). */
static uint64_t raw_locked(struct scale *s, uint32_t b, uint32_t e)
{
    static uint64_t cell;
    uint64_t sum = 0;
    for (uint32_t i = b; i < e; i++) {
        uint64_t off = __atomic_load_n(&s->raw.index2[8 * (size_t)s->perm[i]],
                                       __ATOMIC_ACQUIRE);
        __atomic_exchange_n(&cell, (uint64_t)i + 1, __ATOMIC_SEQ_CST);
        sum += s->raw.data2[off];
        __atomic_exchange_n(&cell, 0, __ATOMIC_SEQ_CST);
    }
    return sum;
}

/* mempool_prefetch() of the objects perm[i .. min(i + PF_GROUP, e)). */
static void prefetch_group(struct scale *s, uint32_t i, uint32_t e)
{
    uint32_t g = i >= e ? 0 : e - i < PF_GROUP ? e - i : PF_GROUP;
    mempool_prefetch(s->p, s->q + i, g);
}

/* get + read the first byte + release of objects perm[b..e), whose
 * DRefs are q[b..e) (read in order, as raw reads its keys perm[b..e):
 * neither side pays a random load of its key); with @p pf, pipelined: the
 * next PF_GROUP objects are announced with mempool_prefetch() as a group
 * of PF_GROUP begins. */
static int gets(struct scale *s, uint32_t b, uint32_t e, bool pf,
                uint64_t *sum)
{
    if (pf)
        prefetch_group(s, b, e);
    for (uint32_t i = b; i < e; i++) {
        mempool_view v;
        if (pf && (i - b) % PF_GROUP == 0)
            prefetch_group(s, i + PF_GROUP, e);
        int rc = mempool_get(s->p, s->q[i], &v);
        if (rc)
            return rc;
        *sum += ((const unsigned char *)v.data)[0];
        mempool_release(s->p, &v);
    }
    return 0;
}

/* The use order of the gets just timed (untimed bookkeeping). */
static void gets_done(struct scale *s, uint32_t b, uint32_t e)
{
    for (uint32_t i = b; i < e; i++)
        s->seq[s->perm[i]] = ++s->clock;
}

/* Random gets: the first half of each shuffled pass plainly, beside both
 * raw lookups (f[0..2]); the second half with mempool_prefetch() (f[3]). */
static int get_phase(struct scale *s, uint32_t n, struct fig *f,
                     uint64_t *rs)
{
    uint64_t total = s->o->quick ? 20000 : 200000, sum = 0;
    uint32_t half = n / 2, step = half < BATCH ? half : BATCH;
    if (total < 2 * (uint64_t)n)
        total = 2 * (uint64_t)n;       /* a warm pass, then timed ones */
    for (uint64_t done = 0; done < total; done += n) {
        shuffle(s->perm, n, rs);
        for (uint32_t i = 0; i < n; i++) {
            uint32_t next = s->perm[(i + 1) % n];
            memcpy(s->raw.data2 + (size_t)s->perm[i] * OBJ + 8, &next,
                   sizeof next);
            s->q[i] = s->r[s->perm[i]];
        }
        for (uint32_t b = 0; b < half; b += step) {
            uint32_t e = b + step < half ? b + step : half;
            int rc;
            uint64_t t0 = now_ns();
            if ((rc = gets(s, b, e, false, &sum)))
                return rc;
            uint64_t t1 = now_ns();
            for (uint32_t i = b; i < e; i++) {
                uint64_t off = __atomic_load_n(
                    &s->raw.index[8 * (size_t)s->perm[i]], __ATOMIC_ACQUIRE);
                sum += s->raw.data[off];
            }
            uint64_t t2 = now_ns();
            sum += raw_chain(s, s->perm[b], e - b);
            uint64_t t3 = now_ns();
            if ((rc = gets(s, half + b, half + e, true, &sum)))
                return rc;
            uint64_t t4 = now_ns();
            sum += raw_locked(s, half + b, half + e);
            uint64_t t5 = now_ns();
            gets_done(s, b, e);
            gets_done(s, half + b, half + e);
            if (done) {           /* the first pass warms them */
                fig_add(&f[0], t1 - t0, e - b);
                fig_add(&f[1], t2 - t1, e - b);
                fig_add(&f[2], t3 - t2, e - b);
                fig_add(&f[3], t4 - t3, e - b);
                fig_add(&f[4], t5 - t4, e - b);
            }
        }
    }
    return sum == 1 ? -EIO : 0;   /* never: keeps the reads */
}

static int delete_phase(struct scale *s, uint32_t n, struct fig *m,
                        struct fig *raw, uint64_t *rs)
{
    shuffle(s->perm, n, rs);
    for (uint32_t b = 0; b < n; b += BATCH) {
        uint32_t e = b + BATCH < n ? b + BATCH : n;
        uint64_t t0 = now_ns();
        for (uint32_t i = b; i < e; i++) {
            int rc = mempool_delete(s->p, s->r[s->perm[i]]);
            if (rc)
                return rc;
        }
        uint64_t t1 = now_ns();
        for (uint32_t i = b; i < e; i++)
            __atomic_store_n(&s->raw.index[8 * (size_t)s->perm[i]], 0,
                             __ATOMIC_RELEASE);
        uint64_t t2 = now_ns();
        if (m) {
            fig_add(m, t1 - t0, e - b);
            fig_add(raw, t2 - t1, e - b);
        }
    }
    return 0;
}

/* The victim's write done by hand: new file, header + payload, rename. */
static int raw_write(struct scale *s, int k, const unsigned char *buf)
{
    char tmp[4300], fin[4300];
    snprintf(tmp, sizeof tmp, "%s/raw-%d.tmp", s->dir, k);
    snprintf(fin, sizeof fin, "%s/raw-%d", s->dir, k);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    ssize_t w = write(fd, buf, HDRB + OBJ);
    close(fd);
    if (w != (ssize_t)(HDRB + OBJ))
        return -EIO;
    return rename(tmp, fin) < 0 ? -errno : 0;
}

static int stats(mempool *p, struct mempool_stats *st)
{
    memset(st, 0, sizeof *st);
    st->size = sizeof *st;
    return mempool_stats_get(p, st);
}

/* Timed spilling sets beside the raw write; *engine: ns per victim write. */
static int spill_phase(struct scale *s, uint32_t n, uint32_t *live,
                       struct fig *m, struct fig *raw, double *engine)
{
    static unsigned char buf[HDRB + OBJ];
    struct mempool_stats a, b;
    int rc = stats(s->p, &a);
    uint32_t cnt = s->o->quick ? NSPILL / 4 : NSPILL;
    for (uint32_t i = 0; i < cnt && rc == 0; i++) {
        uint32_t k = *live;
        uint64_t t0 = now_ns();
        if ((rc = mempool_put(s->p, s->src, OBJ, &s->r[k])))
            break;
        uint64_t t1 = now_ns();
        s->seq[k] = ++s->clock;
        ++*live;
        rc = raw_write(s, (int)(i % 64), buf);
        fig_add(m, t1 - t0, 1);
        fig_add(raw, now_ns() - t1, 1);
    }
    if (rc || (rc = stats(s->p, &b)))
        return rc;
    *engine = b.spills > a.spills ? (double)(b.spill_ns - a.spill_ns) /
                                        (double)(b.spills - a.spills)
                                  : NAN;
    (void)n;
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* After each of NRANK spilling sets: which object went, and how many
 * resident objects were less recently used than it. */
/* After one put: mark the objects that left memory since the last look
 * gone; *victim = the last of them (UINT32_MAX if none), *nres = the
 * objects resident when it was chosen. 0 or -errno. */
static int find_victim(struct scale *s, uint32_t live, uint32_t *victim,
                       uint32_t *nres)
{
    *nres = 0;
    for (uint32_t i = 0; i < live; i++) {
        mempool_info in;
        int rc;
        if (s->gone[i])
            continue;
        if ((rc = mempool_info_get(s->p, s->r[i], &in)))
            return rc;
        if (!(in.state & MEMPOOL_STATE_MEMORY)) {
            s->gone[i] = 1;
            *victim = i;
        }
        (*nres)++;           /* resident when the victim was chosen */
    }
    return 0;
}

static int rank_phase(struct scale *s, uint32_t *live, struct row *row)
{
    uint32_t ranks[NRANK], nr = 0, nres = 0;
    double share[NRANK];
    uint32_t steps = s->o->quick ? NRANK / 4 : NRANK;
    memset(s->gone, 0, *live);
    for (uint32_t i = 0; i < *live; i++) {     /* spilled before: gone */
        mempool_info in;
        int rc = mempool_info_get(s->p, s->r[i], &in);
        if (rc)
            return rc;
        s->gone[i] = !(in.state & MEMPOOL_STATE_MEMORY);
    }
    for (uint32_t step = 0; step < steps; step++) {
        uint32_t k = *live, victim = UINT32_MAX;
        int rc = mempool_put(s->p, s->src, OBJ, &s->r[k]);
        if (rc)
            return rc;
        s->seq[k] = ++s->clock;
        s->gone[k] = 0;
        ++*live;
        if ((rc = find_victim(s, *live, &victim, &nres)))
            return rc;
        if (victim == UINT32_MAX)
            continue;
        uint32_t older = 0;
        for (uint32_t i = 0; i < *live; i++)
            older += !s->gone[i] && s->seq[i] < s->seq[victim];
        ranks[nr] = older;
        share[nr++] = 100.0 * older / (double)(nres ? nres : 1);
    }
    qsort(ranks, nr, sizeof ranks[0], cmp_u32);
    row->rank_worst = nr ? ranks[nr - 1] : 0;
    row->rank_max = 0;
    for (uint32_t i = 0; i < nr; i++)
        row->rank_max = share[i] > row->rank_max ? share[i] : row->rank_max;
    row->rank_med = bench_median(share, (int)nr);
    return 0;
}

/* Drop everything alive (untimed): objects [0, live). */
static void clear_all(struct scale *s, uint32_t live)
{
    for (uint32_t i = 0; i < live; i++)
        mempool_delete(s->p, s->r[i]);
}

static int run_size(struct scale *s, uint32_t n, struct row *row,
                    uint64_t *rs)
{
    static struct fig f[11];
    memset(f, 0, sizeof f);
    uint32_t live = n;
    int rc;
    row->n = n;
    fprintf(stderr, "mempool-bench: scale: %u objects ...\n", n);
    if ((rc = fill(s, n, &f[0], &f[1])) ||
        (rc = get_phase(s, n, &f[6], rs)) ||
        (rc = delete_phase(s, n, &f[2], &f[3], rs)) ||
        (rc = fill(s, n, NULL, NULL)) ||
        (rc = mempool_limit_set(s->p, MEMPOOL_LIMIT_MEMSIZE,
                                (uint64_t)n * OBJ)) ||
        (rc = spill_phase(s, n, &live, &f[4], &f[5], &row->engine)) ||
        (rc = rank_phase(s, &live, row))) {
        clear_all(s, live);
        return rc;
    }
    mempool_limit_set(s->p, MEMPOOL_LIMIT_MEMSIZE, 0);
    clear_all(s, live);
    row->set = fig_med(&f[0]);
    row->set_raw = fig_med(&f[1]);
    row->del = fig_med(&f[2]);
    row->del_raw = fig_med(&f[3]);
    row->spill = fig_med(&f[4]);
    row->spill_raw = fig_med(&f[5]);
    row->get = fig_med(&f[6]);
    row->get_raw = fig_med(&f[7]);
    row->get_dep = fig_med(&f[8]);
    row->get_lk = fig_med(&f[10]);
    row->get_pf = fig_med(&f[9]);
    return 0;
}

/* ---- output ---------------------------------------------------------------- */

static void print_row(const char *what, uint32_t n, double m, double raw,
                      const char *note)
{
    char a[32], b[32];
    printf("| %u | %s | %s | %s | %.2f | %s |\n", n, what,
           bench_fmt_ns(m, a, sizeof a), bench_fmt_ns(raw, b, sizeof b),
           m / raw, note);
}

static void print_table(const struct row *r, int n)
{
    printf("\n### scale: 64 B objects, 1e3 to 2.5e5 live\n\n");
    printf("| live objects | operation | mempool (median) | raw (median) "
           "| ratio | notes |\n|---:|---|---:|---:|---:|---|\n");
    for (int i = 0; i < n; i++) {
        char note[160], e[32];
        print_row("set", r[i].n, r[i].set, r[i].set_raw, "raw: memcpy + "
                  "index store");
        print_row("get (random)", r[i].n, r[i].get, r[i].get_raw,
                  "raw: index load, then data load; lookups overlap");
        print_row("get (random)", r[i].n, r[i].get, r[i].get_dep,
                  "raw: the same, one lookup at a time (chained)");
        print_row("raw lookup + 2 locked xchg", r[i].n, r[i].get_lk,
                  r[i].get_raw, "a pin's and an unpin's locked "
                  "instructions alone, no get: vs raw, lookups overlap");
        print_row("get (random), prefetched", r[i].n, r[i].get_pf,
                  r[i].get_raw, "mempool_prefetch() of the next 16 "
                  "DRefs at each 16th get; raw: lookups overlap");
        print_row("delete", r[i].n, r[i].del, r[i].del_raw,
                  "raw: clear the index record (a floor)");
        snprintf(note, sizeof note,
                 "raw: open+write(2) 4160 B+rename; engine write %s (mean); "
                 "victim "
                 "rank: median %.2f %%, worst %.2f %% (%u objects)",
                 bench_fmt_ns(r[i].engine, e, sizeof e), r[i].rank_med,
                 r[i].rank_max, r[i].rank_worst);
        print_row("spilling set", r[i].n, r[i].spill, r[i].spill_raw, note);
    }
    printf("\nEach figure beside a same-run baseline (batches of the two "
           "interleaved; medians of per-op figures over batches of 1000, "
           "spilling sets one by one). Victim rank: resident objects less "
           "recently used than the victim, as a share of all resident "
           "(0 = the exact LRU choice; pools of at most 4096 entries are "
           "scanned whole, larger ones sampled, docs/design.md).\n");
}

int bench_scale(const struct scale_opts *o)
{
    static struct scale s;
    static struct row rows[4];
    const uint32_t *sz = o->quick ? sizes_quick : sizes_full;
    int nsz = o->quick ? 2 : 4, done = 0, rc;
    uint64_t rs = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
    uint32_t cap = MAXN + NSPILL + NRANK;

    s.o = o;
    memset(s.src, 7, sizeof s.src);
    s.r = calloc(cap, sizeof *s.r);
    s.seq = calloc(cap, sizeof *s.seq);
    s.gone = calloc(cap, 1);
    s.perm = calloc(cap, sizeof *s.perm);
    s.q = calloc(cap, sizeof *s.q);
    if (!s.r || !s.q || !s.seq || !s.gone || !s.perm)
        rc = -ENOMEM;
    else if ((rc = make_dir(&s)) == 0 && (rc = raw_open(&s.raw)) == 0 &&
             (rc = open_pool(&s)) == 0) {
        for (; done < nsz && rc == 0; done++)
            rc = run_size(&s, sz[done], &rows[done], &rs);
        if (rc == 0)
            print_table(rows, nsz);
    }
    if (s.p) {
        mempool_close(s.p);
        mempool_destroy(s.pool);
    }
    if (s.raw.map)
        munmap(s.raw.map, s.raw.len);
    if (s.dir[0]) {
        char path[4300];
        for (int k = 0; k < 64; k++) {
            snprintf(path, sizeof path, "%s/raw-%d", s.dir, k);
            unlink(path);
        }
        rmdir(s.dir);
    }
    free(s.r);
    free(s.seq);
    free(s.gone);
    free(s.perm);
    free(s.q);
    return rc;
}
