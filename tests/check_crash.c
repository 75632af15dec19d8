/* SPDX-License-Identifier: MIT */
/*
 * check_crash.c - SIGKILL at any point leaves the pool usable.
 *
 * Issue semantics 8 (and 5's "death of the reserving process", 6's death of
 * the last holder): a worker is SIGKILLed holding 1,000 pins, between reserve
 * and publish, with everything at once, and at random moments of a set /
 * reserve / get / delete / refcount workload. After the reap (mempool_reap()
 * or the next mempool_open()) its pins, refs and reservations are gone,
 * mempool_check() is clean, and used_bytes is exactly what the surviving
 * objects account for: we delete every object the dead worker is known to
 * have published and require used_bytes to return to its value before the
 * worker ran. docs/scenarios.md S9-S12, S17.
 */
#include "helpers.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>


/* ------------------------------------------------------- 1,000 pins */

static void kill_holding_pins(bool delete_first)
{
    enum { N = 100, PER = 10 };
    struct mempool_stats s0 = t_stats(t_pool);
    struct t_remote w;
    mempool_dref r[N];
    char buf[1024];
    int i;

    for (i = 0; i < N; i++) {
        t_fill(buf, sizeof buf, (uint64_t)i);
        ASSERT_RC(mempool_put(t_pool, buf, sizeof buf, &r[i]), 0);
    }
    t_remote_start(&w, t_name);
    for (i = 0; i < N; i++) {
        int64_t rc = t_remote_call(&w, T_R_GET, &r[i], PER);

        ck_assert_msg(rc == 0, "remote pin %d: %" PRId64 " (%s)", i * PER,
                      rc, mempool_strerror((int)rc));
    }
    ASSERT_RC(t_remote_call(&w, T_R_VERIFY, NULL, 0), N * PER);
    for (i = 0; i < N; i++)
        ck_assert_int_eq(t_pins(t_pool, r[i]), PER);
    if (delete_first)
        for (i = 0; i < N; i++)
            ASSERT_RC(mempool_delete(t_pool, r[i]), 0);
    t_remote_kill(&w);
    ASSERT_RC(mempool_reap(t_pool), 1);
    ASSERT_RC(mempool_reap(t_pool), 0);
    t_assert_healthy(t_pool);
    for (i = 0; i < N && !delete_first; i++) {
        mempool_view v;

        ck_assert_int_eq(t_pins(t_pool, r[i]), 0);
        ASSERT_RC(mempool_get(t_pool, r[i], &v), 0);
        ck_assert(t_check_fill(v.data, sizeof buf, (uint64_t)i));
        ASSERT_RC(mempool_release(t_pool, &v), 0);
        ASSERT_RC(mempool_delete(t_pool, r[i]), 0);
    }
    for (i = 0; i < N; i++)
        ASSERT_RC(mempool_get(t_pool, r[i], &(mempool_view){ 0 }), -ENOENT);
    ck_assert_uint_eq(t_stats(t_pool).objects, s0.objects);
    ck_assert_uint_eq(t_stats(t_pool).used_bytes, s0.used_bytes);
    ck_assert_uint_eq(t_stats(t_pool).workers, 1);
    t_assert_healthy(t_pool);
}

START_TEST(test_kill_holding_1000_pins)
{
    kill_holding_pins(false);
}
END_TEST

/* The objects were deleted while pinned: only the reap can free them. */
START_TEST(test_kill_holding_1000_pins_of_deleted)
{
    kill_holding_pins(true);
}
END_TEST

/* ------------------------------------------------- reserve, publish */

