/* SPDX-License-Identifier: MIT */
/*
 * spiller.c - the pool's background spiller.
 *
 * Every handle opened with mempool_options.spiller runs a small thread that
 * tries, every MP_SPILLER_TICK_MS, to take an OFD write lock on byte
 * MP_LOCK_SPILLER of the pool's lock file (lockfile.c). The one that holds
 * it is the pool's spiller: when arena usage passes the high watermark it
 * spills the least recently used objects of any worker, pass after pass
 * without waiting for the next tick, until usage is under the low mark, so
 * that sets rarely have to make room themselves. The kernel drops the lock
 * when the spiller's process dies, and the next thread to try takes over:
 * election and re-election without heartbeats.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "spill.h"
#include "spillstate.h"

#define MP_SPILLER_TICK_MS 50

struct mp_spiller {
    pthread_t       th;
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    bool            stop;
    bool            leader;
    bool            active;     /* spilling down to the low watermark */
};

static bool try_lead(mempool *p)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
                        .l_start = MP_LOCK_SPILLER, .l_len = 1 };
    if (fcntl(p->lfd, F_OFD_SETLK, &fl) < 0)
        return false;
    atomic_store(&p->h->spiller, (uint32_t)p->slot + 1);
    return true;
}

static void step_down(mempool *p)
{
    struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET,
                        .l_start = MP_LOCK_SPILLER, .l_len = 1 };
    uint32_t me = (uint32_t)p->slot + 1;
    atomic_compare_exchange_strong(&p->h->spiller, &me, 0);
    fcntl(p->lfd, F_OFD_SETLK, &fl);
}

/* Above the high watermark: spill anyone's LRU objects down to the low.
 * Returns true if it should run again at once (still above low, and the
 * last pass freed something). */
static bool keep_watermark(mempool *p, bool *active)
{
    uint64_t data = p->npages * MP_PAGE;
    uint64_t used = atomic_load(&p->h->used_bytes);
    uint64_t high = data / 100 * p->h->high_pct;
    uint64_t low = data / 100 * p->h->low_pct;
    if (used <= low || (!*active && used <= high))
        return *active = false;
    *active = mempool__make_room(p, -1, used - low, false) == 0;
    return *active;
}

static void *spiller_main(void *arg)
{
    mempool *p = arg;
    struct mp_spiller *s = p->spill->spiller;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        struct timespec ts;
        pthread_mutex_unlock(&s->mu);
        if (!s->leader)
            s->leader = try_lead(p);
        if (s->leader)
            mempool__flight_expire(p, false);  /* TTLs of given refs */
        if (s->leader && keep_watermark(p, &s->active)) {
            pthread_mutex_lock(&s->mu);
            continue;                 /* more to do: no tick in between */
        }
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += MP_SPILLER_TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&s->mu);
        if (!s->stop)
            pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
    pthread_mutex_unlock(&s->mu);
    if (s->leader)
        step_down(p);
    return NULL;
}

int mempool__spiller_start(mempool *p)
{
    struct mp_spiller *s = calloc(1, sizeof(*s));
    pthread_condattr_t ca;
    int rc;
    if (!s)
        return -ENOMEM;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    p->spill->spiller = s;
    if ((rc = pthread_create(&s->th, NULL, spiller_main, p))) {
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        free(s);
        p->spill->spiller = NULL;
        return -rc;
    }
    return 0;
}

void mempool__spiller_stop(mempool *p)
{
    struct mp_spiller *s = p->spill->spiller;
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->th, NULL);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
    p->spill->spiller = NULL;
}
