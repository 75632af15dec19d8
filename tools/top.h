/* SPDX-License-Identifier: MIT */
/*
 * top.h - what the files of mempool-top share: its options, a sample of a
 * pool, and the entry points of the screen (top_screen.c) and of the
 * machine-readable exports (top_export.c). top.c parses the command line
 * and picks one; both sample the pool through top_snap.c.
 */
#ifndef MEMPOOL_TOP_H
#define MEMPOOL_TOP_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include <mempool/mempool.h>

#define MAXW MEMPOOL_MAX_WORKERS

enum { K_ID, K_PID, K_RES, K_PIN, K_OBJ, K_OPS, K_SPILLS, K_ERRS, K_N };

struct opts {
    const char *name;
    double      interval;  /* seconds */
    long        count;     /* frames or documents; 0 = until quit */
    bool        count_set, interval_set;
    bool        json, prom, batch;
    int         sort;
    bool        reverse;
    bool        show_gone;
};

/* One sample of a pool. */
#define MAXC 64                          /* channels a pool can have */

struct snap {
    uint64_t t;                          /* CLOCK_MONOTONIC ns */
    struct mempool_stats s;
    struct mempool_worker_stats w[MAXW];
    int nw;
    mempool_chan_info c[MAXC];           /* the channels panel */
    int nc;
};

/* A worker row with its rate, ready to sort. */
struct row {
    const struct mempool_worker_stats *w;
    double ops;        /* per second; NAN when unknown */
};

/* ---- top_snap.c ------------------------------------------------------- */

/** The names of the K_* sort keys (-s KEY, and shown on the screen). */
extern const char *const top_sort_names[K_N];
/** Set (by a signal handler) to make every loop of mempool-top end. */
extern volatile sig_atomic_t top_quit;
/** Sample pool @p p (its stats and every worker's) into @p sn. */
int top_take(mempool *p, struct snap *sn);
/** Remember which shm object pool @p name is now (after attaching). */
void top_pool_watch(const char *name);
/** True if pool @p name was destroyed, or replaced by another under its
 *  name, since top_pool_watch(). */
bool top_pool_removed(const char *name);
/** Sleep @p s seconds, or until top_quit. */
void top_sleep_s(double s);

/* ---- the modes -------------------------------------------------------- */

/** The live view (top_screen.c): frames until quit or o->count. */
int top_run_view(mempool *p, struct opts *o, bool interactive);
/** --json (top_export.c): one document, or NDJSON; all pools if !p. */
int top_run_json(mempool *p, const struct opts *o);
/** --prometheus (top_export.c): NAME's figures, or every pool's. */
int top_run_prom(mempool *p, const struct opts *o);

#endif /* MEMPOOL_TOP_H */
