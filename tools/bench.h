/* SPDX-License-Identifier: MIT */
/*
 * bench.h - the pipe protocol between mempool-bench and its reader children.
 *
 * The parent sends a job (and, for pool reads, the DRefs to read); the child
 * does one untimed warm-up pass, writes the byte 'R', waits for the byte 'G'
 * so that several children start together, runs the timed pass and sends a
 * job_result followed by its samples. Both ends are the same binary on the
 * same host, so the structs travel as raw bytes.
 *
 * It also declares what the sections share: formatting helpers, the entry
 * points of the spill section (bench_spill.c) and the codec section
 * (bench_codec_section.c), and the spill section's two kinds of reader
 * child (bench_child.c): one-shot probes of spilled objects in a fresh
 * process, and a long-lived latency reader that records every op in a
 * histogram.
 */
#ifndef MEMPOOL_BENCH_H
#define MEMPOOL_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <mempool/mempool.h>

#define MAX_ROUND 32768 /* objects alive per child at once */

enum { JOB_QUIT = 0, JOB_GET = 1 };

/* Parent to child; JOB_GET on pool objects is followed by `count` DRefs. */
struct job {
    uint32_t op;
    uint32_t bare;     /* 1: bare pointer reads instead of mempool_get */
    uint64_t size;
    uint64_t count;    /* objects */
    uint64_t batch;    /* ops per sample; 0: one sample for the whole run */
    uint64_t passes;   /* times over the objects */
    uint64_t bare_off; /* offset of object 0 in the bare mapping */
};

/* Child to parent after a timed run; `nsamples` ns/op doubles follow. */
struct job_result {
    int32_t  err;
    uint32_t pad;
    uint64_t elapsed_ns;
    uint64_t nsamples; /* at most MAX_ROUND */
};

/* One child as seen from either end. */
struct kid {
    pid_t pid;
    int   job_fd; /* jobs: the parent writes, the child reads */
    int   res_fd; /* 'R' and results: the child writes, the parent reads */
};

/**
 * The child's whole life, in a process forked by the parent: attach to
 * @p pool as its own worker, serve jobs from @p k until JOB_QUIT or end of
 * file, and exit (never returns). @p drefs has room for MAX_ROUND DRefs;
 * @p bare is the baseline mapping inherited from the parent.
 */
_Noreturn void bench_child_main(const char *pool, const struct kid *k,
                                mempool_dref *drefs,
                                const unsigned char *bare);

/* ---- shared by the sections (bench_util.c) ---------------------------- */

/** @p ns as "54 ns", "2.31 µs", "8.20 ms" into @p buf. */
const char *bench_fmt_ns(double ns, char *buf, size_t len);
/** @p r with three significant digits and a k/M/G prefix, or "–". */
const char *bench_fmt_rate(double r, char *buf, size_t len);
/** The median of @p v[0..n) (sorts it); NAN when @p n is 0. */
double bench_median(double *v, int n);

/* ---- the spill section (bench_spill.c) -------------------------------- */

struct spill_opts {
    bool        quick;
    const char *dir;   /* parent of the temp dir; NULL: pick a disk */
};

/** Run the spill section and print its tables. @return 0 or an error. */
int bench_spill(const struct spill_opts *o);

/* ---- the codec section (bench_codec_section.c) ------------------------ */

struct codec_opts {
    bool        quick; /* 100,000 rows and few rounds instead of 1,000,000 */
    const char *dir;   /* parent of the temp dir; NULL: /var/tmp, /tmp */
};

/** Run the codec section and print its table. @return 0 or an error. */
int bench_codec(const struct codec_opts *o);

/* ---- the handoff section (bench_handoff.c) ---------------------------- */

struct handoff_opts {
    bool quick;
    long stream;    /* objects per stream run; 0: the default */
};

/** Run the handoff section and print its table. @return 0 or an error. */
int bench_handoff(const struct handoff_opts *o);

/* ---- the fresh section (bench_fresh.c) -------------------------------- */