START_TEST(test_kill_between_reserve_and_publish)
{
    static const uint64_t sizes[] = { 100, 5000, MiB, 3 * MiB + 17 };
    struct mempool_stats s0 = t_stats(t_pool);
    struct t_remote w;
    mempool_dref r[4];
    unsigned i;

    t_remote_start(&w, t_name);
    for (i = 0; i < 4; i++)
        ASSERT_RC(t_remote_call(&w, T_R_RESERVE, &r[i], sizes[i]), 0);
    ck_assert_uint_ge(t_stats(t_pool).used_bytes,
                      s0.used_bytes + 4 * MiB + 5100);
    for (i = 0; i < 4; i++)
        ASSERT_RC(mempool_get(t_pool, r[i], &(mempool_view){ 0 }), -ENOENT);
    t_remote_kill(&w);
    ASSERT_RC(mempool_reap(t_pool), 1);
    ck_assert_uint_eq(t_stats(t_pool).used_bytes, s0.used_bytes);
    ck_assert_uint_eq(t_stats(t_pool).objects, s0.objects);
    for (i = 0; i < 4; i++) {
        int rc;

        ASSERT_RC(mempool_get(t_pool, r[i], &(mempool_view){ 0 }), -ENOENT);
        rc = mempool_publish(t_pool, r[i]);
        ck_assert_msg(rc == -ENOENT || rc == -EINVAL, "publish: %d", rc);
        rc = mempool_abort(t_pool, r[i]);
        ck_assert_msg(rc == -ENOENT || rc == -EINVAL, "abort: %d", rc);
    }
    t_assert_healthy(t_pool);
    /* the memory is really back: a 3 MiB object fits again and again */
    for (i = 0; i < 3; i++) {
        mempool_dref x;
        void *buf;

        ASSERT_RC(mempool_reserve(t_pool, 3 * MiB, NULL, &buf, &x), 0);
        ASSERT_RC(mempool_abort(t_pool, x), 0);
    }
    ck_assert_uint_eq(t_stats(t_pool).used_bytes, s0.used_bytes);
}
END_TEST

/* --------------------------------------- many workers, all at once */

START_TEST(test_kill_many_workers)
{
    enum { W = 8 };
    struct mempool_stats s0 = t_stats(t_pool);
    struct t_remote w[W];
    mempool_dref shared, plain[W], rsv[W], mine[W];
    char buf[2000];
    int i;

    t_fill(buf, sizeof buf, 50);
    {
        mempool_put_options o = { 0, 0, MEMPOOL_PUT_REFCOUNTED };

        ASSERT_RC(mempool_put_ex(t_pool, buf, sizeof buf, &o, &shared), 0);
    }
    for (i = 0; i < W; i++) {
        t_remote_start(&w[i], t_name);
        ASSERT_RC(t_remote_call(&w[i], T_R_SET, &plain[i], 1000 + i), 0);
        ASSERT_RC(t_remote_call(&w[i], T_R_GET, &plain[i], 2), 0);
        ASSERT_RC(t_remote_call(&w[i], T_R_REF, &shared, 3), 0);
        ASSERT_RC(t_remote_call(&w[i], T_R_GET, &shared, 1), 0);
        ASSERT_RC(t_remote_call(&w[i], T_R_RESERVE, &rsv[i], 100000), 0);
        ASSERT_RC(t_remote_call(&w[i], T_R_SET_RC, &mine[i], 300), 0);
    }
    ck_assert_int_eq(t_refs(t_pool, shared), 1 + 3 * W);
    ck_assert_int_eq(t_pins(t_pool, shared), W);
    ck_assert_uint_eq(t_stats(t_pool).workers, W + 1);
    for (i = 0; i < W; i++)
        t_remote_kill(&w[i]);
    ASSERT_RC(mempool_reap(t_pool), W);
    t_assert_healthy(t_pool);
    ck_assert_uint_eq(t_stats(t_pool).workers, 1);
    ck_assert_int_eq(t_refs(t_pool, shared), 1);
    ck_assert_int_eq(t_pins(t_pool, shared), 0);
    for (i = 0; i < W; i++) {
        mempool_view v;

        ck_assert_int_eq(t_pins(t_pool, plain[i]), 0);
        ASSERT_RC(mempool_get(t_pool, plain[i], &v), 0);
        ck_assert(t_check_fill(v.data, 1000 + (size_t)i, 1000 + (uint64_t)i));
        ASSERT_RC(mempool_release(t_pool, &v), 0);
        ASSERT_RC(mempool_delete(t_pool, plain[i]), 0);
        ASSERT_RC(mempool_get(t_pool, rsv[i], &v), -ENOENT);
        ASSERT_RC(mempool_get(t_pool, mine[i], &v), -ENOENT);
    }
    ASSERT_RC(mempool_unref(t_pool, shared), 0);
    ck_assert_uint_eq(t_stats(t_pool).used_bytes, s0.used_bytes);
    ck_assert_uint_eq(t_stats(t_pool).objects, s0.objects);
    t_assert_healthy(t_pool);
}
END_TEST

