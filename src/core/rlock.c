/* SPDX-License-Identifier: MIT */
/*
 * rlock.c - the arena's robust mutexes, taken and released without
 * trusting what another user may have written into them.
 *
 * A user who may write the pool (mode 0660 or 0666) can write any word of
 * a pthread_mutex_t in the arena, and glibc trusts two kinds of them:
 *
 *   - the robust list. glibc keeps the robust mutexes a thread holds in a
 *     list the kernel walks when the thread dies (that is how a dead
 *     holder's lock answers EOWNERDEAD); it runs through each mutex's
 *     __list pointers, in the arena. pthread_mutex_unlock() unlinked the
 *     mutex by writing through them: rewritten while a worker held the
 *     lock, they made it store where the other user chose (check_review11
 *     robust_list: SIGSEGV within a second; in general a write of their
 *     choosing in another user's - root's - process);
 *   - the kind word. glibc's lock functions pick their protocol by it on
 *     every call: a priority-protected or -inheriting kind planted (or
 *     flipped there and back, past our own look at it) sent them into
 *     paths whose asserts abort the process (check_review11 kind).
 *
 * So all of it is done here, for the one kind we make (robust, normal,
 * process-shared), following glibc 2.36 (nptl/pthread_mutex_trylock.c,
 * pthread_mutex_timedlock.c, pthread_mutex_unlock.c): the lock word (our
 * TID, FUTEX_WAITERS, FUTEX_OWNER_DIED set by the kernel for a holder
 * that died), owner, count and users, and the thread's robust list
 * (glibc's own, whose head get_robust_list(2) gives, so the kernel still
 * hands a dead holder's lock over), linked and unlinked through pointers
 * this thread keeps in its own memory: the arena mutexes it holds, in
 * locking order, and the list's front before the first of them. Ours are
 * the list's front part: nothing else locks a robust mutex in this thread
 * while it holds one of ours. Nothing in the mutex is read but the lock
 * word and the owner.
 *
 * Where this cannot be done (not x86-64 glibc, whose list is doubly linked
 * with the head's prev word just before it; a seccomp filter that refuses
 * get_robust_list) the pthread functions as before.
 */
#include <limits.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#endif

#include "rlock.h"

_Thread_local mp_rl mempool__rl;

void mempool__rl_ask(mp_rl *r)
{
#ifdef MP_RL_OWN
    struct robust_list_head *h = NULL;
    size_t len = 0;
    if (syscall(SYS_get_robust_list, 0, &h, &len) == 0 &&
        len == sizeof(*h) && h)
        r->head = h;
#endif
    r->asked = true;
}

void mempool__rl_forked(void)
{
    mempool__rl_self()->tid = 0;    /* the child's thread has its own */
}

/* This thread's TID (the lock word's owner). */
static int rl_tid(mp_rl *r)
{
    if (!r->tid)
        r->tid = (int)syscall(SYS_gettid);
    return r->tid;
}

/* The node of @p m on a robust list: its __list.__next word (the list's
 * pointers point there; its prev word is the one before). */
static void **rl_node(pthread_mutex_t *m)
{
    return (void **)&m->__data.__list.__next;
}

static void rl_pending(mp_rl *r, pthread_mutex_t *m)
{
    /* The kernel finishes a lock or unlock we die in the middle of. */
    __atomic_store_n(&r->head->list_op_pending,
                     m ? (struct robust_list *)rl_node(m) : NULL,
                     __ATOMIC_RELAXED);
    __asm__ __volatile__("" ::: "memory");
}

/* Held @p m to the list's front (glibc's ENQUEUE_MUTEX, with the front
 * read from our head) and remembered. */
static void rl_enqueue(mp_rl *r, pthread_mutex_t *m)
{
    void **node = rl_node(m);
    void *front = r->head->list.next;
    if (!r->n)
        r->below = front;
    /* Bit 0 of a list word marks a PI mutex's node: not an address bit. */
    ((void **)((uintptr_t)front & ~(uintptr_t)1))[-1] = node;
    __atomic_store_n((void **)&m->__data.__list.__next, front,
                     __ATOMIC_RELAXED);
    __atomic_store_n((void **)&m->__data.__list.__prev,
                     (void *)&r->head->list.next, __ATOMIC_RELAXED);
    __asm__ __volatile__("" ::: "memory");
    r->head->list.next = (struct robust_list *)node;
    r->m[r->n++] = m;
}

/* Unlink held mutex number @p i of @p r from this thread's list with the
 * pointers we keep: the node before it is the next one we locked (or the
 * head), the one after it the previous one (or what was below). */
static void rl_unlink(mp_rl *r, unsigned i)
{
    void **prev = i + 1 < r->n ? rl_node(r->m[i + 1])
                               : (void **)&r->head->list.next;
    void *next = i ? (void *)rl_node(r->m[i - 1]) : r->below;
    void **next_node = (void **)((uintptr_t)next & ~(uintptr_t)1);
    *prev = next;
    next_node[-1] = prev;
    for (r->n--; i < r->n; i++)
        r->m[i] = r->m[i + 1];
}

