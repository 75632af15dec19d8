/* SPDX-License-Identifier: MIT */
/*
 * check_review11.c - a hostile review of what a second local user can do
 * to a pool another user shares with them (mode 0666): the other user is
 * real, a forked child that drops to uid/gid 65534 (T_NOBODY); as non-root
 * the cases print "SKIP: ..." and pass.
 *
 * A user who may write a pool is trusted with its contents, not with the
 * other workers' processes: damage must end in MEMPOOL_ECORRUPT or a
 * bounded wait, never in a crash (README "Security model").
 *
 *   robust_list  the arena's robust mutexes (the allocator lock, the
 *                worker caches' locks) hold glibc's robust-list pointers,
 *                which pthread_mutex_unlock() stored through. The other
 *                user rewrites them without pause while a root worker
 *                puts and deletes small objects (its cache's lock), page
 *                runs (the allocator lock) and objects of another worker
 *                (handed back into that worker's cache, under its lock):
 *                the worker lives and every call succeeds (it died of
 *                SIGSEGV within a second before rlock.c).
 *   kind         the other user flips each mutex's kind word to a
 *                priority-protected or priority-inheriting kind and back,
 *                over and over, while root workers attached before it
 *                began check the pool, put and delete: glibc's lock read
 *                the kind (after our own check of it, or with none: the
 *                allocator lock's is checked at attach only) and died in
 *                its asserts (abort: tpp.c "new_prio", trylock "robust").
 *                Every call must answer 0, MEMPOOL_ECORRUPT or -EAGAIN.
 *   create_window (failpoint builds) a root creator of a 0666 pool stopped
 *                right after its private file got the pool's mode
 *                (create.moded): the other user opens that file (its name
 *                is in /dev/shm's listing) and asks for a read lock on its
 *                init byte. The creator, continued, must finish: it took
 *                that lock only after the chmod, waiting without a bound,
 *                so a reader in between made the create hang for ever.
 */
#include "helpers.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layout.h"      /* white box: where the mutexes are */

#define VICTIM_S 2.0           /* how long the worker works under attack */
#define NFOREIGN 256           /* objects of the test process it deletes */

static mempool_dref foreign[NFOREIGN];

static int other_ready[2];     /* the other user says it is at work */

/* The other user's start: become uid 65534, map the pool read-write and
 * point @p m at every arena mutex (the allocator's, then each worker
 * cache's), then say so on other_ready. false if it cannot. */
static bool other_mutexes(pthread_mutex_t *m[MP_WORKERS + 1])
{
    size_t len;
    mp_header *h = (mp_header *)(void *)t_nobody_arena_rw(t_name, &len);
    mp_wcache *wcs;
    if (!h)
        return false;
    wcs = (mp_wcache *)(void *)((uint8_t *)h + h->wcache_off);
    m[0] = &h->alloc_lock;
    for (int s = 0; s < MP_WORKERS; s++)
        m[s + 1] = &wcs[s].lock;
    return write(other_ready[1], "r", 1) == 1;
}

/* Fork the other user (@p fn, @p arg) and wait until it is at work: it
 * could not start (exit 2) fails the test, not a worker that then met no
 * attack. */
static pid_t other_start(int (*fn)(void *), void *arg)
{
    char c;
    pid_t k;
    t_pipe(other_ready);
    k = t_fork(fn, arg);
    close(other_ready[1]);
    ck_assert_msg(t_recv(other_ready[0], &c, 1, T_WAIT_S) == 0,
                  "the other user could not start");
    close(other_ready[0]);
    return k;
}

/* The other user: rewrite the robust-list pointers of every arena mutex
 * until killed (or 60 s, if orphaned). Exit 2 if it cannot be that user
 * or map the pool. */
static int planter(void *unused)
{
    pthread_mutex_t *m[MP_WORKERS + 1];
    double t0 = t_now_s();
    (void)unused;
    if (!other_mutexes(m))
        return 2;
    while (t_now_s() - t0 < 60.0) {
        for (int k = 0; k < 1000; k++) {
            for (int i = 0; i <= MP_WORKERS; i++) {
                m[i]->__data.__list.__next = (void *)0x10;
                m[i]->__data.__list.__prev = (void *)0x10;
            }
        }
    }
    return 0;
}

/* A root worker: puts and deletes for VICTIM_S, small and page-run
 * objects, and deletes the test process's objects. */
