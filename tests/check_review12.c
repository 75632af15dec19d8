/* SPDX-License-Identifier: MIT */
/*
 * check_review12.c - session 12's hostile review: what a second local user
 * (a forked child that drops to uid/gid 65534, T_NOBODY) can do to a pool
 * they may only read, or to one whose creator died; as non-root the cases
 * print "SKIP: ..." and pass.
 *
 *   reader_lock  a 0644 pool (read access for observers): the other user
 *                opens every /dev/shm file of the pool it can read and
 *                takes OFD read locks on every lock byte it can. The slot locks
 *                (worker liveness) lived on the shm object itself, so no
 *                new worker could claim a slot (-EUSERS) and a dead
 *                worker's slot was never reaped while the lock stayed.
 *   init_wait    (failpoint builds) a creator killed right after linking
 *                its 0644 pool (create.linked: not READY); the other user
 *                holds a read lock on the init byte. An attacher took the
 *                init lock to finish the build, waiting without a bound:
 *                it hung for as long as the reader kept its lock. It must
 *                answer within MEMPOOL_PEER_WAIT_MS (-EAGAIN), and finish
 *                the pool once the reader lets go.
 *   wait_nobody  a worker (a user who may write the pool) rewrites an
 *                object's entry word to "reserved by worker N" for an N no
 *                worker can have (0, 65, 255): mempool_get_wait without a
 *                timeout looked for that writer's death, which it never
 *                saw, and waited for ever. It must answer
 *                MEMPOOL_ECORRUPT.
 *   two_locks    (failpoint builds) a worker dies holding its cache's lock
 *                and the allocator lock while the robust list in the
 *                arena is damaged, so the kernel hands over only the
 *                allocator lock: the cache lock stays held by a thread
 *                that is gone. The other workers' calls answer 0, -EAGAIN
 *                or MEMPOOL_ECORRUPT, nothing hangs, nothing stored is
 *                lost (review11's finding c: accepted, README "Security
 *                model").
 *   duty_waiters_word (failpoint builds) the allocator lock's word is
 *                planted as "held, with waiters" naming no thread while a
 *                spill write is at its end (spill.written), whose last
 *                step waits for that lock without a bound: it must end
 *                (MEMPOOL_ECORRUPT), not wait for ever.
 */
#include "helpers.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layout.h"      /* white box: the init byte, entry words */

/* The lock bytes: the spiller's, the init byte, every slot's. */
#define LOCK_BYTES (MP_LOCK_SLOT(MP_WORKERS) - MP_LOCK_SPILLER)

static int lk_pipe[2];

/* The other user: open every /dev/shm file of pool *@p arg it may, and
 * read-lock every lock byte of each that it can. Report one
 * byte: 'U' could not become that user, else '0' + how many files it
 * locked ('0': none it could read or lock). Then hold the locks until killed. */
static int whole_locker(void *arg)
{
    const char *name = arg;
    char pre[T_NAME_LEN + 16], path[512], r = '0';
    struct dirent *d;
    DIR *dir;
    if (t_become_nobody() != 0) {
        r = 'U';
        (void)!write(lk_pipe[1], &r, 1);
        return 2;
    }
    snprintf(pre, sizeof pre, "mempool.%s", name);
    dir = opendir("/dev/shm");
    while (dir && (d = readdir(dir))) {
        bool any = false;
        int fd;
        if (strncmp(d->d_name, pre, strlen(pre)) ||
            (d->d_name[strlen(pre)] && d->d_name[strlen(pre)] != '#'))
            continue;
        snprintf(path, sizeof path, "/dev/shm/%s", d->d_name);
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
        /* Byte by byte: a live worker's write lock on its own byte would
         * refuse one lock over them all. */
        for (off_t b = 0; fd >= 0 && b < LOCK_BYTES; b++) {
            struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET,
                                .l_start = MP_LOCK_SPILLER + b, .l_len = 1 };
            any |= fcntl(fd, F_OFD_SETLK, &fl) == 0;
        }
        if (any && r < '9')
            r++;                      /* fd stays open: the locks stay */
    }
    (void)!write(lk_pipe[1], &r, 1);
    for (;;)
        pause();
}

