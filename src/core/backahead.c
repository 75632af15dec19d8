/* SPDX-License-Identifier: MIT */
/*
 * backahead.c - a large put into new memory: the kernel zeroes the rest
 * of the block on a helper thread while the caller copies into the part
 * already backed (issue 11 target 3).
 *
 * A put's block of holes costs the kernel's zeroing of every new page
 * (~40 % of a fresh process's 64 MiB set into a new pool: clear_page_erms
 * in MADV_COLLAPSE) before the copy can use it; in one thread the two add
 * up to 0.6-0.7x a memcpy into touched memory. Here the caller backs the
 * block's first 2 MiB chunk itself while a helper thread starts, then
 * copies chunk after chunk while the helper backs the rest of the block
 * with one mempool__range_back() - one MADV_COLLAPSE for all its chunks,
 * since every such call first waits for each CPU to drain its page lists
 * (lru_add_drain_all(): 0.1-10 ms on a loaded machine, so a call per
 * chunk was 2-10x slower than one for the block). The kernel collapses the
 * chunks in address order, about as fast as the caller copies them (~0.12
 * ms per 2 MiB each on this VM), so once the helper's first chunk is done
 * the caller finds each next one done; it learns that from mincore():
 * a page of the shm object that mincore() reports is backed (the rule
 * blockback.c already trusts), and a huge chunk answers in ~1 us.
 *
 * So a chunk is copied into only when every page of ours in it is backed:
 * its punched flags are clear, or mincore() finds all of them. The flags
 * themselves are cleared only by mempool__range_back() after the backing
 * returned, as for an inline put, so a kill of the process at any
 * instruction of either thread leaves at worst pages backed whose flags
 * still say "maybe a hole", in a block that is the caller's reservation
 * (its ALLOC entry), which the reaper frees. A write into a chunk the
 * kernel is still collapsing waits for it (the same as for khugepaged).
 *
 * The caller copies with streaming stores (streamcopy.c): memcpy() into
 * the lines the other CPU has just zeroed took twice as long (~7.8 ms of
 * CPU for 64 MiB against ~3.7 ms; a plain store first reads its line for
 * ownership, here out of the zeroing CPU's cache), which made the copy,
 * not the zeroing, the longer of the two and the set ~0.75-0.85x memcpy
 * into touched memory instead of ~1.2-1.5x.
 *
 * The helper lives only inside this call: it is joined before the put
 * returns, blocks every signal (no handler runs on it), and the caller's
 * cancellation is held off meanwhile; a fork() by another thread gives a
 * child without either. The put asks for it only when a CPU looks free
 * (mempool__spare_cpu(); object.c decides, and MEMPOOL_OPEN_BACK_INLINE /
 * _AHEAD override). While the helper has not taken the rest, the caller
 * takes the next chunk itself, and after ALONE_MAX - 1 of them the whole
 * rest (a helper that starts late then finds nothing to do); if the
 * thread cannot be created (EAGAIN, a seccomp filter), the caller backs
 * the whole block at once, as an inline put does.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "failpoint.h"
#include "futex.h"
#include "internal.h"
#include "streamcopy.h"

/* Stack for the helper: it makes system calls (mincore's vector is 512
 * bytes) and nothing more. */
#define HELPER_STACK (64u << 10)
/* How long the caller sleeps at a time waiting for a chunk (it is woken
 * early when the helper finishes). */
#define POLL_NS 50000u
/* Chunks the caller backs one by one while the helper has not started;
 * then it takes the whole rest (one collapse, no overlap). */
#define ALONE_MAX 4u
/* In fill.next: the helper has taken [next, end). */
#define HELPER (UINT64_C(1) << 63)

struct fill {
    mp_core   *c;
    bool      *huge;
    uint64_t   end;              /* the block's end (data page) */
    _Atomic uint64_t next;       /* first page nobody has taken, | HELPER */
    _Atomic uint32_t done;       /* the helper: 0, 1 backed, 2 failed */
};

/* First data page of the chunk after the one holding data page @p k. */
static uint64_t next_chunk_page(const mp_core *c, uint64_t k)
{
    uint64_t off = c->data_off + k * MP_PAGE;
    uint64_t ce = (off & ~(uint64_t)(MP_CHUNK - 1)) + MP_CHUNK;
    return (ce - c->data_off) / MP_PAGE;
}

static void helper_done(struct fill *f, int rc)
{
    atomic_store(&f->done, rc ? 2u : 1u);
    mp_futex_wake(&f->done, 1);
}

static void *helper_main(void *arg)
{
    struct fill *f = arg;
    int fp = MP_FP(back_ahead);           /* back.ahead=enospc: refused */
    uint64_t w = atomic_load(&f->next);
    do {
        if (w >= f->end)
            return NULL;                  /* the caller took everything */
    } while (!atomic_compare_exchange_weak(&f->next, &w, w | HELPER));
    helper_done(f, fp ? fp : mempool__range_back(f->c, f->huge, w, f->end));
    return NULL;
}

