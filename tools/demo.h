/* SPDX-License-Identifier: MIT */
/*
 * demo.h - what the two halves of `mempool demo` share: demo.c runs the
 * processes, the pipes, the bytes phase and the summary; demo_table.c runs
 * the table phase (typed objects through the codec layer) over the same
 * consumers and pipes.
 *
 * The producer writes one line per object on a consumer's own pipe; every
 * consumer answers on one shared report pipe with a line shorter than
 * PIPE_BUF, so answers never interleave. A line's first word says what it
 * is about: a bytes-phase line is "DREF LEN CHECKSUM", a table line is
 * "T DREF".
 */
#ifndef MEMPOOL_DEMO_H
#define MEMPOOL_DEMO_H

#include "cli.h"

#include <sys/types.h>

#define DEMO_MAX_CONSUMERS 32
#define DEMO_MAX_INFLIGHT  64
#define DEMO_MAX_TABLES    64
#define DEMO_TABLES        8 /* default --tables */

struct consumer {
    pid_t    pid;     /* 0 once reaped */
    int      status;  /* wait status, once reaped */
    mempool_chan *ch; /* its channel "demo.<i>": the producer sends DRefs */
    uint64_t objects; /* confirmed by it */
    uint64_t bytes;
    uint64_t bad;
    uint64_t disk_views, disk_bytes; /* of those, read from a spill file */
};

struct inflight {
    char     text[MEMPOOL_DREF_STRLEN];
    uint64_t len, sum;
    int      consumer; /* -1: slot free */
    bool     sent;     /* its line went to the consumer */
};

/* What the table phase did (demo_table.c fills it, demo.c prints it). */
struct demo_tables {
    long     want;           /* --tables; 0 skips the phase */
    long     set, verified, bad;
    uint64_t rows, bytes;    /* rows and encoded bytes of the tables set */
    uint64_t disk_views;     /* tables a consumer decoded from a spill file */
    int64_t  sum;            /* aggregates of the verified tables */
    uint64_t str_bytes, missing;
    double   secs;           /* first build to last delete */
};

struct demo {
    const char        *pool;
    const char        *spill_dir;
    char               spill_path[4096]; /* <spill_dir>/<pool>, absolute */
    bool               made_dir;         /* we created spill_dir */
    uint64_t           max_memsize;
    char               self[4096]; /* this binary, re-executed as consumers */
    int                nconsumers;
    long               nobjects;
    mempool           *p;
    unsigned char     *pattern;
    struct consumer    c[DEMO_MAX_CONSUMERS];
    int                report_fd;
    char               rbuf[4096]; /* partial report lines */
    size_t             rlen;
    struct inflight    fl[DEMO_MAX_INFLIGHT];
    int                nflight;
    uint64_t           flight_bytes, budget;
    long               produced;
    uint64_t           sent_bytes, verified, bad, smallest, largest;
    uint64_t           peak_disk;        /* most bytes in spill files seen */
    struct demo_tables t;
};

/** The demo's deterministic pseudo-random numbers (splitmix64). */
static inline uint64_t demo_splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* ---- the consumer processes (demo_consumers.c) ------------------------- */

#define DEMO_STALL_MS 30000 /* no report (or no room to send) this long */

/** Start d->nconsumers consumers, their channels and the shared report
 *  pipe. @return 0 or a negative error. */
int demo_consumers_start(struct demo *d);
/** Destroy their channels (their recv returns -EPIPE) and reap them (with
 *  @p kill_first, SIGTERM them first). @return how many did not exit with
 *  status 0. */
int demo_consumers_stop(struct demo *d, bool kill_first);
/** Wait for the next complete report line from any consumer and move it
 *  into @p line. @return 0, -EPIPE if a consumer died, -ETIMEDOUT when
 *  none answered for 30 s, or -errno. */
int demo_next_report(struct demo *d, char *line, size_t len);

/** Hand DRef @p r to consumer @p i through its channel. @return 0 or as
 *  mempool_chan_send(). */
int demo_send(struct demo *d, int i, mempool_dref r);

/* ---- the table phase (demo_table.c) ------------------------------------ */

/** Producer: build, set, hand out, check and delete d->t.want tables,
 *  filling d->t. @return 0 (mismatches are counted in d->t.bad) or the
 *  first error. */
int demo_tables_run(struct demo *d);

/** Consumer: answer the table line @p line ("T DREF") by decoding the
 *  table zero-copy and aggregating it; writes the report line (without the
 *  consumer's index and newline) to @p report. @return true if the table
 *  was decoded and aggregated. */
bool demo_table_consume(mempool *p, const char *line, char *report,
                        size_t len);

/** The summary lines of the table phase; @p before and @p after are the
 *  pool's figures around it. */
void demo_tables_print(const struct demo *d,
                       const struct mempool_stats *before,
                       const struct mempool_stats *after);

#endif /* MEMPOOL_DEMO_H */