START_TEST(test_reader_lock)
{
    mempool *q;
    pid_t dead, l;
    char r = '?';
    if (!t_fixture_mode("reader_lock", 0644))
        return;
    dead = t_fork(t_dies, NULL);
    t_wait_ok(dead);
    t_pipe(lk_pipe);
    l = t_fork(whole_locker, t_name);
    ck_assert_int_eq(t_recv(lk_pipe[0], &r, 1, T_WAIT_S), 0);
    ck_assert_msg(r >= '1' && r <= '9', "the other user could lock no file "
                  "of the pool (%c): the test no longer attacks anything", r);
    ck_assert_msg(mempool_reap(t_pool) == 1, "a reader's lock kept the dead "
                  "worker's slot from being reaped");
    ck_assert_msg(t_attach(t_name, &q) == 0, "a reader's lock kept a new "
                  "worker out");
    ck_assert_int_eq(mempool_close(q), 0);
    t_kill(l);
    close(lk_pipe[0]);
    close(lk_pipe[1]);
    t_assert_healthy(t_pool);
}
END_TEST

#ifdef T_FAILPOINTS
static char iw_name[T_NAME_LEN];

/* The creator of iw_name (mode 0644), killed right after linking it. */
static int iw_creator(void *unused)
{
    mempool_options o;
    mempool *q;
    (void)unused;
    setenv("MEMPOOL_FAILPOINT", "create.linked=kill@1", 1);
    umask(0);
    t_options(&o, T_ARENA_BYTES);
    o.mode = 0644;
    o.flags |= MEMPOOL_OPEN_CREATE | MEMPOOL_OPEN_EXCL;
    return mempool_open(iw_name, &o, &q) ? 3 : 4;   /* not reached */
}

/* The other user: a read lock on iw_name's init byte; 'L', 'R' (refused),
 * 'N' (no file) or 'U' (not that user) over lk_pipe, then hold it. */
static int iw_locker(void *unused)
{
    struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET,
                        .l_start = MP_LOCK_INIT, .l_len = 1 };
    char path[512], r = 'N';
    int fd;
    (void)unused;
    if (t_become_nobody() != 0) {
        r = 'U';
        (void)!write(lk_pipe[1], &r, 1);
        return 2;
    }
    t_shm_path(path, sizeof path, iw_name);
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    if (fd >= 0)
        r = fcntl(fd, F_OFD_SETLK, &fl) == 0 ? 'L' : 'R';
    (void)!write(lk_pipe[1], &r, 1);
    for (;;)
        pause();
}

/* Attach to iw_name: exit with 0, or 10 + what it answered if not 0. */
static int iw_attacher(void *unused)
{
    mempool *q;
    int rc;
    (void)unused;
    rc = t_attach(iw_name, &q);
    if (rc == 0)
        return mempool_close(q) ? 9 : 0;
    return rc == -EAGAIN ? 11 : rc == MEMPOOL_ENOTREADY ? 12 : 13;
}

START_TEST(test_init_wait)
{
    pid_t c, l, a;
    char r = '?';
    int st;
    if (geteuid() != 0) {
        fprintf(stderr, "SKIP: init_wait: not root\n");
        return;
    }
    t_pool_name(iw_name, "iw");
    c = t_fork(iw_creator, NULL);
    st = t_wait(c, T_WAIT_S);
    ck_assert_msg(st == 128 + SIGKILL, "the creator ended with %d", st);
    t_pipe(lk_pipe);
    l = t_fork(iw_locker, NULL);
    ck_assert_int_eq(t_recv(lk_pipe[0], &r, 1, T_WAIT_S), 0);
    ck_assert_msg(r == 'L', "the other user could not lock the init byte "
                  "(%c)", r);
    a = t_fork(iw_attacher, NULL);
    st = t_wait(a, T_WAIT_S);
    ck_assert_msg(st == 11, "the attacher ended with %d (-1: it hung on "
                  "the init lock the other user holds; 11: -EAGAIN)", st);
    t_kill(l);
    a = t_fork(iw_attacher, NULL);
    st = t_wait(a, T_WAIT_S);
    ck_assert_msg(st == 0, "with the lock gone the attacher ended with %d",
                  st);
    close(lk_pipe[0]);
    close(lk_pipe[1]);
    ck_assert_int_eq(mempool_destroy(iw_name), 0);
}
END_TEST
#endif

/* get_wait on object r whose entry word another worker (a user who may
 * write the pool) rewrote to "reserved by worker @p who", a worker that
 * cannot exist (0, or past MEMPOOL_MAX_WORKERS). */
static mempool_dref gw_ref;

