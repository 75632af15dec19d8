/* SPDX-License-Identifier: MIT */
/*
 * rlock.h - taking and releasing the arena's robust mutexes (the
 * allocator lock, the worker caches' locks) without trusting anything
 * another user may have written into them (rlock.c says why): every lock
 * of such a mutex goes through mempool__rl_trylock() or
 * mempool__rl_timedlock(), a dead holder's state is made consistent with
 * mempool__rl_consistent() and the unlock is mempool__rl_unlock(). The
 * unlock's common case is inline: a set or delete of a small object takes
 * and releases its cache's lock once (a TLS look-up and an out-of-line
 * call each cost it ~1-2 ns, on ~50).
 */
#ifndef MEMPOOL_RLOCK_H
#define MEMPOOL_RLOCK_H

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <mempool/mempool.h>

#if defined(__x86_64__) && defined(__GLIBC__) && \
    defined(__PTHREAD_MUTEX_HAVE_PREV) && __PTHREAD_MUTEX_HAVE_PREV
#define MP_RL_OWN 1
#endif

/* Arena mutexes one thread holds at once: the allocator lock and a
 * worker cache's lock or two (a give under the allocator lock), or every
 * cache's (the allocator's verify and rebuild lock them all). */
#define MP_RL_MAX (MEMPOOL_MAX_WORKERS + 4u)

/* What this thread knows of its robust list (rlock.c). */
typedef struct mp_rl {
    struct robust_list_head *head;  /* this thread's (glibc's); NULL:
                                       unknown, the pthread functions */
    bool asked;
    int tid;                        /* 0: not asked yet */
    unsigned n;
    void *below;                    /* the list's front before m[0] */
    pthread_mutex_t *m[MP_RL_MAX];  /* held, in locking order */
} mp_rl;

extern _Thread_local mp_rl mempool__rl;

/* This thread's mp_rl, its address computed once (the compiler would
 * otherwise recompute a shared library's TLS address - a call - at each
 * use). */
static inline mp_rl *mempool__rl_self(void)
{
    mp_rl *r = &mempool__rl;
    __asm__("" : "+r"(r));
    return r;
}

/* pthread_mutex_trylock() / pthread_mutex_timedlock() (a CLOCK_REALTIME
 * @p abs) / pthread_mutex_consistent() of arena mutex @p m, for a robust,
 * normal, process-shared one whatever its kind word says. Their results;
 * EAGAIN: a lock deeper than any path of ours (MP_RL_MAX). */
int mempool__rl_trylock(pthread_mutex_t *m);
int mempool__rl_timedlock(pthread_mutex_t *m, const struct timespec *abs);
int mempool__rl_consistent(pthread_mutex_t *m);

/* In a fork()ed child: this thread has another TID now. */
void mempool__rl_forked(void);

void mempool__rl_ask(mp_rl *r);
void mempool__rl_release(mp_rl *r, unsigned i);
void mempool__rl_unlock_slow(mp_rl *r, pthread_mutex_t *m);

/* Release arena mutex @p m, held by this thread. */
static inline void mempool__rl_unlock(pthread_mutex_t *m)
{
    mp_rl *r = mempool__rl_self();
    if (__builtin_expect(r->n && r->m[r->n - 1] == m, 1))
        mempool__rl_release(r, r->n - 1);
    else
        mempool__rl_unlock_slow(r, m);
}

#endif /* MEMPOOL_RLOCK_H */