struct fresh_opts {
    bool quick;
};

/** Cold figures of new processes, and 1 vs 2 process throughput; prints
 *  its table. @return 0 or an error. */
int bench_fresh(const struct fresh_opts *o);

/* ---- the scale section (bench_scale.c) -------------------------------- */

struct scale_opts {
    bool        quick; /* 1e3 and 2e4 objects instead of 1e3 .. 2.5e5 */
    const char *dir;   /* parent of the spill temp dir; NULL: /var/tmp, ... */
};

/** set, random get, delete and spilling set at growing live counts beside
 *  raw baselines; prints its table. @return 0 or an error. */
int bench_scale(const struct scale_opts *o);

/* ---- the holds section (bench_holds.c) -------------------------------- */

struct holds_opts {
    bool quick;        /* 3 batches instead of 15 */
};

/** get+release and put+delete while the worker holds 0, 3,000 and 100,000
 *  references; prints its table. @return 0 or an error. */
int bench_holds(const struct holds_opts *o);

/* ---- fresh-process probes of spilled objects (bench_child.c) ---------- */

enum { PROBE_FIRST_BYTE = 1, PROBE_READ_ALL = 2, PROBE_FILE_AGAIN = 3 };

struct probe_job {
    uint32_t     op;       /* PROBE_* */
    uint32_t     noverify; /* open with MEMPOOL_OPEN_NOVERIFY */
    mempool_dref r;        /* a spilled object */
    uint64_t     repeats;  /* PROBE_FIRST_BYTE: gets again afterwards */
    const char  *path;     /* PROBE_FILE_AGAIN: its file */
};

struct probe_result {
    int32_t  err;
    uint32_t view_flags; /* of the first view */
    double   first_ns;   /* get call to first byte read, first map */
    double   again_ns;   /* the same with the mapping cached (median) */
    double   read_ns;    /* PROBE_READ_ALL: get + every byte + release;
                            PROBE_FILE_AGAIN: the same by get_file, the
                            second time in the handle */
    uint64_t sum;        /* of the bytes read, so they are read */
};

/** In a process that was just forked: attach to @p pool, run @p j, detach.
 *  Errors go to @p out->err. */
void bench_probe(const char *pool, const struct probe_job *j,
                 struct probe_result *out);

/** Sum of @p n bytes as 64-bit words (a tail too): reads every byte. */
uint64_t bench_sum(const void *p, size_t n);

/* ---- per-op latency under load (bench_child.c) ------------------------ */

/* A log-linear histogram of nanoseconds: exact below 64, then 32 buckets
 * per power of two (about 3 % wide). */
#define HIST_LIN     64
#define HIST_SUB     32
#define HIST_BUCKETS (HIST_LIN + 58 * HIST_SUB)

struct hist {
    uint64_t n, max;
    uint64_t b[HIST_BUCKETS];
};

void   hist_add(struct hist *h, uint64_t ns);
void   hist_merge(struct hist *into, const struct hist *h);
/** Value at quantile @p q (the middle of its bucket); NAN when empty. */
double hist_quantile(const struct hist *h, double q);

/* Parent to latency reader: time get+touch+release of each object in turn
 * for run_ns, one sample per op; op 0 quits. The reader writes 'R', keeps
 * getting the objects untimed (so they stay the most recently used while
 * the parent starts whatever should disturb it) until 'G' arrives, runs,
 * and sends a lat_result. */
struct lat_job {
    uint64_t op, run_ns;
};

struct lat_result {
    int32_t     err;
    uint32_t    pad;
    uint64_t    disk_views; /* gets that were not MEMPOOL_VIEW_MEMORY */
    struct hist h;
};

/** The latency reader's life (never returns): attach to @p pool, serve
 *  lat_jobs from @p k over @p drefs[0..count) until op 0 or end of file. */
_Noreturn void bench_lat_main(const char *pool, const struct kid *k,
                              const mempool_dref *drefs, uint64_t count);

#endif /* MEMPOOL_BENCH_H */