static int gw_waiter(void *unused)
{
    mempool_view v;
    mempool *q;
    int rc;
    (void)unused;
    T_CHILD_EQ(t_attach(t_name, &q), 0);
    rc = mempool_get_wait(q, gw_ref, &v, -1);
    if (rc == 0)
        mempool_release(q, &v);
    T_CHILD_EQ(mempool_close(q), 0);
    return rc == MEMPOOL_ECORRUPT ? 0 : 10;
}

START_TEST(test_wait_nobody)
{
    static const unsigned who[] = { 0, MP_WORKERS + 1, 255 };
    _Atomic uint64_t *word;
    uint64_t w0;
    uint8_t *base;
    size_t len;
    mp_header *h;
    uint32_t idx;
    gw_ref = t_put_fill(t_pool, 64, 7);
    base = t_map_arena_rw(t_name, &len);
    ck_assert_ptr_nonnull(base);
    h = (mp_header *)(void *)base;
    idx = (uint32_t)(((gw_ref.off & MEMPOOL_DREF_ENTRY_BITS) - h->table_off) /
                     sizeof(mp_entry));
    word = &((mp_entry *)(void *)(base + h->table_off))[idx].word;
    w0 = atomic_load(word);
    for (size_t i = 0; i < sizeof who / sizeof who[0]; i++) {
        pid_t c;
        int st;
        atomic_store(word, MP_W(MP_W_GEN(w0), MP_ST_ALLOC, who[i], 0));
        c = t_fork(gw_waiter, NULL);
        st = t_wait(c, T_WAIT_S);
        atomic_store(word, w0);
        ck_assert_msg(st == 0, "get_wait on a reservation of worker %u ended "
                      "with %d (-1: it waited for ever; 10: not "
                      "MEMPOOL_ECORRUPT)", who[i], st);
    }
    munmap(base, len);
    t_expect_fill(t_pool, gw_ref, 64, 7);
    t_assert_healthy(t_pool);
}
END_TEST

#ifdef T_FAILPOINTS
/* A worker stopped holding its cache's lock and then the allocator lock
 * (cache.refilled: a refill), asked for a small object. */
static int two_locks(void *unused)
{
    mempool *q;
    mempool_dref r;
    char b[64] = { 0 };
    (void)unused;
    setenv("MEMPOOL_FAILPOINT", "cache.refilled=stop@1", 1);
    T_CHILD_EQ(t_attach(t_name, &q), 0);
    T_CHILD_EQ(mempool_put(q, b, sizeof b, &r), 0);
    return 3;                          /* killed before this */
}

/* After the damage: every call answers 0, -EAGAIN or MEMPOOL_ECORRUPT
 * (within Check's and t_wait's watchdogs: no hang), a new worker works
 * around whatever stays held, and nothing stored before is lost. */
static mempool_dref tl_refs[16];

static int after_two(void *unused)
{
    static char big[96 << 10];
    mempool *q;
    int rc;
    (void)unused;
    T_CHILD_EQ(t_attach(t_name, &q), 0);
    rc = mempool_reap(q);
    T_CHILD_ASSERT(rc >= 0 || rc == -EAGAIN || rc == MEMPOOL_ECORRUPT);
    for (int i = 0; i < 2; i++)
        for (size_t len = 64; len <= sizeof big; len = len * 48) {
            mempool_dref r;
            rc = mempool_put(q, big, len, &r);
            T_CHILD_ASSERT(rc == 0 || rc == -EAGAIN ||
                           rc == MEMPOOL_ECORRUPT);
            if (rc == 0) {
                rc = mempool_delete(q, r);
                T_CHILD_ASSERT(rc == 0 || rc == -EAGAIN ||
                               rc == MEMPOOL_ECORRUPT);
            }
        }
    rc = mempool_check(q, NULL, 0);
    T_CHILD_ASSERT(rc == 0 || rc == -EAGAIN || rc == MEMPOOL_ECORRUPT);
    for (int i = 0; i < 16; i++) {
        mempool_view v;
        T_CHILD_EQ(mempool_get(q, tl_refs[i], &v), 0);
        T_CHILD_ASSERT(v.len == 64 && t_check_fill(v.data, 64, (uint64_t)i));
        T_CHILD_EQ(mempool_release(q, &v), 0);
    }
    T_CHILD_EQ(mempool_close(q), 0);
    return 0;
}

/* Does a lock of the arena name a holder (a TID) without the kernel's
 * owner-died mark? */
static bool held_by_gone(const mp_header *h, const mp_wcache *wcs)
{
    const unsigned tid = 0x3fffffff, died = 0x40000000;
    unsigned w = (unsigned)h->alloc_lock.__data.__lock;
    bool held = (w & tid) && !(w & died);
    for (int s = 0; s < MP_WORKERS; s++) {
        w = (unsigned)wcs[s].lock.__data.__lock;
        held |= (w & tid) && !(w & died);
    }
    return held;
}