static int worker(void *unused)
{
    static char buf[96 << 10];
    mempool *q;
    double t0;
    int i = 0;
    (void)unused;
    T_CHILD_EQ(t_attach(t_name, &q), 0);
    memset(buf, 'x', sizeof buf);
    t0 = t_now_s();
    while (t_now_s() - t0 < VICTIM_S) {
        mempool_dref r;
        T_CHILD_EQ(mempool_put(q, buf, 64, &r), 0);
        T_CHILD_EQ(mempool_delete(q, r), 0);
        T_CHILD_EQ(mempool_put(q, buf, sizeof buf, &r), 0);
        T_CHILD_EQ(mempool_delete(q, r), 0);
        if (i < NFOREIGN)
            T_CHILD_EQ(mempool_delete(q, foreign[i++]), 0);
    }
    T_CHILD_EQ(mempool_close(q), 0);
    return 0;
}

/* The other user: flip every arena mutex's kind word to @p arg's
 * (priority-protected or -inheriting, as a glibc kind) and back, and set
 * an owner-died lock word where nobody holds it, until killed (or 60 s). */
static int kind_flipper(void *arg)
{
    const int bad = *(const int *)arg;
    volatile struct __pthread_mutex_s *m[MP_WORKERS + 1];
    pthread_mutex_t *mx[MP_WORKERS + 1];
    double t0 = t_now_s();
    if (!other_mutexes(mx))
        return 2;
    for (int i = 0; i <= MP_WORKERS; i++)
        m[i] = &mx[i]->__data;
    while (t_now_s() - t0 < 60.0) {
        for (int i = 0; i <= MP_WORKERS; i++) {
            int k = m[i]->__kind, w = m[i]->__lock;
            m[i]->__kind = bad;
            if (!w)
                __sync_bool_compare_and_swap(&m[i]->__lock, 0, 0x40000000);
            m[i]->__kind = k;
        }
    }
    return 0;
}

static int go_pipe[2], ready_pipe[2];

/* A root worker attached before the flipping began: checks, puts and
 * deletes for VICTIM_S; 0, MEMPOOL_ECORRUPT or -EAGAIN each. */
static int kind_worker(void *unused)
{
    static char buf[96 << 10];
    mempool *q;
    double t0;
    char c = 'r';
    (void)unused;
    T_CHILD_EQ(t_attach(t_name, &q), 0);
    T_CHILD_ASSERT(t_send(ready_pipe[1], &c, 1) == 0);
    T_CHILD_ASSERT(t_recv(go_pipe[0], &c, 1, T_WAIT_S) == 0);
    t0 = t_now_s();
    while (t_now_s() - t0 < VICTIM_S) {
        mempool_dref r;
        int rc = mempool_check(q, NULL, 0);
        T_CHILD_ASSERT(rc == 0 || rc == MEMPOOL_ECORRUPT || rc == -EAGAIN);
        for (size_t len = 64; len <= sizeof buf; len *= 48) {
            rc = mempool_put(q, buf, len, &r);
            T_CHILD_ASSERT(rc == 0 || rc == MEMPOOL_ECORRUPT ||
                           rc == -EAGAIN);
            if (rc == 0) {
                rc = mempool_delete(q, r);
                T_CHILD_ASSERT(rc == 0 || rc == MEMPOOL_ECORRUPT ||
                               rc == -EAGAIN);
            }
        }
    }
    return 0;
}

/* Glibc kinds (nptl's internal values) the flipper plants. */
#define K_PSHARED 128
#define K_PI      32
#define K_PP      64
#define K_ROBUST  16

START_TEST(test_kind)
{
    static const int bad[] = { K_PP | K_PSHARED, K_PI | K_PSHARED,
                               K_PP | K_ROBUST | K_PSHARED };
    if (!t_fixture_shared("kind"))
        return;
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        pid_t w[2], fl;
        char c = 'g';
        int st;
        t_pipe(go_pipe);
        t_pipe(ready_pipe);
        for (int i = 0; i < 2; i++)
            w[i] = t_fork(kind_worker, NULL);
        for (int i = 0; i < 2; i++)
            ck_assert_int_eq(t_recv(ready_pipe[0], &c, 1, T_WAIT_S), 0);
        fl = other_start(kind_flipper, (void *)&bad[b]);
        for (int i = 0; i < 2; i++)
            ck_assert_int_eq(t_send(go_pipe[1], &c, 1), 0);
        for (int i = 0; i < 2; i++) {
            st = t_wait(w[i], T_WAIT_S);
            ck_assert_msg(st == 0, "kind %d: a worker ended with %d (>= "
                          "128: signal %d)", bad[b], st, st - 128);
        }
        t_kill(fl);
        close(go_pipe[0]);
        close(go_pipe[1]);
        close(ready_pipe[0]);
        close(ready_pipe[1]);
    }
}
END_TEST

