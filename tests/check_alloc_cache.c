/* SPDX-License-Identifier: MIT */
/*
 * check_alloc_cache.c - the per-worker allocator caches (src/core/wcache.c,
 * issue 11 target 2): sets of small objects and deletes of one's own small
 * objects take the worker's cache lock, not the pool's allocator lock, and
 * the pool still accounts for every byte and entry.
 *
 * kill: a child runs sets and deletes of small objects (refilling, popping,
 * recaching, flushing a full class, flushing everything at close) with
 * MEMPOOL_FAILPOINT=<cache point>=kill@N, for N = 1, 2, ... until the point
 * is not reached. It reports each object before it deletes it and after
 * its set returned. After the kill the parent reaps (mempool_reap(), or a
 * fresh open every other run): mempool_check() is clean, and stats objects,
 * used_bytes and resident_bytes are exactly what the surviving objects
 * account for (every object whose set returned and whose delete did not
 * start; a kill at these points never leaves a half-done set or delete
 * visible), each survivor reads back, and after the parent deletes them
 * all the figures are 0 again.
 *
 * hammer: two writer processes set and delete small objects of every class
 * as fast as they can (keeping a few hundred live, so classes fill and
 * flush), while the parent runs mempool_check() and stats over and over;
 * then one is SIGKILLed mid-run a few times (and restarted) while the other
 * goes on, each kill followed by reap + check. At the end: check clean,
 * stats objects equal the live objects the writers report.
 *
 * cross: a worker deletes another worker's small objects (the locked path:
 * the owner's charges drop), pins one the owner deletes (the unpinner frees
 * it), and the owner's cached entries serve its later sets.
 *
 * drain: entries cached by one worker are not lost to another: with a
 * 256-entry table, a worker that cached entries (sets then deletes) leaves
 * a second worker able to set exactly as many objects as the table holds.
 *
 * gen: a recached entry's next object has the next generation: the old
 * DRef is -ENOENT and never matches again.
 */
#include "helpers.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NSIZES 7
static const uint64_t sizes[NSIZES] = { 1, 64, 100, 200, 700, 1500, 2048 };

/* ------------------------------------------------------------------ kill */
#ifdef MEMPOOL_FAILPOINTS

static uint64_t block_of(uint64_t len)
{
    uint64_t b = 64;
    while (b < len)
        b *= 2;
    return b;
}

static const char *const points[] = { "cache.refilled", "cache.popped",
                                      "cache.recached", "cache.flushed" };
#define NPOINTS (int)(sizeof points / sizeof points[0])

enum { K_PUB = 1, K_DELETING, K_DONE };
struct krec {
    uint32_t op;
    uint32_t pad;
    mempool_dref r;
    uint64_t len, seed;
};

struct kargs {
    const char *pool;
    char fp[96];
    int fd;
};

static void k_send(int fd, uint32_t op, mempool_dref r, uint64_t len,
                   uint64_t seed)
{
    struct krec x = { op, 0, r, len, seed };
    T_CHILD_EQ(t_send(fd, &x, sizeof x), 0);
}

/* Sets of every small class (refills), deletes of half (recaches), a run
 * of 64 B sets and deletes that overflows the class (flush), then close
 * (flush of everything). */
static int k_child(void *arg)
{
    struct kargs *a = arg;
    static char buf[2048];
    mempool_dref live[200];
    uint64_t lens[200], seed = 1;
    int n = 0;
    mempool *p;

    setenv("MEMPOOL_FAILPOINT", a->fp, 1);
    T_CHILD_EQ(t_attach(a->pool, &p), 0);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 60; i++) {
            uint64_t len = sizes[(unsigned)i % NSIZES];
            t_fill(buf, len, ++seed);
            T_CHILD_EQ(mempool_put(p, buf, len, &live[n]), 0);
            lens[n] = len;
            k_send(a->fd, K_PUB, live[n], len, seed);
            n++;
        }
        for (int i = n - 1; i >= 0; i -= 2) {
            k_send(a->fd, K_DELETING, live[i], 0, 0);
            T_CHILD_EQ(mempool_delete(p, live[i]), 0);
            live[i] = live[--n];
            lens[i] = lens[n];
        }
    }
    /* 64 B: 40 sets then 40 deletes fill the class past its 32 */
    for (int i = 0; i < 40; i++) {
        t_fill(buf, 64, ++seed);
        T_CHILD_EQ(mempool_put(p, buf, 64, &live[n]), 0);
        k_send(a->fd, K_PUB, live[n], 64, seed);
        lens[n++] = 64;
    }
    for (int i = 0; i < 40; i++) {
        k_send(a->fd, K_DELETING, live[n - 1], 0, 0);
        T_CHILD_EQ(mempool_delete(p, live[--n]), 0);
    }
    T_CHILD_EQ(mempool_close(p), 0);
    k_send(a->fd, K_DONE, (mempool_dref){ 0, 0 }, 0, 0);
    return 0;
}

