/* SPDX-License-Identifier: MIT */
/*
 * bench_spill.h - what the files of mempool-bench's spill section share
 * (bench_spill.c drives the section; bench_spill_tp.c, bench_spill_read.c
 * and bench_spill_tails.c measure; bench_spill_util.c holds the helpers
 * they all use). See bench_spill.c for what is measured and how.
 */
#ifndef MEMPOOL_BENCH_SPILL_H
#define MEMPOOL_BENCH_SPILL_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "bench.h"

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

struct plan {
    int      rounds, sync_files;        /* throughput: rotations, synced */
    int      warm, cold;                /* probes per first-byte cell */
    int      reads;                     /* read-back samples per cell */
    int      reps;                      /* latency runs per condition */
    uint64_t lat_ns;                    /* length of one latency run */
};


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

/* Three workers: [0] MEMPOOL_IO_AUTO and [1] MEMPOOL_IO_PWRITE do the
 * timed writes; [2] (the creator) owns the objects the others move, so
 * that their own limits see only what the test gives them. */
enum { H_AUTO, H_PWRITE, H_SRC, NHANDLES };

/* ---- bench_spill_util.c ------------------------------------------------ */

void smp_add(struct samples *s, double v);
/** A file of @p bytes written in @p ns: one GB/s sample. */
void smp_add_rate(struct samples *s, uint64_t bytes, uint64_t ns);
/** The median of the samples. */
double smp_med(const struct samples *s);
/** "mempool-bench: spill: @p what ..." on stderr. */
void spill_progress(const char *what);
/** mempool_stats_get() of @p p into a zeroed, sized @p st. */
int spill_stats(mempool *p, struct mempool_stats *st);
/** Remember what backend handle @p i ran, once it has written. */
void spill_note_backend(struct spill *s, int i);

/* ---- the measurements (each runs, then prints its table) ---------------- */

/** Throughput of spill writes against write(2) (bench_spill_tp.c); run
 *  first, since it tells which backend MEMPOOL_IO_AUTO picked. */
int spill_throughput_run(struct spill *s);
void spill_throughput_print(const struct spill *s);
/** First byte and read-back of spilled objects (bench_spill_read.c). */
int spill_first_byte(struct spill *s);
int spill_read_back(struct spill *s);
/** Per-op latency tails under spilling load (bench_spill_tails.c). */
int spill_tails(struct spill *s);

#endif /* MEMPOOL_BENCH_SPILL_H */
