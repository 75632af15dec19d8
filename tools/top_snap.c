/* SPDX-License-Identifier: MIT */
/*
 * top_snap.c - mempool-top's samples of a pool and its quit flag (a leaf:
 * the screen and the exports call it, it calls neither).
 */
#include "top.h"
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

volatile sig_atomic_t top_quit;

const char *const top_sort_names[K_N] = {
    "id", "pid", "resident", "pinned", "objects", "ops", "spills", "errors",
};

static int take_chan(const mempool_chan_info *ci, void *arg)
{
    struct snap *sn = arg;
    if (sn->nc < MAXC)
        sn->c[sn->nc++] = *ci;
    return 0;
}

int top_take(mempool *p, struct snap *sn)
{
    int rc = mempool_stats_get(p, &sn->s);
    sn->t = cli_now_ns();
    sn->nw = 0;
    for (int id = 1; rc == 0 && id <= MAXW; id++) {
        rc = mempool_worker_stats_get(p, id, &sn->w[sn->nw]);
        if (rc == 0 && sn->w[sn->nw].state != MEMPOOL_WORKER_FREE)
            sn->nw++;
    }
    sn->nc = 0;
    if (rc == 0)
        rc = mempool_chan_list(p, take_chan, sn);
    return rc;
}

/* Interruptible by a quit signal (the view installs the handler). */
void top_sleep_s(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - floor(s)) * 1e9) };
    while (!top_quit && nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* The shm object we attached to (top_pool_watch), to tell a destroyed pool
 * - also one re-created under the same name since - from the one we show. */
static dev_t watched_dev;
static ino_t watched_ino;
static bool watched;

void top_pool_watch(const char *name)
{
    char path[MEMPOOL_NAME_MAX + 32];
    struct stat st;
    snprintf(path, sizeof path, "/dev/shm/mempool.%s", name);
    if (stat(path, &st) == 0) {
        watched_dev = st.st_dev;
        watched_ino = st.st_ino;
        watched = true;
    }
}

/* Our pool is no longer under its name: destroyed (and maybe re-created:
 * what we show is still the destroyed one). */
bool top_pool_removed(const char *name)
{
    char path[MEMPOOL_NAME_MAX + 32];
    struct stat st;
    snprintf(path, sizeof path, "/dev/shm/mempool.%s", name);
    if (stat(path, &st) < 0)
        return errno == ENOENT;
    return watched && (st.st_dev != watched_dev || st.st_ino != watched_ino);
}
