/* SPDX-License-Identifier: MIT */
/*
 * check_review8.c - a hostile review of session 8's landings: the
 * deleters' batched hand-back (src/core/handback.c).
 *
 *   limit after stash  another process deletes our small objects and
 *             keeps them in its stash (fewer than a batch, then idles);
 *             we then set a memory limit that our live objects (none)
 *             fit in but our live plus the stashed ones do not: our next
 *             put must succeed without spilling anything, since the
 *             stashed objects are deleted (they failed -ENOMEM: the limit
 *             path spilled our own objects, and there were none).
 *   table full   the same stash in a pool whose object table we filled:
 *             our next put must take one of the deleted objects' entries
 *             (it failed -ENOSPC, "the object table is full", while a
 *             twentieth of the table was deleted objects).
 *   owner gone   (loop: the owner closes / is SIGKILLed) another
 *             process's small objects wait in our stash; their DRefs are
 *             -ENOENT for get and delete, an observer's fsck is clean;
 *             the owner goes, a new worker takes a slot and sets, we
 *             delete its objects (a batch goes with the stale entries in
 *             it): every figure is exact, no entry is handed out twice
 *             (100 new objects read back their own bytes), fsck clean.
 *   stats, giver stopped  (failpoint builds) a deleter of our objects is
 *             stopped inside our cache lock mid-batch (handback.given),
 *             the rest of its batch still listed in its stash: our
 *             mempool_stats_get() and mempool_worker_stats_get() end at
 *             once, as reads do (stats.c: no lock a worker could wait on).
 *             They took the peer bound (5 s) per listed object - minutes -
 *             collecting each through our own cache lock.
 *   stats storm  an owner sets small objects, a deleter deletes them (its
 *             stash fills and empties), two readers read stats the whole
 *             time (each read collects every stash): nothing is lost or
 *             freed twice, the pool checks clean and holds nothing.
 *   other user   in a root pool of mode 0666, uid 65534 attaches and
 *             plants its stash hint (layout.h mp_wcache): root's live
 *             objects, a deleted object root still pins, an index past
 *             the table, a count past MP_STASH_MAX; then it stops, still
 *             a live worker. Root's stats reads collect those hints:
 *             nothing live is lost, the pinned one reads its bytes until
 *             released, the figures and fsck are exact.
 *   get_wait cycles  handles opened, made to sleep in get_wait (a keeper
 *             thread per handle, handoff/keeper.c) and closed, over and
 *             over, one while a forked child holds a copy: no thread and
 *             no descriptor is left behind, the child's copy answers
 *             MEMPOOL_EFORKED and its own new handle sleeps and closes.
 */
#include "helpers.h"
#include "layout.h"              /* white box: the stash hint */

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum { NSTASH = 20, SMALL = 64 };   /* NSTASH < a stash batch (32) */

/* Our NSTASH small objects deleted by a live remote worker that then
 * idles: their entries wait DELETED in its stash. */
static void stash_ours(struct t_remote *w)
{
    for (int i = 0; i < NSTASH; i++) {
        mempool_dref r = t_put_fill(t_pool, SMALL, (uint64_t)i + 1);
        ASSERT_RC(t_remote_call(w, T_R_DELETE, &r, 0), 0);
    }
}

START_TEST(test_limit_after_stash)
{
    struct t_remote w;
    mempool_dref r;
    char buf[4 * SMALL];
    struct mempool_stats s;

    memset(buf, 7, sizeof buf);
    t_remote_start(&w, t_name);
    stash_ours(&w);
    /* Our live objects: none. A limit of 8 small objects' room: the next
     * put must fit (the 20 deleted ones are not ours any more). */
    ASSERT_RC(mempool_limit_set(t_pool, MEMPOOL_LIMIT_MEMSIZE, 8 * SMALL), 0);
    ASSERT_RC(mempool_put(t_pool, buf, sizeof buf, &r), 0);
    s = t_stats(t_pool);
    ck_assert_uint_eq(s.objects, 1);
    ck_assert_uint_eq(s.spills, 0);
    ASSERT_RC(mempool_delete(t_pool, r), 0);
    ck_assert_int_eq(t_remote_quit(&w), 0);
    t_assert_healthy(t_pool);
}
END_TEST

