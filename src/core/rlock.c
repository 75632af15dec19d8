/* SPDX-License-Identifier: MIT */
/*
 * rlock.c - the arena's robust mutexes, released without trusting what
 * another user may have written into them.
 *
 * glibc keeps the robust mutexes a thread holds in a list the kernel
 * walks when the thread dies (that is how a dead holder's lock answers
 * EOWNERDEAD). The list runs through each mutex's __list pointers, in
 * the mutex itself: for ours, in the shared arena. pthread_mutex_unlock()
 * unlinks the mutex by writing through those two pointers, so a user who
 * may write the pool (mode 0660 or 0666) and rewrites them while a worker
 * holds the lock makes that worker store where they chose: a SIGSEGV
 * (check_review11: put and delete in a loop died within a second) or a
 * write of their choosing in another user's - root's - process.
 *
 * So the unlock here unlinks the mutex through pointers this thread keeps
 * in its own memory: the arena mutexes it holds, in locking order, and
 * what the list's front was before the first of them (read from the list
 * head, the thread's own, whose address get_robust_list(2) gives). Our
 * locks are the list's front part: nothing else locks a robust mutex in
 * this thread while it holds one of ours. The rest is glibc's robust
 * unlock (2.36, nptl/pthread_mutex_unlock.c, ROBUST_NORMAL): the pending
 * word the kernel reads if we die mid-way, the owner (not recoverable if
 * a dead holder's state was never made consistent), the users count, the
 * lock word's exchange, a FUTEX_WAKE if it had waiters. Locking stays
 * glibc's: it writes only through the thread's own list head.
 *
 * Where this cannot be done (not x86-64 glibc, whose list is doubly
 * linked with the head's prev word just before it; a seccomp filter that
 * refuses get_robust_list) pthread_mutex_unlock() as before.
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

/* A lock deeper than any path of ours (MP_RL_MAX): refused, so that the
 * list we keep stays whole. */
int mempool__rl_refuse(pthread_mutex_t *m)
{
    pthread_mutex_unlock(m);
    return EAGAIN;
}

int mempool__rl_timedlock(pthread_mutex_t *m, const struct timespec *abs)
{
    mp_rl *r = mempool__rl_before();
    int rc = pthread_mutex_timedlock(m, abs);
#if defined(__SANITIZE_THREAD__)
    /* ThreadSanitizer's pthread_mutex_timedlock() records the lock only
     * when it returns 0, not EOWNERDEAD (its trylock records both): the
     * unlock after read to it as an unlock of an unlocked mutex. */
    if (rc == EOWNERDEAD) {
        __tsan_mutex_pre_lock(m, __tsan_mutex_try_lock);
        __tsan_mutex_post_lock(m, __tsan_mutex_try_lock, 0);
    }
#endif
    return mempool__rl_after(r, m, rc);
}

/* The node of @p m on a robust list: its __list.__next word (the list's
 * pointers point there; its prev word is the one before). */
static void **rl_node(pthread_mutex_t *m)
{
    return (void **)&m->__data.__list.__next;
}

/* Unlink held mutex number @p i of @p r from this thread's list with the
 * pointers we keep: the node before it is the next one we locked (or the
 * head), the one after it the previous one (or what was below). */
static void rl_unlink(mp_rl *r, unsigned i)
{
    void **prev = i + 1 < r->n ? rl_node(r->m[i + 1])
                               : (void **)&r->head->list.next;
    void *next = i ? (void *)rl_node(r->m[i - 1]) : r->below;
    /* Bit 0 of a list word marks a PI mutex's node: not an address bit. */
    void **next_node = (void **)((uintptr_t)next & ~(uintptr_t)1);
    *prev = next;
    next_node[-1] = prev;
}

/* glibc's robust unlock after the unlink: owner, users, the lock word. */
static void rl_free(pthread_mutex_t *m)
{
    int owner = __atomic_load_n(&m->__data.__owner, __ATOMIC_RELAXED);
    unsigned users = __atomic_load_n(&m->__data.__nusers, __ATOMIC_RELAXED);
    /* A dead holder's state never made consistent: not recoverable. */
    __atomic_store_n(&m->__data.__owner, owner == INT_MAX ? INT_MAX - 1 : 0,
                     __ATOMIC_RELAXED);
    __atomic_store_n(&m->__data.__nusers, users - 1, __ATOMIC_RELAXED);
    if (__atomic_exchange_n(&m->__data.__lock, 0, __ATOMIC_RELEASE) &
        FUTEX_WAITERS)
        syscall(SYS_futex, &m->__data.__lock, FUTEX_WAKE, 1, NULL, NULL, 0);
}

void mempool__rl_release(mp_rl *r, unsigned i)
{
    pthread_mutex_t *m = r->m[i];
#if defined(__SANITIZE_THREAD__)
    __tsan_mutex_pre_unlock(m, 0);
#endif
    /* The kernel finishes what we began if we die from here on. */
    __atomic_store_n(&r->head->list_op_pending,
                     (struct robust_list *)rl_node(m), __ATOMIC_RELAXED);
    __asm__ __volatile__("" ::: "memory");
    rl_unlink(r, i);
    rl_free(m);
    __asm__ __volatile__("" ::: "memory");
    __atomic_store_n(&r->head->list_op_pending, NULL, __ATOMIC_RELAXED);
    for (r->n--; i < r->n; i++)
        r->m[i] = r->m[i + 1];
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