/* Operations right after a death, before any reap, never wait on the dead
 * worker (a hang here ends in Check's timeout). */
START_TEST(test_no_wait_on_dead_worker)
{
    struct mempool_stats s0 = t_stats(t_pool);
    struct t_remote w;
    mempool_dref a, b, rsv, mine, rc_obj;
    mempool_view v;
    void *buf;
    int n;

    ASSERT_RC(mempool_put(t_pool, "aaaa", 4, &a), 0);
    t_remote_start(&w, t_name);
    ASSERT_RC(t_remote_call(&w, T_R_GET, &a, 5), 0);
    ASSERT_RC(t_remote_call(&w, T_R_RESERVE, &rsv, 2 * MiB), 0);
    ASSERT_RC(t_remote_call(&w, T_R_SET_RC, &rc_obj, 10), 0);
    ASSERT_RC(mempool_ref(t_pool, rc_obj), 0);
    t_remote_kill(&w);
    /* no reap yet: everything works */
    ASSERT_RC(mempool_get(t_pool, a, &v), 0);
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    ASSERT_RC(mempool_put(t_pool, "bbbb", 4, &b), 0);
    ASSERT_RC(mempool_reserve(t_pool, MiB, NULL, &buf, &mine), 0);
    ASSERT_RC(mempool_publish(t_pool, mine), 0);
    ASSERT_RC(mempool_delete(t_pool, a), 0);
    ASSERT_RC(mempool_delete(t_pool, mine), 0);
    ASSERT_RC(mempool_get(t_pool, rsv, &v), -ENOENT);
    ASSERT_RC(mempool_ref(t_pool, rc_obj), 0);
    ASSERT_RC(mempool_unref(t_pool, rc_obj), 0);
    (void)t_stats(t_pool);
    /* whichever call noticed the death reaped it; now it is gone */
    n = mempool_reap(t_pool);
    ck_assert_msg(n == 0 || n == 1, "reap = %d", n);
    ASSERT_RC(mempool_reap(t_pool), 0);
    ck_assert_uint_eq(t_stats(t_pool).workers, 1);
    ck_assert_int_eq(t_refs(t_pool, rc_obj), 1);
    ASSERT_RC(mempool_unref(t_pool, rc_obj), 0);
    ASSERT_RC(mempool_delete(t_pool, b), 0);
    ck_assert_uint_eq(t_stats(t_pool).used_bytes, s0.used_bytes);
    ck_assert_uint_eq(t_stats(t_pool).objects, s0.objects);
    t_assert_healthy(t_pool);
}
END_TEST

/* Every worker killed; the next open reaps them all (docs/scenarios.md
 * B12). */