START_TEST(test_table_full_stash)
{
    enum { TAB = 128 };
    char name[T_NAME_LEN];
    mempool_options o;
    mempool *p;
    mempool_dref r[TAB], x;
    struct t_remote w;
    char buf[SMALL];
    int n = 0, rc;

    memset(buf, 3, sizeof buf);
    t_pool_name(name, "review8");
    t_options(&o, T_ARENA_BYTES);
    o.max_objects = TAB;
    ASSERT_RC(mempool_open(name, &o, &p), 0);
    while (n < TAB && (rc = mempool_put(p, buf, sizeof buf, &r[n])) == 0)
        n++;
    ck_assert_msg(n > NSTASH, "%d objects fit in a table of %d",
                  n, TAB);
    ASSERT_RC(mempool_put(p, buf, sizeof buf, &x), -ENOSPC);
    t_remote_start(&w, name);
    for (int i = 0; i < NSTASH; i++)
        ASSERT_RC(t_remote_call(&w, T_R_DELETE, &r[i], 0), 0);
    /* NSTASH objects deleted: as many puts fit again. */
    for (int i = 0; i < NSTASH; i++)
        ASSERT_RC(mempool_put(p, buf, sizeof buf, &r[i]), 0);
    for (int i = 0; i < n; i++)
        ASSERT_RC(mempool_delete(p, r[i]), 0);
    ck_assert_int_eq(t_remote_quit(&w), 0);
    t_assert_healthy(p);
    ASSERT_RC(mempool_close(p), 0);
    ASSERT_RC(mempool_destroy(name), 0);
}
END_TEST

/* Remote @p w sets @p n objects of SMALL bytes into @p r. */
static void remote_sets(struct t_remote *w, mempool_dref *r, int n)
{
    for (int i = 0; i < n; i++)
        ASSERT_RC(t_remote_call(w, T_R_SET, &r[i], SMALL), 0);
}

static void gone(mempool *p, const mempool_dref *r, int n)
{
    mempool_view v;
    for (int i = 0; i < n; i++) {
        ASSERT_RC(mempool_get(p, r[i], &v), -ENOENT);
        ASSERT_RC(mempool_delete(p, r[i]), -ENOENT);
    }
}

START_TEST(test_owner_gone)
{
    enum { NB = 40, NNEW = 100 };
    struct t_remote a, b;
    mempool_dref ra[NSTASH], rb[NB], rn[NNEW];
    mempool *obs;
    char why[256];
    struct mempool_stats s;
    int bid;

    t_remote_start(&a, t_name);
    remote_sets(&a, ra, NSTASH);
    for (int i = 0; i < NSTASH; i++)
        ASSERT_RC(mempool_delete(t_pool, ra[i]), 0);
    gone(t_pool, ra, NSTASH);
    obs = t_observe(t_name);
    ck_assert_msg(mempool_check(obs, why, sizeof why) == 0, "%s", why);
    if (_i == 0)
        ck_assert_int_eq(t_remote_quit(&a), 0);
    else
        t_remote_kill(&a);
    t_remote_start(&b, t_name);
    bid = (int)t_remote_call(&b, T_R_WID, NULL, 0);
    ck_assert_int_gt(bid, 0);
    remote_sets(&b, rb, NB);
    for (int i = 0; i < NB; i++)
        ASSERT_RC(mempool_delete(t_pool, rb[i]), 0);
    ck_assert_msg(mempool_check(obs, why, sizeof why) == 0, "%s", why);
    gone(t_pool, ra, NSTASH);
    gone(t_pool, rb, NB);
    remote_sets(&b, rn, NNEW);
    for (int i = 0; i < NNEW; i++)
        t_expect_fill(t_pool, rn[i], SMALL, SMALL);
    s = t_stats(t_pool);
    ck_assert_uint_eq(s.objects, NNEW);
    for (int i = 0; i < NNEW; i++)
        ASSERT_RC(mempool_delete(t_pool, rn[i]), 0);
    s = t_stats(t_pool);
    ck_assert_uint_eq(s.objects, 0);
    {
        struct mempool_worker_stats ws;
        memset(&ws, 0, sizeof ws);
        ws.size = sizeof ws;
        ASSERT_RC(mempool_worker_stats_get(t_pool, bid, &ws), 0);
        ck_assert_uint_eq(ws.objects, 0);
        ck_assert_uint_eq(ws.resident_bytes, 0);
    }
    ck_assert_int_eq(t_remote_quit(&b), 0);
    ASSERT_RC(mempool_close(obs), 0);
    t_assert_healthy(t_pool);
}
END_TEST

