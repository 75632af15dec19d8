/* SPDX-License-Identifier: MIT */
/*
 * bench_spill.c - mempool-bench's spill section: what spilling costs next to
 * what the kernel and the disk do on their own, measured in the same run.
 * This file picks the directory, opens the pool and runs the measurements
 * of bench_spill_tp.c, bench_spill_read.c and bench_spill_tails.c.
 *
 *   throughput  resident 64 MiB objects given to mempool_move_to_disk() one
 *               by one (crc32c of each 1 MiB chunk, its write to
 *               "<idx>-<gen>.tmp", the header last, rename, free the
 *               memory) through a handle on MEMPOOL_IO_AUTO (stats.io_backend
 *               says what ran) and one on MEMPOOL_IO_PWRITE; and sets of
 *               64 MiB past the setter's max_memsize, each of which spills
 *               one victim. Baseline: write(2) of the same bytes, from the
 *               same arena pages, to a new file in the same directory
 *               (4096 header bytes + payload, no fsync: spill files are a
 *               cache and are not synced); for context, with fdatasync,
 *               and after a fallocate() of the whole file (what the spill
 *               engine does for payloads of 1 MiB or more: see io.c).
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
 *               every byte of the same file, also in a fresh process; page
 *               cache dropped and warm. Issue 11's target 5: >= 90 %. And,
 *               warm only, the second get_file + read + release of the
 *               file in one fresh handle (the handle's verdict skips the
 *               check of a file it checked whole and that did not change).
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
#include "bench_spill.h"
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define TMPFS_MAGIC_ 0x01021994
#define RAMFS_MAGIC_ 0x858458f6

static const struct plan quick_plan = {1, 1, 3, 2, 2, 1, 400000000};
static const struct plan full_plan = {4, 3, 11, 5, 5, 3, 1500000000};

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
           "header + payload). Each step runs the six 64 MiB writes back to "
           "back, in an order that rotates from step to step. "
           "First byte and read-back run each get in a process forked for "
           "it, so the handle maps the file anew; the baseline maps the "
           "same file (its munmap is not timed). Tails: each op is timed "
           "with two clock reads, whose cost is in every figure.\n\n");
}

static int run_all(struct spill *s)
{
    int rc = spill_throughput_run(s);
    if (rc < 0)
        return rc;
    print_intro(s);
    spill_throughput_print(s);
    fflush(stdout);
    if ((rc = spill_first_byte(s)) < 0)
        return rc;
    fflush(stdout);
    if ((rc = spill_read_back(s)) < 0)
        return rc;
    fflush(stdout);
    if ((rc = spill_tails(s)) < 0)
        return rc;
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