START_TEST(test_all_killed_next_open_reaps)
{
    struct t_remote w[3];
    mempool_dref x, y, rsv, tmp;
    mempool_view v;
    int i;

    ck_assert_int_eq(mempool_close(t_pool), 0);
    t_pool = NULL;
    for (i = 0; i < 3; i++)
        t_remote_start(&w[i], t_name);
    ASSERT_RC(t_remote_call(&w[0], T_R_SET, &x, 777), 0);
    ASSERT_RC(t_remote_call(&w[1], T_R_GET, &x, 3), 0);
    ASSERT_RC(t_remote_call(&w[2], T_R_SET_RC, &y, 888), 0);
    ASSERT_RC(t_remote_call(&w[0], T_R_RESERVE, &rsv, 4 * MiB), 0);
    ASSERT_RC(t_remote_call(&w[1], T_R_SET, &tmp, 999), 0);
    ASSERT_RC(t_remote_call(&w[2], T_R_DELETE, &tmp, 0), 0);
    for (i = 0; i < 3; i++)
        t_remote_kill(&w[i]);
    ck_assert_int_eq(t_attach(t_name, &t_pool), 0);
    ASSERT_RC(mempool_reap(t_pool), 0);
    ck_assert_uint_eq(t_stats(t_pool).workers, 1);
    t_assert_healthy(t_pool);
    ck_assert_int_eq(t_pins(t_pool, x), 0);
    ASSERT_RC(mempool_get(t_pool, y, &v), -ENOENT);
    ASSERT_RC(mempool_get(t_pool, rsv, &v), -ENOENT);
    ASSERT_RC(mempool_get(t_pool, tmp, &v), -ENOENT);
    ck_assert_uint_eq(t_stats(t_pool).objects, 1);
    ASSERT_RC(mempool_get(t_pool, x, &v), 0);
    ck_assert(t_check_fill(v.data, 777, 777));
    ASSERT_RC(mempool_release(t_pool, &v), 0);
    ASSERT_RC(mempool_delete(t_pool, x), 0);
    ck_assert_uint_eq(t_stats(t_pool).used_bytes, 0);
    ck_assert_uint_eq(t_stats(t_pool).objects, 0);
    t_assert_healthy(t_pool);
}
END_TEST

/* --------------------------------------------- random-timing kill loop */

/* Records the workload child sends; one write each, so atomic. */
enum { REC_SET = 1, REC_RESERVED, REC_ABORTING, REC_RC_SET, REC_UNREFING,
       REC_DELETING, REC_PROGRESS };

struct rec {
    uint32_t op, pad;
    mempool_dref r;
};

static const size_t wl_sizes[] = { 8, 200, 3000, 70000, 512 * 1024 };
#define WL_NSIZES (sizeof wl_sizes / sizeof wl_sizes[0])

static int wl_fd = -1;
static uint64_t wl_seed;

static void wl_send(uint32_t op, mempool_dref r)
{
    struct rec x = { op, 0, r };

    T_CHILD_EQ(t_send(wl_fd, &x, sizeof x), 0);
}

/* Self-describing content: the first 8 bytes are a seed, the rest
 * t_fill(seed). */
static void wl_fill(void *buf, size_t len, uint64_t seed)
{
    memcpy(buf, &seed, 8);
    t_fill((char *)buf + 8, len - 8, seed);
}

static bool wl_valid(const void *buf, size_t len)
{
    uint64_t seed;

    if (len < 8)
        return false;
    memcpy(&seed, buf, 8);
    return t_check_fill((const char *)buf + 8, len - 8, seed);
}

