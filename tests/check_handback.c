/* SPDX-License-Identifier: MIT */
/*
 * check_handback.c - the deleter's batched hand-back (src/core/handback.c):
 * small objects of other workers that a process deletes wait in its stash,
 * DELETED in the table, and go to their owners' caches a batch per hold of
 * the owner's cache lock.
 *
 * batch: 40 objects of another worker deleted by us (more than a batch):
 * each DRef is -ENOENT at once, the owner's charges and the pool's figures
 * count none of them as soon as stats are read (stats collect every
 * stash), the entries are in the owner's cache (its next sets take them),
 * and the pool checks clean; a reader in a third process sees the same.
 * kill (failpoints): a deleter of 40 such objects SIGKILLed at each hit of
 * each step of the protocol - handback.stashed (entries DELETED, in its
 * stash), handback.given and cache.recached (inside the owner's lock, the
 * batch half given) - until the step is no longer reached: after the reap
 * every object is gone, the owner's charges and the pool's figures are
 * exact, the check is clean, and the owner's next sets and deletes work.
 * many (stress): three owners' objects deleted by three deleter processes
 * of two threads each (sharing one stash), while a killer SIGKILLs extra
 * deleters mid-batch and the parent deletes what they leave: at the end
 * every object is gone, the owners (still attached) are charged nothing,
 * the pool holds nothing and checks clean.
 */
#include "helpers.h"
#include "layout.h"                /* mp_entry: its word */

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

enum { K = 40 };                       /* > MP_STASH_BATCH */

static void delete_all(mempool *p, const mempool_dref *r, int n)
{
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(mempool_delete(p, r[i]), 0);
}

/* A third process reads the figures: what our deletes left, after the
 * stats it reads collected our stash. */
static int reader(void *arg)
{
    int wid = *(int *)arg;
    struct mempool_worker_stats ws;
    mempool *p;
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    memset(&ws, 0, sizeof ws);
    ws.size = sizeof ws;
    T_CHILD_EQ(mempool_worker_stats_get(p, wid, &ws), 0);
    T_CHILD_EQ(ws.objects, 0);
    mempool_close(p);
    return 0;
}

START_TEST(test_batch)
{
    struct t_remote a;
    mempool_dref r[K], n;
    const uint8_t *arena;
    size_t arena_len;
    mempool *p;
    int wa, cached = 0;

    t_pool_name(t_name, "hback");
    ck_assert_int_eq(t_open(t_name, T_ARENA_BYTES, &p), 0);
    arena = t_map_arena(t_name, &arena_len);
    t_remote_start(&a, t_name);
    wa = (int)t_remote_call(&a, T_R_WID, &n, 0);
    for (int i = 0; i < K; i++)
        ck_assert_int_eq(t_remote_call(&a, T_R_SET, &r[i], 64), 0);
    ck_assert_uint_eq(t_worker_objects(p, wa), K);
    delete_all(p, r, K);
    for (int i = 0; i < K; i++)
        ck_assert_int_eq(mempool_get(p, r[i], &(mempool_view){ 0 }),
                         -ENOENT);
    /* Another process's stats collect our stash too. */
    ck_assert_int_eq(t_wait(t_fork(reader, &wa), T_WAIT_S), 0);
    ck_assert_uint_eq(t_worker_objects(p, wa), 0);
    ck_assert_uint_eq(t_stats(p).objects, 0);
    for (int i = 0; i < K; i++) {
        uint64_t w = atomic_load((_Atomic uint64_t *)(uintptr_t)(
            arena + (r[i].off & MEMPOOL_DREF_ENTRY_BITS)));
        cached += MP_W_ST(w) == MP_ST_CACHED && MP_W_WHO(w) == (unsigned)wa;
    }
    ck_assert_int_eq(cached, K);       /* all in the owner's cache */
    t_assert_healthy(p);
    for (int i = 0; i < 4; i++) {      /* its sets take them back */
        ck_assert_int_eq(t_remote_call(&a, T_R_SET, &n, 64), 0);
        ck_assert_int_eq(t_remote_call(&a, T_R_DELETE, &n, 0), 0);
    }
    ck_assert_int_eq(t_remote_quit(&a), 0);
    t_assert_healthy(p);
    ck_assert_uint_eq(t_stats(p).objects, 0);
    munmap((void *)(uintptr_t)arena, arena_len);
    mempool_close(p);
    mempool_destroy(t_name);
}
END_TEST

#ifdef T_FAILPOINTS
struct victim {
    const mempool_dref *r;
    const char *fp;
};

