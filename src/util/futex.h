/* SPDX-License-Identifier: MIT */
/*
 * futex.h - waiting on 32-bit words of the shared arena.
 *
 * Shared futexes (no FUTEX_PRIVATE_FLAG): the kernel keys them by the
 * backing page of the shm object, so processes that map the arena at
 * different addresses meet on the same word. A waiter sleeps only while
 * the word still holds the value it saw; a waker bumps the word first, so
 * a wake can never be lost between a waiter's check and its sleep.
 *
 * Callers keep a waiters count next to each word and call wake only when it
 * is non-zero (the waiter increments it before its last check, seq_cst, so
 * either the waker sees the waiter or the waiter sees the change); the
 * handoff's mp_signal() / mp_sleep() also let the waker take the woken off
 * the count, so signals that follow do not wake them again.
 */
#ifndef MEMPOOL_FUTEX_H
#define MEMPOOL_FUTEX_H

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* futex(2) with the raw system call: 0 or more, or negative on an error
 * (which no caller needs told apart: -1 or the kernel's -errno). On x86-64
 * the instruction itself, not glibc's syscall(): that is a call through
 * the PLT and a wrapper that shuffles all six arguments and sets errno,
 * on both ends of every wake-up (the waker's FUTEX_WAKE, the sleeper's
 * return from FUTEX_WAIT). Clobbers what the kernel's ABI says it does:
 * rcx and r11 (and memory: the kernel may have read or written the word
 * and the timeout). */
static inline long mp_futex_sys(void *w, int op, uint32_t val,
                                const struct timespec *ts, uint32_t val3)
{
#if defined(__x86_64__)
    register long r10 __asm__("r10") = (long)(uintptr_t)ts;
    register long r8 __asm__("r8") = 0;
    register long r9 __asm__("r9") = (long)val3;
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "0"((long)SYS_futex), "D"(w), "S"((long)op),
                       "d"((long)val), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
#else
    return syscall(SYS_futex, w, op, val, ts, NULL, val3);
#endif
}

/* CLOCK_MONOTONIC now, ns. */
static inline uint64_t mp_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Deadline for a timeout in ms: UINT64_MAX forever (< 0), now for 0. */
static inline uint64_t mp_deadline(int64_t timeout_ms)
{
    if (timeout_ms < 0)
        return UINT64_MAX;
    if ((uint64_t)timeout_ms > UINT64_MAX / 2000000u)
        return UINT64_MAX;
    return mp_mono_ns() + (uint64_t)timeout_ms * 1000000u;
}

/* Sleep while *w == val, until woken, @p deadline (CLOCK_MONOTONIC ns,
 * UINT64_MAX = none) or at most @p cap_ns (0 = no cap; lets a waiter look
 * again at something no one will wake it for, such as a dead peer).
 * @return 1 when a FUTEX_WAKE took us off the queue (its caller counted
 * us: see mp_signal()), 0 when back any other way (value changed, cap,
 * signal: re-check), -ETIMEDOUT when the deadline has passed. */
static inline int mp_futex_sleep(void *w, uint32_t val, uint64_t deadline,
                                 uint64_t cap_ns)
{
    struct timespec ts, *tsp = NULL;
    uint64_t until = deadline;
    if (deadline != UINT64_MAX || cap_ns) {
        uint64_t now = mp_mono_ns();
        if (now >= deadline)
            return -ETIMEDOUT;
        if (cap_ns && cap_ns < deadline - now)
            until = now + cap_ns;
        ts.tv_sec = (time_t)(until / 1000000000u);
        ts.tv_nsec = (long)(until % 1000000000u);
        tsp = &ts;
    }
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time: no second
     * clock read in the kernel (a relative FUTEX_WAIT adds the timeout to
     * its own now), 0.1 us less per timed sleep here. A timer still costs
     * its setup and cancel on every timed sleep (about 0.25 us on this
     * machine's VM): untimed when there is neither a deadline nor a cap.
     * Any bitset is woken by FUTEX_WAKE. 0 only when a waker dequeued us
     * (the kernel retries its own spurious wake-ups). */
    return mp_futex_sys(w, FUTEX_WAIT_BITSET, val, tsp,
                        FUTEX_BITSET_MATCH_ANY) == 0;
}

/* mp_futex_sleep() for callers that do not care who woke them: 0 or
 * -ETIMEDOUT. EINTR is a spurious wake-up. */
static inline int mp_futex_wait(void *w, uint32_t val, uint64_t deadline,
                                uint64_t cap_ns)
{
    int rc = mp_futex_sleep(w, val, deadline, cap_ns);
    return rc < 0 ? rc : 0;
}

/* The low 32 bits of a 64-bit arena word, for FUTEX_WAIT. */
static inline void *mp_word_low(void *w)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return w;
#else
    return (uint32_t *)w + 1;
#endif
}

/* Wake up to @p n sleepers of @p w; how many it woke (0 on error). */
static inline int mp_futex_wake(void *w, int n)
{
    long r = mp_futex_sys(w, FUTEX_WAKE, (uint32_t)n, NULL, 0);
    return r > 0 ? (int)r : 0;
}

#endif /* MEMPOOL_FUTEX_H */