START_TEST(test_two_locks)
{
    mp_wcache *wcs;
    mp_header *h;
    size_t len;
    pid_t c;
    int st;
    for (int i = 0; i < 16; i++)
        tl_refs[i] = t_put_fill(t_pool, 64, (uint64_t)i);
    h = (mp_header *)(void *)t_map_arena_rw(t_name, &len);
    ck_assert_ptr_nonnull(h);
    c = t_fork(two_locks, NULL);
    t_await_stopped(c, "cache.refilled");
    /* The kernel walks a dying thread's robust list through the pointers
     * in the arena, from the lock taken last: point both locks' nowhere,
     * so whichever it meets first, the other is never handed over. */
    h->alloc_lock.__data.__list.__next = (void *)0x10;
    wcs = (mp_wcache *)(void *)((uint8_t *)h + h->wcache_off);
    for (int s = 0; s < MP_WORKERS; s++)
        if (wcs[s].lock.__data.__lock)
            wcs[s].lock.__data.__list.__next = (void *)0x10;
    t_kill(c);
    ck_assert_msg(held_by_gone(h, wcs), "no lock stayed held by the dead "
                  "worker: the test no longer makes the case");
    c = t_fork(after_two, NULL);
    st = t_wait(c, T_WAIT_S);
    ck_assert_msg(st == 0, "after the death the worker ended with %d (-1: "
                  "hung)", st);
    c = t_fork(after_two, NULL);
    st = t_wait(c, T_WAIT_S);
    ck_assert_msg(st == 0, "a second worker ended with %d", st);
    munmap(h, len);
    for (int i = 0; i < 16; i++)
        t_expect_fill(t_pool, tl_refs[i], 64, (uint64_t)i);
}
END_TEST
#endif

#ifdef T_FAILPOINTS
/* A worker stopped at the end of a spill write (spill.written), before
 * the step that must land under the allocator lock (spill.c finish, the
 * lock without a bound: mempool__lock_duty). Continued, it must end. */
static int duty_writer(void *unused)
{
    static char big[64 << 10];
    mempool *q;
    mempool_dref r;
    int rc;
    (void)unused;
    setenv("MEMPOOL_FAILPOINT", "spill.written=stop@1", 1);
    T_CHILD_EQ(t_attach(t_name, &q), 0);
    T_CHILD_EQ(mempool_put(q, big, sizeof big, &r), 0);
    rc = mempool_move_to_disk(q, r, NULL);
    T_CHILD_ASSERT(rc == 0 || rc == -EAGAIN || rc == MEMPOOL_ECORRUPT);
    return 0;                         /* no close: the lock is damaged */
}

START_TEST(test_duty_waiters_word)
{
    mp_header *h;
    size_t len;
    pid_t c;
    int st;
    h = (mp_header *)(void *)t_map_arena_rw(t_name, &len);
    ck_assert_ptr_nonnull(h);
    c = t_fork(duty_writer, NULL);
    t_await_stopped(c, "spill.written");
    /* "Held, with waiters" naming no thread: no unlock will ever come,
     * and no holder dies for the kernel to hand it over. */
    ck_assert_int_eq(__atomic_load_n(&h->alloc_lock.__data.__lock,
                                     __ATOMIC_RELAXED), 0);
    __atomic_store_n(&h->alloc_lock.__data.__lock, (int)FUTEX_WAITERS,
                     __ATOMIC_RELAXED);
    ck_assert_int_eq(kill(c, SIGCONT), 0);
    st = t_wait(c, T_WAIT_S);
    __atomic_store_n(&h->alloc_lock.__data.__lock, 0, __ATOMIC_RELAXED);
    munmap(h, len);
    ck_assert_msg(st == 0, "the spill writer ended with %d (-1: it waited "
                  "for ever for a lock word that names no thread)", st);
}
END_TEST
#endif

int main(void)
{
    const struct t_case cases[] = {
        { "reader", 120, true, { test_reader_lock,
#ifdef T_FAILPOINTS
                                 test_init_wait,
#endif
                               } },
        { "planted", 120, true, { test_wait_nobody,
#ifdef T_FAILPOINTS
                                  test_two_locks, test_duty_waiters_word,
#endif
                                } },
        { .name = NULL }
    };
    return t_main("review12", cases);
}