/* Delete the K objects with @p fp armed, then read stats (the flush). */
static int deleter(void *arg)
{
    const struct victim *v = arg;
    struct mempool_stats st;
    mempool *p;
    setenv("MEMPOOL_FAILPOINT", v->fp, 1);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    for (int i = 0; i < K; i++)
        T_CHILD_EQ(mempool_delete(p, v->r[i]), 0);
    memset(&st, 0, sizeof st);
    T_CHILD_EQ(mempool_stats_get(p, &st), 0);
    mempool_close(p);
    return 0;
}

/* One run: the deleter killed at @p point's @p hit-th hit (or done).
 * true if it was killed. */
static bool kill_run(const char *point, int hit)
{
    struct t_remote a;
    struct victim v;
    mempool_dref r[K], n;
    char fp[64], why[256];
    uint64_t live = 0;
    mempool *p;
    int wa, st;

    t_pool_name(t_name, "hbkill");
    ck_assert_int_eq(t_open(t_name, T_ARENA_BYTES, &p), 0);
    t_remote_start(&a, t_name);
    wa = (int)t_remote_call(&a, T_R_WID, &n, 0);
    for (int i = 0; i < K; i++)
        ck_assert_int_eq(t_remote_call(&a, T_R_SET, &r[i], 64 + i), 0);
    snprintf(fp, sizeof fp, "%s=kill@%d", point, hit);
    v.r = r;
    v.fp = fp;
    st = t_wait(t_fork(deleter, &v), T_WAIT_S);
    ck_assert_msg(st == 0 || st == 128 + SIGKILL, "%s: status %d", fp, st);
    ck_assert_int_ge(mempool_reap(p), st ? 1 : 0);
    /* The objects it had not deleted yet are there, intact; the others
     * gone (the reap freed what its stash held): the owner is charged
     * for exactly the live ones, and so is the pool. */
    for (int i = 0; i < K; i++) {
        mempool_view vw;
        int rc = mempool_get(p, r[i], &vw);
        ck_assert_msg(rc == 0 || rc == -ENOENT, "%s: get %d: %d", fp, i, rc);
        if (rc == 0) {
            ck_assert_uint_eq(vw.len, 64 + (unsigned)i);
            ck_assert(t_check_fill(vw.data, vw.len, 64 + (unsigned)i));
            ck_assert_int_eq(mempool_release(p, &vw), 0);
            live++;
        }
    }
    ck_assert_msg(mempool_check(p, why, sizeof why) == 0, "%s: %s", fp, why);
    ck_assert_uint_eq(t_worker_objects(p, wa), live);
    ck_assert_uint_eq(t_stats(p).objects, live);
    for (int i = 0; i < K; i++) {
        int rc = mempool_delete(p, r[i]);
        ck_assert(rc == 0 || rc == -ENOENT);
    }
    ck_assert_uint_eq(t_worker_objects(p, wa), 0);
    ck_assert_uint_eq(t_stats(p).objects, 0);
    ck_assert_uint_eq(t_stats(p).used_bytes, 0);
    /* The owner's cache works (repaired if the kill was in its lock). */
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(t_remote_call(&a, T_R_SET, &n, 64), 0);
        ck_assert_int_eq(t_remote_call(&a, T_R_DELETE, &n, 0), 0);
    }
    ck_assert_int_eq(t_remote_quit(&a), 0);
    t_assert_healthy(p);
    ck_assert_uint_eq(t_stats(p).objects, 0);
    mempool_close(p);
    mempool_destroy(t_name);
    return st != 0;
}

START_TEST(test_kill_at_each_step)
{
    static const char *const points[] = { "handback.stashed",
                                          "handback.given",
                                          "cache.recached" };
    for (unsigned k = 0; k < sizeof points / sizeof points[0]; k++) {
        int hit = 1;
        while (kill_run(points[k], hit))
            hit++;
        fprintf(stderr, "%s: %d hits\n", points[k], hit - 1);
        /* Reached at least once: the protocol has this step. */
        ck_assert_msg(hit > 1, "%s never reached", points[k]);
    }
}
END_TEST
#endif

/* ---- many ----------------------------------------------------------------- */

enum { OWNERS = 3, PER_OWNER = 600, DELETERS = 3, THREADS = 2 };
enum { NOBJ = OWNERS * PER_OWNER };

struct shared {
    mempool_dref r[NOBJ];
    _Atomic uint32_t next;             /* next object to delete */
    _Atomic uint32_t owners_ready;
    int wid[OWNERS];
    struct t_note note;
};
static struct shared *sh;

/* An owner: set its share of small objects of random classes, then stay
 * attached (its cache takes the hand-backs) until the parent's go. */