static void rl_wake(int *w)
{
    syscall(SYS_futex, w, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* Set the lock word to 0, waking a waiter if it said there were any. */
static void rl_word_free(int *w)
{
    if (__atomic_exchange_n(w, 0, __ATOMIC_RELEASE) & FUTEX_WAITERS)
        rl_wake(w);
}

#define RL_INCONSISTENT INT_MAX          /* glibc's owner values */
#define RL_NOTRECOVERABLE (INT_MAX - 1)

/* One attempt at @p m: 0, EOWNERDEAD (its holder died: ours now, to make
 * consistent), ENOTRECOVERABLE, or EBUSY with the word in the way in
 * *@p seen. With @p waited (we slept on it) the word we take says there
 * may be waiters still, as glibc's does. */
static int rl_try(mp_rl *r, pthread_mutex_t *m, bool waited, int *seen)
{
    int *w = &m->__data.__lock, id = rl_tid(r);
    int old = __atomic_load_n(w, __ATOMIC_RELAXED);
    rl_pending(r, m);
    for (;;) {
        if (old & FUTEX_OWNER_DIED) {
            if (!__atomic_compare_exchange_n(w, &old,
                                             id | (old & FUTEX_WAITERS),
                                             false, __ATOMIC_ACQUIRE,
                                             __ATOMIC_RELAXED))
                continue;
            __atomic_store_n(&m->__data.__owner, RL_INCONSISTENT,
                             __ATOMIC_RELAXED);
            __atomic_store_n(&m->__data.__count, 1u, __ATOMIC_RELAXED);
            rl_enqueue(r, m);
            rl_pending(r, NULL);
            return EOWNERDEAD;
        }
        if (old) {
            rl_pending(r, NULL);
            *seen = old;
            return EBUSY;
        }
        if (__atomic_compare_exchange_n(w, &old,
                                        id | (waited ? FUTEX_WAITERS : 0),
                                        false, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED))
            break;
    }
    if (__atomic_load_n(&m->__data.__owner, __ATOMIC_RELAXED) ==
        RL_NOTRECOVERABLE) {
        __atomic_store_n(&m->__data.__count, 0u, __ATOMIC_RELAXED);
        rl_word_free(w);
        rl_pending(r, NULL);
        return ENOTRECOVERABLE;
    }
    rl_enqueue(r, m);
    rl_pending(r, NULL);
    __atomic_store_n(&m->__data.__owner, id, __ATOMIC_RELAXED);
    __atomic_store_n(&m->__data.__count, 1u, __ATOMIC_RELAXED);
    __atomic_store_n(&m->__data.__nusers,
                     __atomic_load_n(&m->__data.__nusers, __ATOMIC_RELAXED) + 1,
                     __ATOMIC_RELAXED);
    return 0;
}

/* ThreadSanitizer does not see these locks through its interceptors:
 * say them (a timed lock reads as a try). */
static void rl_tsan_pre(pthread_mutex_t *m)
{
#if defined(__SANITIZE_THREAD__)
    __tsan_mutex_pre_lock(m, __tsan_mutex_try_lock);
#else
    (void)m;
#endif
}

static int rl_tsan_post(pthread_mutex_t *m, int rc)
{
#if defined(__SANITIZE_THREAD__)
    __tsan_mutex_post_lock(m, rc == 0 || rc == EOWNERDEAD
                                  ? __tsan_mutex_try_lock
                                  : __tsan_mutex_try_lock |
                                        __tsan_mutex_try_lock_failed, 0);
#else
    (void)m;
#endif
    return rc;
}

/* Our own lock can be used (and the list we keep has room). 1 yes, 0 no
 * (the pthread functions), -1 refused: deeper than any path of ours. */
static int rl_usable(mp_rl *r)
{
    if (__builtin_expect(!r->asked, 0))
        mempool__rl_ask(r);
    if (!r->head)
        return 0;
    return r->n < MP_RL_MAX ? 1 : -1;
}

int mempool__rl_trylock(pthread_mutex_t *m)
{
    mp_rl *r = mempool__rl_self();
    int ok = rl_usable(r), seen, rc;
    if (ok <= 0)
        return ok ? EAGAIN : pthread_mutex_trylock(m);
    rl_tsan_pre(m);
    rc = rl_try(r, m, false, &seen);
    return rl_tsan_post(m, rc);
}

/* Is CLOCK_REALTIME past @p abs? */
static bool rl_past(const struct timespec *abs)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return now.tv_sec > abs->tv_sec ||
           (now.tv_sec == abs->tv_sec && now.tv_nsec >= abs->tv_nsec);
}

/* A sleep on a held lock lasts RL_STEP_NS at most, then we try again. A
 * wake-up can be lost: the holder's unlock wakes one sleeper, and that
 * one may be SIGKILLed before it takes the lock, or wake just as its own
 * deadline passes and give up. The other sleepers then slept on a free
 * lock until their own deadlines (check_alloc_review storm: fsck waited
 * its whole 5 s bound on a cache lock whose word read 0, ~1 in 50 TSan
 * runs under load). A lost wake-up now costs a sleeper one step; a waiter
 * on a stopped holder pays 50 futex calls a second. */
#define RL_STEP_NS 20000000u

/* The earlier of @p abs and RL_STEP_NS from now, in @p out. */
static void rl_step(const struct timespec *abs, struct timespec *out)
{
    clock_gettime(CLOCK_REALTIME, out);
    out->tv_nsec += (long)RL_STEP_NS;
    if (out->tv_nsec >= 1000000000L) {
        out->tv_sec++;
        out->tv_nsec -= 1000000000L;
    }
    if (out->tv_sec > abs->tv_sec ||
        (out->tv_sec == abs->tv_sec && out->tv_nsec > abs->tv_nsec))
        *out = *abs;
}

int mempool__rl_timedlock(pthread_mutex_t *m, const struct timespec *abs)
{
    mp_rl *r = mempool__rl_self();
    int ok = rl_usable(r), *w = &m->__data.__lock, seen, rc;
    bool waited = false;
    struct timespec until;
    if (ok < 0)
        return EAGAIN;
    if (!ok) {
        rc = pthread_mutex_timedlock(m, abs);
#if defined(__SANITIZE_THREAD__)
        /* Its interceptor records the lock only on 0, not EOWNERDEAD. */
        if (rc == EOWNERDEAD) {
            rl_tsan_pre(m);
            rl_tsan_post(m, rc);
        }
#endif
        return rc;
    }
    rl_tsan_pre(m);
    /* Every wake-up, and every step's end, tries first: a wake-up that
     * comes as the deadline passes still takes the lock it was for. Only
     * then the deadline: a word that keeps moving and wake-ups that keep
     * coming (its holders, or someone who makes them on purpose) do not
     * keep us past @p abs. */
    while ((rc = rl_try(r, m, waited, &seen)) == EBUSY) {
        if (rl_past(abs)) {
            rc = ETIMEDOUT;
            break;
        }
        /* Say there is a waiter, then sleep while the word holds that. */
        if (!(seen & FUTEX_WAITERS) &&
            !__atomic_compare_exchange_n(w, &seen, seen | FUTEX_WAITERS,
                                         false, __ATOMIC_RELAXED,
                                         __ATOMIC_RELAXED))
            continue;               /* the word moved: try again */
        waited = true;
        rl_step(abs, &until);
        if (syscall(SYS_futex, w, FUTEX_WAIT_BITSET | FUTEX_CLOCK_REALTIME,
                    seen | FUTEX_WAITERS, &until, NULL,
                    FUTEX_BITSET_MATCH_ANY) < 0 &&
            errno != EAGAIN && errno != EINTR && errno != ETIMEDOUT) {
            rc = errno;             /* EINVAL: a bad @p abs */
            break;
        }
    }
    return rl_tsan_post(m, rc);
}

int mempool__rl_consistent(pthread_mutex_t *m)
{
    mp_rl *r = mempool__rl_self();
    if (!r->head)
        return pthread_mutex_consistent(m);
    if (__atomic_load_n(&m->__data.__owner, __ATOMIC_RELAXED) !=
        RL_INCONSISTENT)
        return EINVAL;
    __atomic_store_n(&m->__data.__owner, rl_tid(r), __ATOMIC_RELAXED);
    return 0;
}

void mempool__rl_release(mp_rl *r, unsigned i)
{
    pthread_mutex_t *m = r->m[i];
    int owner = __atomic_load_n(&m->__data.__owner, __ATOMIC_RELAXED);
#if defined(__SANITIZE_THREAD__)
    __tsan_mutex_pre_unlock(m, 0);
#endif
    rl_pending(r, m);
    rl_unlink(r, i);
    /* A dead holder's state never made consistent: not recoverable. */
    __atomic_store_n(&m->__data.__owner,
                     owner == RL_INCONSISTENT ? RL_NOTRECOVERABLE : 0,
                     __ATOMIC_RELAXED);
    __atomic_store_n(&m->__data.__nusers,
                     __atomic_load_n(&m->__data.__nusers, __ATOMIC_RELAXED) - 1,
                     __ATOMIC_RELAXED);
    rl_word_free(&m->__data.__lock);
    __asm__ __volatile__("" ::: "memory");
    rl_pending(r, NULL);
#if defined(__SANITIZE_THREAD__)
    __tsan_mutex_post_unlock(m, 0);
#endif
}

void mempool__rl_unlock_slow(mp_rl *r, pthread_mutex_t *m)
{
    unsigned i = r->n;
    while (i && r->m[i - 1] != m)
        i--;
    if (i)
        mempool__rl_release(r, i - 1);
    else
        pthread_mutex_unlock(m);     /* not ours to know (see above) */
}