struct kobj {
    mempool_dref r;
    uint64_t len, seed;
    bool gone;
};

/* One run at @p point @ @p nth: true if the child was killed there. */
static bool k_run(mempool **pp, const char *pool, const char *point, int nth)
{
    static struct kobj o[4096];
    struct kargs a = { pool, "", -1 };
    struct krec x;
    int fds[2], no = 0, st;
    uint64_t objs = 0, used = 0, res = 0;
    bool done = false;
    struct mempool_stats s;
    char why[256];
    pid_t pid;

    snprintf(a.fp, sizeof a.fp, "%s=kill@%d", point, nth);
    t_pipe(fds);
    a.fd = fds[1];
    pid = t_fork(k_child, &a);
    close(fds[1]);
    while (t_recv(fds[0], &x, sizeof x, T_WAIT_S) == 0) {
        if (x.op == K_DONE) {
            done = true;
        } else if (x.op == K_PUB) {
            ck_assert_int_lt(no, 4096);
            o[no++] = (struct kobj){ x.r, x.len, x.seed, false };
        } else {
            for (int i = 0; i < no; i++)
                if (o[i].r.off == x.r.off && o[i].r.gen == x.r.gen)
                    o[i].gone = true;
        }
    }
    close(fds[0]);
    st = t_wait(pid, T_WAIT_S);
    ck_assert_msg(done ? st == 0 : st == 128 + SIGKILL,
                  "%s: child ended with %d", a.fp, st);
    if (nth % 2 == 0) {            /* reaped by a fresh open */
        ASSERT_RC(mempool_close(*pp), 0);
        ASSERT_RC(t_attach(pool, pp), 0);
    } else {
        ck_assert_int_ge(mempool_reap(*pp), done ? 0 : 1);
    }
    ASSERT_RC(mempool_check(*pp, why, sizeof why), 0);
    for (int i = 0; i < no; i++) {
        if (o[i].gone)
            continue;
        objs++;
        used += block_of(o[i].len);
        res += o[i].len;
    }
    s = t_stats(*pp);
    ck_assert_msg(s.objects == objs && s.used_bytes == used &&
                  s.resident_bytes == res,
                  "%s: stats %llu objects, %llu used, %llu resident; the "
                  "survivors account for %llu, %llu, %llu", a.fp,
                  (unsigned long long)s.objects,
                  (unsigned long long)s.used_bytes,
                  (unsigned long long)s.resident_bytes,
                  (unsigned long long)objs, (unsigned long long)used,
                  (unsigned long long)res);
    for (int i = 0; i < no; i++) {
        mempool_view v;
        int want = o[i].gone ? -ENOENT : 0;
        ASSERT_RC(mempool_get(*pp, o[i].r, &v), want);
        if (want)
            continue;
        ck_assert_uint_eq(v.len, o[i].len);
        ck_assert(t_check_fill(v.data, v.len, o[i].seed));
        ASSERT_RC(mempool_release(*pp, &v), 0);
        ASSERT_RC(mempool_delete(*pp, o[i].r), 0);
    }
    s = t_stats(*pp);
    ck_assert_uint_eq(s.objects, 0);
    ck_assert_uint_eq(s.used_bytes, 0);
    ck_assert_uint_eq(s.resident_bytes, 0);
    t_assert_healthy(*pp);
    return !done;
}