#ifdef T_FAILPOINTS
#include "t_giver.h"

struct reader {
    mempool *p;
    int wid, rc;
    _Atomic int done;
};

static void *read_stats(void *arg)
{
    struct reader *rd = arg;
    struct mempool_stats s;
    struct mempool_worker_stats ws;
    memset(&ws, 0, sizeof ws);
    ws.size = sizeof ws;
    rd->rc = mempool_stats_get(rd->p, &s);
    if (rd->rc == 0)
        rd->rc = mempool_worker_stats_get(rd->p, rd->wid, &ws);
    atomic_store(&rd->done, 1);
    return NULL;
}

START_TEST(test_stats_giver_stopped)
{
    struct reader rd = { .p = t_pool };
    pthread_t th;
    double t0;
    pid_t k;

    rd.wid = mempool_worker_id(t_pool);
    for (int i = 0; i < NGIVE; i++)
        given[i] = t_put_fill(t_pool, SMALL, (uint64_t)i);
    k = t_fork(stopped_deleter, NULL);
    t_await_stopped(k, "handback.given");
    t0 = t_now_s();
    ck_assert_int_eq(pthread_create(&th, NULL, read_stats, &rd), 0);
    /* A watchdog, not a measurement: one peer bound is 5 s; the stall
     * was one bound per object of the stopped batch. */
    while (!atomic_load(&rd.done) && t_now_s() - t0 < 30)
        t_sleep_ms(10);
    ck_assert_int_eq(kill(k, SIGCONT), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_msg(t_now_s() - t0 < 30, "stats waited %.1f s for a stopped "
                  "giver", t_now_s() - t0);
    ASSERT_RC(rd.rc, 0);
    t_wait_ok(k);
    ck_assert_uint_eq(t_stats(t_pool).objects, 0);
    t_assert_healthy(t_pool);
}
END_TEST
#endif

enum { STORM = 3000 };

static int storm_owner(void *fd)
{
    mempool *q;
    char buf[SMALL];
    memset(buf, 9, sizeof buf);
    T_CHILD_EQ(t_attach(t_name, &q), 0);
    for (int i = 0; i < STORM; i++) {
        mempool_dref r;
        int rc;
        while ((rc = mempool_put(q, buf, sizeof buf, &r)) == -EAGAIN)
            t_sleep_ms(1);
        T_CHILD_EQ(rc, 0);
        T_CHILD_EQ(t_send_dref(*(int *)fd, r), 0);
    }
    T_CHILD_EQ(mempool_close(q), 0);
    return 0;
}

static int storm_deleter(void *fd)
{
    mempool *q;
    T_CHILD_EQ(t_attach(t_name, &q), 0);
    for (int i = 0; i < STORM; i++) {
        mempool_dref r;
        mempool_view v;
        T_CHILD_EQ(t_recv_dref(*(int *)fd, &r, T_WAIT_S), 0);
        T_CHILD_EQ(mempool_get(q, r, &v), 0);
        T_CHILD_ASSERT(v.len == SMALL && ((const char *)v.data)[7] == 9);
        T_CHILD_EQ(mempool_release(q, &v), 0);
        T_CHILD_EQ(mempool_delete(q, r), 0);
    }
    T_CHILD_EQ(mempool_close(q), 0);
    return 0;
}

static int storm_reader(void *stop)
{
    mempool *q;
    struct mempool_stats s;
    T_CHILD_EQ(t_attach(t_name, &q), 0);
    while (!atomic_load((_Atomic int *)stop)) {
        T_CHILD_EQ(mempool_stats_get(q, &s), 0);
        T_CHILD_ASSERT(s.objects <= STORM);
    }
    T_CHILD_EQ(mempool_close(q), 0);
    return 0;
}

START_TEST(test_stats_storm)
{
    _Atomic int *stop = t_shared_map(sizeof *stop);
    int fds[2];
    pid_t o, d, r1, r2;

    t_pipe(fds);
    r1 = t_fork(storm_reader, (void *)stop);
    r2 = t_fork(storm_reader, (void *)stop);
    o = t_fork(storm_owner, &fds[1]);
    d = t_fork(storm_deleter, &fds[0]);
    close(fds[0]);
    close(fds[1]);
    t_wait_ok(o);
    t_wait_ok(d);
    atomic_store(stop, 1);
    t_wait_ok(r1);
    t_wait_ok(r2);
    munmap((void *)stop, sizeof *stop);
    ck_assert_uint_eq(t_stats(t_pool).objects, 0);
    t_assert_healthy(t_pool);
}
END_TEST

enum { NLIVE = 8 };
static uint32_t planted[NLIVE + 2];   /* entry indices for the hint */

static int other_planter(void *unused)
{
    mempool_options o;
    mempool *q;
    uint8_t *base;
    size_t len;
    mp_header *h;
    mp_wcache *wc;
    int me;
    (void)unused;
    T_CHILD_ASSERT(t_become_nobody() == 0);
    t_options(&o, T_ARENA_BYTES);
    o.spill_dir = "/tmp";
    o.flags = 0;
    T_CHILD_EQ(mempool_open(t_name, &o, &q), 0);
    me = mempool_worker_id(q);
    T_CHILD_ASSERT(me > 0);
    base = t_map_arena_rw(t_name, &len);
    T_CHILD_ASSERT(base != NULL);
    h = (mp_header *)(void *)base;
    wc = (mp_wcache *)(void *)(base + h->wcache_off) + (me - 1);
    for (unsigned k = 0; k < MP_STASH_MAX; k++)
        atomic_store(&wc->stash[k], k < NLIVE + 2 ? planted[k]
                                                  : (uint32_t)-1 - k);
    atomic_store(&wc->stash_n, 0xfffffff0u);
    raise(SIGSTOP);                     /* alive, its hint in place */
    _exit(0);
}

static uint32_t entry_index(mempool_dref r)
{
    size_t len;
    const uint8_t *a = t_map_arena(t_name, &len);
    const mp_header *h = (const void *)a;
    uint32_t i = (uint32_t)(((r.off & MEMPOOL_DREF_ENTRY_BITS) -
                             h->table_off) / sizeof(mp_entry));
    munmap((void *)(uintptr_t)a, len);
    return i;
}

START_TEST(test_other_user_hint)
{
    mempool_dref live[NLIVE], pinned;
    mempool_view v;
    pid_t k;

    if (!t_fixture_shared("uid 65534's stash hint"))
        return;
    for (int i = 0; i < NLIVE; i++) {
        live[i] = t_put_fill(t_pool, SMALL, (uint64_t)i + 100);
        planted[i] = entry_index(live[i]);
    }
    pinned = t_put_fill(t_pool, SMALL, 7);
    planted[NLIVE] = entry_index(pinned);
    planted[NLIVE + 1] = 0xffffff00u;
    ASSERT_RC(mempool_get(t_pool, pinned, &v), 0);
    ASSERT_RC(mempool_delete(t_pool, pinned), 0);    /* pinned: DELETED */
    k = t_fork(other_planter, NULL);
    t_await_stopped(k, "the planter");
    ck_assert_uint_eq(t_stats(t_pool).objects, NLIVE + 1);
    ck_assert_msg(t_check_fill(v.data, SMALL, 7), "a pinned view changed");
    for (int i = 0; i < NLIVE; i++)
        t_expect_fill(t_pool, live[i], SMALL, (uint64_t)i + 100);
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    ck_assert_uint_eq(t_stats(t_pool).objects, NLIVE);
    t_assert_healthy(t_pool);
    for (int i = 0; i < NLIVE; i++)
        ASSERT_RC(mempool_delete(t_pool, live[i]), 0);
    ck_assert_int_eq(t_kill(k), SIGKILL);
    (void)mempool_reap(t_pool);
    ck_assert_uint_eq(t_stats(t_pool).objects, 0);
    t_assert_healthy(t_pool);
}
END_TEST

/* Entries of /proc/self/@p dir (task: threads, fd: descriptors). */
static int count_of(const char *dir)
{
    char path[64];
    struct dirent *d;
    DIR *D;
    int n = 0;
    snprintf(path, sizeof path, "/proc/self/%s", dir);
    if (!(D = opendir(path)))
        return -1;
    while ((d = readdir(D)))
        n += d->d_name[0] != '.';
    closedir(D);
    return n;
}

/* A get_wait of reservation @p r on @p q that sleeps and times out. */
static int sleeps(mempool *q, mempool_dref r)
{
    mempool_view v;
    return mempool_get_wait(q, r, &v, 120);
}

/* Forked with a sleeping handle's copy (@p arg): EFORKED, then a new
 * handle of its own sleeps and closes. */
static int forked_sleeper(void *arg)
{
    mempool *old = *(mempool **)arg, *q;
    mempool_dref *r = (mempool_dref *)((mempool **)arg + 1);
    T_CHILD_EQ(sleeps(old, *r), MEMPOOL_EFORKED);
    T_CHILD_EQ(t_attach(t_name, &q), 0);
    T_CHILD_EQ(sleeps(q, *r), -ETIMEDOUT);
    T_CHILD_EQ(mempool_close(q), 0);
    T_CHILD_EQ(mempool_close(old), 0);
    return 0;
}

START_TEST(test_get_wait_cycles)
{
    struct t_remote w;
    mempool_dref r;
    int tasks, fds;
    struct {
        mempool *q;
        mempool_dref r;
    } fa;

    t_remote_start(&w, t_name);
    ASSERT_RC(t_remote_call(&w, T_R_RESERVE, &r, SMALL), 0);
    ASSERT_RC(sleeps(t_pool, r), -ETIMEDOUT);   /* t_pool's own keeper */
    tasks = count_of("task");
    fds = count_of("fd");
    for (int i = 0; i < 12; i++) {
        mempool *q;
        ASSERT_RC(t_attach(t_name, &q), 0);
        ASSERT_RC(sleeps(q, r), -ETIMEDOUT);
        if (i == 5) {
            fa.q = q;
            fa.r = r;
            t_wait_ok(t_fork(forked_sleeper, &fa));
        }
        ASSERT_RC(mempool_close(q), 0);
    }
    ck_assert_int_eq(count_of("task"), tasks);
    ck_assert_int_eq(count_of("fd"), fds);
    t_remote_kill(&w);              /* dead before publishing: -ENOENT */
    {
        mempool_view v;
        ASSERT_RC(mempool_get_wait(t_pool, r, &v, 60000), -ENOENT);
    }
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "review8", 120, true, { test_limit_after_stash, test_owner_gone,
                                    test_get_wait_cycles, test_stats_storm,
                                    test_other_user_hint } },
#ifdef T_FAILPOINTS
        { "review8-fp", 240, true, { test_stats_giver_stopped } },
#endif
        { "review8-own", 120, false, { test_table_full_stash } },
        { .name = NULL }
    };
    const struct t_loop loops[] = {
        { test_owner_gone, 2 },
        { NULL, 0 }
    };
    return t_main_loops("review8", cases, loops);
}