static int owner(void *arg)
{
    int me = (int)(intptr_t)arg;
    uint64_t rng = (uint64_t)getpid() | 1;
    char buf[2048];
    mempool *p;
    memset(buf, me, sizeof buf);
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    sh->wid[me] = mempool_worker_id(p);
    for (int i = 0; i < PER_OWNER; i++) {
        size_t len = 1 + (size_t)(t_rand(&rng) % sizeof buf);
        T_CHILD_EQ(mempool_put(p, buf, len, &sh->r[i * OWNERS + me]), 0);
    }
    atomic_fetch_add(&sh->owners_ready, 1);
    pause();                           /* killed by the parent at the end */
    return 0;
}

static void *delete_loop(void *arg)
{
    mempool *p = arg;
    for (;;) {
        uint32_t i = atomic_fetch_add(&sh->next, 1);
        int rc;
        if (i >= NOBJ)
            return NULL;
        rc = mempool_delete(p, sh->r[i]);
        if (rc && rc != -ENOENT)
            t_note_bug(&sh->note, "delete", rc);
    }
}

/* Two threads on one handle delete objects off the shared list. */
static int deleter_proc(void *arg)
{
    pthread_t th[THREADS];
    mempool *p;
    (void)arg;
    T_CHILD_EQ(t_attach(t_name, &p), 0);
    for (int t = 0; t < THREADS; t++)
        T_CHILD_EQ(pthread_create(&th[t], NULL, delete_loop, p), 0);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    mempool_close(p);
    return 0;
}

START_TEST(test_many)
{
    pid_t own[OWNERS], del[DELETERS];
    uint64_t rng = (uint64_t)getpid() | 1;
    int kills = 0;
    mempool *p;

    t_pool_name(t_name, "hbmany");
    ck_assert_int_eq(t_open(t_name, T_ARENA_BYTES, &p), 0);
    sh = t_shared_map(sizeof *sh);
    for (int k = 0; k < OWNERS; k++)
        own[k] = t_fork(owner, (void *)(intptr_t)k);
    for (int i = 0; i < 6000 && atomic_load(&sh->owners_ready) < OWNERS; i++)
        usleep(10000);
    ck_assert_uint_eq(atomic_load(&sh->owners_ready), OWNERS);
    ck_assert_uint_eq(t_stats(p).objects, NOBJ);
    for (int k = 0; k < DELETERS; k++)
        del[k] = t_fork(deleter_proc, NULL);
    /* Extra deleters killed mid-run: what they stashed is DELETED, what
     * they had not reached yet stays for the others. */
    while (atomic_load(&sh->next) < NOBJ && kills < 20) {
        pid_t v = t_fork(deleter_proc, NULL);
        int st;
        usleep((useconds_t)(200 + t_rand(&rng) % 3000));
        kill(v, SIGKILL);              /* it may have finished: all taken */
        st = t_wait(v, T_WAIT_S);
        ck_assert_msg(st == 0 || st == 128 + SIGKILL, "deleter: %d", st);
        kills++;
    }
    for (int k = 0; k < DELETERS; k++)
        t_wait_ok(del[k]);
    ck_assert_msg(!atomic_load(&sh->note.failed), "%s", sh->note.why);
    ck_assert_int_ge(mempool_reap(p), 0);
    /* What a killed deleter took but had not deleted is still there:
     * ours to delete now; everything else is gone already. */
    for (int i = 0; i < NOBJ; i++) {
        int rc = mempool_delete(p, sh->r[i]);
        ck_assert_msg(rc == 0 || rc == -ENOENT, "object %d: %d", i, rc);
    }
    for (int k = 0; k < OWNERS; k++)   /* attached, charged nothing */
        ck_assert_uint_eq(t_worker_objects(p, sh->wid[k]), 0);
    ck_assert_uint_eq(t_stats(p).objects, 0);
    ck_assert_uint_eq(t_stats(p).used_bytes, 0);
    t_assert_healthy(p);
    for (int k = 0; k < OWNERS; k++)
        ck_assert_int_eq(t_kill(own[k]), SIGKILL);
    ck_assert_int_ge(mempool_reap(p), 0);
    t_assert_healthy(p);
    ck_assert_uint_eq(t_stats(p).objects, 0);
    ck_assert_uint_eq(t_stats(p).used_bytes, 0);
    mempool_close(p);
    mempool_destroy(t_name);
}
END_TEST

int main(void)
{
    const struct t_case cases[] = {
        { "batch", 120, false, { test_batch } },
#ifdef T_FAILPOINTS
        { "kill", 600, false, { test_kill_at_each_step } },
#endif
        { "many", 300, false, { test_many } },
        { .name = NULL }
    };
    return t_main("handback", cases);
}
