/* SPDX-License-Identifier: MIT */
/*
 * rlock.h - taking and releasing the arena's robust mutexes (the
 * allocator lock, the worker caches' locks) without writing through
 * anything another user may have written into them (rlock.c says why).
 * Every lock of such a mutex goes through mempool__rl_trylock() or
 * mempool__rl_timedlock() and its unlock through mempool__rl_unlock():
 * the unlock unlinks the mutex from this thread's robust list with the
 * pointers the locks remembered. Inline: a set or delete of a small
 * object takes and releases its cache's lock once (a TLS look-up and an
 * out-of-line call each cost it ~1-2 ns, on ~50).
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
                                       unknown, glibc's unlock */
    bool asked;
    unsigned n;
    void *below;                    /* the list's front before m[0] */
    pthread_mutex_t *m[MP_RL_MAX];  /* held, in locking order */
} mp_rl;

extern _Thread_local mp_rl mempool__rl;

void mempool__rl_ask(mp_rl *r);
int  mempool__rl_refuse(pthread_mutex_t *m);
void mempool__rl_release(mp_rl *r, unsigned i);
void mempool__rl_unlock_slow(mp_rl *r, pthread_mutex_t *m);
int  mempool__rl_timedlock(pthread_mutex_t *m, const struct timespec *abs);

/* Before a lock: the list's front, if none of ours is on it yet. */
static inline mp_rl *mempool__rl_before(void)
{
    mp_rl *r = &mempool__rl;
#ifdef MP_RL_OWN
    if (__builtin_expect(!r->asked, 0))
        mempool__rl_ask(r);
    if (r->head && !r->n)
        r->below = r->head->list.next;
#endif
    return r;
}

/* After a lock of @p m that answered @p rc: remember @p m if held. */
static inline int mempool__rl_after(mp_rl *r, pthread_mutex_t *m, int rc)
{
    if ((rc == 0 || rc == EOWNERDEAD) && r->head) {
        if (__builtin_expect(r->n == MP_RL_MAX, 0))
            return mempool__rl_refuse(m);
        r->m[r->n++] = m;
    }
    return rc;
}

/* pthread_mutex_trylock() of arena mutex @p m, remembered when it is held
 * after (0, EOWNERDEAD). Its result (EAGAIN: deeper than MP_RL_MAX). */
static inline int mempool__rl_trylock(pthread_mutex_t *m)
{
    mp_rl *r = mempool__rl_before();
    return mempool__rl_after(r, m, pthread_mutex_trylock(m));
}

/* Release arena mutex @p m, held by this thread. */
static inline void mempool__rl_unlock(pthread_mutex_t *m)
{
    mp_rl *r = &mempool__rl;
    if (__builtin_expect(r->n && r->m[r->n - 1] == m, 1))
        mempool__rl_release(r, r->n - 1);
    else
        mempool__rl_unlock_slow(r, m);
}

#endif /* MEMPOOL_RLOCK_H */