#ifdef T_FAILPOINTS
static char cw_name[T_NAME_LEN];
static int cw_pipe[2];

/* The creator: create cw_name with mode 0666, stopping at create.moded. */
static int cw_creator(void *unused)
{
    mempool_options o;
    mempool *q;
    (void)unused;
    setenv("MEMPOOL_FAILPOINT", "create.moded=stop@1", 1);
    umask(0);
    t_options(&o, T_ARENA_BYTES);
    o.mode = 0666;
    o.flags |= MEMPOOL_OPEN_CREATE | MEMPOOL_OPEN_EXCL;
    if (mempool_open(cw_name, &o, &q))
        return 3;
    return mempool_close(q) ? 4 : 0;
}

/* The other user: open the creator's private file and try a read lock on
 * its init byte; say how it went ('L' locked, 'R' refused, 'N' no file,
 * 'U' not that user), then hold what it got until killed. */
static int cw_locker(void *unused)
{
    char pre[T_NAME_LEN + 32], path[512], r = 'N';
    struct dirent *d;
    DIR *dir;
    (void)unused;
    if (t_become_nobody() != 0) {
        r = 'U';
        (void)!write(cw_pipe[1], &r, 1);
        return 2;
    }
    snprintf(pre, sizeof pre, "mempool.%s#init.", cw_name);
    dir = opendir("/dev/shm");
    while (dir && (d = readdir(dir))) {
        struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET,
                            .l_start = MP_LOCK_INIT, .l_len = 1 };
        int fd;
        if (strncmp(d->d_name, pre, strlen(pre)))
            continue;
        snprintf(path, sizeof path, "/dev/shm/%s", d->d_name);
        fd = open(path, O_RDWR | O_NOFOLLOW | O_NONBLOCK);
        if (fd >= 0)
            r = fcntl(fd, F_OFD_SETLK, &fl) == 0 ? 'L' : 'R';
        break;
    }
    (void)!write(cw_pipe[1], &r, 1);
    sleep(120);
    return 0;
}

START_TEST(test_create_window)
{
    pid_t c, l;
    char r = '?';
    int st;
    if (geteuid() != 0) {
        fprintf(stderr, "SKIP: create_window: not root\n");
        return;
    }
    t_pool_name(cw_name, "cw");
    t_pipe(cw_pipe);
    c = t_fork(cw_creator, NULL);
    t_await_stopped(c, "create.moded");
    l = t_fork(cw_locker, NULL);
    ck_assert_int_eq(t_recv(cw_pipe[0], &r, 1, T_WAIT_S), 0);
    ck_assert_int_eq(kill(c, SIGCONT), 0);
    st = t_wait(c, 30.0);
    t_kill(l);
    ck_assert_msg(r == 'L' || r == 'R', "the other user: %c", r);
    ck_assert_msg(st == 0, "the creator ended with %d (-1: it hung on the "
                  "init lock the other user %s)", st,
                  r == 'L' ? "took" : "asked for");
    ck_assert_int_eq(mempool_destroy(cw_name), 0);
}
END_TEST
#endif

START_TEST(test_robust_list)
{
    pid_t pl, w;
    int st;
    if (!t_fixture_shared("robust_list"))
        return;
    for (int i = 0; i < NFOREIGN; i++)
        foreign[i] = t_put_fill(t_pool, 64, (uint64_t)i);
    pl = other_start(planter, NULL);
    w = t_fork(worker, NULL);
    st = t_wait(w, T_WAIT_S);
    t_kill(pl);
    ck_assert_msg(st == 0, "the worker ended with %d (>= 128: signal %d)", st,
                  st - 128);
    /* The pointers are garbage now; nothing of ours reads them. */
    t_assert_healthy(t_pool);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "shared", 120, true, { test_robust_list, test_kind,
#ifdef T_FAILPOINTS
                                 test_create_window,
#endif
                               } },
        { .name = NULL }
    };
    return t_main("review11", cases);
}