START_TEST(test_kill)
{
    char pool[T_NAME_LEN];
    mempool *p;
    int nth;

    t_pool_name(pool, "acache");
    ASSERT_RC(t_open(pool, T_ARENA_BYTES, &p), 0);
    for (nth = 1; nth < 400 && k_run(&p, pool, points[_i], nth); nth++)
        ;
    ck_assert_msg(nth > 1, "%s never reached", points[_i]);
    fprintf(stderr, "kill %-15s at hits 1..%d\n", points[_i], nth - 1);
    ASSERT_RC(mempool_close(p), 0);
    mempool_destroy(pool);
}
END_TEST
#endif /* MEMPOOL_FAILPOINTS */

/* ---------------------------------------------------------------- hammer */

struct hargs {
    const char *pool;
    int fd;         /* live count at the end */
    long ops;       /* 0: until killed */
    uint64_t seed;
};

#define H_KEEP 300

static int h_child(void *arg)
{
    struct hargs *a = arg;
    static char buf[2048];
    static mempool_dref keep[H_KEEP];
    static uint64_t kseed[H_KEEP], klen[H_KEEP];
    uint64_t rnd = a->seed, nlive = 0;
    mempool *p;

    T_CHILD_EQ(t_attach(a->pool, &p), 0);
    for (long i = 0; a->ops == 0 || i < a->ops; i++) {
        unsigned k = (unsigned)(t_rand(&rnd) % H_KEEP);
        uint64_t len = sizes[t_rand(&rnd) % NSIZES];
        mempool_dref r;
        if (keep[k].gen) {
            mempool_view v;
            T_CHILD_EQ(mempool_get(p, keep[k], &v), 0);
            T_CHILD_ASSERT(v.len == klen[k] &&
                           t_check_fill(v.data, v.len, kseed[k]));
            T_CHILD_EQ(mempool_release(p, &v), 0);
            T_CHILD_EQ(mempool_delete(p, keep[k]), 0);
            keep[k].gen = 0;
            nlive--;
        }
        uint64_t seed = ++rnd;
        t_fill(buf, len, seed);
        T_CHILD_EQ(mempool_put(p, buf, len, &r), 0);
        if (t_rand(&rnd) % 2) {
            T_CHILD_EQ(mempool_delete(p, r), 0);
        } else {
            keep[k] = r;
            kseed[k] = seed;
            klen[k] = len;
            nlive++;
        }
    }
    T_CHILD_EQ(t_send_u64(a->fd, nlive), 0);
    /* the live objects stay: the handle closes with its cache flushed */
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

START_TEST(test_hammer)
{
    char pool[T_NAME_LEN], why[256];
    struct hargs a[2];
    pid_t pid[2];
    int fds[2][2];
    uint64_t live = 0, n;
    struct mempool_stats s;
    mempool *p;

    t_pool_name(pool, "acache");
    ASSERT_RC(t_open(pool, T_ARENA_BYTES, &p), 0);
    for (int i = 0; i < 2; i++) {
        t_pipe(fds[i]);
        a[i] = (struct hargs){ pool, fds[i][1], 200000, 77u + (uint64_t)i };
        pid[i] = t_fork(h_child, &a[i]);
        close(fds[i][1]);
    }
    /* fsck and stats while both run: every cache lock is taken, the check
     * sees no set or delete half done */
    for (int k = 0; k < 20; k++) {
        int rc = mempool_check(p, why, sizeof why);
        ck_assert_msg(rc == 0, "check while writing: %d: %s", rc, why);
        (void)t_stats(p);
        usleep(20000);
    }
    for (int i = 0; i < 2; i++) {
        ASSERT_RC(t_recv_u64(fds[i][0], &n, 120), 0);
        live += n;
        close(fds[i][0]);
        t_wait_ok(pid[i]);
    }
    ASSERT_RC(mempool_check(p, why, sizeof why), 0);
    s = t_stats(p);
    ck_assert_uint_eq(s.objects, live);
    ASSERT_RC(mempool_close(p), 0);
    mempool_destroy(pool);
}
END_TEST

/* One writer killed mid-run, again and again, while the other goes on. */
START_TEST(test_hammer_kills)
{
    char pool[T_NAME_LEN], why[256];
    struct hargs a[2];
    pid_t pid[2];
    int fds[2][2];
    uint64_t rnd = 5, n;
    mempool *p;

    t_pool_name(pool, "acache");
    ASSERT_RC(t_open(pool, T_ARENA_BYTES, &p), 0);
    for (int i = 0; i < 2; i++) {
        t_pipe(fds[i]);
        a[i] = (struct hargs){ pool, fds[i][1], i ? 0 : 400000,
                               9u + (uint64_t)i };
        pid[i] = t_fork(h_child, &a[i]);
    }
    close(fds[0][1]);
    for (int k = 0; k < 12; k++) {
        usleep((useconds_t)(20000 + t_rand(&rnd) % 60000));
        ck_assert_int_eq(t_kill(pid[1]), SIGKILL);
        ck_assert_int_ge(mempool_reap(p), 0);
        ASSERT_RC(mempool_check(p, why, sizeof why), 0);
        a[1].seed = 100u + (uint64_t)k;
        pid[1] = t_fork(h_child, &a[1]);
    }
    ck_assert_int_eq(t_kill(pid[1]), SIGKILL);
    close(fds[1][1]);
    close(fds[1][0]);
    ASSERT_RC(t_recv_u64(fds[0][0], &n, 120), 0);
    close(fds[0][0]);
    t_wait_ok(pid[0]);
    ck_assert_int_ge(mempool_reap(p), 0);
    t_assert_healthy(p);
    ASSERT_RC(mempool_close(p), 0);
    mempool_destroy(pool);
}
END_TEST

/* ----------------------------------------------------------------- cross */

START_TEST(test_cross)
{
    char pool[T_NAME_LEN];
    struct t_remote w;
    mempool_dref mine[40], theirs[40], r;
    mempool_view v;
    struct mempool_worker_stats ws;
    struct mempool_stats s;
    int wid;
    mempool *p;

    t_pool_name(pool, "acache");
    ASSERT_RC(t_open(pool, T_ARENA_BYTES, &p), 0);
    t_remote_start(&w, pool);
    wid = (int)t_remote_call(&w, T_R_WID, &r, 0);
    ck_assert_int_gt(wid, 0);
    /* theirs: set by the remote, deleted by us (locked path) */
    for (int i = 0; i < 40; i++)
        ck_assert_int_eq(t_remote_call(&w, T_R_SET, &theirs[i],
                                       (uint64_t)(50 + i)), 0);
    ASSERT_RC(mempool_worker_stats_get(p, wid, &ws), 0);
    ck_assert_uint_eq(ws.objects, 40);
    for (int i = 0; i < 40; i++)
        ASSERT_RC(mempool_delete(p, theirs[i]), 0);
    ASSERT_RC(mempool_worker_stats_get(p, wid, &ws), 0);
    ck_assert_uint_eq(ws.objects, 0);
    ck_assert_uint_eq(ws.resident_bytes, 0);
    t_assert_healthy(p);
    /* mine: set by us, pinned by the remote, deleted by us: the remote's
     * release frees them (its reclaim is the locked path) */
    for (int i = 0; i < 40; i++) {
        char b[64];
        memset(b, i, sizeof b);
        ASSERT_RC(mempool_put(p, b, sizeof b, &mine[i]), 0);
        r = mine[i];
        ck_assert_int_eq(t_remote_call(&w, T_R_GET, &r, 1), 0);
    }
    for (int i = 0; i < 40; i++)
        ASSERT_RC(mempool_delete(p, mine[i]), 0);
    s = t_stats(p);
    ck_assert_uint_eq(s.deleted_objects, 40);
    ck_assert_int_eq(t_remote_call(&w, T_R_RELEASE_ALL, &r, 0), 40);
    s = t_stats(p);
    ck_assert_uint_eq(s.objects, 0);
    ck_assert_uint_eq(s.used_bytes, 0);
    for (int i = 0; i < 40; i++)
        ASSERT_RC(mempool_get(p, mine[i], &v), -ENOENT);
    t_assert_healthy(p);
    ck_assert_int_eq(t_remote_quit(&w), 0);
    t_assert_healthy(p);
    ASSERT_RC(mempool_close(p), 0);
    mempool_destroy(pool);
}
END_TEST

/* ----------------------------------------------------------------- drain */

static int d_child(void *arg)
{
    const char *pool = arg;
    mempool_dref r[256];
    mempool *p;
    int n = 0, rc;

    T_CHILD_EQ(t_attach(pool, &p), 0);
    while ((rc = mempool_put(p, "x", 1, &r[n])) == 0)
        n++;
    T_CHILD_EQ(rc, -ENOSPC);
    T_CHILD_EQ(n, 256);
    for (int i = 0; i < n; i++)
        T_CHILD_EQ(mempool_delete(p, r[i]), 0);
    T_CHILD_EQ(mempool_close(p), 0);
    return 0;
}

START_TEST(test_drain)
{
    char pool[T_NAME_LEN];
    mempool_options o;
    static const char y[200] = "y";
    mempool_dref r[64];
    struct mempool_stats s;
    mempool *p;

    t_pool_name(pool, "acache");
    t_options(&o, T_ARENA_BYTES);
    o.max_objects = 256;
    o.flags |= MEMPOOL_OPEN_EXCL;
    ASSERT_RC(mempool_open(pool, &o, &p), 0);
    /* we cache entries of two classes */
    for (int i = 0; i < 64; i++)
        ASSERT_RC(mempool_put(p, y, i % 2 ? 1 : 200, &r[i]), 0);
    for (int i = 0; i < 64; i++)
        ASSERT_RC(mempool_delete(p, r[i]), 0);
    s = t_stats(p);
    ck_assert_uint_eq(s.objects, 0);
    ck_assert_uint_eq(s.used_bytes, 0);
    /* another process gets every entry of the table all the same */
    t_wait_ok(t_fork(d_child, pool));
    t_assert_healthy(p);
    ASSERT_RC(mempool_close(p), 0);
    mempool_destroy(pool);
}
END_TEST

/* ------------------------------------------------------------------- gen */

START_TEST(test_gen)
{
    char pool[T_NAME_LEN];
    mempool_dref a, b;
    mempool_view v;
    mempool *p;

    t_pool_name(pool, "acache");
    ASSERT_RC(t_open(pool, T_ARENA_BYTES, &p), 0);
    ASSERT_RC(mempool_put(p, "first", 5, &a), 0);
    ASSERT_RC(mempool_delete(p, a), 0);
    ASSERT_RC(mempool_get(p, a, &v), -ENOENT);
    ASSERT_RC(mempool_delete(p, a), -ENOENT);
    ASSERT_RC(mempool_put(p, "second", 6, &b), 0);
    ck_assert_uint_eq(b.off, a.off);        /* the cached entry, reused */
    ck_assert_uint_eq(b.gen, a.gen + 1);    /* with the next generation */
    ASSERT_RC(mempool_get(p, a, &v), -ENOENT);
    ASSERT_RC(mempool_get(p, b, &v), 0);
    ck_assert(memcmp(v.data, "second", 6) == 0);
    ASSERT_RC(mempool_release(p, &v), 0);
    ASSERT_RC(mempool_delete(p, b), 0);
    t_assert_healthy(p);
    ASSERT_RC(mempool_close(p), 0);
    mempool_destroy(pool);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("alloc_cache");
    TCase *tc;
#ifdef MEMPOOL_FAILPOINTS
    tc = tcase_create("kill");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_kill, 0, NPOINTS);
    suite_add_tcase(s, tc);
#endif
    tc = tcase_create("hammer");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_hammer);
    tcase_add_test(tc, test_hammer_kills);
    suite_add_tcase(s, tc);
    tc = tcase_create("workers");
    tcase_add_test(tc, test_cross);
    tcase_add_test(tc, test_drain);
    tcase_add_test(tc, test_gen);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return t_run(suite(), "acache");
}