static int workload(void *arg)
{
    mempool *p = NULL;
    mempool_dref live[24], rcs[8];
    mempool_view views[32];
    int nl = 0, nr = 0, nv = 0, rc;
    uint64_t s = wl_seed;
    char *buf = malloc(512 * 1024);

    (void)arg;
    T_CHILD_ASSERT(buf != NULL);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    for (;;) {
        unsigned x = (unsigned)(t_rand(&s) % 100);
        size_t len = wl_sizes[t_rand(&s) % WL_NSIZES];
        mempool_dref r;

        if (x < 30 && nl < 24) {
            wl_fill(buf, len, t_rand(&s));
            rc = mempool_put(p, buf, len, &r);
            T_CHILD_ASSERT(rc == 0 || rc == -ENOMEM);
            if (rc == 0) {
                wl_send(REC_SET, r);
                live[nl++] = r;
            }
        } else if (x < 40 && nl < 24) {
            void *dst = NULL;

            rc = mempool_reserve(p, len, NULL, &dst, &r);
            T_CHILD_ASSERT(rc == 0 || rc == -ENOMEM);
            if (rc != 0)
                continue;
            wl_send(REC_RESERVED, r);
            wl_fill(dst, len, t_rand(&s));
            if (t_rand(&s) & 1) {
                T_CHILD_EQ(mempool_publish(p, r), 0);
                wl_send(REC_SET, r);
                live[nl++] = r;
            } else {
                wl_send(REC_ABORTING, r);
                T_CHILD_EQ(mempool_abort(p, r), 0);
            }
        } else if (x < 50) {
            mempool_put_options o = { 0, 0, MEMPOOL_PUT_REFCOUNTED };

            if (nr == 8) {
                int k = (int)(t_rand(&s) % 8);

                wl_send(REC_UNREFING, rcs[k]);
                T_CHILD_EQ(mempool_unref(p, rcs[k]), 0);
                rcs[k] = rcs[--nr];
                continue;
            }
            wl_fill(buf, len, t_rand(&s));
            rc = mempool_put_ex(p, buf, len, &o, &r);
            T_CHILD_ASSERT(rc == 0 || rc == -ENOMEM);
            if (rc == 0) {
                wl_send(REC_RC_SET, r);
                rcs[nr++] = r;
                if (t_rand(&s) & 1)
                    T_CHILD_EQ(mempool_ref(p, r), 0);
            }
        } else if (x < 70 && nl > 0 && nv < 32) {
            mempool_view *v = &views[nv];

            T_CHILD_EQ(mempool_get(p, live[t_rand(&s) % (unsigned)nl], v), 0);
            T_CHILD_ASSERT(wl_valid(v->data, v->len));
            nv++;
        } else if (x < 85 && nv > 0) {
            int k = (int)(t_rand(&s) % (unsigned)nv);

            T_CHILD_ASSERT(wl_valid(views[k].data, views[k].len));
            T_CHILD_EQ(mempool_release(p, &views[k]), 0);
            views[k] = views[--nv];
        } else if (nl > 0) {
            int k = (int)(t_rand(&s) % (unsigned)nl);

            wl_send(REC_DELETING, live[k]);
            T_CHILD_EQ(mempool_delete(p, live[k]), 0);
            live[k] = live[--nl];
        }
        wl_send(REC_PROGRESS, (mempool_dref){ 0, 0 });
    }
    return 0;
}

struct known {
    mempool_dref r;
    uint32_t op;
};

static bool same(mempool_dref a, mempool_dref b)
{
    return a.off == b.off && a.gen == b.gen;
}

/* One round: run the workload, kill it after @p k records, then reap and
 * account. @p charge: used_bytes of one object of each workload size. */