bool mempool__spare_cpu(void)
{
    cpu_set_t set;
    char buf[160], *s;
    long running;
    ssize_t n;
    int fd;
    if (sched_getaffinity(0, sizeof set, &set) || CPU_COUNT(&set) < 2)
        return false;
    /* "0.52 0.58 0.59 2/317 12345": the 4th field is the tasks runnable
     * now (this one included) / all; unknown: assume a free CPU. */
    if ((fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC)) < 0)
        return true;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    if (!(s = strchr(buf, '/')))
        return true;
    while (s > buf && s[-1] >= '0' && s[-1] <= '9')
        s--;
    running = strtol(s, NULL, 10);
    return running < get_nprocs();
}

/* Start the helper with every signal blocked; false if it cannot be. */
static bool helper_start(struct fill *f, pthread_t *th)
{
    sigset_t all, old;
    pthread_attr_t at;
    int rc;
    if (pthread_attr_init(&at))
        return false;
    (void)pthread_attr_setstacksize(&at, HELPER_STACK);
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(th, &at, helper_main, f);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&at);
    return rc == 0;
}

/* Wait until the helper's chunk [a, z) may be written: 0, or -ENOSPC.
 * It sleeps, not spins: the helper's collapse first waits for every CPU
 * to drain its page lists, ours included, which a spinning caller would
 * hold off until its time slice ends. */
static int helper_chunk(struct fill *f, uint64_t a, uint64_t z)
{
    uint32_t d;
    for (;;) {
        if ((d = atomic_load(&f->done)))
            return d == 1 ? 0 : -ENOSPC;
        if (mempool__all_backed(f->c, a, z) ||
            /* the last page first: the kernel fills a chunk's holes in
             * one go, and its first page had memory before the collapse */
            mempool__resident(f->c, a, z, z - 1))
            return 0;
        (void)mp_futex_wait(&f->done, 0, UINT64_MAX, POLL_NS);
    }
}

/* Make the chunk [a, z) writable: ours if we backed past it (*@p mine,
 * the end of what we took), else ours to take while the helper has not
 * taken the rest (one chunk at a time, the whole rest after ALONE_MAX),
 * else the helper's. 0 or -ENOSPC. */
static int chunk_ready(struct fill *f, uint64_t a, uint64_t z,
                       uint64_t *mine, unsigned *alone)
{
    uint64_t w = *mine, upto;
    if (z <= *mine)
        return 0;
    upto = ++*alone < ALONE_MAX ? z : f->end;
    if (atomic_compare_exchange_strong(&f->next, &w, upto)) {
        *mine = upto;
        return mempool__range_back(f->c, f->huge, a, upto);
    }
    return helper_chunk(f, a, z);        /* w has HELPER */
}

/* After the copy (or a failure): wait for the helper if it took the
 * rest; 0, or -ENOSPC if it could not back it. */
static int rest_settled(struct fill *f)
{
    uint64_t w = atomic_load(&f->next);
    uint32_t d;
    /* Keep a helper that has not started from taking anything now. */
    while (!(w & HELPER) &&
           !atomic_compare_exchange_weak(&f->next, &w, f->end))
        ;
    if (!(w & HELPER))
        return 0;
    while (!(d = atomic_load(&f->done)))
        (void)mp_futex_wait(&f->done, 0, UINT64_MAX, POLL_NS);
    return d == 1 ? 0 : -ENOSPC;
}

int mempool__fill(mp_core *c, bool *huge, uint64_t pg, uint64_t n,
                  void *dst, const void *src, size_t len)
{
    struct fill f = { c, huge, pg + n, pg, 0 };
    uint64_t mine = pg;
    unsigned alone = 0;
    pthread_t th;
    bool started;
    int rc = 0, rest, cs;
    if (n == 0 || pg + n > c->npages || len > n * MP_PAGE)
        return -EINVAL;
    /* pthread_join() is a cancellation point: cancelled there, the caller
     * would leave the helper backing a block it no longer owns. */
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cs);
    started = helper_start(&f, &th);
    if (!started)
        alone = ALONE_MAX;                /* take it all at once */
    for (uint64_t a = pg, z; a < f.end && rc == 0; a = z) {
        z = next_chunk_page(c, a);
        z = z < f.end ? z : f.end;
        if ((rc = chunk_ready(&f, a, z, &mine, &alone)) == 0 &&
            (a - pg) * MP_PAGE < len) {
            size_t o = (size_t)((a - pg) * MP_PAGE);
            size_t e = (size_t)((z - pg) * MP_PAGE);
            mempool__copy_stream((uint8_t *)dst + o,
                                 (const uint8_t *)src + o,
                                 (e < len ? e : len) - o);
        }
    }
    rest = rest_settled(&f);
    if (started)
        pthread_join(th, NULL);
    pthread_setcancelstate(cs, NULL);
    return rc ? rc : rest;
}