static void kill_round(uint64_t seed, unsigned k, const uint64_t *charge)
{
    struct mempool_stats s0 = t_stats(t_pool), s1;
    struct known *kn = NULL;
    size_t nk = 0, cap = 0, i, j;
    unsigned seen = 0;
    int fds[2], sig, rc;
    pid_t pid;
    uint64_t extra_used, extra_objs;

    t_pipe(fds);
    wl_fd = fds[1];
    wl_seed = seed;
    pid = t_fork(workload, NULL);
    close(fds[1]);
    for (;;) {
        struct rec x;

        rc = t_recv(fds[0], &x, sizeof x, seen >= k ? 0.2 : T_WAIT_S);
        if (rc == -ETIMEDOUT && seen >= k)
            break;
        if (rc != 0)
            break;
        if (x.op != REC_PROGRESS) {
            if (nk == cap) {
                cap = cap ? 2 * cap : 256;
                kn = realloc(kn, cap * sizeof *kn);
                ck_assert_ptr_nonnull(kn);
            }
            kn[nk].r = x.r;
            kn[nk++].op = x.op;
        } else if (++seen == k) {
            sig = t_kill(pid);
            ck_assert_msg(sig == SIGKILL, "workload child ended by itself "
                          "(%d) after %u steps", sig, seen);
            pid = 0;
        }
    }
    ck_assert_msg(rc == -EPIPE || pid == 0, "record stream: %d", rc);
    ck_assert_msg(pid == 0, "workload child ended after %u of %u steps",
                  seen, k);
    close(fds[0]);

    ASSERT_RC(mempool_reap(t_pool), 1);
    t_assert_healthy(t_pool);
    ck_assert_uint_eq(t_stats(t_pool).workers, 1);
    for (i = 0; i < nk; i++) {
        mempool_info in;
        mempool_view v;

        rc = mempool_info_get(t_pool, kn[i].r, &in);
        if (kn[i].op == REC_RC_SET) {
            ck_assert_msg(rc == -ENOENT, "a dead worker's refcounted object "
                          "survived the reap (%d)", rc);
            continue;
        }
        if (kn[i].op == REC_UNREFING || kn[i].op == REC_ABORTING)
            continue;
        ck_assert_msg(rc == 0 || rc == -ENOENT, "info: %d", rc);
        if (rc != 0)
            continue;
        ck_assert_uint_eq(in.pins, 0);
        ck_assert_uint_eq(in.refs, 0);
        ASSERT_RC(mempool_get(t_pool, kn[i].r, &v), 0);
        ck_assert_msg(wl_valid(v.data, v.len), "survivor of %" PRIu64
                      " bytes damaged", v.len);
        ASSERT_RC(mempool_release(t_pool, &v), 0);
        ASSERT_RC(mempool_delete(t_pool, kn[i].r), 0);
        /* later records of the same DRef are now irrelevant */
        for (j = i + 1; j < nk; j++)
            if (same(kn[j].r, kn[i].r))
                kn[j].op = REC_DELETING;
    }
    /* Every object the dead worker published is deleted now, except at most
     * one whose set returned but whose record was never sent. */
    s1 = t_stats(t_pool);
    ck_assert_uint_ge(s1.objects, s0.objects);
    ck_assert_uint_ge(s1.used_bytes, s0.used_bytes);
    extra_objs = s1.objects - s0.objects;
    extra_used = s1.used_bytes - s0.used_bytes;
    ck_assert_msg(extra_objs <= 1, "%" PRIu64 " objects unaccounted",
                  extra_objs);
    if (extra_objs == 0) {
        ck_assert_msg(extra_used == 0, "%" PRIu64 " bytes leaked by the "
                      "killed worker (seed %" PRIu64 ", %u steps)",
                      extra_used, seed, k);
    } else {
        bool ok = false;

        for (i = 0; i < WL_NSIZES; i++)
            ok |= extra_used == charge[i];
        ck_assert_msg(ok, "one unreported object, but %" PRIu64 " extra "
                      "bytes", extra_used);
        fprintf(stderr, "note: killed between set and report (seed %" PRIu64
                ")\n", seed);
    }
    free(kn);
}

START_TEST(test_kill_random_timing)
{
    uint64_t charge[WL_NSIZES], s = 0x5eed;
    unsigned i;

    /* what one object of each size adds to used_bytes */
    for (i = 0; i < WL_NSIZES; i++) {
        uint64_t before = t_stats(t_pool).used_bytes;
        char *buf = calloc(1, wl_sizes[i]);
        mempool_dref r;

        ck_assert_ptr_nonnull(buf);
        ASSERT_RC(mempool_put(t_pool, buf, wl_sizes[i], &r), 0);
        charge[i] = t_stats(t_pool).used_bytes - before;
        ck_assert_uint_ge(charge[i], wl_sizes[i]);
        ASSERT_RC(mempool_delete(t_pool, r), 0);
        ck_assert_uint_eq(t_stats(t_pool).used_bytes, before);
        free(buf);
    }
    for (i = 0; i < 16; i++) {
        unsigned k = 1 + (unsigned)(t_rand(&s) % 400);

        kill_round(t_rand(&s), k, charge);
    }
    t_assert_healthy(t_pool);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "points", 120, true, {
              test_kill_holding_1000_pins,
              test_kill_holding_1000_pins_of_deleted,
              test_kill_between_reserve_and_publish, test_kill_many_workers,
              test_no_wait_on_dead_worker, test_all_killed_next_open_reaps,
          } },
        { "random", 300, true, { test_kill_random_timing } },
        { .name = NULL }
    };
    return t_main("crash", cases);
}
